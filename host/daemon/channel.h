/*
 * channel.h - the runtime channel: frames from worker processes (ward_log
 * lines, ready, end, the plugin's metrics, the end of a job; phases and
 * cycles for `ward test`), and jobs the other way (channel_send_job). Log frames go to the worker's log, an end frame and metrics into
 * the instance; what the state machine must hear (ready) goes to the
 * handler the host registers, so this layer calls nothing above it. Reads are bounded per wakeup so one chatty
 * worker cannot starve the others. Host daemon only. The processes'
 * stdout/stderr are daemon/pipes.h.
 */
#ifndef WARD_CHANNEL_H
#define WARD_CHANNEL_H

#include <stdbool.h>

#include "daemon/worker.h"

struct frame_job_end;
struct job_claim;

/* What frames mean to the layer above the channel. */
struct channel_handler {
	/* The instance's process said it is ready (after its init). */
	void (*on_ready)(void *ctx, struct instance *in);
	/* The job channel_send_job handed to the instance's process ended:
	 * end->outcome (enum job_end_outcome), end->ret what .job returned;
	 * message (NUL-terminated, "" when none) why it failed; result (NULL
	 * when result_len is 0) up to 1 MiB, valid only during the call. May be
	 * NULL: such frames are dropped. */
	void (*on_job_end)(void *ctx, struct instance *in, const struct frame_job_end *end, const char *message,
			   const void *result, size_t result_len);
	void *ctx;
};

/* The host's channel, its frames told to handler. Its socket is made when
 * the first process is connected: a host that starts none makes none. */
void channel_init(struct host *h, struct channel_handler handler);
/* A new socket for the process the instance is about to start, connected to
 * the host's channel: frames from it are the instance's. The caller hands
 * it over and closes it; -1 with errno. */
int channel_connect(struct instance *in);
/* Hands job to the instance's process (which must be running, and hold no
 * job): sets in->slot->job_pending, then sends one datagram to its runtime
 * socket, the payload inline up to FRAME_JOB_INLINE_MAX, else in a sealed
 * memfd. Never blocks. 0, or -1 with errno (EAGAIN: its socket's queue is
 * full; ENOTCONN: it has no channel; EMSGSIZE: payload or key too large),
 * job_pending cleared again: the caller keeps the job (requeues it). */
int channel_send_job(struct instance *in, const struct job_claim *job);
/* The instance's process is gone: frames from its socket are dropped now. */
void channel_forget(struct instance *in);
/* Reads every frame sent so far. Before a dead process is reaped: what it
 * said before dying is then known. */
void channel_read_frames(struct host *h);
/* The channel's socket file is gone (state_dir removed): a new socket takes
 * the path for processes started from now on; the old one is still read.
 * true when it was re-created. */
bool channel_restore(struct host *h);
void channel_close(struct host *h);

#endif
