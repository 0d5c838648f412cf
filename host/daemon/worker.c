/*
 * worker.c - the lifecycle of worker instances as one explicit table of
 * states x events (after s6-supervise), with one function per transition,
 * and the restart policy of docs/lifecycle.md. Only set_state() changes a state, and
 * it records every change to history. Called only from the host's loop;
 * never blocks.
 */
#define _GNU_SOURCE
#include "daemon/worker.h"
#include "daemon/host.h"
#include "daemon/lifecycle.h"
#include "daemon/channel.h"
#include "daemon/pipes.h"
#include "daemon/pidtable.h"
#include "daemon/slots.h"
#include "daemon/spawn.h"
#include "daemon/observer.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void dispatch(struct instance *in, enum event ev);

static const char *const state_names[IS_COUNT] = {
	[IS_STOPPED] = "stopped", [IS_STARTING] = "starting", [IS_RUNNING] = "running",
	[IS_STOPPING] = "stopping", [IS_BACKOFF] = "backoff", [IS_FAILED] = "failed",
	[IS_DONE] = "done",
};

const char *istate_name(enum istate s)
{
	return (unsigned)s < IS_COUNT ? state_names[s] : "unknown";
}

static const char *const activation_names[ACTIVATION_COUNT] = {
	[ACTIVATION_NONE] = "none", [ACTIVATION_BOOT] = "boot", [ACTIVATION_COMMAND] = "command",
	[ACTIVATION_RESTART] = "restart", [ACTIVATION_DEPENDENCY] = "dependency",
	[ACTIVATION_CONNECTION] = "connection", [ACTIVATION_RELOAD] = "reload", [ACTIVATION_JOB] = "job",
};

const char *activation_name(enum activation a)
{
	return (unsigned)a < ACTIVATION_COUNT ? activation_names[a] : "unknown";
}

bool istate_parse(const char *name, enum istate *out)
{
	for (unsigned s = 0; name && s < IS_COUNT; s++)
		if (strcmp(name, state_names[s]) == 0) {
			*out = (enum istate)s;
			return true;
		}
	return false;
}

static int64_t ms_to_ns(uint64_t ms)
{
	return ms > (uint64_t)(INT64_MAX / NS_PER_MS) ? INT64_MAX : (int64_t)ms * NS_PER_MS;
}

static uint64_t slot_cycles(const struct instance *in)
{
	return atomic_load_explicit(&in->slot->cycles, memory_order_relaxed);
}

/* The instance as `ward status` shows it. */
static void record_instance(struct instance *in)
{
	struct slot *s = in->slot;
	bool ran = in->ready_ms != 0;
	int64_t beat = atomic_load_explicit(&s->last_beat_ns, memory_order_relaxed);
	int64_t progress = beat > in->progress_ns ? beat : in->progress_ns;
	struct instance_row row = {
		.worker = in->worker->conf->name,
		.instance = in->index,
		.pid = in->pid,
		.state = istate_name(in->state),
		.started_ms = in->started_ms,
		.ready_ms = in->ready_ms,
		.cycles = slot_cycles(in),
		.init_ms = ran ? atomic_load_explicit(&s->init_ns, memory_order_relaxed) / NS_PER_MS : -1,
		.last_cycle_ms = atomic_load_explicit(&s->last_cycle_ns, memory_order_relaxed) / NS_PER_MS,
		.progress_ms = ran && progress ? wall_ms() - (mono_ns() - progress) / NS_PER_MS : 0,
	};
	history_instance_state(in->worker->host->history, &row);
	in->recorded_cycles = row.cycles;
}

static void record_state(struct instance *in, const char *detail)
{
	struct worker *w = in->worker;
	struct history *hist = w->host->history;
	history_event(hist, w->conf->name, in->index, istate_name(in->state), detail);
	record_instance(in);
	worker_record(w);
}

void worker_record_all(struct worker *w)
{
	for (int i = 0; i < w->ninst; i++)
		record_instance(w->inst[i]);
	worker_record(w);
}

void worker_record_host(struct host *h)
{
	char buf[32];
	history_reset_states(h->history);
	snprintf(buf, sizeof(buf), "%d", (int)h->pid);
	history_host(h->history, "pid", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)wall_ms());
	history_host(h->history, "started_at", buf);
	history_host(h->history, "config_dir", h->cfg.dir);
	for (size_t i = 0; i < h->nworkers; i++)
		worker_record_all(h->workers[i]);
}

void worker_record_live(struct worker *w)
{
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->pid > 0)
			record_instance(w->inst[i]);
	worker_record(w);
}

/* The sockets' state for `ward status` ("waiting for a connection",
 * "unbound: ...; retrying"), or NULL when a process of the worker has them.
 * Only reads what listener.c keeps in the worker, so that worker.c, below
 * listener.c, need not call it. */
