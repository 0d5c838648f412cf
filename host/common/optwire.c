/*
 * optwire.c - a plugin's declared options (its .options table) on the wire
 * between processes: written as text by the probe process that loaded the
 * plugin (worker/probe.c), read back by the host (daemon/probe.c), printed
 * by `ward test --describe`. Tabs and newlines in the strings are replaced,
 * so a line is one option and the host never touches plugin memory.
 */
#define _GNU_SOURCE
#include "common/optwire.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"string", "int", "bool", "duration", "size", "enum"};

static const char *type_name(enum ward_option_type t)
{
	return (unsigned)t < 6 ? type_names[t] : "string";
}

static void write_field(FILE *out, const char *s)
{
	for (; s && *s; s++)
		fputc(*s == '\t' || *s == '\n' ? ' ' : *s, out);
	fputc('\t', out);
}

void options_write(const struct ward_option *opts, FILE *out)
{
	if (!opts)
		return;
	fputs("declared\n", out);
	for (const struct ward_option *o = opts; o->name; o++) {
		fprintf(out, "%d\t%d\t", (int)o->type, o->required ? 1 : 0);
		write_field(out, o->name);
		write_field(out, o->default_value ? o->default_value : "\x01");
		write_field(out, o->choices ? o->choices : "");
		write_field(out, o->help ? o->help : "");
		fputc('\n', out);
	}
}

static char *take_field(char **p)
{
	char *start = *p, *tab = strchr(start, '\t');
	if (!tab)
		return NULL;
	*tab = '\0';
	*p = tab + 1;
	return start;
}

void options_read(const char *text, struct option_table *t)
{
	*t = (struct option_table){0};
	if (strncmp(text, "declared\n", 9) != 0)
		return;
	t->declared = true;
	char *copy = xstrdup(text + 9), *save;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int type, required;
		char *p = strchr(line, '\t');
		if (sscanf(line, "%d\t%d\t", &type, &required) != 2 || !p || !(p = strchr(p + 1, '\t')))
			continue;
		p++;
		char *name = take_field(&p), *dflt = take_field(&p), *choices = take_field(&p), *help = take_field(&p);
		if (!name || !dflt || !choices || !help)
			continue;
		t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
		t->v[t->n++] = (struct option_decl){
			.name = xstrdup(name),
			.dflt = strcmp(dflt, "\x01") ? xstrdup(dflt) : NULL,
			.choices = *choices ? xstrdup(choices) : NULL,
			.help = *help ? xstrdup(help) : NULL,
			.type = (enum ward_option_type)type,
			.required = required,
		};
	}
	free(copy);
}

void options_free(struct option_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].dflt);
		free(t->v[i].help);
		free(t->v[i].choices);
	}
	free(t->v);
	*t = (struct option_table){0};
}

void options_print(const struct option_table *t, FILE *out)
{
	if (!t->declared) {
		fprintf(out, "options: none declared (every key is passed to the plugin unchecked)\n");
		return;
	}
	fprintf(out, "options:\n");
	for (size_t i = 0; i < t->n; i++) {
		const struct option_decl *o = &t->v[i];
		fprintf(out, "  %-20s %-9s %s%s%s%s%s\n", o->name, o->type == WARD_OPT_ENUM && o->choices ? o->choices : type_name(o->type),
			o->required ? "required" : "default ", o->required ? "" : o->dflt ? o->dflt : "(none)",
			o->help ? "  - " : "", o->help ? o->help : "", "");
	}
}
