/*
 * tick.h - the host's progress tick, one timer for every instance (host process).
 * tick.c calls worker.c (instance_check_progress); worker.c, below it, never
 * calls tick.c: it arms h->tick_timer itself when an instance starts running.
 */
#ifndef WARD_TICK_H
#define WARD_TICK_H

#include <stdint.h>

struct host;

void tick_init(struct host *h);
/* The check period the workers' watchdogs need; 0: none has a watchdog. */
int64_t tick_period(const struct host *h);

#endif
