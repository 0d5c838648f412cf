/*
 * rollout.c - the rolling reload: a worker with several instances takes
 * its new settings without ever stopping all of them. Instances whose conf
 * is not the worker's are replaced one at a time: the old one stops, the
 * new one starts, and the next old one stops only once the new one is
 * running; a worker of 4 keeps 3 serving all along. A new instance that
 * does not become ready stops the rollout, once said: the old ones keep
 * running their old settings. A changed `instances` adds or removes the
 * difference (the highest go) and leaves the others alone. Nothing here
 * blocks or waits: the loop calls rollout_advance() after state changes
 * (through reload_finish). Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/rollout.h"
#include "daemon/host.h"
#include "common/util.h"

#include <string.h>
#include <sys/stat.h>

bool rollout_fits(const struct worker *w, const struct worker_conf *c, bool replace)
{
	if (w->retiring || w->next_conf)
		return false; /* already waiting to be rebuilt or removed */
	if (replace && w->conf->instances == 1 && c->instances == 1)
		return false; /* one process: restarted, as it always was */
	/* The worker's settings with c's sockets, user, group and requires:
	 * equal only if those did not change. A new `requires` goes the whole
	 * way (stop, then start through the dependency order), so that what the
	 * worker now needs runs before any instance of it starts. */
	struct worker_conf held = *w->conf;
	held.listen = c->listen;
	held.user = c->user;
	held.group = c->group;
	held.requires = c->requires;
	return config_worker_equal(w->conf, &held);
}

/* Instances in a state that has (or will soon have) a process. */
static int live_instances(const struct worker *w)
{
	return w->in_state[IS_STARTING] + w->in_state[IS_RUNNING] + w->in_state[IS_STOPPING] +
	       w->in_state[IS_BACKOFF];
}

/* The instances the worker's conf asks for; those past it are stopping, to go. */
static int kept(const struct worker *w)
{
	return w->ninst < w->conf->instances ? w->ninst : w->conf->instances;
}

static bool settled(const struct instance *in)
{
	return in->pid <= 0 && !in->spawning && !in->reaped &&
	       (in->state == IS_STOPPED || in->state == IS_FAILED || in->state == IS_DONE);
}

/* A line in the worker's own log, so `ward logs` and `ward status NAME`
 * tell it, and an event in history; both name the instance it is about. */
static void note(struct worker *w, const struct instance *in, const char *event, const char *text)
{
	log_printf(&w->log, in->index, in->pid > 0 ? in->pid : in->last_pid, "WARD", "reload: %s", text);
	history_event(w->host->history, w->conf->name, in->index, event, text);
}

/* The instances still running their old settings, as "instances 1, 2, 3
 * keep running" (or "instance 2 keeps running"). */
static void say_old(const struct worker *w, char *buf, size_t size)
{
	char list[256] = "";
	size_t len = 0;
	int n = 0;
	for (int i = 0; i < kept(w) && len < sizeof(list); i++)
		if (w->inst[i]->conf != w->conf && w->inst[i]->state == IS_RUNNING) {
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", n ? ", " : "", i);
			n++;
		}
	if (n == 0)
		snprintf(buf, size, "no instance runs the previous configuration any more");
	else
		snprintf(buf, size, "instance%s %s keep%s running the previous configuration", n == 1 ? "" : "s", list,
			 n == 1 ? "s" : "");
}

/* The new instance did not become ready: the rollout stops here, once said. */
static void stop_rollout(struct worker *w, struct instance *in)
{
	char last[512], old[320], text[1024];
	w->rolling = false;
	if (in->spawn_failing)
		snprintf(last, sizeof(last), "its process could not be started");
	else if (in->last_exit.reason != REASON_NONE)
		exit_describe(&in->last_exit, last, sizeof(last));
	else
		snprintf(last, sizeof(last), "%s", istate_name(in->state));
	say_old(w, old, sizeof(old));
	snprintf(text, sizeof(text), "rolling reload stopped: instance %d did not become ready with the new configuration (%s); %s",
		 in->index, last, old);
	host_log(HOST_ERR, "[%s] %s; fix the configuration and reload again, or `ward restart %s` to start all of them with it",
		 w->conf->name, text, w->conf->name);
	note(w, in, "rollout-stopped", text);
}

/* Said with the instance replaced last (the first one, when none was). */
static void finish_rollout(struct worker *w)
{
	char text[128];
	struct instance *last = w->roll_replaced && w->roll_index < w->ninst ? w->inst[w->roll_index]
				: w->ninst ? w->inst[0] : NULL;
	w->rolling = false;
	snprintf(text, sizeof(text), "rolling reload done: %d instance%s replaced, one at a time", w->roll_replaced,
		 w->roll_replaced == 1 ? "" : "s");
	host_log(HOST_INFO, "[%s] %s", w->conf->name, text);
	if (last)
		note(w, last, "rollout-done", text);
}

/* Chooses the next instance to replace. false: it waits for an event. */
static bool pick(struct worker *w)
{
	for (int i = 0; i < kept(w); i++) {
		struct instance *in = w->inst[i];
		if (in->conf == w->conf)
			continue;
		enum istate s = in->state;
		if (s == IS_STOPPED || s == IS_DONE) {
			/* Not running: it takes the settings, and is not started for a reload. */
			in->conf = w->conf;
			continue;
		}
		char text[96];
		snprintf(text, sizeof(text), "replacing instance %d (%d of %d)", i, w->roll_replaced + 1, kept(w));
		note(w, in, "rollout", text);
		w->roll_index = i;
		if (s == IS_BACKOFF || s == IS_FAILED) {
			/* No process to stop: it starts now, with the new settings (a
			 * failed one too, as a reload that changes a worker always did). */
			instance_start(in, ACTIVATION_RELOAD);
			w->roll_phase = ROLL_STARTING;
		} else {
			instance_stop(in);
			w->roll_phase = ROLL_STOPPING;
		}
		return true;
	}
	finish_rollout(w);
	return false;
}

