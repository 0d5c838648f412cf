/*
 * reload.c - `ward reload` and SIGHUP: read the configuration again and
 * apply only the difference. Added workers start, removed ones stop and go,
 * changed ones (configuration or plugin file) restart with their new
 * settings (all at once with one instance; one at a time with several, and
 * a changed `instances` alone starts or stops only the difference: both
 * in rollout.c), and every other worker is left exactly as it is. A
 * configuration with errors changes nothing. Its plugins are probed first,
 * while the host's loop goes on; the reply comes once their verdicts are in. The old configuration stays
 * alive until no worker refers to it any more. Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/dependency.h"
#include "daemon/host.h"
#include "daemon/reload.h"
#include "daemon/probe.h"
#include "daemon/rollout.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool plugin_file_changed(const struct worker *w)
{
	struct stat st;
	if (stat(w->conf->plugin, &st) < 0)
		return true;
	const struct stat *was = &w->plugin_stat;
	return st.st_ino != was->st_ino || st.st_dev != was->st_dev || st.st_size != was->st_size ||
	       st.st_mtim.tv_sec != was->st_mtim.tv_sec || st.st_mtim.tv_nsec != was->st_mtim.tv_nsec;
}

/* Only `instances` differs (and the plugin file is the same): no process need be replaced. */
static bool same_but_instances(const struct worker *w, const struct worker_conf *c)
{
	struct worker_conf scaled = *c;
	scaled.instances = w->conf->instances;
	return config_worker_equal(w->conf, &scaled) && !plugin_file_changed(w);
}

static struct worker *find_current(struct host *h, const char *name)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (strcmp(h->workers[i]->conf->name, name) == 0)
			return h->workers[i];
	return NULL;
}

/* Points an unchanged worker at its entry in the new configuration. An
 * instance a rollout has not replaced yet keeps its older settings. */
static void adopt_conf(struct worker *w, const struct worker_conf *c)
{
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->conf == w->conf)
			w->inst[i]->conf = c;
	w->conf = c;
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listeners[i].address = c->listen.v[i];
}

static void add_worker(struct host *h, const struct worker_conf *c)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	h->workers = xrealloc(h->workers, (h->nworkers + 1) * sizeof(*h->workers));
	h->workers[h->nworkers++] = w;
	worker_init(w, h, c);
	if (c->listen.n)
		listener_open_all(w); /* a socket not bound yet holds the start back */
	if (c->autostart)
		dependency_request_start(w, ACTIVATION_RELOAD);
}

static bool refers_to(const struct config *cfg, const struct worker_conf *c)
{
	return c && c >= cfg->workers && c < cfg->workers + cfg->nworkers;
}

static bool worker_refers_to(const struct config *cfg, const struct worker *w)
{
	if (refers_to(cfg, w->conf) || refers_to(cfg, w->next_conf))
		return true;
	for (int i = 0; i < w->ninst; i++)
		if (refers_to(cfg, w->inst[i]->conf))
			return true;
	return false;
}

/* Frees the configurations that no worker refers to any more. */
static void release_old_configs(struct host *h)
{
	size_t kept = 0;
	for (size_t k = 0; k < h->nold; k++) {
		struct config *old = h->old_configs[k];
		bool used = false;
		for (size_t i = 0; i < h->nworkers && !used; i++)
			used = worker_refers_to(old, h->workers[i]);
		if (used) {
			h->old_configs[kept++] = old;
		} else {
			config_free(old);
			free(old);
		}
	}
	h->nold = kept;
}

void reload_finish(struct host *h)
{
	if (!h->reload_waiting)
		return; /* the common case, on every turn of the loop: no scan */
	bool changed = false, waiting = false;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (!(w->retiring || w->next_conf)) {
			bool under_way = w->rolling || w->rejoin_from || w->ninst > w->conf->instances;
			if (under_way && rollout_advance(w))
				waiting = true;
			else if (under_way)
				changed = true; /* over: the settings it replaced may be released */
			continue;
		}
		if (!worker_is_settled(w)) {
			waiting = true;
			continue;
		}
		history_forget_worker(h->history, w->conf->name);
		if (w->retiring) {
			host_log(HOST_INFO, "[%s] removed by reload", w->conf->name);
			listener_close_all(w);
			worker_free(w);
			free(w);
			h->workers[i--] = h->workers[--h->nworkers];
		} else {
			const struct worker_conf *c = w->next_conf;
			bool start = w->start_after_reload;
			listener_close_all(w);
			worker_free(w);
			worker_init(w, h, c);
			if (c->listen.n)
				listener_open_all(w);
			if (start)
				dependency_request_start(w, ACTIVATION_RELOAD);
			host_log(HOST_INFO, "[%s] restarted with its new configuration", c->name);
		}
		changed = true;
	}
	h->reload_waiting = waiting;
	if (changed) {
		dependency_link(h);
		release_old_configs(h);
		h->order_dirty = true;
	}
}

static int refuse_reload(struct config *next, FILE *out, const char *why)
{
	fprintf(out, "error\n");
	for (size_t i = 0; i < next->errors.n; i++)
		fprintf(out, "%s\n", next->errors.v[i]);
	if (why)
		fprintf(out, "%s\n", why);
	fprintf(out, "nothing was changed: the host keeps running its current configuration\n");
	config_free(next);
	free(next);
	return -1;
}

/* A worker whose settings or plugin file changed: replaced one instance at
 * a time, or scaled, when it can be (rollout.c); else stopped, and rebuilt
 * with c once stopped (reload_finish). */
