/*
 * probe.h - a look inside plugin files before their workers start: each is
 * loaded in a probe process started exactly like the first worker that uses
 * it (the spawner forks it; it gets that worker's user, group, limits and
 * environment, no descriptor of the host's but the pipe its verdict goes
 * back on, and it dies with the host), and its descriptor and declared
 * options are sent back. A constructor that crashes or hangs takes only the
 * probe down; one that does not return within PROBE_TIMEOUT_MS is killed
 * and reported. The host probes without blocking its loop (`ward run`,
 * reload); `ward check` and `ward test --describe` wait for the verdicts.
 */
#ifndef WARD_PROBE_H
#define WARD_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config/config.h"
#include "common/reason.h"
#include "worker/probe.h"

#define PROBE_TIMEOUT_MS 5000 /* the same in main.c */

struct host;
struct probe_batch;

/* In the host: probes every distinct plugin of cfg. When every verdict is
 * in, the workers' keys have been checked against the declared options
 * (errors added to cfg), and done(arg) is called from the loop. */
struct probe_batch *probe_batch_start(struct host *h, struct config *cfg, void (*done)(void *arg), void *arg);
/* "plugin PATH (worker NAME): REASON: MESSAGE" for each plugin that did not
 * load (its workers fail when started, with that reason), once done. */
const struct strv *probe_batch_load_errors(const struct probe_batch *b);
/* Frees the batch; probes still running are killed. */
void probe_batch_free(struct probe_batch *b);

/* In the host: whether pid is a probe process (neither a worker nor a stray). */
bool probe_owns(pid_t pid);
/* The host reaped pid: true when it was a probe's. */
bool probe_reaped(pid_t pid, int wait_status);

/* `ward check`: the same probes, waited for, and every worker's keys checked
 * against its plugin's options. "plugin PATH (worker NAME): REASON: MSG"
 * lines are added to load_errors (may be NULL: plugins that do not load
 * then fail when started). Returns how many plugins did not load. */
size_t probe_check_config(struct config *cfg, struct strv *load_errors);
/* `ward test --describe`: name, version, ABI and options, printed to out;
 * the probe may take timeout_ms. 0 or -1. */
int probe_describe(const char *path, uint64_t timeout_ms, FILE *out);

#endif
