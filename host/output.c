/*
 * output.c - turns what worker processes write into log lines and events.
 *
 * A process's stdout/stderr is a pipe of its own, read into the host's one
 * scratch buffer; a line split across reads is carried in the instance's
 * `pending` (allocated only when that happens), a line longer than the
 * buffer is cut into pieces: nothing is dropped. Runtime frames (ward_log
 * lines, ready, end) travel on a datagram channel shared by every process
 * of one user, so the host holds one descriptor per process, not two: 10,000
 * workers fit in a 20,000-descriptor limit.
 */
#define _GNU_SOURCE
#include "output.h"
#include "tester.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_WAKEUP 4

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static void keep_pending(struct pending *p, const char *data, size_t len)
{
	if (len == 0) {
		free(p->buf);
		*p = (struct pending){0};
		return;
	}
	char *buf = xmalloc(len);
	memcpy(buf, data, len);
	free(p->buf);
	p->buf = buf;
	p->len = len;
}

/* Consumes complete lines of data; returns how many bytes were used. */
static size_t take_lines(struct instance *in, const char *data, size_t len, bool eof)
{
	struct log_file *lf = &in->worker->log;
	int64_t now = wall_ms();
	size_t used = 0;
	while (used < len) {
		const char *nl = memchr(data + used, '\n', len - used);
		if (!nl)
			break;
		log_line(lf, now, in->index, in->pid, "OUT", data + used, (size_t)(nl - data - used));
		used = (size_t)(nl - data) + 1;
	}
	if (eof && used < len) { /* a last line without newline */
		log_line(lf, now, in->index, in->pid, "OUT", data + used, len - used);
		used = len;
	}
	return used;
}

static void take_end(struct instance *in, const char *payload, size_t len)
{
	struct frame_end end;
	if (len < sizeof(end))
		return;
	memcpy(&end, payload, sizeof(end));
	in->got_end = true;
	in->end.reason = end.reason > REASON_NONE && end.reason < REASON_COUNT ? (enum reason)end.reason
									       : REASON_ERROR;
	in->end.code = end.code;
	size_t tlen = len - sizeof(end);
	if (tlen >= sizeof(in->end.message))
		tlen = sizeof(in->end.message) - 1;
	memcpy(in->end.message, payload + sizeof(end), tlen);
	in->end.message[tlen] = '\0';
}

/* Consumes complete frames; returns bytes used, or (size_t)-1 on garbage. */
static size_t take_frames(struct instance *in, const char *data, size_t len)
{
	size_t used = 0;
	struct frame_hdr hdr;
	const char *payload;
	long n;
	while ((n = frame_next(data + used, len - used, &hdr, &payload)) > 0) {
		struct tester *test = in->worker->host->test;
		switch (hdr.type) {
		case FRAME_LOG:
			log_line(&in->worker->log, wall_ms(), in->index, in->pid,
				 level_names[hdr.level <= 3 ? hdr.level : 2], payload, hdr.len);
			break;
		case FRAME_READY:
			instance_ready(in);
			break;
		case FRAME_END:
			take_end(in, payload, hdr.len);
			break;
		case FRAME_PHASE:
		case FRAME_CYCLE:
			if (test)
				tester_take_frame(test, &hdr, payload);
			break;
		}
		used += (size_t)n;
	}
	return n < 0 ? (size_t)-1 : used;
}

/* ---- runtime channels: one datagram socket per user that workers run as ---- */

/* One datagram is one frame; the kernel stamps it with the sender's pid, which
 * names the instance. Only processes of the same user share a channel: they
 * could signal each other anyway, so sharing gives none of them a new power. */
struct frame_channel {
	struct watch watch;  /* the host's end */
	int worker_end;      /* what every process of `user` writes to */
	char *user;          /* NULL: the host's own user */
	struct host *host;
};

#define FRAME_BATCH 16 /* datagrams per recvmmsg */
/* A channel serves many processes: read about as many frames per wakeup as
 * the four 64 KiB reads a pipe gets would hold. */
