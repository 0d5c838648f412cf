/*
 * test_life13.c - the restart policy gives up as docs/lifecycle.md counts (failed runs
 * in a row, each shorter than restart_window), `ward run`'s exit statuses
 * and `critical` workers, listen sockets that could not be bound at boot
 * (retried, reported, started once bound), control commands that are
 * refused (a non-zero exit with the host's reason, never a silent SIGPIPE
 * or dropped names), and how a process's end is recorded when someone other
 * than the host killed it.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/worker.h"

static void no_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN); /* the test's own clients see EPIPE */
}

TestSuite(restart_policy, .fini = wt_teardown, .timeout = 90);
TestSuite(exit_status, .fini = wt_teardown, .timeout = 60);
TestSuite(unbound_socket, .init = no_sigpipe, .fini = wt_teardown, .timeout = 90);
TestSuite(refused_command, .init = no_sigpipe, .fini = wt_teardown, .timeout = 60);
TestSuite(exit_record, .fini = wt_teardown, .timeout = 60);

/* ---- the counting rule alone (restart_policy() is pure) ---- */

/* The defaults (docs/configuration.md) of the restart keys. */
static struct worker_conf default_restart_keys(void)
{
	return (struct worker_conf){.restart_delay_ms = 100, .restart_delay_max_ms = 30000, .max_restarts = 10,
				    .restart_window_ms = 60000};
}

Test(restart_policy, with_the_defaults_a_worker_crashing_at_once_gives_up_after_ten_restarts)
{
	struct worker_conf c = default_restart_keys();
	static const uint64_t want[] = {100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000};
	unsigned streak = 0;
	uint64_t waited = 0;
	for (int k = 0; k < 10; k++) {
		struct restart_verdict v = restart_policy(&c, &streak, 0, true);
		cr_assert_not(v.give_up, "gave up after %d restarts; max_restarts = 10 allows 10", k);
		cr_expect_eq(v.delay_ms, want[k], "delay %d is %llu ms, expected %llu", k + 1,
			     (unsigned long long)v.delay_ms, (unsigned long long)want[k]);
		waited += v.delay_ms;
	}
	/* The eleventh failed run in a row: failed, although the delays alone
	 * (81 s) outlasted restart_window (60 s), which used to reset the count. */
	cr_expect_gt(waited, c.restart_window_ms);
	cr_expect(restart_policy(&c, &streak, 0, true).give_up, "the defaults never gave up");
}

Test(restart_policy, a_run_that_lasts_restart_window_resets_the_count_and_the_delay)
{
	struct worker_conf c = default_restart_keys();
	unsigned streak = 0;
	for (int k = 0; k < 9; k++)
		restart_policy(&c, &streak, 10, true);
	cr_expect_eq(streak, 9);
	struct restart_verdict v = restart_policy(&c, &streak, 60000, true); /* lasted the window, then failed */
	cr_expect_not(v.give_up);
	cr_expect_eq(v.delay_ms, 100, "the delay did not start over: %llu ms", (unsigned long long)v.delay_ms);
	cr_expect_eq(streak, 0, "a run as long as restart_window must not count");
	for (int k = 0; k < 10; k++)
		cr_expect_not(restart_policy(&c, &streak, 59999, true).give_up, "restart %d after the reset was refused", k + 1);
	cr_expect(restart_policy(&c, &streak, 59999, true).give_up, "59999 ms is shorter than the window: it counts");
}

Test(restart_policy, an_ending_that_is_not_a_failure_breaks_the_streak)
{
	struct worker_conf c = default_restart_keys();
	unsigned streak = 0;
	for (int k = 0; k < 10; k++)
		restart_policy(&c, &streak, 0, true);
	struct restart_verdict v = restart_policy(&c, &streak, 0, false); /* restart = always, it ended done */
	cr_expect_not(v.give_up);
	cr_expect_eq(v.delay_ms, 100);
	cr_expect_eq(streak, 0);
}

