/*
 * run.c - the running host (implements run.h): boot, the event loop,
 * signals (through a signalfd: no signal handlers), reaping, batching of
 * history writes, and shutdown that leaves no process behind. It is the top
 * of the daemon: it calls into every other file of daemon/, and none calls
 * into it. Reaping children is daemon/reaper.c.
 */
#define _GNU_SOURCE
#include "daemon/host.h"
#include "daemon/cgroup.h"
#include "daemon/control.h"
#include "daemon/dependency.h"
#include "daemon/history.h"
#include "daemon/http.h"
#include "daemon/jobs.h"
#include "daemon/listener.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/probe.h"
#include "common/reason.h"
#include "common/loop.h"
#include "daemon/channel.h"
#include "daemon/pidtable.h"
#include "daemon/reaper.h"
#include "daemon/reload.h"
#include "daemon/run.h"
#include "daemon/spawner_client.h"
#include "daemon/statedir.h"
#include "daemon/tick.h"
#include "daemon/observer.h"
#include "daemon/worker.h"
#include "common/util.h"

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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_DELAY_NS (20 * NS_PER_MS)  /* batch history writes this long */
#define FLUSH_RETRY_NS (1 * NS_PER_SEC)
#define FLUSH_CONTENDED_NS (50 * NS_PER_MS) /* a reader's lock lasts moments */

/* ---- history batching ---- */

static void flush_history(struct timer *t)
{
	struct host *h = container_of(t, struct host, flush_timer);
	if (statedir_repairing()) { /* its repair writes the history, once state_dir is back */
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
		return;
	}
	if (history_flush(h->history) < 0) {
		int64_t wait = history_contended(h->history) ? FLUSH_CONTENDED_NS : FLUSH_RETRY_NS;
		timer_arm(h->loop, &h->flush_timer, mono_ns() + wait);
	} else if (history_take_recreated(h->history)) {
		/* A fresh database: tell it who is running, right away. */
		worker_record_host(h);
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
	}
}

/* Before a deadline is judged (an init_timeout above all), every frame sent
 * so far is read: a busy host (a big boot) may reach the deadline before
 * reading a READY the worker sent in time. */
static void read_frames_before_timers(void *arg)
{
	channel_read_frames(arg);
}

/* Before the loop sleeps: whatever was recorded since gets written in one
 * batch, FLUSH_DELAY_NS from now (or when the retry timer says); the
 * worker lines of this wake-up meant for stdout go in one write. */
static void before_sleep(void *arg)
{
	struct host *h = arg;
	if (history_dirty(h->history) && !timer_armed(&h->flush_timer))
		timer_arm(h->loop, &h->flush_timer, mono_ns() + FLUSH_DELAY_NS);
	jobs_before_sleep(h); /* hand-offs, then this wake-up's job writes in one batch */
	log_flush_stdout();
}

/* ---- boot and shutdown ---- */

static void stop_every_worker(struct host *h)
{
	notify_stopping();
	h->shutting_down = true;
	dependency_request_stop_all(h);
}

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
	stop_every_worker(h);
}

/* worker.c sets critical_failed when a `critical = yes` worker gives up (it
 * must not drive the loop itself); the stop begins here, after that event. */
static void stop_if_critical_failed(struct host *h)
{
	if (h->critical_failed && !h->shutting_down)
		stop_every_worker(h);
}

/* SIGHUP: the same reload as `ward reload`, its report going to the host's log. */
struct hup_reload {
	FILE *out;
	char *text;
	size_t len;
};

static void log_reload(void *arg)
{
	struct hup_reload *r = arg;
	fclose(r->out);
	char *save, *first = strtok_r(r->text, "\n", &save);
	bool ok = first && strcmp(first, "ok") == 0;
	host_log(ok ? HOST_INFO : HOST_ERR, "SIGHUP: reload %s", ok ? "applied" : "refused");
	for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		host_log(ok ? HOST_INFO : HOST_ERR, "reload: %s", line);
	free(r->text);
	free(r);
}

