/*
 * options.h - a plugin's declared keys (its .options table, carried from the
 * probe process as common/optwire.h says) checked against worker sections
 * (unknown keys with the nearest suggestion, wrong types, missing required
 * keys) by `ward check`, `ward run` and reload, once daemon/probe.c has the
 * table.
 */
#ifndef WARD_OPTIONS_H
#define WARD_OPTIONS_H

#include "common/optwire.h"
#include "config/config.h"

/* Adds an error to cfg for every key of w that the table refuses. A key of
 * [defaults] the table does not declare is no error: it is taken out of w. */
void options_check(struct config *cfg, struct worker_conf *w, const struct option_table *t);
/* Once every plugin of cfg was checked: a [defaults] key that every plugin
 * which saw it turned down, near a ward key, becomes one error (a misspelling). */
void options_check_shared_keys(struct config *cfg);

#endif