Test(restart_policy, max_restarts_zero_gives_up_at_once_and_unlimited_never)
{
	struct worker_conf c = default_restart_keys();
	unsigned streak = 0;
	c.max_restarts = 0;
	cr_expect(restart_policy(&c, &streak, 0, true).give_up);
	streak = 0;
	cr_expect(restart_policy(&c, &streak, 3600000, true).give_up, "max_restarts = 0 restarts no failure, long or short");
	c.max_restarts = -1; /* unlimited */
	streak = 0;
	for (int k = 0; k < 1000; k++)
		cr_assert_not(restart_policy(&c, &streak, 0, true).give_up);
	cr_expect_eq(restart_policy(&c, &streak, 0, true).delay_ms, 30000, "the delay stays capped at restart_delay_max");
}

/* ---- the rule in a running host ---- */

#define RUN(col, worker, nth) "SELECT " col " FROM runs WHERE worker = '" worker "' ORDER BY id LIMIT 1 OFFSET " #nth

Test(restart_policy, a_worker_crashing_at_once_ends_failed_with_default_max_restarts_and_window)
{
	/* Short delays only to keep the test short: 10 restarts at the default
	 * delays take 81 s. The limit and the window are the defaults. */
	wt_setup(&wt, "[w]\nplugin = life_pattern\nrestart_delay = 10ms\nrestart_delay_max = 20ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 30000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"),
		  "a crash-looping worker never gave up:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 11, "max_restarts = 10 allows 11 runs");
	cr_expect_eq(wt_sql_int(&wt, "SELECT restarts FROM workers WHERE name = 'w'"), 10);
	char *err = wt_host_stderr(&wt);
	cr_expect(strstr(err, "[w:0] failed: 11 runs in a row failed, each within restart_window (1m00s) of its start; "
			      "max_restarts = 10; last exit: error"),
		  "the host did not say why it gave up:\n%s", err);
	/* The worker's own log says it too, naming the last process, not pid 0. */
	long long last = wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = 'w' ORDER BY id DESC LIMIT 1");
	char want[64];
	snprintf(want, sizeof(want), "pid=%lld WARD failed: 11 runs in a row failed", last);
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, want), "no '%s' line in the worker's log:\n%s", want, log);
	cr_expect_null(strstr(log, "pid=0 "), "a line of the worker's log names pid 0:\n%s", log);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(restart_policy, a_backoff_that_outgrows_restart_window_still_ends_failed)
{
	/* Delays 100, 200, 400, 400, 400 ms: the window (1 s) passes during the
	 * backoff, which is how the defaults used to never give up. */
	wt_setup(&wt, "[w]\nplugin = life_pattern\nrestart_delay = 100ms\nrestart_delay_max = 400ms\n"
		      "restart_window = 1s\nmax_restarts = 5\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"),
		  "never gave up after %lld runs:\n%s", wt_sql_int(&wt, "SELECT count(*) FROM runs"), wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 6, "max_restarts = 5 allows 6 runs");
	long long span = wt_sql_int(&wt, "SELECT max(ended_at) - min(started_at) FROM runs WHERE worker = 'w'");
	cr_expect_gt(span, 1000, "the runs took %lld ms, not longer than the window: the test proves nothing", span);
	wt_stop(&wt, 5000);
}

Test(restart_policy, a_run_that_outlives_restart_window_resets_the_count)
{
	/* short, short, long, short, short, long...: never three short failed
	 * runs in a row, so max_restarts = 2 is never reached. */
	wt_setup(&wt, "[w]\nplugin = life_pattern\npattern = SSL\nlong = 500ms\nrestart_delay = 10ms\n"
		      "restart_delay_max = 20ms\nrestart_window = 300ms\nmax_restarts = 2\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 30000, "SELECT count(*) >= 9 FROM runs WHERE worker = 'w' AND ended_at IS NOT NULL"),
		  "the worker stopped being restarted after %lld runs:\n%s",
		  wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), wt_host_stderr(&wt));
	cr_expect_str_neq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "failed");
	long long ran = wt_sql_int(&wt, RUN("ended_at - started_at", "w", 2));
	cr_expect_geq(ran, 300, "the third run lasted %lld ms, not the window: the test proves nothing", ran);
	cr_expect_null(strstr(wt_host_stderr(&wt), "failed:"), "%s", wt_host_stderr(&wt));
	wt_stop(&wt, 5000);
}

/* ---- `ward run` exit statuses and critical workers ---- */

