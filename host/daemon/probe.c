/*
 * probe.c - probes of plugin files (see probe.h). The host side starts a
 * probe process through the spawner like any worker process (spawner_client.c,
 * child.c), reads its verdict from a pipe, and judges it once the process
 * is reaped, or kills it at its deadline; `ward check` runs the same
 * machinery on a loop of its own until every verdict is in. The probe side
 * (probe_report, which maps the plugin) runs in the probe process and lives
 * in worker/probe.c.
 */
#define _GNU_SOURCE
#include "daemon/probe.h"
#include "worker/child.h"
#include "config/options.h"
#include "daemon/spawner_client.h"
#include "daemon/host.h"
#include "daemon/reaper.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>


struct probe {
	struct spawn_job job;
	struct watch verdict;  /* the pipe's read end */
	int write_end;         /* the probe's end, between prepare and release */
	struct timer deadline;
	struct probe_batch *batch;
	const struct worker_conf *conf; /* the first worker of the plugin: whose process it is like */
	char *state_dir;       /* that worker's (WARD_STATE_DIR) */
	struct config **wipe;  /* what a copy of the host must wipe (host-forked probes) */
	pid_t pid;
	char *text;            /* the verdict so far */
	size_t len;
	bool timed_out, judged;
	struct probe_result result;
	struct option_table options;
};

struct probe_batch {
	struct host *host;
	struct config *cfg;
	struct probe **v;
	size_t n, pending;
	struct strv load_errors;
	void (*done)(void *arg);
	void *arg;
	struct timer finish; /* done() from the loop, never from inside a start */
	bool check_keys;     /* the workers' keys against the options (not for --describe) */
	uint64_t timeout_ms; /* for each probe, from the moment it exists */
};

/* Probe processes not reaped yet, and the probe waiting for each (NULL once judged). */
static struct live {
	pid_t pid;
	struct probe *p;
} *live;
static size_t nlive;

bool probe_owns(pid_t pid)
{
	for (size_t i = 0; i < nlive; i++)
		if (live[i].pid == pid)
			return true;
	return false;
}

/* The probe itself (it may not have made its own session yet) and what
 * its constructors forked into its group. */
static void kill_probe(const struct probe *p)
{
	kill(p->pid, SIGKILL);
	kill(-p->pid, SIGKILL);
}

static void forget_probe(struct probe *p)
{
	for (size_t i = 0; i < nlive; i++)
		if (live[i].p == p)
			live[i].p = NULL;
}

