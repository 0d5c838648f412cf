/*
 * test_tester13.c - `ward test` and the harness as a plugin author meets
 * them: a run bounded by --timeout, a stop that really is a SIGTERM, plugin
 * paths relative to where the author is, listen sockets in process,
 * configuration errors named as typed, and plugins that see nothing of
 * ward's own libraries.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ward_harness.h>

TestSuite(tester13, .fini = wt_teardown, .timeout = 120);

#define GRACE_MS 2000 /* what `ward test --help` states */

static const char *fixture(const char *stem)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s.so", FIXTURE_DIR, stem) > 0);
	return wt_keep(p);
}

/* `ward test ARGS`, its stdout in *out, and how long it took in *ms. */
static int timed_test(const char *args, char **out, long long *ms)
{
	char *err, cmd[2048];
	snprintf(cmd, sizeof(cmd), "test %s", args);
	long long t0 = now_ms();
	int rc = wt_ward_in(NULL, out, &err, cmd);
	*ms = now_ms() - t0;
	return rc;
}

/* ---- the run is bounded, and a stop is a real SIGTERM ---- */

Test(tester13, help_states_the_grace_after_the_timeout)
{
	char *out, *err;
	cr_expect_eq(wt_ward_in(NULL, &out, &err, "test --help"), 0, "%s", err);
	cr_expect(strstr(out, "2s later if it is still there"), "%s", out);
}

Test(tester13, a_hanging_plugin_ends_within_the_timeout_plus_the_grace_and_is_reported_hung)
{
	char *out, args[512];
	long long ms;
	snprintf(args, sizeof(args), "%s --timeout 2s", fixture("hang_cycle"));
	cr_expect_eq(timed_test(args, &out, &ms), 1, "%s", out);
	/* Before, the stop waited the default stop_timeout (10 s) on top. */
	cr_expect(ms >= 2000 && ms < 2000 + GRACE_MS + 4000, "took %lld ms for --timeout 2s:\n%s", ms, out);
	cr_expect(strstr(out, "ended: hung: cycle 1 never returned"), "%s", out);
	cr_expect(strstr(out, "did not finish in the time allowed"), "%s", out);
}

Test(tester13, a_plugin_that_blocks_or_ignores_sigterm_is_reported_so_after_the_timeout)
{
	const char *hows[] = {"block", "ignore"};
	for (size_t i = 0; i < 2; i++) {
		char *out, args[512];
		long long ms;
		snprintf(args, sizeof(args), "%s how=%s --timeout 1s", fixture("tester_deaf"), hows[i]);
		cr_expect_eq(timed_test(args, &out, &ms), 1, "%s", out);
		cr_expect(ms < 1000 + GRACE_MS + 4000, "how=%s took %lld ms for --timeout 1s", hows[i], ms);
		cr_expect(strstr(out, "ended: stop-timeout: did not stop on SIGTERM: is SIGTERM blocked or ignored?"),
			  "how=%s:\n%s", hows[i], out);
	}
}

Test(tester13, cycles_end_the_run_with_a_real_sigterm_that_a_deaf_plugin_fails)
{
	const char *hows[] = {"block", "ignore"};
	for (size_t i = 0; i < 2; i++) {
		char *out, args[512];
		long long ms;
		snprintf(args, sizeof(args), "%s how=%s --cycles 2 interval=10ms stop_timeout=1s --json",
			 fixture("tester_deaf"), hows[i]);
		cr_expect_eq(timed_test(args, &out, &ms), 1, "how=%s passed --cycles:\n%s", hows[i], out);
		cr_expect(strstr(out, "\"reason\": \"stop-timeout\"") &&
			  strstr(out, "\"message\": \"did not stop on SIGTERM: is SIGTERM blocked or ignored?\""),
			  "how=%s:\n%s", hows[i], out);
		cr_expect(strstr(out, "\"timed_out\": false"), "the stop_timeout given ends it, not --timeout: %s", out);
		/* in process, where no host sends the SIGTERM */
		snprintf(args, sizeof(args), "%s how=%s --cycles 2 interval=10ms --in-process", fixture("tester_deaf"), hows[i]);
		cr_expect_eq(timed_test(args, &out, &ms), 1, "how=%s passed --cycles in process:\n%s", hows[i], out);
		cr_expect(strstr(out, "ended: stop-timeout: did not stop on SIGTERM: is SIGTERM blocked or ignored?"),
			  "how=%s in process:\n%s", hows[i], out);
	}
	/* A plugin that heeds SIGTERM still passes, stopped by it. */
	char *out, args[512];
	long long ms;
	snprintf(args, sizeof(args), "%s how=none --cycles 2 interval=10ms", fixture("tester_deaf"));
	cr_expect_eq(timed_test(args, &out, &ms), 0, "%s", out);
	cr_expect(strstr(out, "ended: stopped: stopped after 2 cycles, as asked") && strstr(out, "  shutdown "), "%s", out);
	cr_expect(!strstr(out, "  cycle 3 "), "no cycle may run after the N-th:\n%s", out);
}

