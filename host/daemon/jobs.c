/*
 * jobs.c - the job dispatcher (jobs.h), in the host daemon: queues, the
 * hand-off of one job at a time to idle instances, attempts that fail with
 * the exit of the process that held them, retries, waiters, activation by
 * job, job_keep pruning, and the figures of status and metrics. Jobs live in
 * the store (jobstore.h), never in this file's memory: it keeps only what
 * the running processes hold and who waits for what.
 */
#define _GNU_SOURCE
#include "daemon/jobs.h"
#include "daemon/channel.h"
#include "daemon/dependency.h"
#include "daemon/history.h"
#include "daemon/log.h"
#include "daemon/worker.h"
#include "common/proto.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PRUNE_PERIOD_NS (60 * NS_PER_SEC) /* at most; a short job_keep prunes more often (job_keep / 10, >= 1 s) */
#define PRUNE_BATCH 1000   /* rows deleted per prune call: the loop never stalls on it */
#define PRUNE_BATCHES 10   /* per prune turn; more wait for the next minute */
#define DEFAULT_ATTEMPTS 5 /* for a job whose queue no worker takes any more (recover) */

enum finished_kind { FIN_DONE, FIN_DEAD, FIN_CANCELLED, FIN_COUNT };
static const char *const finished_names[FIN_COUNT] = {"done", "dead", "cancelled"};

/* A queue the configuration named (kept until the host ends, for its counters). */
struct queue {
	char *name;
	size_t cursor;         /* round-robin position among its workers' instances */
	bool dirty;            /* a hand-off may be possible: tried before the loop sleeps */
	int64_t next_run_at;   /* wall ms of its earliest delayed job, as last asked; 0: none */
	uint64_t finished[FIN_COUNT];
};

/* The job an instance's process holds. */
struct job_hold {
	struct jobs *jobs;
	struct instance *in;
	struct queue *q;
	int64_t id;
	int attempt;
	struct timer timeout;
	uint64_t claim_batch;  /* the store's batch its claim was written in */
	bool orphaned;         /* that batch was lost: jobs.db never heard of this attempt */
};

struct jobs {
	struct host *h;
	struct jobstore *store;
	char why_closed[512];  /* the store could not be opened (or is not yet): why */
	bool store_deferred;   /* not opened yet: no worker takes jobs */
	struct timer commit_timer; /* commits claims and finishes no enqueue waits for */
	struct queue **queues;
	size_t nqueues;
	bool dirty;            /* some queue is dirty */
	struct jobs_durable *durable; /* enqueues waiting for their batch to be durable */
	bool durable_unassigned; /* some of them wait for the batch being built */
	uint64_t last_batch;
	struct jobs_waiter *waiters;
	struct timer retry_timer; /* the earliest run_at of a delayed job */
	struct timer prune_timer;
	bool store_failing;    /* said once; recovery said once */
	uint64_t lost_seen;    /* the store's lost batches, as last put right (reconcile_lost) */
};

/* Whether the worker's plugin has .job (its probe says so). */
static bool takes_jobs(const struct worker *w)
{
	return w->conf->plugin_has_job;
}

const char *jobs_worker_queue(const struct worker *w)
{
	if (!takes_jobs(w))
		return NULL;
	return w->conf->queue ? w->conf->queue : w->conf->name;
}

/* ---- small lists (intrusive, doubly linked through prev pointers) ---- */

#define LINK(head, e)                                                                                              \
	do {                                                                                                       \
		(e)->next = *(head);                                                                               \
		if ((e)->next)                                                                                     \
			(e)->next->prev = &(e)->next;                                                              \
		(e)->prev = (head);                                                                                \
		*(head) = (e);                                                                                     \
	} while (0)
#define UNLINK(e)                                                                                                  \
	do {                                                                                                       \
		if ((e)->prev) {                                                                                   \
			*(e)->prev = (e)->next;                                                                    \
			if ((e)->next)                                                                             \
				(e)->next->prev = (e)->prev;                                                       \
		}                                                                                                  \
		(e)->next = NULL;                                                                                  \
		(e)->prev = NULL;                                                                                  \
	} while (0)

/* ---- queues ---- */

static struct queue *find_queue(struct jobs *j, const char *name)
{
	for (size_t i = 0; i < j->nqueues; i++)
		if (strcmp(j->queues[i]->name, name) == 0)
			return j->queues[i];
	return NULL;
}

static struct queue *queue_named(struct jobs *j, const char *name)
{
	struct queue *q = find_queue(j, name);
	if (q)
		return q;
	q = xcalloc(1, sizeof(*q));
	q->name = xstrdup(name);
	j->queues = xrealloc(j->queues, (j->nqueues + 1) * sizeof(*j->queues));
	j->queues[j->nqueues++] = q;
	return q;
}

static bool serves(const struct worker *w, const struct queue *q)
{
	const char *name = jobs_worker_queue(w);
	return name && strcmp(name, q->name) == 0;
}

