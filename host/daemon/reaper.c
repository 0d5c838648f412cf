/*
 * reaper.c - reaping the host's children (host process): worker processes,
 * probes, the spawner, and strays re-parented to the host.
 *
 * Children are reaped with waitid(WNOWAIT) first, so the dead leader's pid
 * still names its process group and session while the host kills what is
 * left of the worker: a pid can not be reused under us. With cgroups that is
 * the instance's cgroup (cgroup.c), whatever its processes did. Without, the
 * host is a child subreaper: a worker's descendants whose parent died are
 * re-parented here, and those still in the dead worker's session or process
 * group are killed with it. Any other child of the host (another worker's
 * helper, an orphan re-parented to a host that is PID 1) is only reaped.
 */
#define _GNU_SOURCE
#include "daemon/reaper.h"
#include "daemon/cgroup.h"
#include "daemon/host.h"
#include "daemon/channel.h"
#include "daemon/pipes.h"
#include "daemon/pidtable.h"
#include "daemon/probe.h"
#include "daemon/usage.h"
#include "daemon/worker.h"
#include "spawner/spawner.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Children of the host that are no instance's process nor the spawner:
 * processes re-parented to it. Their pids stay theirs until the host reaps
 * them. Returns how many fit in pids. */
static size_t strays(struct host *h, pid_t *pids, size_t max)
{
	FILE *f = fopen("/proc/thread-self/children", "re");
	size_t n = 0;
	int pid;
	while (f && n < max && fscanf(f, "%d", &pid) == 1)
		if (pid > 0 && !pidtable_find(pid) && !spawner_is(h, pid) && !probe_owns(pid))
			pids[n++] = pid;
	if (f)
		fclose(f);
	return n;
}

/* Without cgroups: a worker leader died (still a zombie, so its pid names
 * its session and group): kills the host's strays that are in either. */
static void kill_strays_of(struct host *h, pid_t leader)
{
	pid_t pids[4096];
	size_t n = strays(h, pids, ARRAY_SIZE(pids));
	for (size_t i = 0; i < n; i++)
		if (getsid(pids[i]) == leader || getpgid(pids[i]) == leader)
			kill(pids[i], SIGKILL);
}

/* When the process started, in ns of CLOCK_BOOTTIME; -1 if unknown. */
static int64_t start_time_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	size_t len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[len] = '\0';
	char *end = strrchr(buf, ')');
	unsigned long long ticks;
	if (!end || sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			   &ticks) != 1)
		return -1;
	return (int64_t)(ticks * (NS_PER_SEC / sysconf(_SC_CLK_TCK)));
}

/* The spawner failed in a request sent at sent_ns: it may have cloned the
 * process (the host's child, through CLONE_PARENT) without telling. With
 * cgroups the instance's cgroup is killed instead (spawn.c). Without, the
 * candidates are strays started since the request that are in no live
 * worker's session: a worker's helper is in its worker's session. */
void host_kill_strays(struct host *h, int64_t sent_ns)
{
	if (cgroup_active(&h->cgroups))
		return;
	struct timespec boot;
	clock_gettime(CLOCK_BOOTTIME, &boot);
	int64_t since = (int64_t)boot.tv_sec * NS_PER_SEC + boot.tv_nsec - (mono_ns() - sent_ns);
	int64_t tick = NS_PER_SEC / sysconf(_SC_CLK_TCK);
	pid_t pids[4096];
	size_t n = strays(h, pids, ARRAY_SIZE(pids));
	for (size_t i = 0; i < n; i++) {
		int64_t started = start_time_ns(pids[i]);
		if (started >= 0 && started + tick >= since && !pidtable_find(getsid(pids[i])))
			kill(pids[i], SIGKILL);
	}
}

void reaper_reap(struct host *h)
{
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left */
		}
		pid_t pid = si.si_pid;
		if (pid == 0)
			break;
		if (!pidtable_find(pid) && !spawner_is(h, pid) && !probe_owns(pid) && spawner_unanswered(h)) {
			/* Perhaps a process the spawner forked and has not named yet:
			 * it stays a zombie (its pid not reused) until it has. */
			spawner_recheck_children_later(h);
			break;
		}
		struct instance *in = pidtable_find(pid);
		/* The leader is a zombie, so its pid still names its group and
		 * session: kill what is left of the worker before reaping, then
		 * nothing of it outlives it. Its last frames are read while its pid
		 * still names it, too. */
		if (in) {
			kill(-pid, SIGKILL);
			if (!cgroup_active(&h->cgroups))
				kill_strays_of(h, pid); /* with cgroups: its cgroup, once reaped */
			channel_read_frames(h);
		}
		int status;
		struct rusage ru;
		while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
			;
		if (in) {
			usage_reaped(in, &ru);
			pipe_drain(in);
			channel_forget(in);
			instance_exited(in, status);
		} else if (!probe_reaped(pid, status)) {
			spawner_reaped(h, pid, status); /* or a stray: nothing more to do */
		}
	}
}

/* A child that died while the spawner's answers were awaited is reaped
 * now. Strays are never killed here: one belongs to the worker it came
 * from, and only that worker's end kills it (reaper_reap). */
void host_recheck_children(struct host *h)
{
	reaper_reap(h);
}
