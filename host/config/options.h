/*
 * options.h - a plugin's declared keys (its .options table): written as text
 * by the probe process that loaded the plugin, read back by the host side,
 * printed by `ward test --describe`, and checked against worker sections
 * (unknown keys with the nearest suggestion, wrong types, missing required
 * keys) by `ward check`, `ward run` and reload, once probe.c has the table.
 */
#ifndef WARD_OPTIONS_H
#define WARD_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <ward.h>

#include "config/config.h"

struct option_decl {
	char *name, *dflt, *help, *choices; /* owned; dflt, help, choices may be NULL */
	enum ward_option_type type;
	bool required;
};

struct option_table {
	bool declared; /* the plugin has an .options table (possibly empty) */
	struct option_decl *v;
	size_t n;
};

/* In the probe process: the table as text, one option per line. */
void options_write(const struct ward_option *opts, FILE *out);
/* In the host: parses what options_write wrote. */
void options_read(const char *text, struct option_table *t);
void options_free(struct option_table *t);
void options_print(const struct option_table *t, FILE *out);
/* Adds an error to cfg for every key of w that the table refuses. A key of
 * [defaults] the table does not declare is no error: it is taken out of w. */
void options_check(struct config *cfg, struct worker_conf *w, const struct option_table *t);
/* Once every plugin of cfg was checked: a [defaults] key that every plugin
 * which saw it turned down, near a ward key, becomes one error (a misspelling). */
void options_check_shared_keys(struct config *cfg);
/* `ward check`: probes every distinct plugin of cfg (probe.c, waiting for
 * the verdicts) and checks its workers' keys. "plugin PATH (worker NAME):
 * REASON: MSG" lines are added to load_errors (may be NULL) for plugins
 * that do not load. Returns how many did not load. */
size_t options_check_all(struct config *cfg, struct strv *load_errors);

#endif
