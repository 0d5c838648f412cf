/*
 * host.c - the running host: boot, the event loop, signals (through a
 * signalfd: no signal handlers), reaping, the progress tick, batching of
 * history writes, and shutdown that leaves no process behind.
 *
 * Children are reaped with waitid(WNOWAIT) first, so the dead leader's pid
 * still names its process group while the host kills that group: a pid can
 * not be reused under us. The host is a child subreaper, so a worker's
 * descendants that left its process group are re-parented here and killed.
 */
#define _GNU_SOURCE
#include "host.h"
#include "control.h"
#include "dependency.h"
#include "history.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "options.h"
#include "loop.h"
#include "output.h"
#include "spawner.h"
#include "statedir.h"
#include "tester.h"
#include "worker.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLUSH_DELAY_NS (20 * NS_PER_MS)  /* batch history writes this long */
#define FLUSH_RETRY_NS (1 * NS_PER_SEC)
#define TICK_MAX_NS (1 * NS_PER_SEC)
#define TICK_MIN_NS (10 * NS_PER_MS)

/* ---- pid -> instance: open addressing, linear probing ---- */

struct pid_entry {
	pid_t pid; /* 0: empty, -1: deleted */
	struct instance *in;
};

static struct pid_entry *pids;
static size_t pids_cap, pids_used;

static size_t pid_hash(pid_t pid)
{
	return ((size_t)pid * 2654435761u) & (pids_cap - 1);
}

static void pids_grow(void)
{
	struct pid_entry *old = pids;
	size_t old_cap = pids_cap;
	pids_cap = pids_cap ? pids_cap * 2 : 1024;
	pids = xcalloc(pids_cap, sizeof(*pids));
	pids_used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].pid > 0) {
			size_t j = pid_hash(old[i].pid);
			while (pids[j].pid != 0)
				j = (j + 1) & (pids_cap - 1);
			pids[j] = old[i];
			pids_used++;
		}
	free(old);
}

static struct pid_entry *pid_find(pid_t pid)
{
	if (!pids_cap)
		return NULL;
	for (size_t j = pid_hash(pid);; j = (j + 1) & (pids_cap - 1)) {
		if (pids[j].pid == pid)
			return &pids[j];
		if (pids[j].pid == 0)
			return NULL;
	}
}

void host_note_pid(struct host *h, struct instance *in)
{
	(void)h;
	if ((pids_used + 1) * 2 > pids_cap)
		pids_grow();
	size_t j = pid_hash(in->pid);
	while (pids[j].pid > 0)
		j = (j + 1) & (pids_cap - 1);
	if (pids[j].pid == 0)
		pids_used++;
	pids[j] = (struct pid_entry){in->pid, in};
}

struct instance *host_instance_of(struct host *h, pid_t pid)
{
	(void)h;
	struct pid_entry *e = pid > 0 ? pid_find(pid) : NULL;
	return e ? e->in : NULL;
}

void host_forget_pid(struct host *h, struct instance *in)
{
	(void)h;
	struct pid_entry *e = pid_find(in->pid);
	if (e)
		e->pid = -1; /* a tombstone keeps later probes intact */
}

/* ---- history batching ---- */

static void record_host(struct host *h, const char *dir);

void host_record_live_state(struct host *h)
{
	record_host(h, h->cfg.dir);
	for (size_t i = 0; i < h->nworkers; i++)
		worker_record_all(h->workers[i]);
}

static void flush_history(struct timer *t)
{
	struct host *h = container_of(t, struct host, flush_timer);
	if (statedir_repairing()) { /* its repair writes the history, once state_dir is back */
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
		return;
	}
	if (history_flush(h->history) < 0) {
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_RETRY_NS);
	} else if (history_take_recreated(h->history)) {
		/* A fresh database: tell it who is running, right away. */
		host_record_live_state(h);
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
	}
}

void host_history_changed(struct host *h)
{
	if (!timer_armed(&h->flush_timer))
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
}

/* ---- the progress tick: one timer for every instance ---- */

/* The watchdog's check period: a tenth of the shortest watchdog, at most a
 * second, so detection lands within watchdog + 10% (+1 s at most) while an
 * idle host wakes at most once a second. 0 when no worker has a watchdog:
 * then an idle host does not wake at all. */
