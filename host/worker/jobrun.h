/*
 * jobrun.h - jobs in the worker process: the FRAME_JOB the host sent is
 * read from the runtime socket, handed to the plugin's .job, and its end
 * (outcome, message, result) sent back as FRAME_JOB_END. Also the
 * ward_job_* functions of <ward.h>. Runs only in a worker process (the
 * runtime's loop, runtime.c, calls it).
 */
#ifndef WARD_JOBRUN_H
#define WARD_JOBRUN_H

#include <stdbool.h>

#include "worker/runtime.h"

/* Whether a job may be waiting: the host set slot.job_pending (no system call). */
static inline bool jobrun_pending(ward_ctx *ctx)
{
	return atomic_load_explicit(&ctx->slot->job_pending, memory_order_acquire) != 0;
}

/* Takes the job waiting on the runtime socket (if one is there: a set
 * job_pending, or a readable socket) and runs it to its end, which goes to
 * the host. The watchdog covers it (PHASE_JOB). Whether a job ran. */
bool jobrun_take(ward_ctx *ctx, const struct ward_plugin *plugin, void *state);

/* ward_log says an error during a job: the message a failed job ends with. */
void jobrun_note_error(ward_ctx *ctx, const char *text, size_t len);

#endif
