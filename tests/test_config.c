/*
 * test_config.c - what a configuration directory means (docs/configuration.md): the
 * defaults, how [defaults], worker sections and later files combine, and the
 * errors: every one of them is reported, each naming its file, its line, its
 * key and the reason. The `config` suite calls config_load() on a directory of
 * its own with fake plugin files (config_load never opens them); the `check`
 * suite runs `ward check` and `ward run` on real fixture plugins.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ward_harness.h>

#include "config/config.h"
#include "worker/childspec.h"

/* ---- the `config` suite's fixture: a directory and what config_load made of it ---- */

static char dir[PATH_MAX]; /* the configuration directory, as realpath gives it */
static struct config cfg;
static bool loaded;
static int load_rc;

static void make_dir(void)
{
	char tmpl[] = "/tmp/ward-config-test-XXXXXX";
	cr_assert(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	cr_assert(realpath(tmpl, dir), "realpath %s: %s", tmpl, strerror(errno));
	loaded = false;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_dir(void)
{
	if (loaded)
		config_free(&cfg);
	loaded = false;
	if (dir[0])
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

TestSuite(config, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* Writes DIR/rel (creating the directories on the way) with text. */
static void write_file(const char *rel, const char *text)
{
	char path[PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* A plugin file only has to exist as a regular file for config_load. */
static void fake_plugin(const char *rel)
{
	write_file(rel, "not really a plugin\n");
}

static char *path_in_dir(const char *rel)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
	return p;
}

static int load(void)
{
	if (loaded)
		config_free(&cfg);
	load_rc = config_load(dir, &cfg);
	loaded = true;
	return load_rc;
}

/* Every error (or warning), one a line, for failure messages. */
static char *all_of(const struct strv *sv)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (sv->n == 0)
		fputs("    (none)\n", m);
	for (size_t i = 0; i < sv->n; i++)
		fprintf(m, "    %s\n", sv->v[i]);
	fclose(m);
	return buf;
}

static bool has(const struct strv *sv, const char *s)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return true;
	return false;
}

/* Loads the directory, asserting it is valid. */
static void load_valid(void)
{
	int rc = load();
	cr_assert_eq(rc, 0, "the configuration should be valid; errors:\n%s", all_of(&cfg.errors));
	cr_assert_eq(cfg.errors.n, 0);
}

static struct worker_conf *worker(const char *name)
{
	struct worker_conf *w = config_find_worker(&cfg, name);
	cr_assert_not_null(w, "no worker '%s' (%zu workers)", name, cfg.nworkers);
	return w;
}

/*
 * Loads the directory (once per test), asserting it is invalid, and returns the error
 * reported at FILE:LINE ("DIR/FILE:LINE: ..."), which must also contain
 * `what` (the "[section] key:" part, or a name) and `why` (the reason).
 */
static const char *load_expecting_error(const char *file, int line, const char *what, const char *why)
{
	int rc = loaded ? load_rc : load();
	cr_assert_eq(rc, -1, "config_load accepted a configuration with an error at %s:%d", file, line);
	char *prefix;
	cr_assert(asprintf(&prefix, "%s/%s:%d: ", dir, file, line) > 0);
	for (size_t i = 0; i < cfg.errors.n; i++) {
		const char *e = cfg.errors.v[i];
		if (strncmp(e, prefix, strlen(prefix)) == 0 && strstr(e, what) && strstr(e, why)) {
			free(prefix);
			return e;
		}
	}
	cr_assert_fail("no error \"%s...%s...%s\"; the errors were:\n%s", prefix, what, why, all_of(&cfg.errors));
	return NULL;
}

/* ---- defaults ---- */

Test(config, every_worker_key_has_its_documented_default)
{
	write_file("ward.ini", "[ward]\nautoload = yes\n");
	fake_plugin("plugins/w.so");
	load_valid();
	cr_assert_eq(cfg.nworkers, 1);
	struct worker_conf *w = worker("w");
	char *plugin = path_in_dir("plugins/w.so");
	cr_expect_str_eq(w->plugin, plugin, "plugin defaults to the worker's name in plugin_dir");
	cr_expect_eq(w->instances, 1);
	cr_expect_eq(w->interval_ms, 1000);
	cr_expect_eq(w->restart, RESTART_ON_FAILURE);
	cr_expect_eq(w->restart_delay_ms, 100);
	cr_expect_eq(w->restart_delay_max_ms, 30000);
	cr_expect_eq(w->max_restarts, 10);
	cr_expect_eq(w->restart_window_ms, 60000);
	cr_expect_eq(w->init_timeout_ms, 30000);
	cr_expect_eq(w->watchdog_ms, 60000);
	cr_expect_eq(w->stop_timeout_ms, 10000);
	cr_expect(w->autostart, "autostart defaults to yes");
	cr_expect_not(w->inherit_env, "inherit_env defaults to no");
	cr_expect_eq(w->requires.n, 0);
	cr_expect_eq(w->listen.n, 0);
	cr_expect_null(w->user);
	cr_expect_null(w->group);
	cr_expect_null(w->workdir, "workdir defaults to the worker's state directory (NULL)");
	cr_expect_not(w->nice_set);
	cr_expect_not(w->limit_nofile.set);
	cr_expect_not(w->limit_memory.set);
	cr_expect_not(w->limit_cpu.set);
	cr_expect_not(w->limit_core.set);
	cr_expect_eq(w->env.n, 0);
	cr_expect_eq(w->plugin_keys.n, 0);
	free(plugin);
}

Test(config, every_host_setting_has_its_documented_default)
{
	write_file("ward.ini", "[ward]\n");
	fake_plugin("plugins/w.so");
	load_valid();
	char *plugins = path_in_dir("plugins"), *state = path_in_dir("state"), *logs = path_in_dir("state/logs");
	cr_expect_str_eq(cfg.dir, dir);
	cr_expect_str_eq(cfg.plugin_dir, plugins);
	cr_expect_str_eq(cfg.state_dir, state);
	cr_expect_str_eq(cfg.log_dir, logs);
	cr_expect(cfg.autoload, "autoload defaults to yes");
	cr_expect_eq(cfg.nworkers, 1, "with autoload, plugins/w.so is a worker");
	cr_expect(cfg.strict_permissions, "strict_permissions defaults to yes (docs/configuration.md)");
	cr_expect_eq(cfg.log_max_size, 10ULL << 20);
	cr_expect_eq(cfg.log_keep, 5);
	cr_expect_eq(cfg.history_keep, 10000);
	free(plugins);
	free(state);
	free(logs);
}

/* ---- how sections and files combine ---- */

Test(config, defaults_apply_to_every_worker_and_a_worker_section_overrides_them)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[defaults]\n"
		   "interval = 5s\n"
		   "restart = always\n"
		   "color = blue\n"
		   "[a]\n"
		   "plugin = p\n"
		   "[b]\n"
		   "plugin = p\n"
		   "interval = 250ms\n"
		   "color = red\n");
	fake_plugin("plugins/p.so");
	load_valid();
	cr_assert_eq(cfg.nworkers, 2);
	struct worker_conf *a = worker("a"), *b = worker("b");
	cr_expect_eq(a->interval_ms, 5000);
	cr_expect_eq(a->restart, RESTART_ALWAYS);
	cr_expect(has(&a->plugin_keys, "color=blue"), "a: plugin keys:\n%s", all_of(&a->plugin_keys));
	cr_expect_eq(b->interval_ms, 250, "the worker's own value wins over [defaults]");
	cr_expect_eq(b->restart, RESTART_ALWAYS, "keys the worker does not set still come from [defaults]");
	cr_expect(has(&b->plugin_keys, "color=red"), "b: plugin keys:\n%s", all_of(&b->plugin_keys));
	cr_expect_not(has(&b->plugin_keys, "color=blue"), "b: the overridden [defaults] plugin key is still there:\n%s",
		      all_of(&b->plugin_keys));
	cr_expect_eq(a->instances, 1, "keys set nowhere keep the built-in default");
}

Test(config, later_files_override_earlier_ones_key_by_key)
{
	/* Written out of order: lexical order of the names decides, not creation. */
	write_file("20-override.ini",
		   "[w]\n"
		   "instances = 3\n"
		   "[ward]\n"
		   "log_keep = 7\n");
	write_file("10-base.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "log_keep = 2\n"
		   "[w]\n"
		   "plugin = p\n"
		   "instances = 2\n"
		   "interval = 5s\n"
		   "restart = never\n");
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_expect_eq(w->instances, 3, "the later file's value wins");
	cr_expect_eq(w->interval_ms, 5000, "keys the later file does not set are kept");
	cr_expect_eq(w->restart, RESTART_NEVER, "keys the later file does not set are kept");
	cr_expect_eq(cfg.log_keep, 7, "[ward] is overridden key by key too");
	cr_expect_not(cfg.autoload);
	cr_expect_eq(cfg.files.n, 2);
}

Test(config, autoload_makes_every_plugin_file_a_worker_named_after_its_stem)
{
	write_file("ward.ini", "[ward]\nautoload = yes\n");
	fake_plugin("plugins/alpha.so");
	fake_plugin("plugins/beta.so");
	write_file("plugins/README.txt", "not a plugin\n");
	load_valid();
	cr_assert_eq(cfg.nworkers, 2, "expected alpha and beta only");
	char *alpha = path_in_dir("plugins/alpha.so"), *beta = path_in_dir("plugins/beta.so");
	cr_expect_str_eq(worker("alpha")->plugin, alpha);
	cr_expect_str_eq(worker("beta")->plugin, beta);
	free(alpha);
	free(beta);
}

Test(config, enabled_no_removes_an_autoloaded_worker)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = yes\n"
		   "[beta]\n"
		   "enabled = no\n");
	fake_plugin("plugins/alpha.so");
	fake_plugin("plugins/beta.so");
	load_valid();
	cr_expect_eq(cfg.nworkers, 1);
	cr_expect_not_null(config_find_worker(&cfg, "alpha"));
	cr_expect_null(config_find_worker(&cfg, "beta"), "a disabled worker is not a worker at all");
}

