/*
 * channel.c - the runtime channel: frames from worker processes (ward_log
 * lines, ready, end, the plugin's metrics, the end of a job, and for
 * `ward test` phases and cycles) turned into log lines (kept in the run's last lines too,
 * runtail.c), events and the instance's metrics. Frames
 * travel as datagrams from a socket of each process's own to one socket of
 * the host's, so the host holds one descriptor per process for them, not
 * two: 10,000 workers fit in a 20,000-descriptor limit. What a frame means
 * to the state machine (ready) goes to the handler the host registered
 * (channel.h): this file calls nothing of worker.c. Jobs go the other way
 * on the same sockets (channel_send_job). Host daemon only, called from its loop.
 */
#define _GNU_SOURCE
#include "daemon/channel.h"
#include "daemon/host.h"
#include "daemon/observer.h"
#include "daemon/runtail.h"
#include "daemon/jobstore.h"
#include "common/jobframe.h"
#include "common/util.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

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

_Static_assert(FRAME_JOB_DATA_MAX == JOB_DATA_MAX && FRAME_JOB_KEY_MAX == JOB_KEY_MAX,
	       "proto.h and jobstore.h agree on job sizes");

/* A FRAME_JOB_END: its result inline, or in *memfd (taken: closed here).
 * Sizes are checked, not trusted; a result that cannot be read fails the
 * job with the reason, rather than losing its end. false: not a job end
 * this runtime writes (garbage). */
static bool take_job_end(const struct channel_handler *handler, struct instance *in, const char *payload,
			 size_t len, int *memfd)
{
	struct frame_job_end end;
	if (len < sizeof(end))
		return false;
	memcpy(&end, payload, sizeof(end));
	size_t rest = len - sizeof(end);
	size_t inline_len = end.in_memfd ? 0 : end.result_len;
	if (end.message_len > rest || inline_len != rest - end.message_len || end.result_len > JOB_DATA_MAX)
		return false;
	char message[FRAME_MAX];
	snprintf(message, sizeof(message), "%.*s", (int)end.message_len, payload + sizeof(end));
	const void *result = end.result_len ? payload + sizeof(end) + end.message_len : NULL;
	void *copy = NULL;
	if (end.in_memfd && *memfd < 0) {
		/* the kernel could not install it (the host at its descriptor limit) */
		snprintf(message, sizeof(message), "its result of %u bytes was lost on the way: the memfd it came in "
			 "did not reach the host (out of descriptors?)", end.result_len);
		end.outcome = JOB_END_FAILED;
		end.result_len = 0;
	} else if (end.in_memfd) {
		if (jobframe_read_memfd(*memfd, end.result_len, JOB_DATA_MAX, &copy) < 0) {
			snprintf(message, sizeof(message), "its result of %u bytes could not be read from the memfd it "
				 "came in: %s", end.result_len, strerror(errno));
			end.outcome = JOB_END_FAILED;
			end.result_len = 0;
		}
		close(*memfd);
		*memfd = -1;
		result = copy;
	}
	if (end.outcome != JOB_END_DONE)
		end.outcome = JOB_END_FAILED;
	if (handler->on_job_end)
		handler->on_job_end(handler->ctx, in, &end, message, end.result_len ? result : NULL, end.result_len);
	free(copy);
	return true;
}

/* Consumes complete frames that process `pid` of the instance sent; returns
 * bytes used, or (size_t)-1 on garbage. *memfd: a descriptor that came with
 * the datagram (-1: none), taken by the job end it belongs to. */
static size_t take_frames(const struct channel_handler *handler, struct instance *in, pid_t pid, const char *data,
			  size_t len, int *memfd)
{
	size_t used = 0;
	struct frame_hdr hdr;
	const char *payload;
	long n;
	while ((n = frame_next(data + used, len - used, &hdr, &payload)) > 0) {
		const struct host_observer *test = in->worker->host->test;
		switch (hdr.type) {
		case FRAME_LOG: {
			int64_t now = wall_ms();
			const char *level = level_names[hdr.level <= 3 ? hdr.level : 2];
			log_line(&in->worker->log, now, in->index, pid, in->job_id, level, payload, hdr.len);
			run_tail_add(&in->tail, now, level, payload, hdr.len);
			break;
		}
		case FRAME_READY:
			handler->on_ready(handler->ctx, in);
			break;
		case FRAME_END:
			take_end(in, payload, hdr.len);
			break;
		case FRAME_METRICS:
			/* Not the runtime's writing (a plugin writing on the channel
			 * itself): the frame is dropped, the process's other frames
			 * (its log lines, its end) still count. */
			if (pmetric_set_apply(&in->metrics, payload, hdr.len) < 0 && !in->metrics.refused) {
				in->metrics.refused = true;
				host_log(HOST_WARN, "[%s:%d] pid %d sent plugin metrics ward's runtime does not write "
					 "(a forged or damaged frame): ignored (said once for this process)",
					 in->worker->conf->name, in->index, (int)pid);
			}
			break;
		case FRAME_JOB_END:
			if (!take_job_end(handler, in, payload, hdr.len, memfd))
				return (size_t)-1;
			break;
		case FRAME_PHASE:
		case FRAME_CYCLE:
			if (test)
				test->on_frame(test->ctx, &hdr, payload);
			break;
		}
		used += (size_t)n;
	}
	return n < 0 ? (size_t)-1 : used;
}

