/*
 * loader.h - opens a plugin file and checks its descriptor before anything in
 * it is used. Runs in a worker process and in a probe child (forked for
 * `ward check`, `ward run`'s boot and a reload: daemon/probe.c), and in the
 * plugin author's own test process when the harness runs a plugin in-process,
 * or in `ward test --in-process` itself (cli/test_run.c); never in the host daemon: a plugin's constructors may
 * crash, and only a child (or the author's test) may die of it.
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
