/*
 * test_lifecycle.c - how a worker process ends and what ward does next:
 * every ending gets its exit reason, the restart policy decides what follows,
 * and each run is in history and the worker's log.
 */
#define _GNU_SOURCE
#include "support.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(lifecycle, .fini = wt_teardown, .timeout = 60);

#define LAST_RUN(col, worker) "SELECT " col " FROM runs WHERE worker = '" worker "' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1"

/* Runs the configuration (worker `w`) until w reaches `state`. */
static void run_until(const char *ini, const char *state)
{
	wt_setup(&wt, ini);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = '%s' FROM workers WHERE name = 'w'", state),
		  "w never became %s; its log:\n%s", state, wt_log(&wt, "w"));
}

Test(lifecycle, a_finished_worker_is_done_and_not_restarted)
{
	run_until("[w]\nplugin = done_after\ncycles = 2\n", "done");
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
	run_until("[w]\nplugin = init_fail\nrestart = never\n", "failed");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "init-failed");
	cr_expect(wt_wait_log(&wt, 2000, "w", "ERROR cannot open the thing"));
	wt_stop(&wt, 5000);
}

Test(lifecycle, exit_called_by_plugin_code_is_exit_with_its_code)
{
	run_until("[w]\nplugin = exit_code\ncode = 7\nrestart = never\n", "failed");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "exit");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("code", "w")), 7);
	wt_stop(&wt, 5000);
}

Test(lifecycle, abort_is_a_signal_SIGABRT)
{
	run_until("[w]\nplugin = abort_cycle\nrestart = never\nlimit.core = 0\n", "failed");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "signal");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("signal", "w")), 6);
	wt_stop(&wt, 5000);
}

/* started_at of run k minus ended_at of run k-1, for the first n runs. */
static void restart_gaps(const char *worker, long long *gaps, int n)
{
	for (int k = 1; k < n; k++)
		gaps[k - 1] = wt_sql_int(&wt,
			"SELECT (SELECT started_at FROM runs WHERE worker = '%s' ORDER BY id LIMIT 1 OFFSET %d)"
			" - (SELECT ended_at FROM runs WHERE worker = '%s' ORDER BY id LIMIT 1 OFFSET %d)",
			worker, k, worker, k - 1);
}

Test(lifecycle, restart_delay_doubles_with_each_consecutive_failure)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\nrestart_delay = 100ms\nrestart_delay_max = 10s\n"
		      "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 4 FROM runs WHERE worker = 'w'"));
	long long g[3];
	restart_gaps("w", g, 4);
	cr_expect(g[0] >= 90, "first delay %lld ms, restart_delay is 100 ms", g[0]);
	for (int k = 1; k < 3; k++) {
		double ratio = (double)g[k] / (double)g[k - 1];
		cr_expect(ratio > 1.5 && ratio < 3.0, "delay %d/%d ratio %.2f (%lld / %lld ms), expected ~2", k + 1, k,
			  ratio, g[k], g[k - 1]);
	}
	wt_stop(&wt, 5000);
}

Test(lifecycle, restart_delay_stops_doubling_at_restart_delay_max)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\nrestart_delay = 50ms\nrestart_delay_max = 100ms\n"
		      "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 5 FROM runs WHERE worker = 'w'"));
	long long g[4];
	restart_gaps("w", g, 5);
	double ratio = (double)g[3] / (double)g[2];
	cr_expect(ratio > 0.6 && ratio < 1.6, "capped delays differ: %lld then %lld ms", g[2], g[3]);
	cr_expect(g[3] < 400, "delay %lld ms exceeds restart_delay_max 100ms by far", g[3]);
	wt_stop(&wt, 5000);
}