static void reload_from_signal(struct host *h)
{
	struct hup_reload *r = xcalloc(1, sizeof(*r));
	r->out = open_memstream(&r->text, &r->len);
	if (!r->out) {
		host_log(HOST_ERR, "SIGHUP: unable to reload: out of memory");
		free(r);
		return;
	}
	if (reload_begin(h, r->out, log_reload, r) == 0)
		log_reload(r);
}

struct signal_watch {
	struct watch watch;
	struct host *host;
	bool told[NSIG]; /* an ignored signal is reported the first time only */
};

/* Signals whose default action would end the host but that ask nothing of it:
 * a stray one (a logrotate script's USR2, a timer's ALRM, a keyboard's QUIT)
 * must not end supervision. They are read from the signalfd, reported once
 * and ignored. Faults (SEGV, BUS, ILL, FPE, TRAP, SYS) and ABRT keep their
 * default: the host itself is broken, or systemd's watchdog wants a core. */
static const int ignored_signals[] = {SIGQUIT, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
				      SIGIO,   SIGPWR,  SIGSTKFLT, SIGXCPU};

static void add_ignored_signals(sigset_t *set)
{
	for (size_t i = 0; i < sizeof(ignored_signals) / sizeof(ignored_signals[0]); i++)
		sigaddset(set, ignored_signals[i]);
	/* Real-time signals end a process by default too; sigaddset refuses
	 * those glibc (or valgrind) keeps for itself, which is what we want. */
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
}

static void report_ignored(struct signal_watch *sw, const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo;
	if (sig <= 0 || sig >= NSIG || sw->told[sig])
		return;
	sw->told[sig] = true;
	char name[32], from[64] = "from the kernel";
	signal_name(sig, name, sizeof(name));
	if (si->ssi_code == SI_USER || si->ssi_code == SI_QUEUE || si->ssi_code == SI_TKILL)
		snprintf(from, sizeof(from), "from pid %u (uid %u)", si->ssi_pid, si->ssi_uid);
	host_log(HOST_WARN, "%s %s ignored (SIGTERM or SIGINT stops the host, SIGHUP reloads, SIGUSR1 reopens the logs); "
			    "any further %s is ignored silently", name, from, name);
}

/* SIGUSR1: an external logrotate renamed the logs; new lines go to new files. */
static void reopen_logs(struct host *h)
{
	size_t reopened = 0;
	for (size_t i = 0; i < h->nworkers; i++)
		reopened += log_reopen(&h->workers[i]->log) == 0;
	host_log(HOST_INFO, "SIGUSR1: reopened %zu of %zu worker logs", reopened, h->nworkers);
}

static void on_signal(struct watch *w, uint32_t events)
{
	(void)events;
	struct signal_watch *sw = container_of(w, struct signal_watch, watch);
	struct host *h = sw->host;
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
		case SIGUSR1:
			reopen_logs(h);
			break;
		default:
			report_ignored(sw, &si);
			break;
		}
	}
	if (reap)
		reaper_reap(h);
}

/* Every signal the host acts on, or that must not end it, arrives on one
 * signalfd, so it is blocked; workers start with an empty mask and default
 * actions all the same (child_reset_signals). */
static int setup_signals(struct signal_watch *sw, struct loop *loop)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	add_ignored_signals(&set);
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
	/* A valid configuration's format is in force: with log_format = json,
	 * its warnings are JSON lines as every other event on stderr. */
	bool json = !cfg->errors.n && cfg->log_format == LOG_FORMAT_JSON;
	for (size_t i = 0; i < cfg->warnings.n; i++)
		if (json)
			host_log(HOST_WARN, "%s", cfg->warnings.v[i]);
		else
			fprintf(stderr, "ward: warning: %s\n", cfg->warnings.v[i]);
	for (size_t i = 0; i < cfg->errors.n; i++)
		fprintf(stderr, "ward: error: %s\n", cfg->errors.v[i]);
}

