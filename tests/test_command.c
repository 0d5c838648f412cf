/*
 * test_command.c - command workers (docs/command-workers.md): any program
 * under ward's lifecycle, with real clients of systemd's protocols that no
 * one here wrote: systemd-notify, Python's systemd.daemon (Debian
 * python3-systemd, so /usr/bin/python3 and not a python3 found on PATH)
 * and gunicorn's socket activation, reached through curl.
 */
#include "support.h"
#include "common/command.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(command, .fini = wt_teardown, .timeout = 90);

#define LAST_RUN(col, worker) "SELECT " col " FROM runs WHERE worker = '" worker "' ORDER BY id DESC LIMIT 1"

/* An executable file NAME in the configuration directory. */
static void write_program(const char *name, const char *text)
{
	wt_write_conf(&wt, name, text);
	char path[400];
	snprintf(path, sizeof(path), "%s/%s", wt.conf, name);
	cr_assert_eq(chmod(path, 0755), 0);
}

static void wait_state(const char *worker, const char *state, int timeout_ms)
{
	cr_assert(wt_wait_sql(&wt, timeout_ms, "SELECT state = '%s' FROM instances WHERE worker = '%s'", state, worker),
		  "%s never became %s; its log:\n%s\nhost said:\n%s", worker, state, wt_log(&wt, worker), wt_host_stderr(&wt));
}

static char *status_json(void)
{
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 0, "ward status --json failed: %s", err);
	return out;
}

Test(command, systemd_notify_ready_makes_it_running_and_its_status_shows)
{
	wt_setup(&wt, "[n]\ncommand = /bin/sh -c 'sleep 0.4; /usr/bin/systemd-notify --ready --status=\"warm; and ready\"; exec sleep 60'\n"
		      "ready = notify\ninit_timeout = 30s\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'n'"));
	cr_expect(wt_sql_int(&wt, "SELECT state = 'starting' FROM instances WHERE worker = 'n'"),
		  "running before READY=1 was sent");
	wait_state("n", "running", 15000);
	long long waited = wt_sql_int(&wt, LAST_RUN("ready_at - started_at", "n"));
	cr_expect(waited >= 400, "running %lld ms after the start, before the program said READY=1", waited);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT status_text = 'warm; and ready' FROM instances WHERE worker = 'n'"));
	char *json = status_json();
	cr_expect(strstr(json, "\"status_text\": \"warm; and ready\""), "STATUS= not in ward status --json:\n%s", json);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status n"), 0);
	cr_expect(strstr(out, "status: warm; and ready"), "STATUS= not in ward status n:\n%s", out);
}

Test(command, python_systemd_daemon_notify_and_stopping_is_recorded)
{
	wt_setup(&wt, "[py]\ncommand = /usr/bin/python3 -c \"import systemd.daemon as d, time, sys; "
		      "d.notify('STATUS=loading'); time.sleep(0.3); d.notify('READY=1\\nSTATUS=serving'); "
		      "time.sleep(0.3); d.notify('STOPPING=1'); time.sleep(60)\"\nready = notify\n");
	wt_start(&wt);
	wait_state("py", "running", 15000);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT status_text = 'serving' FROM instances WHERE worker = 'py'"),
		  "STATUS=serving never shown; log:\n%s", wt_log(&wt, "py"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM events WHERE worker = 'py' AND event = 'stopping'"),
		  "STOPPING=1 not recorded; log:\n%s", wt_log(&wt, "py"));
	cr_expect(wt_wait_log(&wt, 3000, "py", "it is stopping"));
}

Test(command, without_ready_1_init_timeout_kills_it)
{
	wt_setup(&wt, "[quiet]\ncommand = /bin/sleep 60\nready = notify\ninit_timeout = 500ms\nrestart = never\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, LAST_RUN("reason = 'init-timeout'", "quiet")),
		  "no init-timeout; host said:\n%s", wt_host_stderr(&wt));
	wait_state("quiet", "failed", 5000);
}