Test(lifecycle, more_than_max_restarts_within_the_window_puts_the_worker_in_failed)
{
	run_until("[w]\nplugin = crash_after\nrestart_delay = 10ms\nmax_restarts = 2\nrestart_window = 60s\nlimit.core = 0\n", "failed");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 3, "max_restarts = 2 allows 3 runs");
	cr_expect_eq(wt_sql_int(&wt, "SELECT restarts FROM workers WHERE name = 'w'"), 2);
	sleep_ms(300);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 3, "a failed worker was restarted");
	char *err = wt_host_stderr(&wt);
	cr_expect(strstr(err, "[w:0] failed: 3 runs in a row failed, each within restart_window (1m00s) of its start; "
			      "max_restarts = 2; last exit: signal SIGSEGV"),
		  "the host did not say why it gave up:\n%s", err);
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, "failed: 3 runs in a row failed"), "the worker's log does not say it failed:\n%s", log);
	wt_stop(&wt, 5000);
}

Test(lifecycle, restart_never_leaves_a_crashed_worker_failed)
{
	run_until("[w]\nplugin = crash_after\nrestart = never\nlimit.core = 0\n", "failed");
	sleep_ms(200);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1);
	wt_stop(&wt, 5000);
}

Test(lifecycle, restart_always_restarts_even_a_worker_that_finished)
{
	wt_setup(&wt, "[w]\nplugin = done_after\ncycles = 0\nrestart = always\nrestart_delay = 10ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 3 FROM runs WHERE worker = 'w' AND reason = 'done'"));
	wt_stop(&wt, 5000);
}

Test(lifecycle, an_init_that_does_not_return_in_time_is_init_timeout)
{
	run_until("[w]\nplugin = init_hang\ninit_timeout = 200ms\nrestart = never\n", "failed");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "init-timeout");
	long long ran = wt_sql_int(&wt, LAST_RUN("ended_at - started_at", "w"));
	cr_expect(ran >= 200 && ran < 3000, "killed after %lld ms for a 200 ms init_timeout", ran);
	wt_stop(&wt, 5000);
}

Test(lifecycle, stdout_stderr_and_ward_log_all_land_in_the_worker_log_with_level_and_pid)
{
	run_until("[w]\nplugin = log_stdout\ncycles = 3\n", "done");
	long long pid = wt_sql_int(&wt, LAST_RUN("pid", "w"));
	char *log = wt_log(&wt, "w");
	char want[128];
	const char *lines[] = {"OUT stdout line 1", "OUT stdout line 3", "OUT stderr line 2", "INFO ward_log line 3"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		snprintf(want, sizeof(want), "[w:0] pid=%lld %s\n", pid, lines[i]);
		cr_expect(strstr(log, want), "missing \"%s\" in:\n%s", want, log);
	}
	wt_stop(&wt, 5000);
}

Test(lifecycle, a_worker_gets_a_clean_environment_its_state_dir_as_cwd_and_only_its_own_fds)
{
	setenv("WARD_TEST_HOST_SECRET", "leak", 1);
	run_until("[w]\nplugin = env_dump\nenv.GREETING = hello world\n", "done");
	char path[1200];
	snprintf(path, sizeof(path), "%s/workers/w/env-0.txt", wt.state);
	char *env = wt_read(path);
	cr_assert(env, "env_dump wrote nothing");
	cr_expect(strstr(env, "GREETING=hello world\n"), "env.GREETING missing:\n%s", env);
	cr_expect(strstr(env, "WARD_NAME=w\n") && strstr(env, "WARD_INSTANCE=0\n"), "WARD_* missing:\n%s", env);
	cr_expect(strstr(env, "PATH="), "PATH missing:\n%s", env);
	cr_expect_null(strstr(env, "WARD_TEST_HOST_SECRET"), "the host's environment leaked:\n%s", env);
	snprintf(path, sizeof(path), "cwd=%s/workers/w\n", wt.state);
	cr_expect(strstr(env, path), "cwd is not the state dir (%s):\n%s", path, env);
	/* 0-2 stdio, 3 the runtime channel to the host, 4 the runtime's stop wake-up. */
	cr_expect(strstr(env, "fds=0,1,2,3,4\n"), "the worker has descriptors that are not its own:\n%s", env);
	wt_stop(&wt, 5000);
	unsetenv("WARD_TEST_HOST_SECRET");
}

