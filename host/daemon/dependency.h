/*
 * dependency.h - the order `requires` puts between workers: a worker starts
 * once everything it requires is running, pulls in what it requires, is
 * stopped (and later brought back) when a dependency fails for good, and
 * the host stops dependants before what they depend on. This file only
 * decides; worker.c carries the decisions out. Host daemon only.
 */
#ifndef WARD_DEPENDENCY_H
#define WARD_DEPENDENCY_H

#include "daemon/worker.h"

/* Resolves every worker's `requires` names into pointers (both directions). */
void dependency_link(struct host *h);
/* Asks for a start that happens as soon as the dependencies allow it. */
void dependency_request_start(struct worker *w, enum activation activation);
/* Host shutdown: every worker stops, dependants first. */
void dependency_request_stop_all(struct host *h);
/* Applies everything that can happen now; called by the loop after state changes. */
void dependency_settle(struct host *h);

#endif
