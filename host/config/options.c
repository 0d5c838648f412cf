/*
 * options.c - declared plugin options on the host side. The table crosses
 * from the probe process (probe.c) as tab-separated lines (tabs and newlines in the
 * strings are replaced), so the host never touches plugin memory. The
 * writing side runs in the probe child, the reading and checking side in the
 * host daemon or the CLI (`ward check`, `ward test`).
 */
#define _GNU_SOURCE
#include "config/options.h"
#include "daemon/probe.h"
#include "common/units.h"

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

static bool find_option_in_keys(const struct worker_conf *w, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < w->plugin_keys.n; i++)
		if (strncmp(w->plugin_keys.v[i], name, len) == 0 && w->plugin_keys.v[i][len] == '=')
			return true;
	return false;
}

static const struct option_decl *find_option(const struct option_table *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->v[i].name) == len && strncmp(t->v[i].name, name, len) == 0)
			return &t->v[i];
	return NULL;
}

static bool in_choices(const char *choices, const char *value)
{
	size_t len = strlen(value);
	for (const char *p = choices; p && *p;) {
		size_t n = strcspn(p, "|");
		if (n == len && strncmp(p, value, len) == 0)
			return true;
		p += n + (p[n] == '|');
	}
	return false;
}

/* NULL when value suits the declared type, else what was expected. */
static const char *type_mismatch(const struct option_decl *o, const char *value)
{
	long l;
	int b;
	uint64_t u;
	switch (o->type) {
	case WARD_OPT_INT: return parse_long(value, &l) < 0 ? "a whole number" : NULL;
	case WARD_OPT_BOOL: return parse_bool(value, &b) < 0 ? "yes or no" : NULL;
	case WARD_OPT_DURATION: return parse_duration_ms(value, &u) < 0 ? "a duration such as 250ms or 5s" : NULL;
	case WARD_OPT_SIZE: return parse_size(value, &u) < 0 ? "a size such as 512K or 10M" : NULL;
	case WARD_OPT_ENUM: return !in_choices(o->choices, value) ? "one of the listed choices" : NULL;
	case WARD_OPT_STRING: return NULL;
	}
	return NULL;
}

/* The closest declared option (or ward key) to a misspelt key, if any is close. */
static const char *suggest(const struct option_table *t, const char *key, size_t len)
{
	char *k = xstrndup(key, len);
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < t->n; i++) {
		size_t d = config_edit_distance(k, t->v[i].name);
		if (d < best_d) {
			best_d = d;
			best = t->v[i].name;
		}
	}
	const char *host = config_nearest_worker_key(k);
	free(k);
	return best ? best : host;
}

/* Takes plugin key i away from w: a [defaults] key its plugin does not declare. */
static void drop_plugin_key(struct config *cfg, struct worker_conf *w, size_t i)
{
	int shared = w->plugin_key_shared[i];
	cfg->shared_keys[shared].takers--;
	cfg->shared_keys[shared].refused++;
	explicit_bzero(w->plugin_keys.v[i], strlen(w->plugin_keys.v[i])); /* a value may be a secret */
	free(w->plugin_keys.v[i]);
	size_t rest = w->plugin_keys.n - i - 1;
	memmove(&w->plugin_keys.v[i], &w->plugin_keys.v[i + 1], rest * sizeof(*w->plugin_keys.v));
	memmove(&w->plugin_key_at[i], &w->plugin_key_at[i + 1], rest * sizeof(*w->plugin_key_at));
	memmove(&w->plugin_key_shared[i], &w->plugin_key_shared[i + 1], rest * sizeof(*w->plugin_key_shared));
	w->plugin_keys.n--;
}

/* A key the plugin does not declare, from the worker's own section: one
 * error (it replaces the near-miss warning about the same line). */
static void refuse_own_key(struct config *cfg, const struct worker_conf *w, size_t i, const char *key,
			   const struct option_table *t)
{
	struct origin at = w->plugin_key_at[i];
	const char *near = suggest(t, key, strlen(key));
	config_forget_warning(cfg, at);
	if (near)
		config_error(cfg, at, w->name, key, "not an option of this plugin; did you mean '%s'?", near);
	else
		config_error(cfg, at, w->name, key, "not an option of this plugin (`ward test --describe %s` lists them)", w->plugin);
}

void options_check(struct config *cfg, struct worker_conf *w, const struct option_table *t)
{
	if (!t->declared)
		return;
	for (size_t i = 0; i < w->plugin_keys.n;) {
		const char *kv = w->plugin_keys.v[i], *eq = strchr(kv, '=');
		size_t len = (size_t)(eq - kv);
		char *key = xstrndup(kv, len);
		const struct option_decl *o = find_option(t, kv, len);
		bool shared = w->plugin_key_shared[i] >= 0;
		const char *why;
		if (o)
			config_forget_warning(cfg, w->plugin_key_at[i]);
		if (!o && shared) {
			/* [defaults] is for every plugin that takes the key, not an error for the others */
			drop_plugin_key(cfg, w, i);
			free(key);
			continue;
		}
		if (!o)
			refuse_own_key(cfg, w, i, key, t);
		else if ((why = type_mismatch(o, eq + 1)))
			config_error(cfg, w->plugin_key_at[i], shared ? "defaults" : w->name, key,
				     "invalid value \"%s\": expected %s%s%s", eq + 1, why,
				     o->type == WARD_OPT_ENUM ? ": " : "", o->type == WARD_OPT_ENUM ? o->choices : "");
		free(key);
		i++;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].required && !find_option_in_keys(w, t->v[i].name))
			config_error(cfg, w->where, w->name, t->v[i].name, "required by the plugin but not set%s%s",
				     t->v[i].help ? ": " : "", t->v[i].help ? t->v[i].help : "");
}

/* After every plugin was checked: a [defaults] key that every plugin which
 * saw it turned down, one or two letters from a ward key, is that ward key
 * misspelt. One error, instead of the warning config_load gave. */
void options_check_shared_keys(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nshared_keys; i++) {
		const struct shared_key *k = &cfg->shared_keys[i];
		const char *near = k->refused && !k->takers ? config_nearest_worker_key(k->key) : NULL;
		if (!near)
			continue;
		config_forget_warning(cfg, k->at);
		config_error(cfg, k->at, "defaults", k->key, "not a ward key, and no worker's plugin declares it; did you mean '%s'?",
			     near);
	}
}

size_t options_check_all(struct config *cfg, struct strv *load_errors)
{
	if (load_errors)
		return probe_check_config(cfg, load_errors);
	struct strv unused = {0}; /* the caller lets plugins that do not load fail at start */
	size_t failed = probe_check_config(cfg, &unused);
	strv_free(&unused);
	return failed;
}