Test(config, without_autoload_plugin_files_are_not_workers_by_themselves)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[alpha]\n"
		   "instances = 2\n");
	fake_plugin("plugins/alpha.so");
	fake_plugin("plugins/beta.so");
	load_valid();
	cr_expect_eq(cfg.nworkers, 1);
	cr_expect_eq(worker("alpha")->instances, 2);
	cr_expect_null(config_find_worker(&cfg, "beta"));
}

Test(config, a_section_with_no_keys_still_defines_a_worker)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[alpha]\n");
	fake_plugin("plugins/alpha.so");
	load_valid();
	cr_expect_eq(cfg.nworkers, 1, "[alpha] alone should be a worker using plugins/alpha.so");
	cr_expect_not_null(config_find_worker(&cfg, "alpha"));
}

Test(config, plugin_names_another_plugin_file_which_several_workers_may_share)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[w1]\n"
		   "plugin = other\n"
		   "[w2]\n"
		   "plugin = other\n");
	fake_plugin("plugins/other.so");
	load_valid();
	char *other = path_in_dir("plugins/other.so");
	cr_expect_str_eq(worker("w1")->plugin, other);
	cr_expect_str_eq(worker("w2")->plugin, other);
	free(other);
}

Test(config, a_plugin_path_with_a_slash_is_relative_to_the_config_dir)
{
	char *abs = path_in_dir("elsewhere/abs.so");
	char *ini;
	cr_assert(asprintf(&ini,
			   "[ward]\n"
			   "autoload = no\n"
			   "[rel]\n"
			   "plugin = custom/thing.so\n"
			   "[abs]\n"
			   "plugin = %s\n",
			   abs) > 0);
	write_file("ward.ini", ini);
	fake_plugin("custom/thing.so");
	fake_plugin("elsewhere/abs.so");
	load_valid();
	char *rel = path_in_dir("custom/thing.so");
	cr_expect_str_eq(worker("rel")->plugin, rel, "relative to the configuration directory, not plugin_dir");
	cr_expect_str_eq(worker("abs")->plugin, abs, "an absolute path is kept as it is");
	free(rel);
	free(abs);
	free(ini);
}

Test(config, env_keys_become_NAME_equals_value_in_the_workers_environment)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[defaults]\n"
		   "env.SHARED = everyone\n"
		   "[w]\n"
		   "plugin = p\n"
		   "env.FOO = bar\n"
		   "env.GREETING = hello world\n");
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_expect_eq(w->env.n, 3, "env:\n%s", all_of(&w->env));
	cr_expect(has(&w->env, "FOO=bar"), "env:\n%s", all_of(&w->env));
	cr_expect(has(&w->env, "GREETING=hello world"), "env:\n%s", all_of(&w->env));
	cr_expect(has(&w->env, "SHARED=everyone"), "env from [defaults]:\n%s", all_of(&w->env));
	cr_expect_eq(w->plugin_keys.n, 0, "env.* keys are not plugin keys:\n%s", all_of(&w->plugin_keys));
}

Test(config, keys_that_are_not_wards_are_handed_to_the_plugin)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[w]\n"
		   "plugin = p\n"
		   "url = http://example.com/x?a=b\n"
		   "batch = 20\n"
		   "interval = 2s\n");
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_expect_eq(w->plugin_keys.n, 2, "plugin keys:\n%s", all_of(&w->plugin_keys));
	cr_expect(has(&w->plugin_keys, "url=http://example.com/x?a=b"), "plugin keys:\n%s", all_of(&w->plugin_keys));
	cr_expect(has(&w->plugin_keys, "batch=20"), "plugin keys:\n%s", all_of(&w->plugin_keys));
	cr_expect_eq(w->interval_ms, 2000);
}