/* One step of the rollout. false: it waits for an event (or is over). */
static bool step(struct worker *w)
{
	if (w->host->shutting_down || w->pending_stop) {
		w->rolling = false; /* everything stops: nothing is replaced */
		return false;
	}
	if (w->roll_phase != ROLL_PICK && w->roll_index >= kept(w)) {
		w->roll_phase = ROLL_PICK; /* a reload since took that instance away */
		return true;
	}
	if (w->roll_phase == ROLL_PICK)
		return pick(w);
	struct instance *in = w->inst[w->roll_index];
	switch (w->roll_phase) {
	case ROLL_PICK:
		break;
	case ROLL_STOPPING:
		if (!settled(in))
			return false;
		instance_start(in, ACTIVATION_RELOAD);
		w->roll_phase = ROLL_STARTING;
		return true;
	case ROLL_STARTING:
		if (in->state == IS_STARTING)
			return false;
		/* Ready is what counts, even if it has ended since (the loop may have read both at once). */
		if (in->state == IS_RUNNING || in->ready_ms) {
			w->roll_replaced++;
			w->roll_phase = ROLL_PICK;
			return true;
		}
		stop_rollout(w, in);
		return false;
	}
	return false;
}

/* Instances past conf->instances go, from the highest, once stopped. */
static void drop_extra(struct worker *w)
{
	while (w->ninst > w->conf->instances && settled(w->inst[w->ninst - 1]))
		worker_drop_last_instance(w);
}

/* The instances a scale-down was stopping and a later reload kept: started
 * again once stopped (instance_start does nothing while one stops). */
static void rejoin_kept(struct worker *w)
{
	if (w->host->shutting_down || w->pending_stop) {
		w->rejoin_from = 0;
		return;
	}
	bool waiting = false;
	for (int i = w->rejoin_from; w->rejoin_from && i < kept(w); i++) {
		struct instance *in = w->inst[i];
		if (in->state == IS_STOPPING || (in->state == IS_STOPPED && !settled(in)))
			waiting = true;
		else if (in->state == IS_STOPPED)
			instance_start(in, ACTIVATION_RELOAD);
	}
	if (!waiting)
		w->rejoin_from = 0;
}

bool rollout_advance(struct worker *w)
{
	while (w->rolling && step(w))
		;
	rejoin_kept(w);
	drop_extra(w);
	return w->rolling || w->rejoin_from || w->ninst > w->conf->instances;
}

/* More instances: added stopped, and started when the worker runs. */
static void add_instances(struct worker *w, int n)
{
	bool runs = live_instances(w) > 0;
	int from = w->ninst;
	worker_add_instances(w, n);
	for (int i = from; runs && i < w->ninst; i++)
		instance_start(w->inst[i], ACTIVATION_RELOAD);
}

/* Fewer: the highest stop now (they go once stopped, in drop_extra). */
static void remove_instances(struct worker *w, int n)
{
	for (int i = w->ninst - 1; i >= n; i--)
		instance_stop(w->inst[i]);
}

void rollout_begin(struct worker *w, const struct worker_conf *c, bool replace, FILE *out)
{
	const struct worker_conf *was = w->conf;
	int before = was->instances;
	w->conf = c;
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listeners[i].address = c->listen.v[i];
	if (replace) {
		if (stat(c->plugin, &w->plugin_stat) < 0)
			memset(&w->plugin_stat, 0, sizeof(w->plugin_stat));
	} else {
		/* Only `instances` changed: what ran the settings before runs them still. */
		for (int i = 0; i < w->ninst; i++)
			if (w->inst[i]->conf == was)
				w->inst[i]->conf = c;
	}
	bool runs = live_instances(w) > 0;
	/* Instances past the old count still here are the ones a scale-down is
	 * stopping: those the new count keeps come back. */
	if (runs && c->instances > before && w->ninst > before)
		w->rejoin_from = before;
	if (c->instances > w->ninst)
		add_instances(w, c->instances);
	else if (c->instances < w->ninst)
		remove_instances(w, c->instances);
	char scaled[64] = "";
	if (c->instances != before)
		snprintf(scaled, sizeof(scaled), "%sfrom %d to %d instances", replace ? ", " : "", before, c->instances);
	if (replace && runs) {
		if (!w->rolling) {
			w->rolling = true;
			w->roll_phase = ROLL_PICK;
			w->roll_replaced = 0;
		} /* else the rollout under way goes on, towards the newest settings */
		fprintf(out, "replacing its instances one at a time%s: %s\n", scaled, c->name);
	} else if (replace) {
		/* Nothing runs: each instance takes the settings; only the failed start again, with them. */
		int failed = 0;
		for (int i = 0; i < kept(w); i++) {
			w->inst[i]->conf = c;
			if (w->inst[i]->state == IS_FAILED) {
				instance_start(w->inst[i], ACTIVATION_RELOAD);
				failed++;
			}
		}
		if (failed)
			fprintf(out, "starting its failed instances with the new configuration%s: %s\n", scaled, c->name);
		else
			fprintf(out, "taking its new configuration (not running: nothing was started)%s: %s\n", scaled,
				c->name);
	} else {
		fprintf(out, "scaling %s: %s\n", scaled, c->name);
	}
	worker_record(w);
	w->host->reload_waiting = true;
}
