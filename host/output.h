/*
 * output.h - what comes out of a worker process: lines on its stdout/stderr
 * pipe and frames on its user's runtime channel. Lines go to the worker's
 * log; frames become log lines and lifecycle events (ready, end). Reads are
 * bounded per wakeup so one chatty worker cannot starve the others.
 */
#ifndef WARD_OUTPUT_H
#define WARD_OUTPUT_H

#include "worker.h"

/* The descriptor a process running as `user` (NULL: the host's user) writes
 * its frames to, opened on first use; -1 with errno. */
int output_channel_for(struct host *h, const char *user);
/* Reads every frame sent so far, on every channel. Before a dead process is
 * reaped: what it said before dying is then known. */
void output_read_frames(struct host *h);
void output_close_channels(struct host *h);

void output_attach(struct instance *in, int out_fd);
/* Reads everything the process left in its pipe (it has exited), then closes it. */
void output_drain(struct instance *in);
void output_detach(struct instance *in);

#endif
