/*
 * logview.c - prints the tail of <log_dir>/<NAME>.log and, with -f, keeps
 * printing what is appended, following the host's rotations without losing
 * or repeating a line. Several logs (no NAME: every worker's) are merged in
 * time order, by the timestamp that starts each line. Runs in the CLI
 * process (`ward logs`).
 */
#define _GNU_SOURCE
#include "cli/logview.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Offset where the last `lines` lines of fd begin. */
static off_t tail_offset(int fd, off_t size, long lines)
{
	char buf[8192];
	off_t pos = size;
	long seen = 0;
	while (pos > 0) {
		size_t chunk = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
		pos -= (off_t)chunk;
		if (pread(fd, buf, chunk, pos) != (ssize_t)chunk)
			return 0;
		for (size_t i = chunk; i-- > 0;) {
			if (buf[i] != '\n' || (pos + (off_t)i == size - 1))
				continue;
			if (++seen == lines)
				return pos + (off_t)i + 1;
		}
	}
	return 0;
}

/* A log holds whatever bytes a worker wrote, and a terminal obeys ESC and
 * OSC sequences (titles, cursor moves, some even answered as if typed). So
 * control characters other than tab and newline - C0, DEL, and C1
 * (U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8) - are printed as \xHH, to a
 * pipe or a file too: `ward logs` prints the same text wherever it goes. */
#define CHUNK 65536

static bool held_c2; /* a 0xC2 not printed yet: the next byte may make it a C1 control */

static size_t put_hex(char *out, unsigned char c)
{
	static const char digits[] = "0123456789abcdef";
	out[0] = '\\';
	out[1] = 'x';
	out[2] = digits[c >> 4];
	out[3] = digits[c & 15];
	return 4;
}

static size_t escape(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (held_c2) {
			held_c2 = false;
			if (c >= 0x80 && c <= 0x9f) {
				o += put_hex(out + o, 0xc2);
				o += put_hex(out + o, c);
				continue;
			}
			out[o++] = (char)0xc2;
		}
		if (c == 0xc2)
			held_c2 = true;
		else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			o += put_hex(out + o, c);
		else
			out[o++] = (char)c;
	}
	return o;
}

/* A 0xC2 still held at the end is a character cut short: print it as it is. */
static int release_held(void)
{
	if (!held_c2)
		return 0;
	held_c2 = false;
	return write_all(1, "\xc2", 1);
}

/* One log being read: where, and what of it was read. Its bytes go to
 * stdout (one log) or to pending (several, merged line by line). */
struct tailer {
	char *path;
	int fd;
	ino_t ino;
	off_t pos;
	enum merge merged;
	char *pending; /* read, not printed yet (merged only) */
	size_t npending, cap;
};

static int emit(struct tailer *t, const unsigned char *buf, size_t n)
{
	static char out[4 * CHUNK + 8]; /* four bytes out for each in, a held 0xC2 */
	if (!t->merged)
		return write_all(1, out, escape(buf, n, out));
	if (t->npending + n > t->cap) {
		t->cap = (t->npending + n) * 2;
		t->pending = xrealloc(t->pending, t->cap);
	}
	memcpy(t->pending + t->npending, buf, n);
	t->npending += n;
	return 0;
}

static int copy_from(struct tailer *t, int fd, off_t *pos)
{
	static unsigned char buf[CHUNK];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), *pos)) > 0) {
		if (emit(t, buf, (size_t)n) < 0)
			return -1;
		*pos += n;
	}
	return n < 0 ? -1 : 0;
}
/* After a rotation: the files newer than the one we were reading, oldest
 * first. The old file is found among NAME.log.1.. by its inode; every file
 * rotated after it (there may be several since the last look) is printed
 * whole before the current file is opened, so no line is lost or repeated. */
