/*
 * sdnotify.c - $NOTIFY_SOCKET for command workers: one datagram socket of
 * the host's, on an abstract address the kernel picks, whose messages
 * (systemd's sd_notify protocol, KEY=VALUE lines) are read from the loop.
 * The kernel stamps each with its sender's pid (SO_PASSCRED); the sender is
 * the instance whose process it is, whose process group it is in, or whose
 * cgroup holds it; anything else is ignored and counted. What a message
 * means to the state machine (READY=1) goes to the handler the host
 * registered: this file calls nothing of worker.c. At most MAX_PER_WAKEUP
 * messages are read per wakeup, so a flood cannot hold the loop. Host
 * daemon only. (notify.c is the other direction: the host telling its own
 * supervisor.)
 */
#define _GNU_SOURCE
#include "daemon/sdnotify.h"
#include "daemon/cgroup.h"
#include "daemon/host.h"
#include "daemon/pidtable.h"
#include "worker/slot.h"
#include "common/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PER_WAKEUP 64
#define MESSAGE_MAX 4096

struct sdnotify {
	struct watch watch;
	struct host *host;
	struct sdnotify_handler handler;
	char address[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* "@...", "" until opened */
	uint64_t foreign;
	bool foreign_said;
};

void sdnotify_init(struct host *h, struct sdnotify_handler handler)
{
	struct sdnotify *n = xcalloc(1, sizeof(*n));
	*n = (struct sdnotify){.watch = {.fd = -1}, .host = h, .handler = handler};
	h->sdnotify = n;
}

uint64_t sdnotify_foreign(const struct host *h)
{
	return h->sdnotify ? h->sdnotify->foreign : 0;
}

/* The instance of a worker named name with that index, if any. */
static struct instance *find_instance(struct host *h, const char *name, int index)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (strcmp(w->conf->name, name) == 0 && index >= 0 && index < w->ninst)
			return w->inst[index];
	}
	return NULL;
}

/* The command worker instance pid belongs to: its own process, one of its
 * process group, or one of its cgroup. NULL: none. */
static struct instance *sender_instance(struct host *h, pid_t pid)
{
	struct instance *in = pid > 0 ? pidtable_find(pid) : NULL;
	if (!in && pid > 0) {
		pid_t group = getpgid(pid);
		in = group > 0 ? pidtable_find(group) : NULL;
	}
	char name[256];
	int index;
	if (!in && pid > 0 && cgroup_owner_of(h, pid, name, sizeof(name), &index) == 0)
		in = find_instance(h, name, index);
	return in && in->conf->command && in->pid > 0 ? in : NULL;
}

static void set_status(struct instance *in, const char *text, size_t len)
{
	if (len >= sizeof(in->status_text))
		len = sizeof(in->status_text) - 1;
	if (strncmp(in->status_text, text, len) == 0 && in->status_text[len] == '\0')
		return; /* the same again: nothing to write (a program may repeat it at every beat) */
	memcpy(in->status_text, text, len);
	in->status_text[len] = '\0';
	history_instance_status(in->worker->host->history, in->worker->conf->name, in->index, in->status_text);
}

/* Whether line (len bytes) is exactly word, or starts with it when word ends in '='. */
static bool is(const char *line, size_t len, const char *word)
{
	size_t n = strlen(word);
	return word[n - 1] == '=' ? len >= n && memcmp(line, word, n) == 0 : len == n && memcmp(line, word, n) == 0;
}

/* STOPPING=1, RELOADING=1: a line in the worker's log, an event in history. */
static void record_said(struct instance *in, pid_t pid, const char *event, const char *what)
{
	struct worker *w = in->worker;
	log_printf(&w->log, in->index, pid, "WARD", "the program says it is %s (sd_notify)", what);
	history_event(w->host->history, w->conf->name, in->index, event, "sd_notify");
}

/* One KEY=VALUE line of a message from in's process. Anything not named
 * here (ERRNO=, EXTEND_TIMEOUT_USEC=, FDSTORE=1...) means nothing to ward. */