/* A worker of the current configuration takes jobs from it. */
static bool queue_configured(const struct jobs *j, const struct queue *q)
{
	for (size_t i = 0; i < j->h->nworkers; i++)
		if (serves(j->h->workers[i], q))
			return true;
	return false;
}

static void mark_dirty(struct jobs *j, struct queue *q)
{
	q->dirty = true;
	j->dirty = true;
}

/* Queues of workers added since (a reload): known, with counters from 0. */
static void learn_queues(struct jobs *j)
{
	for (size_t i = 0; i < j->h->nworkers; i++) {
		const char *name = jobs_worker_queue(j->h->workers[i]);
		if (name)
			mark_dirty(j, queue_named(j, name));
	}
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "a, b" (sorted), or "none" when no worker takes jobs. */
static void list_queues(const struct jobs *j, char *buf, size_t size)
{
	const char **names = xcalloc(j->nqueues + 1, sizeof(*names));
	size_t n = 0, used = 0;
	for (size_t i = 0; i < j->nqueues; i++)
		if (queue_configured(j, j->queues[i]))
			names[n++] = j->queues[i]->name;
	qsort(names, n, sizeof(*names), compare_names);
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
	if (!n)
		snprintf(buf, size, "none (no worker's plugin has .job)");
	free(names);
}

/* ---- the store's errors: said once, recovery said once ---- */

static void store_failed(struct jobs *j, const char *what)
{
	if (!j->store_failing)
		host_log(HOST_ERR, "jobs.db: %s: %s; jobs wait until it works again (supervision goes on)", what,
			 j->store->ops->error(j->store));
	j->store_failing = true;
}

static void store_worked(struct jobs *j)
{
	if (j->store_failing)
		host_log(HOST_INFO, "jobs.db works again");
	j->store_failing = false;
}

/* ---- waiters ---- */

/* The worker whose state tells a waiter why its job will not run: every
 * worker of the queue is failed, or stopped by `ward stop`. NULL: one may
 * still run it. *state is "failed" or "stopped". */
static const struct worker *will_not_come(const struct jobs *j, const struct queue *q, const char **state)
{
	const struct worker *told = NULL;
	bool any = false;
	for (size_t i = 0; i < j->h->nworkers; i++) {
		const struct worker *w = j->h->workers[i];
		if (!serves(w, q))
			continue;
		any = true;
		enum istate s = worker_state(w);
		bool stopped = s == IS_STOPPED && w->stopped_on_request && !w->pending_start;
		if (s != IS_FAILED && !stopped)
			return NULL;
		if (!told || s == IS_FAILED)
			told = w;
	}
	if (!any)
		return NULL;
	*state = worker_state(told) == IS_FAILED ? "failed" : "stopped";
	return told;
}

/* "worker resize is failed (signal SIGSEGV: in init)" */
static void describe_absence(const struct worker *w, const char *state, char *buf, size_t size)
{
	const struct exit_info *last = NULL;
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->last_exit.reason != REASON_NONE &&
		    (!last || w->inst[i]->last_exit.at_ms > last->at_ms))
			last = &w->inst[i]->last_exit;
	char exit[400] = "";
	if (last)
		exit_describe(last, exit, sizeof(exit));
	if (strcmp(state, "stopped") == 0)
		snprintf(buf, size, "worker %s is stopped (by `ward stop`; `ward start %s` runs its jobs)", w->conf->name,
			 w->conf->name);
	else
		snprintf(buf, size, "worker %s is failed (%s); `ward restart %s` runs its jobs", w->conf->name,
			 last ? exit : "no exit recorded", w->conf->name);
}

static void answer(struct jobs_waiter *w, const struct jobs_answer *a)
{
	UNLINK(w);
	w->fn(w, a);
}

/* The answer for a finished job; false when it is not finished. */
static bool answer_if_finished(struct jobs *j, struct jobs_waiter *w)
{
	struct job_outcome o = {0};
	int rc = j->store->ops->outcome(j->store, w->id, &o);
	struct jobs_answer a = {.id = w->id};
	bool told = true;
	if (rc < 0) {
		a.kind = JOBS_ERROR;
		a.message = j->store->ops->error(j->store);
	} else if (rc == 0) {
		a.kind = JOBS_ERROR;
		a.message = "no such job";
	} else if (o.state == JOB_DONE) {
		a.kind = JOBS_DONE;
		a.result = o.result;
		a.len = o.result_len;
	} else if (o.state == JOB_DEAD || o.state == JOB_CANCELLED) {
		a.kind = JOBS_FAILED;
		a.state = job_state_name(o.state);
		a.message = o.last_error ? o.last_error : "";
	} else {
		told = false;
	}
	if (told)
		answer(w, &a);
	free(o.result);
	free(o.last_error);
	return told;
}

static void answer_waiters_of(struct jobs *j, int64_t id)
{
	struct jobs_waiter *ready = NULL;
	for (struct jobs_waiter *w = j->waiters, *next; w; w = next) {
		next = w->next;
		if (w->id == id) {
			UNLINK(w);
			LINK(&ready, w);
		}
	}
	while (ready) {
		struct jobs_waiter *w = ready;
		if (!answer_if_finished(j, w)) { /* not finished after all: it waits on */
			UNLINK(w);
			LINK(&j->waiters, w);
		}
	}
}