static const char *describe_sockets(const struct worker *w, char *buf, size_t size)
{
	static const char *const modes[] = {[LISTEN_HANDED] = NULL,
					    [LISTEN_ACTIVATE] = "waiting for a connection",
					    [LISTEN_DRAIN] = "closing connections"};
	if (!w->nlisteners)
		return NULL;
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].watch.fd < 0) {
			snprintf(buf, size, "unbound: %s: %s; retrying", w->listeners[i].address, w->listeners[i].error);
			return buf;
		}
	return modes[w->listen_mode];
}

void worker_record(struct worker *w)
{
	char listen[1024] = "", sockets[512];
	size_t len = 0;
	for (size_t i = 0; i < w->conf->listen.n && len < sizeof(listen); i++)
		len += (size_t)snprintf(listen + len, sizeof(listen) - len, "%s%s", i ? "," : "",
					w->conf->listen.v[i]);
	w->recorded_state = worker_state(w);
	history_worker_state(w->host->history, w->conf->name, w->conf->plugin, istate_name(w->recorded_state),
			     w->ninst, w->restarts, len ? listen : NULL, describe_sockets(w, sockets, sizeof(sockets)));
}

/* The one place a state changes. */
/* The counts that let a question about all instances take O(1), not a scan. */
static void count_state(struct instance *in, enum istate s)
{
	struct worker *w = in->worker;
	w->in_state[in->state]--;
	w->in_state[s]++;
	if (in->state == IS_STARTING)
		w->host->nstarting--;
	if (s == IS_STARTING)
		w->host->nstarting++;
}

static void set_state(struct instance *in, enum istate s, const char *detail)
{
	count_state(in, s);
	in->state = s;
	record_state(in, detail);
	/* The loop (run.c) lets dependency ordering, the listeners and systemd's
	 * status act on it once the current event is handled. */
	in->worker->host->order_dirty = true;
}