Test(lifecycle, inherit_env_passes_the_hosts_environment)
{
	setenv("WARD_TEST_HOST_VALUE", "shared", 1);
	run_until("[w]\nplugin = env_dump\ninherit_env = yes\n", "done");
	char path[1200];
	snprintf(path, sizeof(path), "%s/workers/w/env-0.txt", wt.state);
	char *env = wt_read(path);
	cr_assert(env);
	cr_expect(strstr(env, "WARD_TEST_HOST_VALUE=shared\n"), "inherit_env = yes did not pass it:\n%s", env);
	wt_stop(&wt, 5000);
	unsetenv("WARD_TEST_HOST_VALUE");
}

Test(lifecycle, each_instance_is_its_own_process_numbered_from_0)
{
	run_until("[w]\nplugin = env_dump\ninstances = 3\n", "done");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(DISTINCT pid) FROM runs WHERE worker = 'w'"), 3);
	for (int i = 0; i < 3; i++) {
		char path[1200], want[32];
		snprintf(path, sizeof(path), "%s/workers/w/env-%d.txt", wt.state, i);
		snprintf(want, sizeof(want), "instance=%d\n", i);
		char *env = wt_read(path);
		cr_assert(env, "instance %d wrote nothing", i);
		cr_expect(strstr(env, want), "instance %d does not know its number:\n%s", i, env);
	}
	wt_stop(&wt, 5000);
}

Test(lifecycle, plugin_keys_reach_the_plugin_through_ward_conf)
{
	run_until("[defaults]\ncount = 42\n[w]\nplugin = conf_echo\ngreeting = hi there\nflag = yes\ndelay = 2s\n", "done");
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, "greeting=hi there"), "%s", log);
	cr_expect(strstr(log, "count=42"), "[defaults] plugin key missing:\n%s", log);
	cr_expect(strstr(log, "flag=1"), "%s", log);
	cr_expect(strstr(log, "delay_ms=2000"), "%s", log);
	wt_stop(&wt, 5000);
}

Test(lifecycle, a_run_longer_than_restart_window_resets_the_delay_and_the_restart_count)
{
	/* Each run lasts ~400 ms, longer than the 300 ms window: the delay never
	 * doubles and max_restarts = 1 never gives up. */
	wt_setup(&wt, "[w]\nplugin = crash_later\nafter = 400ms\nrestart_delay = 100ms\nrestart_delay_max = 10s\n"
		      "restart_window = 300ms\nmax_restarts = 1\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 4 FROM runs WHERE worker = 'w'"),
		  "the worker stopped being restarted:\n%s", wt_host_stderr(&wt));
	long long g[3];
	restart_gaps("w", g, 4);
	double ratio = (double)g[2] / (double)g[0];
	cr_expect(ratio > 0.5 && ratio < 1.8, "the delay grew (%lld, %lld, %lld ms) although every run outlasted the window",
		  g[0], g[1], g[2]);
	cr_expect_str_neq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "failed");
	wt_stop(&wt, 5000);
}

/* Longer than any line log_stdout's log holds: its own lines and the WARD ones. */
#define LONGEST_LINE 256