Test(tester13, the_harness_fails_a_plugin_that_ignores_the_stop_after_its_cycles)
{
	int modes[] = {0, 1};
	for (size_t i = 0; i < 2; i++) {
		ward_harness *h = ward_harness_new(fixture("tester_deaf"));
		ward_harness_set(h, "how", "ignore");
		ward_harness_set(h, "interval", "10ms");
		ward_harness_set(h, "stop_timeout", "500ms");
		ward_harness_cycles(h, 2);
		ward_harness_in_process(h, modes[i]);
		cr_expect_eq(ward_harness_run(h), 1, "in_process=%d: it must fail", modes[i]);
		cr_expect_str_eq(ward_harness_reason(h), "stop-timeout", "in_process=%d", modes[i]);
		cr_expect_str_eq(ward_harness_message(h), "did not stop on SIGTERM: is SIGTERM blocked or ignored?");
		cr_expect(!ward_harness_shutdown_ran(h), "a process killed for not stopping runs no shutdown");
		ward_harness_free(h);
	}
	/* The in-process run gave the test process its SIGTERM back. */
	struct sigaction sa;
	sigset_t mask;
	cr_assert(sigaction(SIGTERM, NULL, &sa) == 0 && sigprocmask(SIG_SETMASK, NULL, &mask) == 0);
	cr_expect(sa.sa_handler == SIG_DFL && !sigismember(&mask, SIGTERM), "SIGTERM of the test process was left changed");
}

/* ---- a plugin path relative to the current directory ---- */

/* A private directory holding a copy of ticker.so. */
static const char *dir_with_ticker(void)
{
	wt_setup(&wt, "");
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cp %s/ticker.so %s/ticker.so", PLUGIN_DIR, wt.dir);
	cr_assert(system(cmd) == 0);
	chmod(wt.dir, 0755);
	return wt.dir;
}

Test(tester13, a_bare_relative_plugin_path_works_for_every_entry_point)
{
	const char *dir = dir_with_ticker();
	const char *runs[] = {"test ticker.so --cycles 1 interval=10ms", "test ticker.so --cycles 1 interval=10ms --in-process",
			      "test --describe ticker.so", "test ./ticker.so --cycles 1 interval=10ms --in-process"};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char *out, *err;
		cr_expect_eq(wt_ward_in(dir, &out, &err, runs[i]), 0, "ward %s failed:\n%s%s", runs[i], out, err);
		cr_expect(strstr(out, "ticker 1.0.0"), "ward %s:\n%s", runs[i], out);
	}
	char *out, *err;
	cr_expect_eq(wt_ward_in(dir, &out, &err, "test --describe nothere.so"), 1);
	cr_expect(strstr(err, "nothere.so: unable to find the plugin: No such file or directory"), "%s", err);
}

Test(tester13, the_harness_takes_a_path_relative_to_the_current_directory)
{
	const char *dir = dir_with_ticker();
	char *here = getcwd(NULL, 0);
	cr_assert(here && chdir(dir) == 0);
	for (int in_process = 0; in_process <= 1; in_process++) {
		ward_harness *h = ward_harness_new("ticker.so");
		ward_harness_set(h, "interval", "10ms");
		ward_harness_cycles(h, 1);
		ward_harness_in_process(h, in_process);
		cr_expect_eq(ward_harness_run(h), 0, "in_process=%d: %s: %s", in_process, ward_harness_reason(h),
			     ward_harness_message(h));
		ward_harness_free(h);
	}
	/* Named before the test moves elsewhere: still that file. */
	ward_harness *h = ward_harness_new("ticker.so");
	cr_assert(chdir("/") == 0);
	ward_harness_cycles(h, 1);
	cr_expect_eq(ward_harness_run(h), 0, "%s", ward_harness_message(h));
	ward_harness_free(h);
	cr_assert(chdir(here) == 0);
	free(here);
}

/* ---- listen sockets in process ---- */

/* Connects to the unix socket at path (retrying while it is not there yet),
 * sends a line and returns the answer (owned by the caller), or NULL. */