Test(command, ready_start_is_running_once_execd_and_exit_0_is_done)
{
	wt_setup(&wt, "[once]\ncommand = /bin/echo \"one; # two\" $HOME \\$x 'a\\b'\n");
	wt_start(&wt);
	wait_state("once", "done", 10000);
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "once")), "exit");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("code", "once")), 0);
	cr_expect(wt_sql_int(&wt, LAST_RUN("ready_at IS NOT NULL", "once")), "never running");
	/* quotes keep ; and # in the argument, nothing is expanded, a backslash escapes outside single quotes only */
	cr_expect(wt_wait_log(&wt, 2000, "once", "one; # two $HOME $x a\\b"), "log:\n%s", wt_log(&wt, "once"));
}

Test(command, a_failing_exit_code_is_recorded_and_restarted)
{
	wt_setup(&wt, "[three]\ncommand = /bin/sh -c 'exit 3'\nrestart_delay = 50ms\nmax_restarts = 2\n");
	wt_start(&wt);
	wait_state("three", "failed", 10000);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'three' AND reason = 'exit' AND code = 3"), 3);
}

Test(command, a_missing_interpreter_is_load_failed_with_path_and_errno)
{
	wt_setup(&wt, "[bad]\ncommand = ./noint.sh\nrestart = never\n");
	write_program("noint.sh", "#!/nonexistent/interpreter\necho never\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, LAST_RUN("reason = 'load-failed'", "bad")), "host said:\n%s", wt_host_stderr(&wt));
	char *msg = wt_sql_text(&wt, LAST_RUN("message", "bad"));
	cr_expect(strstr(msg, "noint.sh") && strstr(msg, "No such file or directory") && strstr(msg, "interpreter"),
		  "message: %s", msg);
	cr_expect(wt_wait_log(&wt, 2000, "bad", "unable to execute"), "log:\n%s", wt_log(&wt, "bad"));
	cr_expect(strstr(wt_log(&wt, "bad"), "No such file or directory"));
}

Test(command, plugin_and_command_in_one_section_is_a_configuration_error)
{
	wt_setup(&wt, "[both]\nplugin = idle\ncommand = /bin/true\n");
	char *out, *err;
	cr_expect_neq(wt_cli(&wt, &out, &err, "check"), 0);
	cr_expect(strstr(err, "ward.ini:") && strstr(err, "[both] command") && strstr(err, "exclude each other"),
		  "check said:\n%s%s", out, err);
}

Test(command, check_refuses_a_missing_or_non_executable_program_and_a_bad_quote)
{
	wt_setup(&wt, "[gone]\ncommand = /nonexistent/prog --flag\n[noexec]\ncommand = ./plain.txt\n"
		      "[dir]\ncommand = /tmp\n[nopath]\ncommand = no-such-program-anywhere\n[quote]\ncommand = /bin/echo 'open\n");
	wt_write_conf(&wt, "plain.txt", "not a program\n");
	char *out, *err;
	cr_expect_neq(wt_cli(&wt, &out, &err, "check"), 0);
	cr_expect(strstr(err, "[gone] command") && strstr(err, "/nonexistent/prog") && strstr(err, "No such file"), "%s", err);
	cr_expect(strstr(err, "[noexec] command") && strstr(err, "plain.txt is not executable"), "%s", err);
	cr_expect(strstr(err, "[dir] command") && strstr(err, "not a regular file"), "%s", err);
	cr_expect(strstr(err, "[nopath] command") && strstr(err, "not on the worker's PATH"), "%s", err);
	cr_expect(strstr(err, "[quote] command") && strstr(err, "unterminated single quote"), "%s", err);
}

Test(command, stop_signal_reaches_the_program)
{
	wt_setup(&wt, "[trap]\ncommand = ./trap.sh\nstop_signal = SIGUSR1\n");
	write_program("trap.sh", "#!/bin/sh\ntrap 'echo caught USR1; exit 0' USR1\ntrap 'echo caught TERM' TERM\n"
				 "while :; do sleep 0.05; done\n");
	wt_start(&wt);
	wait_state("trap", "running", 10000);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	char *log = wt_log(&wt, "trap");
	cr_expect(strstr(log, "caught USR1") && !strstr(log, "caught TERM"), "log:\n%s", log);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM instances WHERE worker = 'trap'"), "stopped");
}

Test(command, stop_timeout_kills_the_whole_tree_grandchild_included)
{
	wt_setup(&wt, "[stubborn]\ncommand = ./stubborn.sh\nstop_timeout = 300ms\n");
	/* The grandchild is a child of a child, in a session of its own: only the cgroup (or the group, before setsid) finds it. */
	write_program("stubborn.sh", "#!/bin/sh\ntrap '' TERM\n/bin/sh -c 'sleep 1000 & echo $! > grandchild.pid; wait' &\n"
				     "while :; do sleep 0.05; done\n");
	wt_start(&wt);
	wait_state("stubborn", "running", 10000);
	char path[400];
	snprintf(path, sizeof(path), "%s/workers/stubborn/grandchild.pid", wt.state);
	long long deadline = now_ms() + 5000;
	char *s;
	while (!(s = wt_read(path)) && now_ms() < deadline)
		sleep_ms(20);
	cr_assert(s, "no grandchild.pid; log:\n%s", wt_log(&wt, "stubborn"));
	pid_t grandchild = (pid_t)atoi(s);
	cr_assert(grandchild > 0 && pid_alive(grandchild));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "stubborn")), "stop-timeout");
	deadline = now_ms() + 3000;
	while (pid_alive(grandchild) && now_ms() < deadline)
		sleep_ms(20);
	cr_expect(!pid_alive(grandchild), "the grandchild outlived the stop");
}

