/*
 * runtime.c - what plugin code calls (the ward_* functions of <ward.h>;
 * the table behind ward_gauge and ward_count is worker/pmetrics.c) and the
 * loop that calls plugin code (init, cycles, jobs, shutdown; one job's
 * reading, running and end are worker/jobrun.c).
 *
 * It must stay cheap and obviously correct: an empty cycle costs a flag test,
 * an indirect call, one store to the shared slot and one load (did a metric
 * change?); no system call happens per cycle. Stop requests arrive as SIGTERM, whose handler only sets a flag
 * and bumps an eventfd that ward_sleep() waits on. Runs in the worker process
 * (or in the plugin author's test process, for an in-process harness run).
 */
#define _GNU_SOURCE
#include "worker/runtime.h"
#include "worker/jobrun.h"
#include "worker/pmetrics.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
/* Written by the stop handler; ward_sleep() waits on it. An eventfd (not a
 * self-pipe) so the runtime adds one descriptor, not two, to the worker. */
static int wake_fd = -1;

static void on_stop_signal(int sig)
{
	(void)sig;
	int saved = errno;
	stop_requested = 1;
	if (wake_fd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(wake_fd, &one, sizeof(one));
		(void)n; /* an overflowing counter is still readable: the sleeper wakes */
	}
	errno = saved;
}

/* Kills every pid listed in one /proc/self/task/<tid>/children file. Only
 * async-signal-safe calls: this runs in a signal handler. */
static void kill_listed(int dirfd, const char *tid)
{
	char path[64];
	size_t n = 0;
	while (tid[n] && n < 40) {
		path[n] = tid[n];
		n++;
	}
	const char *tail = "/children";
	for (size_t k = 0; tail[k]; k++)
		path[n++] = tail[k];
	path[n] = '\0';
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	ssize_t len = read(fd, buf, sizeof(buf));
	close(fd);
	pid_t pid = 0;
	for (ssize_t i = 0; i < len; i++) {
		if (buf[i] >= '0' && buf[i] <= '9') {
			pid = pid * 10 + (buf[i] - '0');
		} else if (pid > 0) {
			kill(pid, SIGKILL);
			pid = 0;
		}
	}
}

/* Every child of every thread of this process. */
static void kill_children(void)
{
	int dirfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return;
	char buf[4096];
	long len;
	while ((len = syscall(SYS_getdents64, dirfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < len;) {
			struct linux_dirent64 {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);
			if (d->name[0] >= '0' && d->name[0] <= '9')
				kill_listed(dirfd, d->name);
			off += d->reclen;
		}
	}
	close(dirfd);
}

/* The host is gone: nobody supervises this worker any more, so the worker
 * takes everything it started down, then itself. Its process group holds
 * most of it; its children that left the group with setsid() are killed
 * one by one first. (Deeper descendants that left the group are out of
 * reach once the host, their subreaper, is gone: with cgroups the spawner
 * kills them, see spawner.c.) */
static void on_host_death(int sig)
{
	(void)sig;
	kill_children();
	kill(0, SIGKILL);
}

int runtime_install_signals(void)
{
	stop_requested = 0; /* an in-process test may run plugins one after another */
	if (wake_fd >= 0)
		close(wake_fd);
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake_fd < 0)
		return -1;
	struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = on_host_death;
	return sigaction(HOST_DEATH_SIGNAL, &sa, NULL);
}

/* ---- frames to the host ---- */

static void send_frame(ward_ctx *ctx, uint8_t type, uint8_t level, const void *a, size_t alen,
		       const char *text, size_t tlen)
{
	char buf[FRAME_MAX];
	struct frame_hdr hdr = {.type = type, .level = level, .at_ms = wall_ms()};
	if (tlen > FRAME_MAX - sizeof(hdr) - alen)
		tlen = FRAME_MAX - sizeof(hdr) - alen;
	hdr.len = (uint16_t)(alen + tlen);
	memcpy(buf, &hdr, sizeof(hdr));
	if (alen)
		memcpy(buf + sizeof(hdr), a, alen);
	if (tlen)
		memcpy(buf + sizeof(hdr) + alen, text, tlen);
	/* One write: one datagram (atomic), in the kernel once it returns. The
	 * host's queue may be full: a blocking socket waits for room; one that
	 * plugin code made non-blocking waits here. Any other failure means the
	 * host is gone (or plugin code broke its own socket); the death signal
	 * handles the first. */
	size_t len = sizeof(hdr) + alen + tlen;
	ssize_t n;
	while ((n = write(ctx->frame_fd, buf, len)) < 0) {
		struct pollfd room = {.fd = ctx->frame_fd, .events = POLLOUT};
		if (errno == EAGAIN && poll(&room, 1, -1) >= 0)
			continue;
		if (errno != EINTR && errno != EAGAIN)
			return;
	}
}

