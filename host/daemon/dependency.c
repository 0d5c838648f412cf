/*
 * dependency.c - start and stop ordering from `requires`. A dependency is
 * satisfied when each of its instances is running (init returned 0) or done;
 * it is broken when one of them has failed for good. settle() is idempotent
 * and cheap (one pass over the workers, none when no worker has a pending
 * start or stop or a `requires`), and runs only after a state change.
 * Host daemon only.
 */
#include "daemon/dependency.h"
#include "daemon/host.h"

#include <stdlib.h>
#include <string.h>

enum dep_status { DEP_READY, DEP_PENDING, DEP_BROKEN };

/* From the worker's counts of instances per state: O(1), however many. */
static enum dep_status dep_status(const struct worker *d)
{
	if (d->in_state[IS_FAILED])
		return DEP_BROKEN;
	return d->in_state[IS_RUNNING] + d->in_state[IS_DONE] == d->ninst ? DEP_READY : DEP_PENDING;
}

static void append(struct worker ***v, size_t *n, struct worker *w)
{
	*v = realloc(*v, (*n + 1) * sizeof(**v));
	if (!*v)
		abort();
	(*v)[(*n)++] = w;
}

static struct worker *find(struct host *h, const char *name)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (!h->workers[i]->retiring && strcmp(h->workers[i]->conf->name, name) == 0)
			return h->workers[i];
	return NULL;
}

void dependency_link(struct host *h)
{
	h->nrequiring = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		free(w->deps);
		free(w->dependants);
		w->deps = w->dependants = NULL;
		w->ndeps = w->ndependants = 0;
	}
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->retiring)
			continue;
		for (size_t k = 0; k < w->conf->requires.n; k++) {
			struct worker *d = find(h, w->conf->requires.v[k]);
			if (!d) /* config_load refuses unknown names; stay safe anyway */
				continue;
			append(&w->deps, &w->ndeps, d);
			append(&d->dependants, &d->ndependants, w);
		}
		h->nrequiring += w->ndeps > 0;
	}
}

void dependency_request_start(struct worker *w, enum activation activation)
{
	w->pending_start = activation;
	w->blocked_by = NULL;
	w->host->order_dirty = true;
	w->host->order_pending = true;
}

void dependency_request_stop_all(struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		h->workers[i]->pending_start = ACTIVATION_NONE;
		h->workers[i]->pending_stop = true;
	}
	h->order_dirty = true;
	h->order_pending = true;
}

static void note(struct worker *w, const char *event, const struct worker *d, enum host_level level,
		 const char *fmt)
{
	host_log(level, fmt, w->conf->name, d->conf->name);
	history_event(w->host->history, w->conf->name, -1, event, d->conf->name);
	worker_record(w);
}

/* A pending start: go when every dependency is ready, pull in the idle ones. */
static void try_start(struct worker *w)
{
	if (listener_unbound(w)) { /* held until listener.c has bound every socket */
		if (w->recorded_state != worker_state(w))
			worker_record(w); /* status shows it `starting`, waiting */
		return;
	}
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->state == IS_STOPPING)
			return; /* a restart: the old processes go first */
	bool ready = true;
	for (size_t k = 0; k < w->ndeps; k++) {
		struct worker *d = w->deps[k];
		enum dep_status st = dep_status(d);
		if (st == DEP_READY)
			continue;
		ready = false;
		if (st == DEP_BROKEN) {
			if (w->blocked_by != d)
				note(w, "waiting", d, HOST_WARN,
				     "[%s] waiting: it requires %s, which has failed; `ward restart` that worker to go on");
			w->blocked_by = d;
		} else if (!d->pending_start && !worker_is_active(d)) {
			dependency_request_start(d, ACTIVATION_DEPENDENCY);
		}
	}
	if (ready) {
		enum activation activation = w->pending_start;
		w->pending_start = ACTIVATION_NONE;
		w->blocked_by = NULL;
		worker_start(w, activation);
	}
}

/* A running worker whose dependency failed for good stops, and waits for it. */
static void check_broken(struct worker *w)
{
	for (size_t k = 0; k < w->ndeps; k++) {
		if (dep_status(w->deps[k]) != DEP_BROKEN)
			continue;
		note(w, "dependency-failed", w->deps[k], HOST_WARN,
		     "[%s] stopping: it requires %s, which has failed; it starts again when that worker is back");
		w->blocked_by = w->deps[k];
		worker_stop(w);
		w->pending_start = ACTIVATION_DEPENDENCY;
		w->host->order_pending = true;
		return;
	}
}

static bool dependants_active(const struct worker *w)
{
	for (size_t k = 0; k < w->ndependants; k++)
		if (!worker_is_settled(w->dependants[k]))
			return true;
	return false;
}

/* A pass acts on a worker with a pending start or stop, or one that
 * requires another: with neither anywhere (most passes, once the host is
 * up, whatever the number of workers) it has nothing to do. A start or stop
 * is only ever made pending here, which sets order_pending; a pass that
 * leaves none pending clears it. */
void dependency_settle(struct host *h)
{
	if (!h->order_pending && !h->nrequiring)
		return;
	h->order_pending = false;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->pending_stop) {
			if (!dependants_active(w)) {
				w->pending_stop = false;
				worker_stop(w);
			}
		} else if (w->pending_start) {
			try_start(w);
		} else if (w->ndeps && worker_is_active(w)) {
			check_broken(w);
		}
		if (w->pending_start || w->pending_stop)
			h->order_pending = true;
	}
}
