/*
 * test_control.c - talking to a running host: the control socket's
 * protocol, start/stop/restart, reload applying only the difference, live
 * status, following logs across rotation, and clear answers when no host
 * runs or the caller may not control it.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void no_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(control, .init = no_sigpipe, .fini = wt_teardown, .timeout = 60);

static char *read_all(int fd, int timeout_ms)
{
	char *buf = wt_keep(calloc(1, 65536));
	size_t n = 0;
	long long deadline = now_ms() + timeout_ms;
	while (n < 65535) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, buf + n, 65535 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return buf;
}

static char *request(const char *text)
{
	int fd = wt_connect_control(&wt);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	char *reply = read_all(fd, 5000);
	close(fd);
	return reply;
}

static long long pid_of(const char *worker)
{
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = '%s'", worker),
		  "%s is not running:\n%s", worker, wt_host_stderr(&wt));
	return wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = '%s'", worker);
}

Test(control, the_protocol_answers_good_requests_and_refuses_bad_ones)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	char path[1200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/ward.sock", wt.state);
	cr_assert(stat(path, &st) == 0);
	cr_expect_eq(st.st_mode & 0777, 0600, "the control socket must be 0600");
	cr_expect_str_eq(request("ping\n"), "ok\npong\n");
	cr_expect_str_eq(request("\n"), "error\nempty request\n");
	cr_expect(strstr(request("frobnicate w\n"), "error\nunknown request 'frobnicate'"));
	cr_expect(strstr(request("stop\n"), "error\nname at least one worker"));
	char big[5000];
	memset(big, 'x', sizeof(big));
	int fd = wt_connect_control(&wt);
	ssize_t sent = write(fd, big, sizeof(big));
	(void)sent;
	cr_expect(strstr(read_all(fd, 5000), "error\nrequest too long"));
	close(fd);
	fd = wt_connect_control(&wt);
	cr_assert(write(fd, "ping\0x\n", 7) == 7);
	cr_expect(strstr(read_all(fd, 5000), "error\nmalformed request"));
	close(fd);
	/* A half-sent request does not hold the host up for anyone else. */
	int half = wt_connect_control(&wt);
	cr_assert(write(half, "sto", 3) == 3);
	cr_expect_str_eq(request("ping\n"), "ok\npong\n");
	close(half);
	cr_expect_str_eq(request("ping\n"), "ok\npong\n");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(control, clients_beyond_the_bound_are_turned_away_and_the_host_recovers)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	enum { N = 40 };
	int fds[N];
	for (int i = 0; i < N; i++)
		fds[i] = wt_connect_control(&wt);
	char *last = read_all(fds[N - 1], 3000);
	cr_expect(strstr(last, "too many clients"), "client %d got \"%s\"", N, last);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	sleep_ms(100);
	cr_expect_str_eq(request("ping\n"), "ok\npong\n");
	wt_stop(&wt, 5000);
}

Test(control, stop_start_and_restart_act_on_the_named_workers_only)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[b]\nplugin = idle\n");
	wt_start(&wt);
	long long a = pid_of("a"), b = pid_of("b");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "stop a"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'stopped' FROM workers WHERE name = 'a'"));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'a'"), "stopped");
	cr_expect_eq(pid_of("b"), b, "stopping a touched b");
	cr_expect_eq(wt_cli(&wt, &out, &err, "start a"), 0, "%s", err);
	long long a2 = pid_of("a");
	cr_expect_neq(a2, a);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT activation FROM runs WHERE worker = 'a' ORDER BY id DESC LIMIT 1"), "command");
	cr_expect_eq(wt_cli(&wt, &out, &err, "restart a"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 3 FROM runs WHERE worker = 'a'"));
	cr_expect_neq(pid_of("a"), a2);
	cr_expect_eq(wt_cli(&wt, &out, &err, "stop a nosuch"), 1);
	cr_expect(strstr(err, "no worker named 'nosuch' (nothing was done)"), "%s", err);
	sleep_ms(200);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'a'"), "running",
			 "a request naming an unknown worker must change nothing");
	wt_stop(&wt, 5000);
}

