/*
 * log.c - worker log lines (written only by the host) into their files
 * and, with [ward] log_output, onto the host's stdout; and the host's own
 * stderr messages, as text or JSON ([ward] log_format). Lines are formatted
 * by hand (no printf per line, the timestamp formatted once a millisecond)
 * into a per-file buffer, or the stdout buffer, and written with one write()
 * per batch, which keeps a fast-logging worker cheap.
 * Only the LOG_OPEN_MAX files written last stay open (a least-recently-used
 * list): the host's descriptors go to worker processes, one each, so ten
 * thousand workers fit under a limit of ten thousand and a few.
 * Runs in the host daemon; host_log() also in the CLI (`ward check`, `ward test`).
 */
#define _GNU_SOURCE
#include "daemon/log.h"
#include "common/json.h"
#include "common/loop.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_FLUSH (64 * 1024)
#define LOG_OPEN_MAX 64

static bool quiet;
static struct strv *collected_errors;
static enum log_output output = LOG_OUTPUT_FILE;
static enum log_format format = LOG_FORMAT_TEXT;

static bool to_file(void)
{
	return output != LOG_OUTPUT_STDOUT;
}

static bool to_stdout(void)
{
	return output != LOG_OUTPUT_FILE;
}

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

static size_t format_stamp(int64_t ms, char out[32]);
static bool host_line_to_stdout(const char *line, size_t len);

#define HOST_MSG_MAX 2048

/* One JSON object, as worker lines have (worker and instance null: the
 * host's own), after journald's "<N>" priority prefix when stderr is the
 * journal (journald takes the prefix off: the message is the object). */
static int host_line_json(char *line, size_t size, bool journal, enum host_level level, const char *msg)
{
	static const char *json_names[] = {[HOST_ERR] = "error", [HOST_WARN] = "warn",
					   [HOST_INFO] = "info", [HOST_DEBUG] = "debug"};
	char stamp[32], escaped[JSON_ESCAPED_MAX(HOST_MSG_MAX)];
	format_stamp(wall_ms(), stamp);
	escaped[json_escape(escaped, msg, strlen(msg))] = '\0';
	char prefix[8] = "";
	if (journal)
		snprintf(prefix, sizeof(prefix), "<%d>", level);
	return snprintf(line, size, "%s{\"ts\":\"%s\",\"worker\":null,\"instance\":null,\"pid\":%d,\"level\":\"%s\",\"msg\":\"%s\"}\n",
			prefix, stamp, (int)getpid(), json_names[level], escaped);
}