#define BATCHES_PER_WAKEUP 64

/* Datagrams land here: a batch's worth, each up to a whole frame. */
static char datagrams[FRAME_BATCH][FRAME_MAX];

/* The sender's pid, as the kernel stamped it; 0 when missing. */
static pid_t sender_pid(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred cred;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			return cred.pid;
		}
	return 0;
}

/* The instance a datagram speaks for: its sender, or the worker process the
 * frame names as its leader when the sender is a child that plugin code
 * forked. Only instances given this channel count: a process cannot speak for
 * a worker of another user. */
static struct instance *speaker_of(struct frame_channel *c, pid_t pid, const char *data, size_t len)
{
	struct instance *in = host_instance_of(c->host, pid);
	struct frame_hdr hdr;
	if (!in && len >= sizeof(hdr)) {
		memcpy(&hdr, data, sizeof(hdr));
		in = host_instance_of(c->host, hdr.leader);
	}
	return in && in->channel_fd == c->worker_end ? in : NULL;
}

static void take_datagram(struct instance *in, struct msghdr *m, size_t len)
{
	const char *data = m->msg_iov->iov_base;
	if (!(m->msg_flags & MSG_TRUNC) && take_frames(in, data, len) == len)
		return;
	in->frames_ignored = true;
	log_printf(&in->worker->log, in->index, in->pid, "WARD",
		   "garbage on the runtime channel (its descriptor written by plugin code?): ignoring it from now on");
}

enum reading {
	READ_SOME,         /* a wakeup's worth */
	READ_TO_MARKER,    /* everything queued before the host's own empty datagram */
};

#define MAX_DRAIN_BATCHES 4096 /* a bound even if the marker got lost */

/* Reads datagrams from the channel: a wakeup's worth, or up to the marker.
 * A datagram from a process that is no instance of this channel's user and
 * names none as its leader is dropped. */
static void read_channel(struct frame_channel *c, enum reading how)
{
	struct host *h = c->host;
	struct mmsghdr msgs[FRAME_BATCH];
	struct iovec iov[FRAME_BATCH];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} ctl[FRAME_BATCH];
	int rounds = how == READ_TO_MARKER ? MAX_DRAIN_BATCHES : BATCHES_PER_WAKEUP;
	bool marker_seen = false;
	for (int round = 0; round < rounds && !marker_seen; round++) {
		for (int i = 0; i < FRAME_BATCH; i++) {
			iov[i] = (struct iovec){.iov_base = datagrams[i], .iov_len = FRAME_MAX};
			msgs[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1,
							  .msg_control = ctl[i].buf, .msg_controllen = sizeof(ctl[i].buf)};
		}
		int n = recvmmsg(c->watch.fd, msgs, FRAME_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN: empty for now */
		struct worker *last = NULL;
		for (int i = 0; i < n; i++) {
			pid_t pid = sender_pid(&msgs[i].msg_hdr);
			if (pid == h->pid && msgs[i].msg_len == 0) {
				marker_seen = true; /* frames after it are taken too: harmless */
				continue;
			}
			struct instance *in = speaker_of(c, pid, datagrams[i], msgs[i].msg_len);
			if (!in || in->frames_ignored)
				continue;
			if (last && last != in->worker)
				log_flush(&last->log);
			last = in->worker;
			take_datagram(in, &msgs[i].msg_hdr, msgs[i].msg_len);
		}
		if (last)
			log_flush(&last->log);
		if (n < FRAME_BATCH && how != READ_TO_MARKER)
			break;
	}
}

static void on_frames(struct watch *w, uint32_t events)
{
	(void)events;
	read_channel(container_of(w, struct frame_channel, watch), READ_SOME);
}

