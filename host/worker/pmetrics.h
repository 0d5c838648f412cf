/*
 * pmetrics.h - the worker process's side of plugin metrics: ward_gauge and
 * ward_count of <ward.h> only change a table in the process's memory; the
 * runtime's loop sends what changed to the host (a FRAME_METRICS frame) at
 * cycle boundaries, at most every PMETRICS_FLUSH_MS while cycles run back to
 * back. Runs in the worker process (or `ward test --in-process`).
 */
#ifndef WARD_PMETRICS_H
#define WARD_PMETRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <ward.h>

#define PMETRICS_FLUSH_MS 100

/* A new run in this process: no metrics. */
void pmetrics_reset(void);
/* Sends what changed since the last send: now, or only when the last send is
 * PMETRICS_FLUSH_MS old. */
void pmetrics_flush(ward_ctx *ctx, bool now);

/* Set when a metric changed and not sent yet (pmetrics.c's). */
extern _Atomic bool pmetrics_changed;

/* pmetrics_flush when something changed: in the cycle loop, where nothing
 * changed costs one load (no clock, no call). */
static inline void pmetrics_flush_changes(ward_ctx *ctx, bool now)
{
	if (atomic_load_explicit(&pmetrics_changed, memory_order_relaxed))
		pmetrics_flush(ctx, now);
}

#endif
