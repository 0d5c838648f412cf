/*
 * test_stop.c - stopping leaves nothing behind: cooperative workers end
 * `stopped` with shutdown run, workers that ignore SIGTERM are killed after
 * stop_timeout, every child of a worker dies with it, and a host killed with
 * SIGKILL takes its workers down too.
 */
#include "support.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

TestSuite(stop, .fini = wt_teardown, .timeout = 60);

#define LAST_RUN(col, worker) "SELECT " col " FROM runs WHERE worker = '" worker "' ORDER BY id DESC LIMIT 1"

static pid_t running_pid(const char *worker)
{
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = '%s'", worker),
		  "%s never became running; host said:\n%s", worker, wt_host_stderr(&wt));
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = '%s' ORDER BY id DESC LIMIT 1", worker);
}

static pid_t read_pidfile(const char *path)
{
	long long deadline = now_ms() + 5000;
	char *s;
	while (!(s = wt_read(path)) && now_ms() < deadline)
		sleep_ms(10);
	cr_assert(s, "the fixture never wrote %s", path);
	pid_t pid = (pid_t)atoi(s);
	cr_assert(pid > 0);
	return pid;
}

Test(stop, cooperative_workers_end_stopped_and_the_host_exits_0)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[b]\nplugin = slow_stop\nshutdown_ms = 100\n");
	wt_start(&wt);
	pid_t a = running_pid("a"), b = running_pid("b");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "a")), "stopped");
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "b")), "stopped");
	cr_expect(!pid_alive(a) && !pid_alive(b), "a worker outlived its host");
	char *log = wt_log(&wt, "b");
	cr_expect(strstr(log, "slow shutdown finished"), "shutdown did not run on stop:\n%s", log);
}

Test(stop, a_worker_ignoring_sigterm_is_killed_after_stop_timeout)
{
	wt_setup(&wt, "[w]\nplugin = ignore_stop\nstop_timeout = 300ms\n");
	wt_start(&wt);
	pid_t pid = running_pid("w");
	long long t0 = now_ms();
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	long long took = now_ms() - t0;
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "stop-timeout");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("signal", "w")), SIGKILL);
	cr_expect(took >= 300, "killed before stop_timeout (%lld ms)", took);
	cr_expect(took < 5000, "took %lld ms to enforce a 300 ms stop_timeout", took);
	cr_expect(!pid_alive(pid));
}

Test(stop, a_worker_hanging_in_init_is_killed_after_stop_timeout)
{
	wt_setup(&wt, "[w]\nplugin = init_hang\nstop_timeout = 200ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'starting' FROM instances WHERE worker = 'w'"));
	pid_t pid = (pid_t)wt_sql_int(&wt, LAST_RUN("pid", "w"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "stop-timeout");
	cr_expect(!pid_alive(pid));
}

Test(stop, a_stop_interrupts_ward_sleep_at_once)
{
	wt_setup(&wt, "[w]\nplugin = sleep_cycle\n");
	wt_start(&wt);
	running_pid("w");
	sleep_ms(100); /* inside its 60 s ward_sleep by now */
	long long t0 = now_ms();
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	long long took = now_ms() - t0;
	cr_expect(took < 2000, "stopping a sleeping worker took %lld ms", took);
	cr_expect_str_eq(wt_sql_text(&wt, LAST_RUN("reason", "w")), "stopped");
	char *log = wt_log(&wt, "w");
	cr_expect(strstr(log, "sleep interrupted"), "ward_sleep did not report the stop:\n%s", log);
}

Test(stop, children_of_a_worker_die_with_it_on_stop)
{
	char pidfile[1100];
	wt_setup(&wt, "");
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", wt.dir);
	char ini[1300];
	snprintf(ini, sizeof(ini), "[w]\nplugin = spawn_child\npidfile = %s\n", pidfile);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	pid_t worker = running_pid("w");
	pid_t child = read_pidfile(pidfile);
	cr_assert(pid_alive(child));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(wait_pid_gone(child, 2000), "the worker's child %d survived the stop", child);
	cr_expect(!pid_alive(worker));
}

