/*
 * test_rolling.c - a reload that changes a worker with several instances:
 * they are replaced one at a time, each new one running before the next old
 * one stops (a worker of 4 never has fewer than 3 running); a changed
 * `instances` starts or stops only the difference; a new configuration that
 * does not start stops the rollout, the old instances keep running; a stop
 * of the worker or of the host during a rollout ends it cleanly.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(rolling, .fini = wt_teardown, .timeout = 120);

/* init_slow is ready 300 ms after it starts: a replacement takes a while. */
#define OLD_CONF "[w]\nplugin = init_slow\ninit_ms = 300\ninstances = %d\nstop_timeout = 5s\n"
#define NEW_CONF "[w]\nplugin = init_slow\ninit_ms = 350\ninstances = %d\nstop_timeout = 5s\n"

static void write_worker(const char *fmt, int instances)
{
	char ini[512];
	snprintf(ini, sizeof(ini), fmt, instances);
	wt_write_conf(&wt, "w.ini", ini);
}

static void start_with(int instances)
{
	wt_setup(&wt, "");
	write_worker(OLD_CONF, instances);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = %d FROM instances WHERE worker = 'w' AND state = 'running'",
			      instances),
		  "the %d instances did not start:\n%s", instances, wt_host_stderr(&wt));
}

static long long pid_of(int instance)
{
	return wt_sql_int(&wt, "SELECT coalesce(pid, 0) FROM instances WHERE worker = 'w' AND instance = %d", instance);
}

static void pids_of(long long *pids, int n)
{
	for (int i = 0; i < n; i++) {
		pids[i] = pid_of(i);
		cr_assert(pids[i] > 0, "instance %d has no pid", i);
	}
}