Test(control, restart_brings_a_failed_worker_back_and_its_dependants_with_it)
{
	wt_setup(&wt, "[db]\nplugin = crash_later\nafter = 300ms\nmax_restarts = 0\nlimit.core = 0\n"
		      "[app]\nplugin = idle\nrequires = db\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'db'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'app' AND reason = 'stopped'"));
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "restart db"), 0, "%s", err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs WHERE worker = 'app'"),
		  "app did not come back with db");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT activation FROM runs WHERE worker = 'app' ORDER BY id DESC LIMIT 1"),
			 "dependency");
	wt_stop(&wt, 5000);
}

Test(control, reload_starts_added_stops_removed_restarts_changed_and_leaves_the_rest)
{
	wt_setup(&wt, "[same]\nplugin = idle\n[changed]\nplugin = idle\ninterval = 1s\n[removed]\nplugin = idle\n");
	wt_start(&wt);
	long long same = pid_of("same"), changed = pid_of("changed"), removed = pid_of("removed");

	char ini[2000];
	snprintf(ini, sizeof(ini), "[ward]\nplugin_dir = %s\nstate_dir = %s\nautoload = no\n\n"
		 "[same]\nplugin = idle\n[changed]\nplugin = idle\ninterval = 2s\n[added]\nplugin = idle\n",
		 FIXTURE_DIR, wt.state);
	wt_write_conf(&wt, "ward.ini", ini);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s", err);
	cr_expect(strstr(out, "removed: removed") && strstr(out, "added: added") &&
		  strstr(out, "restarting with its new configuration: changed") && strstr(out, "unchanged: 1 worker"),
		  "%s", out);
	long long added = pid_of("added");
	cr_expect(added > 0);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs WHERE worker = 'changed'"));
	cr_expect_neq(pid_of("changed"), changed);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT activation FROM runs WHERE worker = 'changed' ORDER BY id DESC LIMIT 1"), "reload");
	cr_expect(wait_pid_gone((pid_t)removed, 5000), "the removed worker still runs");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) = 0 FROM workers WHERE name = 'removed'"),
		  "status still shows the removed worker");
	cr_expect_eq(pid_of("same"), same, "reload touched an unchanged worker");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'same'"), 1);
	wt_stop(&wt, 5000);
}

Test(control, a_reload_with_errors_changes_nothing_and_lists_every_error)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	long long w = pid_of("w");
	wt_write_conf(&wt, "zz.ini", "[w]\ninterval = soon\n[x]\nplugin = idle\ninstances = 0\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "reload"), 1);
	cr_expect(strstr(err, "zz.ini:2: [w] interval") && strstr(err, "zz.ini:5: [x] instances"), "%s", err);
	cr_expect(strstr(err, "nothing was changed"), "%s", err);
	sleep_ms(200);
	cr_expect_eq(pid_of("w"), w);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM workers WHERE name = 'x'"), 0);
	wt_stop(&wt, 5000);
}

Test(control, sighup_reloads_like_ward_reload)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	wt_write_conf(&wt, "zz.ini", "[more]\nplugin = idle\n");
	kill(wt.pid, SIGHUP);
	cr_expect(pid_of("more") > 0);
	cr_expect(strstr(wt_host_stderr(&wt), "reload: added: more"), "%s", wt_host_stderr(&wt));
	wt_stop(&wt, 5000);
}

Test(control, a_replaced_plugin_file_restarts_its_workers_on_reload)
{
	wt_setup(&wt, "");
	char dir[1200], cmd[4000];
	snprintf(dir, sizeof(dir), "%s/plugins", wt.dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s/idle.so %s/mine.so", dir, FIXTURE_DIR, dir);
	cr_assert(system(cmd) == 0);
	char ini[3000];
	snprintf(ini, sizeof(ini), "[w]\nplugin = %s/mine.so\n[other]\nplugin = idle\n", dir);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	long long w = pid_of("w"), other = pid_of("other");
	snprintf(cmd, sizeof(cmd), "cp %s/busy.so %s/mine.so.new && mv %s/mine.so.new %s/mine.so", FIXTURE_DIR, dir, dir, dir);
	cr_assert(system(cmd) == 0);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w'"));
	cr_expect_neq(pid_of("w"), w);
	cr_expect_eq(pid_of("other"), other);
	wt_stop(&wt, 5000);
}

Test(control, status_is_live_while_a_host_runs)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninterval = 20ms\nwatchdog = 0\n");
	wt_start(&wt);
	pid_of("w");
	sleep_ms(500);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 0, "%s", err);
	char *at = strstr(out, "\"cycles\": ");
	cr_assert(at, "%s", out);
	cr_expect(atoll(at + 10) >= 5, "status is not live: %s", out);
	wt_stop(&wt, 5000);
}