/* Boot is over once nothing started at boot is still starting. */
static bool boot_settled(const struct host *h)
{
	if (h->nstarting)
		return false; /* the usual answer during boot, without a scan */
	for (size_t i = 0; i < h->nworkers; i++) {
		const struct worker *w = h->workers[i];
		if (w->pending_start && !w->blocked_by && !listener_unbound(w))
			return false;
		for (int k = 0; k < w->ninst; k++)
			if (w->inst[k]->state == IS_STARTING)
				return false;
	}
	return true;
}

/* systemd's view of the host: READY=1 once boot is over, and a STATUS= line
 * whenever the counts change. */
static void tell_systemd(struct host *h)
{
	if (!notify_enabled())
		return; /* no one to tell: no counting after every event */
	size_t running = 0, failed = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		enum istate s = worker_state(h->workers[i]);
		running += s == IS_RUNNING;
		failed += s == IS_FAILED;
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

/* A worker that runs nothing now but that the host would start by itself:
 * it waits for what it requires, or for a connection to its sockets. */
static bool may_run_again(const struct worker *w)
{
	if (worker_is_active(w) || w->pending_start)
		return true;
	return w->conf->listen.n && !w->conf->autostart && worker_state(w) != IS_FAILED;
}

/* exit_when_done: the workers are a batch of work, not services. Once no
 * worker can run again, the host ends: 0 when none failed, 3 when one did.
 * A worker stopped by `ward stop`, or never started, waits for nothing the
 * host does itself. Called when a state changed, not on every turn. */
static void end_when_nothing_can_run(struct host *h)
{
	if (!h->cfg.exit_when_done || h->shutting_down || h->test)
		return;
	size_t failed = 0, done = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		if (may_run_again(h->workers[i]))
			return;
		failed += worker_state(h->workers[i]) == IS_FAILED;
		done += worker_state(h->workers[i]) == IS_DONE;
	}
	host_log(HOST_INFO, "exit_when_done: no worker can run again (%zu done, %zu failed): host exiting with status %d",
		 done, failed, failed ? 3 : 0);
	h->ended_failed = failed > 0;
	h->shutting_down = true;
}

/* Lets dependency ordering act on every state change, until nothing moves. */
static void settle_order(struct host *h)
{
	/* Every state change sets order_dirty (set_state, requests, listeners,
	 * reload); without one the per-worker passes below would find nothing new,
	 * and running them on every loop turn made boot quadratic. */
	bool changed = h->order_dirty;
	for (size_t rounds = 0; h->order_dirty && rounds <= h->nworkers + 1; rounds++) {
		h->order_dirty = false;
		dependency_settle(h);
	}
	reload_finish(h);
	if (!changed)
		return;
	jobs_state_changed(h); /* idle instances take jobs; waiters of workers that will not come are told */
	for (size_t i = 0; h->nlistening && i < h->nworkers; i++)
		listener_update(h->workers[i]);
	if (!h->boot_over && boot_settled(h))
		h->boot_over = true; /* and stays so: /readyz judges the workers from then on */
	tell_systemd(h);
	end_when_nothing_can_run(h);
}

static bool all_settled(const struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (!worker_is_settled(h->workers[i]))
			return false;
	return true;
}

/* Waits for pid, our child, to end and reaps it, until the deadline. */
static bool reap_by(pid_t pid, int64_t deadline_ns)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int ms = (int)((deadline_ns - mono_ns()) / NS_PER_MS);
	if (fd >= 0) {
		while (poll(&p, 1, ms > 0 ? ms : 0) < 0 && errno == EINTR)
			;
		close(fd);
	}
	return waitpid(pid, NULL, WNOHANG) == pid;
}

/* Last line of defence when the loop itself failed: nothing outlives the
 * host, and the host does not wait forever for what SIGKILL cannot end. */
static void kill_survivors(struct host *h)
{
	int64_t deadline = mono_ns() + KILL_WAIT_MS * NS_PER_MS;
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			struct instance *in = h->workers[i]->inst[k];
			if (in->pid > 0 && !in->reaped) {
				kill(in->pid, SIGKILL);
				kill(-in->pid, SIGKILL);
			}
			cgroup_instance_kill(in);
		}
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			struct instance *in = h->workers[i]->inst[k];
			if (in->pid > 0 && !in->reaped && !reap_by(in->pid, deadline))
				host_log(HOST_ERR, "[%s:%d] could not kill pid %d: still alive after SIGKILL",
					 h->workers[i]->conf->name, k, (int)in->pid);
			in->pid = 0;
		}
}