Test(config, max_restarts_unlimited_is_minus_one)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[forever]\n"
		   "plugin = p\n"
		   "max_restarts = unlimited\n"
		   "[few]\n"
		   "plugin = p\n"
		   "max_restarts = 3\n");
	fake_plugin("plugins/p.so");
	load_valid();
	cr_expect_eq(worker("forever")->max_restarts, -1);
	cr_expect_eq(worker("few")->max_restarts, 3);
}

Test(config, worker_values_are_parsed_with_their_units)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[w]\n"
		   "plugin = p\n"
		   "instances = 1024\n"
		   "restart_delay = 250ms\n"
		   "watchdog = 0\n"
		   "stop_timeout = 2m\n"
		   "autostart = off\n"
		   "inherit_env = TRUE\n"
		   "requires = a, b ,c\n"
		   "[a]\n"
		   "plugin = p\n"
		   "[b]\n"
		   "plugin = p\n"
		   "[c]\n"
		   "plugin = p\n");
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_expect_eq(w->instances, 1024, "1024 instances is the documented maximum, and allowed");
	cr_expect_eq(w->restart_delay_ms, 250);
	cr_expect_eq(w->watchdog_ms, 0, "watchdog = 0 turns it off");
	cr_expect_eq(w->stop_timeout_ms, 120000);
	cr_expect_not(w->autostart);
	cr_expect(w->inherit_env);
	cr_assert_eq(w->requires.n, 3, "requires:\n%s", all_of(&w->requires));
	cr_expect_str_eq(w->requires.v[0], "a");
	cr_expect_str_eq(w->requires.v[1], "b");
	cr_expect_str_eq(w->requires.v[2], "c");
}

Test(config, relative_host_paths_are_made_absolute_against_the_config_dir)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "state_dir = var/ward\n"
		   "plugin_dir = lib\n");
	load_valid();
	char *state = path_in_dir("var/ward"), *logs = path_in_dir("var/ward/logs"), *plugins = path_in_dir("lib");
	cr_expect_str_eq(cfg.state_dir, state);
	cr_expect_str_eq(cfg.plugin_dir, plugins);
	cr_expect_str_eq(cfg.log_dir, logs, "log_dir defaults to <state_dir>/logs");
	free(state);
	free(logs);
	free(plugins);
}

Test(config, log_dir_defaults_to_logs_under_an_absolute_state_dir_and_can_be_set)
{
	write_file("a.ini", "[ward]\nautoload = no\nstate_dir = /srv/ward-state\n");
	load_valid();
	cr_expect_str_eq(cfg.state_dir, "/srv/ward-state");
	cr_expect_str_eq(cfg.log_dir, "/srv/ward-state/logs");

	write_file("b.ini", "[ward]\nlog_dir = journal\n");
	load_valid();
	char *journal = path_in_dir("journal");
	cr_expect_str_eq(cfg.log_dir, journal, "an explicit relative log_dir is relative to the config dir");
	free(journal);
}

Test(config, indented_lines_are_keys_not_continuations_of_the_line_above)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "  autoload = no\n"
		   "[w]\n"
		   "plugin = p\n"
		   "    interval = 5s\n"
		   "\tcolor = blue\n");
	fake_plugin("plugins/p.so");
	load_valid();
	cr_expect_not(cfg.autoload);
	struct worker_conf *w = worker("w");
	char *p = path_in_dir("plugins/p.so");
	cr_expect_str_eq(w->plugin, p, "the indented line was glued to plugin's value");
	cr_expect_eq(w->interval_ms, 5000);
	cr_expect(has(&w->plugin_keys, "color=blue"), "plugin keys:\n%s", all_of(&w->plugin_keys));
	free(p);
}

/* ---- warnings ---- */

Test(config, a_near_miss_of_a_worker_key_warns_and_still_goes_to_the_plugin)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[w]\n"
		   "plugin = p\n"
		   "restart_dealy = 5s\n");
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_expect(has(&w->plugin_keys, "restart_dealy=5s"), "plugin keys:\n%s", all_of(&w->plugin_keys));
	cr_expect_eq(w->restart_delay_ms, 100, "the misspelt key must not set restart_delay");
	cr_assert_eq(cfg.warnings.n, 1, "warnings:\n%s", all_of(&cfg.warnings));
	const char *warning = cfg.warnings.v[0];
	char *prefix;
	cr_assert(asprintf(&prefix, "%s/ward.ini:5: [w] restart_dealy: ", dir) > 0);
	cr_expect(strncmp(warning, prefix, strlen(prefix)) == 0, "expected \"%s...\", got \"%s\"", prefix, warning);
	cr_expect(strstr(warning, "did you mean 'restart_delay'?"), "no suggestion in \"%s\"", warning);
	free(prefix);
}

Test(config, a_plugin_key_far_from_any_ward_key_gets_no_warning)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[w]\n"
		   "plugin = p\n"
		   "database_url = sqlite:x\n");
	fake_plugin("plugins/p.so");
	load_valid();
	cr_expect_eq(cfg.warnings.n, 0, "warnings:\n%s", all_of(&cfg.warnings));
}

/* ---- errors: each names its file, its line, its key and why ---- */

Test(config, a_line_without_an_equals_sign_is_an_error_at_its_line)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "just some words\n");   /* 5 */
	fake_plugin("plugins/p.so");
	const char *e = load_expecting_error("ward.ini", 5, "\"just some words\"", "expected 'key = value'");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
	(void)e;
}

Test(config, a_section_header_without_a_closing_bracket_is_an_error_at_its_line)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "\n"                    /* 3 */
		   "[w\n"                  /* 4 */
		   "plugin = p\n");        /* 5 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 4, "section header", "no closing ']'");
}

Test(config, an_unknown_host_setting_is_an_error_suggesting_the_nearest_one)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "plugin_dri = lib\n");  /* 3 */
	load_expecting_error("ward.ini", 3, "[ward] plugin_dri: ", "did you mean 'plugin_dir'?");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, an_unknown_host_setting_far_from_any_is_an_error_without_a_suggestion)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "instances = 4\n");     /* 3 */
	const char *e = load_expecting_error("ward.ini", 3, "[ward] instances: ", "unknown host setting");
	cr_expect_null(strstr(e, "did you mean"), "a suggestion for a key nothing like it: %s", e);
}