Test(command, mainpid_is_refused_with_one_log_line)
{
	wt_setup(&wt, "[mp]\ncommand = /usr/bin/python3 -c \"import systemd.daemon as d, time; "
		      "d.notify('MAINPID=1'); d.notify('MAINPID=1'); d.notify('READY=1'); time.sleep(60)\"\nready = notify\n");
	wt_start(&wt);
	wait_state("mp", "running", 15000);
	cr_assert(wt_wait_log(&wt, 3000, "mp", "MAINPID=1 refused"));
	cr_expect_eq(wt_count(wt_log(&wt, "mp"), "refused"), 1, "log:\n%s", wt_log(&wt, "mp"));
	cr_expect(wt_sql_int(&wt, "SELECT pid > 1 FROM instances WHERE worker = 'mp'"), "MAINPID changed the tracked pid");
}

Test(command, a_sender_outside_the_worker_is_ignored_and_counted)
{
	wt_setup(&wt, "[w]\ncommand = /bin/sh -c 'printf %s \"$NOTIFY_SOCKET\" > notify.addr; exec sleep 60'\n"
		      "ready = notify\ninit_timeout = 0\n");
	wt_start(&wt);
	char path[400];
	snprintf(path, sizeof(path), "%s/workers/w/notify.addr", wt.state);
	long long deadline = now_ms() + 5000;
	char *addr;
	while ((!(addr = wt_read(path)) || !*addr) && now_ms() < deadline)
		sleep_ms(20);
	cr_assert(addr && addr[0] == '@', "NOTIFY_SOCKET is not an abstract address: %s", addr ? addr : "(none)");
	/* This test's own child is no process of w's. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "NOTIFY_SOCKET='%s' /usr/bin/python3 -c \"import systemd.daemon as d; "
		 "assert d.notify('READY=1\\nSTATUS=forged')\"", addr);
	cr_assert_eq(system(cmd), 0, "python could not send one message");
	sleep_ms(500);
	cr_expect(wt_sql_int(&wt, "SELECT state = 'starting' FROM instances WHERE worker = 'w'"), "a foreign READY=1 was taken");
	cr_expect(wt_sql_int(&wt, "SELECT status_text IS NULL FROM instances WHERE worker = 'w'"), "a foreign STATUS= was taken");
	char *metrics = wt_metrics(&wt);
	cr_expect_eq(wt_metric(metrics, "ward_notify_ignored_total"), 1, "metrics:\n%s", metrics);
}

Test(command, watchdog_1_is_a_heartbeat_and_silence_is_hung)
{
	wt_setup(&wt, "[beat]\ncommand = /usr/bin/python3 -c \"import systemd.daemon as d, time, os; "
		      "print('usec', os.environ['WATCHDOG_USEC'], 'pid', os.environ['WATCHDOG_PID'] == str(os.getpid()), flush=True); "
		      "d.notify('READY=1'); [ (d.notify('WATCHDOG=1'), time.sleep(0.2)) for i in range(10) ]; time.sleep(60)\"\n"
		      "ready = notify\nwatchdog = 1s\nrestart = never\n");
	wt_start(&wt);
	wait_state("beat", "running", 15000);
	cr_expect(wt_wait_log(&wt, 3000, "beat", "usec 1000000 pid True"), "log:\n%s", wt_log(&wt, "beat"));
	sleep_ms(1500); /* heartbeats for 2 s: still running past the 1 s watchdog */
	cr_expect(wt_sql_int(&wt, "SELECT state = 'running' FROM instances WHERE worker = 'beat'"),
		  "killed while it sent WATCHDOG=1; log:\n%s", wt_log(&wt, "beat"));
	cr_assert(wt_wait_sql(&wt, 10000, LAST_RUN("reason = 'hung'", "beat")), "silence was not hung; log:\n%s", wt_log(&wt, "beat"));
}