static void wlog(struct instance *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A lifecycle line in the worker's own log, so `ward logs` tells the whole story. */
static void wlog(struct instance *in, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* After the process ended (e.g. `failed: ...`), the line names the last one. */
	log_printf(&in->worker->log, in->index, in->pid > 0 ? in->pid : in->last_pid, "WARD", "%s", text);
}

/* true: the signal was delivered. */
static bool kill_or_say(struct instance *in, pid_t target)
{
	if (kill(target, SIGKILL) == 0)
		return true;
	if (errno != ESRCH)
		host_log(HOST_ERR, "[%s:%d] unable to kill %s %d: %s", in->worker->conf->name, in->index,
			 target < 0 ? "process group" : "process", (int)(target < 0 ? -target : target), strerror(errno));
	return false;
}

/* SIGKILL to the process itself (it may not have made its own group yet),
 * its group, and its cgroup (whatever left the group). Then the host waits
 * KILL_WAIT_MS for it to die (see kill_timed_out). */
static void kill_group(struct instance *in, enum reason why)
{
	in->kill_reason = why;
	in->kill_landed = false;
	if (in->pid > 0) {
		bool own = kill_or_say(in, in->pid);
		bool group = kill_or_say(in, -in->pid);
		in->kill_landed = own || group;
	}
	cgroup_instance_kill(in);
	in->killed_ns = mono_ns();
	timer_arm(in->worker->host->loop, &in->timer, in->killed_ns + KILL_WAIT_MS * NS_PER_MS);
}

/* ---- transitions ---- */

static void arm_init_timeout(struct instance *in)
{
	const struct worker_conf *c = in->conf;
	if (c->init_timeout_ms)
		timer_arm(in->worker->host->loop, &in->timer, in->started_ns + ms_to_ns(c->init_timeout_ms));
}

static void instance_spawned(struct instance *in, pid_t pid);
static void instance_spawn_failed(struct instance *in, int err);
static const struct spawn_answer spawn_answer = {.spawned = instance_spawned, .failed = instance_spawn_failed};

static void spawn(struct instance *in)
{
	timer_cancel(in->worker->host->loop, &in->timer);
	in->stop_requested = false;
	in->kill_reason = REASON_NONE;
	in->kill_landed = false;
	in->killed_ns = 0;
	in->got_end = false;
	in->end = (struct exit_info){0};
	in->ready_ms = 0;
	in->started_ms = wall_ms();
	in->started_ns = mono_ns();
	in->spawning = true;
	in->ready_early = false;
	in->run_jobs = 0;
	run_tail_free(&in->tail); /* the new run's lines only: nothing of its process is read yet */
	spawn_process(in, &spawn_answer);
	if (!in->spawning)
		return; /* the host forked it itself: done already */
	/* The spawner answers later: starting from now on, without a pid yet. */
	set_state(in, IS_STARTING, activation_name(in->activation));
	arm_init_timeout(in);
}

/* The process asked for by spawn_process() exists. */
static void instance_spawned(struct instance *in, pid_t pid)
{
	struct worker *w = in->worker;
	struct host *h = w->host;
	/* Already starting (or stopping) when it waited for the spawner's answer. */
	bool waited = in->state == IS_STARTING || in->state == IS_STOPPING;
	in->spawning = false;
	in->pid = pid;
	if (in->spawn_failing) {
		host_log(HOST_INFO, "[%s:%d] processes can be started again", w->conf->name, in->index);
		in->spawn_failing = false;
	}
	pidtable_add(in);
	in->run = history_begin(h->history, w->conf->name, in->index, in->pid, in->started_ms,
				activation_name(in->activation));
	wlog(in, "started (%s)", activation_name(in->activation));
	if (!waited) {
		set_state(in, IS_STARTING, activation_name(in->activation));
		arm_init_timeout(in);
		return;
	}
	record_instance(in);
	/* What happened while it waited applies now. */
	if (in->kill_reason != REASON_NONE)
		kill_group(in, in->kill_reason);
	else if (in->stop_requested && kill(pid, SIGTERM) < 0 && errno != ESRCH)
		host_log(HOST_ERR, "[%s:%d] unable to send SIGTERM to %d: %s", w->conf->name, in->index, (int)pid,
			 strerror(errno));
	if (in->ready_early && in->kill_reason == REASON_NONE)
		dispatch(in, EV_READY);
	in->ready_early = false;
}

/* The process asked for by spawn_process() could not be made. */
static void instance_spawn_failed(struct instance *in, int err)
{
	struct worker *w = in->worker;
	struct host *h = w->host;
	in->spawning = false;
	timer_cancel(h->loop, &in->timer);
	if (in->stop_requested) { /* stopped while it waited: nothing to stop any more */
		set_state(in, IS_STOPPED, "stop requested");
		return;
	}
	/* Out of descriptors: one line for the host, not one per instance. */
	const char *why = err == EMFILE ? spawn_out_of_descriptors(h) : NULL;
	if (!in->spawn_failing && !why)
		host_log(HOST_ERR, "[%s:%d] unable to start a process: %s; retrying every second", w->conf->name,
			 in->index, strerror(err));
	in->spawn_failing = true;
	set_state(in, IS_BACKOFF, why ? why : "unable to fork");
	timer_arm(h->loop, &in->timer, mono_ns() + NS_PER_SEC);
}

/* A start asked for from outside (boot, command, dependency): a fresh streak. */
static void start_fresh(struct instance *in)
{
	in->failures = 0;
	in->restarts = 0;
	spawn(in);
}

/* An instance started running: its watchdog needs the progress tick
 * (tick.c), which stops when nothing runs. */
static void arm_progress_tick(struct host *h)
{
	if (h->tick_ns && !timer_armed(&h->tick_timer))
		timer_arm(h->loop, &h->tick_timer, mono_ns() + h->tick_ns);
}

static void become_ready(struct instance *in)
{
	struct worker *w = in->worker;
	timer_cancel(w->host->loop, &in->timer);
	in->ready_ms = wall_ms();
	int64_t init_ms = atomic_load(&in->slot->init_ns) / NS_PER_MS;
	history_ready(w->host->history, in->run, in->ready_ms, init_ms);
	in->seen_progress = 0;
	in->progress_ns = mono_ns();
	wlog(in, "ready (init took %lld ms)", (long long)init_ms);
	set_state(in, IS_RUNNING, NULL);
	if (in->conf->watchdog_ms)
		arm_progress_tick(w->host);
}

static void terminate(struct instance *in)
{
	struct worker *w = in->worker;
	in->stop_requested = true;
	/* Without a pid yet (the spawner has not answered), SIGTERM goes once it has. */
	if (in->pid > 0 && kill(in->pid, SIGTERM) < 0 && errno != ESRCH)
		host_log(HOST_ERR, "[%s:%d] unable to send SIGTERM to %d: %s", w->conf->name, in->index,
			 (int)in->pid, strerror(errno));
	timer_arm(w->host->loop, &in->timer, mono_ns() + ms_to_ns(in->conf->stop_timeout_ms));
	set_state(in, IS_STOPPING, "stop requested");
}

static void stop_timed_out(struct instance *in)
{
	const struct host_observer *test = in->worker->host->test;
	if (test) /* `ward test` says why, while /proc still shows it */
		test->on_stop_overdue(test->ctx, in);
	char d[32];
	format_duration_ms(in->conf->stop_timeout_ms, d, sizeof(d));
	wlog(in, "still running %s after SIGTERM: killing it with everything it started", d);
	kill_group(in, REASON_STOP_TIMEOUT);
}

static void init_timed_out(struct instance *in)
{
	/* A busy host (a big boot) may reach this deadline before reading a READY
	 * the worker sent in time: the loop reads every frame sent so far before
	 * it runs a timer (run.c, read_frames_before_timers). */
	char d[32];
	format_duration_ms(in->conf->init_timeout_ms, d, sizeof(d));
	wlog(in, "init did not return within %s: killing it with everything it started", d);
	kill_group(in, REASON_INIT_TIMEOUT);
}

/* What the watchdog watched: a cycle or a job (slot phase). */
static const char *watched_work(const struct instance *in)
{
	return atomic_load_explicit(&in->slot->phase, memory_order_relaxed) == PHASE_JOB ? "job" : "cycle";
}

static void hung(struct instance *in)
{
	char d[32];
	format_duration_ms(in->conf->watchdog_ms, d, sizeof(d));
	wlog(in, "no progress for %s inside a %s: killing it with everything it started (hung)", d, watched_work(in));
	host_log(HOST_WARN, "[%s:%d] hung: no progress for %s inside a %s; killing it",
		 in->worker->conf->name, in->index, d, watched_work(in));
	kill_group(in, REASON_HUNG);
}

static void cancel_backoff(struct instance *in)
{
	timer_cancel(in->worker->host->loop, &in->timer);
	set_state(in, IS_STOPPED, "stop requested");
}

static void restart_after_backoff(struct instance *in)
{
	in->activation = ACTIVATION_RESTART;
	spawn(in);
}

static const char *phase_story(enum phase p)
{
	switch (p) {
	case PHASE_SETUP: return "while preparing the process";
	case PHASE_LOAD: return "while loading the plugin (a constructor crashed?)";
	case PHASE_INIT: return "in init";
	case PHASE_CYCLE: return "in a cycle";
	case PHASE_IDLE: return "between cycles";
	case PHASE_SHUTDOWN: return "in shutdown";
	case PHASE_JOB: return "in a job";
	}
	return "";
}

static void describe_kill(const struct instance *in, enum reason r, char *buf, size_t size)
{
	const struct worker_conf *c = in->conf;
	char d[32];
	switch (r) {
	case REASON_HUNG:
		format_duration_ms(c->watchdog_ms, d, sizeof(d));
		snprintf(buf, size, "no progress for %s in a %s", d, watched_work(in));
		break;
	case REASON_INIT_TIMEOUT:
		format_duration_ms(c->init_timeout_ms, d, sizeof(d));
		snprintf(buf, size, "init did not return within %s", d);
		break;
	case REASON_STOP_TIMEOUT:
		format_duration_ms(c->stop_timeout_ms, d, sizeof(d));
		snprintf(buf, size, "did not stop within %s of SIGTERM", d);
		break;
	case REASON_JOB_TIMEOUT:
		format_duration_ms(c->job_timeout_ms, d, sizeof(d));
		snprintf(buf, size, "a job ran past job_timeout (%s)", d);
		break;
	default:
		snprintf(buf, size, "killed: the host was told twice to stop");
		break;
	}
}

/* How the process ended: what the host did to it, what it said, or how it died. */
static struct exit_info classify(const struct instance *in)
{
	int st = in->wait_status;
	enum phase phase = (enum phase)atomic_load(&in->slot->phase);
	struct exit_info e = {.at_ms = wall_ms()};
	char sig[32];
	if (WIFSIGNALED(st)) {
		e.signal = WTERMSIG(st);
		e.core = WCOREDUMP(st);
	} else {
		e.code = WEXITSTATUS(st);
	}
	/* The host's reason only if its SIGKILL reached the process and is what
	 * ended it: a process its kill missed, killed later by someone else, died
	 * of that signal (and is recorded so). */
	if (in->kill_reason != REASON_NONE && in->kill_landed && WIFSIGNALED(st) && e.signal == SIGKILL) {
		e.reason = in->kill_reason;
		describe_kill(in, e.reason, e.message, sizeof(e.message));
	} else if (in->got_end && WIFEXITED(st)) {
		e.reason = in->end.reason;
		memcpy(e.message, in->end.message, sizeof(e.message));
	} else if (WIFSIGNALED(st)) {
		signal_name(e.signal, sig, sizeof(sig));
		if (in->stop_requested && e.signal == SIGTERM) {
			e.reason = REASON_STOPPED;
		} else if (phase <= PHASE_LOAD) {
			e.reason = REASON_LOAD_FAILED;
			snprintf(e.message, sizeof(e.message), "killed by %s %s", sig, phase_story(phase));
		} else {
			e.reason = REASON_SIGNAL;
			snprintf(e.message, sizeof(e.message), "%s", phase_story(phase));
		}
	} else {
		e.reason = REASON_EXIT;
		snprintf(e.message, sizeof(e.message), "the process called exit() %s", phase_story(phase));
	}
	return e;
}

static bool wants_restart(enum restart_policy policy, enum reason r)
{
	switch (policy) {
	case RESTART_ALWAYS: return true;
	case RESTART_NEVER: return false;
	case RESTART_ON_FAILURE: break;
	}
	return reason_is_failure(r);
}

/* The state machine must not drive the loop: the loop (run.c) sees
 * critical_failed after this event and stops every worker. */
static void critical_failed(struct host *h, const char *name)
{
	if (h->shutting_down || h->critical_failed)
		return;
	host_log(HOST_ERR, "[%s] is critical and has failed: stopping every worker; the host will exit with status 3",
		 name);
	h->critical_failed = true;
}

static void give_up(struct instance *in, const char *why)
{
	const struct worker_conf *c = in->worker->conf;
	char last[512];
	exit_describe(&in->last_exit, last, sizeof(last));
	host_log(HOST_ERR, "[%s:%d] failed: %s; last exit: %s; run `ward restart %s` once it is fixed",
		 c->name, in->index, why, last, c->name);
	wlog(in, "failed: %s; last exit: %s", why, last);
	set_state(in, IS_FAILED, why);
	if (c->critical)
		critical_failed(in->worker->host, c->name);
}

/* Restart policy (docs/lifecycle.md), as a pure function (tested on its own): a run
 * that lasted restart_window resets the streak of failed runs and the delay;
 * each shorter failed run counts, and once max_restarts of them have been
 * restarted, the next one gives up. Counting runs rather than restarts per
 * window is what makes the defaults give up: a doubling delay soon outgrows
 * any window. */
struct restart_verdict restart_policy(const struct worker_conf *c, unsigned *streak, uint64_t ran_ms, bool failed)
{
	bool lasted = ran_ms >= c->restart_window_ms;
	if (lasted || !failed)
		*streak = 0;
	if (!failed)
		return (struct restart_verdict){.delay_ms = c->restart_delay_ms};
	if (c->max_restarts >= 0 && *streak >= (unsigned long)c->max_restarts)
		return (struct restart_verdict){.give_up = true};
	unsigned shift = *streak < 40 ? *streak : 40;
	uint64_t delay = c->restart_delay_ms;
	delay = delay > (c->restart_delay_max_ms >> shift) ? c->restart_delay_max_ms : delay << shift;
	if (!lasted)
		(*streak)++;
	return (struct restart_verdict){.delay_ms = delay};
}

static void schedule_restart(struct instance *in)
{
	struct worker *w = in->worker;
	const struct worker_conf *c = in->conf;
	int64_t now = mono_ns();
	uint64_t ran_ms = (uint64_t)(now - in->started_ns) / NS_PER_MS;
	if (in->run_jobs) /* it completed a job: progress, like a run that lasted (a poison job cannot fail it) */
		ran_ms = c->restart_window_ms > ran_ms ? c->restart_window_ms : ran_ms;
	struct restart_verdict v = restart_policy(c, &in->failures, ran_ms, reason_is_failure(in->last_exit.reason));
	if (v.give_up) {
		char d[32], why[160];
		format_duration_ms(c->restart_window_ms, d, sizeof(d));
		if (c->max_restarts == 0)
			snprintf(why, sizeof(why), "the run failed and max_restarts = 0");
		else
			snprintf(why, sizeof(why), "%u runs in a row failed, each within restart_window (%s) of its start; max_restarts = %ld",
				 in->failures + 1, d, c->max_restarts);
		give_up(in, why);
		return;
	}
	w->restarts++;
	in->restarts++;
	if (v.delay_ms == 0) {
		restart_after_backoff(in);
		return;
	}
	char d[32], detail[64];
	format_duration_ms(v.delay_ms, d, sizeof(d));
	snprintf(detail, sizeof(detail), "restart in %s", d);
	set_state(in, IS_BACKOFF, detail);
	timer_arm(w->host->loop, &in->timer, now + ms_to_ns(v.delay_ms));
}

/* The run is over: recorded, then the restart policy. */
static void end_run(struct instance *in, struct exit_info e)
{
	struct worker *w = in->worker;
	struct host *h = w->host;
	timer_cancel(h->loop, &in->timer);
	in->killed_ns = 0;
	in->last_exit = e;
	/* A run that failed is recorded with the last lines its process wrote
	 * (SPEC §5): the reaper read its last frames and drained its pipe first. */
	char *tail = reason_is_failure(e.reason) ? run_tail_take(&in->tail) : NULL;
	run_tail_free(&in->tail);
	history_end(h->history, in->run, &e, slot_cycles(in),
		    atomic_load_explicit(&in->slot->last_cycle_ns, memory_order_relaxed) / NS_PER_MS, tail);
	if (h->run_ended) /* the job it held fails now, with this exit (jobs.c) */
		h->run_ended(in, &e, tail);
	free(tail);
	char desc[512];
	exit_describe(&e, desc, sizeof(desc));
	wlog(in, "exited: %s", desc);
	usage_run_ended(in, &e, slot_cycles(in));
	in->last_pid = in->pid;
	in->pid = 0;

	if (in->stop_requested || h->shutting_down) {
		set_state(in, IS_STOPPED, reason_name(e.reason));
		return;
	}
	if (wants_restart(in->conf->restart, e.reason)) {
		if (reason_is_failure(e.reason))
			host_log(HOST_WARN, "[%s:%d] exited: %s", w->conf->name, in->index, desc);
		schedule_restart(in);
		return;
	}
	if (e.reason == REASON_DONE && w->nlisteners)
		set_state(in, IS_STOPPED, "done: the next connection starts it again");
	else if (e.reason == REASON_DONE)
		set_state(in, IS_DONE, "done");
	else if (e.reason == REASON_STOPPED)
		set_state(in, IS_STOPPED, "stopped");
	else
		give_up(in, "it ended with a failure and restart = never");
}

static void process_ended(struct instance *in)
{
	end_run(in, classify(in));
}

typedef void (*transition)(struct instance *in);

/* The function that performs each action of the table (daemon/lifecycle.c). */
static const transition performers[ACT_COUNT] = {
	[ACT_START_FRESH] = start_fresh, [ACT_SPAWN] = spawn, [ACT_BECOME_READY] = become_ready,
	[ACT_END_RUN] = process_ended, [ACT_TERMINATE] = terminate, [ACT_INIT_TIMED_OUT] = init_timed_out,
	[ACT_STOP_TIMED_OUT] = stop_timed_out, [ACT_HUNG] = hung, [ACT_CANCEL_BACKOFF] = cancel_backoff,
	[ACT_RESTART] = restart_after_backoff,
};

static void dispatch(struct instance *in, enum event ev)
{
	if (in->reaped) {
		/* The process is gone and only its cgroup's end is awaited: a stop
		 * asked for meanwhile still decides what comes after. */
		in->stop_requested |= ev == EV_STOP;
		return;
	}
	transition fn = performers[lifecycle_step(in->state, ev).action];
	if (fn)
		fn(in);
}

/* SIGKILL did not end the process within KILL_WAIT_MS: it is in an
 * uninterruptible sleep (a hung file system, a frozen cgroup) and dies when
 * that ends. A stopping host stops waiting: it says which process it could
 * not kill and goes on, so its stop never waits forever. Otherwise the
 * instance keeps waiting, as its state says. */
static void kill_timed_out(struct instance *in)
{
	struct host *h = in->worker->host;
	const char *name = in->worker->conf->name;
	int64_t now = mono_ns(), wait = KILL_WAIT_MS * NS_PER_MS;
	if (!h->shutting_down) {
		if (now - in->killed_ns < 2 * wait) /* the first time only */
			host_log(HOST_WARN, "[%s:%d] pid %d is still alive %d s after SIGKILL (in uninterruptible sleep?): waiting for it",
				 name, in->index, (int)in->pid, KILL_WAIT_MS / 1000);
		timer_arm(h->loop, &in->timer, now + wait); /* a stop of the host may come meanwhile */
		return;
	}
	host_log(HOST_ERR, "[%s:%d] could not kill pid %d: still alive %d s after SIGKILL; the host stops without it",
		 name, in->index, (int)in->pid, KILL_WAIT_MS / 1000);
	wlog(in, "could not be killed: still alive %d s after SIGKILL; left behind by the host's stop",
	     KILL_WAIT_MS / 1000);
	pidtable_remove(in);
	in->wait_status = SIGKILL; /* what it was sent, and will die of */
	struct exit_info e = classify(in);
	size_t len = strlen(e.message);
	snprintf(e.message + len, sizeof(e.message) - len, "%sstill alive %d s after SIGKILL, left behind (pid %d)",
		 len ? "; " : "", KILL_WAIT_MS / 1000, (int)in->pid);
	end_run(in, e);
}

/* Every process of the run is gone: the run is over. */
static void finish_exit(struct instance *in)
{
	in->reaped = false;
	dispatch(in, EV_EXIT);
}

/* The process was reaped KILL_WAIT_MS ago and processes of its cgroup are
 * still alive despite cgroup.kill: the run counts as over, they stay in the
 * cgroup (the next run starts in it, beside them). */
static void drain_timed_out(struct instance *in)
{
	int first, n = cgroup_instance_count(in, &first);
	host_log(HOST_ERR, "[%s:%d] %d process%s of its cgroup (pid %d first) still alive %d s after SIGKILL: counting the run as ended without them",
		 in->worker->conf->name, in->index, n, n == 1 ? "" : "es", first, KILL_WAIT_MS / 1000);
	cgroup_instance_forget(in);
	finish_exit(in);
}

static void on_timer(struct timer *t)
{
	struct instance *in = container_of(t, struct instance, timer);
	if (in->reaped)
		drain_timed_out(in);
	else if (in->killed_ns)
		kill_timed_out(in);
	else
		dispatch(in, EV_TIMER);
}

/* ---- the interface ---- */

/* Instances the worker's conf asks for: those past it stop and go (rollout.c). */
static int wanted_instances(const struct worker *w)
{
	return w->ninst < w->conf->instances ? w->ninst : w->conf->instances;
}

void instance_start(struct instance *in, enum activation activation)
{
	enum istate s = in->state;
	/* Without a process, it starts with the worker's settings of now. */
	if (s == IS_STOPPED || s == IS_BACKOFF || s == IS_FAILED || s == IS_DONE)
		in->conf = in->worker->conf;
	in->activation = activation;
	dispatch(in, EV_START);
}

void instance_stop(struct instance *in)
{
	dispatch(in, EV_STOP);
}

void worker_start(struct worker *w, enum activation activation)
{
	for (int i = 0; i < wanted_instances(w); i++)
		instance_start(w->inst[i], activation);
}

void worker_stop(struct worker *w)
{
	w->rolling = false; /* what is stopped is not replaced (rollout.c) */
	w->rejoin_from = 0;  /* nor started again */
	for (int i = 0; i < w->ninst; i++)
		instance_stop(w->inst[i]);
}

void worker_kill(struct worker *w)
{
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->pid > 0 && !w->inst[i]->reaped)
			kill_group(w->inst[i], REASON_STOPPED);
}

