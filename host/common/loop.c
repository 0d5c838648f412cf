/*
 * loop.c - epoll plus a binary min-heap of deadlines behind one timerfd.
 *
 * The timerfd is re-armed only when the earliest deadline changes, so a host
 * with nothing due sleeps in epoll_wait with no timeout at all. Timer
 * callbacks may arm and cancel timers (their own included); watch callbacks
 * may close any watch, and reuse it at once for another descriptor: the
 * events of this wake-up still pending for it are dropped when it is
 * closed. Of one wake-up, descriptor events run before timers.
 * Runs in the host process (the only user of the loop).
 */
#define _GNU_SOURCE
#include "common/loop.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct loop {
	int epfd;
	struct watch timer_watch;
	int64_t armed_for; /* deadline the timerfd is set to; 0: disarmed */
	struct timer **heap;
	size_t n, cap;
	void (*before_sleep)(void *arg);
	void *before_sleep_arg;
	void (*before_timers)(void *arg);
	void *before_timers_arg;
	struct epoll_event *batch; /* the events of the wake-up being handled, NULL between them */
	int batch_n;
};

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->index = a + 1;
	l->heap[b]->index = b + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (l->heap[parent]->deadline <= l->heap[i]->deadline)
			break;
		heap_swap(l, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, min = i;
		if (left < l->n && l->heap[left]->deadline < l->heap[min]->deadline)
			min = left;
		if (right < l->n && l->heap[right]->deadline < l->heap[min]->deadline)
			min = right;
		if (min == i)
			return;
		heap_swap(l, i, min);
		i = min;
	}
}

/* Points the timerfd at the earliest deadline, if that changed. */
static void sync_timerfd(struct loop *l)
{
	int64_t want = l->n ? l->heap[0]->deadline : 0;
	if (want == l->armed_for)
		return;
	if (want <= 0 && l->n)
		want = 1; /* already due: fire at once */
	struct itimerspec its = {0};
	its.it_value.tv_sec = want / NS_PER_SEC;
	its.it_value.tv_nsec = want % NS_PER_SEC;
	if (timerfd_settime(l->timer_watch.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		fprintf(stderr, "ward: unable to arm the loop timer: %s\n", strerror(errno));
		return;
	}
	l->armed_for = want;
}

void timer_arm(struct loop *l, struct timer *t, int64_t deadline)
{
	if (timer_armed(t)) {
		int64_t old = t->deadline;
		t->deadline = deadline;
		if (deadline < old)
			heap_up(l, t->index - 1);
		else
			heap_down(l, t->index - 1);
	} else {
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->heap = xrealloc(l->heap, l->cap * sizeof(*l->heap));
		}
		t->deadline = deadline;
		l->heap[l->n] = t;
		t->index = ++l->n;
		heap_up(l, l->n - 1);
	}
	sync_timerfd(l);
}

void timer_cancel(struct loop *l, struct timer *t)
{
	if (!timer_armed(t))
		return;
	size_t i = t->index - 1;
	l->n--;
	if (i != l->n) {
		l->heap[i] = l->heap[l->n];
		l->heap[i]->index = i + 1;
		heap_down(l, i);
		heap_up(l, i);
	}
	t->index = 0;
	sync_timerfd(l);
}

static void run_due_timers(struct watch *w, uint32_t events)
{
	(void)events;
	struct loop *l = container_of(w, struct loop, timer_watch);
	uint64_t expirations;
	if (read(w->fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		fprintf(stderr, "ward: unable to read the loop timer: %s\n", strerror(errno));
	l->armed_for = 0; /* fired: it is no longer armed */
	int64_t now = mono_ns();
	if (l->before_timers && l->n && l->heap[0]->deadline <= now)
		l->before_timers(l->before_timers_arg);
	while (l->n && l->heap[0]->deadline <= now) {
		struct timer *t = l->heap[0];
		timer_cancel(l, t);
		t->fn(t);
	}
	sync_timerfd(l);
}

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->timer_watch.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	l->timer_watch.fn = run_due_timers;
	if (l->epfd < 0 || l->timer_watch.fd < 0 || loop_watch(l, &l->timer_watch, EPOLLIN) < 0) {
		fprintf(stderr, "ward: unable to create the event loop: %s\n", strerror(errno));
		loop_free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->timer_watch.fd >= 0)
		close(l->timer_watch.fd);
	if (l->epfd >= 0)
		close(l->epfd);
	free(l->heap);
	free(l);
}

int loop_watch(struct loop *l, struct watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev);
}

int loop_modify(struct loop *l, struct watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev);
}

/* An event already fetched for a watch that is closed or unwatched now
 * belongs to its old descriptor. A callback may give the same watch a new
 * descriptor straight away (a worker restarted at once gets a new pipe in
 * the same struct): calling it for the old event would read the new
 * descriptor, possibly before it is made non-blocking, and block the host.
 * So the event is dropped; epoll reports the new descriptor by itself. */
static void drop_pending_events(struct loop *l, const struct watch *w)
{
	for (int i = 0; l->batch && i < l->batch_n; i++)
		if (l->batch[i].data.ptr == w)
			l->batch[i].data.ptr = NULL;
}

int loop_unwatch(struct loop *l, struct watch *w)
{
	drop_pending_events(l, w);
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

void loop_close(struct loop *l, struct watch *w)
{
	if (w->fd < 0)
		return;
	drop_pending_events(l, w);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
}

void loop_before_timers(struct loop *l, void (*fn)(void *arg), void *arg)
{
	l->before_timers = fn;
	l->before_timers_arg = arg;
}

void loop_before_sleep(struct loop *l, void (*fn)(void *arg), void *arg)
{
	l->before_sleep = fn;
	l->before_sleep_arg = arg;
}

int loop_run_once(struct loop *l)
{
	struct epoll_event events[64];
	if (l->before_sleep)
		l->before_sleep(l->before_sleep_arg);
	int n = epoll_wait(l->epfd, events, (int)ARRAY_SIZE(events), -1);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	/* Descriptors first, then timers: what arrived by a deadline is seen
	 * before the deadline is judged. */
	bool timers_due = false;
	l->batch = events;
	l->batch_n = n;
	for (int i = 0; i < n; i++) {
		struct watch *w = events[i].data.ptr;
		if (!w) /* closed by an earlier callback of this batch */
			continue;
		if (w == &l->timer_watch)
			timers_due = true;
		else if (w->fd >= 0)
			w->fn(w, events[i].events);
	}
	l->batch = NULL;
	if (timers_due)
		run_due_timers(&l->timer_watch, EPOLLIN);
	return 0;
}

