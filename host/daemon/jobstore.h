/*
 * jobstore.h - where jobs live: the interface between the host's job
 * dispatcher (jobs.c) and a store. One implementation today,
 * jobstore_sqlite.c (<state_dir>/jobs.db); the next one (PostgreSQL, for
 * fleets of hosts) implements the same table of operations, so nothing above
 * this header knows which store it talks to. Host daemon only.
 *
 * The contract:
 *   - Every write goes into the store's current batch and is visible to the
 *     store's own reads at once. ops->commit ends the batch; the dispatcher
 *     commits before the loop sleeps when an enqueue waits for it, else
 *     within a few ms. Committing never waits for the disk.
 *   - Durability is separate and asynchronous: jobstore_sync() asks for
 *     every committed batch to reach stable storage and calls back when it
 *     has (one fsync for every enqueue that arrived meanwhile: group commit).
 *     An enqueue is answered only from that callback. The loop never waits
 *     on an fsync: the sqlite store hands it to the syncer process.
 *   - Nothing holds the queue in memory: a claim asks the store for the
 *     oldest runnable job of a queue (run_at, then id).
 *   - A failing store (disk full, database deleted or corrupt) fails the
 *     call with a message in jobstore_error(); it reports its recovery once
 *     and tries again by itself. Supervision never depends on it.
 */
#ifndef WARD_JOBSTORE_H
#define WARD_JOBSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"

#define JOB_DATA_MAX (1024 * 1024) /* payloads and results: up to 1 MiB inclusive */
#define JOB_KEY_MAX 255

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DEAD, JOB_CANCELLED, JOB_STATE_COUNT };
const char *job_state_name(enum job_state s); /* "queued", ... as SPEC §8 spells them */
int job_state_parse(const char *word);        /* enum job_state, or -1 */

struct job_new {
	const char *queue;
	const void *payload;
	size_t len;
	const char *key;   /* NULL: none */
	int64_t run_at_ms; /* wall clock; now for no delay */
};

/* A job taken for one attempt: the store marked it running and recorded the
 * attempt's start. Owned by the caller: job_claim_free(). */
struct job_claim {
	int64_t id;
	int attempt; /* 1 for the first */
	char *key;   /* NULL: none */
	void *payload;
	size_t len;
	int64_t created_ms;
};
void job_claim_free(struct job_claim *c);

/* Who takes the attempt (recorded with it, shown by `ward job ID`). */
struct job_taker {
	const char *worker;
	int instance;
	pid_t pid;
	int64_t at_ms;
};

/* How an attempt ended, and what becomes of the job. */
enum job_next { JOB_NEXT_DONE, JOB_NEXT_RETRY, JOB_NEXT_DEAD };
struct job_attempt_end {
	int64_t id;
	int attempt;
	int64_t at_ms;
	enum job_next next;
	int64_t retry_at_ms;  /* JOB_NEXT_RETRY: when it may run again */
	const char *reason;   /* NULL when done; else "error", "signal", "job-timeout", "host-died", ... */
	const char *message;  /* one line (`ward status` wording of the exit), or NULL */
	const char *log_tail; /* a failed attempt's last log lines, or NULL */
	const void *result;   /* done: the result, or NULL */
	size_t result_len;
};

/* A row of `ward jobs` / `ward job` (the CLI reads jobs.db itself; the host
 * uses these for its answers to waiters). */
struct job_outcome {
	enum job_state state;
	void *result; /* done: malloc'd, may be NULL with result_len 0 */
	size_t result_len;
	char *last_error; /* failed, dead or cancelled: malloc'd one line */
};

/* Per queue, for status and metrics. */
struct job_queue_stats {
	int64_t count[JOB_STATE_COUNT];
	int64_t oldest_queued_ms; /* created_at of the runnable queued job next in line (run_at, id); 0: none */
};

typedef void job_synced_fn(void *ctx, uint64_t batch, int err); /* err 0: durable, else errno */

