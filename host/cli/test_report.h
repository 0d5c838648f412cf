/*
 * test_report.h - the report of a `ward test` run (cli/test_run.h makes the
 * result), and the names of a result's parts. Runs in the `ward test`
 * process or the plugin author's harness process.
 */
#ifndef WARD_TEST_REPORT_H
#define WARD_TEST_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "cli/test_run.h"

/* Human-readable (or JSON) report of a run. */
void tester_print(const struct tester_options *o, const struct test_result *r, FILE *out, bool json);
const char *cycle_result_name(int result);
/* The reason a harness or JSON report gives: an exit reason, or "config-error". */
const char *test_result_reason(const struct test_result *r);
/* "done", "failed", "unfinished", "not-run". */
const char *test_job_outcome_name(enum test_job_outcome o);

#endif