/* listener.c's h->connection_starts: socket activation. */
static void start_on_connection(struct worker *w)
{
	dependency_request_start(w, ACTIVATION_CONNECTION);
}

/* Every socket of every worker exists before the first worker starts (one
 * that cannot be bound yet holds its worker back, and is retried). */
static int open_sockets(struct host *h)
{
	int rc = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->conf->listen.n && listener_open_all(w) < 0)
			rc = -1;
	}
	return rc;
}

static void boot(struct host *h)
{
	int64_t t0 = mono_ns();
	size_t started = 0;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (w->conf->autostart)
			dependency_request_start(w, ACTIVATION_BOOT);
	}
	settle_order(h);
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++)
			started += h->workers[i]->inst[k]->pid > 0 || h->workers[i]->inst[k]->spawning;
	if (!h->test)
		host_log(HOST_INFO, "host up: %zu workers configured, %zu processes started in %.1f ms",
			 h->nworkers, started, (double)(mono_ns() - t0) / NS_PER_MS);
}

/* Configuration errors and warnings: printed, or for `ward test` handed to
 * the report, which names what the user typed, not the generated file. */
static void report_config(const struct host *h, bool refused, const char *config_dir)
{
	if (h->test) {
		h->test->on_config(h->test->ctx, &h->cfg);
		return;
	}
	print_config_problems(&h->cfg);
	if (refused)
		fprintf(stderr, "ward: %zu configuration error%s; nothing was started (`ward check -c %s` lists them too)\n",
			h->cfg.errors.n, h->cfg.errors.n == 1 ? "" : "s", config_dir);
}

static void plugins_checked(void *arg)
{
	*(bool *)arg = true;
}

/* Probes every plugin before any worker exists, the loop running meanwhile
 * (signals are served; a constructor that does not return costs at most
 * PROBE_TIMEOUT_MS). -1 when the configuration is refused (said) or the
 * host was asked to stop. */
static int check_plugins(struct host *h)
{
	bool done = false;
	h->booting = true;
	struct probe_batch *b = probe_batch_start(h, &h->cfg, plugins_checked, &done);
	while (!done && !h->shutting_down)
		if (loop_run_once(h->loop) < 0) {
			host_log(HOST_ERR, "event loop failed: %s", strerror(errno));
			break;
		}
	h->booting = false;
	const struct strv *load_errors = probe_batch_load_errors(b);
	for (size_t i = 0; done && i < load_errors->n; i++)
		host_log(HOST_WARN, "%s; its workers will fail to start", load_errors->v[i]);
	probe_batch_free(b);
	if (done && h->cfg.errors.n)
		report_config(h, true, h->cfg.dir);
	return done && !h->cfg.errors.n ? 0 : -1;
}

static int host_main(const char *config_dir, const struct host_observer *test);

int host_run(const char *config_dir)
{
	return host_main(config_dir, NULL);
}

int host_run_test(const char *config_dir, const struct host_observer *test)
{
	return host_main(config_dir, test);
}

/* `ward test`: once the worker has ended for good, so has the test. */
static void end_test_when_settled(struct host *h)
{
	if (!h->test)
		return;
	for (int i = 0; h->test->on_running && h->nworkers && i < h->workers[0]->ninst; i++) {
		struct instance *in = h->workers[0]->inst[i];
		if (in->state == IS_RUNNING && !in->stop_requested)
			h->test->on_running(h->test->ctx, in); /* `ward test --job` hands it the next job */
	}
	if (h->test->take_stop(h->test->ctx)) /* --cycles N were run: a real stop ends the run */
		worker_stop(h->workers[0]);
	if (h->shutting_down)
		return;
	for (size_t i = 0; i < h->nworkers; i++)
		if (!worker_is_settled(h->workers[i]) || h->workers[i]->pending_start)
			return;
	h->shutting_down = true;
}