/* `ward reload` in the background, so that the test samples while it runs. */
static pid_t reload_in_background(void)
{
	char out[400];
	snprintf(out, sizeof(out), "%s/reload.out", wt.dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (!freopen(out, "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(127);
		execl("/usr/bin/timeout", "timeout", "20", WARD_BIN, "reload", "-c", wt.conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Its exit code and what it printed. */
static int reload_result(pid_t pid, char **out)
{
	int status = 0;
	for (int i = 0; i < 1500 && waitpid(pid, &status, WNOHANG) == 0; i++)
		sleep_ms(20);
	char path[400];
	snprintf(path, sizeof(path), "%s/reload.out", wt.dir);
	*out = wt_read(path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int reload_now(char **out)
{
	char *err;
	int rc = wt_cli(&wt, out, &err, "reload");
	cr_assert_eq(rc, 0, "reload failed: %s%s", *out, err);
	return rc;
}

static long long reload_runs_ready(void)
{
	return wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND activation = 'reload' AND ready_at IS NOT NULL");
}

Test(rolling, a_reload_replaces_four_instances_one_at_a_time_and_three_always_run)
{
	start_with(4);
	long long old[4];
	pids_of(old, 4);

	write_worker(NEW_CONF, 4);
	pid_t reload = reload_in_background();
	int samples = 0, fewest = 4;
	long long deadline = now_ms() + 60000;
	while (reload_runs_ready() < 4 && now_ms() < deadline) {
		int running = (int)wt_sql_int(&wt, "SELECT count(*) FROM instances WHERE worker = 'w' AND state = 'running'");
		if (running < fewest)
			fewest = running;
		samples++;
		sleep_ms(20);
	}
	char *out;
	cr_expect_eq(reload_result(reload, &out), 0, "%s", out);
	cr_expect(strstr(out, "replacing its instances one at a time: w"), "%s", out);
	cr_assert_eq(reload_runs_ready(), 4, "the rollout did not finish:\n%s", wt_host_stderr(&wt));
	cr_expect_geq(fewest, 3, "only %d of 4 instances were running at one point (%d samples)", fewest, samples);
	cr_expect_gt(samples, 10, "too few samples (%d) to see the rollout", samples);

	/* Every instance has a new process, the old ones are gone. */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"));
	for (int i = 0; i < 4; i++) {
		long long now = pid_of(i);
		cr_expect(now > 0 && now != old[i], "instance %d still has pid %lld", i, now);
		cr_expect(wait_pid_gone((pid_t)old[i], 5000), "the old process of instance %d is still alive", i);
	}
	/* They run the new settings. */
	cr_assert(wt_wait_log(&wt, 5000, "w", "init_slow ready after 350 ms"));
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms"), 4, "%s", wt_log(&wt, "w"));

	/* One at a time, in order: each old instance is stopped only once the
	 * one replaced before it is running. */
	long long prev_ready = 0;
	for (int i = 0; i < 4; i++) {
		long long started = wt_sql_int(&wt, "SELECT started_at FROM runs WHERE worker = 'w' AND instance = %d AND activation = 'reload'", i);
		long long ready = wt_sql_int(&wt, "SELECT ready_at FROM runs WHERE worker = 'w' AND instance = %d AND activation = 'reload'", i);
		long long stop_asked = wt_sql_int(&wt, "SELECT min(at) FROM events WHERE worker = 'w' AND instance = %d AND event = 'stopping'", i);
		long long old_ended = wt_sql_int(&wt, "SELECT ended_at FROM runs WHERE worker = 'w' AND instance = %d AND activation = 'boot'", i);
		cr_expect_geq(stop_asked, prev_ready, "instance %d was stopped before instance %d was running", i, i - 1);
		cr_expect_geq(started, old_ended, "instance %d's new process started before its old one ended", i);
		cr_expect_gt(ready, 0);
		prev_ready = ready;
	}
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 8, "one boot and one reload run each");
	cr_expect(strstr(wt_host_stderr(&wt), "[w] rolling reload done: 4 instances replaced"), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM events WHERE worker = 'w' AND event = 'rollout-done'"), 1);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, scaling_from_four_to_six_starts_two_and_touches_none_of_the_four)
{
	start_with(4);
	long long old[4];
	pids_of(old, 4);
	write_worker(OLD_CONF, 6);
	char *out;
	reload_now(&out);
	cr_expect(strstr(out, "scaling from 4 to 6 instances: w"), "%s", out);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 6 FROM instances WHERE worker = 'w' AND state = 'running'"),
		  "%s", wt_host_stderr(&wt));
	for (int i = 0; i < 4; i++)
		cr_expect_eq(pid_of(i), old[i], "instance %d was replaced", i);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND instance < 4"), 4,
		     "an instance of the four was restarted");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND instance >= 4 AND activation = 'reload'"), 2);
	char *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status w --json"), 0, "%s", err);
	cr_expect(strstr(out, "\"instance\": 5") && !strstr(out, "\"instance\": 6"), "%s", out);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, scaling_from_six_to_four_stops_the_two_highest)
{
	start_with(6);
	long long old[6];
	pids_of(old, 6);
	write_worker(OLD_CONF, 4);
	char *out;
	reload_now(&out);
	cr_expect(strstr(out, "scaling from 6 to 4 instances: w"), "%s", out);
	cr_expect(wait_pid_gone((pid_t)old[4], 10000) && wait_pid_gone((pid_t)old[5], 10000), "instances 4 and 5 still run");
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w'"),
		  "status still shows the instances that went");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT instances = 4 FROM workers WHERE name = 'w'"));
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(pid_of(i), old[i], "instance %d was replaced", i);
		cr_expect(pid_alive((pid_t)old[i]));
	}
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 6, "nothing started");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'w' AND instance = 5"), "stopped");
	char *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status w --json"), 0, "%s", err);
	cr_expect(strstr(out, "\"instance\": 3") && !strstr(out, "\"instance\": 4"), "%s", out);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, a_configuration_that_fails_stops_the_rollout_and_the_old_instances_keep_running)
{
	start_with(4);
	long long old[4];
	pids_of(old, 4);
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = init_slow\ninit_ms = 300\ninstances = 4\nstop_timeout = 5s\nfail = yes\n");
	char *out;
	reload_now(&out);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) FROM events WHERE worker = 'w' AND event = 'rollout-stopped'"),
		  "%s", wt_host_stderr(&wt));
	/* Instance 0 keeps trying (its restart policy): the rollout is said to have stopped once. */
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) >= 3 FROM runs WHERE worker = 'w' AND instance = 0 AND reason = 'init-failed'"),
		  "%s", wt_host_stderr(&wt));
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(err, "rolling reload stopped"), 1, "%s", err);
	cr_expect(strstr(err, "[w] rolling reload stopped: instance 0 did not become ready with the new configuration"),
		  "%s", err);
	cr_expect(strstr(err, "instances 1, 2, 3 keep running the previous configuration"), "%s", err);
	cr_expect(strstr(wt_log(&wt, "w"), "reload: rolling reload stopped: instance 0"), "%s", wt_log(&wt, "w"));
	for (int i = 1; i < 4; i++) {
		cr_expect_eq(pid_of(i), old[i], "instance %d was replaced", i);
		cr_expect(pid_alive((pid_t)old[i]));
		cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND instance = %d", i), 1);
	}
	cr_expect_str_neq(wt_sql_text(&wt, "SELECT state FROM instances WHERE worker = 'w' AND instance = 0"), "running");
	/* The worker shows its most telling state: instance 0 restarting, not `running`. */
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT state IN ('backoff', 'starting') FROM workers WHERE name = 'w'"),
		  "%s", wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"));

	/* A corrected configuration, reloaded, replaces all four. */
	write_worker(NEW_CONF, 4);
	reload_now(&out);
	cr_assert(wt_wait_log(&wt, 30000, "w", "init_slow ready after 350 ms"));
	cr_assert(wt_wait_sql(&wt, 30000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"
					  " AND pid NOT IN (%lld, %lld, %lld)", old[1], old[2], old[3]),
		  "%s", wt_host_stderr(&wt));
	cr_expect(wt_wait_log(&wt, 10000, "w", "rolling reload done"));
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms"), 4, "%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

