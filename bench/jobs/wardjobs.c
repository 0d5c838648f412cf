/*
 * wardjobs.c - the ward side of the jobs benchmark (bench/jobs/run.sh): a
 * producer that speaks the job protocol of docs/jobs.md ("jobs 1" on
 * <state_dir>/ward.sock) directly, with many enqueues in flight, against a
 * host whose workers run bench/jobs/emptyjob.c. A separate program, not part
 * of ward; links libc only.
 *
 *   wardjobs mkstats FILE                        a zeroed shared counter file
 *   wardjobs throughput SOCK QUEUE N WINDOW STATS  N enqueues, WINDOW in flight; until N calls
 *   wardjobs latency SOCK QUEUE COUNT GAP_MS      enqueue -> .job called, one job at a time
 *   wardjobs recovery SOCK QUEUE STATS REPS       a job whose first attempt crashes
 *
 * Each prints one line of key=value pairs on stdout (times in ms) for
 * run.sh, and what went wrong on stderr (exit 1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jobstats.h"

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wardjobs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* ---- one job session: buffered, replies in request order ---- */

struct session {
	int fd;
	char in[1 << 16];
	size_t start, end; /* unread bytes in[start..end) */
	char *out;
	size_t out_len, out_cap;
};

static void put(struct session *s, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(s->out + s->out_len, s->out_cap - s->out_len, fmt, ap);
		va_end(ap);
		if (n < 0)
			die("cannot format a request");
		if ((size_t)n < s->out_cap - s->out_len) {
			s->out_len += (size_t)n;
			return;
		}
		s->out_cap = s->out_cap * 2 + (size_t)n + 64;
		s->out = realloc(s->out, s->out_cap);
		if (!s->out)
			die("out of memory");
	}
}

/* Writes what it can of the pending requests (all of them when block). */
static void flush_out(struct session *s, int block)
{
	size_t done = 0;
	while (done < s->out_len) {
		ssize_t n = send(s->fd, s->out + done, s->out_len - done, block ? 0 : MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !block)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("send: %s", strerror(errno));
		done += (size_t)n;
	}
	memmove(s->out, s->out + done, s->out_len - done);
	s->out_len -= done;
}

