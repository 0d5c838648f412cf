/*
 * reaper.h - reaping the host's children, and killing what a dead worker or
 * a failed spawner request left behind (host process). run.c calls
 * reaper_reap() on SIGCHLD; spawner/spawner.c and probe.c still call
 * host_kill_strays() and host_recheck_children() directly, which are to
 * become callbacks the spawner's client is handed at boot (names kept).
 */
#ifndef WARD_REAPER_H
#define WARD_REAPER_H

#include <stdint.h>

struct host;

/* SIGCHLD: reaps every child that has ended. A worker's process is killed
 * with what is left of its group first and handed to instance_exited(); a
 * probe's to probe_reaped(), the spawner's to spawner_reaped(). */
void reaper_reap(struct host *h);
/* After the spawner failed with requests sent since sent_ns (mono_ns())
 * unanswered: SIGKILLs children of the host it may have forked without
 * telling (cgroups: none needed, each instance's cgroup is killed). */
void host_kill_strays(struct host *h, int64_t sent_ns);
void host_recheck_children(struct host *h); /* reaps what had to wait for the spawner's answers */

#endif