Test(config, a_bad_duration_is_an_error_naming_the_key_and_value)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "interval = 5 seconds\n"); /* 5 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[w] interval: ", "\"5 seconds\"");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, a_bad_boolean_is_an_error_naming_the_key_and_value)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = perhaps\n"  /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "\n"                    /* 5 */
		   "autostart = sure\n");  /* 6 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 6, "[w] autostart: ", "\"sure\"");
	load_expecting_error("ward.ini", 2, "[ward] autoload: ", "\"perhaps\"");
}

Test(config, instances_must_be_from_1_to_1024)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[none]\n"              /* 3 */
		   "plugin = p\n"          /* 4 */
		   "instances = 0\n"       /* 5 */
		   "[many]\n"              /* 6 */
		   "plugin = p\n"          /* 7 */
		   "instances = 2000\n");  /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[none] instances: ", "\"0\"");
	load_expecting_error("ward.ini", 8, "[many] instances: ", "\"2000\"");
	cr_expect_eq(cfg.errors.n, 2, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, restart_must_be_always_on_failure_or_never)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "restart = sometimes\n"); /* 5 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[w] restart: ", "always, on-failure or never");
}

Test(config, requires_must_name_an_existing_worker)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[web]\n"               /* 3 */
		   "plugin = p\n"          /* 4 */
		   "requires = db\n");     /* 5 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[web] requires: ", "'db'");
}

Test(config, requires_cannot_name_a_disabled_worker)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[web]\n"               /* 3 */
		   "plugin = p\n"          /* 4 */
		   "requires = db\n"       /* 5 */
		   "[db]\n"                /* 6 */
		   "plugin = p\n"          /* 7 */
		   "enabled = no\n");      /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[web] requires: ", "'db'");
}

Test(config, a_requires_cycle_is_an_error_naming_the_cycle)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[a]\n"                 /* 3 */
		   "requires = b\n"        /* 4 */
		   "[b]\n"                 /* 5 */
		   "requires = a\n");      /* 6 */
	fake_plugin("plugins/a.so");
	fake_plugin("plugins/b.so");
	int rc = load();
	cr_assert_eq(rc, -1, "a requires cycle was accepted");
	bool found = false;
	for (size_t i = 0; i < cfg.errors.n; i++) {
		const char *e = cfg.errors.v[i];
		char *at4, *at6;
		cr_assert(asprintf(&at4, "%s/ward.ini:4: [a] requires: ", dir) > 0);
		cr_assert(asprintf(&at6, "%s/ward.ini:6: [b] requires: ", dir) > 0);
		bool placed = strncmp(e, at4, strlen(at4)) == 0 || strncmp(e, at6, strlen(at6)) == 0;
		if (placed && (strstr(e, "a -> b -> a") || strstr(e, "b -> a -> b")))
			found = true;
		free(at4);
		free(at6);
	}
	cr_expect(found, "no error at ward.ini:4 or :6 naming the cycle a -> b -> a; errors:\n%s", all_of(&cfg.errors));
	cr_expect_eq(cfg.errors.n, 1, "one cycle is one error; errors:\n%s", all_of(&cfg.errors));
}

Test(config, a_missing_plugin_file_is_an_error_at_the_plugin_line)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "interval = 2s\n"       /* 4 */
		   "plugin = nothere\n");  /* 5 */
	fake_plugin("plugins/p.so");
	char *missing = path_in_dir("plugins/nothere.so");
	load_expecting_error("ward.ini", 5, "[w] plugin: ", missing);
	free(missing);
}

Test(config, a_plugin_that_is_not_a_regular_file_is_an_error)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = dir.so\n");   /* 4 */
	fake_plugin("dir.so/inside");
	load_expecting_error("ward.ini", 4, "[w] plugin: ", "not a regular file");
}

Test(config, a_key_before_any_section_is_an_error_naming_the_key)
{
	write_file("ward.ini",
		   "\n"                    /* 1 */
		   "interval = 5s\n"       /* 2 */
		   "[ward]\n"              /* 3 */
		   "autoload = no\n");     /* 4 */
	load_expecting_error("ward.ini", 2, "interval", "outside any section");
}

Test(config, an_invalid_worker_name_is_an_error_at_its_section)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[-w]\n"                /* 3 */
		   "plugin = p\n");        /* 4 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 3, "[-w]", "invalid worker name");
}

Test(config, every_error_is_reported_each_at_its_own_line)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "interval = soon\n"     /* 5 */
		   "and here a stray line\n" /* 6 */
		   "restart = sometimes\n" /* 7 */
		   "instances = 2\n");     /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[w] interval: ", "\"soon\"");
	load_expecting_error("ward.ini", 6, "\"and here a stray line\"", "expected 'key = value'");
	load_expecting_error("ward.ini", 7, "[w] restart: ", "\"sometimes\"");
	cr_expect_eq(cfg.errors.n, 3, "three mistakes are three errors:\n%s", all_of(&cfg.errors));
}

Test(config, errors_in_several_files_each_name_their_own_file)
{
	write_file("10-a.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "log_keep = lots\n");   /* 3 */
	write_file("20-b.ini",
		   "[w]\n"                 /* 1 */
		   "plugin = p\n"          /* 2 */
		   "watchdog = -1\n");     /* 3 */
	fake_plugin("plugins/p.so");
	load_expecting_error("10-a.ini", 3, "[ward] log_keep: ", "\"lots\"");
	load_expecting_error("20-b.ini", 3, "[w] watchdog: ", "\"-1\"");
	cr_expect_eq(cfg.errors.n, 2, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, a_bad_value_in_defaults_is_reported_once_not_once_per_worker)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[defaults]\n"          /* 3 */
		   "stop_timeout = later\n" /* 4 */
		   "[a]\n"                 /* 5 */
		   "plugin = p\n"          /* 6 */
		   "[b]\n"                 /* 7 */
		   "plugin = p\n"          /* 8 */
		   "[c]\n"                 /* 9 */
		   "plugin = p\n");        /* 10 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 4, "[defaults] stop_timeout: ", "\"later\"");
	cr_expect_eq(cfg.errors.n, 1, "one mistake, one error:\n%s", all_of(&cfg.errors));
}

Test(config, a_directory_without_ini_files_is_an_error)
{
	write_file("notes.txt", "[ward]\n");
	fake_plugin("plugins/w.so");
	int rc = load();
	cr_expect_eq(rc, -1);
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
	cr_expect(cfg.errors.n && strstr(cfg.errors.v[0], "no *.ini files"), "errors:\n%s", all_of(&cfg.errors));
}

/* ---- `ward check` and `ward run` on real fixture plugins ---- */

TestSuite(check, .fini = wt_teardown, .timeout = 60);

static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Three mistakes in workers.ini, at lines 3, 4 and 7; plugins are real. */
static void write_invalid_workers(void)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "workers.ini",
		      "[web]\n"               /* 1 */
		      "plugin = idle\n"       /* 2 */
		      "interval = soon\n"     /* 3 */
		      "restart = sometimes\n" /* 4 */
		      "[mail]\n"              /* 5 */
		      "plugin = idle\n"       /* 6 */
		      "instances = 0\n");     /* 7 */
}

