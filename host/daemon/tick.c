/*
 * tick.c - the progress tick: one timer for every instance, sampling each
 * running instance's progress for its watchdog. Runs in the host process.
 * It stops while nothing runs; worker.c arms it again when an instance with
 * a watchdog starts running (arm_progress_tick), so tick.c sits above
 * worker.c and worker.c never calls it.
 */
#include "daemon/tick.h"
#include "daemon/host.h"
#include "daemon/worker.h"
#include "common/util.h"

#define TICK_MAX_NS (1 * NS_PER_SEC)
#define TICK_MIN_NS (10 * NS_PER_MS)

/* The watchdog's check period: a tenth of the shortest watchdog, at most a
 * second, so detection lands within watchdog + 10% (+1 s at most) while an
 * idle host wakes at most once a second. 0 when no worker has a watchdog:
 * then an idle host does not wake at all. */
int64_t tick_period(const struct host *h)
{
	int64_t period = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		uint64_t wd = h->workers[i]->conf->watchdog_ms;
		int64_t p = (int64_t)wd * NS_PER_MS / 10;
		if (wd && (period == 0 || p < period))
			period = p;
	}
	if (period > TICK_MAX_NS)
		period = TICK_MAX_NS;
	return period && period < TICK_MIN_NS ? TICK_MIN_NS : period;
}

static void progress_tick(struct timer *t)
{
	struct host *h = container_of(t, struct host, tick_timer);
	int64_t now = mono_ns();
	int64_t next = now + h->tick_ns;
	bool any_running = false;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		for (int k = 0; k < w->ninst; k++) {
			struct instance *in = w->inst[k];
			instance_check_progress(in, now);
			uint64_t wd = in->conf->watchdog_ms;
			if (in->state != IS_RUNNING || !wd)
				continue;
			any_running = true;
			/* Wake exactly when a stalled cycle would cross its watchdog. */
			int64_t due = in->progress_ns + (int64_t)wd * NS_PER_MS;
			if (in->kill_reason == REASON_NONE && due > now && due < next)
				next = due;
		}
	}
	if (any_running)
		timer_arm(h->loop, &h->tick_timer, next);
}

void tick_init(struct host *h)
{
	h->tick_timer.fn = progress_tick;
	h->tick_ns = 0; /* until tick_period() is known, once the workers exist */
}
