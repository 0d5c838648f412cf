/*
 * jobs.h - the job dispatcher (host daemon): ties the store (jobstore.h),
 * the workers whose plugin has .job, and the producers (jobsession.c)
 * together. It hands one job at a time to an idle instance of a queue's
 * workers (round-robin, oldest job first), fails the attempt of a job whose
 * process ended or ran past job_timeout at once, retries with a doubling
 * delay, answers waiters, and activates autostart = no workers by job.
 * Event-driven: an enqueue, an instance becoming idle, a state change or the
 * retry timer at the earliest run_at; nothing runs at rest but the prune
 * timer (once a minute).
 *
 * It sits above worker.c, channel.c and dependency.c; worker.c tells it of
 * a run's end through h->run_ended, channel.c of a job's end through the
 * handler run.c registers (jobs_job_ended).
 */
#ifndef WARD_JOBS_H
#define WARD_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/host.h"
#include "daemon/jobstore.h"

struct frame_job_end;

/* Opens <state_dir>/jobs.db, fails the jobs a dead host left running
 * (host-died) and registers h->run_ended. A store that cannot be opened is
 * said once; enqueues are then refused with why, supervision goes on. */
void jobs_open(struct host *h);
void jobs_close(struct host *h);

/* run.c: before the loop sleeps (hand-offs, then the batch is committed and
 * its sync asked for); after any state change (idle instances take jobs,
 * waiters of workers that will not come are answered). */
void jobs_before_sleep(struct host *h);
void jobs_state_changed(struct host *h);
/* `sync` (control.c): the batch committed now, so a reader of jobs.db sees
 * it, and each job worker's queue figures written to ward.db (status). */
void jobs_record(struct host *h);
/* channel.c's on_job_end (registered by run.c). */
void jobs_job_ended(void *ctx, struct instance *in, const struct frame_job_end *end, const char *message,
		    const void *result, size_t result_len);

/* ---- producers (jobsession.c) ---- */

/* Told once the batch holding an enqueue is durable (err 0) or not (errno).
 * Embedded in the caller; jobs_durable_cancel() before freeing it. */
struct jobs_durable {
	void (*fn)(struct jobs_durable *d, int err);
	uint64_t batch; /* 0: the batch being built */
	struct jobs_durable *next, **prev;
};

/* Queues a job. The id (> 0; *existing: an unfinished job with that key),
 * or -1 with why ("no queue 'x'; queues: a, b", a store error). warning
 * gets "" or why it will not run soon ("worker resize is failed (...)").
 * A job for autostart = no workers not stopped by `ward stop` starts them
 * (activation job). d is told when the job is durable. */
int64_t jobs_enqueue(struct host *h, const char *queue, const void *payload, size_t len, const char *key,
		     uint64_t delay_ms, bool *existing, char *warning, size_t wsize, char *why, size_t size,
		     struct jobs_durable *d);
void jobs_durable_cancel(struct jobs_durable *d);

/* A waiter for one job's outcome. */
enum jobs_answer_kind { JOBS_DONE, JOBS_FAILED, JOBS_ERROR };
struct jobs_answer {
	enum jobs_answer_kind kind;
	int64_t id;
	const char *state;   /* JOBS_FAILED: dead, cancelled, or the worker's state (failed, stopped) */
	const char *message; /* JOBS_FAILED, JOBS_ERROR: one line */
	const void *result;  /* JOBS_DONE */
	size_t len;
};
struct jobs_waiter {
	int64_t id;
	void (*fn)(struct jobs_waiter *w, const struct jobs_answer *a); /* once; the waiter is unlinked first */
	struct jobs_waiter *next, **prev;
};
/* Answers at once (fn called before it returns) when the job is finished,
 * unknown, or its queue's workers will not come; else when it finishes. */
void jobs_wait(struct host *h, struct jobs_waiter *w);
void jobs_wait_cancel(struct jobs_waiter *w);

/* ---- control verbs, status, metrics ---- */

/* `job-retry ID` / `job-cancel ID`: "ok\n..." or "error\n..." into reply. */
void jobs_command_retry(struct host *h, int64_t id, FILE *reply);
void jobs_command_cancel(struct host *h, int64_t id, FILE *reply);
/* The ward_jobs* families (metrics.c). */
void jobs_write_metrics(struct host *h, FILE *out);
/* The queue a worker takes jobs from, or NULL when its plugin has no .job. */
const char *jobs_worker_queue(const struct worker *w);

#endif
