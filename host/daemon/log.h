/*
 * log.h - the host's writing side of worker logs, and the host's own
 * messages. Every worker has one file, <log_dir>/<NAME>.log, written only by
 * the host: lines from the worker's stdout/stderr pipe and its ward_log
 * frames get a timestamp, the instance, the pid and the level, and files
 * rotate at log_max_size keeping log_keep old ones. [ward] log_output sends
 * the same lines to the host's stdout instead of the files, or as well;
 * log_format makes every line, the host's own too, a JSON object. Only the files written
 * last are kept open: a log costs the host no descriptor of its own. A log that cannot be
 * written is reported once, never stops supervision, and reports recovery.
 */
#ifndef WARD_LOG_H
#define WARD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"

struct log_file {
	char *path;        /* owned */
	char *name;        /* worker name, owned */
	size_t name_len;
	/* What follows the stamp in a line of the last (instance, pid, level,
	 * format) written, up to the text: made once for a burst of lines. */
	char *prefix;      /* owned */
	size_t prefix_len;
	int prefix_instance, prefix_format;
	pid_t prefix_pid;
	int64_t prefix_job;
	const char *prefix_level; /* a level string; the caller's, never freed */
	int fd;            /* -1 while closed or broken */
	uint64_t size;
	uint64_t max_size; /* 0: never rotate */
	int keep;
	char *buf;         /* pending lines, flushed by log_flush */
	size_t len, cap;
	uint64_t dropped;  /* lines lost while the file could not be written */
	int failing;       /* errno of the failure being reported, 0 when healthy */
	int64_t failed_ns; /* when a write last failed (recovery is said a second after) */
	int64_t checked_ns; /* when the file was last compared with its path */
	int check_failing;  /* errno of a failed comparison being reported, 0 when none */
	struct log_file *newer, *older; /* in the list of open files (log.c), while fd >= 0 */
};

struct loop;
/* [ward] log_output and log_format, from the next line on (boot, reload).
 * loop: where writing to stdout waits for room (NULL: nowhere yet). */
void log_configure(enum log_output output, enum log_format format, struct loop *loop);

/* Without log files (log_output = stdout) the file is neither created nor opened. */
int log_open(struct log_file *lf, const char *dir, const char *name, uint64_t max_size, int keep);
void log_close(struct log_file *lf);
/* Writes what is pending, closes the file and opens its path again: after an
 * external logrotate renamed it, new lines go to a new file of that name.
 * Returns -1 (reported) when the path cannot be opened; writing retries. */
int log_reopen(struct log_file *lf);
/* New rotation settings (a reload); applied from the next write. */
void log_settings(struct log_file *lf, uint64_t max_size, int keep);

/* Appends one line (text without its newline), stamped at_ms: the host's
 * clock when it read the line, never a time the worker supplied. job > 0:
 * the process holds that job (the line says so, SPEC 4); 0: none. Lines are
 * buffered until log_flush, which the host calls after each batch it read. */
void log_line(struct log_file *lf, int64_t at_ms, int instance, pid_t pid, int64_t job, const char *level,
	      const char *text, size_t len);
void log_printf(struct log_file *lf, int instance, pid_t pid, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void log_flush(struct log_file *lf);
/* Writes the lines waiting for stdout, as far as it takes them without
 * blocking (the rest waits for room); called before the loop sleeps. */
void log_flush_stdout(void);
/* The host is exiting: the lines waiting for stdout are written, waiting a
 * bounded time (2 s) for a slow reader; what is left is counted and said. */
void log_close_stdout(void);

/* The host's own events: one line each on stderr, journald-friendly. */
enum host_level { HOST_ERR = 3, HOST_WARN = 4, HOST_INFO = 6, HOST_DEBUG = 7 };
void host_log(enum host_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* `ward test` reports everything itself: the host's own lines are left out. */
void host_log_quiet(bool quiet);
/* `ward test` and the harness: the host's error lines go into *errors (for
 * the report) instead of stderr, until called again with NULL. */
struct strv;
void host_log_collect_errors(struct strv *errors);

#endif
