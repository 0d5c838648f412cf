/*
 * listener.c - socket activation. Sockets are created with SOCK_CLOEXEC in
 * the host (child.c moves them to fds 3.. for the worker) and stay blocking:
 * the worker shares the open file description and expects a blocking
 * accept(). The host only waits for readability, and accepts itself only in
 * drain mode, when no worker process exists; then it switches the socket to
 * non-blocking for the drain and back before the next process gets it.
 */
#define _GNU_SOURCE
#include "listener.h"
#include "dependency.h"
#include "worker.h"
#include "util.h"

#include <errno.h>
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

static int fail(const struct worker *w, const char *address, const char *what, int err)
{
	host_log(HOST_ERR, "[%s] unable to %s listen address %s: %s", w->conf->name, what, address, strerror(err));
	return -1;
}

/* A socket file left by a crashed host is replaced; a live one or any other
 * kind of file is refused. */
static int clear_unix_path(const struct worker *w, const char *address, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fail(w, address, "inspect", errno);
	if (!S_ISSOCK(st.st_mode)) {
		host_log(HOST_ERR, "[%s] listen address %s: %s exists and is not a socket; remove it or choose another path",
			 w->conf->name, address, path);
		return -1;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (probe >= 0)
		close(probe);
	if (live) {
		/* The configuration refuses two workers on one address: this is
		 * someone else, or a worker that a reload is still stopping. */
		host_log(HOST_ERR, "[%s] listen address %s: something already listens on %s: another program, another ward host, "
			 "or a worker of this host that a reload is removing", w->conf->name, address, path);
		return -1;
	}
	if (unlink(path) < 0)
		return fail(w, address, "replace the stale socket of", errno);
	return 0;
}

static int open_unix(const struct worker *w, const char *address)
{
	const char *path = address + 5;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(w, address, "use", ENAMETOOLONG);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0) {
			free(dir);
			return fail(w, address, "create the directory of", errno);
		}
	}
	free(dir);
	if (clear_unix_path(w, address, path) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(w, address, "create a socket for", errno);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 || listen(fd, BACKLOG) < 0) {
		int err = errno;
		close(fd);
		return fail(w, address, "bind", err);
	}
	return fd;
}

/* "tcp:HOST:PORT", HOST may be "[v6]", "*" (every address) or a name. */
static int open_tcp(const struct worker *w, const char *address)
{
	const char *spec = address + 4;
	const char *colon = strrchr(spec, ':');
	char host[256];
	size_t hlen = (size_t)(colon - spec);
	if (hlen >= sizeof(host))
		return fail(w, address, "use", ENAMETOOLONG);
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
	if (rc != 0) {
		host_log(HOST_ERR, "[%s] unable to resolve listen address %s: %s", w->conf->name, address, gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return fail(w, address, "bind", err);
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
		if (closed && !w->drain_reported) {
			host_log(HOST_WARN, "[%s] failed: closing connections on %s at once (and from now on until it is restarted)",
				 w->conf->name, l->address);
			w->drain_reported = true;
		}
		return;
	}
	/* LISTEN_ACTIVATE: the connection waits in the backlog for the worker. */
	host_log(HOST_INFO, "[%s] connection on %s: starting the worker", w->conf->name, l->address);
	dependency_request_start(w, "connection");
	listener_update(w);
}

int listener_open_all(struct worker *w)
{
	const struct strv *addrs = &w->conf->listen;
	w->listeners = xcalloc(addrs->n ? addrs->n : 1, sizeof(*w->listeners));
	w->listen_fds = xcalloc(addrs->n ? addrs->n : 1, sizeof(*w->listen_fds));
	w->nlisteners = addrs->n;
	for (size_t i = 0; i < addrs->n; i++)
		w->listeners[i].watch.fd = -1; /* a failure leaves the rest closed, not fd 0 */
	for (size_t i = 0; i < addrs->n; i++) {
		struct listener *l = &w->listeners[i];
		l->worker = w;
		l->address = addrs->v[i];
		l->watch.fn = on_connection;
		l->watch.fd = strncmp(l->address, "unix:", 5) == 0 ? open_unix(w, l->address) : open_tcp(w, l->address);
		if (l->watch.fd < 0)
			return -1;
	}
	return 0;
}

void listener_close_all(struct worker *w)
{
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
		if (w->inst[i].state == IS_FAILED)
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
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *l = &w->listeners[i];
		if (l->watch.fd < 0)
			continue;
		bool watch = mode != LISTEN_HANDED;
		if (watch && !l->watched && loop_watch(w->host->loop, &l->watch, EPOLLIN) == 0)
			l->watched = true;
		else if (!watch && l->watched && loop_unwatch(w->host->loop, &l->watch) == 0)
			l->watched = false;
		if (mode == LISTEN_DRAIN || w->listen_mode == LISTEN_DRAIN)
			set_nonblocking(l, mode == LISTEN_DRAIN);
	}
	if (mode == LISTEN_DRAIN)
		w->drain_reported = false;
	w->listen_mode = mode;
	worker_record(w);
	if (mode == LISTEN_DRAIN) /* connections already waiting get their answer now */
		for (size_t i = 0; i < w->nlisteners; i++)
			if (w->listeners[i].watch.fd >= 0)
				on_connection(&w->listeners[i].watch, EPOLLIN);
}
