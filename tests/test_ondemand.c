/*
 * test_ondemand.c - socket activation: the host holds a worker's sockets
 * from boot, the first connection starts the worker and is served, no
 * connection is lost while it starts or restarts, and once it has failed
 * clients are turned away at once instead of waiting for a timeout.
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
#include <unistd.h>

static void no_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN); /* a client writing to a closed connection must see EPIPE */
}

TestSuite(ondemand, .init = no_sigpipe, .fini = wt_teardown, .timeout = 60);

#define RUN(col, worker, nth) "SELECT " col " FROM runs WHERE worker = '" worker "' ORDER BY id LIMIT 1 OFFSET " #nth

static char sock[1100];

/* A configuration with worker `w` listening on <dir>/w.sock plus `extra`. */
static void setup_socket_worker(const char *plugin, const char *extra)
{
	wt_setup(&wt, "");
	snprintf(sock, sizeof(sock), "%s/run/w.sock", wt.dir);
	char ini[2400];
	snprintf(ini, sizeof(ini), "[w]\nplugin = %s\nlisten = unix:%s\nautostart = no\n%s", plugin, sock, extra);
	wt_write_conf(&wt, "w.ini", ini);
}

static int connect_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", path, strerror(errno));
	return fd;
}

/* Reads until EOF or timeout; returns what arrived (owned by the test). */
static char *read_reply(int fd, int timeout_ms)
{
	char *buf = wt_keep(calloc(1, 512));
	size_t n = 0;
	long long deadline = now_ms() + timeout_ms;
	while (n < 511) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t r = read(fd, buf + n, 511 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	return buf;
}

static char *ask(const char *line, int timeout_ms)
{
	int fd = connect_unix(sock);
	if (write(fd, line, strlen(line)) < 0) /* EPIPE when the host turned us away */
		return wt_keep(calloc(1, 1));
	char *reply = read_reply(fd, timeout_ms);
	close(fd);
	return reply;
}

Test(ondemand, a_socket_activated_worker_is_not_started_before_a_connection)
{
	setup_socket_worker("echo_server", "");
	wt_start(&wt);
	struct stat st;
	cr_assert(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode), "the host did not create %s at boot", sock);
	cr_expect_eq(st.st_mode & 0777, 0660, "unix sockets get mode 0660");
	sleep_ms(400);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs"), 0, "started without a connection");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT on_demand FROM workers WHERE name = 'w'"), "waiting for a connection");
	char *out;
	cr_assert_eq(wt_cli(&wt, &out, NULL, "status --json"), 0);
	cr_expect(strstr(out, "\"state\": \"stopped\"") && strstr(out, "\"on_demand\": \"waiting for a connection\""), "%s", out);
	wt_stop(&wt, 5000);
}

Test(ondemand, the_first_connection_starts_the_worker_and_is_served)
{
	setup_socket_worker("echo_server", "init_ms = 300\n");
	wt_start(&wt);
	long long t0 = now_ms();
	char *reply = ask("hello\n", 10000);
	cr_expect_str_eq(reply, "echo: hello\n", "the first client was not served (%lld ms)", now_ms() - t0);
	cr_expect_str_eq(wt_sql_text(&wt, RUN("activation", "w", 0)), "connection");
	wt_stop(&wt, 5000);
}