void instance_kill(struct instance *in, enum reason why)
{
	if (in->pid > 0 && !in->reaped && in->kill_reason == REASON_NONE)
		kill_group(in, why);
}

int worker_signal(struct worker *w, int sig)
{
	int reached = 0;
	for (int i = 0; i < w->ninst; i++) {
		struct instance *in = w->inst[i];
		if (in->pid <= 0 || in->reaped)
			continue;
		/* Its cgroup reaches the processes that left its group too. */
		int n = cgroup_instance_signal(in, sig);
		if (n < 0)
			n = kill(-in->pid, sig) == 0 || kill(in->pid, sig) == 0;
		reached += n > 0;
	}
	return reached;
}

void instance_ready(struct instance *in)
{
	/* Its frames can come before the spawner's answer: ready once it is in. */
	if (in->spawning)
		in->ready_early = true;
	else
		dispatch(in, EV_READY);
}

/* The process was reaped (the host killed what was left of its cgroup and
 * its group as it did). The run is over once its cgroup is empty too, within
 * KILL_WAIT_MS: a restart never starts beside what is left of the last run. */
void instance_exited(struct instance *in, int wait_status)
{
	in->wait_status = wait_status;
	pidtable_remove(in); /* its pid may be reused from now on */
	if (cgroup_instance_await_empty(in, finish_exit)) {
		finish_exit(in);
		return;
	}
	in->reaped = true;
	timer_arm(in->worker->host->loop, &in->timer, mono_ns() + KILL_WAIT_MS * NS_PER_MS);
}