static int64_t tick_period(const struct host *h)
{
	int64_t period = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		uint64_t wd = h->workers[i]->conf->watchdog_ms;
		int64_t p = (int64_t)wd * NS_PER_MS / 10;
		if (wd && (period == 0 || p < period))
			period = p;
	}
	if (period > TICK_MAX_NS)
		period = TICK_MAX_NS;
	return period && period < TICK_MIN_NS ? TICK_MIN_NS : period;
}

static void progress_tick(struct timer *t)
{
	struct host *h = container_of(t, struct host, tick_timer);
	int64_t now = mono_ns();
	int64_t next = now + h->tick_ns;
	bool any_running = false;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		for (int k = 0; k < w->ninst; k++) {
			struct instance *in = &w->inst[k];
			instance_check_progress(in, now);
			uint64_t wd = w->conf->watchdog_ms;
			if (in->state != IS_RUNNING || !wd)
				continue;
			any_running = true;
			/* Wake exactly when a stalled cycle would cross its watchdog. */
			int64_t due = in->progress_ns + (int64_t)wd * NS_PER_MS;
			if (in->kill_reason == REASON_NONE && due > now && due < next)
				next = due;
		}
	}
	if (any_running)
		timer_arm(h->loop, &h->tick_timer, next);
}

void host_progress_tick_needed(struct host *h)
{
	if (h->tick_ns && !timer_armed(&h->tick_timer))
		timer_arm(h->loop, &h->tick_timer, mono_ns() + h->tick_ns);
}

/* ---- children ---- */

/* Kills children of the host that are not worker leaders: descendants of a
 * dead worker that had left its process group (we are their subreaper), or
 * a process a failing spawner forked without telling. */
void host_kill_strays(struct host *h)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)h->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 0 && !pid_find(pid) && !spawner_is(h, pid))
			kill(pid, SIGKILL);
	fclose(f);
}

static void reap_children(struct host *h)
{
	bool worker_died = false;
	for (;;) {
		siginfo_t si = {0};
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nothing left */
		}
		pid_t pid = si.si_pid;
		if (pid == 0)
			break;
		struct pid_entry *e = pid_find(pid);
		struct instance *in = e ? e->in : NULL;
		/* The leader is a zombie, so its pid still names its group: kill the
		 * group before reaping, then nothing of the worker outlives it. Its
		 * last frames are read while its pid still names it, too. */
		if (in) {
			kill(-pid, SIGKILL);
			output_read_frames(h);
		}
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (in) {
			output_drain(in);
			instance_exited(in, status);
			worker_died = true;
		} else {
			spawner_reaped(h, pid, status);
		}
	}
	if (worker_died)
		host_kill_strays(h);
}

/* ---- boot and shutdown ---- */

static void begin_shutdown(struct host *h, int sig)
{
	if (h->shutting_down) {
		host_log(HOST_WARN, "SIG%s again: killing every worker now", sigabbrev_np(sig));
		for (size_t i = 0; i < h->nworkers; i++)
			worker_kill(h->workers[i]);
		return;
	}
	host_log(HOST_INFO, "SIG%s: stopping every worker (send it again to kill them at once)",
		 sigabbrev_np(sig));
	notify_stopping();
	h->shutting_down = true;
	dependency_request_stop_all(h);
}

/* SIGHUP: the same reload as `ward reload`, its report going to the host's log. */
static void reload_from_signal(struct host *h)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out) {
		host_log(HOST_ERR, "SIGHUP: unable to reload: out of memory");
		return;
	}
	int rc = reload_apply(h, out);
	fclose(out);
	char *save, *first = strtok_r(text, "\n", &save);
	host_log(rc == 0 ? HOST_INFO : HOST_ERR, "SIGHUP: reload %s", rc == 0 ? "applied" : "refused");
	(void)first; /* "ok" or "error": said above */
	for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		host_log(rc == 0 ? HOST_INFO : HOST_ERR, "reload: %s", line);
	free(text);
}

struct signal_watch {
	struct watch watch;
	struct host *host;
};

static void on_signal(struct watch *w, uint32_t events)
{
	(void)events;
	struct host *h = container_of(w, struct signal_watch, watch)->host;
	struct signalfd_siginfo si;
	bool reap = false;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap = true;
			break;
		case SIGTERM:
		case SIGINT:
			begin_shutdown(h, (int)si.ssi_signo);
			break;
		case SIGHUP:
			reload_from_signal(h);
			break;
		}
	}
	if (reap)
		reap_children(h);
}

