/*
 * test_histlog.c - `ward history NAME --log`: a run that failed keeps the
 * last 20 lines its process wrote (the very last one before a crash
 * included), a run that ended done or stopped keeps none, the lines go with
 * their runs when history_keep prunes them, and whatever bytes a worker
 * wrote, `--json --log` stays JSON that python3 parses.
 */
#define _GNU_SOURCE
#include "support.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

TestSuite(histlog, .fini = wt_teardown, .timeout = 120);

/* The indented lines under the runs of `ward history --log`, in order. */
static int tail_lines(const char *out, const char *lines[], int max)
{
	int n = 0;
	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		if (strncmp(p, "    ", 4) == 0 && n < max)
			lines[n++] = p + 4;
	return n;
}

/* Whether the tail line (up to its newline) ends with what. */
static bool line_ends_with(const char *line, const char *what)
{
	size_t len = strcspn(line, "\n"), wlen = strlen(what);
	return len >= wlen && strncmp(line + len - wlen, what, wlen) == 0;
}

/* One instance of plugin tail_lines that writes 30 lines through `via`,
 * then "about to crash PID" and dies of SIGSEGV, and is not restarted. */
static long long crash_once(const char *via)
{
	char ini[256];
	snprintf(ini, sizeof(ini), "[w]\nplugin = tail_lines\nvia = %s\nmax_restarts = 0\nlimit.core = 0\n", via);
	wt_setup(&wt, ini);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'w' AND log IS NOT NULL"),
		  "the crashed run was not recorded with its lines:\n%s", wt_host_stderr(&wt));
	cr_assert_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'signal'"), 1);
	return wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = 'w'");
}

/* The 20 lines under the run: line 12 .. line 30, then the crash line, oldest first. */
static void expect_last_twenty(long long pid, const char *level)
{
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "history w --log"), 0, "%s", err);
	const char *lines[64];
	int n = tail_lines(out, lines, 64);
	cr_assert_eq(n, 20, "not the last 20 lines:\n%s", out);
	for (int i = 0; i < 19; i++) {
		char want[64];
		snprintf(want, sizeof(want), " %s line %d", level, 12 + i);
		cr_expect(line_ends_with(lines[i], want), "tail line %d is not '%s':\n%s", i, want, out);
	}
	char crash[64];
	snprintf(crash, sizeof(crash), " %s about to crash %lld", level, pid);
	cr_expect(line_ends_with(lines[19], crash), "the last line is not the one written before the crash (%s):\n%s",
		  crash, out);
	cr_expect(strncmp(lines[0], "20", 2) == 0 && strstr(lines[0], "Z "), "each line starts with its time:\n%s", out);
	cr_expect(strstr(out, "signal SIGSEGV"), "the run's own line is there too:\n%s", out);
	cr_expect(out < lines[0] && strstr(out, "signal SIGSEGV") < lines[0], "the lines come under their run:\n%s", out);
}

Test(histlog, a_crashed_run_keeps_its_last_20_ward_log_lines_newest_last)
{
	long long pid = crash_once("ward_log");
	expect_last_twenty(pid, "ERROR");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* The pipe is read in pieces: the lines still in it when the process died
 * are read before the run is recorded. */
Test(histlog, a_crashed_run_keeps_its_last_20_stdout_lines_newest_last)
{
	long long pid = crash_once("stdout");
	expect_last_twenty(pid, "OUT");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(histlog, the_last_line_before_a_crash_is_kept_from_the_pipe_and_the_channel_alike)
{
	long long pid = crash_once("both");
	char *log = wt_sql_text(&wt, "SELECT log FROM runs WHERE worker = 'w'");
	char out_line[64], log_line[64];
	snprintf(out_line, sizeof(out_line), " OUT about to crash %lld", pid);
	snprintf(log_line, sizeof(log_line), " ERROR about to crash %lld", pid);
	cr_expect(strstr(log, out_line), "stdout's last line is missing:\n%s", log);
	cr_expect(strstr(log, log_line), "ward_log's last line is missing:\n%s", log);
	cr_expect_eq(wt_count(log, "\n") + 1, 20, "not 20 lines:\n%s", log);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(histlog, runs_that_end_done_or_stopped_keep_no_lines_and_a_failed_one_does)
{
	wt_setup(&wt, "[d]\nplugin = tail_lines\nend = done\nlines = 3\n"
		      "[s]\nplugin = tail_lines\nend = idle\nlines = 3\n"
		      "[e]\nplugin = tail_lines\nend = error\nlines = 3\nmax_restarts = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker IN ('d', 'e') AND ended_at IS NOT NULL"));
	cr_assert(wt_wait_log(&wt, 10000, "s", "line 3"));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop s"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT reason = 'stopped' FROM runs WHERE worker = 's'"));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker IN ('d', 's') AND log IS NOT NULL"), 0,
		     "a run that ended done or stopped kept lines");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'e' AND reason = 'error' AND"
				     " log LIKE '%%ERROR line 1%%ERROR line 2%%ERROR line 3'"), 1,
		     "the failed run's lines: %s", wt_sql_text(&wt, "SELECT log FROM runs WHERE worker = 'e'"));
	cr_assert_eq(wt_cli(&wt, &out, &err, "history d --log"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\n    "), 0, "a done run shows lines:\n%s", out);
	cr_expect(strstr(out, "done"), "%s", out);
	/* Without NAME: every worker, each failed run with its lines. */
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --log"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\n    "), 3, "only e's three lines:\n%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --json --log"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\"log\": []"), 2, "done and stopped runs have an empty list:\n%s", out);
	cr_expect_eq(wt_count(out, "\"log\": [\""), 1, "%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --json"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\"log\""), 0, "without --log there is no log field:\n%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\n    "), 0, "without --log no line is shown:\n%s", out);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* python3 reads the file as UTF-8, strictly: a byte that is not UTF-8 or a
 * raw control character in a string would make it fail. */
