/*
 * loader.h - opens a plugin file and checks its descriptor before anything in
 * it is used. Runs in a worker process or a probe process (worker/probe.c),
 * never in the supervising host: a plugin's constructors may crash, and only
 * a child may die of it. One exception is the caller's own choice: `ward test
 * --in-process` (cli/tester.c) loads the plugin into the ward command itself,
 * or the test harness into the test program (ward_harness_in_process), and
 * dies with it.
 */
#ifndef WARD_LOADER_H
#define WARD_LOADER_H

#include <ward.h>

#include "common/reason.h"

/* Loads path and copies its descriptor into *plugin (fields the plugin's
 * older header did not have read as zero). 0 on success; -1 with
 * why->reason = REASON_LOAD_FAILED or REASON_ABI_MISMATCH and a message
 * saying what to do. */
int loader_open(const char *path, struct ward_plugin *plugin, struct exit_info *why);

#endif
