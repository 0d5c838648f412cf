/*
 * syncer_client.c - the host's client of the syncer process (syncer_client.h):
 * forks it, watches its socket in the loop, and starts it again when it dies,
 * sending the request it held once more. Runs in the host daemon.
 */
#define _GNU_SOURCE
#include "daemon/syncer_client.h"
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define RESTART_PAUSE_NS (200 * NS_PER_MS) /* for a syncer that died within a second of its start */

static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* The syncer is a child of the host: ended and reaped through a pidfd, so
 * that a pid the host's reaper already collected (and the kernel reused) is
 * never signalled. */
static void end_process(struct syncer_client *c)
{
	if (c->pid <= 0)
		return;
	if (c->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
		siginfo_t si;
		while (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) < 0 && errno == EINTR)
			;
		close(c->pidfd);
		c->pidfd = -1;
	} else if (waitpid(c->pid, NULL, WNOHANG) == 0) { /* no pidfd (old kernel): still ours */
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	c->pid = 0;
}

static void on_readable(struct watch *w, uint32_t events);
static void send_inflight(struct syncer_client *c);

static int spawn(struct syncer_client *c)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid_t host = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int saved = errno;
		close(sv[0]);
		close(sv[1]);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		syncer_become(sv[1], host, c->db_path);
	}
	close(sv[1]);
	c->pid = pid;
	c->pidfd = pidfd_of(pid);
	c->started_ns = mono_ns();
	c->watch = (struct watch){.fd = sv[0], .fn = on_readable};
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || loop_watch(c->loop, &c->watch, EPOLLIN) < 0) {
		int saved = errno;
		close(sv[0]);
		c->watch.fd = -1;
		end_process(c);
		errno = saved;
		return -1;
	}
	return 0;
}

static void start_again(struct syncer_client *c)
{
	if (spawn(c) < 0) {
		host_log(HOST_ERR, "unable to start the syncer process for %s again: %s; enqueued jobs wait for it (retried)",
			 c->db_path, strerror(errno));
		timer_arm(c->loop, &c->restart, mono_ns() + RESTART_PAUSE_NS);
		return;
	}
	if (c->busy)
		send_inflight(c);
}

static void on_restart_timer(struct timer *t)
{
	start_again(container_of(t, struct syncer_client, restart));
}

/* The syncer is gone (its end closed, or a send failed): it is started again,
 * at once unless it died young, and what it held is sent again. */
static void died(struct syncer_client *c)
{
	if (c->watch.fd >= 0)
		loop_close(c->loop, &c->watch);
	end_process(c);
	c->restarts++;
	host_log(HOST_WARN, "the syncer process of %s ended; starting it again", c->db_path);
	if (mono_ns() - c->started_ns < NS_PER_SEC)
		timer_arm(c->loop, &c->restart, mono_ns() + RESTART_PAUSE_NS);
	else
		start_again(c);
}

static void send_inflight(struct syncer_client *c)
{
	if (c->watch.fd < 0)
		return; /* sent by start_again */
	c->requests++;
	if (send(c->watch.fd, &c->inflight, sizeof(c->inflight), MSG_NOSIGNAL) != (ssize_t)sizeof(c->inflight))
		died(c);
}

static void on_readable(struct watch *w, uint32_t events)
{
	(void)events;
	struct syncer_client *c = container_of(w, struct syncer_client, watch);
	for (;;) {
		struct syncer_reply r;
		ssize_t got = recv(w->fd, &r, sizeof(r), 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (got != (ssize_t)sizeof(r)) {
			died(c);
			return;
		}
		if (!c->busy || r.seq != c->inflight.seq)
			continue; /* not asked (cannot happen): ignored */
		c->busy = false;
		c->on_answer(c, r.seq, r.err); /* may send the next request */
		if (c->watch.fd < 0)
			return;
	}
}

int syncer_client_start(struct syncer_client *c, struct loop *loop, const char *db_path, syncer_answer_fn *on_answer)
{
	*c = (struct syncer_client){.loop = loop, .db_path = xstrdup(db_path), .watch = {.fd = -1}, .pidfd = -1,
				    .restart = {.fn = on_restart_timer}, .on_answer = on_answer};
	if (spawn(c) < 0) {
		timer_arm(loop, &c->restart, mono_ns() + RESTART_PAUSE_NS);
		return -1;
	}
	return 0;
}

void syncer_client_send(struct syncer_client *c, uint64_t seq, enum syncer_op op)
{
	c->inflight = (struct syncer_request){.seq = seq, .op = op};
	c->busy = true;
	send_inflight(c);
}

void syncer_client_stop(struct syncer_client *c)
{
	if (!c->db_path)
		return;
	timer_cancel(c->loop, &c->restart);
	if (c->watch.fd >= 0)
		loop_close(c->loop, &c->watch);
	end_process(c);
	free(c->db_path);
	c->db_path = NULL;
}