/* The watchdog, run at the host's tick: a cycle that shows no progress
 * (cycle returns, heartbeats, sleeps) for `watchdog` is hung. Also keeps the
 * cycle count in history fresh for `ward status`. */
void instance_check_progress(struct instance *in, int64_t now)
{
	if (in->state != IS_RUNNING)
		return;
	uint64_t cycles = slot_cycles(in);
	uint64_t progress = cycles + atomic_load_explicit(&in->slot->beats, memory_order_relaxed);
	uint32_t phase = atomic_load_explicit(&in->slot->phase, memory_order_relaxed);
	bool waiting = atomic_load_explicit(&in->slot->sleeping, memory_order_relaxed) ||
		       (phase != PHASE_CYCLE && phase != PHASE_JOB);
	bool progressed = progress != in->seen_progress;
	if (progressed || waiting) {
		in->seen_progress = progress;
		in->progress_ns = now;
	}
	if (cycles != in->recorded_cycles || progressed)
		record_instance(in);
	uint64_t watchdog = in->conf->watchdog_ms;
	if (watchdog && in->kill_reason == REASON_NONE && !progressed && !waiting &&
	    now - in->progress_ns >= ms_to_ns(watchdog))
		dispatch(in, EV_HUNG);
}

enum istate worker_state(const struct worker *w)
{
	if (w->pending_start && !worker_is_active(w))
		return IS_STARTING; /* waiting for what it requires */
	/* Most telling first: what an operator must notice wins. */
	static const enum istate order[] = {IS_FAILED, IS_BACKOFF, IS_STARTING, IS_STOPPING,
					    IS_RUNNING, IS_DONE, IS_STOPPED};
	for (size_t k = 0; k < ARRAY_SIZE(order); k++)
		if (w->in_state[order[k]])
			return order[k];
	return IS_STOPPED;
}

