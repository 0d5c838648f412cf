/*
 * lifecycle.c - the worker state table (after s6-supervise) as pure data.
 * Runs in the host; daemon/worker.c performs the actions.
 */
#include "daemon/lifecycle.h"

#define S(a, n) {.action = (a), .next = (n)}

static const struct step table[IS_COUNT][EV_COUNT] = {
	[IS_STOPPED]  = {[EV_START] = S(ACT_START_FRESH, IS_STARTING)},
	[IS_STARTING] = {[EV_READY] = S(ACT_BECOME_READY, IS_RUNNING), [EV_EXIT] = S(ACT_END_RUN, IS_COUNT),
			 [EV_STOP] = S(ACT_TERMINATE, IS_STOPPING), [EV_TIMER] = S(ACT_INIT_TIMED_OUT, IS_STARTING)},
	[IS_RUNNING]  = {[EV_EXIT] = S(ACT_END_RUN, IS_COUNT), [EV_STOP] = S(ACT_TERMINATE, IS_STOPPING),
			 [EV_HUNG] = S(ACT_HUNG, IS_RUNNING)},
	[IS_STOPPING] = {[EV_EXIT] = S(ACT_END_RUN, IS_COUNT), [EV_TIMER] = S(ACT_STOP_TIMED_OUT, IS_STOPPING)},
	[IS_BACKOFF]  = {[EV_START] = S(ACT_SPAWN, IS_STARTING), [EV_STOP] = S(ACT_CANCEL_BACKOFF, IS_STOPPED),
			 [EV_TIMER] = S(ACT_RESTART, IS_STARTING)},
	[IS_FAILED]   = {[EV_START] = S(ACT_START_FRESH, IS_STARTING)},
	[IS_DONE]     = {[EV_START] = S(ACT_START_FRESH, IS_STARTING)},
};

struct step lifecycle_step(enum istate state, enum event ev)
{
	if ((unsigned)state >= IS_COUNT || (unsigned)ev >= EV_COUNT)
		return (struct step){ACT_NONE, state};
	struct step s = table[state][ev];
	if (s.action == ACT_NONE)
		s.next = state;
	return s;
}
