/*
 * listener.c - socket activation. Sockets are created with SOCK_CLOEXEC in
 * the host (child.c moves them to fds 3.. for the worker) and stay blocking:
 * the worker shares the open file description and expects a blocking
 * accept(). The host only waits for readability, and accepts itself only in
 * drain mode, when no worker process exists; then it switches the socket to
 * non-blocking for the drain and back before the next process gets it.
 * Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/listener.h"
#include "common/units.h"
#include "daemon/host.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 4096 /* capped by net.core.somaxconn */
#define BIND_RETRY_FIRST_NS (1 * NS_PER_SEC)
#define BIND_RETRY_MAX_NS (30 * NS_PER_SEC)

/* Why l could not be bound, kept for the log and `ward status`. */
static int fail(struct listener *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct listener *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->error, sizeof(l->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* A socket file left by a crashed host is replaced; a live one or any other
 * kind of file is refused. */
static int clear_unix_path(struct listener *l, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(l, "unable to inspect %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return fail(l, "%s exists and is not a socket; remove it or choose another path", path);
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (probe >= 0)
		close(probe);
	if (live) /* the configuration refuses two workers on one address */
		return fail(l, "something already listens on %s: another program, another ward host, "
			    "or a worker of this host that a reload is removing", path);
	if (unlink(path) < 0)
		return fail(l, "unable to replace the stale socket %s: %s", path, strerror(errno));
	return 0;
}

static int open_unix(struct listener *l)
{
	const char *path = l->address + 5;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(l, "%s", strerror(ENAMETOOLONG));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			fail(l, "unable to create the directory %s: %s", dir, strerror(errno));
			free(dir);
			return -1;
		}
	}
	free(dir);
	if (clear_unix_path(l, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(l, "unable to create a socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 || listen(fd, BACKLOG) < 0) {
		int err = errno;
		close(fd);
		return fail(l, "%s", strerror(err));
	}
	return fd;
}

/* "tcp:HOST:PORT", HOST may be "[v6]", "*" (every address) or a name. */
static int open_tcp(struct listener *l)
{
	const char *spec = l->address + 4;
	const char *colon = strrchr(spec, ':');
	char host[256];
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= sizeof(host))
		return fail(l, "%s", strerror(ENAMETOOLONG));
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	char *h = host;
	if (h[0] == '[' && hlen > 1 && h[hlen - 1] == ']') {
		h[hlen - 1] = '\0';
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
	int rc = getaddrinfo(strcmp(h, "*") == 0 ? NULL : h, colon + 1, &hints, &res);
	if (rc != 0)
		return fail(l, "unable to resolve it: %s", gai_strerror(rc));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return fail(l, "%s", strerror(err));
	}
	freeaddrinfo(res);
	return fd;
}

static void set_nonblocking(struct listener *l, bool on)
{
	int flags = fcntl(l->watch.fd, F_GETFL);
	if (flags < 0 || fcntl(l->watch.fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0)
		host_log(HOST_ERR, "[%s] unable to change the mode of %s: %s", l->worker->conf->name, l->address,
			 strerror(errno));
}

static void on_connection(struct watch *wt, uint32_t events)
{
	(void)events;
	struct listener *l = container_of(wt, struct listener, watch);
	struct worker *w = l->worker;
	if (w->listen_mode == LISTEN_DRAIN) {
		int c;
		unsigned closed = 0;
		while ((c = accept4(wt->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			close(c);
			closed++;
		}
		w->tally.connections += closed;
		if (closed && !w->drain_reported) {
			host_log(HOST_WARN, "[%s] failed: closing connections on %s at once (and from now on until it is restarted)",
				 w->conf->name, l->address);
			w->drain_reported = true;
		}
		return;
	}
	/* LISTEN_ACTIVATE: the connection waits in the backlog for the worker. */
	w->tally.connections++;
	host_log(HOST_INFO, "[%s] connection on %s: starting the worker", w->conf->name, l->address);
	w->host->connection_starts(w);
	listener_update(w);
}

/* Tries every socket of w that is not bound yet. True once all are. */
static bool bind_missing(struct worker *w)
{
	bool all = true;
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		if (l->watch.fd >= 0)
			continue;
		l->watch.fd = strncmp(l->address, "unix:", 5) == 0 ? open_unix(l) : open_tcp(l);
		if (l->watch.fd >= 0)
			l->error[0] = '\0';
		else
			all = false;
	}
	return all;
}

/* Brings a freshly bound socket into the mode the others are in. */
static void apply_mode(struct listener *l, enum listen_mode from, enum listen_mode to)
{
	bool watch = to != LISTEN_HANDED;
	if (watch && !l->watched && loop_watch(l->worker->host->loop, &l->watch, EPOLLIN) == 0)
		l->watched = true;
	else if (!watch && l->watched && loop_unwatch(l->worker->host->loop, &l->watch) == 0)
		l->watched = false;
	if (to == LISTEN_DRAIN || from == LISTEN_DRAIN)
		set_nonblocking(l, to == LISTEN_DRAIN);
}

static void bound_at_last(struct worker *w)
{
	char d[32];
	format_duration_ms((uint64_t)((mono_ns() - w->unbound_since_ns) / NS_PER_MS), d, sizeof(d));
	host_log(HOST_INFO, "[%s] every listen socket is bound now (after %s): the worker can start", w->conf->name, d);
	timer_cancel(w->host->loop, &w->bind_retry);
	w->bind_delay_ns = 0;
	for (size_t i = 0; i < w->nlisteners; i++)
		apply_mode(&w->listeners[i], LISTEN_HANDED, w->listen_mode);
	worker_record(w);
	w->host->order_dirty = true; /* a start held for the sockets may go now */
}

/* Backoff from 1 s doubling to 30 s; said once when it began and once when
 * it ends (bound_at_last), never at every attempt. */
static void retry_binding(struct timer *t)
{
	struct worker *w = container_of(t, struct worker, bind_retry);
	if (w->host->shutting_down)
		return;
	if (bind_missing(w)) {
		bound_at_last(w);
		return;
	}
	w->bind_delay_ns = w->bind_delay_ns * 2 > BIND_RETRY_MAX_NS ? BIND_RETRY_MAX_NS : w->bind_delay_ns * 2;
	timer_arm(w->host->loop, t, mono_ns() + w->bind_delay_ns);
}

int listener_open_all(struct worker *w)
{
	const struct strv *addrs = &w->conf->listen;
	w->listeners = xcalloc(addrs->n ? addrs->n : 1, sizeof(*w->listeners));
	w->listen_fds = xcalloc(addrs->n ? addrs->n : 1, sizeof(*w->listen_fds));
	w->nlisteners = addrs->n;
	if (w->host && w->nlisteners) /* an in-process `ward test` has no host */
		w->host->nlistening++;
	w->bind_retry.fn = retry_binding;
	for (size_t i = 0; i < addrs->n; i++) {
		struct listener *l = &w->listeners[i];
		l->worker = w;
		l->address = addrs->v[i];
		l->watch = (struct watch){.fd = -1, .fn = on_connection};
	}
	if (bind_missing(w))
		return 0;
	/* `ward test` (forked or in process) reports it and ends: a test run
	 * has nobody to free the port, and no loop to retry on in process. */
	bool retry = w->host && !w->host->test;
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].watch.fd < 0 && !retry)
			host_log(HOST_ERR, "[%s] unable to bind listen address %s: %s", w->conf->name,
				 w->listeners[i].address, w->listeners[i].error);
		else if (w->listeners[i].watch.fd < 0)
			host_log(HOST_ERR, "[%s] unable to bind listen address %s: %s; retrying (every 1s at first, up to every 30s, "
					   "and at `ward start %s`); the worker cannot start until then",
				 w->conf->name, w->listeners[i].address, w->listeners[i].error, w->conf->name);
	if (!retry)
		return -1;
	w->unbound_since_ns = mono_ns();
	w->bind_delay_ns = BIND_RETRY_FIRST_NS;
	timer_arm(w->host->loop, &w->bind_retry, mono_ns() + w->bind_delay_ns);
	worker_record(w); /* `ward status` says why */
	return -1;
}

bool listener_unbound(const struct worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].watch.fd < 0)
			return true;
	return false;
}

