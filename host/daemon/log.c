/*
 * log.c - worker log files (written only by the host) and the host's own
 * stderr messages. Lines are formatted into a per-file buffer and written
 * with one write() per batch, which keeps a fast-logging worker cheap.
 * Only the LOG_OPEN_MAX files written last stay open (a least-recently-used
 * list): the host's descriptors go to worker processes, one each, so ten
 * thousand workers fit under a limit of ten thousand and a few.
 * Runs in the host daemon; host_log() also in the CLI (`ward check`, `ward test`).
 */
#define _GNU_SOURCE
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_FLUSH (64 * 1024)
#define LOG_OPEN_MAX 64

static bool quiet;
static struct strv *collected_errors;

/* The open files, the one written last first. */
static struct {
	struct log_file *first, *last;
	size_t n;
} open_files;

static void lru_unlink(struct log_file *lf)
{
	if (lf->newer)
		lf->newer->older = lf->older;
	else
		open_files.first = lf->older;
	if (lf->older)
		lf->older->newer = lf->newer;
	else
		open_files.last = lf->newer;
	lf->newer = lf->older = NULL;
	open_files.n--;
}

static void lru_push_first(struct log_file *lf)
{
	lf->older = open_files.first;
	lf->newer = NULL;
	if (open_files.first)
		open_files.first->newer = lf;
	else
		open_files.last = lf;
	open_files.first = lf;
	open_files.n++;
}

/* Every close of a log file's descriptor goes through here. */
static void close_fd(struct log_file *lf)
{
	if (lf->fd < 0)
		return;
	close(lf->fd);
	lf->fd = -1;
	lru_unlink(lf);
}

/* Written now: first in the list, so the one closed to make room is the
 * file written longest ago. O(1): this is on every flush. */
static void touch(struct log_file *lf)
{
	if (open_files.first == lf)
		return;
	lru_unlink(lf);
	lru_push_first(lf);
}

/* A closed file loses nothing: its pending lines stay in its buffer and the
 * next write opens the path again (and measures its size again). */
static void make_room(void)
{
	while (open_files.n >= LOG_OPEN_MAX && open_files.last)
		close_fd(open_files.last);
}


void host_log_quiet(bool q)
{
	quiet = q;
}

/* systemd connects stderr to the journal and names that stream in
 * JOURNAL_STREAM ("DEVICE:INODE"). A stderr redirected since (by a shell, a
 * wrapper script) keeps the variable but is another file: plain lines then. */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char extra;
	struct stat st;
	if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &extra) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void host_log_collect_errors(struct strv *errors)
{
	collected_errors = errors;
}

void host_log(enum host_level level, const char *fmt, ...)
{
	bool collect = collected_errors && level <= HOST_ERR;
	if (quiet && !collect)
		return;
	static int journal = -1;
	if (journal < 0)
		journal = stderr_is_journal();
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (collect) {
		strv_push(collected_errors, xstrdup(msg));
		return;
	}
	static const char *names[] = {[HOST_ERR] = "error", [HOST_WARN] = "warning",
				      [HOST_INFO] = "info", [HOST_DEBUG] = "debug"};
	if (journal) {
		fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		char ts[32];
		format_iso_ms(wall_ms(), ts, sizeof(ts));
		fprintf(stderr, "%s ward[%d]: %s: %s\n", ts, (int)getpid(), names[level], msg);
	}
}

