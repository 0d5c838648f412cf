/*
 * counter.c - benchmark plugin: empty cycles. Each returns WARD_OK until
 * `cycles` have run, then WARD_DONE; the runtime's per-cycle cost is what
 * remains when the plugin does nothing.
 */
#include <ward.h>

struct counter {
	long left;
};

static struct counter the_counter; /* one process, one counter */

static int counter_init(ward_ctx *ctx, void **state)
{
	the_counter.left = ward_conf_int(ctx, "cycles", 100000000);
	*state = &the_counter;
	return 0;
}

static int counter_cycle(ward_ctx *ctx, void *state)
{
	(void)ctx;
	struct counter *c = state;
	return --c->left > 0 ? WARD_OK : WARD_DONE;
}

WARD_PLUGIN(.name = "counter", .version = "1.0", .init = counter_init, .cycle = counter_cycle);