Test(check, check_lists_the_workers_of_a_valid_configuration_and_exits_0)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "workers.ini",
		      "[web]\n"
		      "plugin = idle\n"
		      "instances = 2\n"
		      "[mail]\n"
		      "plugin = conf_echo\n"
		      "autostart = no\n");
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_assert_eq(rc, 0, "ward check failed on a valid configuration:\nstdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(out, "configuration is valid: 2 workers"), "stdout:\n%s", out);
	cr_expect(strstr(out, "web") && strstr(out, FIXTURE_DIR "/idle.so (2 instances)"), "stdout:\n%s", out);
	cr_expect(strstr(out, "mail") && strstr(out, FIXTURE_DIR "/conf_echo.so (1 instance, not autostarted)"),
		  "stdout:\n%s", out);
	cr_expect_null(strstr(err, "error"), "stderr:\n%s", err);
	cr_expect_neq(access(wt.state, F_OK), 0, "ward check must not create the state directory");
}

Test(check, check_prints_every_error_with_file_and_line_and_exits_1)
{
	write_invalid_workers();
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_expect_eq(rc, 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "workers.ini:3: [web] interval: "), "stderr:\n%s", err);
	cr_expect(strstr(err, "workers.ini:4: [web] restart: "), "stderr:\n%s", err);
	cr_expect(strstr(err, "workers.ini:7: [mail] instances: "), "stderr:\n%s", err);
	cr_expect_eq(count_lines_with(err, "ward: error: "), 3, "exactly three errors expected; stderr:\n%s", err);
	cr_expect(strstr(err, "3 errors"), "no error count; stderr:\n%s", err);
	cr_expect_null(strstr(out, "configuration is valid"), "stdout:\n%s", out);
}

Test(check, check_reports_a_missing_plugin_with_its_file_and_line)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "workers.ini",
		      "[web]\n"                /* 1 */
		      "plugin = no_such_plugin\n"); /* 2 */
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_expect_eq(rc, 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "workers.ini:2: [web] plugin: "), "stderr:\n%s", err);
	cr_expect(strstr(err, FIXTURE_DIR "/no_such_plugin.so"), "stderr:\n%s", err);
}

Test(check, run_with_an_invalid_configuration_exits_1_and_starts_nothing)
{
	write_invalid_workers();
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "run");
	cr_expect_eq(rc, 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "workers.ini:3: [web] interval: "), "stderr:\n%s", err);
	cr_expect(strstr(err, "workers.ini:4: [web] restart: "), "stderr:\n%s", err);
	cr_expect(strstr(err, "workers.ini:7: [mail] instances: "), "stderr:\n%s", err);
	cr_expect(strstr(err, "nothing was started"), "stderr:\n%s", err);
	cr_expect_neq(access(wt.state, F_OK), 0, "the state directory was created: something was started");
}

/* ---- listen addresses belong to one worker ---- */

Test(config, an_invalid_listen_address_is_an_error_at_the_listen_line)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin = p\n"          /* 4 */
		   "requires = x\n"        /* 5 */
		   "listen = bogus\n"      /* 6 */
		   "[x]\n"                 /* 7 */
		   "plugin = p\n");        /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 6, "[w] listen: ", "expected unix:PATH or tcp:HOST:PORT");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, two_workers_on_one_unix_path_are_an_error_naming_both)
{
	write_file("ward.ini",
		   "[ward]\n"                         /* 1 */
		   "autoload = no\n"                  /* 2 */
		   "[a]\n"                            /* 3 */
		   "plugin = p\n"                     /* 4 */
		   "listen = unix:run/a.sock\n"       /* 5 */
		   "[b]\n"                            /* 6 */
		   "plugin = p\n"                     /* 7 */
		   "listen = unix:./run//x/../a.sock\n"); /* 8: the same file, written another way */
	fake_plugin("plugins/p.so");
	const char *e = load_expecting_error("ward.ini", 8, "[b] listen: ", "worker 'a' listens there too");
	char *a_at;
	cr_assert(asprintf(&a_at, "%s/ward.ini:5", dir) > 0);
	cr_expect(strstr(e, a_at), "the error should say where worker a's listen line is: %s", e);
	free(a_at);
	cr_expect_eq(cfg.errors.n, 1, "one clash, one error:\n%s", all_of(&cfg.errors));
}

Test(config, a_relative_and_an_absolute_unix_path_to_one_file_clash)
{
	char *ini;
	cr_assert(asprintf(&ini,
			   "[ward]\n"                     /* 1 */
			   "autoload = no\n"              /* 2 */
			   "[a]\n"                        /* 3 */
			   "plugin = p\n"                 /* 4 */
			   "listen = unix:s.sock\n"       /* 5 */
			   "[b]\n"                        /* 6 */
			   "plugin = p\n"                 /* 7 */
			   "listen = unix:%s/s.sock\n",   /* 8 */
			   dir) > 0);
	write_file("ward.ini", ini);
	free(ini);
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 8, "[b] listen: ", "worker 'a' listens there too");
}

Test(config, tcp_addresses_clash_on_one_port_when_hosts_are_equal_or_one_is_every_address)
{
	write_file("ward.ini",
		   "[ward]\n"                            /* 1 */
		   "autoload = no\n"                     /* 2 */
		   "[any]\n"                             /* 3 */
		   "plugin = p\n"                        /* 4 */
		   "listen = tcp:*:8080\n"               /* 5 */
		   "[local]\n"                           /* 6 */
		   "plugin = p\n"                        /* 7 */
		   "listen = tcp:127.0.0.1:8080\n"       /* 8: inside *:8080 */
		   "[six]\n"                             /* 9 */
		   "plugin = p\n"                        /* 10 */
		   "listen = tcp:[::1]:9000\n"           /* 11 */
		   "[six2]\n"                            /* 12 */
		   "plugin = p\n"                        /* 13 */
		   "listen = tcp:[0:0::1]:09000\n"       /* 14: the same address and port */
		   "[other]\n"                           /* 15 */
		   "plugin = p\n"                        /* 16 */
		   "listen = tcp:127.0.0.1:8081, tcp:127.0.0.2:9000, tcp:[::1]:8081\n"); /* 17: no clash */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 8, "[local] listen: ", "worker 'any' listens there too, with \"tcp:*:8080\"");
	load_expecting_error("ward.ini", 14, "[six2] listen: ", "worker 'six' listens there too");
	cr_expect_eq(cfg.errors.n, 2, "errors:\n%s", all_of(&cfg.errors));
}

