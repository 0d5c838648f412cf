/*
 * support.h - helpers for ward's Criterion tests: a real `ward run` host on a
 * throw-away configuration, bounded waits on what a user could observe (the
 * history database `ward status`/`ward history` read, log files, processes),
 * and a teardown that leaves no process or file behind.
 */
#ifndef WARD_TEST_SUPPORT_H
#define WARD_TEST_SUPPORT_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

struct wt {
	char dir[128];   /* the test's private directory */
	char conf[300];  /* <dir>/conf: the configuration directory */
	char state[300]; /* <dir>/state */
	char errfile[300]; /* the host's stderr */
	pid_t pid;       /* the host, while running */
	int status;      /* the host's wait status once it ended */
};

/* Creates a fresh test directory and writes conf/ward.ini: a [ward] section
 * pointing at the fixtures (autoload = no) followed by `ini`. */
void wt_setup(struct wt *t, const char *ini);
/* Adds another file to conf/. */
void wt_write_conf(struct wt *t, const char *file, const char *text);
/* Runs `ward run -c conf` in the background (stderr into errfile); it dies with the test. */
void wt_launch(struct wt *t);
/* wt_launch, then waits until the host has recorded itself in ward.db. */
void wt_start(struct wt *t);
/* wt_start with the host's stdout a pipe (not the errfile), copied into
 * path by a child process, as a container runtime reads it. Returns that
 * child: it exits once the host and everything it started closed the pipe. */
pid_t wt_start_stdout(struct wt *t, const char *path);
/* wt_start with the host's stdout a pipe whose read end is returned: read
 * it (or not, to see a reader that stops reading); the caller closes it. */
int wt_start_stdout_pipe(struct wt *t);
/* The same with the host's stderr on that pipe too (`ward run 2>&1 | reader`). */
int wt_start_stdout_stderr_pipe(struct wt *t);
/* A client connection to the host's control socket. */
int wt_connect_control(struct wt *t);
/* SIGTERM, then waits up to timeout_ms; returns the exit code (or 128+signal). */
int wt_stop(struct wt *t, int timeout_ms);
/* Waits for the host to exit by itself: its exit code, or -1 after timeout_ms. */
int wt_wait_exit(struct wt *t, int timeout_ms);
/* Kills what may be left, removes the directory. Installed as .fini. */
void wt_teardown(void);
extern struct wt wt; /* the fixture of the current test */

/* Polls sql (its first column as an integer) every 20 ms until it is
 * nonzero or timeout_ms passed. Returns whether it became true. */
bool wt_wait_sql(struct wt *t, int timeout_ms, const char *sql_fmt, ...) __attribute__((format(printf, 3, 4)));
long long wt_sql_int(struct wt *t, const char *sql_fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same on <state>/jobs.db (0 when it does not exist yet). */
long long wt_jobs_sql_int(struct wt *t, const char *sql);
/* First column of the first row, owned by the test until its teardown; NULL when no row. */
char *wt_sql_text(struct wt *t, const char *sql_fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes ownership of a malloc'd string until the test's teardown, and returns it. */
char *wt_keep(char *s);

/* A file's contents, NUL-terminated, owned by the caller (for polling loops), or NULL. */
char *wt_read_raw(const char *path);
/* A file's contents (NUL-terminated, freed at teardown), or NULL. */
char *wt_read(const char *path);
char *wt_log(struct wt *t, const char *worker);
char *wt_host_stderr(struct wt *t);
/* Waits until the worker's log contains needle. */
bool wt_wait_log(struct wt *t, int timeout_ms, const char *worker, const char *needle);

/* Runs `ward ARGS... -c conf` and captures stdout (and stderr when both
 * point at the same buffer). Returns the exit code. */
int wt_cli(struct wt *t, char **out, char **err, const char *args);

/* Runs `ward ARGS` (no -c) in directory cwd (NULL: the current one), with
 * stdout and stderr captured (freed at teardown). Returns the exit code. */
int wt_ward_in(const char *cwd, char **out, char **err, const char *args);

/* A loopback TCP port nothing listens on now (the kernel's choice for port 0). */
int wt_free_port(void);
/* curl's status code for http://127.0.0.1:port/path with curl's extra args
 * (0: no answer within 10 s); the body (freed at teardown) into *body when
 * body is not NULL. */
int wt_curl(int port, const char *args, const char *path, char **body);
/* wt_curl of a plain GET, its status code only. */
int wt_http_code(int port, const char *path);
/* Runs a shell command with text on its stdin: its exit code, and its
 * output (stdout and stderr, freed at teardown) into *out. */
int wt_run_with_input(const char *cmd, const char *text, char **out);
/* Expects `promtool check metrics` to accept text without a complaint. */
void wt_promtool_accepts(const char *text);
/* `ward metrics` of the running host (asserts it exits 0); freed at teardown. */
char *wt_metrics(struct wt *t);
/* The value of the sample `series` ("name{labels}") in a metrics text; -1 when there is none. */
double wt_metric(const char *text, const char *series);

bool pid_alive(pid_t pid); /* exists and is not a zombie */
/* Open descriptors of pid, or -1. */
int wt_fd_count(pid_t pid);
/* How many times needle occurs in hay (NULL: 0). */
int wt_count(const char *hay, const char *needle);
/* The host's spawner process (the one that forks its workers), or 0. */
pid_t wt_spawner(pid_t host);
/* Waits until pid is gone (or a zombie). */
bool wait_pid_gone(pid_t pid, int timeout_ms);
void sleep_ms(int ms);
long long now_ms(void);

/* 1 in a test built with AddressSanitizer (tests/run-all's second pass):
 * every process starts and exits slower there, and a test may allow for it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#endif