static void take_line(struct sdnotify *n, struct instance *in, pid_t pid, const char *line, size_t len)
{
	if (is(line, len, "READY=1")) {
		if (in->conf->ready == READY_NOTIFY && in->state == IS_STARTING)
			n->handler.on_ready(n->handler.ctx, in);
	} else if (is(line, len, "WATCHDOG=1")) {
		atomic_fetch_add_explicit(&in->slot->beats, 1, memory_order_relaxed);
		atomic_store_explicit(&in->slot->last_beat_ns, mono_ns(), memory_order_relaxed);
	} else if (is(line, len, "STATUS=")) {
		set_status(in, line + 7, len - 7);
	} else if (is(line, len, "STOPPING=1")) {
		record_said(in, pid, "stopping", "stopping");
	} else if (is(line, len, "RELOADING=1")) {
		record_said(in, pid, "reloading", "reloading");
	} else if (is(line, len, "MAINPID=") && !in->mainpid_said) {
		log_printf(&in->worker->log, in->index, pid, "WARD",
			   "sd_notify %.*s refused: ward tracks the process it started itself (pid %d); keep the program in the foreground",
			   (int)(len > 40 ? 40 : len), line, (int)in->pid);
		in->mainpid_said = true;
	}
}

static void take_message(struct sdnotify *n, const char *buf, size_t len, pid_t pid)
{
	struct instance *in = sender_instance(n->host, pid);
	if (!in) {
		n->foreign++;
		if (!n->foreign_said)
			host_log(HOST_WARN, "ignoring an sd_notify message from pid %d, which is no command worker's process "
					    "(counted in ward_notify_ignored_total; said once)", (int)pid);
		n->foreign_said = true;
		return;
	}
	for (size_t at = 0; at < len;) {
		size_t end = at;
		while (end < len && buf[end] != '\n')
			end++;
		if (end > at)
			take_line(n, in, pid, buf + at, end - at);
		at = end + 1;
	}
}

static void on_message(struct watch *wt, uint32_t events)
{
	(void)events;
	struct sdnotify *n = container_of(wt, struct sdnotify, watch);
	for (int i = 0; i < MAX_PER_WAKEUP; i++) {
		char buf[MESSAGE_MAX];
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
		} ctl;
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
		ssize_t got = recvmsg(wt->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (got < 0)
			return; /* EAGAIN: read all; anything else: the next wakeup tries again */
		/* Descriptors (FDSTORE=1) are not kept: close what came. */
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++)
					close(((int *)CMSG_DATA(c))[k]);
		if (!(m.msg_flags & MSG_TRUNC))
			take_message(n, buf, (size_t)got, msg_sender_pid(&m));
	}
}

/* The socket, bound to an abstract address the kernel picks (unique, and
 * nothing on disk a worker's user must be allowed to reach). */
static int open_socket(struct sdnotify *n)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -1;
	}
	size_t name_len = len - offsetof(struct sockaddr_un, sun_path); /* sun_path[0] is the abstract '\0' */
	n->address[0] = '@';
	memcpy(n->address + 1, sa.sun_path + 1, name_len - 1);
	n->address[name_len] = '\0';
	n->watch.fd = fd;
	n->watch.fn = on_message;
	if (loop_watch(n->host->loop, &n->watch, EPOLLIN) < 0)
		host_log(HOST_ERR, "unable to watch $NOTIFY_SOCKET: %s; sd_notify messages are not read", strerror(errno));
	return 0;
}

void sdnotify_open(struct host *h)
{
	struct sdnotify *n = h->sdnotify;
	if (!n || n->watch.fd >= 0)
		return;
	if (open_socket(n) < 0) {
		host_log(HOST_ERR, "unable to open $NOTIFY_SOCKET for command workers: %s; READY=1 cannot reach the host",
			 strerror(errno));
		return;
	}
	h->notify_socket = n->address;
}

void sdnotify_close(struct host *h)
{
	struct sdnotify *n = h->sdnotify;
	if (!n)
		return;
	if (n->watch.fd >= 0) {
		loop_unwatch(h->loop, &n->watch);
		close(n->watch.fd);
	}
	free(n);
	h->sdnotify = NULL;
	h->notify_socket = NULL;
}
