/*
 * test_supervision.c - what ward does about workers that look alive but are
 * not (the watchdog), and about workers that need others (`requires`).
 */
#include "support.h"

#include <string.h>

TestSuite(watchdog, .fini = wt_teardown, .timeout = 60);
TestSuite(requires, .fini = wt_teardown, .timeout = 60);

#define RUN(col, worker, nth) "SELECT " col " FROM runs WHERE worker = '" worker "' ORDER BY id LIMIT 1 OFFSET " #nth

Test(watchdog, a_deadlocked_worker_is_killed_as_hung_and_restarted_while_its_neighbour_runs_on)
{
	wt_setup(&wt, "[stuck]\nplugin = hang_cycle\nwatchdog = 500ms\nrestart_delay = 10ms\nstop_timeout = 200ms\n"
		      "[healthy]\nplugin = idle\ninterval = 50ms\nwatchdog = 500ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'stuck'"),
		  "the hung worker was never restarted:\n%s", wt_host_stderr(&wt));
	cr_expect_str_eq(wt_sql_text(&wt, RUN("reason", "stuck", 0)), "hung");
	long long ran = wt_sql_int(&wt, RUN("ended_at - ready_at", "stuck", 0));
	/* Detection is due within watchdog + 10% (at most +1 s); allow for a noisy machine. */
	cr_expect(ran >= 500 && ran <= 2500, "a 500 ms watchdog fired after %lld ms", ran);
	char *log = wt_log(&wt, "stuck");
	cr_expect(strstr(log, "exited: hung"), "%s", log);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'healthy'"), 1,
		     "the healthy neighbour was disturbed");
	long long c0 = wt_sql_int(&wt, "SELECT cycles FROM instances WHERE worker = 'healthy'");
	cr_expect(wt_wait_sql(&wt, 3000, "SELECT cycles > %lld FROM instances WHERE worker = 'healthy'", c0),
		  "the healthy neighbour stopped cycling");
	wt_stop(&wt, 5000);
}

Test(watchdog, a_long_cycle_that_sends_heartbeats_is_not_hung)
{
	wt_setup(&wt, "[w]\nplugin = heartbeat_cycle\nseconds = 2\nwatchdog = 400ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 6000, "w", "long cycle finished"));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1, "a heartbeating cycle was killed");
	wt_stop(&wt, 5000);
}

Test(watchdog, waiting_in_ward_sleep_or_between_cycles_is_not_hung)
{
	wt_setup(&wt, "[sleeper]\nplugin = sleep_cycle\nwatchdog = 300ms\n"
		      "[idler]\nplugin = idle\ninterval = 5s\nwatchdog = 300ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM instances WHERE state = 'running'"));
	sleep_ms(1500);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs"), 2, "a waiting worker was taken for hung");
	wt_stop(&wt, 5000);
}

Test(watchdog, zero_turns_the_watchdog_off)
{
	wt_setup(&wt, "[w]\nplugin = hang_cycle\nwatchdog = 0\nstop_timeout = 200ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'w'"));
	sleep_ms(1200);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1);
	wt_stop(&wt, 5000);
}

Test(requires, a_dependant_never_starts_before_its_dependency_is_ready)
{
	wt_setup(&wt, "[db]\nplugin = init_slow\ninit_ms = 400\n[app]\nplugin = idle\nrequires = db\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	long long db_ready = wt_sql_int(&wt, RUN("ready_at", "db", 0));
	long long app_started = wt_sql_int(&wt, RUN("started_at", "app", 0));
	cr_expect(db_ready > 0 && app_started >= db_ready, "app started at %lld, before db was ready at %lld",
		  app_started, db_ready);
	wt_stop(&wt, 5000);
}

Test(requires, every_instance_of_a_dependency_must_be_ready)
{
	wt_setup(&wt, "[db]\nplugin = init_slow\ninit_ms = 300\ninstances = 3\n[app]\nplugin = idle\nrequires = db\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	long long last_ready = wt_sql_int(&wt, "SELECT max(ready_at) FROM runs WHERE worker = 'db'");
	cr_expect(wt_sql_int(&wt, RUN("started_at", "app", 0)) >= last_ready);
	wt_stop(&wt, 5000);
}

Test(requires, a_dependency_with_autostart_no_is_pulled_in)
{
	wt_setup(&wt, "[db]\nplugin = idle\nautostart = no\n[app]\nplugin = idle\nrequires = db\n"
		      "[lazy]\nplugin = idle\nautostart = no\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	cr_expect_str_eq(wt_sql_text(&wt, RUN("activation", "db", 0)), "dependency");
	cr_expect_str_eq(wt_sql_text(&wt, RUN("activation", "app", 0)), "boot");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'lazy'"), 0,
		     "autostart = no without a dependant must stay stopped");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'lazy'"), "stopped");
	wt_stop(&wt, 5000);
}

Test(requires, the_host_stops_dependants_before_what_they_require)
{
	wt_setup(&wt, "[db]\nplugin = idle\n[app]\nplugin = slow_stop\nshutdown_ms = 300\nrequires = db\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	long long app_ended = wt_sql_int(&wt, RUN("ended_at", "app", 0));
	long long db_asked = wt_sql_int(&wt, "SELECT at FROM events WHERE worker = 'db' AND event = 'stopping'");
	cr_expect(db_asked >= app_ended, "db was asked to stop at %lld, before app ended at %lld", db_asked, app_ended);
	cr_expect_str_eq(wt_sql_text(&wt, RUN("reason", "db", 0)), "stopped");
}

Test(requires, dependants_of_a_dependency_that_fails_for_good_are_stopped_with_the_reason_logged)
{
	wt_setup(&wt, "[db]\nplugin = crash_later\nafter = 400ms\nmax_restarts = 0\nlimit.core = 0\n"
		      "[app]\nplugin = idle\nrequires = db\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'db'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'app' AND reason = 'stopped'"),
		  "app kept running although db failed for good");
	char *err = wt_host_stderr(&wt);
	cr_expect(strstr(err, "[app] stopping: it requires db, which has failed"), "%s", err);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'app'"), "starting",
			 "app should be waiting to start again once db is back");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}
