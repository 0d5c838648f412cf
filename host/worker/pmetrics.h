/*
 * pmetrics.h - the worker process's side of plugin metrics: ward_gauge and
 * ward_count of <ward.h> (runtime.c) only change this table in the
 * process's memory; the runtime's loop sends what changed to the host (a
 * FRAME_METRICS frame) at cycle boundaries, at most every PMETRICS_FLUSH_MS
 * while cycles run back to back. Runs in the worker process (or `ward test
 * --in-process`).
 */
#ifndef WARD_PMETRICS_H
#define WARD_PMETRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/pmetric.h"

#define PMETRICS_FLUSH_MS 100

/* A new run in this process: no metrics. */
void pmetrics_reset(void);
/* ward_gauge (PMETRIC_GAUGE: v is the value) and ward_count (PMETRIC_COUNTER:
 * v is added). warn gets the one warning to write to the worker's log when
 * the call is refused for the first time ("" otherwise): the caller writes
 * it, so that this table knows nothing of the runtime above it. */
void pmetrics_update(enum pmetric_kind kind, const char *name, double v, char *warn, size_t size);

/* Hands records (PMETRIC records, at most one frame's worth) to the host. */
typedef void pmetrics_send_fn(void *arg, const void *records, size_t len);
/* Sends what changed since the last send through send: now, or only when the
 * last send is PMETRICS_FLUSH_MS old. */
void pmetrics_flush(bool now, pmetrics_send_fn *send, void *arg);

/* Set when a metric changed and not sent yet (pmetrics.c's). */
extern _Atomic bool pmetrics_changed;

/* Whether pmetrics_flush has anything to do: in the cycle loop, where
 * nothing changed costs one load (no clock, no call). */
static inline bool pmetrics_pending(void)
{
	return atomic_load_explicit(&pmetrics_changed, memory_order_relaxed);
}

#endif