Test(lifecycle, logs_rotate_at_log_max_size_keeping_log_keep_files)
{
	/* About 60 KiB of log: four 16 KiB files' worth, so a third old one
	 * would exist if log_keep were not honoured. */
	wt_setup(&wt, "[w]\nplugin = log_stdout\ncycles = 300\n");
	wt_write_conf(&wt, "zz-logs.ini", "[ward]\nlog_max_size = 16K\nlog_keep = 2\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'w'"));
	/* Read while the host still runs: once `done` is recorded, every line
	 * the worker wrote is in its log already. */
	char path[1200];
	snprintf(path, sizeof(path), "%s/logs/w.log.1", wt.state);
	char *one = wt_read(path);
	snprintf(path, sizeof(path), "%s/logs/w.log.2", wt.state);
	char *two = wt_read(path);
	snprintf(path, sizeof(path), "%s/logs/w.log.3", wt.state);
	cr_expect(one && two, "log_keep = 2 should keep w.log.1 and w.log.2");
	cr_expect_null(wt_read(path), "a third old log was kept with log_keep = 2");
	/* Rotated at the line that reached 16 KiB, whatever batches the host
	 * read the lines in: a kept file is 16 KiB and at most one line more. */
	cr_expect(one && strlen(one) >= 16384 && strlen(one) < 16384 + LONGEST_LINE,
		  "w.log.1 has %zu bytes for log_max_size 16K", one ? strlen(one) : 0);
	cr_expect(two && strlen(two) >= 16384 && strlen(two) < 16384 + LONGEST_LINE,
		  "w.log.2 has %zu bytes for log_max_size 16K", two ? strlen(two) : 0);
	/* Nothing at the end was lost or written twice. stdout and stderr (a
	 * pipe) and ward_log (the runtime channel) are read separately, so one
	 * may run a few hundred lines ahead of the other: the last lines of each
	 * may sit in any kept file, which together hold the last 32 KiB or more. */
	char *all;
	cr_assert(asprintf(&all, "%s%s%s", two ? two : "", one ? one : "", wt_log(&wt, "w")) > 0);
	wt_keep(all);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
	const char *last[] = {"OUT stdout line 300\n", "OUT stderr line 300\n", "INFO ward_log line 300\n",
			      "OUT stdout line 299\n"};
	for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
		const char *at = strstr(all, last[i]);
		cr_expect(at, "\"%s\" is missing from the kept logs", last[i]);
		cr_expect(!at || !strstr(at + 1, last[i]), "\"%s\" was written twice", last[i]);
	}
}

Test(lifecycle, a_worker_runs_as_its_configured_user_and_group)
{
	wt_setup(&wt, "[w]\nplugin = env_dump\nuser = nobody\ngroup = nogroup\nrestart = never\n");
	chmod(wt.dir, 0711); /* mkdtemp made it 0700: let nobody reach the state dir below */
	wt_start(&wt);
	if (geteuid() == 0) {
		cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'w'"),
			  "did not finish: %s", wt_log(&wt, "w"));
		char path[1200];
		snprintf(path, sizeof(path), "%s/workers/w/env-0.txt", wt.state);
		char *env = wt_read(path);
		cr_assert(env);
		cr_expect(strstr(env, "uid=65534 gid=65534\n"), "not running as nobody:nogroup:\n%s", env);
	} else {
		/* Without root the switch is impossible, and ward must say so plainly. */
		cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
		cr_expect(strstr(wt_log(&wt, "w"), "cannot switch to user nobody"), "%s", wt_log(&wt, "w"));
	}
	wt_stop(&wt, 5000);
}

Test(lifecycle, nice_and_limits_apply_to_the_worker_and_no_new_privs_is_set)
{
	run_until("[w]\nplugin = env_dump\nnice = 7\nlimit.nofile = 64\nlimit.core = 0\n", "done");
	char path[1200];
	snprintf(path, sizeof(path), "%s/workers/w/env-0.txt", wt.state);
	char *env = wt_read(path);
	cr_assert(env);
	cr_expect(strstr(env, "nice=7 nofile=64 core=0 no_new_privs=1\n"), "%s", env);
	wt_stop(&wt, 5000);
}

Test(lifecycle, a_worker_holds_neither_other_workers_secrets_nor_the_hosts_shared_memory)
{
	/* The needle is split in the configuration so that only a's section holds it whole. */
	wt_setup(&wt, "[a]\nplugin = idle\nenv.TOKEN = s3cr3t-hunter2-token\napi_key = s3cr3t-hunter2-key\n"
		      "[b]\nplugin = memscan\nneedle = s3cr3t-hunter2\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "b", "shared mappings:"), "%s", wt_log(&wt, "b"));
	char *log = wt_log(&wt, "b");
	/* One shared mapping: its own slot page. The needle itself is b's own
	 * key; a's secrets are the needle followed by '-': none may be there. */
	cr_expect(strstr(log, "shared mappings: 1;"), "b can see the host's shared memory:\n%s", log);
	cr_expect(strstr(log, "followed by '-': 0"), "b holds a's secrets:\n%s", log);
	cr_expect(!strstr(log, "copies of the needle: 0;"), "the scan did not even find b's own key:\n%s", log);
	wt_stop(&wt, 5000);
}
