/*
 * options.c - the checks of worker sections against a plugin's declared
 * options, in the host (`ward run`, reload) and in `ward check`. How the
 * table travels from the probe process is common/optwire.c; running the
 * probes is daemon/probe.c.
 */
#define _GNU_SOURCE
#include "config/options.h"
#include "common/units.h"

#include <stdlib.h>
#include <string.h>

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