Test(ondemand, connections_made_while_the_worker_restarts_after_crashes_are_all_served)
{
	setup_socket_worker("echo_server", "crash_after = 1\nrestart_delay = 50ms\nrestart_delay_max = 50ms\n"
					   "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	enum { CLIENTS = 5 };
	int fds[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) { /* all connect at once: most wait through a crash */
		fds[i] = connect_unix(sock);
		char line[32];
		int n = snprintf(line, sizeof(line), "client %d\n", i);
		cr_assert(write(fds[i], line, (size_t)n) == n);
	}
	for (int i = 0; i < CLIENTS; i++) {
		char want[32];
		snprintf(want, sizeof(want), "echo: client %d\n", i);
		char *reply = read_reply(fds[i], 15000);
		cr_expect_str_eq(reply, want, "client %d lost its connection", i);
		close(fds[i]);
	}
	cr_expect(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'signal'") >= CLIENTS - 1);
	wt_stop(&wt, 5000);
}

Test(ondemand, once_the_worker_has_failed_clients_are_closed_at_once)
{
	setup_socket_worker("init_fail", "max_restarts = 0\n");
	wt_start(&wt);
	int first = connect_unix(sock); /* starts the worker, which fails for good */
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"));
	long long t0 = now_ms();
	read_reply(first, 5000);
	cr_expect(now_ms() - t0 < 2000, "the pending client was left waiting %lld ms", now_ms() - t0);
	close(first);
	t0 = now_ms();
	char *reply = ask("anyone?\n", 5000);
	cr_expect_str_eq(reply, "", "a failed worker answered?");
	cr_expect(now_ms() - t0 < 2000, "a new client waited %lld ms for a failed worker", now_ms() - t0);
	cr_expect(strstr(wt_host_stderr(&wt), "closing connections"), "%s", wt_host_stderr(&wt));
	/* The row that says `failed` and the one that says the sockets drain can
	 * land in two history batches (a flush due between the two): wait. */
	cr_expect(wt_wait_sql(&wt, 2000, "SELECT on_demand = 'closing connections' FROM workers WHERE name = 'w'"),
		  "on_demand says: %s", wt_sql_text(&wt, "SELECT on_demand FROM workers WHERE name = 'w'"));
	wt_stop(&wt, 5000);
}

Test(ondemand, a_worker_that_finishes_goes_back_to_waiting_and_the_next_connection_starts_it_again)
{
	setup_socket_worker("echo_server", "idle_exit_ms = 200ms\n");
	wt_start(&wt);
	cr_expect_str_eq(ask("one\n", 10000), "echo: one\n");
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'done'"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'stopped' AND on_demand = 'waiting for a connection' FROM workers WHERE name = 'w'"),
		  "a finished on-demand worker must wait for the next connection, not be done for good");
	cr_expect_str_eq(ask("two\n", 10000), "echo: two\n");
	cr_expect(wt_wait_sql(&wt, 3000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w' AND activation = 'connection'"));
	wt_stop(&wt, 5000);
}

Test(ondemand, sockets_are_handed_in_configuration_order_with_the_systemd_variables)
{
	wt_setup(&wt, "");
	char a[1100], b[1100], ini[6000];
	snprintf(a, sizeof(a), "%s/a.sock", wt.dir);
	snprintf(b, sizeof(b), "%s/b.sock", wt.dir);
	snprintf(ini, sizeof(ini), "[w]\nplugin = env_dump\nlisten = unix:%s, unix:%s\n[e]\nplugin = echo_server\nlisten = unix:%s2, unix:%s2\n",
		 b, a, b, a);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'done'"));
	char path[1200];
	snprintf(path, sizeof(path), "%s/workers/w/env-0.txt", wt.state);
	char *env = wt_read(path);
	cr_assert(env);
	cr_expect(strstr(env, "LISTEN_FDS=2\n") && strstr(env, "LISTEN_FDNAMES=w:w\n"), "%s", env);
	long long pid = wt_sql_int(&wt, RUN("pid", "w", 0));
	char want[64];
	snprintf(want, sizeof(want), "LISTEN_PID=%lld\n", pid);
	cr_expect(strstr(env, want), "LISTEN_PID is not the worker's pid:\n%s", env);
	/* 3 and 4: the sockets; 5: the runtime channel; 6: the runtime's wake-up. */
	cr_expect(strstr(env, "fds=0,1,2,3,4,5,6\n"), "%s", env);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'e'"));
	char l0[1200], l1[1200];
	snprintf(l0, sizeof(l0), "socket 0 fd 3 unix:%s2", b);
	snprintf(l1, sizeof(l1), "socket 1 fd 4 unix:%s2", a);
	cr_expect(wt_wait_log(&wt, 3000, "e", l0) && wt_wait_log(&wt, 3000, "e", l1), "not in configuration order:\n%s",
		  wt_log(&wt, "e"));
	wt_stop(&wt, 5000);
}

Test(ondemand, a_stale_socket_file_is_replaced_and_a_path_that_is_not_a_socket_is_refused)
{
	setup_socket_worker("echo_server", "");
	char dir[1200];
	snprintf(dir, sizeof(dir), "%s/run", wt.dir);
	mkdir(dir, 0755);
	/* A socket file nobody listens on: what a crashed host leaves. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	close(fd);
	wt_start(&wt);
	cr_expect_str_eq(ask("fresh\n", 10000), "echo: fresh\n");
	wt_stop(&wt, 5000);

	char *out, *err;
	unlink(sock);
	FILE *f = fopen(sock, "w");
	fputs("not a socket", f);
	fclose(f);
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1);
	cr_expect(strstr(err, "[w] listen") && strstr(err, "is not a socket"), "%s", err);
}

Test(ondemand, an_address_that_cannot_be_bound_names_the_worker_and_the_address)
{
	int busy = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert(bind(busy, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(busy, 1) == 0);
	socklen_t len = sizeof(sin);
	getsockname(busy, (struct sockaddr *)&sin, &len);
	char ini[256];
	snprintf(ini, sizeof(ini), "[w]\nplugin = echo_server\nlisten = tcp:127.0.0.1:%d\n[ok]\nplugin = idle\n", ntohs(sin.sin_port));
	wt_setup(&wt, ini);
	wt_start(&wt);
	/* Not `failed`: the host keeps trying to bind it, and holds the start back. */
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT on_demand LIKE 'unbound: %%; retrying' FROM workers WHERE name = 'w'"),
		  "%s", wt_host_stderr(&wt));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"), "starting");
	char want[128];
	snprintf(want, sizeof(want), "[w] unable to bind listen address tcp:127.0.0.1:%d: Address already in use",
		 ntohs(sin.sin_port));
	cr_expect(strstr(wt_host_stderr(&wt), want), "%s", wt_host_stderr(&wt));
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'ok'"),
		  "one worker's bad address must not stop the others");
	wt_stop(&wt, 5000);
	close(busy);
}

Test(ondemand, a_malformed_address_is_a_configuration_error_with_worker_and_key)
{
	wt_setup(&wt, "[w]\nplugin = echo_server\nlisten = tcp:localhost\n"); /* lines 6 to 8 */
	char *err;
	cr_expect_eq(wt_cli(&wt, NULL, &err, "check"), 1);
	cr_expect(strstr(err, "ward.ini:8: [w] listen: \"tcp:localhost\": expected tcp:HOST:PORT"), "%s", err);
}

Test(ondemand, start_by_requires_works_on_a_socket_worker)
{
	setup_socket_worker("echo_server", "");
	wt_write_conf(&wt, "x.ini", "[app]\nplugin = idle\nrequires = w\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'app'"));
	cr_expect_str_eq(wt_sql_text(&wt, RUN("activation", "w", 0)), "dependency");
	cr_expect_str_eq(ask("via requires\n", 10000), "echo: via requires\n");
	wt_stop(&wt, 5000);
}
