/*
 * worker.h - workers and their instances: the lifecycle state machine of
 * docs/lifecycle.md (one table of states x events, one function per transition), the
 * restart policy. A state changes in exactly one place, set_state(), which
 * also records it to history. Runs in the host process; the host-wide
 * structure they live in is daemon/host.h.
 *
 * worker.c calls spawn.c, cgroup.c, output.c, history.c and the other files
 * below it, never one above (docs/architecture.md has the layers). What
 * those files have to tell it comes back through the callbacks it hands
 * them (spawn_process()'s spawn_answer, cgroup_instance_await_empty()'s
 * continuation); what it has to tell the files above it, it leaves in
 * struct host for the loop (run.c) to act on: order_dirty, critical_failed.
 */
#ifndef WARD_WORKER_H
#define WARD_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "daemon/cgroup.h"
#include "config/config.h"
#include "daemon/history.h"
#include "daemon/log.h"
#include "daemon/listener.h"
#include "daemon/runtail.h"
#include "daemon/usage.h"
#include "common/loop.h"
#include "common/pmetric.h"
#include "common/proto.h"
#include "common/reason.h"
#include "daemon/spawner_client.h"

enum istate { IS_STOPPED, IS_STARTING, IS_RUNNING, IS_STOPPING, IS_BACKOFF, IS_FAILED, IS_DONE, IS_COUNT };

/* What asked for a run to start. ACTIVATION_NONE (0, false as a condition):
 * no start asked for. */
enum activation {
	ACTIVATION_NONE, ACTIVATION_BOOT, ACTIVATION_COMMAND, ACTIVATION_RESTART, ACTIVATION_DEPENDENCY,
	ACTIVATION_CONNECTION, ACTIVATION_RELOAD, ACTIVATION_JOB, ACTIVATION_COUNT
};

/* Bytes of a line or frame that a read split, kept until the next read. */
struct pending {
	char *buf; /* owned; NULL when empty */
	size_t len;
};

struct worker;
struct job_hold;

struct instance {
	struct worker *worker;
	/* The settings its process runs with (and restarts with): the worker's
	 * conf, except while a rolling reload (rollout.c) has not replaced it yet. */
	const struct worker_conf *conf;
	int index;
	enum istate state;
	pid_t pid;             /* > 0 while the run lasts: until reaped, and its cgroup is empty */
	pid_t last_pid;        /* the process that ended last, for lines written after it */
	struct watch out;      /* the process's stdout/stderr pipe */
	struct pending out_rest;
	struct run_tail *tail; /* the current run's last lines (runtail.c); NULL until it writes one */
	bool frames_ignored;   /* it sent garbage on its runtime channel */
	uint64_t channel_key;  /* the address of its process's runtime socket (channel.c); 0: none */
	int64_t job_id;        /* the job its process holds (set by the dispatcher, jobs.c); 0: none */
	struct timer timer;    /* the one deadline of the current state */
	struct spawn_job spawn_job; /* asking for its process (spawn.c) */
	const struct spawn_answer *spawn_answer; /* whom spawn.c tells what became of it (worker.c) */
	bool spawning;         /* a process was asked for and is not there yet */
	bool ready_early;      /* it said ready before the spawner named it */
	struct slot *slot;     /* shared with the process; owned by the slot pool */
	struct watch cg_events; /* its cgroup's cgroup.events while waiting for it to empty; fd -1 otherwise */
	void (*cg_emptied)(struct instance *in); /* what cgroup.c calls once it is empty (worker.c's) */
	bool cg_kept;          /* its cgroup exists, empty between runs, for the next run (cgroup.c) */
	bool cg_killed;        /* cgroup.kill was written to it: made anew after the run */
	uint64_t cg_cpu_base;  /* the cgroup's usage_usec when the current run started in it */
	bool reaped;           /* the process is reaped (pid names it no more); its cgroup is not empty yet */
	int64_t killed_ns;     /* when the host SIGKILLed it; 0: it did not */

	/* the current run */
	int64_t run;
	int64_t started_ms, ready_ms, started_ns;
	enum activation activation;
	bool stop_requested;
	enum reason kill_reason; /* why the host killed it, if it did */
	bool kill_landed;        /* that SIGKILL was delivered (not ESRCH: it had left its group) */
	bool got_end;
	struct exit_info end;    /* what the process said before exiting */
	int wait_status;         /* set just before the exit event */

	/* restart policy */
	unsigned failures;        /* failed runs in a row, each shorter than restart_window */
	unsigned restarts;        /* restarts since it was last started from outside (ward_restarts) */
	bool spawn_failing;
	struct exit_info last_exit; /* reason NONE until a process ended */
	char last_exit_text[400];   /* last_exit worded for the next process's spec (spawn.c) */

	/* progress, sampled by the host's tick */
	uint64_t seen_progress;
	int64_t progress_ns;
	uint64_t recorded_cycles;

	/* jobs (daemon/jobs.c keeps these; worker.c only reads them) */
	uint64_t run_jobs;        /* jobs its current run completed: such a run is progress (restart policy) */
	struct job_hold *job_hold; /* the job its process holds, as jobs.c keeps it; NULL: none */

	struct usage usage;       /* memory and CPU of the current run, as last read (usage.c) */
	struct pmetric_set metrics; /* the plugin's own (ward_gauge, ward_count), from its frames (channel.c) */
	/* a command worker's sd_notify (sdnotify.c) */
	char status_text[256];    /* its last STATUS=, for `ward status`; "" none */
	bool mainpid_said;        /* MAINPID= was refused in the log this run */
};

