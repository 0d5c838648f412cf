/*
 * countdown - a worker that finishes for good: `count` steps of work, `step`
 * apart, then WARD_DONE. Shows WARD_OK vs WARD_DONE and how ward_sleep()
 * keeps a waiting worker responsive to stop requests.
 */
#include <ward.h>

#include <stdlib.h>

struct countdown {
	long count; /* steps to do in total */
	long done;  /* steps done so far by this process */
};

static int countdown_init(ward_ctx *ctx, void **state)
{
	struct countdown *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ward_log(ctx, WARD_LOG_ERROR, "out of memory");
		return -1;
	}
	c->count = ward_conf_int(ctx, "count", 5);
	*state = c;
	return 0;
}

static int countdown_cycle(ward_ctx *ctx, void *state)
{
	struct countdown *c = state;

	if (c->done >= c->count) {
		/* WARD_DONE: shutdown runs, the process exits 0, and the host
		 * records `done` and does not restart it (under the default
		 * restart = on-failure). Use it for one-shot jobs. */
		ward_log(ctx, WARD_LOG_INFO, "lift-off after %ld steps", c->done);
		return WARD_DONE;
	}

	c->done++;
	ward_log(ctx, WARD_LOG_INFO, "step %ld of %ld (%ld to go)", c->done, c->count,
		 c->count - c->done);

	/*
	 * Wait between steps with ward_sleep(), never sleep(): it wakes within
	 * milliseconds when a stop is requested, and it counts as a heartbeat,
	 * so a long `step` does not trip the watchdog.
	 *
	 * When it returns nonzero a stop was requested. We need not act on it:
	 * the runtime checks for a stop after every cycle and runs shutdown
	 * instead of cycling again. Just finish the cycle normally.
	 */
	(void)ward_sleep(ctx, ward_conf_ms(ctx, "step", 500));

	/* WARD_OK: "did work" - the next cycle starts at once, with no
	 * `interval` wait in between. */
	return WARD_OK;
}

static void countdown_shutdown(ward_ctx *ctx, void *state)
{
	(void)ctx;
	free(state);
}

static const struct ward_option countdown_options[] = {
	{"count", WARD_OPT_INT, "5", 0, "number of steps before finishing", NULL},
	{"step", WARD_OPT_DURATION, "500ms", 0, "pause after each step", NULL},
	{0},
};

WARD_PLUGIN(.name = "countdown", .version = "1.0.0",
	    .description = "counts down a few steps, then finishes for good",
	    .init = countdown_init, .cycle = countdown_cycle,
	    .shutdown = countdown_shutdown, .options = countdown_options);