static bool answer_if_abandoned(struct jobs *j, struct jobs_waiter *w)
{
	char queue[JOB_KEY_MAX + 1];
	if (j->store->ops->queue_of(j->store, w->id, queue, sizeof(queue)) != 1)
		return false;
	struct queue *q = find_queue(j, queue);
	const char *state = "stopped";
	char why[600];
	if (!q || !queue_configured(j, q)) { /* its workers were removed by a reload */
		snprintf(why, sizeof(why), "no worker takes jobs from queue '%s' any more", queue);
		answer(w, &(struct jobs_answer){.kind = JOBS_FAILED, .id = w->id, .state = state, .message = why});
		return true;
	}
	const struct worker *absent = will_not_come(j, q, &state);
	if (!absent)
		return false;
	describe_absence(absent, state, why, sizeof(why));
	answer(w, &(struct jobs_answer){.kind = JOBS_FAILED, .id = w->id, .state = state, .message = why});
	return true;
}

void jobs_wait(struct host *h, struct jobs_waiter *w)
{
	struct jobs *j = h->jobs;
	w->next = NULL;
	w->prev = NULL;
	if (!j->store) {
		w->fn(w, &(struct jobs_answer){.kind = JOBS_ERROR, .id = w->id, .message = j->why_closed});
		return;
	}
	if (answer_if_finished(j, w) || answer_if_abandoned(j, w))
		return;
	LINK(&j->waiters, w);
}

void jobs_wait_cancel(struct jobs_waiter *w)
{
	UNLINK(w);
}

/* After a state change: waiters whose queue's workers will not come are told now. */
static void answer_abandoned(struct jobs *j)
{
	struct jobs_waiter *pass = NULL;
	while (j->waiters) { /* each moved to pass, or answered: a callback may cancel any other */
		struct jobs_waiter *w = j->waiters;
		UNLINK(w);
		LINK(&pass, w);
		answer_if_abandoned(j, w);
	}
	while (pass) {
		struct jobs_waiter *w = pass;
		UNLINK(w);
		LINK(&j->waiters, w);
	}
}

/* ---- attempts ---- */

static const struct worker_conf *conf_of_queue(const struct jobs *j, const struct queue *q)
{
	for (size_t i = 0; q && i < j->h->nworkers; i++)
		if (serves(j->h->workers[i], q))
			return j->h->workers[i]->conf;
	return NULL;
}

/* min(job_retry_delay * 2^(attempt-1), job_retry_delay_max) */
static uint64_t retry_delay(const struct worker_conf *c, int attempt)
{
	uint64_t base = c ? c->job_retry_delay_ms : 1000, max = c ? c->job_retry_delay_max_ms : 600000;
	unsigned shift = attempt > 1 ? (unsigned)(attempt - 1) : 0;
	if (shift > 40 || base > (max >> shift))
		return max;
	return base << shift;
}

static void count_finished(struct queue *q, enum finished_kind k)
{
	if (q)
		q->finished[k]++;
}

/* A failed attempt: retried after the doubling delay, or dead. */
static void fail_attempt(struct jobs *j, struct queue *q, int64_t id, int attempt, const char *reason,
			 const char *message, const char *log_tail)
{
	const struct worker_conf *c = conf_of_queue(j, q);
	int attempts = c ? c->job_attempts : DEFAULT_ATTEMPTS;
	int64_t now = wall_ms();
	struct job_attempt_end e = {.id = id, .attempt = attempt, .at_ms = now, .reason = reason,
				    .message = message, .log_tail = log_tail};
	if (attempt >= attempts) {
		e.next = JOB_NEXT_DEAD;
	} else {
		e.next = JOB_NEXT_RETRY;
		e.retry_at_ms = now + (int64_t)retry_delay(c, attempt);
	}
	if (j->store->ops->finish(j->store, &e) < 0) {
		store_failed(j, "unable to record the end of an attempt");
		return;
	}
	store_worked(j);
	if (e.next == JOB_NEXT_DEAD) {
		count_finished(q, FIN_DEAD);
		answer_waiters_of(j, id);
	}
	if (q)
		mark_dirty(j, q);
}

static void release(struct jobs *j, struct job_hold *hold)
{
	struct instance *in = hold->in;
	timer_cancel(j->h->loop, &hold->timeout);
	in->job_hold = NULL;
	in->job_id = 0;
	mark_dirty(j, hold->q);
	free(hold);
}

static void job_timed_out(struct timer *t)
{
	struct job_hold *hold = container_of(t, struct job_hold, timeout);
	struct instance *in = hold->in;
	char d[32];
	format_duration_ms(in->conf->job_timeout_ms, d, sizeof(d));
	log_printf(&in->worker->log, in->index, in->pid, "WARD", "job %lld ran past job_timeout (%s): killing the process (job-timeout)",
		   (long long)hold->id, d);
	host_log(HOST_WARN, "[%s:%d] job %lld ran past job_timeout (%s): killing the process", in->worker->conf->name,
		 in->index, (long long)hold->id, d);
	instance_kill(in, REASON_JOB_TIMEOUT);
}

