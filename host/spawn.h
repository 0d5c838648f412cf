/*
 * spawn.h - creating a worker process on the host side: its stdout/stderr
 * pipe, its runtime channel and slot, the fork (by the spawner, or the host
 * itself), and handing the child over to child.c. Never loads plugin code.
 */
#ifndef WARD_SPAWN_H
#define WARD_SPAWN_H

#include "worker.h"

/* Forks a process for the instance and starts reading its pipe. Sets
 * in->pid. 0, or -1 with errno when the pipe or fork failed (nothing leaks). */
int spawn_process(struct instance *in);

#endif
