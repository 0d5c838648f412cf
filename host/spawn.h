/*
 * spawn.h - creating a worker process on the host side: its two pipes, the
 * fork, and handing the child over to child.c. Never loads plugin code.
 */
#ifndef WARD_SPAWN_H
#define WARD_SPAWN_H

#include "worker.h"

/* Forks a process for the instance and starts reading its pipes. Sets
 * in->pid. 0, or -1 with errno when pipes or fork failed (nothing leaks). */
int spawn_process(struct instance *in);

#endif