struct worker {
	struct host *host;
	const struct worker_conf *conf; /* owned by host->cfg (or an old config a reload keeps) */
	struct instance **inst; /* each owned: stable addresses while a reload adds or removes some */
	int ninst;              /* more than conf->instances while the extra ones stop (rollout.c) */
	unsigned restarts;
	struct worker_tally tally;  /* its processes that ended, for metrics (usage.c) */
	char *state_dir; /* owned */
	struct log_file log;
	enum istate recorded_state; /* what history has for the worker as a whole */
	int in_state[IS_COUNT];     /* how many instances are in each state: kept by set_state */

	/* ordering between workers (dependency.c) */
	struct worker **deps;       /* what `requires` names, resolved; owned array */
	size_t ndeps;
	struct worker **dependants; /* workers that require this one; owned array */
	size_t ndependants;
	bool stopped_on_request;    /* by `ward stop` (control.c): its jobs wait for `ward start` (jobs.c) */
	enum activation pending_start; /* of a start waiting for its dependencies; ACTIVATION_NONE: none */
	bool pending_stop;          /* stop once no dependant is active (host shutdown) */
	const struct worker *blocked_by; /* the failed dependency last reported, to say it once */

	/* sockets held for the worker (listener.c) */
	struct listener *listeners; /* owned array, one per `listen` address */
	int *listen_fds;            /* their descriptors, for the child; owned */
	size_t nlisteners;
	enum listen_mode listen_mode;
	struct timer bind_retry;    /* a socket could not be bound: the next attempt */
	int64_t bind_delay_ns, unbound_since_ns;

	/* reload (reload.c) */
	struct stat plugin_stat;            /* the plugin file when the worker was created */
	bool retiring;                      /* removed from the configuration: goes once stopped */
	const struct worker_conf *next_conf; /* changed: the settings to take once stopped */
	bool start_after_reload;
	bool drain_reported;

	/* rolling reload (rollout.c): instances whose conf is not the worker's
	 * are replaced one at a time, each new one running before the next goes */
	bool rolling;
	enum roll_phase { ROLL_PICK, ROLL_STOPPING, ROLL_STARTING } roll_phase;
	int roll_index;       /* the instance being replaced (ROLL_STOPPING, ROLL_STARTING) */
	int roll_replaced;    /* instances replaced by this rollout so far */
	/* A scale-down was undone by a later reload before its instances had
	 * stopped: those from this index up to conf->instances start again
	 * once settled (0: none; a worker has at least one instance). */
	int rejoin_from;
};


int worker_init(struct worker *w, struct host *h, const struct worker_conf *conf);
/* Creates <state_dir>/workers/NAME (again), owned by the worker's user. 0 or -1 (reported). */
int worker_make_state_dir(struct worker *w);
/* Frees what worker_init() made; its sockets are closed first (listener_close_all). */
void worker_free(struct worker *w);

/* Requests, applied to every instance of the worker. A start gives each
 * instance without a process the worker's conf; one past conf->instances
 * (stopping, to be removed) is not started. A stop ends a rolling reload:
 * what was stopped is not replaced. */
void worker_start(struct worker *w, enum activation activation);
void worker_stop(struct worker *w);
/* The same, for one instance (rollout.c). */
void instance_start(struct instance *in, enum activation activation);
void instance_stop(struct instance *in);
/* Adds instances ninst..n-1, stopped, with the worker's conf. The number
 * added (fewer when shared memory runs out, said in the host's log). */
int worker_add_instances(struct worker *w, int n);
/* Removes the last instance, which must be settled (no process, nothing pending). */
void worker_drop_last_instance(struct worker *w);
/* Escalation for a host asked twice to stop: SIGKILL every process, its group and its cgroup now. */
void worker_kill(struct worker *w);
/* SIGKILL to the instance's process, its group and its cgroup, the run to
 * end with reason why (jobs.c: job-timeout). */
void instance_kill(struct instance *in, enum reason why);
/* `ward signal`: sig to every process of the worker (its cgroups, else each
 * instance's process group). The number of instances it reached. */
int worker_signal(struct worker *w, int sig);

/* What the restart policy (docs/lifecycle.md) says after a run of ran_ms ended, a
 * failure or not. *streak is the instance's count of failed runs in a row,
 * each shorter than restart_window; it is updated. Pure: no clock, no I/O. */
struct restart_verdict {
	bool give_up;      /* max_restarts reached: the instance becomes `failed` */
	uint64_t delay_ms; /* otherwise: wait this long, then start again */
};
struct restart_verdict restart_policy(const struct worker_conf *c, unsigned *streak, uint64_t ran_ms, bool failed);

/* Events coming from the process or the host's checks. */
void instance_ready(struct instance *in);
void instance_exited(struct instance *in, int wait_status);
void instance_check_progress(struct instance *in, int64_t now);

/* Writes the worker's row (state, restarts, sockets) to history. */
void worker_record(struct worker *w);
/* Also the live figures (cycles, progress) of every instance with a process. */
void worker_record_live(struct worker *w);
/* Every instance, with a process or not (a history database created anew). */
void worker_record_all(struct worker *w);
/* The host's rows (pid, started_at, config_dir; the previous host's worker
 * table forgotten) and worker_record_all() of every worker: at boot, and
 * into a history database created anew. */
void worker_record_host(struct host *h);
const char *istate_name(enum istate s);
const char *activation_name(enum activation a); /* as history's runs.activation says it */
/* The state of that name (as istate_name() writes it); false: none (name may be NULL). */
bool istate_parse(const char *name, enum istate *out);
/* The worker's state as one word: its instances' state when they agree, else the most telling one. */
enum istate worker_state(const struct worker *w);
bool worker_is_settled(const struct worker *w); /* no process, no pending restart */
bool worker_is_active(const struct worker *w);  /* starting, running, in backoff or stopping */

#endif
