/*
 * output.h - what comes out of a worker process: lines on its stdout/stderr
 * pipe and frames on its runtime channel. Lines go to the worker's
 * log; frames become log lines and lifecycle events (ready, end). Reads are
 * bounded per wakeup so one chatty worker cannot starve the others.
 */
#ifndef WARD_OUTPUT_H
#define WARD_OUTPUT_H

#include <stdbool.h>

#include "daemon/worker.h"

/* A new socket for the process the instance is about to start, connected to
 * the host's channel: frames from it are the instance's. The caller hands
 * it over and closes it; -1 with errno. */
int output_channel_open(struct instance *in);
/* The instance's process is gone: frames from its socket are dropped now. */
void output_channel_forget(struct instance *in);
/* Reads every frame sent so far. Before a dead process is reaped: what it
 * said before dying is then known. */
void output_read_frames(struct host *h);
/* The channel's socket file is gone (state_dir removed): a new socket takes
 * the path for processes started from now on; the old one is still read.
 * true when it was re-created. */
bool output_channel_restore(struct host *h);
void output_close_channels(struct host *h);

void output_attach(struct instance *in, int out_fd);
/* Reads everything the process left in its pipe (it has exited), then closes it. */
void output_drain(struct instance *in);
void output_detach(struct instance *in);

#endif