/* ---- the runtime channel ---- */

/*
 * The host binds one datagram socket, <state_dir>/ward.chan (mode 0600: no
 * other local user can reach it). For each process it starts, the host makes
 * a socket, binds it to an address the kernel picks (autobind: unique, and no
 * one else can send from it), connects it to its own, and hands it to the
 * process. So the address a datagram comes from names the instance, whichever
 * process sent it (a child plugin code forked shares its worker's socket),
 * and the kernel stamps it with the sending process's pid, which goes in the
 * log line. A worker can shut down, fill or close only its own socket.
 */
#define MAX_RETIRED 8 /* removals of state_dir survived by processes started before them */

struct frame_channel {
	struct watch watch;  /* the host's socket */
	int marker_fd;       /* the host's own sender: marks where "sent so far" ends */
	uint64_t marker_key;
	struct sockaddr_un addr; /* where processes' sockets are connected */
	socklen_t addrlen;
	struct host *host;
	struct channel_handler handler; /* what frames mean above this file */
	struct sender {
		uint64_t key; /* 0: empty; SENDER_GONE: deleted */
		struct instance *in;
	} *senders;          /* open addressing: sender address -> instance */
	size_t cap, used;
	/* Sockets whose file was removed with state_dir (channel_restore):
	 * still read, for the processes already connected to them. */
	struct retired {
		struct watch watch;
		struct frame_channel *channel;
	} retired[MAX_RETIRED];
	int nretired;
};

#define SENDER_GONE UINT64_MAX
#define FRAME_BATCH 16 /* datagrams per recvmmsg */
/* The channel serves many processes: read about as many frames per wakeup
 * as the four 64 KiB reads a pipe gets would hold. */
#define BATCHES_PER_WAKEUP 64

/* Datagrams land here: a batch's worth, each up to a whole frame (a job
 * end's inline result is at most a frame too: more goes in a memfd). */
static char datagrams[FRAME_BATCH][FRAME_MAX];

/* An autobound address ("\0" and five hex digits) as a number; 0 when the
 * address is not one (unnamed, or a path). */
static uint64_t address_key(const struct sockaddr_un *sa, socklen_t len)
{
	size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (n < 2 || n > 7 || sa->sun_path[0] != '\0')
		return 0;
	uint64_t key = 0;
	memcpy(&key, sa->sun_path, n);
	return key | (uint64_t)n << 56; /* the length too, so "\0a" and "\0a\0" differ */
}

static struct sender *sender_slot(struct frame_channel *c, uint64_t key, bool for_insert)
{
	size_t mask = c->cap - 1, i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & mask;
	struct sender *reuse = NULL;
	for (;; i = (i + 1) & mask) {
		struct sender *e = &c->senders[i];
		if (e->key == key)
			return e;
		if (e->key == SENDER_GONE && !reuse)
			reuse = e;
		if (e->key == 0)
			return for_insert ? (reuse ? reuse : e) : NULL;
	}
}

static void senders_grow(struct frame_channel *c)
{
	struct sender *old = c->senders;
	size_t old_cap = c->cap;
	c->cap = c->cap ? c->cap * 2 : 1024;
	c->senders = xcalloc(c->cap, sizeof(*c->senders));
	c->used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key && old[i].key != SENDER_GONE) {
			*sender_slot(c, old[i].key, true) = old[i];
			c->used++;
		}
	free(old);
}

static void sender_add(struct frame_channel *c, uint64_t key, struct instance *in)
{
	if ((c->used + 1) * 2 > c->cap)
		senders_grow(c);
	struct sender *e = sender_slot(c, key, true);
	if (e->key == 0)
		c->used++; /* a reused tombstone was counted already */
	*e = (struct sender){key, in};
}

/* fd: the one descriptor the datagram carried (-1: none), closed here
 * unless a job end took it. */