Test(config, one_address_listed_twice_by_one_worker_is_an_error)
{
	write_file("ward.ini",
		   "[ward]\n"                                  /* 1 */
		   "autoload = no\n"                           /* 2 */
		   "[w]\n"                                     /* 3 */
		   "plugin = p\n"                              /* 4 */
		   "listen = tcp:localhost:80, tcp:LocalHost:80\n"); /* 5 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[w] listen: ", "listed twice");
}

Test(config, different_listen_addresses_are_fine)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[a]\n"
		   "plugin = p\n"
		   "listen = unix:a.sock, tcp:127.0.0.1:8080\n"
		   "[b]\n"
		   "plugin = p\n"
		   "listen = unix:b.sock, tcp:127.0.0.2:8080, tcp:127.0.0.1:8081\n");
	fake_plugin("plugins/p.so");
	load_valid();
}

/* ---- strict_permissions is on by default ---- */

Test(config, strict_permissions_is_on_by_default_and_refuses_a_world_writable_plugin_dir)
{
	write_file("ward.ini", "[ward]\nautoload = no\n[w]\nplugin = p\n");
	fake_plugin("plugins/p.so");
	char *plugins = path_in_dir("plugins");
	cr_assert(chmod(plugins, 0777) == 0);
	const char *e = load_expecting_error("ward.ini", 3, "[w] plugin: ", "refused by strict_permissions");
	cr_expect(strstr(e, "plugins is writable by everyone: run `chmod go-w "), "%s", e);

	write_file("zz.ini", "[ward]\nstrict_permissions = no\n");
	load_valid(); /* what an operator who really wants it can still say */
	free(plugins);
}

/* ---- long values, byte order marks, section headers ---- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	cr_assert(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

Test(config, a_value_of_4096_characters_is_read_whole)
{
	char *value = repeat('v', 4096), *ini;
	cr_assert(asprintf(&ini, "[ward]\nautoload = no\n[w]\nplugin = p\ntoken = %s\nenv.TOKEN = %s\n", value, value) > 0);
	write_file("ward.ini", ini);
	fake_plugin("plugins/p.so");
	load_valid();
	struct worker_conf *w = worker("w");
	cr_assert_eq(w->plugin_keys.n, 1);
	cr_expect_eq(strlen(w->plugin_keys.v[0]), strlen("token=") + 4096);
	cr_expect_eq(strcmp(w->plugin_keys.v[0] + strlen("token="), value), 0, "the value was changed");
	cr_assert_eq(w->env.n, 1);
	cr_expect_eq(strlen(w->env.v[0]), strlen("TOKEN=") + 4096);
	free(value);
	free(ini);
}

Test(config, a_line_longer_than_the_limit_is_an_error_naming_file_and_line)
{
	char *value = repeat('v', 20000), *ini;
	cr_assert(asprintf(&ini, "[ward]\nautoload = no\n[w]\nplugin = p\ntoken = %s\ncolor = blue\n", value) > 0);
	write_file("ward.ini", ini);
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "", "line is longer than 16384 characters");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
	struct worker_conf *w = worker("w");
	cr_expect(has(&w->plugin_keys, "color=blue"), "the line after the long one was lost:\n%s", all_of(&w->plugin_keys));
	free(value);
	free(ini);
}

Test(config, a_byte_order_mark_at_the_start_of_a_file_is_accepted)
{
	write_file("10-a.ini", "\xef\xbb\xbf[ward]\nautoload = no\n");
	write_file("20-b.ini", "\xef\xbb\xbf; written by an editor that adds a BOM\n[w]\nplugin = p\n");
	write_file("30-c.ini", "\xef\xbb\xbfinstances = 3\n");
	fake_plugin("plugins/p.so");
	/* 30-c.ini's key is outside any section: the error names the key without the BOM */
	load_expecting_error("30-c.ini", 1, "instances: ", "outside any section");
	cr_expect_eq(cfg.errors.n, 1, "errors:\n%s", all_of(&cfg.errors));
	cr_expect_not(cfg.autoload, "10-a.ini's [ward] after its BOM was not read");
	cr_expect_not_null(config_find_worker(&cfg, "w"), "20-b.ini's [w] was not read");
}

Test(config, text_after_the_closing_bracket_of_a_section_header_is_an_error)
{
	write_file("ward.ini",
		   "[ward]\n"                      /* 1 */
		   "autoload = no\n"               /* 2 */
		   "[alpha] junk\n"                /* 3 */
		   "plugin = p\n"                  /* 4 */
		   "[beta]][gamma]\n"              /* 5 */
		   "plugin = p\n"                  /* 6 */
		   "[delta]   ; a comment is fine\n" /* 7 */
		   "plugin = p\n");                /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 3, "text after ']'", "\"junk\"");
	load_expecting_error("ward.ini", 5, "text after ']'", "\"][gamma]\"");
	cr_expect_eq(cfg.errors.n, 2, "errors:\n%s", all_of(&cfg.errors));
}

/* ---- messages ---- */

Test(config, range_errors_name_the_range)
{
	write_file("ward.ini",
		   "[ward]\n"               /* 1 */
		   "autoload = no\n"        /* 2 */
		   "log_keep = 5000\n"      /* 3 */
		   "[w]\n"                  /* 4 */
		   "plugin = p\n"           /* 5 */
		   "instances = 0\n"        /* 6 */
		   "max_restarts = -3\n"    /* 7 */
		   "nice = 40\n");          /* 8 */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 3, "[ward] log_keep: ", "invalid value \"5000\": expected a whole number from 0 to 1000");
	load_expecting_error("ward.ini", 6, "[w] instances: ", "invalid value \"0\": expected a whole number from 1 to 1024");
	load_expecting_error("ward.ini", 7, "[w] max_restarts: ", "expected a whole number from 0 to 1000000, or 'unlimited'");
	load_expecting_error("ward.ini", 8, "[w] nice: ", "expected a whole number from -20 to 19");
}

Test(config, an_empty_plugin_value_says_a_value_is_expected)
{
	write_file("ward.ini",
		   "[ward]\n"              /* 1 */
		   "autoload = no\n"       /* 2 */
		   "[w]\n"                 /* 3 */
		   "plugin =\n");          /* 4 */
	load_expecting_error("ward.ini", 4, "[w] plugin: ", "expected a value");
	cr_expect_eq(cfg.errors.n, 1, "one mistake, one error:\n%s", all_of(&cfg.errors));
}

static bool any_raw_byte(const struct strv *sv, unsigned char c)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strchr(sv->v[i], c))
			return true;
	return false;
}

Test(config, control_and_invisible_characters_from_a_file_are_escaped_in_messages)
{
	write_file("ward.ini",
		   "[ward]\n"                          /* 1 */
		   "autoload = no\n"                   /* 2 */
		   "\x1b[31mred = 1\n"                 /* 3: an unknown host setting named with an ESC */
		   "[w]\n"                             /* 4 */
		   "plugin = p\n"                      /* 5 */
		   "interval = 5\x07s\n"               /* 6: a BEL in a value */
		   "\xef\xbb\xbf[x]\n"                 /* 7: a byte order mark in the middle of a file */
		   "inherit_en\x1b = x\n"              /* 8: a near miss of inherit_env: a warning */
		   "instances = 2\xff\n"               /* 9: not UTF-8 */
		   "a \xe2\x80\xae line\n");            /* 10: a right-to-left override */
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 3, "[ward] \\x1b[31mred: ", "unknown host setting");
	load_expecting_error("ward.ini", 6, "[w] interval: ", "invalid value \"5\\x07s\"");
	load_expecting_error("ward.ini", 7, "", "found \"\\xef\\xbb\\xbf[x]\"");
	load_expecting_error("ward.ini", 9, "[w] instances: ", "invalid value \"2\\xff\"");
	load_expecting_error("ward.ini", 10, "", "found \"a \\xe2\\x80\\xae line\"");
	cr_expect_not(any_raw_byte(&cfg.errors, 0x1b) || any_raw_byte(&cfg.errors, 0x07) ||
			      any_raw_byte(&cfg.errors, 0xef) || any_raw_byte(&cfg.errors, 0xff) ||
			      any_raw_byte(&cfg.errors, 0xe2),
		      "a raw control or invisible byte reached a message:\n%s", all_of(&cfg.errors));
	cr_assert_eq(cfg.warnings.n, 1, "warnings:\n%s", all_of(&cfg.warnings));
	cr_expect(strstr(cfg.warnings.v[0], "ward.ini:8: [w] inherit_en\\x1b: not a ward key"), "%s", cfg.warnings.v[0]);
	cr_expect_not(any_raw_byte(&cfg.warnings, 0x1b), "warnings:\n%s", all_of(&cfg.warnings));
}