void runtime_send_frame(ward_ctx *ctx, uint8_t type, const void *payload, size_t len)
{
	if (ctx->frame_fd >= 0)
		send_frame(ctx, type, 0, payload, len, NULL, 0);
}

static const char *level_name(int level)
{
	static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
	return level >= 0 && level <= 3 ? names[level] : "INFO";
}

static void log_v(ward_ctx *ctx, int level, const char *fmt, va_list ap)
{
	char text[FRAME_TEXT_MAX];
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	if (level == WARD_LOG_ERROR && ctx->job)
		jobrun_note_error(ctx, text, len);
	if (ctx->frame_fd < 0) {
		fprintf(stderr, "%s %.*s\n", level_name(level), (int)len, text);
		return;
	}
	send_frame(ctx, FRAME_LOG, (uint8_t)(level < 0 ? 0 : level > 3 ? 3 : level), NULL, 0, text, len);
}

void runtime_send_ready(ward_ctx *ctx)
{
	if (ctx->frame_fd >= 0)
		send_frame(ctx, FRAME_READY, 0, NULL, 0, NULL, 0);
}

void runtime_report_phase(ward_ctx *ctx, enum phase phase, int64_t ns, const char *note)
{
	struct frame_timing t = {.what = phase, .ns = ns};
	send_frame(ctx, FRAME_PHASE, 0, &t, sizeof(t), note ? note : "", note ? strlen(note) : 0);
}

static void report_cycle(ward_ctx *ctx, int result, int64_t ns)
{
	struct frame_timing t = {.what = result, .ns = ns};
	send_frame(ctx, FRAME_CYCLE, 0, &t, sizeof(t), NULL, 0);
}

void runtime_send_end(ward_ctx *ctx, enum reason reason, int code, const char *fmt, ...)
{
	char text[FRAME_TEXT_MAX];
	text[0] = '\0';
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	if (ctx->frame_fd < 0)
		return;
	struct frame_end end = {.reason = reason, .code = code};
	send_frame(ctx, FRAME_END, 0, &end, sizeof(end), text, strlen(text));
}

/* ---- the plugin-facing API ---- */

static const struct ward_option *declared_option(ward_ctx *ctx, const char *key)
{
	for (const struct ward_option *o = ctx->options; o && o->name; o++)
		if (strcmp(o->name, key) == 0)
			return o;
	return NULL;
}

const char *ward_conf(ward_ctx *ctx, const char *key)
{
	size_t klen = strlen(key);
	for (size_t i = 0; i < ctx->nconf; i++)
		if (strncmp(ctx->conf[i], key, klen) == 0 && ctx->conf[i][klen] == '=')
			return ctx->conf[i] + klen + 1;
	const struct ward_option *o = declared_option(ctx, key);
	return o ? o->default_value : NULL;
}

long ward_conf_int(ward_ctx *ctx, const char *key, long dflt)
{
	const char *v = ward_conf(ctx, key);
	long out;
	return v && parse_long(v, &out) == 0 ? out : dflt;
}

int ward_conf_bool(ward_ctx *ctx, const char *key, int dflt)
{
	const char *v = ward_conf(ctx, key);
	int out;
	return v && parse_bool(v, &out) == 0 ? out : dflt;
}

uint64_t ward_conf_ms(ward_ctx *ctx, const char *key, uint64_t dflt)
{
	const char *v = ward_conf(ctx, key);
	uint64_t out;
	return v && parse_duration_ms(v, &out) == 0 ? out : dflt;
}

void ward_log(ward_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_v(ctx, level, fmt, ap);
	va_end(ap);
}

void ward_heartbeat(ward_ctx *ctx)
{
	atomic_fetch_add_explicit(&ctx->slot->beats, 1, memory_order_relaxed);
	atomic_store_explicit(&ctx->slot->last_beat_ns, mono_ns(), memory_order_relaxed);
}

static void send_metrics(void *ctx, const void *records, size_t len)
{
	runtime_send_frame(ctx, FRAME_METRICS, records, len);
}