static char *ask(const char *path, const char *line, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	long long deadline = now_ms() + timeout_ms;
	int fd = -1;
	while (now_ms() < deadline) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
		sleep_ms(20);
	}
	if (fd < 0)
		return NULL;
	char buf[256] = {0};
	ssize_t n = -1;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (write(fd, line, strlen(line)) == (ssize_t)strlen(line) && poll(&p, 1, timeout_ms) > 0)
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strdup(buf) : NULL;
}

Test(tester13, in_process_runs_get_the_listen_sockets_the_host_would_create)
{
	wt_setup(&wt, "");
	char sock[400], args[1024], outp[512], cmd[2048];
	snprintf(sock, sizeof(sock), "%s/echo.sock", wt.dir);
	snprintf(outp, sizeof(outp), "%s/test.out", wt.dir);
	snprintf(args, sizeof(args), "test %s listen=unix:%s idle_exit_ms=1500ms --in-process", fixture("echo_server"), sock);
	snprintf(cmd, sizeof(cmd), "timeout 60 %s %s >%s 2>&1", WARD_BIN, args, outp);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(system(cmd) == 0 ? 0 : 1);
	char *answer = ask(sock, "hello\n", 10000);
	int status;
	cr_assert(waitpid(pid, &status, 0) == pid);
	char *out = wt_read(outp);
	cr_expect_str_eq(answer ? answer : "(no answer)", "echo: hello\n", "%s", out);
	free(answer);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
	cr_expect(strstr(out, "socket 0 fd ") && strstr(out, sock), "the plugin was not handed its socket:\n%s", out);
	cr_expect(strstr(out, "served \"hello\""), "%s", out);
	struct stat st;
	cr_expect(stat(sock, &st) < 0 && errno == ENOENT, "the socket file is left behind");
}

Test(tester13, a_listen_address_that_cannot_be_bound_is_reported_in_both_modes)
{
	int busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	cr_assert(busy >= 0 && bind(busy, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(busy, 1) == 0 &&
		  getsockname(busy, (struct sockaddr *)&sa, &len) == 0);
	for (int in_process = 0; in_process <= 1; in_process++) {
		char *out, *err, args[512], want[128];
		snprintf(args, sizeof(args), "test %s listen=tcp:127.0.0.1:%d --json%s", fixture("echo_server"),
			 ntohs(sa.sin_port), in_process ? " --in-process" : "");
		snprintf(want, sizeof(want), "unable to bind listen address tcp:127.0.0.1:%d: Address already in use",
			 ntohs(sa.sin_port));
		cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 1, "%s", out);
		cr_expect(strstr(out, "\"errors\": [\"[echo_server] ") && strstr(out, want), "in_process=%d:\n%s", in_process, out);
		cr_expect(strstr(out, "\"reason\": \"config-error\""), "%s", out);
	}
	close(busy);
}

/* ---- configuration errors, as the user typed them ---- */

Test(tester13, configuration_errors_name_the_key_value_typed_in_the_report_and_the_json)
{
	char *out, *err, args[512];
	snprintf(args, sizeof(args), "test %s/ticker.so interval=abc --cycles 1", PLUGIN_DIR);
	cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 1);
	cr_expect(strstr(out, "  error: interval=abc: invalid value \"abc\": expected a duration"), "%s", out);
	cr_expect(!strstr(out, "ward-test-run-") && !strstr(err, "ward-test-run-") && !strstr(out, ".ini:"),
		  "the temporary configuration is named:\n%s%s", out, err);
	snprintf(args, sizeof(args), "test %s cuont=3 --json", fixture("options_demo"));
	cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 1);
	cr_expect(strstr(out, "\"errors\": [\"cuont=3: not an option of this plugin; did you mean 'count'?\", "
			      "\"name: required by the plugin but not set: who we are\"]"), "%s", out);
	cr_expect(strstr(out, "\"end\": {\"reason\": \"config-error\""), "%s", out);
	cr_expect(strstr(out, "\"message\": \"cuont=3: not an option of this plugin; did you mean 'count'? (and 1 more)\""), "%s", out);
	cr_expect_str_eq(err, "", "everything is in the JSON");
	cr_expect_eq(wt_ward_in(NULL, &out, &err, "test nothere.so --json"), 1);
	cr_expect(strstr(out, "\"errors\": [\"nothere.so: unable to find the plugin: No such file or directory\"]"), "%s", out);
}