/* Waits until the rollout is replacing instance 1 (0 is done). */
static void rollout_half_way(void)
{
	write_worker(NEW_CONF, 4);
	char *out;
	reload_now(&out);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) FROM events WHERE worker = 'w' AND event = 'rollout' AND instance = 1"),
		  "%s", wt_host_stderr(&wt));
}

/* Every process the worker ever had, by pid. */
static int processes_alive(void)
{
	int alive = 0;
	for (int i = 0; i < 20; i++) {
		long long pid = wt_sql_int(&wt, "SELECT coalesce(pid, 0) FROM runs WHERE worker = 'w' ORDER BY id LIMIT 1 OFFSET %d", i);
		alive += pid > 0 && pid_alive((pid_t)pid);
	}
	return alive;
}

Test(rolling, ward_stop_during_a_rollout_stops_every_instance_and_nothing_is_replaced_after)
{
	start_with(4);
	rollout_half_way();
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'stopped'"),
		  "%s", wt_host_stderr(&wt));
	long long runs = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'");
	sleep_ms(1000);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), runs, "the rollout went on after the stop");
	cr_expect_eq(processes_alive(), 0, "a process of the worker is left");
	cr_expect_eq(wt_count(wt_host_stderr(&wt), "rolling reload stopped"), 0, "%s", wt_host_stderr(&wt));

	/* Started again: every instance has the new settings. */
	int before = wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms");
	cr_assert_eq(wt_cli(&wt, &out, &err, "start w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"));
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 4 FROM runs WHERE worker = 'w' AND activation = 'command'"));
	long long t0 = now_ms();
	while (wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms") < before + 4 && now_ms() - t0 < 10000)
		sleep_ms(50);
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms"), before + 4, "%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 300 ms"), 4, "an old setting came back");
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, the_host_stops_during_a_rollout_in_bounded_time_and_leaves_no_process)
{
	start_with(4);
	rollout_half_way();
	long long t0 = now_ms();
	cr_expect_eq(wt_stop(&wt, 15000), 0, "%s", wt_host_stderr(&wt));
	cr_expect_lt(now_ms() - t0, 10000, "the host took %lld ms to stop", now_ms() - t0);
	sleep_ms(200);
	cr_expect_eq(processes_alive(), 0, "a process of the worker is left");
}

