/*
 * rollout.h - a reload that changes a worker without stopping all of it
 * (host process): its instances are replaced one at a time, each new one
 * running before the next old one stops, and a changed `instances` starts
 * or stops only the difference. reload.c decides which workers; the loop
 * drives the rest from state changes, through reload_finish().
 */
#ifndef WARD_ROLLOUT_H
#define WARD_ROLLOUT_H

#include <stdbool.h>
#include <stdio.h>

#include "daemon/worker.h"

/* Whether w can take c this way: what the whole worker holds stays as it
 * is (its sockets, its user and group), and when its processes must be
 * replaced (replace) it has more than one instance, before or after. */
bool rollout_fits(const struct worker *w, const struct worker_conf *c, bool replace);
/* w takes c now. Instances past c->instances stop, from the highest, and
 * go once stopped; new ones are added and start if the worker runs. With
 * replace (settings or plugin file changed), every instance is replaced,
 * one at a time; without, those kept are not touched. One line for the
 * reload's reply goes to out. */
void rollout_begin(struct worker *w, const struct worker_conf *c, bool replace, FILE *out);
/* Takes the worker's rollout as far as it can go now; called by the loop
 * after events. Whether something is still to be done (then it must be
 * called again after the next state change). */
bool rollout_advance(struct worker *w);

#endif