static void hand_off(struct jobs *j, struct queue *q);

/* h->run_ended: the process is gone; the job it held fails with its exit. */
static void run_ended(struct instance *in, const struct exit_info *e, const char *log_tail)
{
	struct job_hold *hold = in->job_hold;
	struct jobs *j = in->worker->host->jobs;
	if (!hold || !j)
		return;
	char desc[512];
	exit_describe(e, desc, sizeof(desc));
	/* "signal SIGSEGV: in a job" goes with reason signal as "SIGSEGV: in a
	 * job": the store words an attempt "REASON: MESSAGE" */
	const char *reason = reason_name(e->reason), *message = desc;
	size_t rlen = strlen(reason);
	if (strncmp(desc, reason, rlen) == 0 && (desc[rlen] == ' ' || desc[rlen] == ':'))
		message = desc + rlen + strspn(desc + rlen, ": ");
	int64_t id = hold->id;
	int attempt = hold->attempt;
	struct queue *q = hold->q;
	bool orphaned = hold->orphaned;
	release(j, hold);
	if (!orphaned) /* else the job is queued in jobs.db, as its claim was lost */
		fail_attempt(j, q, id, attempt, reason, *message ? message : desc, log_tail);
}

void jobs_job_ended(void *ctx, struct instance *in, const struct frame_job_end *end, const char *message,
		    const void *result, size_t result_len)
{
	(void)ctx;
	struct jobs *j = in->worker->host->jobs;
	struct job_hold *hold = in->job_hold;
	if (!j || !hold || hold->id != end->id)
		return; /* not the job it holds: a confused process; its end frees the hold */
	int64_t id = hold->id;
	int attempt = hold->attempt;
	struct queue *q = hold->q;
	bool orphaned = hold->orphaned;
	in->run_jobs++;
	release(j, hold);
	/* The next job goes out before this one is recorded: the process works
	 * on it while the host writes, instead of waiting for the writes. */
	hand_off(j, q);
	if (orphaned) {
		/* Its claim was lost: jobs.db has the job queued (it runs again),
		 * and an attempt of the same number may run now. Recording this
		 * end would end that one. */
		log_printf(&in->worker->log, in->index, in->pid, "WARD",
			   "job %lld ended, but its claim was lost with a batch jobs.db could not write: this end is not"
			   " recorded, and the job runs again", (long long)id);
		return;
	}
	if (end->outcome != JOB_END_DONE) {
		char *tail = in->tail ? run_tail_copy(in->tail) : NULL;
		fail_attempt(j, q, id, attempt, "error", message && *message ? message : "the job failed", tail);
		free(tail);
		return;
	}
	struct job_attempt_end e = {.id = id, .attempt = attempt, .at_ms = wall_ms(), .next = JOB_NEXT_DONE,
				    .result = result, .result_len = result_len};
	if (j->store->ops->finish(j->store, &e) < 0) {
		store_failed(j, "unable to record a job as done");
		return;
	}
	store_worked(j);
	count_finished(q, FIN_DONE);
	answer_waiters_of(j, id);
}

/* ---- hand-off ---- */

static bool idle(const struct instance *in)
{
	return in->state == IS_RUNNING && !in->stop_requested && !in->job_hold && in->pid > 0 && !in->reaped &&
	       in->kill_reason == REASON_NONE;
}

/* Hands c to in. false: it could not be sent (the attempt is failed: the
 * job is queued again at once). */
static bool give(struct jobs *j, struct queue *q, struct instance *in, const struct job_claim *c)
{
	if (channel_send_job(in, c) < 0) {
		char why[160];
		snprintf(why, sizeof(why), "could not be handed to %s:%d: %s", in->worker->conf->name, in->index,
			 strerror(errno));
		struct job_attempt_end e = {.id = c->id, .attempt = c->attempt, .at_ms = wall_ms(),
					    .next = JOB_NEXT_RETRY, .retry_at_ms = wall_ms(), .reason = "error",
					    .message = why};
		if (j->store->ops->finish(j->store, &e) < 0)
			store_failed(j, "unable to queue a job again");
		return false;
	}
	struct job_hold *hold = xcalloc(1, sizeof(*hold));
	hold->jobs = j;
	hold->in = in;
	hold->q = q;
	hold->id = c->id;
	hold->attempt = c->attempt;
	hold->claim_batch = j->last_batch + 1; /* commit() numbers the batch being written so */
	hold->timeout.fn = job_timed_out;
	in->job_hold = hold;
	in->job_id = c->id;
	if (in->conf->job_timeout_ms)
		timer_arm(j->h->loop, &hold->timeout, mono_ns() + (int64_t)in->conf->job_timeout_ms * NS_PER_MS);
	return true;
}

