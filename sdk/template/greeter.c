/*
 * greeter - a minimal ward plugin to start from. It says hello `count` times
 * (one greeting per cycle, `interval` apart) and then finishes for good.
 * Rename it, keep the shape: per-process state in init, one unit of work per
 * cycle, everything released in shutdown, options declared as data.
 */
#include <ward.h>

#include <stdlib.h>

struct greeter {
	const char *greeting;
	long left;
};

static int greeter_init(ward_ctx *ctx, void **state)
{
	struct greeter *g = malloc(sizeof(*g));
	if (!g)
		return -1;
	g->greeting = ward_conf(ctx, "greeting"); /* its declared default when unset */
	g->left = ward_conf_int(ctx, "count", 3);
	*state = g;
	return 0;
}

static int greeter_cycle(ward_ctx *ctx, void *state)
{
	struct greeter *g = state;
	if (g->left-- <= 0)
		return WARD_DONE;
	ward_log(ctx, WARD_LOG_INFO, "%s from %s:%d", g->greeting, ward_name(ctx), ward_instance(ctx));
	/* `ward metrics` shows it as ward_plugin_greetings_total{worker="...",instance="0"} */
	ward_count(ctx, "greetings_total", 1);
	return WARD_IDLE; /* the next greeting after `interval` */
}

static void greeter_shutdown(ward_ctx *ctx, void *state)
{
	(void)ctx;
	free(state);
}

static const struct ward_option greeter_options[] = {
	{"greeting", WARD_OPT_STRING, "hello", 0, "what to say", NULL},
	{"count", WARD_OPT_INT, "3", 0, "how many times, then finish", NULL},
	{0},
};

WARD_PLUGIN(.name = "greeter", .version = "0.1.0", .description = "says hello a few times, then finishes",
	    .init = greeter_init, .cycle = greeter_cycle, .shutdown = greeter_shutdown, .options = greeter_options);
