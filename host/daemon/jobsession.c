/*
 * jobsession.c - job sessions on the control socket (jobsession.h), in the
 * host daemon: reading pipelined requests, asking the dispatcher (jobs.c),
 * and writing the replies in request order without ever blocking the loop.
 * Bounded: at most MAX_SESSIONS, MAX_PENDING unanswered requests each (then
 * it stops reading until replies go out), a request that stops arriving or
 * a reply nobody reads for IO_TIMEOUT_NS ends the session.
 */
#define _GNU_SOURCE
#include "daemon/jobsession.h"
#include "daemon/jobs.h"
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SESSIONS 256
#define MAX_PENDING 4096
#define MAX_LINE 4096
#define OUT_HIGH (4 * 1024 * 1024) /* unsent reply bytes past which no more requests are read */
#define IO_TIMEOUT_NS (5 * NS_PER_SEC)

struct session;

struct request {
	struct session *s;
	struct request *next;
	bool ready;
	char *reply; /* owned, once ready */
	size_t reply_len;
	/* enqueue */
	int64_t id;
	bool existing;
	char *warning; /* owned; NULL: the job will run (most requests: no room spent) */
	struct jobs_durable durable;
	bool durable_linked;
	/* wait */
	struct jobs_waiter waiter;
	bool waiting;
	struct timer wait_timer;
};

struct session {
	struct host *h;
	struct watch watch;
	struct session *next, **prev;
	char *in;
	size_t in_len, in_cap;
	struct request *head, **tail;
	size_t npending;
	char *out;
	size_t out_len, out_sent, out_cap;
	struct timer io_timer;   /* a request half-received, or a reply half-sent, without progress */
	bool ending;             /* after an error or the client's EOF: no more requests; close once replied */
	bool paused;             /* not reading: too much pending */
	bool writing;            /* waiting for EPOLLOUT */
	bool busy;               /* reading requests: replies are flushed after, not from inside */
};

static struct session *sessions;
static int nsessions;

/* ---- replies ---- */

static void out_append(struct session *s, const void *data, size_t len)
{
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_cap ? s->out_cap : 4096;
		while (cap < s->out_len + len)
			cap *= 2;
		s->out = xrealloc(s->out, cap);
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
}