/* --timeout: stop the plugin. Its stop gets a short grace rather than
 * stop_timeout (a stop already under way too), so the run ends soon after. */
static void test_timed_out(struct timer *t)
{
	struct host *h = container_of(t, struct host, test_timer);
	int64_t grace_end = mono_ns() + TEST_STOP_GRACE_MS * NS_PER_MS;
	h->test->on_timeout(h->test->ctx);
	for (size_t i = 0; i < h->cfg.nworkers; i++)
		if (h->cfg.workers[i].stop_timeout_ms > TEST_STOP_GRACE_MS)
			h->cfg.workers[i].stop_timeout_ms = TEST_STOP_GRACE_MS;
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			struct instance *in = h->workers[i]->inst[k];
			if (in->state == IS_STOPPING && timer_armed(&in->timer) && in->timer.deadline > grace_end)
				timer_arm(h->loop, &in->timer, grace_end);
		}
	begin_shutdown(h, SIGTERM);
}

/* A ready frame (channel.c) is an event of the instance's state machine. */
static void frame_said_ready(void *ctx, struct instance *in)
{
	(void)ctx;
	instance_ready(in);
}

/* A job's end: `ward test --job` hands the next one (the dispatcher, jobs.c,
 * takes it in a real host). */
static void frame_job_ended(void *ctx, struct instance *in, const struct frame_job_end *end, const char *message,
			    const void *result, size_t result_len)
{
	(void)ctx;
	const struct host_observer *test = in->worker->host->test;
	if (test && test->on_job_end)
		test->on_job_end(test->ctx, in, end, message, result, result_len);
	else if (!test)
		jobs_job_ended(ctx, in, end, message, result, result_len);
}

/* The loop with its signals, the spawner on it, history, the runtime channel
 * and the host's own timers. 0, or -1 when there is no loop (said). */
static int open_loop(struct host *h, struct signal_watch *sw)
{
	h->loop = loop_new();
	if (!h->loop || setup_signals(sw, h->loop) < 0) {
		host_log(HOST_ERR, "unable to set up the event loop: %s", strerror(errno));
		return -1;
	}
	/* The spawner says what it made; what to do about strays is the host's. */
	spawner_attach(h, (struct spawner_hooks){.on_strays = host_kill_strays, .on_answered = host_recheck_children});
	char *db = xasprintf("%s/ward.db", h->cfg.state_dir);
	h->history = history_open(db, h->cfg.history_keep);
	free(db);
	h->flush_timer.fn = flush_history;
	loop_before_sleep(h->loop, before_sleep, h);
	loop_before_timers(h->loop, read_frames_before_timers, h);
	h->notify_timer.fn = ping_systemd;
	h->notify_period = h->test ? 0 : notify_watchdog_ns() / 2;
	if (h->notify_period > 0)
		timer_arm(h->loop, &h->notify_timer, mono_ns() + h->notify_period);
	tick_init(h);
	channel_init(h, (struct channel_handler){.on_ready = frame_said_ready, .on_job_end = frame_job_ended});
	return 0;
}

/* One worker per configured [worker]. 0, or -1 when one could not be made (said). */
static int create_workers(struct host *h)
{
	h->workers = xcalloc(h->cfg.nworkers ? h->cfg.nworkers : 1, sizeof(*h->workers));
	for (size_t i = 0; i < h->cfg.nworkers; i++) {
		struct worker *w = xcalloc(1, sizeof(*w));
		h->workers[h->nworkers++] = w;
		if (worker_init(w, h, &h->cfg.workers[i]) < 0)
			return -1;
	}
	return 0;
}

static void free_workers(struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++) {
		listener_close_all(h->workers[i]);
		worker_free(h->workers[i]);
		free(h->workers[i]);
	}
	free(h->workers);
}

static void free_old_configs(struct host *h)
{
	for (size_t i = 0; i < h->nold; i++) {
		config_free(h->old_configs[i]);
		free(h->old_configs[i]);
	}
	free(h->old_configs);
}

/* The loop, until the host is stopping and every worker has. 0, or -1 when
 * the loop itself failed (said). */