Test(rolling, a_second_reload_during_a_rollout_brings_every_instance_to_the_newest_settings)
{
	start_with(4);
	rollout_half_way();
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = init_slow\ninit_ms = 400\ninstances = 4\nstop_timeout = 5s\n");
	char *out;
	reload_now(&out);
	cr_expect(strstr(out, "replacing its instances one at a time: w"), "%s", out);
	/* Each instance ends with a process of the newest settings, the ones
	 * replaced before the second reload included. */
	long long t0 = now_ms();
	while (wt_count(wt_log(&wt, "w"), "init_slow ready after 400 ms") < 4 && now_ms() - t0 < 60000)
		sleep_ms(50);
	cr_assert_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 400 ms"), 4, "%s", wt_log(&wt, "w"));
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"));
	cr_expect(wt_wait_log(&wt, 10000, "w", "rolling reload done"), "%s", wt_log(&wt, "w"));
	sleep_ms(500);
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 400 ms"), 4, "an instance was replaced twice");
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, a_stopped_worker_takes_the_new_configuration_without_being_started)
{
	start_with(4);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'stopped'"));
	write_worker(NEW_CONF, 4);
	reload_now(&out);
	cr_expect(strstr(out, "taking its new configuration (not running: nothing was started): w"), "%s", out);
	sleep_ms(1000);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 4, "a reload started it");
	cr_assert_eq(wt_cli(&wt, &out, &err, "start w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"));
	cr_expect(wt_wait_log(&wt, 5000, "w", "init_slow ready after 350 ms"));
	long long t0 = now_ms();
	while (wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms") < 4 && now_ms() - t0 < 5000)
		sleep_ms(50);
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms"), 4, "%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, failed_instances_start_again_with_a_configuration_that_changed)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = init_slow\ninit_ms = 50\ninstances = 3\nfail = yes\nmax_restarts = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 3 FROM instances WHERE worker = 'w' AND state = 'failed'"),
		  "%s", wt_host_stderr(&wt));
	write_worker(NEW_CONF, 3);
	char *out;
	reload_now(&out);
	cr_expect(strstr(out, "starting its failed instances with the new configuration: w"), "%s", out);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 3 FROM instances WHERE worker = 'w' AND state = 'running'"),
		  "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND activation = 'reload'"), 3);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

Test(rolling, an_on_demand_worker_takes_the_new_configuration_and_waits_for_a_connection)
{
	wt_setup(&wt, "");
	char sock[400], ini[1200];
	snprintf(sock, sizeof(sock), "%s/w.sock", wt.dir);
	snprintf(ini, sizeof(ini), "[w]\nplugin = init_slow\ninit_ms = 300\ninstances = 2\nlisten = unix:%s\nautostart = no\n", sock);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT on_demand = 'waiting for a connection' FROM workers WHERE name = 'w'"),
		  "%s", wt_host_stderr(&wt));
	snprintf(ini, sizeof(ini), "[w]\nplugin = init_slow\ninit_ms = 350\ninstances = 2\nlisten = unix:%s\nautostart = no\n", sock);
	wt_write_conf(&wt, "w.ini", ini);
	char *out;
	reload_now(&out);
	cr_expect(strstr(out, "taking its new configuration (not running: nothing was started): w"), "%s", out);
	sleep_ms(1000);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 0, "the reload started it");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT on_demand = 'waiting for a connection' FROM workers WHERE name = 'w'"));

	/* The same socket, still held: a connection starts both, with the new settings. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", sock, strerror(errno));
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 2 FROM instances WHERE worker = 'w' AND state = 'running'"),
		  "%s", wt_host_stderr(&wt));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT activation FROM runs WHERE worker = 'w' ORDER BY id LIMIT 1"), "connection");
	long long t0 = now_ms();
	while (wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms") < 2 && now_ms() - t0 < 5000)
		sleep_ms(50);
	cr_expect_eq(wt_count(wt_log(&wt, "w"), "init_slow ready after 350 ms"), 2, "%s", wt_log(&wt, "w"));
	close(fd);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

/* A new `requires` is not rolled: what the worker now needs is started
 * first, and the instances start after it is running. */