static int python_check(const char *json_file, const char *program)
{
	char *cmd;
	cr_assert(asprintf(&cmd, "timeout 20 python3 -c '%s' <%s", program, json_file) > 0);
	int status = system(cmd);
	free(cmd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(histlog, json_log_is_parsed_by_python_whatever_bytes_the_worker_wrote)
{
	wt_setup(&wt, "[w]\nplugin = tail_lines\nvia = both\nlines = 4\nnasty = yes\nmax_restarts = 0\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'w' AND log IS NOT NULL"));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "history w --json --log"), 0, "%s", err);
	char file[300];
	snprintf(file, sizeof(file), "%s/cli.out", wt.dir); /* what wt_cli captured */
	cr_expect_eq(python_check(file,
				  "import json, sys\n"
				  "runs = json.load(sys.stdin)\n"
				  "log = runs[0][\"log\"]\n"
				  "assert len(runs) == 1 and len(log) == 7, log\n"
				  "assert any(l.endswith(\" OUT line 1\") for l in log), log\n"
				  "nasty = [l for l in log if \"nasty\" in l][0]\n"
				  "assert \"\\x01\\x1b[31m red \\x7f bad \\ufffd\\ufffd cut \\ufffd end\" in nasty, repr(nasty)\n"
				  "assert sum(\"about to crash\" in l for l in log) == 2, log\n"),
		     0, "python3 did not read the right lines from:\n%s", out);
	/* The text form shows those bytes escaped: nothing reaches a terminal raw. */
	cr_assert_eq(wt_cli(&wt, &out, &err, "history w --log"), 0, "%s", err);
	cr_expect(strstr(out, "nasty \\x01\\x1b[31m red \\x7f bad \\xff\\xfe cut \\xc3 end"), "%s", out);
	cr_expect(!strchr(out, '\x1b'), "an escape character reached the output:\n%s", out);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(histlog, a_line_longer_than_512_bytes_is_cut_with_a_mark)
{
	wt_setup(&wt, "[w]\nplugin = tail_lines\nvia = stdout\nlines = 0\nlong = 3000\nmax_restarts = 0\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'w' AND log IS NOT NULL"));
	char *log = wt_sql_text(&wt, "SELECT log FROM runs WHERE worker = 'w'");
	const char *first = log, *nl = strchr(log, '\n');
	cr_assert(nl, "%s", log);
	cr_expect(nl - first < 600 && nl - first > 512, "the long line was not cut at 512 bytes: %d", (int)(nl - first));
	cr_expect(strncmp(nl - 6, " [...]", 6) == 0, "no mark where it was cut: %.*s", (int)(nl - first), first);
	cr_expect(strstr(nl, "about to crash"), "%s", log);
	char xs[3001];
	memset(xs, 'x', 3000);
	xs[3000] = '\0';
	cr_expect(wt_wait_log(&wt, 1000, "w", xs), "the log file has the whole line");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* history_keep prunes a run's lines with it: no table of lines outlives its runs. */
