/*
 * host.h - the host-wide structure (host process): the configuration, the
 * loop, history, the worker table and the parts of the host each subsystem
 * keeps here. How the host boots and runs is daemon/run.h.
 */
#ifndef WARD_HOST_H
#define WARD_HOST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "common/loop.h"
#include "daemon/cgroup.h"
#include "daemon/spawner_client.h"

struct worker;
struct history;
struct host_observer;
struct frame_channel;
struct reload;
struct http;
struct instance;
struct jobs;
struct exit_info;

struct host {
	struct config cfg;
	struct loop *loop;
	struct history *history;
	struct worker **workers; /* each owned; stable addresses (reload adds and removes) */
	size_t nworkers;
	pid_t pid;
	bool shutting_down;
	bool critical_failed;    /* a `critical = yes` worker became failed: stop, exit 3 (set by
				  * worker.c; run.c's loop acts on it, after the event) */
	bool ended_failed;       /* exit_when_done ended the host with a worker failed: exit 3 */
	bool order_dirty;        /* a state changed: dependency ordering may have work to do (set by
				  * worker.c and the files above it; run.c's loop settles) */
	size_t nstarting;        /* instances in IS_STARTING, of every worker: kept by set_state */
	bool ready_told;         /* systemd was told READY=1 */
	bool boot_over;          /* every worker started at boot has left starting, once (/readyz) */
	char told_status[128];   /* the last STATUS= sent */
	struct timer notify_timer; /* WATCHDOG=1 for systemd, when it asks for it */
	struct timer test_timer;   /* `ward test --timeout` */
	int64_t notify_period;
	struct timer flush_timer;
	struct timer tick_timer; /* tick.c's; worker.c arms it when an instance starts running */
	int64_t tick_ns;         /* period of the progress check; 0: none needed */
	const struct host_observer *test; /* `ward test` watching the run (observer.h), else NULL */
	struct config **old_configs; /* replaced by reloads, kept while a worker refers to them */
	size_t nold;
	char scratch[64 * 1024]; /* read buffer shared by every pipe */
	struct frame_channel *channel; /* the runtime channel, once opened (channel.c) */
	bool booting;            /* the plugins are being probed: no worker exists yet */
	struct reload *reload;   /* a reload waiting for its plugins' verdicts (reload.c) */
	bool reload_waiting;     /* a worker is retiring, waits to take its next_conf (reload.c), or
				  * has a rollout under way (rollout.c) */
	bool order_pending;      /* a worker may have a pending start or stop (dependency.c) */
	size_t nrequiring;       /* workers with a `requires` (dependency.c) */
	size_t nlistening;       /* workers holding `listen` sockets (listener.c) */
	/* A connection came on a socket of a worker that has no process:
	 * listener.c calls this to start it. Set by run.c at boot, before any
	 * socket is opened: the start is asked of dependency.c, which sits
	 * above listener.c (it waits for the sockets to be bound). */
	void (*connection_starts)(struct worker *w);
	/* A run of an instance ended (its exit e, and a failed run's last log
	 * lines or NULL), before the restart policy acts on it: jobs.c fails the
	 * job the process held. Set by jobs.c; NULL: no one listens. */
	void (*run_ended)(struct instance *in, const struct exit_info *e, const char *log_tail);
	struct jobs *jobs;       /* the job dispatcher (jobs.c), or NULL */
	struct spawner spawner;
	struct cgroups cgroups;  /* the instances' cgroups (cgroup.c) */
	struct http *http;       /* the [ward] http endpoint (http.c), or NULL */
};

#endif