Test(stop, a_child_that_left_the_process_group_is_killed_too)
{
	char pidfile[1100];
	wt_setup(&wt, "");
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", wt.dir);
	char ini[1300];
	snprintf(ini, sizeof(ini), "[w]\nplugin = spawn_child\nescape = yes\npidfile = %s\n", pidfile);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	running_pid("w");
	pid_t child = read_pidfile(pidfile);
	cr_assert(pid_alive(child));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(wait_pid_gone(child, 2000), "the escaped child %d survived the stop", child);
}

Test(stop, children_die_with_their_worker_when_it_is_killed_and_the_worker_is_restarted)
{
	char pidfile[1100];
	wt_setup(&wt, "");
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", wt.dir);
	char ini[1300];
	snprintf(ini, sizeof(ini), "[w]\nplugin = spawn_child\nrestart_delay = 10ms\npidfile = %s\n", pidfile);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	pid_t worker = running_pid("w");
	pid_t child = read_pidfile(pidfile);
	kill(worker, SIGKILL);
	cr_expect(wait_pid_gone(child, 2000), "the child of a killed worker survived");
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w'"));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'w' ORDER BY id LIMIT 1"), "signal");
	cr_expect_eq(wt_sql_int(&wt, "SELECT signal FROM runs WHERE worker = 'w' ORDER BY id LIMIT 1"), SIGKILL);
	running_pid("w");
	wt_stop(&wt, 10000);
}

Test(stop, a_host_killed_with_sigkill_leaves_no_worker_process_behind)
{
	char pidfile[1100];
	wt_setup(&wt, "");
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", wt.dir);
	char ini[1300];
	snprintf(ini, sizeof(ini),
		 "[w]\nplugin = spawn_child\npidfile = %s\n[busy]\nplugin = busy\n[hung]\nplugin = hang_cycle\nwatchdog = 0\n",
		 pidfile);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	pid_t w = running_pid("w"), busy = running_pid("busy"), hung = running_pid("hung");
	pid_t child = read_pidfile(pidfile);
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0, "the host has no spawner process");
	kill(wt.pid, SIGKILL);
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	cr_expect(wait_pid_gone(w, 2000), "worker survived its host");
	cr_expect(wait_pid_gone(busy, 2000), "a busy worker survived its host");
	cr_expect(wait_pid_gone(hung, 2000), "a hung worker survived its host");
	cr_expect(wait_pid_gone(child, 2000), "a worker's child survived the host");
	cr_expect(wait_pid_gone(spawner, 2000), "the spawner survived the host");
}

Test(stop, a_child_forked_by_a_worker_dies_with_it_even_while_the_host_cannot_reap)
{
	/* The host is stopped (SIGSTOP) when the worker dies: it can neither reap
	 * the worker nor kill its group. Were it SIGKILLed now instead, these
	 * children would be left behind if they waited for it. */
	char in_group[1100], escaped[1100], ini[2400];
	wt_setup(&wt, "");
	snprintf(in_group, sizeof(in_group), "%s/in-group.pid", wt.dir);
	snprintf(escaped, sizeof(escaped), "%s/escaped.pid", wt.dir);
	snprintf(ini, sizeof(ini), "[w]\nplugin = spawn_child\npidfile = %s\n[e]\nplugin = spawn_child\npidfile = %s\nescape = yes\n",
		 in_group, escaped);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	pid_t w = running_pid("w"), e = running_pid("e");
	pid_t w_child = read_pidfile(in_group), e_child = read_pidfile(escaped);
	kill(wt.pid, SIGSTOP);
	kill(w, SIGKILL);
	kill(e, SIGKILL);
	bool w_gone = wait_pid_gone(w_child, 2000), e_gone = wait_pid_gone(e_child, 2000);
	kill(wt.pid, SIGCONT);
	cr_expect(w_gone, "a child in the worker's group outlived it while the host was stopped");
	cr_expect(e_gone, "a child that left the group with setsid() outlived the worker while the host was stopped");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