/* The instances of the queue's workers, in a stable order. */
static size_t gather_instances(const struct jobs *j, const struct queue *q, struct instance ***out)
{
	size_t n = 0, cap = 0;
	struct instance **v = NULL;
	for (size_t i = 0; i < j->h->nworkers; i++) {
		struct worker *w = j->h->workers[i];
		if (!serves(w, q))
			continue;
		for (int k = 0; k < w->ninst; k++) {
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n++] = w->inst[k];
		}
	}
	*out = v;
	return n;
}

static void arm_retry_timer(struct jobs *j)
{
	int64_t earliest = 0;
	for (size_t i = 0; i < j->nqueues; i++)
		if (j->queues[i]->next_run_at && (!earliest || j->queues[i]->next_run_at < earliest))
			earliest = j->queues[i]->next_run_at;
	if (!earliest) {
		timer_cancel(j->h->loop, &j->retry_timer);
		return;
	}
	int64_t wait_ms = earliest - wall_ms();
	timer_arm(j->h->loop, &j->retry_timer, mono_ns() + (wait_ms > 0 ? wait_ms : 0) * NS_PER_MS);
}

static void retry_due(struct timer *t)
{
	struct jobs *j = container_of(t, struct jobs, retry_timer);
	int64_t now = wall_ms();
	for (size_t i = 0; i < j->nqueues; i++)
		if (j->queues[i]->next_run_at && j->queues[i]->next_run_at <= now) {
			j->queues[i]->next_run_at = 0;
			mark_dirty(j, j->queues[i]);
		}
	arm_retry_timer(j);
}

/* One pass over the queue's instances: each idle one takes the oldest
 * runnable job, starting after the one served last (round-robin). */
static void hand_off(struct jobs *j, struct queue *q)
{
	struct instance **v;
	size_t n = gather_instances(j, q, &v);
	for (size_t step = 0; step < n; step++) {
		size_t at = (q->cursor + step) % n;
		struct instance *in = v[at];
		if (!idle(in))
			continue;
		struct job_taker taker = {.worker = in->worker->conf->name, .instance = in->index, .pid = in->pid,
					  .at_ms = wall_ms()};
		struct job_claim c = {0};
		int rc = j->store->ops->claim(j->store, q->name, taker.at_ms, &taker, &c);
		if (rc < 0) {
			store_failed(j, "unable to take a job");
			break;
		}
		store_worked(j);
		if (rc == 0) { /* nothing runnable now: wake up for the earliest delayed one */
			q->next_run_at = j->store->ops->next_run_at(j->store, q->name);
			arm_retry_timer(j);
			break;
		}
		if (give(j, q, in, &c))
			q->cursor = (at + 1) % n;
		else
			q->dirty = true; /* try again at the next turn, not in a loop */
		job_claim_free(&c);
	}
	free(v);
}

static void dispatch_dirty(struct jobs *j)
{
	if (!j->dirty)
		return;
	j->dirty = false;
	for (size_t i = 0; i < j->nqueues; i++) {
		struct queue *q = j->queues[i];
		if (!q->dirty)
			continue;
		q->dirty = false;
		hand_off(j, q);
	}
	/* a send that failed leaves its queue dirty: the next turn tries again */
	for (size_t i = 0; i < j->nqueues; i++)
		j->dirty |= j->queues[i]->dirty;
}

/* ---- durability of enqueues ---- */

static void batch_synced(void *ctx, uint64_t batch, int err)
{
	struct jobs *j = ctx;
	struct jobs_durable *ready = NULL;
	for (struct jobs_durable *d = j->durable, *next; d; d = next) {
		next = d->next;
		if (d->batch && d->batch <= batch) {
			UNLINK(d);
			LINK(&ready, d);
		}
	}
	while (ready) { /* a callback may cancel any other of them: each unlinks itself */
		struct jobs_durable *d = ready;
		UNLINK(d);
		d->fn(d, err);
	}
}

void jobs_durable_cancel(struct jobs_durable *d)
{
	UNLINK(d);
}

/* The batch was lost: the claims written in it never happened, so the
 * attempts the host handed out with them are jobs.db's no more. */
static void orphan_claims_of(struct jobs *j, uint64_t batch)
{
	for (size_t i = 0; i < j->h->nworkers; i++)
		for (int k = 0; k < j->h->workers[i]->ninst; k++) {
			struct job_hold *hold = j->h->workers[i]->inst[k]->job_hold;
			if (hold && hold->claim_batch == batch)
				hold->orphaned = true;
		}
}

static void commit_and_sync(struct jobs *j)
{
	uint64_t lost = j->store->ops->lost(j->store);
	uint64_t batch = j->store->ops->commit(j->store);
	if (batch)
		j->last_batch = batch;
	if (batch && j->store->ops->lost(j->store) != lost)
		orphan_claims_of(j, batch);
	if (!j->durable_unassigned)
		return;
	j->durable_unassigned = false;
	/* Nothing committed by this host yet (an enqueue that found its key's
	 * job, written by an earlier host): that job is on disk already. */
	uint64_t upto = j->last_batch ? j->last_batch : UINT64_MAX;
	bool waiting = false;
	for (struct jobs_durable *d = j->durable; d; d = d->next)
		if (!d->batch) {
			d->batch = upto;
			waiting = true;
		}
	if (waiting && j->last_batch)
		j->store->ops->sync(j->store, j->last_batch, batch_synced, j);
	else if (waiting)
		batch_synced(j, UINT64_MAX, 0);
}