/* Instances in a state that has (or is about to have) a process. */
static int in_live_states(const struct worker *w)
{
	return w->in_state[IS_STARTING] + w->in_state[IS_RUNNING] + w->in_state[IS_STOPPING] +
	       w->in_state[IS_BACKOFF];
}

bool worker_is_active(const struct worker *w)
{
	if (in_live_states(w))
		return true; /* the common answer, without a scan */
	for (int i = 0; i < w->ninst; i++) {
		enum istate s = w->inst[i]->state;
		if (w->inst[i]->pid > 0 || s == IS_STARTING || s == IS_RUNNING || s == IS_STOPPING || s == IS_BACKOFF)
			return true;
	}
	return false;
}

bool worker_is_settled(const struct worker *w)
{
	if (in_live_states(w))
		return false;
	for (int i = 0; i < w->ninst; i++) {
		const struct instance *in = w->inst[i];
		if (in->pid > 0 || in->state == IS_STARTING || in->state == IS_RUNNING ||
		    in->state == IS_STOPPING || in->state == IS_BACKOFF)
			return false;
	}
	return true;
}

/* A worker running as another user must be able to write its own directory. */
static void give_state_dir(struct worker *w)
{
	const struct worker_conf *c = w->conf;
	if (!c->user && !c->group)
		return;
	struct passwd *pw = c->user ? getpwnam(c->user) : NULL;
	struct group *gr = c->group ? getgrnam(c->group) : NULL;
	uid_t uid = pw ? pw->pw_uid : (uid_t)-1;
	gid_t gid = gr ? gr->gr_gid : pw ? pw->pw_gid : (gid_t)-1;
	if (geteuid() == 0 && chown(w->state_dir, uid, gid) < 0)
		host_log(HOST_ERR, "[%s] unable to give %s to its user: %s", c->name, w->state_dir,
			 strerror(errno));
}