Test(config, printable_utf8_in_messages_is_kept_as_it_is)
{
	write_file("ward.ini", "[ward]\nautoload = no\n[w]\nplugin = p\ninterval = fünf\n");
	fake_plugin("plugins/p.so");
	load_expecting_error("ward.ini", 5, "[w] interval: ", "invalid value \"fünf\"");
}

/* ---- the same, as `ward check` and `ward run` show it ---- */

Test(check, two_workers_with_one_listen_address_fail_check_naming_both)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "workers.ini",
		      "[web]\n"                          /* 1 */
		      "plugin = idle\n"                  /* 2 */
		      "listen = tcp:127.0.0.1:18080\n"   /* 3 */
		      "[admin]\n"                        /* 4 */
		      "plugin = idle\n"                  /* 5 */
		      "autostart = no\n"                 /* 6 */
		      "listen = tcp:127.0.0.1:18080\n"); /* 7 */
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "workers.ini:7: [admin] listen: \"tcp:127.0.0.1:18080\": worker 'web' listens there too, with "
			      "\"tcp:127.0.0.1:18080\" (") && strstr(err, "workers.ini:3); an address can belong to one worker only"),
		  "the error belongs to the line written last, and names the other worker and its line:\n%s", err);
	cr_expect_eq(count_lines_with(err, "ward: error: "), 1, "stderr:\n%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "run"), 1, "ward run must refuse it too: %s", err);
	cr_expect(strstr(err, "listens there too"), "stderr:\n%s", err);
}

Test(check, by_default_a_plugin_in_a_world_writable_directory_is_refused)
{
	wt_setup(&wt, "[w]\nplugin = ../open/idle.so\n"); /* relative to conf/ */
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "mkdir %s/open && cp %s/idle.so %s/open/ && chmod 644 %s/open/idle.so && chmod 777 %s/open",
		 wt.dir, FIXTURE_DIR, wt.dir, wt.dir, wt.dir);
	cr_assert(system(cmd) == 0);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "a plugin anyone could replace was accepted:\n%s%s", out, err);
	cr_expect(strstr(err, "[w] plugin: refused by strict_permissions: ") &&
			  strstr(err, "/open is writable by everyone: run `chmod go-w "),
		  "stderr:\n%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "run"), 1, "ward run must refuse it too:\n%s", err);
	cr_expect_neq(access(wt.state, F_OK), 0, "ward run started something");
	snprintf(cmd, sizeof(cmd), "%s/open", wt.dir);
	cr_assert(chmod(cmd, 0755) == 0);
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 0, "the fix the message gave did not help:\n%s", err);
}

Test(check, the_example_configuration_passes_check_with_the_default_strict_permissions)
{
	wt_setup(&wt, "");
	char cmd[1200], errfile[400];
	snprintf(errfile, sizeof(errfile), "%s/example.err", wt.dir);
	snprintf(cmd, sizeof(cmd), "timeout 20 %s check -c %s/conf.d >/dev/null 2>%s", WARD_BIN, SOURCE_DIR, errfile);
	int status = system(cmd);
	char *err = wt_read(errfile);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ward check -c conf.d failed:\n%s", err);
	cr_expect_null(strstr(err ? err : "", "strict_permissions"), "%s", err);
}

Test(check, a_value_of_4096_characters_reaches_the_plugin_whole)
{
	char value[4097];
	memset(value, 'd', 4096 - 12);
	memcpy(value + 4096 - 12, "-END-OF-DSN-", 13);
	cr_assert_eq(strlen(value), 4096);
	ward_harness *h = ward_harness_new(FIXTURE_DIR "/cfg_declares.so");
	ward_harness_set(h, "dsn", value);
	cr_expect_eq(ward_harness_run(h), 0, "%s: %s", ward_harness_reason(h), ward_harness_message(h));
	cr_expect(ward_harness_log_contains(h, "dsn_length=4096 dsn_tail=-END-OF-DSN-"), "log: %s",
		  ward_harness_log_count(h) ? ward_harness_log_line(h, 0) : "(none)");
	ward_harness_free(h);
}

