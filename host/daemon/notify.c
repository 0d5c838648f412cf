/*
 * notify.c - systemd integration for a Type=notify unit: the sd_notify
 * protocol spoken directly. The protocol is small enough not to need
 * libsystemd (one more dependency, and one that blocks on a full queue):
 * each message is one datagram of "KEY=value" lines sent to the AF_UNIX
 * socket named by NOTIFY_SOCKET, and systemd reads READY=1, STATUS=,
 * STOPPING=1 and WATCHDOG=1 from it. The socket is non-blocking and
 * close-on-exec: a busy systemd costs the host a dropped datagram (kept and
 * sent again with the next one), never a stall of the loop. Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/notify.h"
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* What is kept of messages that could not be sent, to go out with the next
 * one. Enough for a READY=1 and a status line; more is dropped, not grown. */
#define PENDING_MAX 4096
/* Messages up to this size are formatted without allocating. */
#define SMALL_MESSAGE 512

/* The process's one notify socket. fd < 0: closed, and every send a no-op. */
static struct notify_socket {
	int fd;
	pid_t owner;             /* the process that opened it: the only one that sends */
	struct sockaddr_un addr; /* where systemd listens */
	socklen_t addr_len;
	char *name;              /* NOTIFY_SOCKET as it was given, for messages; owned */
	char *pending;           /* unsent assignments, newest first; owned, or NULL */
	int failing;             /* errno of the failure being reported, 0 while sends work */
} notify = {.fd = -1};

/* Fills notify.addr from NOTIFY_SOCKET's value. 0, or -1 with the reason logged. */
static int parse_address(const char *value)
{
	struct sockaddr_un *a = &notify.addr;
	size_t len = strlen(value);
	bool abstract = value[0] == '@';
	*a = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (!abstract && value[0] != '/') {
		host_log(HOST_ERR, "unable to use NOTIFY_SOCKET '%s': it is neither an absolute path nor an @abstract name; systemd will not hear from ward",
			 value);
		return -1;
	}
	if (len < 2) {
		host_log(HOST_ERR, "unable to use NOTIFY_SOCKET '%s': it names no socket; systemd will not hear from ward",
			 value);
		return -1;
	}
	/* A path needs room for its NUL; an abstract name fills sun_path exactly. */
	if (len > sizeof(a->sun_path) - !abstract) {
		host_log(HOST_ERR, "unable to use NOTIFY_SOCKET '%s': longer than the %zu characters a socket address holds; systemd will not hear from ward",
			 value, sizeof(a->sun_path) - !abstract);
		return -1;
	}
	memcpy(a->sun_path, value, len);
	if (abstract)
		a->sun_path[0] = '\0'; /* the name is the bytes after the NUL, with no terminator */
	notify.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + !abstract);
	return 0;
}

int notify_open(void)
{
	notify_close();
	const char *value = getenv("NOTIFY_SOCKET");
	if (!value)
		return 0;
	notify.name = xstrdup(value); /* unsetenv may free what getenv returned */
	/* Workers must not inherit it: with NotifyAccess=main systemd would log
	 * every datagram of theirs as refused, and with =all they would speak
	 * for the host. */
	if (unsetenv("NOTIFY_SOCKET") < 0)
		host_log(HOST_WARN, "unable to remove NOTIFY_SOCKET from the environment: %s", strerror(errno));
	if (parse_address(notify.name) < 0)
		goto fail;
	notify.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify.fd < 0) {
		host_log(HOST_ERR, "unable to create a socket to notify systemd at %s: %s", notify.name, strerror(errno));
		goto fail;
	}
	notify.owner = getpid();
	return 0;
fail:
	notify_close();
	return -1;
}

bool notify_enabled(void)
{
	return notify.fd >= 0 && notify.owner == getpid();
}

void notify_close(void)
{
	if (notify.fd >= 0 && close(notify.fd) < 0)
		host_log(HOST_WARN, "unable to close the systemd notify socket: %s", strerror(errno));
	free(notify.name);
	free(notify.pending);
	notify = (struct notify_socket){.fd = -1};
}

static void report_failure(int err)
{
	if (notify.failing == err)
		return;
	notify.failing = err;
	host_log(HOST_WARN, "unable to notify systemd at %s: %s; retrying with the next message", notify.name,
		 strerror(err));
}

static void report_recovery(void)
{
	if (!notify.failing)
		return;
	notify.failing = 0;
	host_log(HOST_INFO, "notifying systemd at %s works again", notify.name);
}

/* Keeps text (which was not sent) for the next send, unless it is too big:
 * then only msg, the newest part, if that fits. */
static void keep_pending(char *text, const char *msg)
{
	if (strlen(text) <= PENDING_MAX) {
		notify.pending = text;
		return;
	}
	free(text);
	notify.pending = strlen(msg) <= PENDING_MAX ? xstrdup(msg) : NULL;
}

/* Sends msg followed by whatever earlier sends left unsent, as one datagram.
 * Newest first: systemd takes the first STATUS= of a datagram, so the newest
 * status wins, while an earlier READY=1 or STOPPING=1 still gets through. */
static void send_message(const char *msg)
{
	char *text = notify.pending ? xasprintf("%s\n%s", msg, notify.pending) : xstrdup(msg);
	free(notify.pending);
	notify.pending = NULL;
	ssize_t n;
	do
		n = sendto(notify.fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL,
			   (const struct sockaddr *)&notify.addr, notify.addr_len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		report_failure(errno);
		keep_pending(text, msg);
		return;
	}
	report_recovery();
	free(text);
}

void notify_send(const char *fmt, ...)
{
	if (notify.fd < 0 || getpid() != notify.owner)
		return; /* not under systemd, or a forked child that must not speak for the host */
	char small[SMALL_MESSAGE];
	char *msg = small;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		host_log(HOST_WARN, "unable to format a message for systemd: %s", strerror(errno));
		return;
	}
	if ((size_t)n >= sizeof(small)) {
		msg = xmalloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	send_message(msg);
	if (msg != small)
		free(msg);
}

/* A copy of status on one line (owned by the caller): in the protocol a
 * newline ends the assignment, so one inside would inject another. */
static char *one_line(const char *status)
{
	char *s = xstrdup(status);
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return s;
}

void notify_ready(const char *status)
{
	if (!status) {
		notify_send("READY=1");
		return;
	}
	char *line = one_line(status);
	notify_send("READY=1\nSTATUS=%s", line);
	free(line);
}

void notify_status(const char *status)
{
	char *line = one_line(status ? status : "");
	notify_send("STATUS=%s", line);
	free(line);
}

void notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

/* A whole decimal number, nothing else. 0, or -1 when malformed or too big. */
static int parse_decimal(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned digit = (unsigned)(*s - '0');
		if (v > (max - digit) / 10)
			return -1;
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

int64_t notify_watchdog_ns(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	if (!usec)
		return 0;
	const char *pid = getenv("WATCHDOG_PID");
	uint64_t v;
	if (pid) {
		if (parse_decimal(pid, INT32_MAX, &v) < 0) {
			host_log(HOST_WARN, "ignoring WATCHDOG_PID '%s': not a process id; no systemd watchdog", pid);
			return 0;
		}
		if ((pid_t)v != getpid())
			return 0; /* meant for another process: the one systemd started is not us */
	}
	if (parse_decimal(usec, INT64_MAX / 1000, &v) < 0 || v == 0) {
		host_log(HOST_WARN, "ignoring WATCHDOG_USEC '%s': not a positive number of microseconds; no systemd watchdog",
			 usec);
		return 0;
	}
	return (int64_t)v * 1000;
}
