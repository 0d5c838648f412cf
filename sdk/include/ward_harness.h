/*
 * ward_harness.h - test a ward plugin from C (Criterion or any framework),
 * run exactly as the ward host runs it: the same fork, the same process
 * set-up, the same runtime and watchdog, on a throw-away configuration. A
 * crash in the plugin ends its own process, never the test. On request the
 * plugin runs inside the test process instead, for valgrind and gdb.
 *
 *     ward_harness *h = ward_harness_new("build/myplugin.so");
 *     ward_harness_set(h, "greeting", "hello");   // any key of the worker's section
 *     ward_harness_cycles(h, 3);                  // stop after 3 cycles
 *     cr_assert_eq(ward_harness_run(h), 0);       // 0: the plugin behaved
 *     cr_assert_eq(ward_harness_cycle_result(h, 0), WARD_IDLE);
 *     cr_assert(ward_harness_log_contains(h, "hello"));
 *     ward_harness_free(h);
 *
 * A plugin with .job gets jobs the way the host hands them (the same
 * runtime channel, one at a time, ids 1, 2... in the order queued), then
 * the stop:
 *
 *     size_t j = ward_harness_job(h, "/etc/hosts", 10);
 *     cr_assert_eq(ward_harness_run(h), 0);        // 0 also needs every job done
 *     struct ward_harness_job_outcome o = ward_harness_job_outcome(h, j);
 *     cr_assert_str_eq(o.outcome, "done");
 *     cr_assert_eq(o.result_len, 7);
 *
 * Link with the `ward::harness` CMake target or `pkg-config --libs ward`:
 * the test program must export the ward_* runtime symbols to the plugin
 * (both do it with --export-dynamic).
 */
#ifndef WARD_HARNESS_H
#define WARD_HARNESS_H

#include <stddef.h>
#include <ward.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ward_harness ward_harness;

/* plugin_path may be relative to the current directory (at this call). */
ward_harness *ward_harness_new(const char *plugin_path);
void ward_harness_free(ward_harness *h);

/* Any key of the worker's section: the plugin's own keys and ward's
 * (interval, watchdog, init_timeout, env.NAME...). */
void ward_harness_set(ward_harness *h, const char *key, const char *value);
/* After this many cycles, stop the plugin as the host stops a worker:
 * SIGTERM, then SIGKILL after stop_timeout. A plugin that blocks or ignores
 * SIGTERM fails ("stop-timeout"). 0 (default): run until the plugin
 * finishes or the timeout. */
void ward_harness_cycles(ward_harness *h, unsigned long n);
/* The longest the run may take (default 30 s); reaching it is a failure.
 * Then the plugin gets SIGTERM, and SIGKILL 2 s later if still there. */
void ward_harness_timeout_ms(ward_harness *h, unsigned long ms);
/* Nonzero: run the plugin in this process (no fork, no timeout). The
 * process gets its SIGTERM disposition and signal mask back afterwards. */
void ward_harness_in_process(ward_harness *h, int yes);

/* Runs the plugin. 0 when it behaved (loaded, init returned 0, ended done or
 * stopped with its shutdown run, in time), 1 when it did not, -1 when the run
 * could not be set up. The results below are there in both of the first cases. */
int ward_harness_run(ward_harness *h);

/* How it ended: "done", "stopped", "signal", "exit", "error", "init-failed",
 * "load-failed", "abi-mismatch", "hung", "init-timeout", "stop-timeout";
 * or "config-error": it never started, because a key given with
 * ward_harness_set() was refused, the plugin file was not found, or what
 * the configuration asks for could not be set up (a listen address in
 * use). ward_harness_message() then names the call, e.g.
 * ward_harness_set(h, "interval", "abc"): invalid value "abc": ... */
const char *ward_harness_reason(const ward_harness *h);
const char *ward_harness_message(const ward_harness *h);
int ward_harness_exit_code(const ward_harness *h);
int ward_harness_signal(const ward_harness *h);  /* 0 when not killed by a signal */
int ward_harness_timed_out(const ward_harness *h);

int ward_harness_init_result(const ward_harness *h);
int ward_harness_shutdown_ran(const ward_harness *h);
double ward_harness_load_ms(const ward_harness *h);
double ward_harness_init_ms(const ward_harness *h);
double ward_harness_shutdown_ms(const ward_harness *h);

size_t ward_harness_cycle_count(const ward_harness *h);
int ward_harness_cycle_result(const ward_harness *h, size_t i); /* a ward_result; -99 out of range */
double ward_harness_cycle_ms(const ward_harness *h, size_t i);

/* The worker's log: ward_log lines, stdout/stderr lines and ward's own. */
size_t ward_harness_log_count(const ward_harness *h);
const char *ward_harness_log_line(const ward_harness *h, size_t i);
int ward_harness_log_contains(const ward_harness *h, const char *needle);

/* The plugin's own metric `name` (as given to ward_gauge or ward_count,
 * without ward_plugin_) as the plugin last sent it: a gauge's value, a
 * count's total. NaN when the plugin has no metric of that name. */
double ward_harness_metric(const ward_harness *h, const char *name);

/* Queues a job for the next run: payload (len bytes, up to 1 MiB, copied) is
 * handed to the plugin's .job, after the jobs queued before it. Returns its
 * index for ward_harness_job_outcome (its job id is the index + 1). Once
 * every job has ended, the plugin is stopped as --cycles would. A plugin
 * without .job makes the run a "config-error". Not for in-process runs:
 * there the host that hands jobs over is missing ("config-error" too). */
size_t ward_harness_job(ward_harness *h, const void *payload, size_t len);
size_t ward_harness_job_count(const ward_harness *h);
struct ward_harness_job_outcome {
	/* "done" (.job returned WARD_OK), "failed" (it returned anything
	 * else), "unfinished" (the process ended while it held the job: a
	 * crash, a watchdog kill), "not-run" (never handed over) */
	const char *outcome;
	int returned;         /* what .job returned */
	const char *message;  /* why it failed: "returned 3", the last ward_log error line, or how the process ended; "" */
	const void *result;   /* what ward_job_result set (NULL when result_len is 0) */
	size_t result_len;
	double ms;            /* from the hand-over to its end */
};
/* Job i's outcome after the run (outcome "not-run" for an index out of
 * range). The pointers are valid until the next run or ward_harness_free. */
struct ward_harness_job_outcome ward_harness_job_outcome(const ward_harness *h, size_t i);

#ifdef __cplusplus
}
#endif

#endif
