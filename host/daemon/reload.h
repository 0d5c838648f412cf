/*
 * reload.h - `ward reload` and SIGHUP (host process): re-read the
 * configuration and apply the difference, worker by worker.
 */
#ifndef WARD_RELOAD_H
#define WARD_RELOAD_H

#include <stdio.h>

struct host;

/* Re-reads the configuration and applies the difference. Messages for the
 * operator go to `out` (one per line, the first "ok" or "error"). 0 when
 * that is done; 1 when the plugins are being probed: out is complete when
 * done(arg) is called, from the loop. */
int reload_begin(struct host *h, FILE *out, void (*done)(void *arg), void *arg);
/* The host is exiting: a reload still waiting is dropped (done is not called). */
void reload_abandon(struct host *h);
/* Replaces workers that a reload removed or changed, once they have
 * stopped, and moves rolling reloads on (rollout.c); called by the loop
 * after events. */
void reload_finish(struct host *h);

#endif