int worker_make_state_dir(struct worker *w)
{
	char *workers = xasprintf("%s/workers", w->host->cfg.state_dir);
	int rc = mkdir_p(workers, 0711) < 0 || mkdir_p(w->state_dir, 0750) < 0 ? -1 : 0;
	if (rc < 0)
		host_log(HOST_ERR, "[%s] unable to create its state directory %s: %s", w->conf->name,
			 w->state_dir, strerror(errno));
	else
		give_state_dir(w);
	free(workers);
	return rc;
}

/* Instance ninst, stopped, with the worker's conf; NULL when no shared memory could be had (said). */
static struct instance *add_instance(struct worker *w)
{
	struct slot *slot = slot_alloc();
	if (!slot) {
		host_log(HOST_ERR, "[%s] unable to map shared memory: %s", w->conf->name, strerror(errno));
		return NULL;
	}
	struct instance *in = xcalloc(1, sizeof(*in));
	*in = (struct instance){.worker = w, .conf = w->conf, .index = w->ninst, .state = IS_STOPPED,
				.out.fd = -1, .cg_events.fd = -1, .timer.fn = on_timer, .slot = slot};
	w->inst = xrealloc(w->inst, (size_t)(w->ninst + 1) * sizeof(*w->inst));
	w->inst[w->ninst++] = in;
	w->in_state[IS_STOPPED]++;
	record_state(in, "configured");
	return in;
}