Test(check, a_plugin_key_in_defaults_goes_to_the_plugins_that_take_it_and_is_no_error_for_others)
{
	wt_setup(&wt, "[defaults]\ngreeting = hi\nname = shared\n"
		      "[declares]\nplugin = cfg_declares\n"
		      "[echo]\nplugin = conf_echo\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 0, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect_null(strstr(err, "greeting"), "stderr:\n%s", err);
	cr_expect_null(strstr(err, "name"), "stderr:\n%s", err);
	wt_start(&wt);
	cr_expect(wt_wait_log(&wt, 10000, "declares", "name=shared greeting=(null)"),
		  "a declared [defaults] key must reach the plugin, an undeclared one must not:\n%s", wt_log(&wt, "declares"));
	cr_expect(wt_wait_log(&wt, 10000, "echo", "greeting=hi"), "a plugin without .options takes every key:\n%s",
		  wt_log(&wt, "echo"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(check, a_misspelt_host_key_for_a_plugin_with_options_is_one_error)
{
	wt_setup(&wt, "[w]\n"              /* 6 (support's [ward] takes lines 1-5) */
		      "plugin = cfg_declares\n" /* 7 */
		      "intervall = 2s\n");  /* 8 */
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "ward: error: ") && strstr(err, "ward.ini:8: [w] intervall: not an option of this plugin; did you mean 'interval'?"),
		  "stderr:\n%s", err);
	cr_expect_eq(count_lines_with(err, "intervall"), 1, "one mistake, one message:\n%s", err);
	cr_expect_null(strstr(err, "warning"), "stderr:\n%s", err);
}

Test(check, a_misspelt_host_key_in_defaults_that_no_plugin_takes_is_one_error)
{
	wt_setup(&wt, "[defaults]\n"           /* 6 */
		      "restart_dealy = 5s\n"  /* 7 */
		      "[a]\nplugin = cfg_declares\n"
		      "[b]\nplugin = options_demo\nname = b\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "ward.ini:7: [defaults] restart_dealy: not a ward key, and no worker's plugin declares it; did you mean 'restart_delay'?"),
		  "stderr:\n%s", err);
	cr_expect_eq(count_lines_with(err, "restart_dealy"), 1, "one mistake, one message:\n%s", err);
	cr_expect_eq(count_lines_with(err, "ward: error: "), 1, "stderr:\n%s", err);
}

Test(check, a_near_miss_in_defaults_that_a_plugin_without_options_takes_stays_one_warning)
{
	wt_setup(&wt, "[defaults]\n"           /* 6 */
		      "restart_dealy = 5s\n"  /* 7 */
		      "[a]\nplugin = cfg_declares\n"
		      "[b]\nplugin = conf_echo\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 0, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "ward: warning: ") && strstr(err, "ward.ini:7: [defaults] restart_dealy: not a ward key, so it is passed to the plugin; did you mean 'restart_delay'?"),
		  "stderr:\n%s", err);
	cr_expect_eq(count_lines_with(err, "restart_dealy"), 1, "stderr:\n%s", err);
}

Test(check, a_bad_value_in_defaults_for_declared_options_is_reported_once)
{
	wt_setup(&wt, "[defaults]\n"           /* 6 */
		      "count = many\n"        /* 7 */
		      "name = x\n"
		      "[a]\nplugin = options_demo\n"
		      "[b]\nplugin = options_demo\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "ward.ini:7: [defaults] count: invalid value \"many\": expected a whole number"), "stderr:\n%s", err);
	cr_expect_eq(count_lines_with(err, "ward: error: "), 1, "stderr:\n%s", err);
}

Test(check, check_output_carries_no_raw_control_bytes_from_the_file)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninterval = \x1b]0;owned\x07\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1, "stdout:\n%s\nstderr:\n%s", out, err);
	cr_expect(strstr(err, "invalid value \"\\x1b]0;owned\\x07\""), "stderr:\n%s", err);
	cr_expect_null(strchr(err, '\x1b'), "a raw ESC reached the terminal:\n%s", err);
	cr_expect_null(strchr(err, '\x07'), "a raw BEL reached the terminal:\n%s", err);
}

/* The child spec (worker/childspec.c) carries a worker's settings to the
 * process the spawner makes by walking the key table: every setting
 * arrives as configured, without a list of them kept anywhere else. */
Test(config, a_workers_settings_reach_its_process_through_the_child_spec_unchanged)
{
	write_file("ward.ini",
		   "[ward]\n"
		   "autoload = no\n"
		   "[dep]\n"
		   "plugin = p\n"
		   "[w]\n"
		   "plugin = p\n"
		   "autostart = no\n"
		   "instances = 3\n"
		   "interval = 250ms\n"
		   "restart = always\n"
		   "max_restarts = unlimited\n"
		   "requires = dep\n"
		   "listen = unix:w.sock, tcp:127.0.0.1:8080\n"
		   "user = nobody\n"
		   "inherit_env = yes\n"
		   "workdir = /tmp\n"
		   "nice = -5\n"
		   "limit.nofile = 512\n"
		   "limit.memory = unlimited\n"
		   "limit.cpu = 30s\n"
		   "critical = yes\n"
		   "env.SECRET = s3cret\n"
		   "url = http://example.com/\n");
	fake_plugin("plugins/p.so");
	load_valid();
	const struct worker_conf *w = worker("w");
	const char *base_env[] = {"PATH=/bin", "LANG=C", NULL};
	int listen_fds[2] = {40, 41};
	struct test_request test = {.max_cycles = 7, .report = true};
	struct child_spec spec = {.conf = w, .instance = 2, .state_dir = "/state/workers/w", .out_fd = 30,
				  .frame_fd = 31, .slot_fd = 32, .test = &test, .base_env = base_env,
				  .listen_fds = listen_fds, .nlisten = 2, .host_pid = 1234, .cgroup_fd = 33,
				  .last_exit = "signal SIGSEGV: in a cycle", .restarts = 4};
	static char buf[64 * 1024];
	struct wire out = {.buf = buf, .size = sizeof(buf)};
	childspec_encode(&spec, &out);
	int fds[CHILDSPEC_MAX_FDS(2)];
	int nfds = childspec_fds(&spec, fds);
	cr_assert(!out.failed);
	cr_assert_eq(nfds, 6);

	struct child_spec_decoded d;
	cr_assert_eq(childspec_decode(buf, out.at, fds, nfds, &d), nfds);
	cr_expect(config_worker_equal(d.spec.conf, w), "a setting changed on the way");
	cr_expect_str_eq(d.conf.name, "w");
	cr_expect_eq(d.conf.nice, -5);
	cr_expect(d.conf.nice_set);
	cr_expect_eq(d.conf.limit_memory.value, UINT64_MAX);
	cr_expect(has(&d.conf.env, "SECRET=s3cret"));
	cr_expect_eq(d.spec.instance, 2);
	cr_expect_eq(d.spec.host_pid, 1234);
	cr_expect_str_eq(d.spec.state_dir, "/state/workers/w");
	cr_expect_str_eq(d.spec.base_env[1], "LANG=C");
	cr_expect_null(d.spec.base_env[2]);
	cr_expect_eq(d.spec.test->max_cycles, 7);
	cr_expect_eq(d.spec.out_fd, 30);
	cr_expect_eq(d.spec.listen_fds[1], 41);
	cr_expect_eq(d.spec.cgroup_fd, 33);
	cr_expect_not(d.spec.cgroup_by_procs);
	cr_expect_str_eq(d.spec.last_exit, "signal SIGSEGV: in a cycle");
	cr_expect_eq(d.spec.restarts, 4);
	childspec_decoded_free(&d);

	/* A killed cgroup that processes still hold is joined, not cloned into. */
	spec.cgroup_by_procs = true;
	struct wire again = {.buf = buf, .size = sizeof(buf)};
	childspec_encode(&spec, &again);
	cr_assert(!again.failed);
	cr_assert_eq(childspec_decode(buf, again.at, fds, nfds, &d), nfds);
	cr_expect(d.spec.cgroup_by_procs);
	cr_expect_eq(d.spec.cgroup_fd, 33);
	childspec_decoded_free(&d);
	spec.cgroup_by_procs = false;
	out = (struct wire){.buf = buf, .size = sizeof(buf)};
	childspec_encode(&spec, &out);

	/* Cut short anywhere, or with a descriptor missing: refused, not misread. */
	for (size_t len = 0; len < out.at; len += 7) {
		cr_expect_eq(childspec_decode(buf, len, fds, nfds, &d), -1, "a request cut at %zu bytes was accepted", len);
		childspec_decoded_free(&d);
	}
	cr_expect_eq(childspec_decode(buf, out.at, fds, nfds - 1, &d), -1);
	childspec_decoded_free(&d);
}
