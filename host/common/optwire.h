/*
 * optwire.h - a plugin's declared options (its .options table) as they
 * cross from the probe process to the host: one text line per option.
 * Shared by the probe process (writes) and the host (reads, prints).
 */
#ifndef WARD_OPTWIRE_H
#define WARD_OPTWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <ward.h>

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

#endif