/* One line of text: a newline inside would end the reply early. */
static void one_line(char *text)
{
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void set_reply(struct request *r, char *text, size_t len)
{
	free(r->reply);
	r->reply = text;
	r->reply_len = len;
	r->ready = true;
}

static void set_reply_line(struct request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reply_line(struct request *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort(); /* out of memory, as xmalloc does */
	one_line(text);
	text = xrealloc(text, (size_t)n + 2);
	text[n] = '\n';
	text[n + 1] = '\0';
	set_reply(r, text, (size_t)n + 1);
}

static void end_session(struct session *s);
static void flush(struct session *s);
static void read_requests(struct session *s);

static void free_request(struct request *r)
{
	if (r->durable_linked)
		jobs_durable_cancel(&r->durable);
	if (r->waiting)
		jobs_wait_cancel(&r->waiter);
	timer_cancel(r->s->h->loop, &r->wait_timer);
	free(r->reply);
	free(r->warning);
	free(r);
}

/* Replies that are ready, in order, into the output. */
static void collect(struct session *s)
{
	while (s->head && s->head->ready) {
		struct request *r = s->head;
		out_append(s, r->reply, r->reply_len);
		s->head = r->next;
		if (!s->head)
			s->tail = &s->head;
		s->npending--;
		free_request(r);
	}
}

/* A reply became ready: out it goes, if it is next. */
static void replied(struct session *s)
{
	if (s->busy)
		return; /* read_requests collects once it is done: the request may still be in use */
	collect(s);
	flush(s);
}

static void watch_events(struct session *s)
{
	uint32_t ev = (s->paused || s->ending ? 0 : EPOLLIN) | (s->writing ? EPOLLOUT : 0);
	if (loop_modify(s->h->loop, &s->watch, ev) < 0)
		end_session(s);
}

static void flush(struct session *s)
{
	while (s->out_sent < s->out_len) {
		ssize_t n = send(s->watch.fd, s->out + s->out_sent, s->out_len - s->out_sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!s->writing) {
				s->writing = true;
				timer_arm(s->h->loop, &s->io_timer, mono_ns() + IO_TIMEOUT_NS);
				watch_events(s);
			}
			return;
		}
		if (n < 0) { /* the client went away: what it queued is stored or not, as said */
			end_session(s);
			return;
		}
		s->out_sent += (size_t)n;
		if (s->writing)
			timer_arm(s->h->loop, &s->io_timer, mono_ns() + IO_TIMEOUT_NS);
	}
	s->out_len = s->out_sent = 0;
	if (s->writing) {
		s->writing = false;
		timer_cancel(s->h->loop, &s->io_timer);
		watch_events(s);
	}
	if (s->ending && !s->head) {
		end_session(s);
		return;
	}
	if (s->paused && s->npending < MAX_PENDING / 2) {
		s->paused = false;
		watch_events(s);
		read_requests(s); /* what was read but not parsed yet */
	}
}

/* ---- requests ---- */

static struct request *new_request(struct session *s)
{
	struct request *r = xcalloc(1, sizeof(*r));
	r->s = s;
	*s->tail = r;
	s->tail = &r->next;
	s->npending++;
	return r;
}

/* An error that ends the session once the replies before it are out. */
static void fail_session(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_session(struct session *s, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_reply_line(new_request(s), "error %s", msg);
	s->ending = true;
	s->in_len = 0;
	watch_events(s);
}

static void enqueue_durable(struct jobs_durable *d, int err)
{
	struct request *r = container_of(d, struct request, durable);
	r->durable_linked = false;
	if (err == ENOENT) /* the store's word for a batch written into a file deleted meanwhile */
		set_reply_line(r, "error job %" PRId64 " is lost: jobs.db was deleted or replaced before it was on disk;"
			       " send it again", r->id);
	else if (err) /* its batch lost (disk full, I/O error), or its sync failed: not known to be on disk */
		set_reply_line(r, "error job %" PRId64 " is not on disk: jobs.db could not be written or synced: %s;"
			       " send it again", r->id, strerror(err));
	else if (r->existing)
		set_reply_line(r, "ok %" PRId64 " existing", r->id);
	else if (r->warning)
		set_reply_line(r, "ok %" PRId64 " new %s", r->id, r->warning);
	else
		set_reply_line(r, "ok %" PRId64 " new", r->id);
	replied(r->s);
}

/* QUEUE and KEY: 1..255 printable ASCII bytes without spaces. */
static bool valid_name(const char *w)
{
	size_t n = strlen(w);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (w[i] <= ' ' || w[i] > '~')
			return false;
	return true;
}

/* A whole decimal number, at most max. */
static bool parse_u64(const char *w, uint64_t max, uint64_t *out)
{
	if (!*w || strlen(w) > 20)
		return false;
	uint64_t v = 0;
	for (const char *p = w; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static void run_enqueue(struct session *s, char **w, const char *payload, size_t len, uint64_t delay)
{
	struct request *r = new_request(s);
	char why[1200], warning[600];
	const char *key = strcmp(w[4], "-") == 0 ? NULL : w[4];
	r->durable.fn = enqueue_durable;
	r->id = jobs_enqueue(s->h, w[1], payload, len, key, delay, &r->existing, warning, sizeof(warning), why,
			     sizeof(why), &r->durable);
	if (r->id < 0) {
		set_reply_line(r, "error %s", why);
		return;
	}
	r->durable_linked = true;
	if (warning[0])
		r->warning = xstrdup(warning);
}

static void wait_answered(struct jobs_waiter *w, const struct jobs_answer *a)
{
	struct request *r = container_of(w, struct request, waiter);
	r->waiting = false;
	timer_cancel(r->s->h->loop, &r->wait_timer);
	if (a->kind == JOBS_DONE) {
		char head[64];
		int n = snprintf(head, sizeof(head), "done %" PRId64 " %zu\n", a->id, a->len);
		char *text = xmalloc((size_t)n + a->len + 1);
		memcpy(text, head, (size_t)n);
		if (a->len)
			memcpy(text + n, a->result, a->len);
		set_reply(r, text, (size_t)n + a->len);
	} else if (a->kind == JOBS_FAILED) {
		set_reply_line(r, "failed %" PRId64 " %s %s", a->id, a->state, a->message && *a->message ? a->message : "-");
	} else {
		set_reply_line(r, "error job %" PRId64 ": %s", a->id, a->message);
	}
	replied(r->s);
}

static void wait_timed_out(struct timer *t)
{
	struct request *r = container_of(t, struct request, wait_timer);
	jobs_wait_cancel(&r->waiter);
	r->waiting = false;
	set_reply_line(r, "unfinished %" PRId64, r->waiter.id);
	replied(r->s);
}

static void run_wait(struct session *s, int64_t id, uint64_t timeout_ms)
{
	struct request *r = new_request(s);
	r->waiter.id = id;
	r->waiter.fn = wait_answered;
	r->wait_timer.fn = wait_timed_out;
	r->waiting = true;
	jobs_wait(s->h, &r->waiter);
	if (!r->waiting)
		return; /* answered at once */
	if (timeout_ms > (uint64_t)INT64_MAX / NS_PER_MS / 2)
		timeout_ms = (uint64_t)INT64_MAX / NS_PER_MS / 2;
	timer_arm(s->h->loop, &r->wait_timer, mono_ns() + (int64_t)timeout_ms * NS_PER_MS);
}

static int split(char *line, char **w, int max)
{
	int n = 0;
	for (char *p = line; *p;) {
		if (n == max)
			return -1;
		w[n++] = p;
		char *sp = strchr(p, ' ');
		if (!sp)
			break;
		*sp = '\0';
		p = sp + 1;
		if (!*p || *p == ' ')
			return -1; /* fields are separated by exactly one space */
	}
	return n;
}

/* Handles the request at the start of s->in. The bytes it used, 0 when it
 * is not complete yet, -1 when the session ends (said). */
static long take_request(struct session *s)
{
	char *nl = memchr(s->in, '\n', s->in_len);
	if (!nl) {
		if (s->in_len > MAX_LINE) {
			fail_session(s, "malformed request: no newline within %d bytes", MAX_LINE);
			return -1;
		}
		return 0;
	}
	size_t line_len = (size_t)(nl - s->in);
	char line[MAX_LINE + 1];
	if (line_len > MAX_LINE || memchr(s->in, '\0', line_len)) {
		fail_session(s, "malformed request: a header line is at most %d bytes of text", MAX_LINE);
		return -1;
	}
	memcpy(line, s->in, line_len);
	line[line_len] = '\0';
	char *w[8];
	int n = split(line, w, 8);
	uint64_t len, delay, id, timeout;
	if (n == 5 && strcmp(w[0], "enqueue") == 0) {
		if (!valid_name(w[1]) || !valid_name(w[4])) {
			fail_session(s, "malformed request: QUEUE and KEY are 1 to 255 printable ASCII characters without spaces");
			return -1;
		}
		if (!parse_u64(w[2], UINT64_MAX, &len) || !parse_u64(w[3], (uint64_t)INT32_MAX * 1000, &delay)) {
			fail_session(s, "malformed request: say `enqueue QUEUE LEN DELAY_MS KEY`, LEN and DELAY_MS whole numbers");
			return -1;
		}
		if (len > JOB_DATA_MAX) {
			fail_session(s, "payload of %" PRIu64 " bytes is over the 1 MiB limit", len);
			return -1;
		}
		if (s->in_len - line_len - 1 < len)
			return 0; /* its payload is still coming */
		run_enqueue(s, w, nl + 1, (size_t)len, delay);
		return (long)(line_len + 1 + len);
	}
	if (n == 3 && strcmp(w[0], "wait") == 0 && parse_u64(w[1], INT64_MAX, &id) && id > 0 &&
	    parse_u64(w[2], UINT64_MAX, &timeout)) {
		run_wait(s, (int64_t)id, timeout);
		return (long)(line_len + 1);
	}
	fail_session(s, "malformed request '%.64s': expected `enqueue QUEUE LEN DELAY_MS KEY` or `wait ID TIMEOUT_MS`",
		     line);
	return -1;
}

/* Every complete request in s->in, while the session takes more. */
static void read_requests(struct session *s)
{
	size_t used = 0;
	s->busy = true;
	while (!s->ending && !s->paused && used < s->in_len) {
		/* take_request looks at s->in from its start */
		if (used) {
			memmove(s->in, s->in + used, s->in_len - used);
			s->in_len -= used;
			used = 0;
		}
		long n = take_request(s);
		if (n <= 0)
			break;
		used = (size_t)n;
		if (s->npending >= MAX_PENDING || s->out_len - s->out_sent > OUT_HIGH) {
			s->paused = true;
			watch_events(s);
		}
	}
	if (used) {
		memmove(s->in, s->in + used, s->in_len - used);
		s->in_len -= used;
	}
	/* A request half-received must go on arriving. */
	if (s->in_len && !s->ending && !s->paused)
		timer_arm(s->h->loop, &s->io_timer, mono_ns() + IO_TIMEOUT_NS);
	else if (!s->writing)
		timer_cancel(s->h->loop, &s->io_timer);
	s->busy = false;
	collect(s);
	flush(s);
}

static void on_readable(struct session *s)
{
	/* room for a header and the largest payload, grown as needed */
	if (s->in_cap - s->in_len < 65536) {
		size_t cap = s->in_cap ? s->in_cap * 2 : 65536 * 2;
		if (cap > JOB_DATA_MAX + 2 * MAX_LINE + 65536)
			cap = JOB_DATA_MAX + 2 * MAX_LINE + 65536;
		if (cap > s->in_cap) {
			s->in = xrealloc(s->in, cap);
			s->in_cap = cap;
		}
	}
	if (s->in_cap == s->in_len) { /* cannot happen: a request fits; never spin */
		fail_session(s, "malformed request");
		replied(s);
		return;
	}
	ssize_t n = read(s->watch.fd, s->in + s->in_len, s->in_cap - s->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		end_session(s);
		return;
	}
	if (n == 0) { /* the client is done sending: its replies still go out */
		s->ending = true;
		s->in_len = 0;
		timer_cancel(s->h->loop, &s->io_timer);
		watch_events(s);
		replied(s);
		return;
	}
	s->in_len += (size_t)n;
	read_requests(s);
}

static void on_session(struct watch *w, uint32_t events)
{
	struct session *s = container_of(w, struct session, watch);
	if (events & EPOLLOUT) {
		flush(s);
		return; /* a session ended in flush is freed: nothing more here */
	}
	if ((events & (EPOLLHUP | EPOLLERR)) && (s->paused || s->ending)) {
		end_session(s); /* gone for good: nobody reads the replies */
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(s);
}

static void io_timed_out(struct timer *t)
{
	struct session *s = container_of(t, struct session, io_timer);
	end_session(s); /* a request that stopped arriving, or replies nobody reads */
}

static void end_session(struct session *s)
{
	while (s->head) {
		struct request *r = s->head;
		s->head = r->next;
		free_request(r);
	}
	timer_cancel(s->h->loop, &s->io_timer);
	loop_close(s->h->loop, &s->watch);
	*s->prev = s->next;
	if (s->next)
		s->next->prev = s->prev;
	nsessions--;
	free(s->in);
	free(s->out);
	free(s);
}

void jobsession_refuse(int fd, const char *why)
{
	char line[700];
	int n = snprintf(line, sizeof(line), "error %s\n", why);
	if (n > 0 && send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN && errno != EPIPE && errno != ECONNRESET)
		host_log(HOST_DEBUG, "job session refused, its client not told: %s", strerror(errno));
	close(fd);
}

void jobsession_start(struct host *h, int fd, const char *rest, size_t len)
{
	if (nsessions >= MAX_SESSIONS) {
		jobsession_refuse(fd, "too many job sessions at once; try again");
		return;
	}
	struct session *s = xcalloc(1, sizeof(*s));
	s->h = h;
	s->watch = (struct watch){.fd = fd, .fn = on_session};
	s->tail = &s->head;
	s->io_timer.fn = io_timed_out;
	s->next = sessions;
	if (sessions)
		sessions->prev = &s->next;
	s->prev = &sessions;
	sessions = s;
	nsessions++;
	if (loop_watch(h->loop, &s->watch, EPOLLIN) < 0) {
		end_session(s);
		return;
	}
	out_append(s, "ok " JOBS_PROTOCOL_LINE "\n", strlen("ok " JOBS_PROTOCOL_LINE "\n"));
	if (len) {
		s->in = xmalloc(len > 65536 ? len : 65536);
		s->in_cap = len > 65536 ? len : 65536;
		memcpy(s->in, rest, len);
		s->in_len = len;
	}
	read_requests(s);
}

void jobsession_close_all(struct host *h)
{
	(void)h;
	while (sessions)
		end_session(sessions);
}