Test(rolling, a_new_requires_starts_what_is_required_before_the_instances)
{
	start_with(3);
	long long old[3];
	pids_of(old, 3);
	wt_write_conf(&wt, "w.ini", "[db]\nplugin = init_slow\ninit_ms = 300\nautostart = no\n"
				    "[w]\nplugin = init_slow\ninit_ms = 300\ninstances = 3\nstop_timeout = 5s\nrequires = db\n");
	char *out;
	reload_now(&out);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 3 FROM instances WHERE worker = 'w' AND state = 'running' AND pid NOT IN (%lld, %lld, %lld)",
			      old[0], old[1], old[2]),
		  "the instances did not restart:\n%s", wt_host_stderr(&wt));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 1 FROM instances WHERE worker = 'db' AND state = 'running'"),
		  "db, now required, was not started:\n%s", wt_host_stderr(&wt));
	long long early = wt_sql_int(&wt,
				     "SELECT count(*) FROM runs w, runs d WHERE w.worker = 'w' AND w.activation <> 'boot' AND d.worker = 'db' "
				     "AND w.started_at < d.ready_at");
	cr_expect_eq(early, 0, "an instance of w started before db was ready");
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

/* /readyz stays 200 while a critical worker's instances are replaced: the
 * rollout keeps all but one running, by design. */
Test(rolling, readyz_stays_ready_during_the_rollout_of_a_critical_worker)
{
	int port = wt_free_port();
	char ini[200];
	snprintf(ini, sizeof(ini), "[ward]\nhttp = 127.0.0.1:%d\n", port);
	wt_setup(&wt, "");
	wt_write_conf(&wt, "zz.ini", ini);
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = init_slow\ninit_ms = 300\ninstances = 3\ncritical = yes\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 3 FROM instances WHERE worker = 'w' AND state = 'running'"));
	cr_assert_eq(wt_http_code(port, "/readyz"), 200);
	long long old[3];
	pids_of(old, 3);
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = init_slow\ninit_ms = 350\ninstances = 3\ncritical = yes\n");
	pid_t reload = reload_in_background();
	int samples = 0, unready = 0;
	bool replaced = false;
	for (long long deadline = now_ms() + 20000; !replaced && now_ms() < deadline; samples++) {
		unready += wt_http_code(port, "/readyz") != 200;
		replaced = wt_sql_int(&wt, "SELECT count(*) FROM instances WHERE worker = 'w' AND state = 'running' "
					   "AND pid NOT IN (%lld, %lld, %lld)", old[0], old[1], old[2]) == 3;
	}
	char *out;
	cr_assert_eq(reload_result(reload, &out), 0, "%s", out);
	cr_assert(replaced, "the rollout did not finish:\n%s", wt_host_stderr(&wt));
	cr_expect_gt(samples, 3, "too few samples to say anything");
	cr_expect_eq(unready, 0, "/readyz was 503 in %d of %d samples during the rollout", unready, samples);
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}

/* 4 -> 2, and back to 4 before the two had stopped: all four run again. */
Test(rolling, scaling_back_up_while_a_scale_down_still_stops_starts_them_again)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = ignore_stop\ninstances = 4\nstop_timeout = 2s\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"),
		  "%s", wt_host_stderr(&wt));
	char *out;
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = ignore_stop\ninstances = 2\nstop_timeout = 2s\n");
	reload_now(&out);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM instances WHERE worker = 'w' AND state = 'stopping'"),
		  "instances 2 and 3 are not stopping");
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = ignore_stop\ninstances = 4\nstop_timeout = 2s\n");
	reload_now(&out);
	cr_expect(wt_wait_sql(&wt, 20000, "SELECT count(*) = 4 FROM instances WHERE worker = 'w' AND state = 'running'"),
		  "the two a scale-down was stopping did not start again: %s",
		  wt_sql_text(&wt, "SELECT group_concat(instance || ':' || state) FROM instances WHERE worker = 'w'"));
	cr_expect_eq(wt_stop(&wt, 15000), 0);
}