static void take_datagram(struct frame_channel *c, struct instance *in, struct msghdr *m, size_t len, int fd)
{
	const char *data = m->msg_iov->iov_base;
	pid_t pid = msg_sender_pid(m);
	/* MSG_CTRUNC is no garbage: a memfd the host had no room for is lost, and the job end says so */
	bool ok = !(m->msg_flags & MSG_TRUNC) &&
		  take_frames(&c->handler, in, pid > 0 ? pid : in->pid, data, len, &fd) == len;
	if (fd >= 0)
		close(fd); /* nothing asked for it */
	if (ok)
		return;
	in->frames_ignored = true;
	log_printf(&in->worker->log, in->index, in->pid, "WARD",
		   "garbage on the runtime channel (its descriptor written by plugin code?): ignoring it from now on");
}

enum reading {
	READ_SOME,         /* a wakeup's worth */
	READ_TO_MARKER,    /* everything queued before the host's own empty datagram */
	READ_TO_EMPTY,     /* until nothing is queued */
};

#define MAX_DRAIN_BATCHES 4096 /* a bound even if the marker got lost */

struct batch {
	struct mmsghdr msgs[FRAME_BATCH];
	struct iovec iov[FRAME_BATCH];
	struct sockaddr_un from[FRAME_BATCH];
	union {
		struct cmsghdr align;
		/* the credentials, and room for a few descriptors: a job end's
		 * memfd, and any a forged frame carried, so they can be closed
		 * (what does not fit, the kernel never installs) */
		char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(4 * sizeof(int))];
	} ctl[FRAME_BATCH];
};

/* Receives up to a batch of datagrams: how many, 0 when none is queued. */
static int receive_batch(int fd, struct batch *b)
{
	for (int i = 0; i < FRAME_BATCH; i++) {
		b->iov[i] = (struct iovec){.iov_base = datagrams[i], .iov_len = FRAME_MAX};
		b->msgs[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i], .msg_namelen = sizeof(b->from[i]),
						     .msg_iov = &b->iov[i], .msg_iovlen = 1,
						     .msg_control = b->ctl[i].buf, .msg_controllen = sizeof(b->ctl[i].buf)};
	}
	int n;
	while ((n = recvmmsg(fd, b->msgs, FRAME_BATCH, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL)) < 0 && errno == EINTR)
		;
	return n < 0 ? 0 : n; /* EAGAIN: empty for now */
}

/* Hands a batch to the instances it came from; whether the marker was in it.
 * A datagram from an address that names no instance is dropped. *last is
 * the worker whose log has lines not flushed yet (the caller flushes it). */
static bool take_batch(struct frame_channel *c, struct batch *b, int n, struct worker **last)
{
	bool marker_seen = false;
	for (int i = 0; i < n; i++) {
		struct msghdr *m = &b->msgs[i].msg_hdr;
		uint64_t key = address_key(&b->from[i], m->msg_namelen);
		struct sender *e = key && c->cap ? sender_slot(c, key, false) : NULL;
		marker_seen |= key == c->marker_key;
		/* Descriptors are taken from every datagram, so that none sent
		 * (by anyone, with any frame) stays open in the host. */
		int fds[4], nfds = jobframe_take_fds(m, fds, 4);
		for (int k = 1; k < nfds; k++)
			close(fds[k]);
		int fd = nfds > 0 ? fds[0] : -1;
		if (!e || e->in->frames_ignored) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (*last && *last != e->in->worker)
			log_flush(&(*last)->log);
		*last = e->in->worker;
		take_datagram(c, e->in, m, b->msgs[i].msg_len, fd);
	}
	return marker_seen;
}

/* Reads until the queue is empty (or the marker, or the round limit). The
 * queue is short, and senders refill it as it empties: reading on rather
 * than waiting for the next wakeup keeps a fast logger going. */
static void read_channel(struct frame_channel *c, int fd, enum reading how)
{
	static struct batch b;
	int rounds = how == READ_SOME ? BATCHES_PER_WAKEUP : MAX_DRAIN_BATCHES;
	bool marker_seen = false;
	struct worker *last = NULL;
	for (int round = 0; round < rounds && !marker_seen; round++) {
		int n = receive_batch(fd, &b);
		if (n == 0)
			break;
		marker_seen = take_batch(c, &b, n, &last) && how == READ_TO_MARKER;
	}
	if (last)
		log_flush(&last->log);
}

static void on_frames(struct watch *w, uint32_t events)
{
	(void)events;
	read_channel(container_of(w, struct frame_channel, watch), w->fd, READ_SOME);
}