/* ---- producers ---- */

/* autostart = no workers the job's queue has, stopped and never by `ward stop`: started (activation job). */
static void activate(struct jobs *j, struct queue *q)
{
	for (size_t i = 0; !j->h->shutting_down && i < j->h->nworkers; i++) {
		struct worker *w = j->h->workers[i];
		if (!serves(w, q) || w->conf->autostart || w->stopped_on_request || w->pending_start ||
		    worker_is_active(w) || worker_state(w) != IS_STOPPED)
			continue;
		host_log(HOST_INFO, "[%s] started by a job queued for %s", w->conf->name, q->name);
		dependency_request_start(w, ACTIVATION_JOB);
		j->h->order_dirty = true;
	}
}

int64_t jobs_enqueue(struct host *h, const char *queue, const void *payload, size_t len, const char *key,
		     uint64_t delay_ms, bool *existing, char *warning, size_t wsize, char *why, size_t size,
		     struct jobs_durable *d)
{
	struct jobs *j = h->jobs;
	warning[0] = '\0';
	*existing = false;
	if (!j->store && !j->store_deferred) {
		snprintf(why, size, "%s", j->why_closed);
		return -1;
	}
	struct queue *q = find_queue(j, queue); /* none while deferred: no worker takes jobs */
	if (!q || !queue_configured(j, q)) {
		char names[1024];
		list_queues(j, names, sizeof(names));
		snprintf(why, size, "no queue '%s'; queues: %s", queue, names);
		return -1;
	}
	struct job_new job = {.queue = queue, .payload = payload, .len = len, .key = key,
			      .run_at_ms = wall_ms() + (int64_t)delay_ms};
	int64_t id = j->store->ops->enqueue(j->store, &job, existing);
	if (id < 0) {
		snprintf(why, size, "the job could not be stored: %s", j->store->ops->error(j->store));
		return -1;
	}
	const char *state = NULL;
	const struct worker *absent = will_not_come(j, q, &state);
	if (absent)
		describe_absence(absent, state, warning, wsize);
	activate(j, q);
	mark_dirty(j, q);
	d->batch = 0;
	d->next = NULL;
	d->prev = NULL;
	LINK(&j->durable, d);
	j->durable_unassigned = true;
	return id;
}

/* ---- control verbs ---- */

void jobs_command_retry(struct host *h, int64_t id, FILE *reply)
{
	struct jobs *j = h->jobs;
	int rc = j->store ? j->store->ops->retry(j->store, id, wall_ms()) : -1;
	if (rc == 0) {
		char queue[JOB_KEY_MAX + 1];
		if (j->store->ops->queue_of(j->store, id, queue, sizeof(queue)) == 1)
			mark_dirty(j, queue_named(j, queue));
		fprintf(reply, "ok\njob %lld queued again with fresh attempts\n", (long long)id);
	} else if (rc == 1) {
		fprintf(reply, "error\nno job %lld\n", (long long)id);
	} else if (rc == 2) {
		fprintf(reply, "error\njob %lld is not dead: only a dead job can be retried\n", (long long)id);
	} else {
		fprintf(reply, "error\n%s\n", j->store ? j->store->ops->error(j->store) : j->why_closed);
	}
}

void jobs_command_cancel(struct host *h, int64_t id, FILE *reply)
{
	struct jobs *j = h->jobs;
	int rc = j->store ? j->store->ops->cancel(j->store, id, wall_ms()) : -1;
	if (rc == 0) {
		char queue[JOB_KEY_MAX + 1];
		if (j->store->ops->queue_of(j->store, id, queue, sizeof(queue)) == 1)
			count_finished(queue_named(j, queue), FIN_CANCELLED);
		answer_waiters_of(j, id);
		fprintf(reply, "ok\njob %lld cancelled\n", (long long)id);
	} else if (rc == 1) {
		fprintf(reply, "error\nno job %lld\n", (long long)id);
	} else if (rc == 2) {
		fprintf(reply, "error\njob %lld is not queued: only a queued job can be cancelled\n", (long long)id);
	} else {
		fprintf(reply, "error\n%s\n", j->store ? j->store->ops->error(j->store) : j->why_closed);
	}
}

/* ---- metrics ---- */

/* A queue name as a label value: \\ and \" escaped (a name has no newline). */
static const char *label(const char *name, char *buf, size_t size)
{
	size_t o = 0;
	for (const char *p = name; *p && o + 3 < size; p++) {
		if (*p == '\\' || *p == '"')
			buf[o++] = '\\';
		buf[o++] = *p;
	}
	buf[o] = '\0';
	return buf;
}