Test(control, commands_without_a_host_say_so_at_once)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	char *out, *err;
	long long t0 = now_ms();
	cr_expect_eq(wt_cli(&wt, &out, &err, "stop w"), 1);
	cr_expect(now_ms() - t0 < 1000, "took %lld ms", now_ms() - t0);
	cr_expect(strstr(err, "no host is running"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "reload"), 1);
	cr_expect(strstr(err, "no host is running"), "%s", err);
}

Test(control, a_user_other_than_the_hosts_is_refused_with_a_clear_message)
{
	cr_assert_eq(geteuid(), 0, "this test runs as root (the CI does) so that it can become another user");
	wt_setup(&wt, "[w]\nplugin = idle\n");
	chmod(wt.dir, 0755);
	wt_start(&wt);
	char conf[1200];
	snprintf(conf, sizeof(conf), "%s", wt.conf);
	pid_t pid = fork();
	if (pid == 0) {
		struct passwd *pw = getpwnam("nobody");
		if (!pw || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(3);
		char errpath[1300];
		snprintf(errpath, sizeof(errpath), "/tmp/ward-perm-%d.err", (int)getpid());
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execl(WARD_BIN, "ward", "stop", "w", "-c", conf, (char *)NULL);
		_exit(4);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
	char errpath[1300];
	snprintf(errpath, sizeof(errpath), "/tmp/ward-perm-%d.err", (int)pid);
	char *err = wt_read(errpath);
	unlink(errpath);
	cr_expect(err && strstr(err, "permission denied"), "%s", err ? err : "(nothing)");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "running");
	wt_stop(&wt, 5000);
}

Test(control, logs_follow_across_rotations_without_losing_or_repeating_a_line)
{
	wt_setup(&wt, "[w]\nplugin = log_stdout\ncycles = 3000\nautostart = no\n");
	wt_write_conf(&wt, "zz.ini", "[ward]\nlog_max_size = 32K\nlog_keep = 50\n");
	wt_start(&wt);
	char outpath[1200], cmd[4000];
	snprintf(outpath, sizeof(outpath), "%s/follow.out", wt.dir);
	/* The worker has not run: create its log so there is something to follow. */
	char logpath[1200];
	snprintf(logpath, sizeof(logpath), "%s/logs/w.log", wt.state);
	FILE *f = fopen(logpath, "a");
	cr_assert(f);
	fclose(f);
	pid_t follower = fork();
	if (follower == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		execl(WARD_BIN, "ward", "logs", "w", "-f", "-n", "0", "-c", wt.conf, (char *)NULL);
		_exit(127);
	}
	sleep_ms(300);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'done'"));
	sleep_ms(500);
	kill(follower, SIGTERM);
	waitpid(follower, NULL, 0);
	snprintf(cmd, sizeof(cmd), "ls %s/logs | grep -c 'w.log'", wt.state);
	char *followed = wt_read(outpath);
	cr_assert(followed);
	int missing = 0, doubled = 0;
	for (int i = 1; i <= 3000; i++) {
		char line[64];
		snprintf(line, sizeof(line), "OUT stdout line %d\n", i);
		const char *at = strstr(followed, line);
		if (!at)
			missing++;
		else if (strstr(at + 1, line))
			doubled++;
	}
	cr_expect_eq(missing, 0, "%d lines lost while following", missing);
	cr_expect_eq(doubled, 0, "%d lines printed twice while following", doubled);
	snprintf(logpath, sizeof(logpath), "%s/logs/w.log.3", wt.state);
	cr_expect(access(logpath, F_OK) == 0, "the writer did not rotate several times");
	wt_stop(&wt, 5000);
}

/* Receives one datagram within timeout_ms; "" when none came. */
static char *recv_datagram(int fd, int timeout_ms)
{
	char *buf = wt_keep(calloc(1, 4097));
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) > 0 && recv(fd, buf, 4096, 0) < 0)
		buf[0] = '\0';
	return buf;
}

