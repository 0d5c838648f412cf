/*
 * test_states.c - the worker state machine's decisions alone, pure and
 * without forking anything: the table (state, event) -> action of
 * daemon/lifecycle.c for every pair, the names of states and activations
 * that history and `ward status` show (contract), and restart_policy()'s
 * delay rules that test_life13.c does not cover.
 */
#include "support.h"

#include <string.h>

#include "daemon/lifecycle.h"
#include "daemon/worker.h"

/* Every defined pair, as docs/lifecycle.md describes the machine. */
static const struct {
	enum istate state;
	enum event event;
	enum action action;
} defined[] = {
	{IS_STOPPED, EV_START, ACT_START_FRESH},
	{IS_STARTING, EV_READY, ACT_BECOME_READY},
	{IS_STARTING, EV_EXIT, ACT_PROCESS_ENDED},
	{IS_STARTING, EV_STOP, ACT_TERMINATE},
	{IS_STARTING, EV_TIMER, ACT_INIT_TIMED_OUT},
	{IS_RUNNING, EV_EXIT, ACT_PROCESS_ENDED},
	{IS_RUNNING, EV_STOP, ACT_TERMINATE},
	{IS_RUNNING, EV_HUNG, ACT_HUNG},
	{IS_STOPPING, EV_EXIT, ACT_PROCESS_ENDED},
	{IS_STOPPING, EV_TIMER, ACT_STOP_TIMED_OUT},
	{IS_BACKOFF, EV_START, ACT_SPAWN},
	{IS_BACKOFF, EV_STOP, ACT_CANCEL_BACKOFF},
	{IS_BACKOFF, EV_TIMER, ACT_RESTART_AFTER_BACKOFF},
	{IS_FAILED, EV_START, ACT_START_FRESH},
	{IS_DONE, EV_START, ACT_START_FRESH},
};

static enum action expected(enum istate s, enum event ev)
{
	for (size_t i = 0; i < sizeof(defined) / sizeof(defined[0]); i++)
		if (defined[i].state == s && defined[i].event == ev)
			return defined[i].action;
	return ACT_NONE;
}

Test(state_table, every_state_and_event_pair_gives_the_documented_action)
{
	int none = 0;
	for (int s = 0; s < IS_COUNT; s++)
		for (int ev = 0; ev < EV_COUNT; ev++) {
			enum action got = transition_for((enum istate)s, (enum event)ev);
			cr_expect_eq(got, expected((enum istate)s, (enum event)ev), "%s x event %d: action %d, expected %d",
				     istate_name((enum istate)s), ev, got, expected((enum istate)s, (enum event)ev));
			none += got == ACT_NONE;
		}
	/* 7 states x 6 events, 15 of them defined: the rest change nothing. */
	cr_expect_eq(none, IS_COUNT * EV_COUNT - 15);
}

Test(state_table, a_stop_or_start_where_it_means_nothing_is_ignored)
{
	cr_expect_eq(transition_for(IS_STOPPED, EV_STOP), ACT_NONE, "a stopped worker is stopped again");
	cr_expect_eq(transition_for(IS_FAILED, EV_STOP), ACT_NONE);
	cr_expect_eq(transition_for(IS_DONE, EV_STOP), ACT_NONE);
	cr_expect_eq(transition_for(IS_RUNNING, EV_START), ACT_NONE, "a running worker is started again");
	cr_expect_eq(transition_for(IS_STARTING, EV_START), ACT_NONE);
	cr_expect_eq(transition_for(IS_STOPPING, EV_START), ACT_NONE);
	cr_expect_eq(transition_for(IS_STOPPING, EV_STOP), ACT_NONE);
	cr_expect_eq(transition_for(IS_STOPPING, EV_HUNG), ACT_NONE, "the watchdog only judges a running cycle");
	cr_expect_eq(transition_for(IS_RUNNING, EV_TIMER), ACT_NONE);
}

Test(state_table, values_out_of_range_are_rejected)
{
	cr_expect_eq(transition_for(IS_COUNT, EV_START), ACT_NONE);
	cr_expect_eq(transition_for((enum istate)-1, EV_START), ACT_NONE);
	cr_expect_eq(transition_for(IS_STOPPED, EV_COUNT), ACT_NONE);
	cr_expect_eq(transition_for(IS_STOPPED, (enum event)-1), ACT_NONE);
}

