/*
 * config.h - the configuration model: what `ward run -c DIR` reads from the
 * *.ini files of DIR and the plugin directory, turned into host settings and
 * a table of workers. Loading never stops at the first problem: every error
 * is collected with its file, line and key so `ward check` can list them all.
 */
#ifndef WARD_CONFIG_H
#define WARD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "common/util.h"
#include "common/wire.h"

enum restart_policy { RESTART_ON_FAILURE, RESTART_ALWAYS, RESTART_NEVER };

struct limit_conf {
	bool set;
	uint64_t value;
};

/* Where a value came from, for messages. file is owned by the config. */
struct origin {
	const char *file;
	int line;
};

struct worker_conf {
	char *name;
	char *plugin;     /* absolute path of the plugin file */
	/* What the probe found in the plugin (daemon/probe.c), no setting: it
	 * has .job (its worker serves its queue, the dispatcher hands it
	 * jobs), it has .cycle. Both false until the probe's verdict is in. */
	bool plugin_has_job, plugin_has_cycle;
	bool autostart;
	bool critical;    /* its failing stops the host (exit status 3) */
	int instances;
	enum restart_policy restart;
	uint64_t interval_ms, restart_delay_ms, restart_delay_max_ms, restart_window_ms;
	uint64_t init_timeout_ms, watchdog_ms, stop_timeout_ms;
	long max_restarts; /* -1: unlimited */
	struct strv requires;
	struct strv listen;
	char *user, *group; /* NULL: the host's */
	struct strv env;    /* "NAME=value" from env.* keys */
	bool inherit_env;
	char *workdir;      /* absolute; NULL: the worker's state directory */
	bool nice_set;
	long nice;
	struct limit_conf limit_nofile, limit_memory, limit_cpu, limit_core;
	struct strv plugin_keys; /* "key=value" for every key that is not ward's */
	struct origin *plugin_key_at; /* where each plugin key was written; owned */
	int *plugin_key_shared;  /* each plugin key's index in config.shared_keys, or -1: the worker's own */
	struct origin where;     /* the section's [header] line, or the plugin dir when autoloaded */
	struct origin requires_at; /* the requires line, for dependency messages */
	/* jobs (daemon/jobs.c) */
	char *queue;       /* NULL: the worker's name (worker_queue()) */
	uint64_t job_timeout_ms, job_retry_delay_ms, job_retry_delay_max_ms;
	int job_attempts;
};

/* A plugin key of [defaults]: every worker that does not set it itself gets
 * it, except those whose plugin declares .options without it. */
struct shared_key {
	char *key;
	struct origin at;
	size_t takers;  /* workers that kept it */
	size_t refused; /* workers whose plugin does not declare it (options_check) */
};

/* [ward] log_output and log_format: the order of their key_def choices (config.c). */
enum log_output { LOG_OUTPUT_FILE, LOG_OUTPUT_STDOUT, LOG_OUTPUT_BOTH };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

struct config {
	char *dir; /* absolute path of the configuration directory */
	char *plugin_dir, *state_dir, *log_dir;
	bool autoload, strict_permissions;
	bool exit_when_done;     /* the host ends once no worker can run again */
	uint64_t log_max_size;
	long log_keep, history_keep;
	uint64_t job_keep_ms; /* finished jobs are pruned past this age */
	char *job_group;      /* members may queue jobs (jobsession.c); NULL: none */
	char *http;  /* ADDR:PORT of the HTTP endpoint (daemon/http.c); NULL: none */
	int log_output; /* enum log_output, written as an int by the key table */
	int log_format; /* enum log_format */
	struct worker_conf *workers; /* sorted by name */
	size_t nworkers;
	struct strv errors;   /* one line each: "FILE:LINE: [section] key: reason" */
	struct strv warnings;
	struct strv files;    /* the files read, owning the names origins point to */
	struct shared_key *shared_keys; /* one per key of [defaults], in its sorted order */
	size_t nshared_keys;
};

/* Reads DIR. Returns 0 when the configuration is valid; otherwise -1 with
 * cfg->errors listing every problem. cfg must be freed either way. */
int config_load(const char *dir, struct config *cfg);
void config_free(struct config *cfg);
struct worker_conf *config_find_worker(const struct config *cfg, const char *name);
/* Adds one error, formatted as all of config_load's: "FILE:LINE: [section] key: reason". */
void config_error(struct config *cfg, struct origin at, const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
size_t config_edit_distance(const char *a, const char *b);
/* Drops the near-miss warning about the key at `at`: it turned out to be a
 * declared plugin option, or an error about it says more. */
void config_forget_warning(struct config *cfg, struct origin at);
/* The ward worker key one or two letters away from key, or NULL. */
const char *config_nearest_worker_key(const char *key);

/* Same settings (where they were written does not matter): a reload leaves such a worker alone. */
bool config_worker_equal(const struct worker_conf *a, const struct worker_conf *b);
/* `ward check --keys`: every ward key with its type, default and meaning, from the key tables. */
void config_print_keys(FILE *out);

/* A worker's settings as they travel to its process (worker/childspec.c):
 * every key of the key table and the fields no key owns, walked from the
 * table, so a new key travels without a line more. from_wire builds a real
 * worker_conf whose strings point into in's buffer (they are gone with it);
 * free_wired frees what from_wire allocated (the vectors), never the
 * strings. On a malformed buffer in->failed is set. */
void config_worker_to_wire(const struct worker_conf *w, struct wire *out);
void config_worker_from_wire(struct wire *in, struct worker_conf *w);
void config_worker_free_wired(struct worker_conf *w);


#endif