static int catch_up_rotations(struct tailer *t, const char *path, ino_t old_ino)
{
	int k = 1;
	for (; k <= 1000; k++) {
		char *name = xasprintf("%s.%d", path, k);
		struct stat st;
		int found = stat(name, &st);
		free(name);
		if (found < 0)
			return 0; /* deleted already: nothing newer can be told apart */
		if (st.st_ino == old_ino)
			break;
	}
	for (int i = k - 1; i >= 1; i--) {
		char *name = xasprintf("%s.%d", path, i);
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		free(name);
		if (fd < 0)
			continue;
		off_t pos = 0;
		int rc = copy_from(t, fd, &pos);
		close(fd);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Prints (or keeps) what was appended since the last step, through any
 * rotations meanwhile. 0, or -1 on a read or write error. */
static int follow_step(struct tailer *t)
{
	if (copy_from(t, t->fd, &t->pos) < 0)
		return -1;
	struct stat now;
	if (stat(t->path, &now) < 0 || now.st_ino == t->ino)
		return 0;
	int nfd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return 0; /* between the rename and the new file: next step */
	if (copy_from(t, t->fd, &t->pos) < 0 || catch_up_rotations(t, t->path, t->ino) < 0) {
		close(nfd);
		return -1;
	}
	close(t->fd);
	t->fd = nfd;
	t->pos = 0;
	if (fstat(t->fd, &now) < 0)
		return -1;
	t->ino = now.st_ino;
	return follow_step(t);
}

static void nap(void)
{
	struct timespec pause = {0, 100 * 1000000L};
	nanosleep(&pause, NULL);
}

/* Opens the log and reads its last `lines` lines. 0, or -1 (said). */
static int tailer_open(struct tailer *t, const char *log_dir, const char *name, long lines, enum merge merged)
{
	*t = (struct tailer){.path = xasprintf("%s/%s.log", log_dir, name), .merged = merged};
	t->fd = open(t->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (t->fd < 0 && errno == ENOENT && merged == MERGED_ALL)
		return -1; /* a worker that never ran: nothing to merge */
	if (t->fd < 0 || fstat(t->fd, &st) < 0) {
		fprintf(stderr, "ward: unable to open %s: %s (is '%s' a worker that has run?)\n", t->path, strerror(errno),
			name);
		return -1;
	}
	t->ino = st.st_ino;
	t->pos = lines == 0 ? st.st_size : tail_offset(t->fd, st.st_size, lines);
	return copy_from(t, t->fd, &t->pos);
}

static void tailer_close(struct tailer *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free(t->path);
	free(t->pending);
}

/* ---- several logs, merged ---- */

/* A whole line of one log; its timestamp (the first word, ISO 8601 in UTC,
 * so byte order is time order; in a log_format = json line, the value of
 * its first field, "ts") or the one of the line before it. */
struct line {
	const char *text, *stamp;
	size_t len, stamp_len;
	size_t log, seq; /* ties keep each log's order */
};

static bool starts_with_stamp(const char *s, size_t len)
{
	return len > 20 && s[4] == '-' && s[10] == 'T' && s[0] >= '0' && s[0] <= '9';
}

static int by_time(const void *a, const void *b)
{
	const struct line *x = a, *y = b;
	size_t n = x->stamp_len < y->stamp_len ? x->stamp_len : y->stamp_len;
	int c = memcmp(x->stamp, y->stamp, n);
	if (c == 0 && x->stamp_len != y->stamp_len)
		c = x->stamp_len < y->stamp_len ? -1 : 1;
	if (c == 0)
		c = x->log != y->log ? (x->log < y->log ? -1 : 1) : 0;
	if (c == 0)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return c;
}

struct batch {
	struct line *v;
	size_t n, cap;
};

/* The whole lines of t's pending bytes into b (the rest waits for its end). */
static size_t take_lines(struct tailer *t, size_t log, struct batch *b)
{
	size_t start = 0, seq = 0;
	const char *stamp = "";
	size_t stamp_len = 0;
	for (size_t i = 0; i < t->npending; i++) {
		if (t->pending[i] != '\n')
			continue;
		const char *s = t->pending + start;
		size_t len = i + 1 - start;
		static const char json_ts[] = "{\"ts\":\"";
		size_t skip = len > sizeof(json_ts) && memcmp(s, json_ts, sizeof(json_ts) - 1) == 0 ? sizeof(json_ts) - 1 : 0;
		if (starts_with_stamp(s + skip, len - skip)) {
			stamp = s + skip;
			const char *end = memchr(stamp, skip ? '"' : ' ', len - skip);
			stamp_len = end ? (size_t)(end - stamp) : len - skip;
		}
		if (b->n == b->cap) {
			b->cap = b->cap ? 2 * b->cap : 256;
			b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
		}
		b->v[b->n++] = (struct line){s, stamp, len, stamp_len, log, seq++};
		start = i + 1;
	}
	return start;
}

/* Prints the last `keep` lines of every log's whole pending lines (keep < 0:
 * all), in time order; what is not a whole line yet stays pending. */
static int print_merged(struct tailer *t, size_t n, long keep)
{
	struct batch b = {0};
	size_t *used = xcalloc(n ? n : 1, sizeof(*used));
	for (size_t i = 0; i < n; i++)
		used[i] = take_lines(&t[i], i, &b);
	if (b.n) /* b.v is NULL until a line comes, and qsort's pointer must not be */
		qsort(b.v, b.n, sizeof(*b.v), by_time);
	static char out[4 * CHUNK + 8];
	int rc = 0;
	size_t from = keep >= 0 && (size_t)keep < b.n ? b.n - (size_t)keep : 0;
	for (size_t i = from; i < b.n && rc == 0; i++)
		for (size_t off = 0; off < b.v[i].len && rc == 0; off += CHUNK) {
			size_t len = b.v[i].len - off < CHUNK ? b.v[i].len - off : CHUNK;
			rc = write_all(1, out, escape((const unsigned char *)b.v[i].text + off, len, out));
		}
	for (size_t i = 0; i < n; i++) {
		if (!used[i])
			continue; /* nothing taken (and pending perhaps still NULL) */
		memmove(t[i].pending, t[i].pending + used[i], t[i].npending - used[i]);
		t[i].npending -= used[i];
	}
	free(used);
	free(b.v);
	return rc;
}

int logview_show_merged(const char *log_dir, const char *const *names, size_t n, long lines, bool follow_it,
			enum merge which)
{
	struct tailer *t = xcalloc(n ? n : 1, sizeof(*t));
	size_t opened = 0;
	bool missing = false;
	for (size_t i = 0; i < n; i++) {
		if (tailer_open(&t[opened], log_dir, names[i], lines, which) == 0) {
			opened++;
			continue;
		}
		tailer_close(&t[opened]); /* said; the others are still shown */
		missing = true;
	}
	int rc = print_merged(t, opened, lines);
	while (rc == 0 && follow_it) { /* ended by a signal */
		nap();
		for (size_t i = 0; i < opened && rc == 0; i++)
			rc = follow_step(&t[i]);
		if (rc == 0)
			rc = print_merged(t, opened, -1);
	}
	for (size_t i = 0; i < opened; i++)
		tailer_close(&t[i]);
	free(t);
	return rc == 0 && !(missing && which == MERGED_NAMED) ? 0 : 1;
}

int logview_show(const char *log_dir, const char *name, long lines, bool follow_it)
{
	struct tailer t;
	int rc = tailer_open(&t, log_dir, name, lines, ONE_LOG);
	while (rc == 0 && follow_it) { /* ended by a signal */
		rc = follow_step(&t);
		nap();
	}
	if (rc == 0)
		rc = release_held();
	tailer_close(&t);
	return rc == 0 ? 0 : 1;
}
