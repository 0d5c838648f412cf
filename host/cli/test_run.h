/*
 * test_run.h - `ward test` and the plugin test harness: run one plugin the
 * way the host runs it (same fork, same child set-up, same runtime and
 * watchdog, on a throw-away configuration) and collect every phase with its
 * timing, every cycle's result, the plugin's log lines, and how it ended.
 * On request it runs the plugin inside the calling process instead (no
 * fork: for valgrind and gdb), through the same runtime. Runs in the
 * `ward test` process or the plugin author's harness process (test_run.c
 * says how). The report of a result is cli/test_report.h.
 */
#ifndef WARD_TEST_RUN_H
#define WARD_TEST_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/pmetric.h"
#include "common/proto.h"
#include "common/reason.h"
#include "common/util.h"

#include "daemon/observer.h"

struct config;
struct instance;
struct worker;

/* TEST_STOP_GRACE_MS: daemon/observer.h */
#define TEST_STOP_GRACE_TEXT "2s" /* the same, for --help */

/* A job `ward test --job` (or the harness) hands the plugin. */
struct test_job_input {
	const void *data;
	size_t len;
};

struct tester_options {
	const char *plugin;     /* path of the .so, as the user gave it */
	char *const *keys;      /* "key=value": plugin keys and worker keys (interval, watchdog...) */
	size_t nkeys;
	uint64_t cycles;        /* stop after this many cycles; 0: run until it ends */
	uint64_t timeout_ms;    /* the longest the run may take */
	bool in_process;        /* no fork: the plugin runs in this process */
	bool from_harness;      /* messages name ward_harness_new/_set calls, not arguments */
	const struct test_job_input *jobs; /* handed one by one to .job, ids 1, 2...; then the stop */
	size_t njobs;
};

struct test_phase {
	bool seen;
	int64_t ns;
	char note[256];
};

struct test_cycle {
	int result;
	int64_t ns;
};

enum test_job_outcome {
	TEST_JOB_NOT_RUN = 0, /* never handed over (the process ended before) */
	TEST_JOB_DONE,        /* .job returned WARD_OK */
	TEST_JOB_FAILED,      /* .job returned anything else, or the job could not be handed over */
	TEST_JOB_UNFINISHED,  /* the process ended while it held the job */
};

struct test_job {
	enum test_job_outcome outcome;
	int ret;          /* what .job returned */
	char *message;    /* why it failed ("returned 3", its last error line...), or NULL; owned */
	void *result;     /* owned; NULL when result_len is 0 */
	size_t result_len;
	int64_t ns;       /* from the hand-over to its end, as the host saw them */
};

struct test_result {
	struct test_phase load, init, shutdown;
	int init_rc;
	struct test_cycle *cycles; /* owned */
	size_t ncycles, cap;
	struct test_job *jobs;     /* one per tester_options.jobs; owned */
	size_t njobs;
	struct strv log;           /* the worker's log lines */
	struct pmetric_set metrics; /* the plugin's own (ward_gauge, ward_count), as it last sent them */
	struct strv errors;        /* why it did not start: each names what the user typed */
	struct strv warnings;      /* about the configuration, named the same way */
	struct exit_info end;
	bool timed_out;
	bool config_error;         /* it did not start: see errors */
	bool ok;                   /* the plugin behaved */
};

struct tester; /* one run in progress */

/* Runs the plugin; fills *r (free with test_result_free). 0, or -1 when the
 * run could not be set up at all (reported on stderr). What the user gave
 * that is wrong (a key, the plugin's path) is a result: config_error. */
int tester_run(const struct tester_options *o, struct test_result *r);
void test_result_free(struct test_result *r);
/* `ward test --describe`: the plugin (a path relative to the current
 * directory, too) probed and described. 0 or -1 (reported on stderr). */
int tester_describe(const char *plugin, uint64_t timeout_ms, FILE *out);

#endif
