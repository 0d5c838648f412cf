/*
 * jobrun.c - one job in the worker process (see jobrun.h): the FRAME_JOB
 * datagram the host sent to the runtime socket (payload inline or in a
 * sealed memfd), the plugin's .job under the watchdog, and FRAME_JOB_END
 * back (result inline when the datagram holds it, else in a sealed memfd).
 * The ward_job_* functions of <ward.h> read and fill the struct ward_job
 * handed to .job. Runs in the worker process, called by runtime.c's loop.
 */
#define _GNU_SOURCE
#include "worker/jobrun.h"
#include "common/jobframe.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ward_job {
	int64_t id;
	int attempt;
	bool has_key;
	char key[FRAME_JOB_KEY_MAX + 1];
	const void *payload;
	size_t len;
	void *result; /* ward_job_result's copy, or NULL */
	size_t result_len;
	char error[512]; /* the last ward_log error line during the job */
};

/* The message of a job end: room enough, and a whole FRAME_JOB_END with it
 * fits a datagram the host reads. */
#define JOB_MESSAGE_MAX 1024

const void *ward_job_payload(const ward_job *job, size_t *len)
{
	if (len)
		*len = job->len;
	return job->payload;
}

int64_t ward_job_id(const ward_job *job)
{
	return job->id;
}

int ward_job_attempt(const ward_job *job)
{
	return job->attempt;
}

const char *ward_job_key(const ward_job *job)
{
	return job->has_key ? job->key : NULL;
}