Test(exit_status, ward_run_exits_0_after_a_requested_stop)
{
	wt_setup(&wt, "[w]\nplugin = idle\n[f]\nplugin = life_pattern\nrestart = never\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'f'"));
	cr_expect_eq(wt_stop(&wt, 5000), 0, "a worker that is not critical failed; the stop was asked for: 0");
}

Test(exit_status, ward_run_exits_1_when_it_cannot_start)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninstances = many\n");
	char *err;
	cr_expect_eq(wt_cli(&wt, NULL, &err, "run"), 1, "a configuration error: %s", err);
	cr_expect(strstr(err, "nothing was started"), "%s", err);

	wt_teardown();
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_expect_eq(wt_cli(&wt, NULL, &err, "run"), 1, "a second host on the same state_dir: %s", err);
	cr_expect(strstr(err, "another ward host"), "%s", err);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(exit_status, a_critical_worker_that_fails_stops_every_worker_and_the_host_exits_3)
{
	wt_setup(&wt, "[db]\nplugin = life_pattern\ncritical = yes\nrestart_delay = 10ms\nmax_restarts = 1\n"
		      "[app]\nplugin = idle\n");
	wt_start(&wt);
	int rc = wt_wait_exit(&wt, 15000);
	cr_assert_neq(rc, -1, "the host kept running after its critical worker failed:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 3, "exit status %d", rc);
	char *err = wt_host_stderr(&wt);
	cr_expect(strstr(err, "[db:0] failed: 2 runs in a row failed"), "%s", err);
	cr_expect(strstr(err, "[db] is critical and has failed: stopping every worker; the host will exit with status 3"),
		  "%s", err);
	cr_expect_str_eq(wt_sql_text(&wt, RUN("reason", "app", 0)), "stopped", "app was not stopped as for SIGTERM");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 0);
}

Test(exit_status, critical_is_a_boolean_and_a_worker_that_is_not_critical_does_not_stop_the_host)
{
	wt_setup(&wt, "[w]\nplugin = idle\ncritical = maybe\n");
	char *err;
	cr_expect_eq(wt_cli(&wt, NULL, &err, "check"), 1);
	cr_expect(strstr(err, "[w] critical: invalid value \"maybe\""), "%s", err);
	wt_teardown();
	wt_setup(&wt, "[f]\nplugin = life_pattern\ncritical = no\nrestart = never\n[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'f'"));
	sleep_ms(300);
	cr_expect(pid_alive(wt.pid), "a worker with critical = no stopped the host");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "running");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- listen sockets that could not be bound at boot ---- */