struct jobstore;
struct jobstore_ops {
	/* The current batch: an id > 0 (*existing: an unfinished job with this
	 * key in this queue was found and its id returned; nothing added), or
	 * -1 (jobstore_error says why; nothing added). */
	int64_t (*enqueue)(struct jobstore *s, const struct job_new *job, bool *existing);
	/* The oldest runnable queued job (run_at <= now_ms) of queue, marked
	 * running with its attempt recorded: 1, 0 when none, -1 on error. */
	int (*claim)(struct jobstore *s, const char *queue, int64_t now_ms, const struct job_taker *taker,
		     struct job_claim *out);
	/* The earliest run_at of a queued job of queue in the future, or 0: none. */
	int64_t (*next_run_at)(struct jobstore *s, const char *queue);
	/* 0; 1: the job is not running that attempt (nothing changed: a
	 * stale end, e.g. after recover); -1: error. The attempt's row gets its
	 * end (outcome "done" or "failed"). */
	int (*finish)(struct jobstore *s, const struct job_attempt_end *end);
	/* Jobs left running by a host that died: each handed to fn (id, attempt,
	 * queue), which finishes it (reason host-died). 0 or -1. */
	int (*recover)(struct jobstore *s, void (*fn)(void *ctx, int64_t id, int attempt, const char *queue),
		       void *ctx);
	/* `ward job retry`: a dead job queued again with fresh attempts (its
	 * count starts again at 0, so the next claim is attempt 1; the old
	 * attempts' rows stay, and the new ones are numbered after them in the
	 * attempts table: `ward job ID` shows the whole life); `ward
	 * job cancel`: a queued job cancelled. 0; 1: no such job; 2: not in a
	 * state that allows it; -1: error. */
	int (*retry)(struct jobstore *s, int64_t id, int64_t now_ms);
	int (*cancel)(struct jobstore *s, int64_t id, int64_t now_ms);
	/* A finished job's outcome (for a waiter): 1 found, 0 no such job, -1 error. */
	int (*outcome)(struct jobstore *s, int64_t id, struct job_outcome *out);
	int (*queue_of)(struct jobstore *s, int64_t id, char *queue, size_t size); /* 1, 0, -1 */
	int (*stats)(struct jobstore *s, const char *queue, struct job_queue_stats *out);
	/* Deletes at most limit jobs finished before before_ms: how many, or -1. */
	long (*prune)(struct jobstore *s, int64_t before_ms, long limit);
	/* Whether the current batch holds writes a commit would end. */
	bool (*pending)(struct jobstore *s);
	/* Ends the current batch: its number (0 when it was empty). */
	uint64_t (*commit)(struct jobstore *s);
	/* fn(ctx, batch, err) once every batch up to `batch` is on stable
	 * storage; err: an errno when the batch was lost (disk full, file
	 * corrupt; ENOENT: the file was deleted or replaced while the batch
	 * was written into it: none of its writes happened) or the sync failed
	 * (jobstore_error says why). Called before sync returns when that is
	 * known already (batch 0, already durable, or lost). */
	void (*sync)(struct jobstore *s, uint64_t batch, job_synced_fn *fn, void *ctx);
	/* Batches lost since the store was opened, and whether its last write
	 * and commit worked: a lost batch may have held the ends of jobs the
	 * host let go of, which the file still says are running (jobs.c puts
	 * that right once the store works again). */
	uint64_t (*lost)(struct jobstore *s);
	bool (*working)(struct jobstore *s);
	const char *(*error)(struct jobstore *s); /* why the last call failed */
	void (*close)(struct jobstore *s);        /* commits and syncs what is left first */
};

struct jobstore {
	const struct jobstore_ops *ops;
};

/* <state_dir>/jobs.db (mode 0600, WAL), its fsyncs done by a syncer process
 * the store starts and watches in loop. NULL with why filled. */
struct jobstore *jobstore_sqlite_open(const char *state_dir, struct loop *loop, char *why, size_t why_size);

/* What the sqlite store did, for tests and metrics. */
struct jobstore_sqlite_counters {
	uint64_t syncs;           /* SYNC answers from the syncer */
	uint64_t sync_requests;   /* SYNC requests sent (resends after a syncer death included) */
	uint64_t syncer_restarts;
	pid_t syncer_pid;         /* 0 while none runs */
	uint64_t batches;         /* numbered by commit */
	uint64_t durable;         /* every batch up to this one is on stable storage */
};
void jobstore_sqlite_counters(struct jobstore *s, struct jobstore_sqlite_counters *out);

#endif
