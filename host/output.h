/*
 * output.h - what comes out of a worker process: lines on its stdout/stderr
 * pipe and frames on its runtime pipe. Lines go to the worker's log; frames
 * become log lines and lifecycle events (ready, end). Reads are bounded per
 * wakeup so one chatty worker cannot starve the others.
 */
#ifndef WARD_OUTPUT_H
#define WARD_OUTPUT_H

#include "worker.h"

void output_attach(struct instance *in, int out_fd, int frame_fd);
/* Reads what the process has written so far (it is still running). */
void output_read_pending(struct instance *in);
/* Reads everything the process left in its pipes (it has exited), then closes them. */
void output_drain(struct instance *in);
void output_detach(struct instance *in);

#endif
