/*
 * spawner_client.c - the host's client of the spawner process (runs in the
 * host, and in `ward check`'s process, which probes plugins the same way):
 * forking the spawner, sending it requests without ever waiting for it,
 * queueing what its socket does not take yet, reading its answers (one per
 * request, in order) from the loop, and giving up on a spawner that does
 * not answer within REPLY_TIMEOUT_MS: it is killed, and the host forks
 * processes itself from then on. What the spawner process does is
 * spawner/spawner.c; what a request carries is worker/childspec.c.
 */
#define _GNU_SOURCE
#include "daemon/spawner_client.h"
#include "spawner/spawner.h"
#include "daemon/host.h"
#include "daemon/log.h"
#include "worker/child.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_TIMEOUT_MS 10000 /* a fork of a small process under heavy load, with room to spare */

/* Forks the job's process from the host itself, now: correct, only costlier
 * as the host grows; the child starts as a copy of the host and wipes what
 * is not its own (child.c, from spec->host_config). */
static void fork_here(struct spawn_job *j)
{
	struct child_spec spec = {0};
	if (j->prepare(j, &spec) < 0) {
		j->done(j, -1, errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_main(&spec);
	int err = errno;
	j->release(j, &spec, pid > 0);
	j->done(j, pid > 0 ? pid : -1, err);
}

/* Every request is answered, and a child of the host waited for that. */
static void tell_answered(struct host *h)
{
	h->spawner.recheck_children = false;
	if (h->spawner.hooks.on_answered)
		h->spawner.hooks.on_answered(h);
}

/* Takes every job off the queue, in order. */
static struct spawn_job *take_queue(struct spawner *s)
{
	struct spawn_job *all = s->head;
	s->head = s->tail = s->unsent = NULL;
	s->in_flight = 0;
	timer_cancel(s->host->loop, &s->deadline);
	return all;
}

static void retire(struct host *h)
{
	struct spawner *s = &h->spawner;
	if (s->watch.fd >= 0 && h->loop)
		loop_close(h->loop, &s->watch);
	else if (s->watch.fd >= 0)
		close(s->watch.fd);
	if (s->pid > 0)
		kill(s->pid, SIGKILL); /* it waits for the host's death otherwise (spawner.c's serve); reaped like any child */
	s->watch.fd = -1;
	s->pid = 0;
}

/* From now on the host forks workers itself: correct, only slower at scale.
 * What was waiting for the spawner is forked here, in order (`first`, when
 * given, before the rest). The processes it may have forked without saying
 * so are children of the host that no instance knows: the host hears of
 * them first (hooks.on_strays) and decides what becomes of them. */
static void disable_with(struct host *h, const char *what, const char *why, struct spawn_job *first)
{
	struct spawner *s = &h->spawner;
	bool had_requests = s->in_flight > 0 || first;
	int64_t sent_ns = s->in_flight ? s->head->deadline - (int64_t)REPLY_TIMEOUT_MS * NS_PER_MS : mono_ns();
	size_t n = 0;
	for (struct spawn_job *j = s->head; j && n < s->in_flight; j = j->next, n++)
		if (j->orphaned) /* it may have made the process without saying so */
			j->orphaned(j);
	struct spawn_job *left = s->host ? take_queue(s) : NULL;
	if (first) {
		first->next = left;
		left = first;
	}
	retire(h);
	s->disabled = true;
	host_log(HOST_WARN, "%s: %s; the host forks workers itself from now on (starts slow down with thousands of workers)",
		 what, why);
	if (had_requests && s->hooks.on_strays)
		s->hooks.on_strays(h, sent_ns);
	while (left) {
		struct spawn_job *j = left;
		left = j->next;
		fork_here(j);
	}
	if (s->recheck_children)
		tell_answered(h);
}

static void disable(struct host *h, const char *what, const char *why)
{
	disable_with(h, what, why, NULL);
}

/* The spawner failed the host: it is killed and replaced by the host itself. */
static void give_up_on(struct host *h, const char *why)
{
	if (h->spawner.pid > 0)
		kill(h->spawner.pid, SIGKILL);
	disable(h, "the spawner process failed", why);
}

/* Waits for the spawner's first reply, within REPLY_TIMEOUT_MS (at boot,
 * before the loop runs). 0, or -1 with errno. */
static int await_reply(struct spawner *s, struct spawner_reply *r)
{
	struct pollfd p = {.fd = s->watch.fd, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		return -1;
	ssize_t got = recv(s->watch.fd, r, sizeof(*r), 0);
	if (got == (ssize_t)sizeof(*r))
		return 0;
	errno = got < 0 ? errno : EPIPE;
	return -1;
}

void spawner_open(struct host *h)
{
	struct spawner *s = &h->spawner;
	int sv[2];
	pid_t pid = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0 && (pid = fork()) < 0) {
		int saved = errno;
		close(sv[0]);
		close(sv[1]);
		errno = saved;
	}
	if (pid < 0) {
		disable(h, "unable to start the spawner process", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		spawner_become(sv[1], h->pid);
	}
	close(sv[1]);
	*s = (struct spawner){.pid = pid, .watch = {.fd = sv[0]}};
	struct spawner_reply hello = {0};
	if (await_reply(s, &hello) < 0 || hello.pid != pid || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		const char *why = strerror(hello.pid == 0 && hello.err ? hello.err : errno);
		kill(pid, SIGKILL);
		disable(h, "the spawner process cannot fork workers here", why);
	} else if (hello.err) {
		host_log(HOST_WARN, "unable to execute ward again for the spawner process (%s): it forks workers from a copy of the host, whose environment strings it wiped",
			 strerror(hello.err));
	}
}

/* The request for spec into buf: its length, or 0 when it does not fit in
 * one request (its bytes, or its descriptors). */
static size_t encode(const struct child_spec *spec, char *buf, size_t size)
{
	if (CHILDSPEC_MAX_FDS(spec->nlisten) + SPAWNER_WORKERS_CGROUP_FDS > SPAWNER_MAX_FDS)
		return 0;
	struct wire w = {.buf = buf, .size = size};
	childspec_encode(spec, &w);
	return w.failed ? 0 : w.at;
}

/* The descriptors a request hands over, in order; how many. */
static int request_fds(const struct host *h, const struct child_spec *spec, int *fds)
{
	int n = childspec_fds(spec, fds);
	if (spec->probe || spec->cgroup_fd < 0)
		return n;
	fds[n] = h->cgroups.workers_fd;
	return n + SPAWNER_WORKERS_CGROUP_FDS;
}

static int send_request(struct spawner *s, const struct child_spec *spec, const char *buf, size_t len)
{
	int fds[SPAWNER_MAX_FDS];
	int nfds = request_fds(s->host, spec, fds);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(SPAWNER_MAX_FDS * sizeof(int))];
	} ctl;
	memset(ctl.buf, 0, CMSG_SPACE((size_t)nfds * sizeof(int)));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			   .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	ssize_t n;
	while ((n = sendmsg(s->watch.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

/* The job at the head of the queue is answered. */
static struct spawn_job *pop_answered(struct spawner *s)
{
	struct spawn_job *j = s->head;
	s->head = j->next;
	if (!s->head)
		s->tail = NULL;
	s->in_flight--;
	if (s->in_flight)
		timer_arm(s->host->loop, &s->deadline, s->head->deadline);
	else
		timer_cancel(s->host->loop, &s->deadline);
	return j;
}

/* The spawner's answers received so far. Then, once none is awaited, what
 * had to wait for them (a child nobody knew yet) is looked at again. */
static void read_answers(struct host *h)
{
	struct spawner *s = &h->spawner;
	struct spawner_reply r;
	ssize_t got;
	while (s->in_flight && (got = recv(s->watch.fd, &r, sizeof(r), MSG_DONTWAIT)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			break;
		if (got != (ssize_t)sizeof(r)) {
			give_up_on(h, got < 0 ? strerror(errno) : "it sent a malformed answer");
			return;
		}
		struct spawn_job *j = pop_answered(s);
		if (r.pid <= 0 && r.err != EAGAIN && r.err != ENOMEM) {
			/* Not short of resources: this kernel or sandbox refuses the clone. */
			disable_with(h, "the spawner process cannot fork workers here", strerror(r.err), j);
			return;
		}
		j->done(j, r.pid > 0 ? r.pid : -1, r.err);
	}
	if (!s->in_flight && s->recheck_children)
		tell_answered(h);
}

/* Sends one request: 0 sent; 1 the socket is full (try when writable);
 * 2 it cannot go through the spawner (too big): fork it here; -1 the
 * spawner is gone (errno). */
static int send_job(struct spawner *s, struct spawn_job *j, int *prepare_errno)
{
	static char buf[SPAWNER_REQUEST_MAX];
	struct child_spec spec = {0};
	*prepare_errno = 0;
	if (j->prepare(j, &spec) < 0) {
		*prepare_errno = errno;
		return 0;
	}
	size_t len = encode(&spec, buf, sizeof(buf));
	int sent = len ? send_request(s, &spec, buf, len) : -1;
	int err = len ? errno : EMSGSIZE;
	if (len)
		explicit_bzero(buf, len); /* the worker's secrets: not for a process the host forks later */
	j->release(j, &spec, sent == 0);
	if (sent == 0)
		return 0;
	if (err == EAGAIN || err == ENOBUFS)
		return 1;
	if (err == EMSGSIZE || err == ETOOMANYREFS)
		return 2;
	errno = err;
	return -1;
}

/* Takes the next unsent job off the queue (it does not go through the spawner). */
static void unqueue_unsent(struct spawner *s, struct spawn_job *j)
{
	struct spawn_job **p = &s->head, *prev = NULL;
	while (*p != j) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = j->next;
	if (s->tail == j)
		s->tail = prev;
	s->unsent = j->next;
}

/* Sends what is queued, as long as the socket takes it. */
static void send_queued(struct host *h)
{
	struct spawner *s = &h->spawner;
	int rc = 0;
	while (s->unsent && rc != 1) {
		struct spawn_job *j = s->unsent;
		int failed;
		rc = send_job(s, j, &failed);
		if (rc < 0) {
			char why[128];
			snprintf(why, sizeof(why), "it does not take requests (%s)", strerror(errno));
			give_up_on(h, why);
			return;
		}
		if (rc == 2 || (rc == 0 && failed)) {
			unqueue_unsent(s, j);
			if (rc == 2)
				fork_here(j);
			else
				j->done(j, -1, failed);
			continue;
		}
		if (rc == 0) {
			j->deadline = mono_ns() + (int64_t)REPLY_TIMEOUT_MS * NS_PER_MS;
			if (s->in_flight++ == 0)
				timer_arm(h->loop, &s->deadline, j->deadline);
			s->unsent = j->next;
		}
	}
	loop_modify(h->loop, &s->watch, s->unsent ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void on_spawner(struct watch *w, uint32_t events)
{
	struct host *h = container_of(w, struct spawner, watch)->host;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		read_answers(h);
	if (h->spawner.watch.fd >= 0 && (events & (EPOLLERR | EPOLLHUP)))
		loop_unwatch(h->loop, w); /* it died: said when it is reaped, which comes next */
	else if (h->spawner.watch.fd >= 0 && h->spawner.unsent)
		send_queued(h);
}

static void on_deadline(struct timer *t)
{
	struct host *h = container_of(t, struct spawner, deadline)->host;
	char why[96];
	snprintf(why, sizeof(why), "it did not answer within %d s", REPLY_TIMEOUT_MS / 1000);
	give_up_on(h, why);
}

void spawner_attach(struct host *h, struct spawner_hooks hooks)
{
	struct spawner *s = &h->spawner;
	s->host = h;
	s->hooks = hooks;
	s->watch.fn = on_spawner;
	s->deadline.fn = on_deadline;
	if (s->watch.fd >= 0 && loop_watch(h->loop, &s->watch, EPOLLIN) < 0) {
		kill(s->pid, SIGKILL);
		disable(h, "unable to watch the spawner process", strerror(errno));
	}
}

void spawner_submit(struct host *h, struct spawn_job *j)
{
	struct spawner *s = &h->spawner;
	if (s->disabled || !s->host) {
		fork_here(j);
		return;
	}
	j->next = NULL;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	if (!s->unsent)
		s->unsent = j;
	send_queued(h);
}

bool spawner_unanswered(struct host *h)
{
	if (h->spawner.in_flight)
		read_answers(h);
	return h->spawner.in_flight > 0;
}

void spawner_recheck_children_later(struct host *h)
{
	h->spawner.recheck_children = true;
}

bool spawner_is(const struct host *h, pid_t pid)
{
	return pid > 0 && pid == h->spawner.pid;
}

void spawner_reaped(struct host *h, pid_t pid, int wait_status)
{
	if (!spawner_is(h, pid))
		return;
	read_answers(h); /* what it said before it died still counts */
	char why[64];
	if (WIFSIGNALED(wait_status))
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(wait_status));
	else
		snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(wait_status));
	h->spawner.pid = 0; /* reaped: nothing left to signal */
	disable(h, "the spawner process died", why);
}

void spawner_close(struct host *h)
{
	pid_t pid = h->spawner.pid;
	if (h->spawner.host)
		take_queue(&h->spawner); /* the host is ending: nothing more is started */
	retire(h);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}