int listener_bind_now(struct worker *w, char *why, size_t size)
{
	if (!listener_unbound(w))
		return 0;
	if (bind_missing(w)) {
		bound_at_last(w);
		return 0;
	}
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].watch.fd < 0) {
			snprintf(why, size, "unable to bind listen address %s: %s", w->listeners[i].address,
				 w->listeners[i].error);
			break;
		}
	return -1;
}

void listener_close_all(struct worker *w)
{
	if (w->host) /* an in-process `ward test` has no host */
		timer_cancel(w->host->loop, &w->bind_retry);
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		if (l->watch.fd < 0)
			continue;
		if (l->watched)
			loop_unwatch(w->host->loop, &l->watch);
		close(l->watch.fd);
		if (strncmp(l->address, "unix:", 5) == 0)
			unlink(l->address + 5);
	}
	if (w->host && w->nlisteners)
		w->host->nlistening--;
	free(w->listeners);
	free(w->listen_fds);
	w->listeners = NULL;
	w->listen_fds = NULL;
	w->nlisteners = 0;
}

static enum listen_mode wanted_mode(const struct worker *w)
{
	if (w->host->shutting_down || worker_is_active(w) || w->pending_start)
		return LISTEN_HANDED;
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->state == IS_FAILED)
			return LISTEN_DRAIN;
	return LISTEN_ACTIVATE;
}

void listener_update(struct worker *w)
{
	if (!w->nlisteners)
		return;
	enum listen_mode mode = wanted_mode(w);
	if (mode == w->listen_mode)
		return;
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].watch.fd >= 0)
			apply_mode(&w->listeners[i], w->listen_mode, mode);
	if (mode == LISTEN_DRAIN)
		w->drain_reported = false;
	w->listen_mode = mode;
	worker_record(w);
	if (mode == LISTEN_DRAIN) /* connections already waiting get their answer now */
		for (size_t i = 0; i < w->nlisteners; i++)
			if (w->listeners[i].watch.fd >= 0)
				on_connection(&w->listeners[i].watch, EPOLLIN);
}
