/*
 * output.c - turns a worker's pipes into log lines and events.
 *
 * Both pipes are read into the host's one scratch buffer; a line or frame
 * split across reads is carried in the instance's `pending` (allocated only
 * when that happens). A frame is never larger than PIPE_BUF, a line longer
 * than the scratch buffer is cut into pieces: nothing is dropped.
 */
#define _GNU_SOURCE
#include "output.h"
#include "tester.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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
			log_line(&in->worker->log, hdr.at_ms, in->index, in->pid,
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

static void close_watch(struct instance *in, struct watch *w, struct pending *rest)
{
	loop_close(in->worker->host->loop, w);
	keep_pending(rest, NULL, 0);
}

/* Reads one pipe: `rounds` reads at most, or until empty when draining. */
static void pump(struct instance *in, struct watch *w, struct pending *rest, bool frames, bool drain)
{
	struct host *h = in->worker->host;
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
		size_t used;
		if (frames) {
			used = take_frames(in, buf, len);
			if (used == (size_t)-1) {
				log_printf(&in->worker->log, in->index, in->pid, "WARD",
					   "garbage on the runtime pipe (fd 3 written by plugin code?): ignoring it from now on");
				close_watch(in, w, rest);
				break;
			}
		} else {
			used = take_lines(in, buf, len, eof || len == sizeof(h->scratch));
		}
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
	struct instance *in = container_of(w, struct instance, out);
	pump(in, w, &in->out_rest, false, false);
}

static void on_frames(struct watch *w, uint32_t events)
{
	(void)events;
	struct instance *in = container_of(w, struct instance, frames);
	pump(in, w, &in->frame_rest, true, false);
}

void output_attach(struct instance *in, int out_fd, int frame_fd)
{
	struct loop *loop = in->worker->host->loop;
	in->out = (struct watch){.fd = out_fd, .fn = on_out};
	in->frames = (struct watch){.fd = frame_fd, .fn = on_frames};
	if (loop_watch(loop, &in->out, EPOLLIN) < 0 || loop_watch(loop, &in->frames, EPOLLIN) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to watch the process's pipes: %s; its output will be read when it exits",
			 in->worker->conf->name, in->index, strerror(errno));
}

void output_read_pending(struct instance *in)
{
	pump(in, &in->frames, &in->frame_rest, true, false);
}

void output_drain(struct instance *in)
{
	pump(in, &in->frames, &in->frame_rest, true, true);
	pump(in, &in->out, &in->out_rest, false, true);
	output_detach(in);
}

void output_detach(struct instance *in)
{
	close_watch(in, &in->out, &in->out_rest);
	close_watch(in, &in->frames, &in->frame_rest);
}
