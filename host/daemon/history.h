/*
 * history.h - the host's record in SQLite (<state_dir>/ward.db): every run of
 * every worker instance with how it ended (a failed one with the last lines
 * its process wrote), every lifecycle event, and the latest state of each
 * worker for `ward status`. Writes are queued and
 * committed in one transaction per batch, so the event loop never waits on
 * the disk; a database error is reported once, the queue is kept (bounded),
 * and writing resumes by itself when the database works again.
 *
 * At its first commit a host closes the runs that a host that died left
 * open (reason host-died). The database and its -wal and -shm are mode 0600.
 */
#ifndef WARD_HISTORY_H
#define WARD_HISTORY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/reason.h"

struct history;

/* Never fails: when the database cannot be opened the error is reported and
 * opening is retried at each flush. */
struct history *history_open(const char *path, long keep_runs);
void history_close(struct history *h); /* flushes first */

int64_t history_begin(struct history *h, const char *worker, int instance, pid_t pid,
		      int64_t started_ms, const char *activation);
void history_ready(struct history *h, int64_t run, int64_t ready_ms, int64_t init_ms);
/* log: the last lines the run's process wrote, joined by newlines (runtail.h), or NULL. */
void history_end(struct history *h, int64_t run, const struct exit_info *e, uint64_t cycles,
		 int64_t last_cycle_ms, const char *log);
void history_event(struct history *h, const char *worker, int instance, const char *event,
		   const char *detail);
/* listen: the worker's sockets, comma-separated, or NULL; on_demand: what the
 * host does with them now ("waiting for a connection", "closing connections") or NULL. */
/* The queue a job worker takes jobs from, and its figures now (jobs.c, at a sync). */
void history_job_queue(struct history *h, const char *worker, const char *queue, int64_t queued, int64_t running,
		       int64_t oldest_queued_ms);
void history_worker_state(struct history *h, const char *worker, const char *plugin,
			  const char *state, int instances, unsigned restarts, const char *listen,
			  const char *on_demand);
/* One row of the instances table: what `ward status` shows per instance. */
struct instance_row {
	const char *worker;
	int instance;
	pid_t pid;            /* 0: no process */
	const char *state;
	int64_t started_ms, ready_ms; /* wall clock; 0: unknown */
	uint64_t cycles;
	int64_t init_ms;      /* -1: init has not returned */
	int64_t last_cycle_ms;
	int64_t progress_ms;  /* wall clock of the last progress seen; 0: none yet */
};
void history_instance_state(struct history *h, const struct instance_row *row);
/* The memory and CPU time of an instance's process now (usage.c), for `ward status`. */
void history_instance_usage(struct history *h, const char *worker, int instance, uint64_t rss_bytes,
			    uint64_t cpu_usec);
void history_host(struct history *h, const char *key, const char *value);
/* Removes a worker from the state tables (a reload removed or rebuilt it); its runs stay. */
void history_forget_worker(struct history *h, const char *worker);
/* Removes one instance's row (a reload lowered `instances`); its runs stay. */
void history_forget_instance(struct history *h, const char *worker, int instance);
/* Forgets the previous host's worker table (at boot). */
void history_reset_states(struct history *h);

/* True once after the database file was created again (it had been deleted):
 * the caller should record the live state anew. */
bool history_take_recreated(struct history *h);
/* The file at the path is gone or another one: opens the path anew (quiet:
 * the caller reports the loss itself). True when it did. */
bool history_reopen_if_replaced(struct history *h, bool quiet);
/* True while writes fail (or find the database locked); *since_ms: when the database was last written (or
 * opened), *why: what the database said. */
bool history_stale(const struct history *h, int64_t *since_ms, const char **why);
void history_set_keep(struct history *h, long keep_runs);
/* Something is queued (or the previous host's runs are still to close):
 * a flush is due. The host checks it before its loop sleeps. */
bool history_dirty(const struct history *h);
/* The last write found the database locked by someone else, for less time
 * than is reported: worth retrying soon rather than at the failure pace. */
bool history_contended(const struct history *h);
/* Commits everything queued. 0, or -1 when it must be retried later. */
int history_flush(struct history *h);

#endif