/* Reads what the pipe holds now; closes it at its end. */
static void read_verdict(struct probe *p)
{
	struct loop *loop = p->batch->host->loop;
	char buf[4096];
	ssize_t n;
	while (p->verdict.fd >= 0 && (n = read(p->verdict.fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* EAGAIN: more to come */
		p->text = xrealloc(p->text, p->len + (size_t)n + 1);
		memcpy(p->text + p->len, buf, (size_t)n);
		p->len += (size_t)n;
		p->text[p->len] = '\0';
	}
	loop_close(loop, &p->verdict);
}

/* What a probe without a whole verdict went through. */
static void explain_death(struct probe *p, bool reaped, int status)
{
	struct exit_info *why = &p->result.why;
	char sig[32];
	why->reason = REASON_LOAD_FAILED;
	uint64_t limit = p->batch->timeout_ms;
	if (p->timed_out)
		snprintf(why->message, sizeof(why->message), "its constructor did not return within %llu %s",
			 (unsigned long long)(limit % 1000 ? limit : limit / 1000), limit % 1000 ? "ms" : "s");
	else if (reaped && WIFSIGNALED(status))
		snprintf(why->message, sizeof(why->message),
			 "killed by %s while loading the plugin (a constructor crashed)",
			 signal_name(WTERMSIG(status), sig, sizeof(sig)));
	else if (reaped)
		snprintf(why->message, sizeof(why->message), "the probe process exited with %d while loading",
			 WEXITSTATUS(status));
}

static void batch_finished(struct probe_batch *b);

/* The verdict is final: what arrived, or how the process died. */
static void judge(struct probe *p, bool reaped, int status)
{
	struct loop *loop = p->batch->host->loop;
	read_verdict(p);
	loop_close(loop, &p->verdict);
	timer_cancel(loop, &p->deadline);
	if (p->pid > 0) /* what its constructors forked into its group goes too */
		kill_probe(p);
	forget_probe(p);
	p->judged = true;
	if (!p->timed_out && p->len >= sizeof(p->result)) {
		memcpy(&p->result, p->text, sizeof(p->result));
		if (p->result.ok)
			options_read(p->text + sizeof(p->result), &p->options);
	} else {
		p->result = (struct probe_result){0};
		explain_death(p, reaped, status);
	}
	if (--p->batch->pending == 0)
		batch_finished(p->batch);
}

bool probe_reaped(pid_t pid, int wait_status)
{
	for (size_t i = 0; i < nlive; i++) {
		if (live[i].pid != pid)
			continue;
		struct probe *p = live[i].p;
		live[i] = live[--nlive];
		if (p)
			judge(p, true, wait_status);
		return true;
	}
	return false;
}

static void on_verdict(struct watch *w, uint32_t events)
{
	(void)events;
	read_verdict(container_of(w, struct probe, verdict)); /* judged once reaped */
}

static void on_probe_deadline(struct timer *t)
{
	struct probe *p = container_of(t, struct probe, deadline);
	p->timed_out = true;
	judge(p, false, 0);
}

static int prepare(struct spawn_job *j, struct child_spec *spec)
{
	struct probe *p = container_of(j, struct probe, job);
	struct host *h = p->batch->host;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		int saved = errno;
		close(fds[0]);
		close(fds[1]);
		errno = saved;
		return -1;
	}
	p->verdict = (struct watch){.fd = fds[0], .fn = on_verdict};
	p->write_end = fds[1];
	/* A copy of the host (no spawner) wipes every configuration it holds but this worker's. */
	size_t n = 0;
	free(p->wipe);
	p->wipe = xcalloc(h->nold + 2, sizeof(*p->wipe));
	if (p->batch->cfg != &h->cfg)
		p->wipe[n++] = &h->cfg;
	for (size_t i = 0; i < h->nold; i++)
		p->wipe[n++] = h->old_configs[i];
	*spec = (struct child_spec){.conf = p->conf, .state_dir = p->state_dir, .probe = true, .cgroup_fd = -1,
				    .out_fd = -1, .frame_fd = fds[1], .slot_fd = -1, .host_pid = h->pid,
				    .base_env = child_inherited_env(p->conf), .host_config = p->batch->cfg,
				    .old_configs = p->wipe, .nold = n};
	return 0;
}

static void release(struct spawn_job *j, struct child_spec *spec, bool sent)
{
	struct probe *p = container_of(j, struct probe, job);
	close(p->write_end);
	p->write_end = -1;
	free((void *)spec->base_env);
	if (!sent) {
		close(p->verdict.fd);
		p->verdict.fd = -1;
	}
}

static void done(struct spawn_job *j, pid_t pid, int err)
{
	struct probe *p = container_of(j, struct probe, job);
	struct host *h = p->batch->host;
	if (pid < 0) {
		p->result = (struct probe_result){.why.reason = REASON_LOAD_FAILED};
		snprintf(p->result.why.message, sizeof(p->result.why.message), "unable to start a probe process: %s",
			 strerror(err));
		p->judged = true;
		if (--p->batch->pending == 0)
			batch_finished(p->batch);
		return;
	}
	p->pid = pid;
	/* No setpgid(pid, pid): the probe makes a session of its own first
	 * thing (child.c), which a group leader cannot; kills name it too. */
	live = xrealloc(live, (nlive + 1) * sizeof(*live));
	live[nlive++] = (struct live){pid, p};
	if (loop_watch(h->loop, &p->verdict, EPOLLIN) < 0)
		host_log(HOST_ERR, "unable to watch a probe of %s: %s; its verdict is read when it exits", p->conf->plugin,
			 strerror(errno));
	timer_arm(h->loop, &p->deadline, mono_ns() + (int64_t)p->batch->timeout_ms * NS_PER_MS);
}

static void start_probe(struct probe_batch *b, const struct worker_conf *conf)
{
	struct probe *p = xcalloc(1, sizeof(*p));
	*p = (struct probe){.job = {.prepare = prepare, .release = release, .done = done},
			    .verdict.fd = -1, .write_end = -1, .deadline.fn = on_probe_deadline, .batch = b,
			    .conf = conf, .state_dir = xasprintf("%s/workers/%s", b->cfg->state_dir, conf->name)};
	b->v = xrealloc(b->v, (b->n + 1) * sizeof(*b->v));
	b->v[b->n++] = p;
	spawner_submit(b->host, &p->job);
}

/* Every verdict is in: the workers' keys against their plugin's options. */
static void apply_verdicts(struct probe_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct probe *p = b->v[i];
		if (!p->result.ok) {
			strv_push(&b->load_errors, xasprintf("plugin %s (worker %s): %s: %s", p->conf->plugin, p->conf->name,
							     reason_name(p->result.why.reason), p->result.why.message));
			continue; /* a plugin that does not load fails at start, with its reason */
		}
		for (size_t k = 0; k < b->cfg->nworkers; k++)
			if (strcmp(b->cfg->workers[k].plugin, p->conf->plugin) == 0) {
				b->cfg->workers[k].plugin_has_job = p->result.has_job;
				b->cfg->workers[k].plugin_has_cycle = p->result.has_cycle;
				options_check(b->cfg, &b->cfg->workers[k], &p->options);
			}
	}
	options_check_shared_keys(b->cfg);
}

