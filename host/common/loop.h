/*
 * loop.h - the host's one event loop: descriptors watched with epoll, and
 * deadlines kept in one ordered heap behind a single timerfd, so the loop
 * sleeps until the earliest deadline and never ticks on its own. Runs in the
 * host daemon, and in the CLI while `ward check` waits for its probes
 * (daemon/probe.c); called from one thread only.
 */
#ifndef WARD_LOOP_H
#define WARD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

/* Embedded in its owner. fn runs for every readiness event; it must tolerate
 * a spurious call (read returning EAGAIN). */
struct watch {
	int fd;
	void (*fn)(struct watch *w, uint32_t events);
};

/* Embedded in its owner; zero-initialised means not armed. */
struct timer {
	int64_t deadline; /* CLOCK_MONOTONIC ns */
	size_t index;     /* position in the heap + 1; 0 when not armed */
	void (*fn)(struct timer *t);
};

struct loop *loop_new(void);
void loop_free(struct loop *loop);

int loop_watch(struct loop *loop, struct watch *w, uint32_t events);
/* Changes the events watched for w. 0 or -1. */
int loop_modify(struct loop *loop, struct watch *w, uint32_t events);
/* Stops watching w->fd without closing it. 0 or -1. */
int loop_unwatch(struct loop *loop, struct watch *w);
/* Stops watching and closes w->fd; w->fd becomes -1. */
void loop_close(struct loop *loop, struct watch *w);

void timer_arm(struct loop *loop, struct timer *t, int64_t deadline);
void timer_cancel(struct loop *loop, struct timer *t);
static inline bool timer_armed(const struct timer *t) { return t->index != 0; }

/* fn(arg) runs before the timers that are due, once per wake-up that has
 * some: the host reads every frame sent so far there, so no timer handler
 * judges a deadline without what arrived before it. NULL: none. */
void loop_before_timers(struct loop *loop, void (*fn)(void *arg), void *arg);

/* fn(arg) runs each time the loop is about to sleep, after every callback
 * of the last wake-up (as redis's beforesleep): work that changes marked
 * "dirty" is acted on once, wherever the change was made. NULL: none. */
void loop_before_sleep(struct loop *loop, void (*fn)(void *arg), void *arg);

/* Waits for the next events or deadline and dispatches them. 0 or -1. */
int loop_run_once(struct loop *loop);

#endif
