/*
 * test_spawner.c - how worker processes are made: by the host's spawner, yet
 * each one is the host's own child and an ordinary forked process to plugin
 * code; the host holds one descriptor per process, so thousands fit; a dead
 * spawner is replaced without touching running workers; and nothing of it
 * outlives the host.
 */
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(spawner, .fini = wt_teardown, .timeout = 60);

static pid_t running_pid(const char *worker)
{
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 0 FROM instances WHERE worker = '%s' AND state != 'running'",
			      worker),
		  "%s never became running; host said:\n%s", worker, wt_host_stderr(&wt));
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = '%s' ORDER BY id DESC LIMIT 1", worker);
}

/* The number after `key=` in the worker's procinfo line, or -99. */
static int procinfo(const char *worker, const char *key)
{
	cr_assert(wt_wait_log(&wt, 5000, worker, "procinfo "), "no procinfo line in %s's log", worker);
	char *log = wt_log(&wt, worker);
	char needle[64];
	snprintf(needle, sizeof(needle), " %s=", key);
	const char *at = strstr(strstr(log, "procinfo "), needle);
	return at ? atoi(at + strlen(needle)) : -99;
}

Test(spawner, a_worker_is_the_hosts_child_and_an_ordinary_forked_process_to_glibc)
{
	wt_setup(&wt, "[w]\nplugin = procinfo\n");
	wt_start(&wt);
	running_pid("w");
	cr_expect(wt_spawner(wt.pid) > 0, "the host has no spawner process");
	cr_expect_eq(procinfo("w", "ppid"), wt.pid, "the worker's parent is not the host");
	/* Both fail with ESRCH when glibc holds a wrong thread id for the process. */
	cr_expect_eq(procinfo("w", "sigqueue_self"), 0);
	cr_expect_eq(procinfo("w", "pthread_kill_main"), 0);
	/* stdin/out/err, the runtime channel and the runtime's eventfd: nothing else. */
	cr_expect_eq(procinfo("w", "fds"), 5, "the worker holds %d descriptors", procinfo("w", "fds"));
	cr_expect(!strstr(wt_host_stderr(&wt), "spawner"), "the host said:\n%s", wt_host_stderr(&wt));
}

/* The first string of /proc/PID/cmdline (what `ps` shows), or "". */
static char *cmdline_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	char *cmd = wt_read_raw(path);
	if (!cmd)
		return wt_keep(strdup(""));
	return wt_keep(cmd);
}

Test(spawner, ps_tells_the_spawner_and_each_worker_instance_apart)
{
	wt_setup(&wt, "[ticker]\nplugin = idle\ninstances = 2\n[other]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 3 FROM instances WHERE state = 'running'"),
		  "the host said:\n%s", wt_host_stderr(&wt));
	const char *expect[][2] = {{"ticker", "0"}, {"ticker", "1"}, {"other", "0"}};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		pid_t pid = (pid_t)wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = '%s' AND instance = %s "
						   "ORDER BY id DESC LIMIT 1", expect[i][0], expect[i][1]);
		char want[64];
		snprintf(want, sizeof(want), "ward: worker %s:%s", expect[i][0], expect[i][1]);
		cr_expect_str_eq(cmdline_of(pid), want);
	}
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0, "the host has no spawner process");
	cr_expect_str_eq(cmdline_of(spawner), "ward: spawner");
}

Test(spawner, the_host_holds_one_descriptor_per_worker_process)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[many]\nplugin = idle\ninstances = 40\nautostart = no\n");
	wt_start(&wt);
	running_pid("a");
	int before = wt_fd_count(wt.pid);
	cr_assert(before > 0);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start many"), 0, "%s%s", out, err);
	running_pid("many");
	int after = wt_fd_count(wt.pid);
	/* 40 stdout pipes, and the log file of `many` */
	cr_expect(after - before >= 40 && after - before <= 41, "40 more processes cost the host %d descriptors",
		  after - before);
}

