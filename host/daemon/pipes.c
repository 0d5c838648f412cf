/*
 * pipes.c - turns what worker processes write on stdout/stderr into log
 * lines, each kept in the run's last lines too (runtail.c). A process's
 * stdout/stderr is a pipe of its own, read into the host's one scratch
 * buffer; a line split across reads is carried in the instance's `pending`
 * (allocated only when that happens), a line longer than the buffer is cut
 * into pieces: nothing is dropped.
 * Host daemon only, called from its loop.
 */
#define _GNU_SOURCE
#include "daemon/pipes.h"
#include "daemon/host.h"
#include "daemon/runtail.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define READS_PER_WAKEUP 4

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

/* Consumes complete lines of data; returns how many bytes were used. The
 * rest is a line not complete yet, taken as it is only at the end of the
 * pipe (eof) or when it fills the whole buffer (full: a line longer than
 * the buffer, cut in pieces). */
static size_t take_lines(struct instance *in, const char *data, size_t len, bool eof, bool full)
{
	struct log_file *lf = &in->worker->log;
	int64_t now = wall_ms();
	size_t used = 0;
	while (used < len) {
		const char *nl = memchr(data + used, '\n', len - used);
		if (!nl)
			break;
		log_line(lf, now, in->index, in->pid, in->job_id, "OUT", data + used, (size_t)(nl - data - used));
		run_tail_add(&in->tail, now, "OUT", data + used, (size_t)(nl - data - used));
		used = (size_t)(nl - data) + 1;
	}
	if (used < len && (eof || (full && used == 0))) {
		log_line(lf, now, in->index, in->pid, in->job_id, "OUT", data + used, len - used);
		run_tail_add(&in->tail, now, "OUT", data + used, len - used);
		used = len;
	}
	return used;
}

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
		size_t used = take_lines(in, buf, len, eof, len == sizeof(h->scratch));
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

void pipe_attach(struct instance *in, int out_fd)
{
	in->out = (struct watch){.fd = out_fd, .fn = on_out};
	if (loop_watch(in->worker->host->loop, &in->out, EPOLLIN) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to watch the process's output: %s; it will be read when it exits",
			 in->worker->conf->name, in->index, strerror(errno));
}

void pipe_drain(struct instance *in)
{
	pump(in, true);
	pipe_detach(in);
}

void pipe_detach(struct instance *in)
{
	close_watch(in, &in->out, &in->out_rest);
}