void host_log(enum host_level level, const char *fmt, ...)
{
	bool collect = collected_errors && level <= HOST_ERR;
	if (quiet && !collect)
		return;
	static int journal = -1;
	if (journal < 0)
		journal = stderr_is_journal();
	char msg[HOST_MSG_MAX];
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
	char line[JSON_ESCAPED_MAX(HOST_MSG_MAX) + 256];
	int n;
	if (format == LOG_FORMAT_JSON) {
		n = host_line_json(line, sizeof(line), journal, level, msg);
	} else if (journal) {
		n = snprintf(line, sizeof(line), "<%d>%s\n", level, msg);
	} else {
		char ts[32];
		format_iso_ms(wall_ms(), ts, sizeof(ts));
		n = snprintf(line, sizeof(line), "%s ward[%d]: %s: %s\n", ts, (int)getpid(), names[level], msg);
	}
	if (n > 0 && !host_line_to_stdout(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1))
		fputs(line, stderr);
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
	lf->failed_ns = mono_ns();
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
	lf->name_len = strlen(name);
	lf->prefix = xmalloc(JSON_ESCAPED_MAX(lf->name_len) + 160);
	if (!to_file())
		return 0; /* opened when log_output comes to include files (a reload) */
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
	free(lf->prefix);
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
	if (!to_file())
		return 0; /* log_output = stdout: there is no file to open again */
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
	/* Recovered once writes work for a second: a file at its size limit
	 * (RLIMIT_FSIZE) or a nearly full disk still takes a short line now and
	 * then, and each would otherwise say "writable again", then fail again. */
	if (lf->failing && mono_ns() - lf->failed_ns >= NS_PER_SEC) {
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

/* ---- the host's stdout (log_output = stdout or both) ----
 *
 * The host is the only writer of whole lines here, so two workers' lines
 * never interleave. The loop must not block on a reader that stops reading
 * (a full pipe would otherwise stop all supervision), yet O_NONBLOCK may not
 * be set on descriptor 1 itself: its open file description is shared with
 * whoever started the host (a shell's terminal, which would then see EAGAIN).
 * So, by what stdout is:
 *   - a pipe, FIFO or character device (terminal, /dev/null): the host opens
 *     /proc/self/fd/1 again, which gives a description of its own to the same
 *     pipe or device, and sets O_NONBLOCK on that one only;
 *   - a socket (journald's stream, `docker logs` through one): send() with
 *     MSG_DONTWAIT, a per-call flag that changes nothing shared;
 *   - a regular file: write() as it is; a file takes writes as the disk does,
 *     like the log files.
 * When stdout is full, lines wait in a buffer (up to STDOUT_PENDING_MAX
 * bytes) and the loop writes on when stdout has room (EPOLLOUT). Past the
 * bound, new lines are dropped and counted; that is said once, and once
 * more with the count when stdout takes lines again. Log files (both) are
 * not affected. See docs/operator-guide.md, "Logs on stdout".
 */
#define STDOUT_PENDING_MAX (16 * 1024 * 1024)
#define STDOUT_PIPE_SIZE (1024 * 1024)
#define STDOUT_CLOSE_WAIT_MS 2000 /* a reader slower than this at exit loses the rest */

static struct {
	bool opened;
	int fd;             /* where lines are written: ours, or 1; -1: nowhere */
	bool own_fd;        /* fd is the description stdout_open opened */
	bool socket;        /* send() with MSG_DONTWAIT */
	struct loop *loop;
	struct watch watch; /* fd, watched for EPOLLOUT while lines wait */
	bool watching;
	char *buf;          /* pending bytes: buf[off..len) */
	size_t off, len, cap;
	bool has_stderr;    /* stderr is the same pipe, socket or file: host lines go here too */
	uint64_t dropped;   /* lines dropped since stdout last took everything */
	int failing;        /* errno being reported, 0 when healthy */
	bool full;          /* the bound was reached: said */
} out = {.fd = -1};

static void stdout_write(void);

static void on_writable(struct watch *w, uint32_t events)
{
	(void)w, (void)events;
	stdout_write();
}

/* Another open file description of the pipe or device stdout is, with
 * O_NONBLOCK on it alone; -1 when there is none (no /proc, a FIFO without
 * a reader). O_NOCTTY: a terminal reopened must not become the host's. */
static int own_description(void)
{
	return open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

static void stdout_open(struct loop *loop)
{
	if (!out.loop && loop)
		out.loop = loop;
	if (out.opened)
		return;
	out.opened = true;
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) < 0) {
		host_log(HOST_ERR, "log_output includes stdout, but the host has no stdout (%s): worker lines meant for it are dropped",
			 strerror(errno));
		return;
	}
	out.fd = STDOUT_FILENO;
	/* `ward run 2>&1 | shipper`, `docker run -t`, systemd's stderr inherited
	 * from a journal stdout: the host's own lines, written to a blocking
	 * stderr, would stop the loop when the reader stops, and land inside a
	 * worker line cut by a partial write. They go through this buffer. */
	struct stat err;
	out.has_stderr = fstat(STDERR_FILENO, &err) == 0 && err.st_dev == st.st_dev && err.st_ino == st.st_ino;
	if (S_ISSOCK(st.st_mode)) {
		out.socket = true;
	} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		int fd = own_description();
		if (fd >= 0) {
			out.fd = fd;
			out.own_fd = true;
			/* A bigger pipe: fewer wake-ups for the host and the reader
			 * (the unprivileged maximum, fs.pipe-max-size, is 1 MiB by
			 * default; refused, it stays as it is). */
			if (S_ISFIFO(st.st_mode))
				(void)fcntl(fd, F_SETPIPE_SZ, STDOUT_PIPE_SIZE);
		} else {
			host_log(HOST_WARN, "unable to open stdout again without blocking (/proc/self/fd/1: %s): "
				 "writing worker lines to it directly, so a reader that stops reading stops the host",
				 strerror(errno));
		}
	}
}