static int run_until_stopped(struct host *h)
{
	while (!(h->shutting_down && all_settled(h))) {
		if (loop_run_once(h->loop) < 0) {
			host_log(HOST_ERR, "event loop failed: %s", strerror(errno));
			return -1;
		}
		stop_if_critical_failed(h);
		settle_order(h);
		end_test_when_settled(h);
	}
	return 0;
}

static int host_main(const char *config_dir, const struct host_observer *test)
{
	struct host *h = xcalloc(1, sizeof(*h));
	h->test = test;
	h->connection_starts = start_on_connection;
	h->spawner.watch.fd = -1;
	h->cgroups.workers_fd = -1;
	struct signal_watch sw = {.watch.fd = -1, .host = h};
	int status = 1;
	h->pid = getpid();
	if (!test)
		notify_open(); /* first: no worker may inherit NOTIFY_SOCKET */
	raise_fd_limit(); /* before the spawner: workers inherit its limit, as they always did */
	spawner_open(h);
	if (config_load(config_dir, &h->cfg) < 0) {
		report_config(h, true, config_dir);
		goto out;
	}
	if (!test) /* `ward test` reports lines itself, whatever [ward] says */
		log_configure(h->cfg.log_output, h->cfg.log_format, NULL);
	if (statedir_open(&h->cfg) < 0)
		goto out;
	cgroup_setup(h); /* before anything starts: it kills what a previous host left */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		host_log(HOST_WARN, "unable to become a child subreaper: %s; descendants that leave their worker's process group may survive it",
			 strerror(errno));
	if (open_loop(h, &sw) < 0)
		goto out;
	if (!test)
		log_configure(h->cfg.log_output, h->cfg.log_format, h->loop);
	worker_record_host(h); /* no worker exists yet: the host's rows */
	if (!test && http_open(h) < 0)
		goto out; /* before anything starts: refused, as for a held lock (docs/operator-guide.md) */
	if (check_plugins(h) < 0) {
		status = h->shutting_down ? 0 : 1; /* asked to stop meanwhile, or refused */
		goto out;
	}
	report_config(h, false, config_dir);

	if (create_workers(h) < 0)
		goto out;
	h->tick_ns = tick_period(h);
	dependency_link(h);
	/* A `ward test` run whose socket cannot be bound ends here, reported. */
	bool unbound = open_sockets(h) < 0 && test;
	if (test) {
		h->test_timer.fn = test_timed_out;
		timer_arm(h->loop, &h->test_timer, mono_ns() + test->timeout_ns);
	} else {
		jobs_open(h); /* before any worker starts: jobs a dead host left running are failed first */
		control_open(h);
		statedir_watch(h);
	}
	if (unbound)
		h->shutting_down = true;
	else
		boot(h);
	h->order_dirty = true; /* the first settle tells systemd, even with no worker */

	bool loop_failed = run_until_stopped(h) < 0;
	if (!test)
		host_log(HOST_INFO, "every worker has stopped; host exiting%s",
			 h->critical_failed ? " with status 3 (a critical worker failed)" : "");
	/* docs/lifecycle.md, ward run's exit status: 0 after a requested stop (or
	 * exit_when_done with nothing failed), 3 after a critical failure or
	 * exit_when_done with a worker failed (1: could not start, above) */
	status = loop_failed ? 1 : h->critical_failed || h->ended_failed ? 3 : 0;
out:
	kill_survivors(h);
	spawner_close(h);
	reload_abandon(h);
	http_close(h);
	control_close(h);
	jobs_close(h);
	if (test && h->nworkers)
		test->on_settled(test->ctx, h->workers[0]);
	free_workers(h);
	log_close_stdout(); /* after the workers' last lines */
	cgroup_teardown(h);
	free_old_configs(h);
	channel_close(h);
	history_close(h->history);
	statedir_close(h); /* the lock goes last: the history is closed */
	if (sw.watch.fd >= 0)
		close(sw.watch.fd);
	loop_free(h->loop);
	config_free(&h->cfg);
	notify_close();
	pidtable_free();
	free(h);
	return status;
}