static void on_finish(struct timer *t)
{
	struct probe_batch *b = container_of(t, struct probe_batch, finish);
	if (b->check_keys)
		apply_verdicts(b);
	b->done(b->arg);
}

static void batch_finished(struct probe_batch *b)
{
	timer_arm(b->host->loop, &b->finish, mono_ns());
}

static struct probe_batch *start_batch(struct host *h, struct config *cfg, bool check_keys, uint64_t timeout_ms,
				       void (*done_fn)(void *arg), void *arg)
{
	struct probe_batch *b = xcalloc(1, sizeof(*b));
	*b = (struct probe_batch){.host = h, .cfg = cfg, .done = done_fn, .arg = arg, .finish.fn = on_finish,
				  .check_keys = check_keys, .timeout_ms = timeout_ms};
	for (size_t i = 0; i < cfg->nworkers; i++) {
		bool seen = false; /* one probe per plugin file */
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(cfg->workers[k].plugin, cfg->workers[i].plugin) == 0;
		if (!seen)
			b->pending++;
	}
	size_t wanted = b->pending;
	if (wanted == 0)
		batch_finished(b);
	for (size_t i = 0; i < cfg->nworkers && b->n < wanted; i++) {
		bool seen = false;
		for (size_t k = 0; k < b->n && !seen; k++)
			seen = strcmp(b->v[k]->conf->plugin, cfg->workers[i].plugin) == 0;
		if (!seen)
			start_probe(b, &cfg->workers[i]);
	}
	return b;
}

struct probe_batch *probe_batch_start(struct host *h, struct config *cfg, void (*done)(void *arg), void *arg)
{
	return start_batch(h, cfg, true, PROBE_TIMEOUT_MS, done, arg);
}

const struct strv *probe_batch_load_errors(const struct probe_batch *b)
{
	return &b->load_errors;
}

void probe_batch_free(struct probe_batch *b)
{
	if (!b)
		return;
	struct loop *loop = b->host->loop;
	timer_cancel(loop, &b->finish);
	for (size_t i = 0; i < b->n; i++) {
		struct probe *p = b->v[i];
		if (!p->judged && p->pid > 0)
			kill_probe(p);
		forget_probe(p);
		loop_close(loop, &p->verdict);
		timer_cancel(loop, &p->deadline);
		options_free(&p->options);
		free(p->text);
		free(p->wipe);
		free(p->state_dir);
		free(p);
	}
	free(b->v);
	strv_free(&b->load_errors);
	free(b);
}

/* ---- waiting for the verdicts (`ward check`, `ward test --describe`) ---- */

struct waiting {
	struct watch children; /* SIGCHLD */
	struct host *host;
	bool done;
};

/* This process runs no worker: its children are its probes, its spawner
 * and strays, reaped as the host reaps them (daemon/reaper.c). A child
 * nobody knows stays a zombie while the spawner's answers are awaited: it
 * may be a probe not named yet (then this runs again, as on_answered). */
static void reap_batch_children(struct host *h)
{
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			return; /* ECHILD: nothing left */
		}
		pid_t pid = si.si_pid;
		if (pid == 0)
			return;
		if (!spawner_is(h, pid) && !probe_owns(pid) && spawner_unanswered(h)) {
			spawner_recheck_children_later(h);
			return;
		}
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!probe_reaped(pid, status))
			spawner_reaped(h, pid, status); /* or a stray: nothing more to do */
	}
}