Test(command, gunicorn_takes_the_listen_socket_and_answers_the_first_request)
{
	int port = wt_free_port();
	wt_setup(&wt, "");
	char ini[800];
	snprintf(ini, sizeof(ini),
		 "[web]\ncommand = /usr/bin/gunicorn --chdir %s --workers 1 app:app\n"
		 "listen = tcp:127.0.0.1:%d\nautostart = no\ninit_timeout = 30s\n", wt.conf, port);
	wt_write_conf(&wt, "web.ini", ini);
	wt_write_conf(&wt, "app.py", "import os\n"
				     "def app(environ, start_response):\n"
				     "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
				     "    return [b'hello from gunicorn\\n']\n");
	wt_start(&wt);
	cr_expect(wt_sql_int(&wt, "SELECT count(*) = 0 FROM runs WHERE worker = 'web'"), "started before any connection");
	char *body = NULL;
	int code = wt_curl(port, "--max-time 30", "/", &body);
	cr_expect_eq(code, 200, "curl got %d; log:\n%s\nhost:\n%s", code, wt_log(&wt, "web"), wt_host_stderr(&wt));
	cr_expect(body && strstr(body, "hello from gunicorn"), "body: %s", body ? body : "(none)");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("activation", "web")), "connection");
}

Test(command, a_flood_on_notify_socket_does_not_hold_the_host)
{
	wt_setup(&wt, "[flood]\ncommand = /usr/bin/python3 -c \"import systemd.daemon as d, itertools; "
		      "[d.notify('STATUS=%d\\nWATCHDOG=1' % (i % 1000)) for i in itertools.count()]\"\n"
		      "[calm]\ncommand = /bin/sleep 60\n");
	wt_start(&wt);
	wait_state("flood", "running", 15000);
	sleep_ms(1000); /* the flood is on */
	for (int i = 0; i < 3; i++) {
		long long t0 = now_ms();
		char *out, *err;
		cr_assert_eq(wt_cli(&wt, &out, &err, "status calm"), 0, "status failed: %s", err);
		long long took = now_ms() - t0;
		cr_expect(took < 3000, "ward status took %lld ms during the flood", took);
		cr_expect(strstr(out, "running"), "%s", out);
	}
	cr_expect_eq(wt_stop(&wt, 15000), 0, "the host did not stop during the flood");
}

Test(command, a_program_removed_after_the_check_is_load_failed_at_start)
{
	wt_setup(&wt, "[later]\ncommand = ./later.sh\nautostart = no\nrestart = never\n");
	write_program("later.sh", "#!/bin/sh\nexec sleep 60\n");
	wt_start(&wt);
	char path[400];
	snprintf(path, sizeof(path), "%s/later.sh", wt.conf);
	cr_assert_eq(unlink(path), 0);
	char *out, *err;
	wt_cli(&wt, &out, &err, "start later");
	cr_assert(wt_wait_sql(&wt, 10000, LAST_RUN("reason = 'load-failed'", "later")), "host said:\n%s", wt_host_stderr(&wt));
	char *msg = wt_sql_text(&wt, LAST_RUN("message", "later"));
	cr_expect(strstr(msg, "unable to execute") && strstr(msg, "later.sh") && strstr(msg, "No such file or directory"),
		  "message: %s", msg);
	cr_expect(wt_sql_int(&wt, LAST_RUN("ready_at IS NULL", "later")), "running although its program is gone");
	wait_state("later", "failed", 5000);
}