Test(histlog, pruning_removes_the_lines_with_their_runs)
{
	wt_setup(&wt, "[ward]\nhistory_keep = 5\n"
		      "[w]\nplugin = tail_lines\nlines = 25\nrestart_delay = 0\nrestart_delay_max = 0\n"
		      "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	/* The host prunes every 256 runs it begins. */
	if (!wt_wait_sql(&wt, 90000, "SELECT min(id) > 200 FROM runs")) {
		char *err = wt_host_stderr(&wt), *log = wt_log(&wt, "w");
		cr_assert_fail("no pruning seen: %lld runs, worker %s; host's stderr ends:\n%s\nlog ends:\n%s",
			       wt_sql_int(&wt, "SELECT count(*) FROM runs"), wt_sql_text(&wt, "SELECT state FROM workers"),
			       err && strlen(err) > 2000 ? err + strlen(err) - 2000 : err,
			       log && strlen(log) > 2000 ? log + strlen(log) - 2000 : log);
	}
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'stopped' FROM workers WHERE name = 'w'"));
	long long runs = wt_sql_int(&wt, "SELECT count(*) FROM runs");
	cr_expect(runs < 256 + 5, "%lld runs left", runs);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE id <= 200"), 0);
	cr_expect(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE log IS NOT NULL") >= 1);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND sql LIKE '%%log%%'"
				     " AND name != 'runs'"), 0, "lines are kept outside the runs table");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* While the database cannot be written, the failed runs' lines wait in the
 * host's memory: 16 MiB of them at most (history.c). Past that, runs are
 * recorded without lines; once it works again, they have them again. */
Test(histlog, lines_waiting_for_a_locked_database_are_bounded)
{
	wt_setup(&wt, "[w]\nplugin = tail_lines\nlines = 20\npad = 600\nrestart_delay = 0\nrestart_delay_max = 0\n"
		      "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 1 FROM runs WHERE log IS NOT NULL"));
	char path[1200];
	snprintf(path, sizeof(path), "%s/ward.db", wt.state);
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	long long locked_from = wt_count(wt_host_stderr(&wt), "exited: signal");
	/* 20 lines of 512 bytes and their times: about 11 KiB a run, so 1,500
	 * runs fill the budget. One line on the host's stderr per crash. */
	long long deadline = now_ms() + 90000, crashes = 0;
	while ((crashes = wt_count(wt_host_stderr(&wt), "exited: signal") - locked_from) < 2500 && now_ms() < deadline)
		sleep_ms(200);
	long long max_id = wt_sql_int(&wt, "SELECT max(id) FROM runs"); /* reads still work */
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	cr_assert(crashes >= 2500, "only %lld crashes while locked", crashes);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) >= 2500 FROM runs WHERE id > %lld AND ended_at IS NOT NULL", max_id));
	long long with = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE id > %lld AND id <= %lld + 2500 AND log IS NOT NULL",
				    max_id, max_id);
	long long bytes = wt_sql_int(&wt, "SELECT sum(length(log)) FROM runs WHERE id > %lld AND id <= %lld + 2500",
				     max_id, max_id);
	cr_expect(with > 1000 && with < 2000, "%lld of the 2500 runs kept their lines while locked", with);
	cr_expect(bytes <= 16 * 1024 * 1024, "%lld bytes of lines were held for the locked database", bytes);
	long long after = wt_sql_int(&wt, "SELECT max(id) FROM runs");
	cr_expect(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 1 FROM runs WHERE id > %lld AND log IS NOT NULL", after),
		  "runs after the database works again have no lines");
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* A database an older ward wrote (no runs.log column) is read by history --log,
 * and the host adds the column when it opens it. */
Test(histlog, a_database_from_before_the_log_column_keeps_working)
{
	wt_setup(&wt, "[w]\nplugin = tail_lines\nmax_restarts = 0\nlimit.core = 0\n");
	char cmd[2400];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && sqlite3 %s/ward.db 'CREATE TABLE runs(id INTEGER PRIMARY KEY,"
		 " worker TEXT NOT NULL, instance INTEGER NOT NULL, pid INTEGER, activation TEXT, started_at INTEGER,"
		 " ready_at INTEGER, init_ms INTEGER, ended_at INTEGER, reason TEXT, code INTEGER, signal INTEGER,"
		 " core INTEGER, message TEXT, cycles INTEGER, last_cycle_ms INTEGER);"
		 " INSERT INTO runs(worker, instance, pid, started_at, ended_at, reason, signal, core, cycles)"
		 " VALUES(\"old\", 0, 42, 1000, 2000, \"signal\", 11, 0, 0);' && chmod 600 %s/ward.db",
		 wt.state, wt.state, wt.state);
	cr_assert_eq(system(cmd), 0);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --log"), 0, "%s", err);
	cr_expect(strstr(out, "old") && strstr(out, "SIGSEGV"), "%s", out);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'w' AND log LIKE '%%about to crash%%'"),
		  "%s", wt_host_stderr(&wt));
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --log"), 0, "%s", err);
	cr_expect(strstr(out, "old") && strstr(out, "about to crash"), "%s", out);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(histlog, log_is_an_option_of_history_only_and_its_help_says_so)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "status --log"), 2);
	cr_expect(strstr(err, "--log is an option of history only"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "logs w --log"), 2);
	cr_expect(strstr(err, "--log is an option of history only"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "history --help"), 0);
	cr_expect(strstr(out, "--log") && strstr(out, "last 20 lines"), "%s", out);
}