/* Reads more bytes; 0 when the host closed the connection. */
static int fill_in(struct session *s)
{
	if (s->start > 0) {
		memmove(s->in, s->in + s->start, s->end - s->start);
		s->end -= s->start;
		s->start = 0;
	}
	if (s->end == sizeof(s->in))
		die("a reply line longer than %zu bytes", sizeof(s->in));
	for (;;) {
		ssize_t n = recv(s->fd, s->in + s->end, sizeof(s->in) - s->end, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("recv: %s", strerror(errno));
		s->end += (size_t)n;
		return n > 0;
	}
}

/* The next complete reply line (NUL-terminated, without its \n), or NULL. */
static char *take_line(struct session *s)
{
	char *nl = memchr(s->in + s->start, '\n', s->end - s->start);
	if (!nl)
		return NULL;
	*nl = 0;
	char *line = s->in + s->start;
	s->start = (size_t)(nl - s->in) + 1;
	return line;
}

static char *read_line(struct session *s)
{
	char *line;
	while (!(line = take_line(s)))
		if (!fill_in(s))
			die("the host closed the job session");
	return line;
}

/* Copies the LEN raw bytes that follow a `done` line into buf (cut to size-1, NUL-terminated). */
static void read_bytes(struct session *s, size_t len, char *buf, size_t size)
{
	size_t got = 0;
	while (got < len) {
		if (s->start == s->end && !fill_in(s))
			die("the host closed the job session inside a result");
		size_t here = s->end - s->start;
		if (here > len - got)
			here = len - got;
		if (got < size - 1)
			memcpy(buf + got, s->in + s->start, got + here < size - 1 ? here : size - 1 - got);
		got += here;
		s->start += here;
	}
	buf[len < size - 1 ? len : size - 1] = 0;
}

static struct session *session_open(const char *path)
{
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		die("out of memory");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		die("socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to %s: %s", path, strerror(errno));
	put(s, "jobs 1\n");
	flush_out(s, 1);
	char *line = read_line(s);
	if (strcmp(line, "ok jobs 1") != 0)
		die("the host answered '%s' to 'jobs 1'", line);
	return s;
}

/* An enqueue's answer: the job id (> 0). */
static int64_t parse_enqueue_reply(const char *line)
{
	long long id;
	if (sscanf(line, "ok %lld", &id) != 1 || id <= 0)
		die("enqueue answered '%s'", line);
	return id;
}

/* A wait's answer: 1 done (result copied), 0 anything else (line in why). */
static int read_wait_reply(struct session *s, char *result, size_t size, char *why, size_t why_size)
{
	char *line = read_line(s);
	long long id;
	size_t len;
	if (sscanf(line, "done %lld %zu", &id, &len) == 2) {
		read_bytes(s, len, result, size);
		return 1;
	}
	snprintf(why, why_size, "%s", line);
	return 0;
}

static struct jobstats *map_stats(const char *path, int create)
{
	int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0)
		die("cannot open %s: %s", path, strerror(errno));
	if (create && ftruncate(fd, sizeof(struct jobstats)) < 0)
		die("cannot size %s: %s", path, strerror(errno));
	void *p = mmap(NULL, sizeof(struct jobstats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("cannot map %s: %s", path, strerror(errno));
	close(fd);
	return p;
}

/* ---- the scenarios ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double pct_ms(const int64_t *sorted, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);
	return (double)sorted[i] / 1e6;
}

/* N enqueues with up to WINDOW unanswered; then until the plugin counted N calls. */
static int throughput(const char *sock, const char *queue, long n, long window, const char *stats_path)
{
	struct jobstats *st = map_stats(stats_path, 0);
	uint64_t calls0 = __atomic_load_n(&st->calls, __ATOMIC_SEQ_CST);
	struct session *s = session_open(sock);
	int64_t *ids = malloc((size_t)n * sizeof(*ids));
	if (!ids)
		die("out of memory");
	long sent = 0, answered = 0;
	int64_t t0 = mono_ns();
	while (answered < n) {
		while (sent < n && sent - answered < window) {
			put(s, "enqueue %s 1 0 -\nx", queue);
			sent++;
		}
		flush_out(s, 0);
		struct pollfd p = {.fd = s->fd, .events = POLLIN | (s->out_len ? POLLOUT : 0)};
		if (poll(&p, 1, 60000) <= 0)
			die("no answer for 60 s (%ld of %ld enqueues answered)", answered, n);
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (!fill_in(s))
				die("the host closed the job session after %ld answers", answered);
			char *line;
			while ((line = take_line(s)))
				ids[answered++] = parse_enqueue_reply(line);
		}
	}
	int64_t t_enq = mono_ns();
	int64_t deadline = t_enq + 300 * 1000000000LL;
	while (__atomic_load_n(&st->calls, __ATOMIC_SEQ_CST) - calls0 < (uint64_t)n) {
		if (mono_ns() > deadline)
			die("only %llu of %ld jobs ran within 300 s of the last enqueue",
			    (unsigned long long)(st->calls - calls0), n);
		nap_us(200);
	}
	int64_t t_done = __atomic_load_n(&st->last_ns, __ATOMIC_SEQ_CST);
	/* Not timed: every job is done as far as the host is concerned. */
	long verified = 0, next = 0;
	char result[64], why[512];
	while (verified < n) {
		while (next < n && next - verified < window)
			put(s, "wait %lld 10000\n", (long long)ids[next++]);
		flush_out(s, 1);
		if (!read_wait_reply(s, result, sizeof(result), why, sizeof(why)))
			die("job %lld: %s", (long long)ids[verified], why);
		verified++;
	}
	printf("jobs=%ld enqueue_ms=%.1f done_ms=%.1f enqueue_per_s=%.0f done_per_s=%.0f verified=%ld\n", n,
	       (double)(t_enq - t0) / 1e6, (double)(t_done - t0) / 1e6, (double)n / ((double)(t_enq - t0) / 1e9),
	       (double)n / ((double)(t_done - t0) / 1e9), verified);
	return 0;
}

/* One job at a time on an idle host: enqueue sent -> .job called (the plugin's result). */
static int latency(const char *sock, const char *queue, long count, long gap_ms)
{
	struct session *s = session_open(sock);
	int64_t *lat = malloc((size_t)count * sizeof(*lat));
	if (!lat)
		die("out of memory");
	char result[64], why[512];
	for (long i = 0; i < count; i++) {
		nap_us(gap_ms * 1000);
		int64_t t0 = mono_ns();
		put(s, "enqueue %s 1 0 -\nx", queue);
		flush_out(s, 1);
		int64_t id = parse_enqueue_reply(read_line(s));
		put(s, "wait %lld 10000\n", (long long)id);
		flush_out(s, 1);
		if (!read_wait_reply(s, result, sizeof(result), why, sizeof(why)))
			die("job %lld: %s", (long long)id, why);
		lat[i] = strtoll(result, NULL, 10) - t0;
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_i64);
	double sum = 0;
	for (long i = 0; i < count; i++)
		sum += (double)lat[i];
	printf("samples=%ld median_ms=%.3f p99_ms=%.3f mean_ms=%.3f max_ms=%.3f\n", count, pct_ms(lat, count, 0.5),
	       pct_ms(lat, count, 0.99), sum / (double)count / 1e6, (double)lat[count - 1] / 1e6);
	return 0;
}

/* A job whose first attempt crashes holding it: crash -> second attempt's .job call. */
static int recovery(const char *sock, const char *queue, const char *stats_path, long reps)
{
	struct jobstats *st = map_stats(stats_path, 0);
	struct session *s = session_open(sock);
	int64_t *rec = malloc((size_t)reps * sizeof(*rec));
	if (!rec)
		die("out of memory");
	char result[64], why[512];
	for (long i = 0; i < reps; i++) {
		nap_us(300 * 1000); /* let the crashed instance's restart settle */
		__atomic_store_n(&st->crash_ns, 0, __ATOMIC_SEQ_CST);
		put(s, "enqueue %s 5 0 -\ncrash", queue);
		flush_out(s, 1);
		int64_t id = parse_enqueue_reply(read_line(s));
		put(s, "wait %lld 60000\n", (long long)id);
		flush_out(s, 1);
		if (!read_wait_reply(s, result, sizeof(result), why, sizeof(why)))
			die("job %lld: %s", (long long)id, why);
		int64_t crash = __atomic_load_n(&st->crash_ns, __ATOMIC_SEQ_CST);
		if (!crash)
			die("job %lld ran without crashing first", (long long)id);
		rec[i] = strtoll(result, NULL, 10) - crash;
	}
	qsort(rec, (size_t)reps, sizeof(*rec), cmp_i64);
	printf("samples=%ld median_ms=%.3f max_ms=%.3f min_ms=%.3f\n", reps, pct_ms(rec, reps, 0.5),
	       (double)rec[reps - 1] / 1e6, (double)rec[0] / 1e6);
	return 0;
}

static long num(const char *arg, const char *what)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*end || v <= 0)
		die("%s must be a positive number, not '%s'", what, arg);
	return v;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (strcmp(cmd, "mkstats") == 0 && argc == 3) {
		map_stats(argv[2], 1);
		return 0;
	}
	if (strcmp(cmd, "throughput") == 0 && argc == 7)
		return throughput(argv[2], argv[3], num(argv[4], "N"), num(argv[5], "WINDOW"), argv[6]);
	if (strcmp(cmd, "latency") == 0 && argc == 6)
		return latency(argv[2], argv[3], num(argv[4], "COUNT"), num(argv[5], "GAP_MS"));
	if (strcmp(cmd, "recovery") == 0 && argc == 6)
		return recovery(argv[2], argv[3], argv[4], num(argv[5], "REPS"));
	fprintf(stderr, "usage: wardjobs mkstats FILE\n"
			"       wardjobs throughput SOCK QUEUE N WINDOW STATS\n"
			"       wardjobs latency SOCK QUEUE COUNT GAP_MS\n"
			"       wardjobs recovery SOCK QUEUE STATS REPS\n");
	return 2;
}
