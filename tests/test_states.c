/*
 * test_states.c - the worker state table alone (daemon/lifecycle.c): every
 * (state, event) pair, pure, nothing forked.
 */
#include "daemon/lifecycle.h"

#include <criterion/criterion.h>

struct expect {
	enum istate state;
	enum event ev;
	enum action action;
	enum istate next;
};

static const struct expect defined[] = {
	{IS_STOPPED, EV_START, ACT_START_FRESH, IS_STARTING},
	{IS_STARTING, EV_READY, ACT_BECOME_READY, IS_RUNNING},
	{IS_STARTING, EV_EXIT, ACT_END_RUN, IS_COUNT},
	{IS_STARTING, EV_STOP, ACT_TERMINATE, IS_STOPPING},
	{IS_STARTING, EV_TIMER, ACT_INIT_TIMED_OUT, IS_STARTING},
	{IS_RUNNING, EV_EXIT, ACT_END_RUN, IS_COUNT},
	{IS_RUNNING, EV_STOP, ACT_TERMINATE, IS_STOPPING},
	{IS_RUNNING, EV_HUNG, ACT_HUNG, IS_RUNNING},
	{IS_STOPPING, EV_EXIT, ACT_END_RUN, IS_COUNT},
	{IS_STOPPING, EV_TIMER, ACT_STOP_TIMED_OUT, IS_STOPPING},
	{IS_BACKOFF, EV_START, ACT_SPAWN, IS_STARTING},
	{IS_BACKOFF, EV_STOP, ACT_CANCEL_BACKOFF, IS_STOPPED},
	{IS_BACKOFF, EV_TIMER, ACT_RESTART, IS_STARTING},
	{IS_FAILED, EV_START, ACT_START_FRESH, IS_STARTING},
	{IS_DONE, EV_START, ACT_START_FRESH, IS_STARTING},
};

static const struct expect *find(enum istate s, enum event ev)
{
	for (size_t i = 0; i < sizeof(defined) / sizeof(defined[0]); i++)
		if (defined[i].state == s && defined[i].ev == ev)
			return &defined[i];
	return NULL;
}

Test(states, every_defined_pair_gives_its_action_and_next_state)
{
	for (size_t i = 0; i < sizeof(defined) / sizeof(defined[0]); i++) {
		struct step st = lifecycle_step(defined[i].state, defined[i].ev);
		cr_expect_eq(st.action, defined[i].action, "%s ev %d", istate_name(defined[i].state), defined[i].ev);
		cr_expect_eq(st.next, defined[i].next, "%s ev %d", istate_name(defined[i].state), defined[i].ev);
	}
}

Test(states, every_undefined_pair_does_nothing_and_keeps_the_state)
{
	int undefined = 0;
	for (int s = 0; s < IS_COUNT; s++)
		for (int ev = 0; ev < EV_COUNT; ev++) {
			if (find((enum istate)s, (enum event)ev))
				continue;
			undefined++;
			struct step st = lifecycle_step((enum istate)s, (enum event)ev);
			cr_expect_eq(st.action, ACT_NONE, "%s ev %d", istate_name((enum istate)s), ev);
			cr_expect_eq(st.next, (enum istate)s, "%s ev %d", istate_name((enum istate)s), ev);
		}
	cr_expect_eq(undefined, IS_COUNT * EV_COUNT - 15);
}

Test(states, the_names_of_states_are_those_of_history_and_status)
{
	static const char *const names[IS_COUNT] = {"stopped", "starting", "running", "stopping",
						    "backoff", "failed", "done"};
	for (int s = 0; s < IS_COUNT; s++)
		cr_expect_str_eq(istate_name((enum istate)s), names[s]);
	cr_expect_str_eq(istate_name(IS_COUNT), "unknown");
}

/* `ward status` reads the names back (to colour them): every name parses to
 * its state, anything else to none. */
Test(states, a_state_name_read_back_gives_its_state)
{
	for (int s = 0; s < IS_COUNT; s++) {
		enum istate back = IS_COUNT;
		cr_expect(istate_parse(istate_name((enum istate)s), &back), "%s", istate_name((enum istate)s));
		cr_expect_eq(back, (enum istate)s, "%s read back as %d", istate_name((enum istate)s), back);
	}
	enum istate untouched = IS_RUNNING;
	cr_expect_not(istate_parse("Running", &untouched));
	cr_expect_not(istate_parse("unknown", &untouched));
	cr_expect_not(istate_parse("", &untouched));
	cr_expect_not(istate_parse(NULL, &untouched));
	cr_expect_eq(untouched, IS_RUNNING, "a failed parse wrote its result");
}

/* The words of history's runs.activation and of "started (...)" in the logs. */
Test(states, the_names_of_activations_are_those_of_history)
{
	static const struct {
		enum activation a;
		const char *name;
	} want[] = {
		{ACTIVATION_BOOT, "boot"}, {ACTIVATION_COMMAND, "command"}, {ACTIVATION_RESTART, "restart"},
		{ACTIVATION_DEPENDENCY, "dependency"}, {ACTIVATION_CONNECTION, "connection"},
		{ACTIVATION_RELOAD, "reload"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_str_eq(activation_name(want[i].a), want[i].name);
	cr_expect_str_eq(activation_name(ACTIVATION_COUNT), "unknown");
	cr_expect_eq(ACTIVATION_NONE, 0, "\"no start pending\" must read as false");
}