/* What ward_gauge and ward_count changed, to the host: now, or at most every
 * PMETRICS_FLUSH_MS. Nothing changed costs one load. */
static inline void flush_metrics(ward_ctx *ctx, bool now)
{
	if (pmetrics_pending())
		pmetrics_flush(now, send_metrics, ctx);
}

static void update_metric(ward_ctx *ctx, enum pmetric_kind kind, const char *name, double v)
{
	char warn[FRAME_TEXT_MAX / 2];
	pmetrics_update(kind, name, v, warn, sizeof(warn));
	if (warn[0])
		ward_log(ctx, WARD_LOG_WARN, "%s", warn);
}

void ward_gauge(ward_ctx *ctx, const char *name, double value)
{
	update_metric(ctx, PMETRIC_GAUGE, name, value);
}

void ward_count(ward_ctx *ctx, const char *name, double delta)
{
	update_metric(ctx, PMETRIC_COUNTER, name, delta);
}

int ward_stopping(ward_ctx *ctx)
{
	(void)ctx;
	return stop_requested != 0;
}

int ward_sleep(ward_ctx *ctx, uint64_t ms)
{
	if (stop_requested)
		return 1;
	flush_metrics(ctx, false); /* a long cycle waiting: its figures go on */
	ward_heartbeat(ctx);
	atomic_store_explicit(&ctx->slot->sleeping, 1, memory_order_relaxed);
	int64_t deadline = mono_ns() + (int64_t)ms * NS_PER_MS;
	struct pollfd pfd = {.fd = wake_fd, .events = POLLIN};
	while (!stop_requested) {
		int64_t left = deadline - mono_ns();
		if (left <= 0)
			break;
		struct timespec ts = {.tv_sec = left / NS_PER_SEC, .tv_nsec = left % NS_PER_SEC};
		if (ppoll(&pfd, pfd.fd >= 0 ? 1 : 0, &ts, NULL) < 0 && errno != EINTR)
			break;
	}
	atomic_store_explicit(&ctx->slot->sleeping, 0, memory_order_relaxed);
	ward_heartbeat(ctx);
	return stop_requested != 0;
}

const char *ward_name(ward_ctx *ctx)
{
	return ctx->name;
}

int ward_instance(ward_ctx *ctx)
{
	return ctx->instance;
}

const char *ward_state_dir(ward_ctx *ctx)
{
	return ctx->state_dir;
}

int ward_listen_count(ward_ctx *ctx)
{
	return ctx->nlisten;
}

int ward_listen_fd(ward_ctx *ctx, int i)
{
	return i >= 0 && i < ctx->nlisten ? ctx->listen_fds[i] : -1;
}

const char *ward_last_exit(ward_ctx *ctx)
{
	return ctx->last_exit;
}

int ward_restarts(ward_ctx *ctx)
{
	return ctx->restarts;
}

int ward_watch_fd(ward_ctx *ctx, int fd)
{
	if (fd < 0 || fcntl(fd, F_GETFD) < 0) {
		errno = EBADF;
		return -1;
	}
	for (int i = 0; i < ctx->nwatch; i++)
		if (ctx->watch_fds[i] == fd)
			return 0;
	if (ctx->nwatch == RUNTIME_WATCH_MAX) {
		errno = EMFILE;
		return -1;
	}
	ctx->watch_fds[ctx->nwatch++] = fd;
	return 0;
}

/* ---- the lifecycle of a loaded plugin ---- */

static void set_phase(ward_ctx *ctx, enum phase p)
{
	atomic_store_explicit(&ctx->slot->phase, p, memory_order_relaxed);
}

static void end_with(struct exit_info *out, enum reason reason, int code)
{
	out->reason = reason;
	out->code = code;
}

/* Cycles whose duration is measured: every cycle after a wait, and one in
 * TIMED_EVERY of back-to-back WARD_OK cycles, so the hot loop reads no clock. */
#define TIMED_EVERY 1024

/* `ward test --cycles N` ends the run the way every real stop ends one: with
 * SIGTERM to the process, which must reach the runtime's handler. So a
 * plugin that blocks or ignores SIGTERM fails the test instead of passing it.
 * The host sends the signal once it has seen the N-th cycle; in process no
 * host does, and the process sends it to itself. Meanwhile no cycle runs: the
 * process waits as between cycles. False when the stop never came through. */