int worker_add_instances(struct worker *w, int n)
{
	int added = 0;
	while (w->ninst < n && add_instance(w))
		added++;
	return added;
}

int worker_init(struct worker *w, struct host *h, const struct worker_conf *conf)
{
	*w = (struct worker){.host = h, .conf = conf};
	w->state_dir = xasprintf("%s/workers/%s", h->cfg.state_dir, conf->name);
	worker_make_state_dir(w);
	log_open(&w->log, h->cfg.log_dir, conf->name, h->cfg.log_max_size, (int)h->cfg.log_keep);
	if (stat(conf->plugin, &w->plugin_stat) < 0)
		memset(&w->plugin_stat, 0, sizeof(w->plugin_stat));
	return worker_add_instances(w, conf->instances) == conf->instances ? 0 : -1;
}

/* What the instance holds in the host goes (its process is gone). */
static void free_instance(struct instance *in)
{
	timer_cancel(in->worker->host->loop, &in->timer);
	pipe_detach(in);
	channel_forget(in);
	run_tail_free(&in->tail);
	slot_free(in->slot);
	pmetric_set_free(&in->metrics);
	free(in);
}

void worker_drop_last_instance(struct worker *w)
{
	struct instance *in = w->inst[--w->ninst];
	w->in_state[in->state]--;
	cgroup_instance_forget(in);
	history_forget_instance(w->host->history, w->conf->name, in->index);
	free_instance(in);
	worker_record(w);
}

void worker_free(struct worker *w)
{
	cgroup_worker_forget(w);
	for (int i = 0; i < w->ninst; i++)
		free_instance(w->inst[i]);
	free(w->inst);
	free(w->deps);
	free(w->dependants);
	log_close(&w->log);
	free(w->state_dir);
	struct host *h = w->host;
	h->nstarting -= (size_t)w->in_state[IS_STARTING];
	*w = (struct worker){.host = h};
}
