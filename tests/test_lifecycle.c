/*
 * test_lifecycle.c - how a worker process ends and what ward does next:
 * every ending gets its exit reason, the restart policy decides what follows,
 * and each run is in history and the worker's log.
 */
#include "support.h"

#include <string.h>

TestSuite(lifecycle, .fini = wt_teardown, .timeout = 60);

#define LAST_RUN(col, worker) "SELECT " col " FROM runs WHERE worker = '" worker "' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1"

Test(lifecycle, a_finished_worker_is_done_and_not_restarted)
{
	wt_setup(&wt, "[w]\nplugin = done_after\ncycles = 2\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "done");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("cycles", "w")), 3);
	sleep_ms(300);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1, "a done worker was restarted");
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, "INFO shutdown ran"), "shutdown did not run after DONE:\n%s", log);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(lifecycle, a_cycle_error_is_recorded_as_error_and_restarted)
{
	wt_setup(&wt, "[w]\nplugin = error_after\nrestart_delay = 10ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'w' AND reason = 'error'"));
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("code", "w")), 1);
	cr_expect(wt_wait_log(&wt, 2000, "w", "INFO shutdown ran"), "shutdown must run after WARD_ERROR");
	wt_stop(&wt, 5000);
}

Test(lifecycle, a_crash_by_signal_is_recorded_with_its_signal_and_restarted)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\ncycles = 1\nrestart_delay = 10ms\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'w' AND ended_at IS NOT NULL"));
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "signal");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("signal", "w")), 11);
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("cycles", "w")), 1);
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, "ERROR last words before crash"), "the line logged just before the crash is missing:\n%s", log);
	cr_expect(strstr(log, "exited: signal SIGSEGV"), "the log does not say how the process died:\n%s", log);
	cr_expect_null(strstr(log, "shutdown ran after a crash"), "shutdown must not run after a crash");
	wt_stop(&wt, 5000);
}

Test(lifecycle, an_init_failure_is_init_failed_with_the_plugins_own_words_in_the_log)
{
	wt_setup(&wt, "[w]\nplugin = init_fail\nrestart = never\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "init-failed");
	cr_expect(wt_wait_log(&wt, 2000, "w", "ERROR cannot open the thing"));
	wt_stop(&wt, 5000);
}

Test(lifecycle, exit_called_by_plugin_code_is_exit_with_its_code)
{
	wt_setup(&wt, "[w]\nplugin = exit_code\ncode = 7\nrestart = never\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "exit");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("code", "w")), 7);
	wt_stop(&wt, 5000);
}

Test(lifecycle, abort_is_a_signal_SIGABRT)
{
	wt_setup(&wt, "[w]\nplugin = abort_cycle\nrestart = never\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "signal");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("signal", "w")), 6);
	wt_stop(&wt, 5000);
}
