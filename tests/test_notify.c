/*
 * test_notify.c - ward's side of systemd's sd_notify protocol, seen from
 * where systemd sits: a datagram socket named by NOTIFY_SOCKET, read message
 * by message. Also that without systemd every call is a quiet no-op, that
 * workers never inherit the socket, and that a slow or absent systemd can
 * neither block the host nor flood its log.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/notify.h"
#include "common/util.h"

/* ---- the suite's fixture: a directory, a receiving socket, a captured stderr ---- */

static char dir[PATH_MAX];       /* the test's private directory */
static char sock_path[PATH_MAX]; /* <dir>/notify.sock: where "systemd" listens */
static char err_path[PATH_MAX];  /* <dir>/stderr: the host's messages while captured */
static int receiver = -1;        /* the socket standing in for systemd's */
static int saved_stderr = -1;    /* the real stderr while it is captured */
static char datagram[64 * 1024]; /* the last message received */

static void make_dir(void)
{
	char tmpl[] = "/tmp/ward-notify-test-XXXXXX";
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	cr_assert(realpath(tmpl, dir), "realpath %s: %s", tmpl, strerror(errno));
	int n = snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", dir);
	cr_assert(n > 0 && (size_t)n < sizeof(struct sockaddr_un) - offsetof(struct sockaddr_un, sun_path),
		  "TMPDIR path too long for a socket: %s", sock_path);
	n = snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
	cr_assert(n > 0 && (size_t)n < sizeof(err_path));
	/* Whatever runs the tests (systemd itself, maybe) must not leak in. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void restore_stderr(void)
{
	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

static void remove_dir(void)
{
	notify_close();
	restore_stderr();
	if (receiver >= 0)
		close(receiver);
	receiver = -1;
	unlink(sock_path);
	unlink(err_path);
	if (dir[0])
		rmdir(dir);
	dir[0] = '\0';
}

TestSuite(notify, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* Binds the receiving socket at addr: a path, or an abstract name after '@'. */
static void bind_receiver(const char *addr)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(addr);
	cr_assert_lt(len, sizeof(sa.sun_path), "address too long for the test: %s", addr);
	memcpy(sa.sun_path, addr, len);
	if (addr[0] == '@')
		sa.sun_path[0] = '\0';
	socklen_t sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (addr[0] != '@'));
	receiver = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(receiver, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(receiver, (struct sockaddr *)&sa, sa_len), 0, "bind %s: %s", addr, strerror(errno));
	struct timeval tv = {.tv_sec = 5};
	cr_assert_eq(setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

/* The usual set-up: a receiver at <dir>/notify.sock, named by NOTIFY_SOCKET, opened. */
static void open_at_path(void)
{
	bind_receiver(sock_path);
	setenv("NOTIFY_SOCKET", sock_path, 1);
	cr_assert_eq(notify_open(), 0);
}

/* The next datagram, as a string (valid until the next call). */
static const char *next_datagram(void)
{
	ssize_t n = recv(receiver, datagram, sizeof(datagram) - 1, 0);
	cr_assert_geq(n, 0, "no datagram arrived: %s", strerror(errno));
	datagram[n] = '\0';
	return datagram;
}

static void expect_no_datagram(void)
{
	ssize_t n = recv(receiver, datagram, sizeof(datagram) - 1, MSG_DONTWAIT);
	if (n >= 0)
		datagram[n] = '\0';
	cr_expect_eq(n, -1, "nothing should have been sent, got \"%s\"", n >= 0 ? datagram : "");
	cr_expect(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
}

/* Sends the host's messages (fd 2) to <dir>/stderr until captured_stderr. */
static void capture_stderr(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(saved_stderr, 0, "dup: %s", strerror(errno));
	int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "open %s: %s", err_path, strerror(errno));
	cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* What was written to stderr since capture_stderr (malloc'd). */
static char *captured_stderr(void)
{
	restore_stderr();
	FILE *f = fopen(err_path, "r");
	cr_assert(f, "fopen %s: %s", err_path, strerror(errno));
	char *text = calloc(1, 64 * 1024);
	cr_assert(text);
	size_t n = fread(text, 1, 64 * 1024 - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static int occurrences(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- what systemd receives ---- */

Test(notify, ready_sends_ready_and_the_status_in_one_datagram)
{
	open_at_path();
	notify_ready("12 workers running");
	cr_expect_str_eq(next_datagram(), "READY=1\nSTATUS=12 workers running");
}

Test(notify, ready_without_a_status_sends_ready_alone)
{
	open_at_path();
	notify_ready(NULL);
	cr_expect_str_eq(next_datagram(), "READY=1");
}

Test(notify, status_stopping_and_watchdog_each_send_exactly_their_message)
{
	open_at_path();
	notify_status("3 of 4 workers running");
	notify_watchdog();
	notify_stopping();
	cr_expect_str_eq(next_datagram(), "STATUS=3 of 4 workers running");
	cr_expect_str_eq(next_datagram(), "WATCHDOG=1");
	cr_expect_str_eq(next_datagram(), "STOPPING=1");
	expect_no_datagram();
}

Test(notify, send_formats_one_datagram_like_printf)
{
	open_at_path();
	notify_send("READY=1\nSTATUS=%s", "12 workers running");
	notify_send("STATUS=%d of %d workers running, %s", 3, 4, "1 in backoff");
	cr_expect_str_eq(next_datagram(), "READY=1\nSTATUS=12 workers running");
	cr_expect_str_eq(next_datagram(), "STATUS=3 of 4 workers running, 1 in backoff");
}

Test(notify, a_long_status_is_sent_whole)
{
	open_at_path();
	char status[5000];
	memset(status, 'x', sizeof(status) - 1);
	status[sizeof(status) - 1] = '\0';
	notify_status(status);
	const char *got = next_datagram();
	cr_expect_eq(strlen(got), strlen("STATUS=") + strlen(status));
	cr_expect_eq(strncmp(got, "STATUS=", 7), 0);
	cr_expect_str_eq(got + 7, status);
}

Test(notify, a_newline_in_a_status_cannot_inject_an_assignment)
{
	open_at_path();
	notify_status("all well\nREADY=1\r\nSTOPPING=1");
	cr_expect_str_eq(next_datagram(), "STATUS=all well READY=1  STOPPING=1");
	notify_ready("line one\nline two");
	cr_expect_str_eq(next_datagram(), "READY=1\nSTATUS=line one line two");
}

Test(notify, an_abstract_socket_is_reached_through_its_at_name)
{
	char name[64];
	snprintf(name, sizeof(name), "@ward-test-notify-%d", (int)getpid());
	bind_receiver(name);
	setenv("NOTIFY_SOCKET", name, 1);
	cr_assert_eq(notify_open(), 0);
	notify_ready("abstract");
	notify_stopping();
	cr_expect_str_eq(next_datagram(), "READY=1\nSTATUS=abstract");
	cr_expect_str_eq(next_datagram(), "STOPPING=1");
}

/* ---- the environment ---- */

Test(notify, open_removes_notify_socket_from_the_environment_so_workers_never_inherit_it)
{
	open_at_path();
	cr_expect_null(getenv("NOTIFY_SOCKET"));
	notify_watchdog(); /* still sends: the address was kept */
	cr_expect_str_eq(next_datagram(), "WATCHDOG=1");
}

Test(notify, without_notify_socket_open_succeeds_and_everything_is_a_no_op)
{
	bind_receiver(sock_path); /* listening, but nobody told ward about it */
	cr_assert_eq(notify_open(), 0);
	notify_ready("ready");
	notify_status("status");
	notify_watchdog();
	notify_stopping();
	notify_send("STATUS=%s", "x");
	notify_close();
	expect_no_datagram();
	cr_expect_eq(notify_watchdog_ns(), 0);
}

Test(notify, nothing_is_sent_after_close)
{
	open_at_path();
	notify_close();
	notify_ready("too late");
	notify_close(); /* twice is harmless */
	expect_no_datagram();
}

Test(notify, an_unusable_notify_socket_is_an_error_reported_once_and_calls_stay_no_ops)
{
	static const char *bad[] = {"relative/notify.sock", "", "@", "notify"};
	bind_receiver(sock_path);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		setenv("NOTIFY_SOCKET", bad[i], 1);
		capture_stderr();
		cr_expect_eq(notify_open(), -1, "NOTIFY_SOCKET='%s' should be refused", bad[i]);
		notify_ready("never");
		char *err = captured_stderr();
		cr_expect_eq(occurrences(err, "unable to use NOTIFY_SOCKET"), 1, "stderr: %s", err);
		free(err);
		cr_expect_null(getenv("NOTIFY_SOCKET"), "removed even when unusable ('%s')", bad[i]);
	}
	char too_long[200];
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[0] = '/';
	too_long[sizeof(too_long) - 1] = '\0';
	setenv("NOTIFY_SOCKET", too_long, 1);
	capture_stderr();
	cr_expect_eq(notify_open(), -1, "a path longer than a socket address holds");
	char *err = captured_stderr();
	cr_expect_eq(occurrences(err, "longer than the 107 characters"), 1, "stderr: %s", err);
	free(err);
	too_long[0] = '@';
	too_long[108] = '\0'; /* '@' and 107 bytes: an abstract name may fill sun_path */
	setenv("NOTIFY_SOCKET", too_long, 1);
	cr_expect_eq(notify_open(), 0, "an abstract name of 107 characters after '@'");
	expect_no_datagram();
}

Test(notify, a_forked_child_never_speaks_for_the_host)
{
	open_at_path();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		notify_status("from the child");
		notify_ready("from the child");
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	expect_no_datagram();
	notify_status("from the host");
	cr_expect_str_eq(next_datagram(), "STATUS=from the host");
}

/* ---- a slow or absent systemd ---- */

Test(notify, a_message_that_could_not_be_sent_goes_out_with_the_next_one)
{
	setenv("NOTIFY_SOCKET", sock_path, 1); /* nobody listens there yet */
	cr_assert_eq(notify_open(), 0);
	capture_stderr();
	notify_ready("booting");
	notify_status("still booting"); /* the same failure: not reported again */
	bind_receiver(sock_path);
	notify_watchdog();
	notify_watchdog();
	char *err = captured_stderr();
	cr_expect_eq(occurrences(err, "unable to notify systemd"), 1, "stderr: %s", err);
	cr_expect_eq(occurrences(err, "works again"), 1, "stderr: %s", err);
	free(err);
	/* Newest first: systemd takes the first STATUS= of a datagram. */
	cr_expect_str_eq(next_datagram(), "WATCHDOG=1\nSTATUS=still booting\nREADY=1\nSTATUS=booting");
	cr_expect_str_eq(next_datagram(), "WATCHDOG=1");
	expect_no_datagram();
}

Test(notify, a_full_queue_never_blocks_the_host_and_is_reported_once, .timeout = 20)
{
	open_at_path(); /* and never read: the queue fills up */
	capture_stderr();
	int64_t start = mono_ns();
	for (int i = 0; i < 5000; i++)
		notify_watchdog();
	int64_t took = mono_ns() - start;
	cr_expect_lt(took, 5 * NS_PER_SEC, "5000 sends took %lld ms", (long long)(took / NS_PER_MS));
	/* Drain, as systemd would once it catches up. */
	int received = 0;
	while (recv(receiver, datagram, sizeof(datagram) - 1, MSG_DONTWAIT) >= 0)
		received++;
	cr_expect_gt(received, 0);
	cr_expect_lt(received, 5000, "the queue should have filled up");
	notify_status("caught up");
	const char *got = next_datagram();
	cr_expect_eq(strncmp(got, "STATUS=caught up\nWATCHDOG=1", 27), 0, "got \"%.60s...\"", got);
	cr_expect_leq(strlen(got), 4096 + strlen("STATUS=caught up\n"), "what is kept unsent is bounded");
	notify_status("done");
	cr_expect_str_eq(next_datagram(), "STATUS=done");
	char *err = captured_stderr();
	cr_expect_eq(occurrences(err, "unable to notify systemd"), 1, "stderr: %s", err);
	cr_expect_eq(occurrences(err, "works again"), 1, "stderr: %s", err);
	free(err);
}

/* ---- the watchdog ---- */

Test(notify, watchdog_usec_gives_the_timeout_in_nanoseconds)
{
	setenv("WATCHDOG_USEC", "2000000", 1);
	cr_expect_eq(notify_watchdog_ns(), 2 * NS_PER_SEC);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_expect_eq(notify_watchdog_ns(), 2 * NS_PER_SEC, "WATCHDOG_PID names this process");
	cr_expect_str_eq(getenv("WATCHDOG_USEC"), "2000000", "reading it changes nothing");
}

Test(notify, a_watchdog_meant_for_another_process_is_not_ours)
{
	setenv("WATCHDOG_USEC", "2000000", 1);
	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getppid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_expect_eq(notify_watchdog_ns(), 0);
}

Test(notify, no_or_a_malformed_watchdog_is_no_watchdog)
{
	cr_expect_eq(notify_watchdog_ns(), 0, "WATCHDOG_USEC unset");
	static const char *bad[] = {"", "0", "-5", "2s", " 100", "1e6", "99999999999999999999"};
	capture_stderr();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		setenv("WATCHDOG_USEC", bad[i], 1);
		cr_expect_eq(notify_watchdog_ns(), 0, "WATCHDOG_USEC='%s'", bad[i]);
	}
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", "me", 1);
	cr_expect_eq(notify_watchdog_ns(), 0, "WATCHDOG_PID='me'");
	char *err = captured_stderr();
	cr_expect_eq(occurrences(err, "ignoring WATCHDOG_USEC"), (int)ARRAY_SIZE(bad), "stderr: %s", err);
	cr_expect_eq(occurrences(err, "ignoring WATCHDOG_PID"), 1, "stderr: %s", err);
	free(err);
}
