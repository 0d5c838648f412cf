/*
 * test_history.c - what `ward history` and `ward status` show: a row for
 * every run with how it ended, the JSON fields of docs/operator-guide.md, and a history
 * database that can fail without ever stopping supervision.
 */
#include "support.h"

#include <signal.h>
#include <sqlite3.h>
#include <string.h>

TestSuite(history, .fini = wt_teardown, .timeout = 60);

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

Test(history, every_run_has_a_row_with_its_exit_reason)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\nrestart_delay = 10ms\nmax_restarts = 2\nlimit.core = 0\n"
		      "[ok]\nplugin = done_after\ncycles = 1\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'ok'"));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --json"), 0, "%s", err);
	cr_expect_eq(count(out, "\"worker\": \"w\""), 3, "%s", out);
	cr_expect_eq(count(out, "\"reason\": \"signal\", \"code\": null, \"signal\": \"SIGSEGV\""), 3, "%s", out);
	cr_expect_eq(count(out, "\"reason\": \"done\", \"code\": 0"), 1, "%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history w"), 0);
	cr_expect_eq(count(out, "signal SIGSEGV"), 3, "the table should show each crash:\n%s", out);
	cr_expect_eq(count(out, " ok "), 0, "history NAME shows only that worker:\n%s", out);
	wt_stop(&wt, 5000);
}

Test(history, status_json_has_every_field_of_the_spec)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninstances = 2\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM instances WHERE worker = 'w' AND state = 'running'"));
	long long pid0 = wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w' AND instance = 0");
	char *out, *err, want[128];
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 0, "%s", err);
	cr_expect(strstr(out, "\"name\": \"w\", \"plugin\": \"idle\", \"state\": \"running\", \"instances\": ["), "%s", out);
	snprintf(want, sizeof(want), "{\"instance\": 0, \"pid\": %lld, \"state\": \"running\", \"started_at\": \"", pid0);
	cr_expect(strstr(out, want), "missing %s in\n%s", want, out);
	cr_expect(strstr(out, "{\"instance\": 1, \"pid\": "), "%s", out);
	cr_expect(strstr(out, "\"cycles\": "), "%s", out);
	cr_expect(strstr(out, "\"restarts\": 0, \"listen\": [], \"on_demand\": null, \"last_exit\": null, \"queue\": null}"), "%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "status w"), 0);
	cr_expect(strstr(out, "running") && strstr(out, "idle"), "%s", out);
	wt_stop(&wt, 5000);
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 1, "status without a host is a failure");
	cr_expect(strstr(err, "no host is running"), "%s", err);
	cr_expect(strstr(out, "stopped"), "the last recorded state is shown:\n%s", out);
}

Test(history, status_of_an_unknown_worker_says_so)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "status nosuch"), 1);
	cr_expect(strstr(err, "no worker named 'nosuch'"), "%s", err);
	wt_stop(&wt, 5000);
}

Test(history, status_before_any_host_ran_is_a_clear_message)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	char *out, *err;
	long long t0 = now_ms();
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 1);
	cr_expect(now_ms() - t0 < 5000);
	cr_expect(strstr(err, "no host has run with this configuration yet"), "%s", err);
}

Test(history, a_locked_database_never_stops_supervision_and_is_reported_once)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\nrestart_delay = 20ms\nrestart_delay_max = 20ms\nmax_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 1 FROM runs WHERE worker = 'w'"));
	char path[1200];
	snprintf(path, sizeof(path), "%s/ward.db", wt.state);
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	long long before = wt_sql_int(&wt, "SELECT count(*) FROM runs");
	/* While the database is locked, the worker keeps being restarted: its log tells. */
	char *log0 = wt_log(&wt, "w");
	int starts0 = count(log0, "started (");
	sleep_ms(1000);
	char *log1 = wt_log(&wt, "w");
	int starts1 = count(log1, "started (");
	cr_expect(starts1 >= starts0 + 5, "supervision stalled while the database was locked (%d -> %d starts)", starts0,
		  starts1);
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(count(err, "unable to write to history database"), 1, "not reported exactly once:\n%s", err);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	/* Once it is free again, nothing of what happened meanwhile is lost. */
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) >= %d FROM runs", starts1), "runs written meanwhile were lost");
	cr_expect(wt_sql_int(&wt, "SELECT count(*) FROM runs") > before);
	cr_expect(strstr(wt_host_stderr(&wt), "works again"), "recovery was not reported");
	wt_stop(&wt, 5000);
}

/* `ward status` or a script's sqlite3 holds the lock for a moment while the host
 * boots: contention, not a failure the operator has to read about. And the
 * runs the host numbered before it could read the file must not take the ids
 * of runs already recorded (INSERT OR REPLACE would overwrite them). */
Test(history, a_lock_held_for_a_moment_at_boot_is_waited_out_and_overwrites_no_run)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert_eq(wt_stop(&wt, 5000), 0);
	char *first = wt_sql_text(&wt, "SELECT id || ' ' || pid || ' ' || reason FROM runs");
	cr_assert(first && strstr(first, " stopped"), "the first host's run: %s", first ? first : "(none)");
	char path[1200];
	snprintf(path, sizeof(path), "%s/ward.db", wt.state);
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	wt_launch(&wt);
	sleep_ms(120);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs"),
		  "the run begun while the database was locked is not its own row:\n%s\n%s",
		  wt_sql_text(&wt, "SELECT group_concat(id || ' ' || pid || ' ' || coalesce(reason, '-'), '; ') FROM runs"),
		  wt_host_stderr(&wt));
	cr_expect(wt_wait_sql(&wt, 1000, "SELECT count(*) = 1 FROM runs WHERE id || ' ' || pid || ' ' || reason = '%s'",
			      first),
		  "the first host's run (%s) was changed", first);
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(count(err, "history database"), 0, "a lock of 120 ms was reported:\n%s", err);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(history, history_json_has_init_time_and_last_cycle_duration_per_run)
{
	wt_setup(&wt, "[w]\nplugin = init_slow\ninit_ms = 200\ninterval = 50ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'w'"));
	sleep_ms(200);
	wt_stop(&wt, 5000);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --json"), 0, "%s", err);
	char *at = strstr(out, "\"init_ms\": ");
	cr_assert(at, "%s", out);
	long init_ms = atol(at + 11);
	cr_expect(init_ms >= 200 && init_ms < 2000, "init took 200 ms, history says %ld: %s", init_ms, out);
	cr_expect(strstr(out, "\"last_cycle_ms\": 0"), "%s", out);
}