/* A listening TCP socket on 127.0.0.1 held by the test; *port gets its port. */
static int hold_port(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(fd, 1) == 0);
	socklen_t len = sizeof(sin);
	cr_assert(getsockname(fd, (struct sockaddr *)&sin, &len) == 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* One line to the echo_server behind port, its answer (owned by the test). */
static char *ask_tcp(int port, const char *line, int timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect: %s", strerror(errno));
	cr_assert(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	char *buf = wt_keep(calloc(1, 256));
	size_t n = 0;
	long long deadline = now_ms() + timeout_ms;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (n < 255 && !strchr(buf, '\n') && poll(&p, 1, (int)(deadline - now_ms())) > 0) {
		ssize_t r = read(fd, buf + n, 255 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return buf;
}

static void setup_tcp_worker(int port, const char *extra)
{
	char ini[512];
	snprintf(ini, sizeof(ini), "[w]\nplugin = echo_server\nlisten = tcp:127.0.0.1:%d\n%s", port, extra);
	wt_setup(&wt, ini);
}

Test(unbound_socket, a_port_in_use_at_boot_is_retried_reported_once_and_activation_works_once_it_is_free)
{
	int port, busy = hold_port(&port);
	setup_tcp_worker(port, "autostart = no\n");
	wt_start(&wt);
	char want[160];
	snprintf(want, sizeof(want), "unbound: tcp:127.0.0.1:%d: Address already in use; retrying", port);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT on_demand = '%s' FROM workers WHERE name = 'w'", want),
		  "status does not say the socket is unbound:\n%s", wt_host_stderr(&wt));
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, NULL, "status"), 0);
	cr_expect(strstr(out, want), "%s", out);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "stopped",
			 "a worker that never ran is not `failed`");
	cr_expect_null(strstr(out, "closing connections"), "%s", out);

	/* `ward start` tries at once, and says why it cannot start: exit 1. */
	cr_expect_eq(wt_cli(&wt, &out, &err, "start w"), 1);
	snprintf(want, sizeof(want), "w: cannot start: unable to bind listen address tcp:127.0.0.1:%d: Address already in use",
		 port);
	cr_expect(strstr(err, want), "stderr: %s\nstdout: %s", err, out);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs"), 0);

	sleep_ms(1500); /* a retry or two fail, silently */
	close(busy);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT on_demand = 'waiting for a connection' FROM workers WHERE name = 'w'"),
		  "the socket was never bound once the port was free:\n%s", wt_host_stderr(&wt));
	cr_expect_str_eq(ask_tcp(port, "hello\n", 10000), "echo: hello\n", "the first connection did not start the worker");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT activation = 'connection' FROM runs WHERE worker = 'w'"));
	err = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(err, "unable to bind listen address"), 1, "the failure was not said exactly once:\n%s", err);
	cr_expect_eq(wt_count(err, "[w] every listen socket is bound now"), 1, "the recovery was not said exactly once:\n%s", err);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(unbound_socket, ward_start_binds_a_port_freed_since_and_starts_the_worker)
{
	int port, busy = hold_port(&port);
	setup_tcp_worker(port, "autostart = no\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT on_demand LIKE 'unbound:%%' FROM workers WHERE name = 'w'"));
	close(busy);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "start w"), 0, "%s", err);
	cr_expect(strstr(out, "w: starting"), "%s", out);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'running' FROM workers WHERE name = 'w'"), "%s", wt_host_stderr(&wt));
	cr_expect_str_eq(ask_tcp(port, "there\n", 10000), "echo: there\n");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(unbound_socket, an_autostarted_worker_waits_for_its_socket_and_starts_once_it_is_bound)
{
	int port, busy = hold_port(&port);
	setup_tcp_worker(port, "[other]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'other'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT on_demand LIKE 'unbound:%%' FROM workers WHERE name = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "starting");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 0, "started without its socket");
	close(busy);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT state = 'running' FROM workers WHERE name = 'w'"),
		  "never started once its port was free:\n%s", wt_host_stderr(&wt));
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT activation = 'boot' FROM runs WHERE worker = 'w'"));
	cr_expect_str_eq(ask_tcp(port, "late\n", 10000), "echo: late\n");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- refused control commands ---- */

/* Runs ward with argv (no shell: arguments may be long); stderr to *err. */
static int run_ward(char **argv, char **err)
{
	char errp[1024];
	snprintf(errp, sizeof(errp), "%s/cli.err", wt.dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_WRONLY);
		if (fd < 0 || null < 0 || dup2(fd, 2) < 0 || dup2(null, 1) < 0)
			_exit(126);
		signal(SIGPIPE, SIG_DFL); /* as from a shell */
		execv(WARD_BIN, argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*err = wt_read(errp);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(refused_command, more_than_255_names_in_one_request_is_an_error_and_nothing_is_done)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'w'"));
	char args[1024] = "stop";
	for (int i = 0; i < 256; i++)
		strcat(args, " w");
	char *err;
	cr_expect_eq(wt_cli(&wt, NULL, &err, args), 1);
	cr_expect(strstr(err, "too many names in one request (at most 255)"), "%s", err);
	sleep_ms(200);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "running", "something was done");
	args[strlen(args) - 2] = '\0'; /* 255 names: that is allowed */
	cr_expect_eq(wt_cli(&wt, NULL, &err, args), 0, "%s", err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT state = 'stopped' FROM workers WHERE name = 'w'"));
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(refused_command, a_request_the_host_refuses_before_reading_it_all_gets_its_answer_not_a_sigpipe)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	/* 400 KiB of names: more than a socket buffer, so the CLI is still
	 * sending when the host, after 4096 bytes, answers and closes. */
	enum { NAMES = 20, LEN = 20 * 1024 };
	char *argv[NAMES + 5];
	int n = 0;
	argv[n++] = "ward";
	argv[n++] = "stop";
	for (int i = 0; i < NAMES; i++) {
		char *name = wt_keep(malloc(LEN + 1));
		memset(name, 'a' + i % 26, LEN);
		name[LEN] = '\0';
		argv[n++] = name;
	}
	argv[n++] = "-c";
	argv[n++] = wt.conf;
	argv[n] = NULL;
	char *err;
	int rc = run_ward(argv, &err);
	cr_expect_eq(rc, 1, "exit %d (141 is death by SIGPIPE); stderr: %s", rc, err);
	cr_expect(err && strstr(err, "request too long (at most 4096 bytes)"), "%s", err);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(refused_command, the_cli_prints_the_hosts_refusal_when_it_has_too_many_clients)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'w'"));
	enum { HELD = 32 }; /* the host's bound: these say nothing for 5 s */
	int fds[HELD];
	for (int i = 0; i < HELD; i++)
		fds[i] = wt_connect_control(&wt);
	char *argv[] = {"ward", "stop", "w", "-c", wt.conf, NULL};
	for (int k = 0; k < 5; k++) {
		char *err;
		int rc = run_ward(argv, &err);
		cr_expect_eq(rc, 1, "try %d: exit %d (141 is death by SIGPIPE); stderr: %s", k, rc, err);
		cr_expect(err && strstr(err, "too many clients at once; try again"), "try %d: %s", k, err);
	}
	for (int i = 0; i < HELD; i++)
		close(fds[i]);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "running");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- who killed it ---- */

Test(exit_record, a_worker_killed_from_outside_is_recorded_as_that_signal)
{
	wt_setup(&wt, "[w]\nplugin = idle\nrestart_delay = 10ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'w'"));
	pid_t pid = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w'");
	cr_assert(kill(pid, SIGKILL) == 0);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE pid = %d AND ended_at IS NOT NULL", (int)pid));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE pid = %d", (int)pid), "signal");
	cr_expect_eq(wt_sql_int(&wt, "SELECT signal FROM runs WHERE pid = %d", (int)pid), SIGKILL);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* The host told twice to stop SIGKILLs every worker's process group. A
 * worker that had left its group is missed by that kill (until workers
 * cannot leave it); killed by someone else later, it must be recorded as
 * what killed it, not as the host's kill. */