static int setup_signals(struct signal_watch *sw, struct loop *loop)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a file size limit makes writes fail (EFBIG), not the host die */
	sw->watch.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	sw->watch.fn = on_signal;
	if (sw->watch.fd < 0)
		return -1;
	return loop_watch(loop, &sw->watch, EPOLLIN);
}

/* One descriptor per worker process, and a few: make room for thousands. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void print_config_problems(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->warnings.n; i++)
		fprintf(stderr, "ward: warning: %s\n", cfg->warnings.v[i]);
	for (size_t i = 0; i < cfg->errors.n; i++)
		fprintf(stderr, "ward: error: %s\n", cfg->errors.v[i]);
}

void host_state_changed(struct host *h)
{
	h->order_dirty = true;
}

/* Boot is over once nothing started at boot is still starting. */
static bool boot_settled(const struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		const struct worker *w = h->workers[i];
		if (w->pending_start && !w->blocked_by)
			return false;
		for (int k = 0; k < w->ninst; k++)
			if (w->inst[k].state == IS_STARTING)
				return false;
	}
	return true;
}

/* systemd's view of the host: READY=1 once boot is over, and a STATUS= line
 * whenever the counts change. */
static void tell_systemd(struct host *h)
{
	size_t running = 0, failed = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		const char *s = worker_state(h->workers[i]);
		running += strcmp(s, "running") == 0;
		failed += strcmp(s, "failed") == 0;
	}
	char status[128];
	snprintf(status, sizeof(status), "%zu workers: %zu running, %zu failed%s", h->nworkers, running, failed,
		 h->shutting_down ? "; stopping" : "");
	if (!h->ready_told && boot_settled(h)) {
		h->ready_told = true;
		notify_ready(status);
	} else if (h->ready_told && strcmp(status, h->told_status) != 0) {
		notify_status(status);
	}
	snprintf(h->told_status, sizeof(h->told_status), "%s", status);
}

static void ping_systemd(struct timer *t)
{
	struct host *h = container_of(t, struct host, notify_timer);
	notify_watchdog();
	timer_arm(h->loop, t, mono_ns() + h->notify_period);
}

/* Lets dependency ordering act on every state change, until nothing moves. */
static void settle_order(struct host *h)
{
	for (size_t rounds = 0; h->order_dirty && rounds <= h->nworkers + 1; rounds++) {
		h->order_dirty = false;
		dependency_settle(h);
	}
	reload_finish(h);
	for (size_t i = 0; i < h->nworkers; i++)
		listener_update(h->workers[i]);
	tell_systemd(h);
}

static bool all_settled(const struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (!worker_is_settled(h->workers[i]))
			return false;
	return true;
}

/* Last line of defence when the loop itself failed: nothing outlives the host. */
static void kill_survivors(struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		for (int k = 0; k < w->ninst; k++) {
			pid_t pid = w->inst[k].pid;
			if (pid <= 0)
				continue;
			kill(-pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			w->inst[k].pid = 0;
		}
	}
}

/* Every socket of every worker exists before the first worker starts. */
static void open_sockets(struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->conf->listen.n && listener_open_all(w) < 0)
			worker_refuse(w, "unable to bind its listen sockets");
	}
}

static void boot(struct host *h)
{
	int64_t t0 = mono_ns();
	size_t started = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->conf->autostart)
			dependency_request_start(w, "boot");
	}
	settle_order(h);
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++)
			started += h->workers[i]->inst[k].pid > 0;
	if (!h->test)
		host_log(HOST_INFO, "host up: %zu workers configured, %zu processes started in %.1f ms",
			 h->nworkers, started, (double)(mono_ns() - t0) / NS_PER_MS);
}

static void record_host(struct host *h, const char *dir)
{
	char buf[32];
	history_reset_states(h->history);
	snprintf(buf, sizeof(buf), "%d", (int)h->pid);
	history_host(h->history, "pid", buf);
	snprintf(buf, sizeof(buf), "%lld", (long long)wall_ms());
	history_host(h->history, "started_at", buf);
	history_host(h->history, "config_dir", dir);
}

static int host_main(const char *config_dir, struct tester *test);

int host_run(const char *config_dir)
{
	return host_main(config_dir, NULL);
}

int host_run_test(const char *config_dir, struct tester *test)
{
	return host_main(config_dir, test);
}

