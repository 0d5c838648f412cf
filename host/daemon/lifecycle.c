/*
 * lifecycle.c - the names of states and activations, and the table of
 * states x events of the worker state machine, as data. Pure: runs in the
 * host daemon (daemon/worker.c performs what it says) and in the CLI (names).
 */
#include "daemon/lifecycle.h"

#include <stddef.h>
#include <string.h>

static const char *const state_names[IS_COUNT] = {
	[IS_STOPPED] = "stopped", [IS_STARTING] = "starting", [IS_RUNNING] = "running",
	[IS_STOPPING] = "stopping", [IS_BACKOFF] = "backoff", [IS_FAILED] = "failed",
	[IS_DONE] = "done",
};

const char *istate_name(enum istate s)
{
	return (unsigned)s < IS_COUNT ? state_names[s] : "unknown";
}

bool istate_parse(const char *name, enum istate *out)
{
	for (unsigned s = 0; name && s < IS_COUNT; s++)
		if (strcmp(name, state_names[s]) == 0) {
			*out = (enum istate)s;
			return true;
		}
	return false;
}

static const char *const activation_names[ACTIVATION_COUNT] = {
	[ACTIVATION_NONE] = "none", [ACTIVATION_BOOT] = "boot", [ACTIVATION_COMMAND] = "command", [ACTIVATION_RESTART] = "restart",
	[ACTIVATION_DEPENDENCY] = "dependency", [ACTIVATION_CONNECTION] = "connection",
	[ACTIVATION_RELOAD] = "reload",
};

const char *activation_name(enum activation a)
{
	return (unsigned)a < ACTIVATION_COUNT ? activation_names[a] : "unknown";
}

static const enum action table[IS_COUNT][EV_COUNT] = {
	[IS_STOPPED]  = {[EV_START] = ACT_START_FRESH},
	[IS_STARTING] = {[EV_READY] = ACT_BECOME_READY, [EV_EXIT] = ACT_PROCESS_ENDED,
			 [EV_STOP] = ACT_TERMINATE, [EV_TIMER] = ACT_INIT_TIMED_OUT},
	[IS_RUNNING]  = {[EV_EXIT] = ACT_PROCESS_ENDED, [EV_STOP] = ACT_TERMINATE, [EV_HUNG] = ACT_HUNG},
	[IS_STOPPING] = {[EV_EXIT] = ACT_PROCESS_ENDED, [EV_TIMER] = ACT_STOP_TIMED_OUT},
	[IS_BACKOFF]  = {[EV_START] = ACT_SPAWN, [EV_STOP] = ACT_CANCEL_BACKOFF,
			 [EV_TIMER] = ACT_RESTART_AFTER_BACKOFF},
	[IS_FAILED]   = {[EV_START] = ACT_START_FRESH},
	[IS_DONE]     = {[EV_START] = ACT_START_FRESH},
};

enum action transition_for(enum istate s, enum event ev)
{
	if ((unsigned)s >= IS_COUNT || (unsigned)ev >= EV_COUNT)
		return ACT_NONE;
	return table[s][ev];
}