void jobs_write_metrics(struct host *h, FILE *out)
{
	char q[2 * JOB_KEY_MAX + 4];
	struct jobs *j = h->jobs;
	size_t n = j && j->store ? j->nqueues : 0;
	struct job_queue_stats *st = xcalloc(n + 1, sizeof(*st));
	for (size_t i = 0; i < n; i++)
		if (j->store->ops->stats(j->store, j->queues[i]->name, &st[i]) < 0)
			memset(&st[i], 0, sizeof(st[i]));
	int64_t now = wall_ms();
	fputs("# HELP ward_jobs Jobs in jobs.db, by queue and state.\n# TYPE ward_jobs gauge\n", out);
	for (size_t i = 0; i < n; i++)
		for (int s = 0; s < JOB_STATE_COUNT; s++)
			fprintf(out, "ward_jobs{queue=\"%s\",state=\"%s\"} %lld\n", label(j->queues[i]->name, q, sizeof(q)),
				job_state_name((enum job_state)s), (long long)st[i].count[s]);
	fputs("# HELP ward_jobs_oldest_queued_seconds Age of the oldest runnable queued job of each queue (0: none).\n"
	      "# TYPE ward_jobs_oldest_queued_seconds gauge\n", out);
	for (size_t i = 0; i < n; i++) {
		int64_t age = st[i].oldest_queued_ms ? now - st[i].oldest_queued_ms : 0;
		fprintf(out, "ward_jobs_oldest_queued_seconds{queue=\"%s\"} %.3f\n", label(j->queues[i]->name, q, sizeof(q)),
			age > 0 ? (double)age / 1000.0 : 0.0);
	}
	fputs("# HELP ward_jobs_finished_total Jobs finished since the host started, by queue and outcome.\n"
	      "# TYPE ward_jobs_finished_total counter\n", out);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < FIN_COUNT; k++)
			fprintf(out, "ward_jobs_finished_total{queue=\"%s\",outcome=\"%s\"} %llu\n",
				label(j->queues[i]->name, q, sizeof(q)),
				finished_names[k], (unsigned long long)j->queues[i]->finished[k]);
	free(st);
}

/* ---- status ---- */

/* Jobs held by the instances of the queue's workers now. */
static int64_t running_in(const struct jobs *j, const struct queue *q)
{
	int64_t n = 0;
	for (size_t i = 0; i < j->h->nworkers; i++)
		if (serves(j->h->workers[i], q))
			for (int k = 0; k < j->h->workers[i]->ninst; k++)
				n += j->h->workers[i]->inst[k]->job_hold != NULL;
	return n;
}

void jobs_record(struct host *h)
{
	struct jobs *j = h->jobs;
	if (!j || !j->store)
		return;
	commit_and_sync(j); /* a reader of jobs.db sees what was done so far */
	for (size_t i = 0; i < j->nqueues; i++) {
		struct queue *q = j->queues[i];
		struct job_queue_stats st;
		if (!queue_configured(j, q) || j->store->ops->stats(j->store, q->name, &st) < 0)
			continue;
		int64_t running = running_in(j, q);
		for (size_t k = 0; k < h->nworkers; k++)
			if (serves(h->workers[k], q))
				history_job_queue(h->history, h->workers[k]->conf->name, q->name, st.count[JOB_QUEUED], running,
						  st.oldest_queued_ms);
	}
}

/* ---- pruning (job_keep) ---- */

static int64_t prune_period(const struct jobs *j)
{
	int64_t p = (int64_t)(j->h->cfg.job_keep_ms / 10) * NS_PER_MS;
	return p < NS_PER_SEC ? NS_PER_SEC : p > PRUNE_PERIOD_NS ? PRUNE_PERIOD_NS : p;
}

static void prune(struct timer *t)
{
	struct jobs *j = container_of(t, struct jobs, prune_timer);
	int64_t before = wall_ms() - (int64_t)j->h->cfg.job_keep_ms;
	for (int i = 0; i < PRUNE_BATCHES; i++) {
		long n = j->store->ops->prune(j->store, before, PRUNE_BATCH);
		if (n < 0) {
			store_failed(j, "unable to prune finished jobs");
			break;
		}
		if (n < PRUNE_BATCH)
			break;
	}
	timer_arm(j->h->loop, t, mono_ns() + prune_period(j));
}

/* ---- boot, the loop, shutdown ---- */

static void recovered(void *ctx, int64_t id, int attempt, const char *queue)
{
	struct jobs *j = ctx;
	fail_attempt(j, queue_named(j, queue), id, attempt, "host-died",
		     "the host that ran it died (the next host found it running)", NULL);
}

/* Whether a process of the host holds job id now. */
static bool held(const struct jobs *j, int64_t id)
{
	for (size_t i = 0; i < j->h->nworkers; i++)
		for (int k = 0; k < j->h->workers[i]->ninst; k++) {
			const struct job_hold *hold = j->h->workers[i]->inst[k]->job_hold;
			if (hold && hold->id == id)
				return true;
		}
	return false;
}

static void fail_if_let_go(void *ctx, int64_t id, int attempt, const char *queue)
{
	struct jobs *j = ctx;
	if (held(j, id))
		return;
	fail_attempt(j, queue_named(j, queue), id, attempt, "error",
		     "its end was lost with a batch jobs.db could not write (see the host's log): it runs again", NULL);
}