static void apply_change(struct worker *w, const struct worker_conf *c, FILE *out)
{
	bool replace = !same_but_instances(w, c);
	if (rollout_fits(w, c, replace)) {
		rollout_begin(w, c, replace, out);
		return;
	}
	w->retiring = false;
	w->next_conf = c;
	w->host->reload_waiting = true;
	w->start_after_reload = c->autostart || worker_is_active(w) || w->pending_start;
	w->pending_start = ACTIVATION_NONE;
	worker_stop(w);
	fprintf(out, "restarting with its new configuration: %s\n", c->name);
}

/* next passed every check: the difference is applied. */
static void apply(struct host *h, struct config *next, FILE *out)
{
	fprintf(out, "ok\n");
	/* From the next line on, for every worker: before workers are added, so
	 * that a new one's log file is created only when files are written. */
	log_configure(next->log_output, next->log_format, h->loop);
	/* The new configuration becomes the host's first, so that a process
	 * started below (a rollout's) is handed the host's current one; the
	 * old one lives on until released. */
	struct config *old = xmalloc(sizeof(*old));
	*old = h->cfg;
	h->cfg = *next;
	free(next);
	h->old_configs = xrealloc(h->old_configs, (h->nold + 1) * sizeof(*h->old_configs));
	h->old_configs[h->nold++] = old;
	const struct config *cfg = &h->cfg;

	size_t unchanged = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		const struct worker_conf *c = config_find_worker(cfg, w->conf->name);
		if (!c) {
			w->retiring = true;
			h->reload_waiting = true;
			w->pending_start = ACTIVATION_NONE;
			worker_stop(w);
			fprintf(out, "removed: %s\n", w->conf->name);
		} else if (!w->retiring && !w->next_conf && config_worker_equal(w->conf, c) && !plugin_file_changed(w)) {
			adopt_conf(w, c);
			unchanged++;
		} else {
			apply_change(w, c, out);
		}
	}
	for (size_t i = 0; i < cfg->nworkers; i++) {
		if (find_current(h, cfg->workers[i].name))
			continue;
		add_worker(h, &cfg->workers[i]);
		fprintf(out, "added: %s\n", cfg->workers[i].name);
	}
	fprintf(out, "unchanged: %zu worker%s\n", unchanged, unchanged == 1 ? "" : "s");
	for (size_t i = 0; i < cfg->warnings.n; i++)
		fprintf(out, "warning: %s\n", cfg->warnings.v[i]);

	for (size_t i = 0; i < h->nworkers; i++)
		log_settings(&h->workers[i]->log, h->cfg.log_max_size, (int)h->cfg.log_keep);
	history_set_keep(h->history, h->cfg.history_keep);
	dependency_link(h);
	release_old_configs(h);
	h->order_dirty = true;
	reload_finish(h);
}

/* A reload waiting for the verdicts on its plugins. */
struct reload {
	struct host *host;
	struct config *next;
	FILE *out;
	struct probe_batch *batch;
	void (*done)(void *arg);
	void *arg;
};

static void verdicts_in(void *arg)
{
	struct reload *r = arg;
	struct host *h = r->host;
	h->reload = NULL;
	const struct strv *load_errors = probe_batch_load_errors(r->batch);
	if (r->next->errors.n)
		refuse_reload(r->next, r->out, NULL);
	else if (h->shutting_down)
		refuse_reload(r->next, r->out, "the host is stopping");
	else
		apply(h, r->next, r->out);
	for (size_t i = 0; i < load_errors->n; i++)
		fprintf(r->out, "warning: %s\n", load_errors->v[i]);
	probe_batch_free(r->batch);
	r->done(r->arg);
	free(r);
}

/* The [ward] http endpoint is opened at boot only (daemon/http.c). */
static bool same_http(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int reload_begin(struct host *h, FILE *out, void (*done)(void *arg), void *arg)
{
	if (h->shutting_down || h->booting) {
		fprintf(out, "error\nthe host is %s\n", h->shutting_down ? "stopping" : "still starting: try again in a moment");
		return 0;
	}
	if (h->reload) {
		fprintf(out, "error\na reload is being checked already: try again in a moment\n");
		return 0;
	}
	struct config *next = xcalloc(1, sizeof(*next));
	if (config_load(h->cfg.dir, next) < 0) {
		refuse_reload(next, out, NULL);
		return 0;
	}
	if (strcmp(next->state_dir, h->cfg.state_dir) != 0 || strcmp(next->log_dir, h->cfg.log_dir) != 0) {
		refuse_reload(next, out, "state_dir and log_dir cannot change while the host runs: restart the host for that");
		return 0;
	}
	if (!same_http(next->http, h->cfg.http)) {
		refuse_reload(next, out, "http cannot change while the host runs (its endpoint stays where it is): restart the host for that");
		return 0;
	}
	/* Its plugins are probed while the host goes on; the rest waits for them. */
	struct reload *r = xmalloc(sizeof(*r));
	*r = (struct reload){.host = h, .next = next, .out = out, .done = done, .arg = arg};
	h->reload = r;
	r->batch = probe_batch_start(h, next, verdicts_in, r);
	return 1;
}

void reload_abandon(struct host *h)
{
	struct reload *r = h->reload;
	if (!r)
		return;
	probe_batch_free(r->batch);
	config_free(r->next);
	free(r->next);
	free(r);
	h->reload = NULL;
}