static bool await_test_stop(ward_ctx *ctx, const struct test_request *test)
{
	if (test->self_stop_ms && kill(getpid(), SIGTERM) < 0)
		return false;
	int64_t deadline = mono_ns() + (int64_t)test->self_stop_ms * NS_PER_MS;
	set_phase(ctx, PHASE_IDLE);
	while (!ward_sleep(ctx, 100))
		if (test->self_stop_ms && mono_ns() >= deadline)
			return false;
	return true;
}

/* What ended an idle wait. */
enum woken { WOKEN_TIMEOUT, WOKEN_STOP, WOKEN_JOB, WOKEN_WATCHED };

/* The wait after WARD_IDLE (ms; -1: no limit, a job-only plugin's): ends
 * early for a stop, a job (jobs: the runtime socket readable), or, for a
 * plugin with cycles (watch), a descriptor of ward_watch_fd readable. A
 * watched descriptor the plugin closed is dropped. */
static enum woken idle_wait(ward_ctx *ctx, int64_t ms, bool jobs, bool watch)
{
	struct pollfd pfd[2 + RUNTIME_WATCH_MAX];
	enum woken why = WOKEN_TIMEOUT;
	int64_t deadline = ms < 0 ? INT64_MAX : mono_ns() + ms * NS_PER_MS;
	ward_heartbeat(ctx);
	while (!stop_requested) {
		if (jobs && jobrun_pending(ctx)) {
			why = WOKEN_JOB;
			break;
		}
		nfds_t n = 0, first_watched;
		pfd[n++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
		if (jobs)
			pfd[n++] = (struct pollfd){.fd = ctx->frame_fd, .events = POLLIN};
		first_watched = n;
		for (int i = 0; watch && i < ctx->nwatch; i++)
			pfd[n++] = (struct pollfd){.fd = ctx->watch_fds[i], .events = POLLIN};
		int64_t left = deadline - mono_ns();
		if (left <= 0)
			break;
		struct timespec ts = {.tv_sec = left / NS_PER_SEC, .tv_nsec = left % NS_PER_SEC};
		int rc = ppoll(pfd, n, deadline == INT64_MAX ? NULL : &ts, NULL);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc <= 0)
			continue;
		if (jobs && pfd[1].revents & POLLIN) {
			why = WOKEN_JOB;
			break;
		}
		if (jobs && pfd[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			jobs = false; /* the host is gone: its death signal follows */
		bool woken = false;
		for (nfds_t i = n; i-- > first_watched;) {
			if (pfd[i].revents & POLLNVAL) {
				int k = (int)(i - first_watched);
				ctx->watch_fds[k] = ctx->watch_fds[--ctx->nwatch];
			} else if (pfd[i].revents) {
				woken = true;
			}
		}
		if (woken) {
			why = WOKEN_WATCHED;
			break;
		}
	}
	ward_heartbeat(ctx);
	return stop_requested && why == WOKEN_TIMEOUT ? WOKEN_STOP : why;
}

/* A job that came (or may have): run it, then back to where the loop was. */
static bool take_job(ward_ctx *ctx, const struct ward_plugin *plugin, void *state, enum phase back)
{
	bool ran = jobrun_take(ctx, plugin, state);
	set_phase(ctx, back);
	flush_metrics(ctx, true);
	return ran;
}

/* A plugin with .job and no .cycle: waits for jobs until a stop. A job the
 * host handed before the stop still runs. */
static void job_loop(ward_ctx *ctx, const struct ward_plugin *plugin, void *state, const struct test_request *test,
		     struct exit_info *out)
{
	for (;;) {
		set_phase(ctx, PHASE_IDLE);
		if (jobrun_pending(ctx)) {
			take_job(ctx, plugin, state, PHASE_IDLE);
			continue;
		}
		if (stop_requested || ctx->no_jobs) {
			/* in process, no job comes: the test's stop ends the run */
			if (!stop_requested && test && !await_test_stop(ctx, test)) {
				end_with(out, REASON_STOP_TIMEOUT, 1);
				snprintf(out->message, sizeof(out->message), "%s", TEST_SIGTERM_UNHEARD);
				return;
			}
			end_with(out, REASON_STOPPED, 0);
			return;
		}
		if (idle_wait(ctx, -1, true, false) == WOKEN_JOB)
			take_job(ctx, plugin, state, PHASE_IDLE);
	}
}

/* Runs cycles until one says stop, or a stop is requested. */
static void cycle_loop(ward_ctx *ctx, const struct ward_plugin *plugin, void *state,
		       uint64_t interval_ms, const struct test_request *test, struct exit_info *out)
{
	int (*cycle)(ward_ctx *, void *) = plugin->cycle;
	struct slot *slot = ctx->slot;
	uint64_t n = 0;
	uint64_t limit = test && test->max_cycles ? test->max_cycles : UINT64_MAX;
	bool report = test && test->report;
	bool after_wait = true;
	bool jobs = plugin->job && !ctx->no_jobs;
	for (;;) {
		/* Between cycles: one load when the plugin takes jobs. A job
		 * handed before a stop still runs. */
		if (jobs && jobrun_pending(ctx)) {
			take_job(ctx, plugin, state, PHASE_CYCLE);
			after_wait = true;
			continue;
		}
		if (stop_requested || n >= limit) {
			if (!stop_requested && !await_test_stop(ctx, test)) {
				end_with(out, REASON_STOP_TIMEOUT, 1);
				snprintf(out->message, sizeof(out->message), "%s", TEST_SIGTERM_UNHEARD);
				return;
			}
			end_with(out, REASON_STOPPED, 0);
			if (n >= limit)
				snprintf(out->message, sizeof(out->message), "stopped after %llu cycles, as asked",
					 (unsigned long long)n);
			return;
		}
		set_phase(ctx, PHASE_CYCLE);
		int r;
		if (after_wait || report || n % TIMED_EVERY == 0) {
			int64_t t0 = mono_ns();
			r = cycle(ctx, state);
			int64_t took = mono_ns() - t0;
			atomic_store_explicit(&slot->last_cycle_ns, took, memory_order_relaxed);
			if (report)
				report_cycle(ctx, r, took);
		} else {
			r = cycle(ctx, state);
		}
		atomic_store_explicit(&slot->cycles, ++n, memory_order_relaxed);
		after_wait = r != WARD_OK;
		/* Back-to-back cycles send metrics every PMETRICS_FLUSH_MS; before a wait or the end, at once. */
		flush_metrics(ctx, after_wait);
		switch (r) {
		case WARD_OK:
			continue;
		case WARD_IDLE:
			set_phase(ctx, PHASE_IDLE);
			flush_metrics(ctx, false);
			if (idle_wait(ctx, (int64_t)interval_ms, jobs, true) == WOKEN_JOB)
				take_job(ctx, plugin, state, PHASE_IDLE);
			continue;
		case WARD_DONE:
			end_with(out, REASON_DONE, 0);
			return;
		default:
			end_with(out, REASON_ERROR, 1);
			if (r >= 0)
				snprintf(out->message, sizeof(out->message),
					 "cycle returned %d, which is not a ward result", r);
			return;
		}
	}
}

void runtime_run(ward_ctx *ctx, const struct ward_plugin *plugin, uint64_t interval_ms,
		 const struct test_request *test, struct exit_info *out)
{
	bool report = test && test->report;
	*out = (struct exit_info){0};
	void *state = NULL;
	pmetrics_reset();
	set_phase(ctx, PHASE_INIT);
	int64_t t0 = mono_ns();
	int rc = plugin->init ? plugin->init(ctx, &state) : 0;
	int64_t init_ns = mono_ns() - t0;
	atomic_store_explicit(&ctx->slot->init_ns, init_ns, memory_order_relaxed);
	if (report) {
		char note[32];
		snprintf(note, sizeof(note), "%d", rc);
		runtime_report_phase(ctx, PHASE_INIT, init_ns, note);
	}
	if (rc < 0) {
		end_with(out, REASON_INIT_FAILED, 1);
		snprintf(out->message, sizeof(out->message), "init returned %d", rc);
		return;
	}
	flush_metrics(ctx, true); /* what init set is there once it is ready */
	runtime_send_ready(ctx);
	if (plugin->cycle)
		cycle_loop(ctx, plugin, state, interval_ms, test, out);
	else
		job_loop(ctx, plugin, state, test, out);
	flush_metrics(ctx, true);
	if (out->reason == REASON_STOP_TIMEOUT)
		return; /* the host would have killed it: no shutdown */
	set_phase(ctx, PHASE_SHUTDOWN);
	t0 = mono_ns();
	if (plugin->shutdown)
		plugin->shutdown(ctx, state);
	flush_metrics(ctx, true); /* a clean end loses no count */
	if (report)
		runtime_report_phase(ctx, PHASE_SHUTDOWN, mono_ns() - t0, plugin->shutdown ? "" : "none");
}