static void on_children(struct watch *w, uint32_t events)
{
	(void)events;
	struct signalfd_siginfo si;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si))
		;
	reap_batch_children(container_of(w, struct waiting, children)->host);
}

static void finished_waiting(void *arg)
{
	((struct waiting *)arg)->done = true;
}

/* Runs a batch for cfg on a loop and a spawner of this process's own. Calls
 * use(b) with the finished batch; -1 when no loop could be set up. */
static int run_batch(struct config *cfg, bool check_keys, uint64_t timeout_ms,
		     void (*use)(struct probe_batch *b, void *arg), void *arg)
{
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	struct host *h = xcalloc(1, sizeof(*h));
	struct waiting w = {.children = {.fd = -1, .fn = on_children}, .host = h};
	h->pid = getpid();
	h->spawner.watch.fd = -1;
	h->loop = loop_new();
	int rc = -1;
	if (!h->loop || sigprocmask(SIG_BLOCK, &chld, &old) < 0)
		goto out;
	w.children.fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (w.children.fd < 0 || loop_watch(h->loop, &w.children, EPOLLIN) < 0)
		goto restore;
	spawner_open(h);
	/* No on_strays: a probe the spawner made without saying so is left to
	 * end by itself, as it always was here (this process's zeroed h->cgroups
	 * read as cgroups, so the host's stray killing returned at once). */
	spawner_attach(h, (struct spawner_hooks){.on_answered = reap_batch_children});
	struct probe_batch *b = start_batch(h, cfg, check_keys, timeout_ms, finished_waiting, &w);
	while (!w.done && loop_run_once(h->loop) == 0)
		;
	rc = w.done ? 0 : -1;
	if (w.done)
		use(b, arg);
	probe_batch_free(b);
	spawner_close(h);
restore:
	if (w.children.fd >= 0)
		close(w.children.fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
out:
	loop_free(h->loop);
	free(h);
	return rc;
}

static void copy_load_errors(struct probe_batch *b, void *arg)
{
	struct strv *out = arg;
	for (size_t i = 0; i < b->load_errors.n; i++)
		strv_push(out, xstrdup(b->load_errors.v[i]));
}

static size_t check_config(struct config *cfg, struct strv *load_errors)
{
	size_t before = load_errors->n;
	if (run_batch(cfg, true, PROBE_TIMEOUT_MS, copy_load_errors, load_errors) < 0) {
		strv_push(load_errors, xasprintf("unable to probe the plugins: %s", strerror(errno)));
		return 1;
	}
	return load_errors->n - before;
}

size_t probe_check_config(struct config *cfg, struct strv *load_errors)
{
	if (load_errors)
		return check_config(cfg, load_errors);
	struct strv unused = {0}; /* the caller lets plugins that do not load fail at start */
	size_t failed = check_config(cfg, &unused);
	strv_free(&unused);
	return failed;
}

struct describing {
	FILE *out;
	int rc;
};

static void print_description(struct probe_batch *b, void *arg)
{
	struct describing *d = arg;
	const struct probe *p = b->v[0];
	const struct probe_result *r = &p->result;
	if (!r->ok) {
		fprintf(stderr, "ward: %s: %s: %s\n", p->conf->plugin, reason_name(r->why.reason), r->why.message);
		return;
	}
	fprintf(d->out, "%s %s (ward plugin ABI %d)\n", r->name[0] ? r->name : "(no name)",
		r->version[0] ? r->version : "(no version)", WARD_ABI_VERSION);
	if (r->description[0])
		fprintf(d->out, "%s\n", r->description);
	options_print(&p->options, d->out);
	d->rc = 0;
}

int probe_describe(const char *path, uint64_t timeout_ms, FILE *out)
{
	/* One worker with every default, in a configuration of its own. */
	/* Absolute: the probe works in "/". */
	char name[] = "describe", state_dir[] = "/nonexistent", *plugin = realpath(path, NULL);
	if (!plugin)
		plugin = xstrdup(path); /* the loader says what is wrong with it */
	struct worker_conf w = {.name = name, .plugin = plugin, .instances = 1};
	struct config cfg = {.workers = &w, .nworkers = 1, .state_dir = state_dir};
	struct describing d = {.out = out, .rc = -1};
	if (run_batch(&cfg, false, timeout_ms, print_description, &d) < 0)
		fprintf(stderr, "ward: unable to probe %s: %s\n", path, strerror(errno));
	free(plugin);
	return d.rc;
}