static int open_file(struct log_file *lf)
{
	make_room();
	lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (lf->fd < 0 && errno == EMFILE && open_files.last) {
		/* The workers' pipes took the rest: a log gives its descriptor up. */
		close_fd(open_files.last);
		lf->fd = open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	}
	if (lf->fd < 0)
		return -1;
	lru_push_first(lf);
	struct stat st;
	lf->size = fstat(lf->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

static void report_failure(struct log_file *lf, int err)
{
	if (lf->failing == err)
		return;
	lf->failing = err;
	host_log(HOST_ERR, "[%s] unable to write log %s: %s; lines are dropped until it works again",
		 lf->name, lf->path, strerror(err));
}

int log_open(struct log_file *lf, const char *dir, const char *name, uint64_t max_size, int keep)
{
	*lf = (struct log_file){.fd = -1, .max_size = max_size, .keep = keep};
	lf->path = xasprintf("%s/%s.log", dir, name);
	lf->name = xstrdup(name);
	if (open_file(lf) < 0) {
		report_failure(lf, errno);
		return -1;
	}
	return 0;
}

void log_settings(struct log_file *lf, uint64_t max_size, int keep)
{
	lf->max_size = max_size;
	lf->keep = keep;
}

void log_close(struct log_file *lf)
{
	log_flush(lf);
	close_fd(lf);
	free(lf->path);
	free(lf->name);
	free(lf->buf);
	*lf = (struct log_file){.fd = -1};
}

/* NAME.log -> NAME.log.1 -> ... -> NAME.log.<keep>; the oldest is removed. */
static void rotate(struct log_file *lf)
{
	close_fd(lf);
	if (lf->keep <= 0) {
		if (unlink(lf->path) < 0 && errno != ENOENT)
			report_failure(lf, errno);
	} else {
		char *from, *to;
		to = xasprintf("%s.%d", lf->path, lf->keep);
		unlink(to);
		for (int i = lf->keep - 1; i >= 1; i--) {
			from = xasprintf("%s.%d", lf->path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				report_failure(lf, errno);
			free(to);
			to = from;
		}
		if (rename(lf->path, to) < 0)
			report_failure(lf, errno);
		free(to);
	}
	if (open_file(lf) < 0)
		report_failure(lf, errno);
}

/* Whether the path no longer names the open file. Only a missing path
 * (ENOENT, or ENOTDIR: its directory replaced by a file) or another file
 * there says so. Any other error (EACCES: the directory's permissions
 * changed) proves nothing, and the open file keeps working: said once. */
static bool path_lost(struct log_file *lf, const struct stat *open_file)
{
	struct stat at_path;
	if (stat(lf->path, &at_path) == 0) {
		lf->check_failing = 0;
		return at_path.st_ino != open_file->st_ino || at_path.st_dev != open_file->st_dev;
	}
	if (errno == ENOENT || errno == ENOTDIR)
		return true;
	if (lf->check_failing != errno) {
		lf->check_failing = errno;
		host_log(HOST_WARN, "[%s] unable to check that log %s is still there: %s; writing on to the open file",
			 lf->name, lf->path, strerror(errno));
	}
	return false;
}

/* The file was deleted (or replaced) under the host: writing on into the
 * unlinked file would lose every line. Start a new one at the path.
 * Deletion is caught at every flush (one fstat: no link left); a file
 * replaced at the path is looked for once a second, since flushing is the
 * hot path of a chatty worker. */
static void reopen_if_gone(struct log_file *lf)
{
	struct stat open_file;
	if (lf->fd < 0 || fstat(lf->fd, &open_file) < 0)
		return;
	bool gone = open_file.st_nlink == 0;
	int64_t now = mono_ns();
	if (!gone && now - lf->checked_ns >= NS_PER_SEC) {
		lf->checked_ns = now;
		gone = path_lost(lf, &open_file);
	}
	if (!gone)
		return;
	close_fd(lf);
	host_log(HOST_WARN, "[%s] log %s was deleted or replaced: writing a new one", lf->name, lf->path);
}

int log_reopen(struct log_file *lf)
{
	log_flush(lf); /* lines read before the signal belong to the old file */
	close_fd(lf);
	lf->checked_ns = mono_ns();
	if (open_file(lf) < 0) {
		report_failure(lf, errno);
		return -1;
	}
	return 0;
}

/* How much of the pending lines from `off` on goes into the current file:
 * up to the end of the line with which it reaches max_size, so a file is
 * rotated at that line and not a whole batch (up to 128 KiB) later. */
static size_t part_for_file(const struct log_file *lf, size_t off)
{
	size_t rest = lf->len - off;
	if (!lf->max_size || lf->size + rest < lf->max_size)
		return rest;
	size_t room = lf->size < lf->max_size ? (size_t)(lf->max_size - lf->size) : 1;
	const char *nl = memchr(lf->buf + off + room - 1, '\n', rest - (room - 1));
	return nl ? (size_t)(nl - (lf->buf + off)) + 1 : rest;
}

/* Writes n bytes to the file, opening it first when needed; -1 when they
 * could not be written (reported). */
static int write_part(struct log_file *lf, const char *part, size_t n)
{
	reopen_if_gone(lf);
	if ((lf->fd < 0 && open_file(lf) < 0) || write_all(lf->fd, part, n) < 0) {
		report_failure(lf, errno);
		return -1;
	}
	lf->size += n;
	touch(lf);
	if (lf->failing) {
		host_log(HOST_INFO, "[%s] log %s is writable again; %llu lines were dropped", lf->name, lf->path,
			 (unsigned long long)lf->dropped);
		lf->failing = 0;
		lf->dropped = 0;
	}
	return 0;
}

/* Counts what is lost from `off` on: a log must never grow the host without bound. */
static void drop_unwritten(struct log_file *lf, size_t off)
{
	for (size_t i = off; i < lf->len; i++)
		lf->dropped += lf->buf[i] == '\n';
	if (lf->fd >= 0) {
		/* A write cut short (disk full) leaves part of a line: remove it, so the
		 * next line written does not merge with it. The host is the only writer. */
		if (ftruncate(lf->fd, (off_t)lf->size) < 0 && errno != EFBIG)
			lf->size = 0; /* unknown now: the next open measures again */
		close_fd(lf);
	}
}

void log_flush(struct log_file *lf)
{
	size_t off = 0;
	bool split = true;
	while (off < lf->len) {
		size_t n = split ? part_for_file(lf, off) : lf->len - off;
		if (write_part(lf, lf->buf + off, n) < 0) {
			drop_unwritten(lf, off);
			break;
		}
		off += n;
		if (lf->max_size && lf->size >= lf->max_size) {
			rotate(lf);
			/* A rotation that failed (reported) left the same full file
			 * open: write the rest at once, not one failed rename a line. */
			split = lf->size < lf->max_size;
		}
	}
	lf->len = 0;
}

/* "2026-11-23T15:45:28.123Z", recomputing the calendar part once a second. */
static size_t format_stamp(int64_t ms, char out[32])
{
	static int64_t cached_sec = -1;
	static char prefix[24];
	int64_t sec = ms / 1000;
	if (sec != cached_sec) {
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = sec;
	}
	return (size_t)snprintf(out, 32, "%s.%03dZ", prefix, (int)(ms % 1000));
}

void log_line(struct log_file *lf, int64_t at_ms, int instance, pid_t pid, const char *level,
	      const char *text, size_t len)
{
	size_t need = len + strlen(lf->name) + 96;
	if (lf->len + need > lf->cap) {
		lf->cap = lf->len + need > LOG_BUF_FLUSH * 2 ? lf->len + need : LOG_BUF_FLUSH * 2;
		lf->buf = xrealloc(lf->buf, lf->cap);
	}
	char stamp[32];
	format_stamp(at_ms, stamp);
	char *p = lf->buf + lf->len;
	int n = snprintf(p, need, "%s [%s:%d] pid=%d %s ", stamp, lf->name, instance, (int)pid, level);
	p += n;
	memcpy(p, text, len);
	/* One line per line: a newline inside ward_log text must not forge a
	 * second line (a fake WARD line, say) in the worker's log. */
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\n' || p[i] == '\r')
			p[i] = ' ';
	p[len] = '\n';
	lf->len += (size_t)n + len + 1;
	if (lf->len >= LOG_BUF_FLUSH)
		log_flush(lf);
}

void log_printf(struct log_file *lf, int instance, pid_t pid, const char *level, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	log_line(lf, wall_ms(), instance, pid, level, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
	log_flush(lf);
}