/* `ward test`: once the worker has ended for good, so has the test. */
static void end_test_when_settled(struct host *h)
{
	if (!h->test || h->shutting_down)
		return;
	for (size_t i = 0; i < h->nworkers; i++)
		if (!worker_is_settled(h->workers[i]) || h->workers[i]->pending_start)
			return;
	h->shutting_down = true;
}

static void test_timed_out(struct timer *t)
{
	struct host *h = container_of(t, struct host, test_timer);
	tester_timed_out(h->test);
	begin_shutdown(h, SIGTERM);
}

static int host_main(const char *config_dir, struct tester *test)
{
	struct host *h = xcalloc(1, sizeof(*h));
	h->test = test;
	h->spawner.sock = -1;
	struct signal_watch sw = {.watch.fd = -1, .host = h};
	int status = 1;
	h->pid = getpid();
	if (!test)
		notify_open(); /* first: no worker may inherit NOTIFY_SOCKET */
	raise_fd_limit(); /* before the spawner: workers inherit its limit, as they always did */
	spawner_open(h);
	if (config_load(config_dir, &h->cfg) < 0 || (options_check_all(&h->cfg, NULL), h->cfg.errors.n)) {
		print_config_problems(&h->cfg);
		if (!test)
			fprintf(stderr, "ward: %zu configuration error%s; nothing was started (`ward check -c %s` lists them too)\n",
				h->cfg.errors.n, h->cfg.errors.n == 1 ? "" : "s", config_dir);
		goto out;
	}
	print_config_problems(&h->cfg);
	if (statedir_open(&h->cfg) < 0)
		goto out;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		host_log(HOST_WARN, "unable to become a child subreaper: %s; descendants that leave their worker's process group may survive it",
			 strerror(errno));
	h->loop = loop_new();
	if (!h->loop || setup_signals(&sw, h->loop) < 0) {
		host_log(HOST_ERR, "unable to set up the event loop: %s", strerror(errno));
		goto out;
	}
	char *db = xasprintf("%s/ward.db", h->cfg.state_dir);
	h->history = history_open(db, h->cfg.history_keep);
	free(db);
	h->flush_timer.fn = flush_history;
	h->notify_timer.fn = ping_systemd;
	h->notify_period = test ? 0 : notify_watchdog_ns() / 2;
	if (h->notify_period > 0)
		timer_arm(h->loop, &h->notify_timer, mono_ns() + h->notify_period);
	h->tick_timer.fn = progress_tick;
	record_host(h, h->cfg.dir);

	h->workers = xcalloc(h->cfg.nworkers ? h->cfg.nworkers : 1, sizeof(*h->workers));
	for (size_t i = 0; i < h->cfg.nworkers; i++) {
		struct worker *w = xcalloc(1, sizeof(*w));
		h->workers[h->nworkers++] = w;
		if (worker_init(w, h, &h->cfg.workers[i]) < 0)
			goto out;
	}
	h->tick_ns = tick_period(h);
	dependency_link(h);
	open_sockets(h);
	if (test) {
		h->test_timer.fn = test_timed_out;
		timer_arm(h->loop, &h->test_timer, mono_ns() + tester_timeout_ns(test));
	} else {
		control_open(h);
		statedir_watch(h);
	}
	boot(h);

	while (!(h->shutting_down && all_settled(h))) {
		if (loop_run_once(h->loop) < 0) {
			host_log(HOST_ERR, "event loop failed: %s", strerror(errno));
			break;
		}
		settle_order(h);
		end_test_when_settled(h);
	}
	if (!test)
		host_log(HOST_INFO, "every worker has stopped; host exiting");
	status = 0;
out:
	kill_survivors(h);
	spawner_close(h);
	control_close(h);
	if (test && h->nworkers)
		tester_collect(test, h->workers[0]);
	for (size_t i = 0; i < h->nworkers; i++) {
		worker_free(h->workers[i]);
		free(h->workers[i]);
	}
	free(h->workers);
	for (size_t i = 0; i < h->nold; i++) {
		config_free(h->old_configs[i]);
		free(h->old_configs[i]);
	}
	free(h->old_configs);
	output_close_channels(h);
	history_close(h->history);
	statedir_close(h); /* the lock goes last: the history is closed */
	if (sw.watch.fd >= 0)
		close(sw.watch.fd);
	loop_free(h->loop);
	config_free(&h->cfg);
	notify_close();
	free(pids);
	pids = NULL;
	pids_cap = pids_used = 0;
	free(h);
	return status;
}