/* A lost batch may have held the ends of jobs the host has let go of:
 * jobs.db says they are running, and nothing would ever run them. Once the
 * store works again, those attempts fail and the jobs are queued again, as
 * a new host would find them (at least once). A lost claim leaves the job
 * queued in the file; the attempt the host handed out with it is orphaned
 * (orphan_claims_of), and its end is not recorded. */
static void reconcile_lost(struct jobs *j)
{
	uint64_t lost = j->store->ops->lost(j->store);
	if (lost == j->lost_seen || !j->store->ops->working(j->store))
		return;
	if (j->store->ops->recover(j->store, fail_if_let_go, j) < 0) {
		store_failed(j, "unable to find the jobs whose end was lost");
		return; /* tried again once the store works */
	}
	j->lost_seen = lost;
}

static void commit_due(struct timer *t);

static bool has_job_workers(const struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (jobs_worker_queue(h->workers[i]))
			return true;
	return false;
}

static void open_store(struct jobs *j)
{
	struct host *h = j->h;
	char why[400];
	j->store = jobstore_sqlite_open(h->cfg.state_dir, h->loop, why, sizeof(why));
	if (!j->store) {
		snprintf(j->why_closed, sizeof(j->why_closed), "jobs.db cannot be opened: %s", why);
		host_log(HOST_ERR, "%s; enqueues are refused (supervision goes on)", j->why_closed);
		return;
	}
	h->run_ended = run_ended;
	learn_queues(j);
	if (j->store->ops->recover(j->store, recovered, j) < 0)
		store_failed(j, "unable to recover the jobs a previous host left running");
	/* an idle host wakes for nothing else: at most once a minute (job_keep / 10, >= 1 s) */
	timer_arm(h->loop, &j->prune_timer, mono_ns() + prune_period(j));
}

/* jobs.db and its syncer process exist once a worker takes jobs: a host
 * without job workers has neither (one process fewer to account for), and
 * a reload that adds the first one opens them. */
static void open_store_when_needed(struct jobs *j)
{
	if (j->store || !j->store_deferred || !has_job_workers(j->h))
		return;
	j->store_deferred = false;
	j->why_closed[0] = '\0';
	open_store(j);
}

void jobs_open(struct host *h)
{
	struct jobs *j = xcalloc(1, sizeof(*j));
	j->h = h;
	j->retry_timer.fn = retry_due;
	j->prune_timer.fn = prune;
	j->commit_timer.fn = commit_due;
	h->jobs = j;
	j->store_deferred = true;
	snprintf(j->why_closed, sizeof(j->why_closed), "no worker takes jobs (no worker's plugin has .job)");
	open_store_when_needed(j);
}

/* An enqueue is answered only once it is durable, so a batch holding one is
 * committed (and synced) before the loop sleeps. Claims and finishes alone
 * wait up to COMMIT_AFTER_NS, so that every job ending meanwhile shares one
 * commit (one WAL write) instead of one per loop turn, which cost a third
 * of the host's time under load. A crash loses at most those few ms of
 * claims and finishes: their jobs run again, which at-least-once allows. */
#define COMMIT_AFTER_NS (5 * NS_PER_MS)

static void commit_due(struct timer *t)
{
	struct jobs *j = container_of(t, struct jobs, commit_timer);
	if (j->store)
		commit_and_sync(j);
}

void jobs_before_sleep(struct host *h)
{
	struct jobs *j = h->jobs;
	if (!j || !j->store)
		return;
	reconcile_lost(j);
	dispatch_dirty(j);
	if (j->durable_unassigned) {
		timer_cancel(h->loop, &j->commit_timer);
		commit_and_sync(j);
	} else if (j->store->ops->pending(j->store) && !timer_armed(&j->commit_timer)) {
		timer_arm(h->loop, &j->commit_timer, mono_ns() + COMMIT_AFTER_NS);
	}
}

void jobs_state_changed(struct host *h)
{
	struct jobs *j = h->jobs;
	if (j)
		open_store_when_needed(j);
	if (!j || !j->store)
		return;
	learn_queues(j); /* marks every queue with workers dirty: an instance may have become idle */
	if (j->waiters)
		answer_abandoned(j);
}

void jobs_close(struct host *h)
{
	struct jobs *j = h->jobs;
	if (!j)
		return;
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++)
			if (h->workers[i]->inst[k]->job_hold)
				release(j, h->workers[i]->inst[k]->job_hold);
	timer_cancel(h->loop, &j->retry_timer);
	timer_cancel(h->loop, &j->prune_timer);
	timer_cancel(h->loop, &j->commit_timer);
	h->run_ended = NULL;
	if (j->store)
		j->store->ops->close(j->store); /* commits and syncs what is left */
	while (j->durable) {
		struct jobs_durable *d = j->durable;
		UNLINK(d);
		d->fn(d, ECANCELED);
	}
	for (size_t i = 0; i < j->nqueues; i++) {
		free(j->queues[i]->name);
		free(j->queues[i]);
	}
	free(j->queues);
	free(j);
	h->jobs = NULL;
}
