/*
 * cgroup.h - containment of worker processes with cgroup v2, in the host:
 * finding a place ward may write at boot (or saying once why there is none),
 * one cgroup per worker instance created before its process starts, killing
 * it as a whole, and knowing it empty. Without cgroups every function here
 * does nothing and workers are contained by their session and process group.
 */
#ifndef WARD_CGROUP_H
#define WARD_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct host;
struct instance;
struct worker;

/* How long SIGKILLed processes get to disappear before the host stops
 * waiting for them and says which ones it could not kill. */
#define KILL_WAIT_MS 5000

struct cgroups {
	int workers_fd; /* the cgroup holding every instance's cgroup (O_PATH); -1: no cgroups */
	char *path;     /* its path, for messages; owned */
};

/* At boot, once the host holds state_dir's lock and before any worker
 * starts: kills what a previous host on the same state_dir left in its
 * cgroups, creates the workers' cgroup, and says in one line where it is, or
 * why there is none (the host then goes on without). */
void cgroup_setup(struct host *h);
/* At exit: removes the cgroups the host created (those still holding a process stay). */
void cgroup_teardown(struct host *h);
static inline bool cgroup_active(const struct cgroups *cg) { return cg->workers_fd >= 0; }

/* The instance's own cgroup, created if needed (or the one its last run
 * left, empty): *fd is a descriptor of it
 * for the process's clone (the caller closes it), or -1 without cgroups.
 * 0, or -1 with errno. */
int cgroup_instance_open(struct instance *in, int *fd);
/* SIGKILLs every process in the instance's cgroup (cgroup.kill). */
void cgroup_instance_kill(struct instance *in);
/* Sends sig to every process in the instance's cgroup and the cgroups below
 * it. The number of processes signalled, or -1 without cgroups. */
int cgroup_instance_signal(const struct instance *in, int sig);
/* The instance's process was reaped: kills what is left in its cgroup.
 * true: its cgroup is empty (or there is none), kept for the next run.
 * false: the host watches cgroup.events and calls emptied(in) once the last
 * process in it is gone. The caller is worker.c, above this
 * file: it hands its own continuation rather than cgroup.c calling up. */
bool cgroup_instance_await_empty(struct instance *in, void (*emptied)(struct instance *in));
/* Stops watching and removes the instance's cgroup if it is empty (a cgroup
 * that still holds processes stays, and the next start uses it). */
void cgroup_instance_forget(struct instance *in);
/* Processes still in the instance's cgroup (0 without cgroups); *first gets one of them. */
int cgroup_instance_count(const struct instance *in, int *first);
/* CPU time used by every process of the instance's cgroup (cpu.stat
 * usage_usec) in the current run, in microseconds. 0, or -1 (no cgroups, or unreadable). */
int cgroup_instance_cpu_usec(const struct instance *in, uint64_t *usec);
/* A descriptor (O_PATH) of the instance's cgroup, to read its files from
 * (usage.c); the caller closes it. -1: no cgroups, or it has none now. */
int cgroup_instance_dir(const struct instance *in);
/* The worker is going away (reload, exit): removes its cgroups. */
void cgroup_worker_forget(struct worker *w);
/* The worker name and instance index of the instance cgroup pid is in
 * (sdnotify.c: who sent a message). 0, or -1: in none of the host's. */
int cgroup_owner_of(const struct host *h, pid_t pid, char *name, size_t size, int *index);

#endif
