/*
 * spawn.h - creating a worker process on the host side: its stdout/stderr
 * pipe, its runtime channel and slot, the fork (by the spawner, or the host
 * itself), and handing the child over to child.c. Never loads plugin code.
 */
#ifndef WARD_SPAWN_H
#define WARD_SPAWN_H

#include "daemon/worker.h"

/* How spawn.c tells its caller (worker.c's state machine, above this file)
 * what became of the process it asked for. */
struct spawn_answer {
	void (*spawned)(struct instance *in, pid_t pid); /* it exists; its pipe is read */
	void (*failed)(struct instance *in, int err);    /* it could not be made (nothing leaks) */
};

/* Has a process forked for the instance; answer says what became of it,
 * before this returns or later (the spawner's answer). */
void spawn_process(struct instance *in, const struct spawn_answer *answer);

/* The host ran out of descriptors (EMFILE) making a process's: says once,
 * in one host line, how many worker processes fit under RLIMIT_NOFILE and
 * what to raise; returns the detail for the instance's backoff event. */
const char *spawn_out_of_descriptors(struct host *h);

#endif
