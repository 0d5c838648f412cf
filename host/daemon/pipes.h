/*
 * pipes.h - a worker process's stdout/stderr pipe, read into its worker's
 * log. Reads are bounded per wakeup so one chatty worker cannot starve the
 * others. Host daemon only. The process's frames are daemon/channel.h.
 */
#ifndef WARD_PIPES_H
#define WARD_PIPES_H

#include "daemon/worker.h"

/* The process was spawned: out_fd (the pipe's read end, non-blocking) is watched. */
void pipe_attach(struct instance *in, int out_fd);
/* Reads everything the process left in its pipe (it has exited), then closes it. */
void pipe_drain(struct instance *in);
/* Closes the pipe without reading it, with the part of a line kept. */
void pipe_detach(struct instance *in);

#endif