Test(tester13, the_harness_reports_a_configuration_error_as_the_call_that_made_it)
{
	for (int in_process = 0; in_process <= 1; in_process++) {
		ward_harness *h = ward_harness_new(fixture("conf_echo"));
		ward_harness_set(h, "interval", "abc");
		ward_harness_in_process(h, in_process);
		cr_expect_eq(ward_harness_run(h), 1, "in_process=%d", in_process);
		cr_expect_str_eq(ward_harness_reason(h), "config-error", "in_process=%d", in_process);
		cr_expect(strstr(ward_harness_message(h), "ward_harness_set(h, \"interval\", \"abc\"): invalid value \"abc\""),
			  "in_process=%d: %s", in_process, ward_harness_message(h));
		ward_harness_free(h);
	}
	ward_harness *h = ward_harness_new(fixture("conf_echo"));
	ward_harness_set(h, "greeting", "one\n[ward]\nstate_dir = /");
	cr_expect_eq(ward_harness_run(h), 1);
	cr_expect_str_eq(ward_harness_reason(h), "config-error");
	cr_expect(strstr(ward_harness_message(h), "a key or value cannot contain a line break"), "%s", ward_harness_message(h));
	ward_harness_free(h);
	h = ward_harness_new("/nonexistent/p.so");
	cr_expect_eq(ward_harness_run(h), 1);
	cr_expect_str_eq(ward_harness_message(h), "ward_harness_new(\"/nonexistent/p.so\"): unable to find the plugin: No such file or directory");
	ward_harness_free(h);
}

/* ---- ward's own libraries are not the plugin's ---- */

Test(tester13, a_plugin_using_sqlite_it_did_not_link_fails_to_load_naming_the_symbol)
{
	const char *want = "undefined symbol: sqlite3_libversion";
	char *out, *err, args[512];
	snprintf(args, sizeof(args), "test %s", fixture("tester_sqlite_unlinked"));
	cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 1);
	cr_expect(strstr(out, "ended: load-failed: unable to load plugin: ") && strstr(out, want), "%s", out);
	snprintf(args, sizeof(args), "test %s --in-process", fixture("tester_sqlite_unlinked"));
	cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 1);
	cr_expect(strstr(out, want), "%s", out);
	/* Under the host: `ward check` and a real run say the same. */
	wt_setup(&wt, "[w]\nplugin = tester_sqlite_unlinked\nrestart = never\n");
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1);
	cr_expect(strstr(err, want), "%s", err);
	wt_start(&wt);
	cr_expect(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'load-failed'"));
	cr_expect(wt_wait_log(&wt, 5000, "w", want), "%s", wt_log(&wt, "w"));
	wt_stop(&wt, 10000);
}

Test(tester13, a_plugin_that_links_its_own_sqlite_works)
{
	char *out, *err, args[512];
	snprintf(args, sizeof(args), "test %s", fixture("tester_sqlite_linked"));
	cr_expect_eq(wt_ward_in(NULL, &out, &err, args), 0, "%s", out);
	cr_expect(strstr(out, "INFO sqlite 3."), "%s", out);
	wt_setup(&wt, "[w]\nplugin = tester_sqlite_linked\nrestart = never\n");
	wt_start(&wt);
	cr_expect(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'done'"));
	cr_expect(wt_wait_log(&wt, 5000, "w", "INFO sqlite 3."), "%s", wt_log(&wt, "w"));
	wt_stop(&wt, 10000);
}

Test(tester13, the_process_that_loads_a_plugin_exports_only_the_ward_runtime)
{
	char *out, *err, args[512];
	snprintf(args, sizeof(args), "test %s names=ward_log,ward_listen_fd,sqlite3_open,sqlite3_libversion,ini_parse,"
		 "ini_parse_stream,config_load,host_log,history_open,runtime_run,MHD_start_daemon,http_open", fixture("tester_symbols"));
	for (int in_process = 0; in_process <= 1; in_process++) {
		char run[600];
		snprintf(run, sizeof(run), "%s%s", args, in_process ? " --in-process" : "");
		cr_expect_eq(wt_ward_in(NULL, &out, &err, run), 0, "%s", out);
		cr_expect(strstr(out, "INFO visible ward_log") && strstr(out, "INFO visible ward_listen_fd"), "%s", out);
		const char *hidden[] = {"sqlite3_open", "sqlite3_libversion", "ini_parse", "ini_parse_stream",
					"config_load", "host_log", "history_open", "runtime_run", "MHD_start_daemon", "http_open"};
		for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
			char want[64];
			snprintf(want, sizeof(want), "INFO hidden %s\n", hidden[i]);
			cr_expect(strstr(out, want), "in_process=%d: %s is visible to plugins:\n%s", in_process, hidden[i], out);
		}
	}
}
