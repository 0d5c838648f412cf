/*
 * test_probes.c - ward as a probe and as a container's PID 1 (docs/operator-guide.md,
 * docs/containers.md): `ward status` exit statuses, exit_when_done, `ward signal`,
 * and `ward run` as PID 1 of a pid namespace.
 */
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(status_probe, .fini = wt_teardown, .timeout = 60);
TestSuite(exit_when_done, .fini = wt_teardown, .timeout = 60);
TestSuite(signal_command, .fini = wt_teardown, .timeout = 60);
TestSuite(pid1, .fini = wt_teardown, .timeout = 90);

static int status_of(const char *args)
{
	char *out, *err;
	return wt_cli(&wt, &out, &err, args);
}

/* ---- ward status: 0 healthy, 3 not, 1 no host ---- */

Test(status_probe, status_exits_0_when_every_worker_is_healthy_and_3_once_one_has_failed)
{
	wt_setup(&wt, "[ok]\nplugin = idle\n"
		      "[lazy]\nplugin = echo_server\nlisten = unix:lazy.sock\nautostart = no\n"
		      "[finished]\nplugin = done_after\ncycles = 1\ninterval = 10ms\nrestart = on-failure\n"
		      "[bad]\nplugin = life_pattern\nrestart = never\nautostart = no\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM workers WHERE state IN ('running', 'done')"
					 " AND name IN ('ok', 'finished')"));
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "status");
	cr_expect_eq(rc, 0, "running, done and a worker waiting for its first connection are healthy (exit %d):\n%s%s", rc,
		     out, err);
	cr_assert_eq(wt_cli(&wt, NULL, &err, "start bad"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'bad'"));
	rc = wt_cli(&wt, &out, &err, "status");
	cr_expect_eq(rc, 3, "a failed worker: exit 3, not %d:\n%s%s", rc, out, err);
	cr_expect(strstr(out, "failed"), "%s", out);
	cr_expect_eq(status_of("status ok"), 0, "`status NAME` judges that worker only");
	cr_expect_eq(status_of("status bad"), 3);
	cr_expect_eq(status_of("status bad --json"), 3, "--json answers the same");
	cr_assert_eq(wt_cli(&wt, NULL, &err, "stop ok"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'stopped' FROM workers WHERE name = 'ok'"));
	cr_expect_eq(status_of("status ok"), 0, "stopped on request is healthy");
	cr_expect_eq(status_of("status"), 3, "a stop elsewhere does not hide the failure");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
	rc = wt_cli(&wt, &out, &err, "status");
	cr_expect_eq(rc, 1, "no host running: exit 1, not %d", rc);
	cr_expect(strstr(err, "no host is running"), "%s", err);
}

Test(status_probe, a_worker_waiting_to_restart_or_not_yet_ready_is_not_healthy)
{
	wt_setup(&wt, "[crashy]\nplugin = crash_after\ncycles = 1\ninterval = 10ms\nrestart_delay = 30s\nlimit.core = 0\n"
		      "[slow]\nplugin = init_slow\ninit_ms = 30000\ninit_timeout = 60s\nstop_timeout = 500ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'backoff' FROM workers WHERE name = 'crashy'"));
	cr_expect_eq(status_of("status crashy"), 3, "backoff is not healthy");
	cr_expect_eq(status_of("status slow"), 3, "starting (init not done) is not healthy");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- exit_when_done ---- */

Test(exit_when_done, the_host_exits_0_once_every_worker_is_done)
{
	wt_setup(&wt, "[a]\nplugin = done_after\ncycles = 2\ninterval = 10ms\n"
		      "[b]\nplugin = done_after\ncycles = 5\ninterval = 10ms\ninstances = 2\n"
		      "[never]\nplugin = idle\nautostart = no\n");
	wt_write_conf(&wt, "zz.ini", "[ward]\nexit_when_done = yes\n");
	wt_start(&wt);
	int rc = wt_wait_exit(&wt, 15000);
	cr_assert_neq(rc, -1, "the host did not exit once every worker was done:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 0, "exit %d:\n%s", rc, wt_host_stderr(&wt));
	cr_expect(strstr(wt_host_stderr(&wt), "exit_when_done: no worker can run again (2 done, 0 failed)"), "%s",
		  wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE reason = 'done'"), 3);
}

Test(exit_when_done, the_host_exits_3_when_a_worker_failed_and_waits_for_an_on_demand_worker)
{
	wt_setup(&wt, "[a]\nplugin = done_after\ncycles = 1\ninterval = 10ms\n"
		      "[f]\nplugin = life_pattern\nrestart = never\n");
	wt_write_conf(&wt, "zz.ini", "[ward]\nexit_when_done = yes\n");
	wt_start(&wt);
	int rc = wt_wait_exit(&wt, 15000);
	cr_assert_neq(rc, -1, "the host did not exit:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 3, "a worker failed: exit 3, not %d:\n%s", rc, wt_host_stderr(&wt));
	wt_teardown();

	/* A worker that a connection would start can still run: the host stays. */
	wt_setup(&wt, "[a]\nplugin = done_after\ncycles = 1\ninterval = 10ms\n"
		      "[lazy]\nplugin = echo_server\nlisten = unix:lazy.sock\nautostart = no\n");
	wt_write_conf(&wt, "zz.ini", "[ward]\nexit_when_done = yes\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'a'"));
	cr_expect_eq(wt_wait_exit(&wt, 700), -1, "the host exited although a connection could still start [lazy]");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- ward signal ---- */

/* Until [s]'s log says "got SIGUSR1" n times (its leader and its helper child). */
static bool wait_signalled(int n)
{
	for (long long deadline = now_ms() + 5000; now_ms() < deadline; sleep_ms(20))
		if (wt_count(wt_log(&wt, "s"), "got SIGUSR1") >= n)
			return true;
	return false;
}

Test(signal_command, ward_signal_reaches_every_process_of_the_worker_and_nothing_else)
{
	wt_setup(&wt, "[s]\nplugin = sig_log\ninterval = 20ms\n[other]\nplugin = sig_log\ninterval = 20ms\n"
		      "[off]\nplugin = idle\nautostart = no\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "s", "helper child"));
	cr_assert(wt_wait_log(&wt, 5000, "other", "helper child"));
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "signal USR1 s");
	cr_expect_eq(rc, 0, "exit %d: %s%s", rc, out, err);
	cr_expect(strstr(out, "s: SIGUSR1 sent to 1 instance"), "%s", out);
	cr_expect(wait_signalled(2), "the worker and its helper child did not both get SIGUSR1:\n%s", wt_log(&wt, "s"));
	cr_expect_eq(wt_count(wt_log(&wt, "other"), "got SIGUSR1"), 0, "another worker was signalled");
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal SIGUSR1 s"), 0, "SIGUSR1 spelt in full: %s", err);
	cr_expect(wait_signalled(4), "%s", wt_log(&wt, "s"));
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal 10 s"), 0, "a number: %s", err);
	cr_expect(wait_signalled(6), "%s", wt_log(&wt, "s"));
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 3 FROM events WHERE worker = 's' AND event = 'signal'"),
		  "each signal is recorded in the history");
	/* Mistakes: said, and nothing sent. */
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal USR9 s"), 2);
	cr_expect(strstr(err, "unknown signal 'USR9'"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal USR1"), 2, "no worker named");
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal USR1 off s"), 1);
	cr_expect(strstr(err, "off: not running (stopped): no process to signal; nothing was sent"), "%s%s", out, err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "signal USR1 nosuch"), 1);
	cr_expect(strstr(err, "no worker named 'nosuch'"), "%s", err);
	sleep_ms(200);
	cr_expect_eq(wt_count(wt_log(&wt, "s"), "got SIGUSR1"), 6, "a refused request sent something:\n%s",
		     wt_log(&wt, "s"));
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- ward run as PID 1 of a pid namespace (a container) ---- */

/* The host, PID 1 inside: the one child of unshare --fork. */
static pid_t inner_host(pid_t unshare_pid, int timeout_ms)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)unshare_pid, (int)unshare_pid);
	for (long long deadline = now_ms() + timeout_ms; now_ms() < deadline; sleep_ms(10)) {
		char *s = wt_read(path);
		if (s && atoi(s) > 0)
			return atoi(s);
	}
	return 0;
}

/* Zombies among pid's children: orphans nobody reaped. */
static int zombie_children(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	char *s = wt_read(path);
	int zombies = 0;
	for (char *p = s; p && *p;) {
		long child = strtol(p, &p, 10);
		if (child <= 0)
			break;
		char stat[64];
		snprintf(stat, sizeof(stat), "/proc/%ld/stat", child);
		char *st = wt_read(stat);
		char *end = st ? strrchr(st, ')') : NULL;
		zombies += end && end[2] == 'Z';
	}
	return zombies;
}

static void launch_as_pid1(void)
{
	/* The namespace's pids mean nothing outside it: the teardown, which
	 * kills the process groups of runs left open, must not read them. */
	char state[400];
	snprintf(state, sizeof(state), "%s/ns-state", wt.dir);
	char ini[600];
	snprintf(ini, sizeof(ini), "[ward]\nstate_dir = %s\n", state);
	wt_write_conf(&wt, "zz.ini", ini);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(wt.errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("unshare", "unshare", "--pid", "--fork", "--mount-proc", "--kill-child", WARD_BIN, "run", "-c",
		       wt.conf, (char *)NULL);
		_exit(127);
	}
	wt.pid = pid;
}

Test(pid1, as_pid1_the_host_reaps_every_orphan_and_stops_cleanly_on_sigterm)
{
	wt_setup(&wt, "[orphans]\nplugin = orphan_maker\ninterval = 10ms\n[w]\nplugin = idle\n");
	launch_as_pid1();
	pid_t host = inner_host(wt.pid, 5000);
	cr_assert(host > 0, "no host under unshare:\n%s", wt_host_stderr(&wt));
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)host);
	char *st = wt_read(path), *ns = st ? strstr(st, "NSpid:") : NULL;
	char *eol = ns ? strchr(ns, '\n') : NULL;
	cr_assert(eol && eol[-1] == '1' && (eol[-2] == '\t' || eol[-2] == ' '), "the host is not PID 1 of its namespace:\n%s",
		  st ? st : "(no status)");
	char *out, *err;
	bool up = false;
	for (long long deadline = now_ms() + 10000; !up && now_ms() < deadline; sleep_ms(50))
		up = wt_cli(&wt, &out, &err, "status") == 0 && strstr(out, "orphans") && wt_count(out, "running") >= 2;
	cr_assert(up, "the workers did not come up under PID 1:\n%s%s\n%s", out, err, wt_host_stderr(&wt));
	sleep_ms(1000); /* about a hundred orphans made meanwhile */
	int zombies = zombie_children(host);
	cr_expect(zombies <= 1, "PID 1 leaves orphans unreaped: %d zombies", zombies);
	cr_assert_eq(kill(host, SIGTERM), 0);
	int rc = wt_wait_exit(&wt, 10000);
	cr_expect_eq(rc, 0, "SIGTERM to PID 1: a clean stop, exit 0, not %d:\n%s", rc, wt_host_stderr(&wt));
	cr_expect(strstr(wt_host_stderr(&wt), "every worker has stopped; host exiting"), "%s", wt_host_stderr(&wt));
}

Test(pid1, as_pid1_the_host_exits_3_when_a_critical_worker_fails)
{
	wt_setup(&wt, "[db]\nplugin = life_pattern\ncritical = yes\nrestart = never\n[w]\nplugin = idle\n");
	launch_as_pid1();
	int rc = wt_wait_exit(&wt, 15000);
	cr_assert_neq(rc, -1, "PID 1 kept running after its critical worker failed:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 3, "exit %d:\n%s", rc, wt_host_stderr(&wt));
}