static bool same_user(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static struct frame_channel *open_channel(struct host *h, const char *user)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	/* The default send buffer (a few hundred frames) is kept: like a pipe's,
	 * it makes a process wait for the host rather than run far ahead of
	 * its own log. */
	int on = 1;
	if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	struct frame_channel *c = xcalloc(1, sizeof(*c));
	*c = (struct frame_channel){.watch = {.fd = sv[0], .fn = on_frames}, .worker_end = sv[1],
				    .user = user ? xstrdup(user) : NULL, .host = h};
	if (loop_watch(h->loop, &c->watch, EPOLLIN) < 0)
		host_log(HOST_ERR, "unable to watch a runtime channel: %s; frames are read when processes exit",
			 strerror(errno));
	h->channels = xrealloc(h->channels, (h->nchannels + 1) * sizeof(*h->channels));
	h->channels[h->nchannels++] = c;
	return c;
}

int output_channel_for(struct host *h, const char *user)
{
	for (size_t i = 0; i < h->nchannels; i++)
		if (same_user(h->channels[i]->user, user))
			return h->channels[i]->worker_end;
	struct frame_channel *c = open_channel(h, user);
	return c ? c->worker_end : -1;
}

void output_read_frames(struct host *h)
{
	/* Processes may keep sending while the host reads: an empty datagram of
	 * the host's own marks where "sent so far" ends, so reading stops there. */
	for (size_t i = 0; i < h->nchannels; i++) {
		struct frame_channel *c = h->channels[i];
		bool marked = send(c->worker_end, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) == 0;
		read_channel(c, marked ? READ_TO_MARKER : READ_SOME);
	}
}

void output_close_channels(struct host *h)
{
	for (size_t i = 0; i < h->nchannels; i++) {
		struct frame_channel *c = h->channels[i];
		loop_close(h->loop, &c->watch);
		close(c->worker_end);
		free(c->user);
		free(c);
	}
	free(h->channels);
	h->channels = NULL;
	h->nchannels = 0;
}

/* ---- stdout/stderr: one pipe per process ---- */

static void close_watch(struct instance *in, struct watch *w, struct pending *rest)
{
	loop_close(in->worker->host->loop, w);
	keep_pending(rest, NULL, 0);
}

/* Reads the stdout/stderr pipe: `rounds` reads at most, or until empty when draining. */
static void pump(struct instance *in, bool drain)
{
	struct host *h = in->worker->host;
	struct watch *w = &in->out;
	struct pending *rest = &in->out_rest;
	char *buf = h->scratch;
	for (int round = 0; w->fd >= 0 && (drain || round < READS_PER_WAKEUP); round++) {
		size_t have = rest->len;
		if (have)
			memcpy(buf, rest->buf, have);
		ssize_t n = read(w->fd, buf + have, sizeof(h->scratch) - have);
		if (n < 0 && errno == EINTR)
			continue;
		bool eof = n == 0 || (n < 0 && errno != EAGAIN);
		size_t len = have + (n > 0 ? (size_t)n : 0);
		size_t used = take_lines(in, buf, len, eof || len == sizeof(h->scratch));
		keep_pending(rest, buf + used, len - used);
		if (eof) {
			close_watch(in, w, rest);
			break;
		}
		if (n < 0) /* EAGAIN: empty for now */
			break;
	}
	log_flush(&in->worker->log);
}

static void on_out(struct watch *w, uint32_t events)
{
	(void)events;
	pump(container_of(w, struct instance, out), false);
}

void output_attach(struct instance *in, int out_fd)
{
	in->out = (struct watch){.fd = out_fd, .fn = on_out};
	in->frames_ignored = false;
	if (loop_watch(in->worker->host->loop, &in->out, EPOLLIN) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to watch the process's output: %s; it will be read when it exits",
			 in->worker->conf->name, in->index, strerror(errno));
}

void output_drain(struct instance *in)
{
	pump(in, true);
	output_detach(in);
}

void output_detach(struct instance *in)
{
	close_watch(in, &in->out, &in->out_rest);
}