int ward_job_result(ward_ctx *ctx, ward_job *job, const void *data, size_t len)
{
	(void)ctx;
	if (len > FRAME_JOB_DATA_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (len && !data) {
		errno = EINVAL;
		return -1;
	}
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return -1;
	if (len)
		memcpy(copy, data, len);
	free(job->result);
	job->result = copy;
	job->result_len = len;
	return 0;
}

void jobrun_note_error(ward_ctx *ctx, const char *text, size_t len)
{
	struct ward_job *job = ctx->job;
	if (job)
		snprintf(job->error, sizeof(job->error), "%.*s", (int)len, text);
}

/* ---- the job from the host ---- */

/* One datagram read without waiting: its length, 0 when none is queued, -1
 * on an error of the socket. fd: the descriptor it carried, or -1. */
static ssize_t receive_job(ward_ctx *ctx, char *buf, size_t size, int *fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = {buf, size};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	while ((n = recvmsg(ctx->frame_fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	*fd = -1;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	int fds[4], nfds = jobframe_take_fds(&m, fds, 4);
	for (int i = 1; i < nfds; i++)
		close(fds[i]);
	*fd = nfds > 0 ? fds[0] : -1;
	if (m.msg_flags & MSG_TRUNC)
		return -1;
	return n;
}

/* The host sets job_pending just before it sends: the datagram may be a
 * moment away. Waits for it while job_pending says one comes (a send that
 * failed clears it), at most a second. */
static ssize_t await_job(ward_ctx *ctx, char *buf, size_t size, int *fd)
{
	int64_t deadline = mono_ns() + NS_PER_SEC;
	for (;;) {
		ssize_t n = receive_job(ctx, buf, size, fd);
		if (n != 0 || !jobrun_pending(ctx) || mono_ns() >= deadline)
			return n;
		struct pollfd p = {.fd = ctx->frame_fd, .events = POLLIN};
		if (poll(&p, 1, 10) < 0 && errno != EINTR)
			return -1;
	}
}

/* The datagram into job: 0, or -1 (not a job frame the host writes). The
 * payload points into buf, or into *owned (read from the memfd). */
static int parse_job(const char *buf, size_t n, int fd, struct ward_job *job, void **owned)
{
	struct frame_hdr hdr;
	struct frame_job fj;
	*owned = NULL;
	if (n < sizeof(hdr) + sizeof(fj))
		return -1;
	memcpy(&hdr, buf, sizeof(hdr));
	memcpy(&fj, buf + sizeof(hdr), sizeof(fj));
	size_t rest = n - sizeof(hdr) - sizeof(fj);
	size_t inline_len = fj.in_memfd ? 0 : fj.payload_len;
	if (hdr.type != FRAME_JOB || hdr.len != n - sizeof(hdr) || fj.key_len > FRAME_JOB_KEY_MAX ||
	    fj.payload_len > FRAME_JOB_DATA_MAX || rest != fj.key_len + inline_len || (fj.in_memfd && fd < 0))
		return -1;
	const char *key = buf + sizeof(hdr) + sizeof(fj);
	job->id = fj.id;
	job->attempt = fj.attempt;
	job->has_key = fj.key_len > 0;
	memcpy(job->key, key, fj.key_len);
	job->key[fj.key_len] = '\0';
	job->len = fj.payload_len;
	if (!fj.in_memfd) {
		job->payload = key + fj.key_len;
		return 0;
	}
	if (jobframe_read_memfd(fd, fj.payload_len, FRAME_JOB_DATA_MAX, owned) < 0)
		return -1;
	job->payload = *owned;
	return 0;
}

/* ---- its end, to the host ---- */

static void send_end(ward_ctx *ctx, const struct ward_job *job, int ret, const char *message)
{
	char head[sizeof(struct frame_job_end) + JOB_MESSAGE_MAX];
	size_t mlen = strnlen(message, JOB_MESSAGE_MAX);
	bool done = ret == WARD_OK;
	size_t rlen = done ? job->result_len : 0;
	/* The host reads a datagram of up to FRAME_MAX: more goes in a memfd. */
	bool in_memfd = sizeof(struct frame_hdr) + sizeof(struct frame_job_end) + mlen + rlen > FRAME_MAX;
	struct frame_job_end end = {.id = job->id, .outcome = done ? JOB_END_DONE : JOB_END_FAILED, .ret = ret,
				    .message_len = (uint32_t)mlen, .result_len = (uint32_t)rlen,
				    .in_memfd = in_memfd};
	memcpy(head, &end, sizeof(end));
	memcpy(head + sizeof(end), message, mlen);
	/* Blocking, as every frame: the host's queue may be full for a moment.
	 * A socket plugin code made non-blocking waits here. */
	while (jobframe_send(ctx->frame_fd, NULL, 0, FRAME_JOB_END, head, sizeof(end) + mlen, job->result, rlen,
			     in_memfd, 0) < 0) {
		struct pollfd room = {.fd = ctx->frame_fd, .events = POLLOUT};
		if (errno == EAGAIN && poll(&room, 1, -1) >= 0)
			continue;
		if (errno == EINTR || errno == EAGAIN)
			continue;
		/* A result the kernel will not carry (no memory for a memfd):
		 * the job fails, saying so, rather than never ending. */
		if (rlen == 0)
			return; /* the host is gone */
		char why[256];
		snprintf(why, sizeof(why), "its result of %zu bytes could not be sent: %s", rlen, strerror(errno));
		struct ward_job bare = *job;
		bare.result = NULL;
		bare.result_len = 0;
		send_end(ctx, &bare, -1, why);
		return;
	}
}

bool jobrun_take(ward_ctx *ctx, const struct ward_plugin *plugin, void *state)
{
	static char buf[sizeof(struct frame_hdr) + sizeof(struct frame_job) + FRAME_JOB_KEY_MAX + FRAME_JOB_INLINE_MAX];
	int fd;
	ssize_t n = await_job(ctx, buf, sizeof(buf), &fd);
	atomic_store_explicit(&ctx->slot->job_pending, 0, memory_order_relaxed);
	if (n <= 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct ward_job job = {0};
	void *owned = NULL;
	int bad = parse_job(buf, (size_t)n, fd, &job, &owned);
	if (fd >= 0)
		close(fd);
	if (bad < 0) {
		ward_log(ctx, WARD_LOG_WARN, "a job frame ward's host does not write came on the runtime channel: ignored");
		return false;
	}
	atomic_store_explicit(&ctx->slot->phase, PHASE_JOB, memory_order_relaxed);
	ward_heartbeat(ctx);
	ctx->job = &job;
	int ret = plugin->job(ctx, state, &job);
	ctx->job = NULL;
	ward_heartbeat(ctx);
	char message[JOB_MESSAGE_MAX];
	message[0] = '\0';
	if (ret < 0 && job.error[0])
		snprintf(message, sizeof(message), "%s", job.error);
	else if (ret != WARD_OK)
		snprintf(message, sizeof(message), "returned %d", ret);
	send_end(ctx, &job, ret, message);
	free(job.result);
	free(owned);
	return true;
}