static void on_retired_frames(struct watch *w, uint32_t events)
{
	(void)events;
	read_channel(container_of(w, struct retired, watch)->channel, w->fd, READ_SOME);
}

/* A datagram socket bound to an address the kernel picks; its key in *key. */
static int autobound_socket(uint64_t *key)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(sa);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    !(*key = address_key(&sa, len))) {
		int saved = errno ? errno : EAFNOSUPPORT;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The host's socket, bound to path with mode 0600 from the first instant. */
static int bind_host_socket(struct frame_channel *c, const char *path)
{
	c->addr = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(c->addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(c->addr.sun_path, path, strlen(path) + 1);
	c->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
	unlink(path); /* the host holds ward.lock: a socket file here is a dead host's */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1;
	mode_t old = umask(0177);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&c->addr, c->addrlen);
	umask(old);
	if (rc < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The host's socket and its marker, when the first process is connected
 * (again after a failure). 0, or -1 (said) with nothing left open. */
static int bind_channel(struct frame_channel *c)
{
	struct host *h = c->host;
	char *path = xasprintf("%s/ward.chan", h->cfg.state_dir);
	c->watch.fd = bind_host_socket(c, path);
	c->marker_fd = c->watch.fd < 0 ? -1 : autobound_socket(&c->marker_key);
	if (c->watch.fd < 0 || c->marker_fd < 0 || connect(c->marker_fd, (struct sockaddr *)&c->addr, c->addrlen) < 0) {
		host_log(HOST_ERR, "unable to open the runtime channel %s: %s; workers cannot start", path, strerror(errno));
		if (c->watch.fd >= 0)
			close(c->watch.fd);
		if (c->marker_fd >= 0)
			close(c->marker_fd);
		c->watch.fd = c->marker_fd = -1;
		c->marker_key = 0;
		free(path);
		return -1;
	}
	free(path);
	if (loop_watch(h->loop, &c->watch, EPOLLIN) < 0)
		host_log(HOST_ERR, "unable to watch the runtime channel: %s; frames are read when processes exit",
			 strerror(errno));
	return 0;
}

void channel_init(struct host *h, struct channel_handler handler)
{
	struct frame_channel *c = xcalloc(1, sizeof(*c));
	*c = (struct frame_channel){.watch = {.fd = -1, .fn = on_frames}, .marker_fd = -1, .host = h, .handler = handler};
	h->channel = c;
}

int channel_connect(struct instance *in)
{
	struct frame_channel *c = in->worker->host->channel;
	if (!c) {
		errno = ENOTCONN; /* channel_init was not called: a host with no channel */
		return -1;
	}
	if (c->watch.fd < 0 && bind_channel(c) < 0)
		return -1;
	uint64_t key;
	int fd = autobound_socket(&key);
	if (fd < 0)
		return -1;
	/* Connected by the host: the process can send here without any right to
	 * the socket file, and can point its socket nowhere else that counts. */
	if (connect(fd, (struct sockaddr *)&c->addr, c->addrlen) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	sender_add(c, key, in);
	in->channel_key = key;
	in->frames_ignored = false; /* a new process: what the last one sent is forgotten */
	pmetric_set_new_process(&in->metrics); /* but for what its counters reached */
	return fd;
}

/* The runtime socket address an address key was made of (address_key). */
static socklen_t key_address(uint64_t key, struct sockaddr_un *sa)
{
	size_t n = (size_t)(key >> 56);
	uint64_t bytes = key & ((UINT64_C(1) << 56) - 1);
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	memcpy(sa->sun_path, &bytes, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

int channel_send_job(struct instance *in, const struct job_claim *job)
{
	struct frame_channel *c = in->worker->host->channel;
	size_t klen = job->key ? strlen(job->key) : 0;
	if (!c || c->watch.fd < 0 || !in->channel_key || !in->slot) {
		errno = ENOTCONN;
		return -1;
	}
	if (job->len > JOB_DATA_MAX || klen > JOB_KEY_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	char head[sizeof(struct frame_job) + JOB_KEY_MAX];
	bool in_memfd = job->len > FRAME_JOB_INLINE_MAX;
	struct frame_job fj = {.id = job->id, .attempt = job->attempt, .key_len = (uint32_t)klen,
			       .payload_len = (uint32_t)job->len, .in_memfd = in_memfd};
	memcpy(head, &fj, sizeof(fj));
	if (klen)
		memcpy(head + sizeof(fj), job->key, klen);
	struct sockaddr_un to;
	socklen_t tolen = key_address(in->channel_key, &to);
	/* Pending first: the runtime may look between two cycles, before the
	 * datagram is read. */
	atomic_store_explicit(&in->slot->job_pending, 1, memory_order_release);
	int rc = jobframe_send(c->watch.fd, &to, tolen, FRAME_JOB, head, sizeof(fj) + klen, job->payload, job->len,
			       in_memfd, MSG_DONTWAIT);
	/* A process connected before state_dir was removed is connected to a
	 * retired socket, and accepts datagrams from that one only. */
	for (int i = 0; rc < 0 && errno == EPERM && i < c->nretired; i++)
		rc = jobframe_send(c->retired[i].watch.fd, &to, tolen, FRAME_JOB, head, sizeof(fj) + klen,
				   job->payload, job->len, in_memfd, MSG_DONTWAIT);
	if (rc < 0) {
		int saved = errno;
		atomic_store_explicit(&in->slot->job_pending, 0, memory_order_relaxed);
		errno = saved;
	}
	return rc;
}

void channel_forget(struct instance *in)
{
	struct frame_channel *c = in->worker->host->channel;
	struct sender *e = c && c->cap && in->channel_key ? sender_slot(c, in->channel_key, false) : NULL;
	if (e && e->in == in)
		e->key = SENDER_GONE; /* a tombstone keeps later probes intact */
	in->channel_key = 0;
}

void channel_read_frames(struct host *h)
{
	struct frame_channel *c = h->channel;
	if (!c || c->watch.fd < 0)
		return;
	/* Processes may keep sending while the host reads: an empty datagram of
	 * the host's own marks where "sent so far" ends, so reading stops there.
	 * The host's queue is short (net.unix.max_dgram_qlen): when it is full,
	 * read a batch to make room, and try again. */
	static struct batch b;
	bool marked = false;
	for (int tries = 0; tries < MAX_DRAIN_BATCHES && !marked; tries++) {
		if (send(c->marker_fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) == 0) {
			read_channel(c, c->watch.fd, READ_TO_MARKER);
			marked = true;
			break;
		}
		int n = errno == EAGAIN ? receive_batch(c->watch.fd, &b) : 0;
		if (n == 0)
			break;
		struct worker *last = NULL;
		take_batch(c, &b, n, &last);
		if (last)
			log_flush(&last->log);
	}
	if (!marked) /* no marker got through */
		read_channel(c, c->watch.fd, READ_TO_EMPTY);
	/* No marker there: a dead process sends nothing more, so what it sent is in. */
	for (int i = 0; i < c->nretired; i++)
		read_channel(c, c->retired[i].watch.fd, READ_TO_EMPTY);
}

bool channel_restore(struct host *h)
{
	struct frame_channel *c = h->channel;
	struct stat st;
	if (!c || c->watch.fd < 0 || (lstat(c->addr.sun_path, &st) == 0 && S_ISSOCK(st.st_mode)))
		return false;
	if (c->nretired == MAX_RETIRED) {
		host_log(HOST_ERR, "the runtime channel %s was removed %d times: new processes cannot be connected; restart the host",
			 c->addr.sun_path, MAX_RETIRED + 1);
		return false;
	}
	struct sockaddr_un old = c->addr;
	socklen_t oldlen = c->addrlen;
	char *path = xstrdup(c->addr.sun_path);
	int fd = bind_host_socket(c, path);
	if (fd < 0 || connect(c->marker_fd, (struct sockaddr *)&c->addr, c->addrlen) < 0) {
		host_log(HOST_ERR, "unable to open the runtime channel %s again: %s; workers cannot start", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		c->addr = old;
		c->addrlen = oldlen;
		free(path);
		return false;
	}
	free(path);
	struct retired *r = &c->retired[c->nretired++];
	*r = (struct retired){.watch = {.fd = c->watch.fd, .fn = on_retired_frames}, .channel = c};
	loop_unwatch(h->loop, &c->watch);
	c->watch.fd = fd;
	if (loop_watch(h->loop, &r->watch, EPOLLIN) < 0 || loop_watch(h->loop, &c->watch, EPOLLIN) < 0)
		host_log(HOST_ERR, "unable to watch the runtime channel: %s; frames are read when processes exit",
			 strerror(errno));
	return true;
}

void channel_close(struct host *h)
{
	struct frame_channel *c = h->channel;
	if (!c)
		return;
	if (c->watch.fd >= 0) {
		loop_close(h->loop, &c->watch);
		close(c->marker_fd);
		unlink(c->addr.sun_path);
	}
	for (int i = 0; i < c->nretired; i++)
		loop_close(h->loop, &c->retired[i].watch);
	free(c->senders);
	free(c);
	h->channel = NULL;
}