static size_t stdout_pending(void)
{
	return out.len - out.off;
}

/* Counts the whole lines in buf[from..to) as dropped. */
static void count_dropped(size_t from, size_t to)
{
	for (const char *p = out.buf + from, *end = out.buf + to; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		out.dropped++;
}

static char *stdout_room(size_t need)
{
	if (out.fd < 0) {
		out.dropped++;
		return NULL;
	}
	if (out.len - out.off + need > STDOUT_PENDING_MAX) {
		if (!out.full) {
			out.full = true;
			host_log(HOST_WARN, "stdout is not being read (%zu bytes of worker lines wait): "
				 "lines are dropped until it takes them again", out.len - out.off);
		}
		out.dropped++;
		return NULL;
	}
	if (out.off && out.len + need > out.cap) { /* room at the front first */
		memmove(out.buf, out.buf + out.off, out.len - out.off);
		out.len -= out.off;
		out.off = 0;
	}
	if (out.len + need > out.cap) {
		size_t cap = out.cap ? out.cap : 128 * 1024;
		while (cap < out.len + need)
			cap *= 2;
		out.buf = xrealloc(out.buf, cap);
		out.cap = cap;
	}
	return out.buf + out.len;
}

static void stdout_commit(size_t n)
{
	out.len += n;
}

/* A host line for stderr, written with the worker lines when stderr shares
 * stdout (false: write it to stderr). */
static bool host_line_to_stdout(const char *line, size_t len)
{
	if (!out.has_stderr || out.fd < 0)
		return false;
	char *at = stdout_room(len);
	if (at) {
		memcpy(at, line, len);
		stdout_commit(len);
	}
	if (!out.loop) /* not in the loop yet (or no longer): nothing else flushes */
		stdout_write();
	return true;
}

static void watch_for_room(bool on)
{
	if (on == out.watching || !out.loop)
		return;
	if (on) {
		out.watch = (struct watch){.fd = out.fd, .fn = on_writable};
		out.watching = loop_watch(out.loop, &out.watch, EPOLLOUT) == 0;
	} else {
		loop_unwatch(out.loop, &out.watch);
		out.watching = false;
	}
}

static ssize_t write_some(const char *p, size_t n)
{
	if (out.socket)
		return send(out.fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(out.fd, p, n);
}

/* Everything pending was written: say what was dropped meanwhile. */
static void all_taken(void)
{
	out.off = out.len = 0;
	watch_for_room(false);
	if (out.failing || out.full || out.dropped)
		host_log(HOST_INFO, "stdout takes worker lines again; %llu lines were dropped", (unsigned long long)out.dropped);
	out.failing = 0;
	out.full = false;
	out.dropped = 0;
}

/* Writes what is pending, as far as stdout takes it now. */
static void stdout_write(void)
{
	while (out.off < out.len) {
		ssize_t n = write_some(out.buf + out.off, out.len - out.off);
		if (n > 0) {
			out.off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			watch_for_room(true); /* no watch (a regular file): the next flush retries */
			return;
		}
		/* EPIPE (the reader is gone), EIO, ENOSPC...: what waits is lost. */
		int err = n < 0 ? errno : EIO;
		if (out.failing != err)
			host_log(HOST_ERR, "unable to write worker lines to stdout: %s; they are dropped until it works again",
				 strerror(err));
		out.failing = err;
		count_dropped(out.off, out.len);
		out.off = out.len = 0;
		watch_for_room(false);
		return;
	}
	if (out.len) /* all of it was written now: stdout works */
		all_taken();
}

void log_flush_stdout(void)
{
	if (!out.watching) /* else stdout is full: EPOLLOUT says when it has room */
		stdout_write();
}

void log_close_stdout(void)
{
	if (!out.opened)
		return;
	int64_t deadline = mono_ns() + (int64_t)STDOUT_CLOSE_WAIT_MS * 1000000;
	stdout_write();
	while (out.off < out.len && out.fd >= 0 && !out.failing) {
		int64_t left_ms = (deadline - mono_ns()) / 1000000;
		if (left_ms <= 0)
			break;
		struct pollfd p = {.fd = out.fd, .events = POLLOUT};
		if (poll(&p, 1, (int)left_ms) < 0 && errno != EINTR)
			break;
		stdout_write();
	}
	out.has_stderr = false; /* from here on, host lines go to stderr itself */
	if (out.off < out.len) {
		count_dropped(out.off, out.len);
		host_log(HOST_WARN, "stdout did not take the last worker lines in time: %llu lines dropped",
			 (unsigned long long)out.dropped);
	}
	watch_for_room(false);
	if (out.own_fd)
		close(out.fd);
	free(out.buf);
	out = (typeof(out)){.fd = -1};
}

/* ---- formatting a line ---- */

/* "2026-11-23T15:45:28.123Z": the calendar part recomputed once a second,
 * the whole stamp once a millisecond (a fast logger's lines share it). */
static size_t format_stamp(int64_t ms, char stamp_out[32])
{
	static int64_t cached_sec = INT64_MIN, cached_ms = INT64_MIN;
	static char stamp[32];
	static size_t stamp_len;
	if (ms != cached_ms) {
		int64_t sec = ms / 1000;
		if (sec != cached_sec) {
			time_t t = (time_t)sec;
			struct tm tm;
			gmtime_r(&t, &tm);
			stamp_len = strftime(stamp, sizeof(stamp) - 5, "%Y-%m-%dT%H:%M:%S", &tm);
			cached_sec = sec;
		}
		int milli = (int)(ms % 1000);
		char *p = stamp + stamp_len;
		p[0] = '.';
		p[1] = (char)('0' + milli / 100);
		p[2] = (char)('0' + milli / 10 % 10);
		p[3] = (char)('0' + milli % 10);
		p[4] = 'Z';
		p[5] = '\0';
		cached_ms = ms;
	}
	memcpy(stamp_out, stamp, stamp_len + 6);
	return stamp_len + 5;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_int(char *p, long v)
{
	char digits[24];
	size_t n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	do
		digits[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		*p++ = '-';
	while (n)
		*p++ = digits[--n];
	return p;
}

/* The most bytes a line of len bytes of text takes, in either format. */
static size_t line_bound(const struct log_file *lf, size_t len)
{
	return JSON_ESCAPED_MAX(len) + JSON_ESCAPED_MAX(lf->name_len) + 200;
}

/* text: " [NAME:INSTANCE] pid=PID LEVEL ", with " job=N" after the pid
 * while the process holds job N;
 * json: "","worker":"NAME","instance":N,"pid":N,"level":"level","msg":"",
 * with "job":N before "level" while it holds one; the level in lower case
 * (out, ward, error, warn, info, debug). */
static void make_prefix(struct log_file *lf, int instance, pid_t pid, int64_t job, const char *level)
{
	char *p = lf->prefix;
	if (format == LOG_FORMAT_JSON) {
		p = put(p, "\",\"worker\":\"", 12);
		p += json_escape(p, lf->name, lf->name_len);
		p = put(p, "\",\"instance\":", 13);
		p = put_int(p, instance);
		p = put(p, ",\"pid\":", 7);
		p = put_int(p, pid);
		if (job > 0) {
			p = put(p, ",\"job\":", 7);
			p = put_int(p, job);
		}
		p = put(p, ",\"level\":\"", 10);
		for (const char *l = level; *l && p - lf->prefix < (ptrdiff_t)lf->name_len * 6 + 100; l++)
			*p++ = (char)(*l >= 'A' && *l <= 'Z' ? *l - 'A' + 'a' : *l);
		p = put(p, "\",\"msg\":\"", 9);
	} else {
		p = put(p, " [", 2);
		p = put(p, lf->name, lf->name_len);
		*p++ = ':';
		p = put_int(p, instance);
		p = put(p, "] pid=", 6);
		p = put_int(p, pid);
		if (job > 0) {
			p = put(p, " job=", 5);
			p = put_int(p, job);
		}
		*p++ = ' ';
		for (const char *l = level; *l && p - lf->prefix < (ptrdiff_t)lf->name_len * 6 + 100; l++)
			*p++ = *l;
		*p++ = ' ';
	}
	lf->prefix_len = (size_t)(p - lf->prefix);
	lf->prefix_instance = instance;
	lf->prefix_pid = pid;
	lf->prefix_job = job;
	lf->prefix_level = level;
	lf->prefix_format = format;
}

/* One line into `line` (room for line_bound): text "STAMP [NAME:INSTANCE]
 * pid=PID LEVEL text\n", or the JSON object. In text, a newline or carriage
 * return inside the text becomes a space: one line per line, so a newline
 * inside ward_log text cannot forge a second line (a fake WARD line, say). */
static size_t format_line(char *line, struct log_file *lf, const char *stamp, size_t stamp_len, int instance,
			  pid_t pid, int64_t job, const char *level, const char *text, size_t len)
{
	if (lf->prefix_level != level || lf->prefix_instance != instance || lf->prefix_pid != pid ||
	    lf->prefix_job != job || lf->prefix_format != (int)format)
		make_prefix(lf, instance, pid, job, level);
	char *p = line;
	if (format == LOG_FORMAT_JSON) {
		p = put(p, "{\"ts\":\"", 7);
		p = put(p, stamp, stamp_len);
		p = put(p, lf->prefix, lf->prefix_len);
		p += json_escape(p, text, len);
		return (size_t)(put(p, "\"}\n", 3) - line);
	}
	p = put(p, stamp, stamp_len);
	p = put(p, lf->prefix, lf->prefix_len);
	char *body = p;
	p = put(p, text, len);
	for (char *c = body; (c = memchr(c, '\n', (size_t)(p - c))); c++)
		*c = ' ';
	for (char *c = body; (c = memchr(c, '\r', (size_t)(p - c))); c++)
		*c = ' ';
	*p++ = '\n';
	return (size_t)(p - line);
}

void log_configure(enum log_output o, enum log_format f, struct loop *loop)
{
	output = o;
	format = f;
	if (to_stdout())
		stdout_open(loop);
}

void log_line(struct log_file *lf, int64_t at_ms, int instance, pid_t pid, int64_t job, const char *level,
	      const char *text, size_t len)
{
	size_t need = line_bound(lf, len);
	char *line;
	if (to_file()) {
		if (lf->len + need > lf->cap) {
			lf->cap = lf->len + need > LOG_BUF_FLUSH * 2 ? lf->len + need : LOG_BUF_FLUSH * 2;
			lf->buf = xrealloc(lf->buf, lf->cap);
		}
		line = lf->buf + lf->len;
	} else if (!(line = stdout_room(need))) {
		return; /* dropped, counted */
	}
	char stamp[32];
	size_t stamp_len = format_stamp(at_ms, stamp);
	size_t n = format_line(line, lf, stamp, stamp_len, instance, pid, job, level, text, len);
	if (to_stdout()) {
		char *copy = to_file() ? stdout_room(n) : line;
		if (copy) {
			if (copy != line)
				memcpy(copy, line, n);
			stdout_commit(n);
		}
		if (stdout_pending() >= LOG_BUF_FLUSH)
			log_flush_stdout();
	}
	if (to_file()) {
		lf->len += n;
		if (lf->len >= LOG_BUF_FLUSH)
			log_flush(lf);
	}
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
	log_line(lf, wall_ms(), instance, pid, 0, level, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
	log_flush(lf);
}
