/*
 * channel.h - the runtime channel: frames from worker processes (ward_log
 * lines, ready, end, the plugin's metrics; phases and cycles for `ward
 * test`). Log frames go to the worker's log, an end frame and metrics into
 * the instance; what the state machine must hear (ready) goes to the
 * handler the host registers, so this layer calls nothing above it. Reads are bounded per wakeup so one chatty
 * worker cannot starve the others. Host daemon only. The processes'
 * stdout/stderr are daemon/pipes.h.
 */
#ifndef WARD_CHANNEL_H
#define WARD_CHANNEL_H

#include <stdbool.h>

#include "daemon/worker.h"

/* What frames mean to the layer above the channel. */
struct channel_handler {
	/* The instance's process said it is ready (after its init). */
	void (*on_ready)(void *ctx, struct instance *in);
	void *ctx;
};

/* The host's channel, its frames told to handler. Its socket is made when
 * the first process is connected: a host that starts none makes none. */
void channel_init(struct host *h, struct channel_handler handler);
/* A new socket for the process the instance is about to start, connected to
 * the host's channel: frames from it are the instance's. The caller hands
 * it over and closes it; -1 with errno. */
int channel_connect(struct instance *in);
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