static long long wall_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(control, systemd_is_told_ready_once_boot_workers_are_up_then_watchdog_and_stopping)
{
	wt_setup(&wt, "[db]\nplugin = init_slow\ninit_ms = 300\n");
	char path[1200];
	snprintf(path, sizeof(path), "%s/notify.sock", wt.dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "400000", 1);
	wt_start(&wt);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	char *first = recv_datagram(fd, 5000);
	while (strstr(first, "WATCHDOG=1") && !strstr(first, "READY=1")) /* pings may come first */
		first = recv_datagram(fd, 5000);
	long long told_at = wall_now_ms();
	char *watchdog = NULL;
	cr_expect(strstr(first, "READY=1") && strstr(first, "STATUS=1 workers: 1 running, 0 failed"), "got \"%s\"", first);
	cr_assert(wt_wait_sql(&wt, 3000, "SELECT ready_at IS NOT NULL FROM runs WHERE worker = 'db'"));
	long long ready_at = wt_sql_int(&wt, "SELECT ready_at FROM runs WHERE worker = 'db'");
	cr_expect(ready_at > 0 && told_at >= ready_at, "READY=1 came before the boot worker was ready (%lld < %lld): %s", told_at, ready_at, first);
	for (int i = 0; i < 5 && !(watchdog && strstr(watchdog, "WATCHDOG=1")); i++)
		watchdog = recv_datagram(fd, 1000);
	cr_expect(watchdog && strstr(watchdog, "WATCHDOG=1"), "no watchdog ping with WATCHDOG_USEC set");
	kill(wt.pid, SIGTERM);
	bool stopping = false;
	for (int i = 0; i < 10 && !stopping; i++)
		stopping = strstr(recv_datagram(fd, 1000), "STOPPING=1") != NULL;
	cr_expect(stopping, "STOPPING=1 was not sent");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
	close(fd);
}

/* Lines of a usage text that begin a command's entry (two spaces, then a
 * letter), not the continuation lines under them. */
static int usage_entries(const char *text)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, "\n  ")); p += 3)
		n += p[3] >= 'a' && p[3] <= 'z';
	return n;
}

/* Every command answers --help with its own usage alone, exit 0, and
 * without a configuration or a host: what a new operator types first. */
Test(control, every_command_answers_help_with_its_own_usage)
{
	static const char *const commands[] = {"run",     "check",  "status",  "history", "logs",   "start", "stop",
					       "restart", "signal", "metrics", "reload",  "test",   "version", "enqueue"};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char args[64], *out, *err;
		snprintf(args, sizeof(args), "%s --help", commands[i]);
		cr_expect_eq(wt_ward_in("/", &out, &err, args), 0, "ward %s: %s", args, err);
		cr_expect(strstr(out, "usage:\n"), "ward %s printed:\n%s", args, out);
		char own[32];
		snprintf(own, sizeof(own), "%s ", commands[i]);
		bool names_it = strstr(out, own) || strstr(out, "start|stop|restart");
		cr_expect(names_it, "ward %s does not describe %s:\n%s", args, commands[i], out);
		/* Only its own: the full list has every command's line. */
		cr_expect(usage_entries(out) <= 2, "ward %s printed more than its usage:\n%s", args, out);
	}
	char *out, *err;
	cr_expect_eq(wt_ward_in("/", &out, &err, "status -c /nonexistent -h"), 0, "%s", err);
	cr_expect(strstr(out, "status [NAME]") && !strstr(out, "reload"), "%s", out);
	cr_expect_eq(wt_ward_in("/", &out, &err, "help logs"), 0, "%s", err);
	cr_expect(strstr(out, "logs [NAME...]") && !strstr(out, "status [NAME]"), "%s", out);
	cr_expect_eq(wt_ward_in("/", &out, &err, "--help"), 0, "%s", err);
	cr_expect(usage_entries(out) >= 12, "%s", out);
}