Test(exit_record, a_worker_the_hosts_kill_missed_then_killed_from_outside_is_not_blamed_on_the_host)
{
	wt_setup(&wt, "[w]\nplugin = life_escape\nwatchdog = 0\nstop_timeout = 60s\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'w'"));
	pid_t pid = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w'");
	cr_assert(wt_wait_log(&wt, 5000, "w", "escaped into") || wt_wait_log(&wt, 100, "w", "stayed in"));
	kill(wt.pid, SIGTERM);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'stopping' FROM instances WHERE worker = 'w'"));
	kill(wt.pid, SIGTERM);
	long long deadline = now_ms() + 2000;
	while (pid_alive(pid) && now_ms() < deadline)
		sleep_ms(20);
	bool missed = pid_alive(pid);
	if (missed)
		cr_assert(kill(pid, SIGKILL) == 0, "kill %d: %s", (int)pid, strerror(errno));
	cr_assert_eq(wt_wait_exit(&wt, 10000), 0, "%s", wt_host_stderr(&wt));
	char *reason = wt_sql_text(&wt, "SELECT reason FROM runs WHERE pid = %d", (int)pid);
	char *message = wt_sql_text(&wt, "SELECT coalesce(message, '') FROM runs WHERE pid = %d", (int)pid);
	if (missed) { /* it escaped: the SIGKILL that ended it was ours */
		cr_expect_str_eq(reason, "signal", "recorded as %s: %s", reason, message);
		cr_expect_eq(wt_sql_int(&wt, "SELECT signal FROM runs WHERE pid = %d", (int)pid), SIGKILL);
		cr_expect_null(strstr(message, "told twice"), "%s", message);
	} else { /* the host could kill it: then it is the host's kill */
		cr_expect_str_eq(reason, "stopped");
		cr_expect_str_eq(message, "killed: the host was told twice to stop");
	}
}