Test(state_names, are_the_words_history_and_status_use)
{
	static const char *const want[IS_COUNT] = {"stopped", "starting", "running", "stopping",
						   "backoff", "failed", "done"};
	static const enum istate order[IS_COUNT] = {IS_STOPPED, IS_STARTING, IS_RUNNING, IS_STOPPING,
						    IS_BACKOFF, IS_FAILED, IS_DONE};
	for (int i = 0; i < IS_COUNT; i++) {
		cr_expect_str_eq(istate_name(order[i]), want[i]);
		enum istate back = IS_COUNT;
		cr_expect(istate_parse(want[i], &back), "\"%s\" is not parsed", want[i]);
		cr_expect_eq(back, order[i], "\"%s\" parsed as %d", want[i], back);
	}
	cr_expect_str_eq(istate_name(IS_COUNT), "unknown");
	enum istate untouched = IS_RUNNING;
	cr_expect_not(istate_parse("Running", &untouched));
	cr_expect_not(istate_parse("", &untouched));
	cr_expect_not(istate_parse(NULL, &untouched));
	cr_expect_eq(untouched, IS_RUNNING, "a failed parse wrote its result");
}

Test(activation_names, are_the_words_of_runs_activation)
{
	cr_expect_str_eq(activation_name(ACTIVATION_BOOT), "boot");
	cr_expect_str_eq(activation_name(ACTIVATION_COMMAND), "command");
	cr_expect_str_eq(activation_name(ACTIVATION_RESTART), "restart");
	cr_expect_str_eq(activation_name(ACTIVATION_DEPENDENCY), "dependency");
	cr_expect_str_eq(activation_name(ACTIVATION_CONNECTION), "connection");
	cr_expect_str_eq(activation_name(ACTIVATION_RELOAD), "reload");
	cr_expect_str_eq(activation_name(ACTIVATION_COUNT), "unknown");
	cr_expect_eq(ACTIVATION_NONE, 0, "\"no start pending\" must read as false");
}

/* ---- restart_policy(): the delay rules ---- */

Test(restart_policy_delay, doubles_from_restart_delay_and_stops_at_restart_delay_max)
{
	struct worker_conf c = {.restart_delay_ms = 300, .restart_delay_max_ms = 1000, .max_restarts = -1,
				.restart_window_ms = 60000};
	static const uint64_t want[] = {300, 600, 1000, 1000, 1000};
	unsigned streak = 0;
	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		struct restart_verdict v = restart_policy(&c, &streak, 5, true);
		cr_expect_not(v.give_up);
		cr_expect_eq(v.delay_ms, want[k], "delay %zu: %llu ms, expected %llu", k, (unsigned long long)v.delay_ms,
			     (unsigned long long)want[k]);
	}
	/* Far past the point where a shift would overflow: still the cap. */
	streak = 200;
	cr_expect_eq(restart_policy(&c, &streak, 5, true).delay_ms, 1000);
}

Test(restart_policy_delay, an_ending_that_is_no_failure_waits_restart_delay_and_never_gives_up)
{
	struct worker_conf c = {.restart_delay_ms = 250, .restart_delay_max_ms = 1000, .max_restarts = 0,
				.restart_window_ms = 60000};
	unsigned streak = 3;
	struct restart_verdict v = restart_policy(&c, &streak, 5, false);
	cr_expect_not(v.give_up, "max_restarts = 0 counts failures only");
	cr_expect_eq(v.delay_ms, 250);
	cr_expect_eq(streak, 0);
}

Test(restart_policy_delay, restart_delay_zero_restarts_at_once)
{
	struct worker_conf c = {.restart_delay_ms = 0, .restart_delay_max_ms = 1000, .max_restarts = -1,
				.restart_window_ms = 60000};
	unsigned streak = 0;
	for (int k = 0; k < 5; k++)
		cr_expect_eq(restart_policy(&c, &streak, 5, true).delay_ms, 0);
	cr_expect_eq(streak, 5);
}