/* ---- the command line, word by word (common/command.c) ---- */

static void expect_words(const char *line, int n, const char *const *want)
{
	struct strv words = {0};
	const char *why = command_split(line, &words);
	cr_assert_null(why, "%s: %s", line, why);
	cr_assert_eq((int)words.n, n, "%s: %zu words", line, words.n);
	for (int i = 0; i < n; i++)
		cr_expect_str_eq(words.v[i], want[i], "%s: word %d", line, i);
	strv_free(&words);
}

Test(command, the_line_is_split_as_a_shell_splits_words)
{
	expect_words("  /bin/prog  -a\t b ", 3, (const char *const[]){"/bin/prog", "-a", "b"});
	expect_words("p 'a b' \"c d\" e\\ f", 4, (const char *const[]){"p", "a b", "c d", "e f"});
	expect_words("p 'it''s' \"a\\\"b\" \"\\n\" '\\n'", 5, (const char *const[]){"p", "its", "a\"b", "\\n", "\\n"});
	expect_words("p \"x;y\" '#z' $HOME *", 5, (const char *const[]){"p", "x;y", "#z", "$HOME", "*"});
	expect_words("p '' a\"b\"'c'", 3, (const char *const[]){"p", "", "abc"});
}

Test(command, a_broken_line_says_why)
{
	struct strv words = {0};
	cr_expect_str_eq(command_split("p 'open", &words), "unterminated single quote");
	cr_expect_str_eq(command_split("p \"open", &words), "unterminated double quote");
	cr_expect_str_eq(command_split("p \\", &words), "a backslash at the end of the line escapes nothing");
	cr_expect_str_eq(command_split("   ", &words), "no program named");
	cr_expect_eq(words.n, 0);
}

Test(command, ward_signal_reaches_the_program_and_instances_each_run_it)
{
	wt_setup(&wt, "[sig]\ncommand = ./sig.sh\ninstances = 2\n");
	write_program("sig.sh", "#!/bin/sh\ntrap 'echo instance $WARD_INSTANCE got USR2' USR2\nwhile :; do sleep 0.05; done\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM instances WHERE worker = 'sig' AND state = 'running'"),
		  "host said:\n%s", wt_host_stderr(&wt));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "signal USR2 sig"), 0, "%s", err);
	cr_expect(wt_wait_log(&wt, 5000, "sig", "instance 0 got USR2"), "log:\n%s", wt_log(&wt, "sig"));
	cr_expect(wt_wait_log(&wt, 5000, "sig", "instance 1 got USR2"), "log:\n%s", wt_log(&wt, "sig"));
}

Test(command, a_worker_requiring_a_notify_worker_waits_for_its_ready_1)
{
	wt_setup(&wt, "[db]\ncommand = /bin/sh -c 'sleep 0.5; /usr/bin/systemd-notify --ready; exec sleep 60'\nready = notify\n"
		      "[app]\ncommand = /bin/sleep 60\nrequires = db\n");
	wt_start(&wt);
	wait_state("app", "running", 15000);
	long long db_ready = wt_sql_int(&wt, LAST_RUN("ready_at", "db"));
	long long app_started = wt_sql_int(&wt, LAST_RUN("started_at", "app"));
	cr_expect(db_ready > 0 && app_started >= db_ready, "app started at %lld, db ready at %lld", app_started, db_ready);
}

Test(command, a_reload_that_changes_the_command_replaces_the_program)
{
	wt_setup(&wt, "[r]\ncommand = /bin/sh -c 'echo version one; exec sleep 60'\n");
	wt_start(&wt);
	wait_state("r", "running", 10000);
	cr_assert(wt_wait_log(&wt, 3000, "r", "version one"));
	wt_write_conf(&wt, "ward.ini", "");
	char ini[600];
	snprintf(ini, sizeof(ini), "[ward]\nstate_dir = %s\nautoload = no\n[r]\ncommand = /bin/sh -c 'echo version two; exec sleep 60'\n",
		 wt.state);
	wt_write_conf(&wt, "ward.ini", ini);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "reload failed: %s%s", out, err);
	cr_expect(wt_wait_log(&wt, 10000, "r", "version two"), "log:\n%s", wt_log(&wt, "r"));
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs WHERE worker = 'r'"));
}