Test(spawner, after_the_spawner_is_killed_the_host_forks_workers_itself_and_says_so)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[c]\nplugin = crash_after\ncycles = 20\ninterval = 10ms\n"
		      "restart_delay = 10ms\nrestart_delay_max = 20ms\nmax_restarts = unlimited\n[m]\nplugin = memscan\nneedle = s3cr3t-of-m\n"
		      "autostart = no\n[n]\nplugin = idle\nsecret = s3cr3t-of-m-value\n");
	wt_start(&wt);
	pid_t a = running_pid("a");
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'c'"));
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0, "the host has no spawner process");
	kill(spawner, SIGKILL);
	/* Said once, when the host reaps it or when a start finds it gone. */
	const char *said = "; the host forks workers itself from now on";
	long long deadline = now_ms() + 5000;
	while (!strstr(wt_host_stderr(&wt), said) && now_ms() < deadline)
		sleep_ms(20);
	char *host = wt_host_stderr(&wt);
	cr_expect(strstr(host, "the spawner process died: killed by signal 9") ||
			  strstr(host, "the spawner process failed: "),
		  "the spawner's death was not reported:\n%s", host);
	long long runs = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'c'");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) >= %lld FROM runs WHERE worker = 'c'", runs + 3),
		  "the crashing worker was not restarted after the spawner died:\n%s", wt_host_stderr(&wt));
	cr_expect(pid_alive(a), "a running worker died with the spawner");
	cr_expect_eq(wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'a'"), a);
	/* Forked from the host now, a worker still holds no other worker's secret
	 * and none of the host's shared memory but its own slot's page. */
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start m"), 0, "%s%s", out, err);
	cr_assert(wt_wait_log(&wt, 5000, "m", "shared mappings:"), "m's log:\n%s", wt_log(&wt, "m"));
	cr_expect(wt_wait_log(&wt, 0, "m", "shared mappings: 1;"), "m's log:\n%s", wt_log(&wt, "m"));
	cr_expect(wt_wait_log(&wt, 0, "m", "followed by '-': 0"), "m holds n's secret:\n%s", wt_log(&wt, "m"));
	host = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(host, said), 1, "not said exactly once:\n%s", host);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(spawner, ward_log_from_a_child_the_plugin_forked_lands_in_the_workers_log)
{
	wt_setup(&wt, "[w]\nplugin = spawn_child\n[e]\nplugin = spawn_child\nescape = yes\n");
	wt_start(&wt);
	running_pid("w");
	running_pid("e");
	/* In the worker's process group, or out of it with setsid(). */
	cr_expect(wt_wait_log(&wt, 5000, "w", "INFO hello from the child\n"), "w's log:\n%s", wt_log(&wt, "w"));
	cr_expect(wt_wait_log(&wt, 5000, "e", "INFO hello from the child after setsid"), "e's log:\n%s",
		  wt_log(&wt, "e"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* Runs forge (as `user`, or the host's user when NULL), whose frame names
 * b's process; returns b's log once forge has logged through its channel. */
static char *forge_against_b(const char *user)
{
	char f[256];
	snprintf(f, sizeof(f), "[f]\nplugin = forge\nautostart = no\n%s%s%s", user ? "user = " : "",
		 user ? user : "", user ? "\n" : "");
	wt_setup(&wt, "[b]\nplugin = idle\n");
	wt_write_conf(&wt, "f.ini", f);
	chmod(wt.dir, 0711); /* mkdtemp made it 0700: let another user reach the state dir */
	wt_start(&wt);
	pid_t b = running_pid("b");
	snprintf(f + strlen(f), sizeof(f) - strlen(f), "victim = %d\n", (int)b);
	wt_write_conf(&wt, "f.ini", f);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s%s", out, err);
	cr_assert_eq(wt_cli(&wt, &out, &err, "start f"), 0, "%s%s", out, err);
	cr_assert(wt_wait_log(&wt, 5000, "f", "forge sent (child status 0)"), "f's log:\n%s", wt_log(&wt, "f"));
	return wt_log(&wt, "b");
}

Test(spawner, a_worker_cannot_speak_for_a_worker_of_another_user)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a worker as another user");
	char *b_log = forge_against_b("nobody");
	cr_expect(!strstr(b_log, "forged line"), "a frame from nobody's worker landed in b's log:\n%s", b_log);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(spawner, a_frame_naming_a_worker_of_the_same_user_is_not_taken_as_its_own)
{
	/* The host names the instance by the socket a frame came from: what
	 * the frame says does not count, even among workers of one user. */
	char *b_log = forge_against_b(NULL);
	cr_expect(wt_wait_log(&wt, 2000, "f", "INFO forged line"), "the frame is f's own; f's log:\n%s", wt_log(&wt, "f"));
	cr_expect(!strstr(b_log, "forged line"), "a frame from f landed in b's log:\n%s", b_log);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
