/*
 * test_keys.c - the key table of host/config/config.c seen from outside:
 * `ward check --keys` lists every key docs/configuration.md documents, with
 * its type, default and meaning; and a reload's "same worker?" question
 * (config_worker_equal, driven by the table) notices a change in any key.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "support.h"

TestSuite(keys, .fini = wt_teardown);

/* The key in a row of a docs table ("| `name` | ..."), or NULL. */
static const char *doc_key(const char *line, char *key, size_t size)
{
	if (strncmp(line, "| `", 3) != 0)
		return NULL;
	const char *end = strchr(line + 3, '`');
	if (!end || (size_t)(end - line - 3) >= size)
		return NULL;
	snprintf(key, size, "%.*s", (int)(end - line - 3), line + 3);
	return key;
}

Test(keys, check_keys_lists_every_documented_key_with_type_default_and_meaning)
{
	char *out, *err;
	cr_assert_eq(wt_ward_in(NULL, &out, &err, "check --keys"), 0, "%s", err);
	cr_expect(strstr(out, "\n  restart              enum      on-failure  always, on-failure or never\n"), "%s", out);
	cr_expect(strstr(out, "\n  log_keep             number    5           rotated log files kept, 0..1000\n"), "%s", out);
	cr_expect(strstr(out, "\n  env.NAME             string    -           set environment variable NAME\n"), "%s", out);
	FILE *doc = fopen(SOURCE_DIR "/docs/configuration.md", "r");
	cr_assert(doc, "docs/configuration.md");
	char line[4096], key[64], want[80];
	int listed = 0;
	/* The two key tables of the page: [ward] keys and worker keys. */
	while (fgets(line, sizeof(line), doc) && !strstr(line, "## Environment"))
		if (doc_key(line, key, sizeof(key)) && !strchr(key, ' ')) {
			snprintf(want, sizeof(want), "\n  %-20s ", key);
			cr_expect(strstr(out, want), "docs/configuration.md documents '%s'; ward check --keys does not list it:\n%s",
				  key, out);
			listed++;
		}
	fclose(doc);
	cr_expect_geq(listed, 33, "only %d keys found in docs/configuration.md", listed);
}

static struct worker_conf *load_one(struct wt *t, const char *ini, struct config *cfg)
{
	wt_setup(t, ini);
	cr_assert_eq(config_load(t->conf, cfg), 0, "%s", cfg->errors.n ? cfg->errors.v[0] : "");
	struct worker_conf *w = config_find_worker(cfg, "w");
	cr_assert(w);
	return w;
}

Test(keys, a_change_in_any_worker_key_makes_the_worker_differ)
{
	static const char *const changed[] = {
		"autostart = no", "instances = 2", "interval = 2s", "restart = always", "restart_delay = 1s",
		"restart_delay_max = 1m", "max_restarts = unlimited", "restart_window = 5s", "init_timeout = 1s",
		"watchdog = 0", "stop_timeout = 1s", "listen = tcp:127.0.0.1:1", "user = nobody", "group = nogroup",
		"env.A = 1", "inherit_env = yes", "workdir = /tmp", "nice = 5", "limit.nofile = 64",
		"limit.memory = 1G", "limit.cpu = 1m", "limit.core = 0", "critical = yes", "colour = red",
	};
	const char *base = "[w]\nplugin = " FIXTURE_DIR "/busy.so\n";
	struct wt ta, tb;
	struct config a, b;
	struct worker_conf *wa = load_one(&ta, base, &a), *wb = load_one(&tb, base, &b);
	cr_expect(config_worker_equal(wa, wb), "the same section read twice differs");
	config_free(&b);
	for (size_t i = 0; i < sizeof(changed) / sizeof(*changed); i++) {
		char ini[256];
		snprintf(ini, sizeof(ini), "%s%s\n", base, changed[i]);
		wb = load_one(&tb, ini, &b);
		cr_expect(!config_worker_equal(wa, wb), "'%s' went unnoticed by a reload", changed[i]);
		config_free(&b);
	}
	config_free(&a);
}
