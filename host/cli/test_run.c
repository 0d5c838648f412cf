/*
 * test_run.c - one plugin, run as the host would run it, for `ward test` and
 * the harness: the result a report is made of (test_report.c prints it).
 * Runs in the `ward test` process (or the harness's helper process), and
 * with --in-process the plugin runs in that process too. The forked mode
 * is the real host (host_run_test) on a generated configuration in a
 * temporary directory: nothing about the plugin's process differs from
 * production. The runtime adds FRAME_PHASE/FRAME_CYCLE frames because the
 * test asked for them; this file turns them into the result. Whatever in the
 * generated configuration is wrong is reported as the user wrote it (the
 * key=value argument, the harness call), never as the temporary file.
 */
#define _GNU_SOURCE
#include "cli/test_run.h"
#include "worker/child.h"
#include "config/config.h"
#include "daemon/observer.h"
#include "daemon/run.h"
#include "daemon/listener.h"
#include "worker/loader.h"
#include "daemon/log.h"
#include "config/options.h"
#include "daemon/probe.h"
#include "worker/runtime.h"
#include "common/units.h"
#include "daemon/worker.h"
#include "daemon/channel.h"
#include "daemon/jobstore.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tester {
	struct test_request request;
	const struct tester_options *options;
	int64_t timeout_ns;
	struct test_result *result;
	char *conf_file;          /* the generated configuration, whose lines name the user's keys */
	long plugin_line, first_key_line;
	bool stop_due;            /* the N-th cycle was seen: the host is to stop the worker */
	int64_t stop_sent_ns;     /* when the run's SIGTERM was asked for */
	struct exit_info overdue; /* why the process did not stop, found before it was killed */
	size_t next_job;          /* the next of options->jobs to hand over */
	bool job_out;             /* jobs[next_job - 1] is with the process */
	int64_t job_sent_ns;
};

static void tester_timed_out(struct tester *t)
{
	t->result->timed_out = true;
	t->stop_sent_ns = mono_ns();
}

static void take_phase(struct test_result *r, const struct frame_timing *ft, const char *note, size_t len)
{
	struct test_phase *p = ft->what == PHASE_LOAD ? &r->load : ft->what == PHASE_INIT ? &r->init
			     : ft->what == PHASE_SHUTDOWN ? &r->shutdown : NULL;
	if (!p)
		return;
	p->seen = true;
	p->ns = ft->ns;
	snprintf(p->note, sizeof(p->note), "%.*s", (int)len, note);
	if (ft->what == PHASE_INIT)
		r->init_rc = atoi(p->note);
}

static void take_cycle(struct tester *t, const struct frame_timing *ft)
{
	struct test_result *r = t->result;
	if (r->ncycles == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->cycles = xrealloc(r->cycles, r->cap * sizeof(*r->cycles));
	}
	r->cycles[r->ncycles++] = (struct test_cycle){ft->what, ft->ns};
	if (t->request.max_cycles && r->ncycles == t->request.max_cycles)
		t->stop_due = true;
}

static void tester_take_frame(struct tester *t, const struct frame_hdr *hdr, const char *payload)
{
	struct frame_timing ft;
	if (hdr->len < sizeof(ft))
		return;
	memcpy(&ft, payload, sizeof(ft));
	if (hdr->type == FRAME_PHASE)
		take_phase(t->result, &ft, payload + sizeof(ft), hdr->len - sizeof(ft));
	else
		take_cycle(t, &ft);
}

static bool tester_take_stop(struct tester *t)
{
	if (!t->stop_due)
		return false;
	t->stop_due = false;
	t->stop_sent_ns = mono_ns();
	return true;
}

/* ---- jobs (--job, --jobs, ward_harness_job) ---- */

static void refuse(struct test_result *r, char *owned_message);

static void job_over(struct tester *t, size_t i, enum test_job_outcome outcome, int ret, char *owned_message)
{
	struct test_job *j = &t->result->jobs[i];
	j->outcome = outcome;
	j->ret = ret;
	free(j->message);
	j->message = owned_message;
	j->ns = mono_ns() - t->job_sent_ns;
	t->job_out = false;
	if (t->next_job == t->options->njobs)
		t->stop_due = true; /* the last one is over: a real stop ends the run */
}

/* Hands the next job to a running process holding none, as the host's
 * dispatcher would: through channel_send_job. */
static void tester_hand_job(struct tester *t, struct instance *in)
{
	if (t->job_out || t->next_job >= t->options->njobs)
		return;
	if (!in->conf->plugin_has_job) {
		refuse(t->result, xasprintf("the plugin has no .job function, so it takes no jobs: set .job in "
					    "WARD_PLUGIN, or test it without --job"));
		t->next_job = t->options->njobs;
		t->stop_due = true;
		return;
	}
	size_t i = t->next_job++;
	const struct test_job_input *in_job = &t->options->jobs[i];
	struct job_claim claim = {.id = (int64_t)i + 1, .attempt = 1, .payload = (void *)in_job->data,
				  .len = in_job->len};
	t->job_sent_ns = mono_ns();
	if (channel_send_job(in, &claim) < 0) {
		job_over(t, i, TEST_JOB_FAILED, 0, xasprintf("could not be handed over: %s", strerror(errno)));
		return;
	}
	in->job_id = claim.id;
	t->job_out = true;
}

static void tester_job_ended(struct tester *t, struct instance *in, const struct frame_job_end *end,
			     const char *message, const void *result, size_t len)
{
	size_t i = t->next_job - 1;
	if (!t->job_out || end->id != (int64_t)i + 1)
		return; /* not the job handed over: a forged frame */
	in->job_id = 0;
	struct test_job *j = &t->result->jobs[i];
	if (len) {
		j->result = xmalloc(len);
		memcpy(j->result, result, len);
		j->result_len = len;
	}
	job_over(t, i, end->outcome == JOB_END_DONE ? TEST_JOB_DONE : TEST_JOB_FAILED, end->ret,
		 message[0] ? xstrdup(message) : NULL);
}

/* ---- a process that did not stop on SIGTERM ---- */

/* Is sig set in the hex mask of the line starting with field ("\nSigIgn:")? */
static bool mask_has(const char *status, const char *field, int sig)
{
	const char *line = strstr(status, field);
	return line && (strtoull(line + strlen(field), NULL, 16) >> (sig - 1) & 1);
}

/* SIGTERM ignored (discarded) or blocked (still pending): the runtime's stop
 * handler never ran. Read from /proc while the process still exists. */
static bool sigterm_unheard(pid_t pid)
{
	char path[64], *text = NULL;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	read_until_eof(fd, mono_ns() + NS_PER_SEC, &text, &len);
	close(fd);
	bool unheard = text && (mask_has(text, "\nSigIgn:", SIGTERM) || mask_has(text, "\nShdPnd:", SIGTERM) ||
				mask_has(text, "\nSigPnd:", SIGTERM));
	free(text);
	return unheard;
}

static void overdue(struct tester *t, enum reason reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void overdue(struct tester *t, enum reason reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	t->overdue.reason = reason;
	vsnprintf(t->overdue.message, sizeof(t->overdue.message), fmt, ap);
	va_end(ap);
}

static void tester_stop_overdue(struct tester *t, const struct instance *in)
{
	if (t->overdue.reason != REASON_NONE || in->pid <= 0)
		return;
	int64_t sent = t->stop_sent_ns ? t->stop_sent_ns : mono_ns();
	char d[32];
	format_duration_ms((uint64_t)((mono_ns() - sent) / NS_PER_MS), d, sizeof(d));
	enum phase phase = (enum phase)atomic_load(&in->slot->phase);
	unsigned long long cycle = (unsigned long long)atomic_load(&in->slot->cycles) + 1;
	/* Waiting between cycles, a process whose handler ran is gone at once. */
	if (sigterm_unheard(in->pid) || phase == PHASE_IDLE)
		overdue(t, REASON_STOP_TIMEOUT, "%s", TEST_SIGTERM_UNHEARD);
	else if (phase == PHASE_CYCLE && atomic_load(&in->slot->last_beat_ns) < sent)
		overdue(t, REASON_HUNG, "cycle %llu never returned: no progress and no reaction to SIGTERM for %s "
			"(a long cycle must call ward_heartbeat and check ward_stopping)", cycle, d);
	else if (phase == PHASE_CYCLE)
		overdue(t, REASON_STOP_TIMEOUT, "cycle %llu still running %s after SIGTERM (a long cycle must check ward_stopping)",
			cycle, d);
	else if (phase == PHASE_SHUTDOWN)
		overdue(t, REASON_STOP_TIMEOUT, "shutdown still running %s after SIGTERM", d);
	else if (phase == PHASE_INIT)
		overdue(t, REASON_INIT_TIMEOUT, "init had not returned when the time allowed ran out, nor %s after SIGTERM", d);
}

/* ---- the outcome ---- */

/* Did the plugin behave? Loaded, init returned 0, ended by finishing or by
 * being stopped, with its shutdown run, within the time allowed. */
static void judge(struct test_result *r)
{
	bool clean_end = r->end.reason == REASON_DONE || r->end.reason == REASON_STOPPED;
	bool jobs_done = true;
	for (size_t i = 0; i < r->njobs; i++)
		jobs_done &= r->jobs[i].outcome == TEST_JOB_DONE;
	r->ok = !r->config_error && !r->timed_out && r->load.seen && r->init.seen && r->init_rc == 0 &&
		clean_end && r->shutdown.seen && jobs_done;
	if (r->config_error && r->errors.n) /* what ward_harness_message() and the JSON "message" say */
		snprintf(r->end.message, sizeof(r->end.message), r->errors.n == 1 ? "%s" : "%s (and %zu more)",
			 r->errors.v[0], r->errors.n - 1);
}

static void read_log(struct test_result *r, const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		strv_push(&r->log, xstrdup(line));
	}
	free(line);
	fclose(f);
}

static void tester_collect(struct tester *t, const struct worker *w)
{
	struct test_result *r = t->result;
	r->end = w->inst[0]->last_exit;
	/* Killed for not stopping: why it did not is the better story. */
	if (t->overdue.reason != REASON_NONE && r->end.signal == SIGKILL) {
		r->end.reason = t->overdue.reason;
		memcpy(r->end.message, t->overdue.message, sizeof(r->end.message));
	}
	if (t->job_out) {
		char why[400];
		exit_describe(&r->end, why, sizeof(why));
		job_over(t, t->next_job - 1, TEST_JOB_UNFINISHED, 0, xasprintf("the process ended holding it: %s", why));
	}
	log_flush((struct log_file *)&w->log);
	read_log(r, w->log.path);
	pmetric_set_copy(&r->metrics, &w->inst[0]->metrics);
}

/* ---- what the user typed ---- */

static void refuse(struct test_result *r, char *owned_message)
{
	r->config_error = true;
	strv_push(&r->errors, owned_message);
}

/* s with control bytes written as C escapes (\n, \x01): a message stays one line. */
static char *escaped(const char *s, size_t len)
{
	char *out = xmalloc(len * 4 + 1), *p = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\r' || c == '\t')
			p += sprintf(p, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
		else if (c < 0x20 || c == 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return out;
}

/* Key i as the user wrote it: an argument, or the harness call. */
static char *typed_key(const struct tester_options *o, size_t i)
{
	const char *kv = o->keys[i];
	size_t klen = strcspn(kv, "=");
	if (!o->from_harness)
		return escaped(kv, strlen(kv));
	char *key = escaped(kv, klen), *value = kv[klen] ? escaped(kv + klen + 1, strlen(kv + klen + 1)) : xstrdup("");
	char *out = xasprintf("ward_harness_set(h, \"%s\", \"%s\")", key, value);
	free(key);
	free(value);
	return out;
}

static char *typed_plugin(const struct tester_options *o)
{
	char *path = escaped(o->plugin, strlen(o->plugin));
	if (!o->from_harness)
		return path;
	char *out = xasprintf("ward_harness_new(\"%s\")", path);
	free(path);
	return out;
}

/* Skips "[section] " and then "key: " at the start of a configuration message. */
static const char *after_prefix(const char *text, const char *key, size_t klen)
{
	const char *close = text[0] == '[' ? strstr(text, "] ") : NULL;
	if (close)
		text = close + 2;
	if (key && strncmp(text, key, klen) == 0 && text[klen] == ':')
		text += klen + 1 + (text[klen + 1] == ' ');
	return text;
}

/* "FILE:LINE: [section] key: reason" about the generated file, told as what
 * the user typed: "interval=abc: reason". Other messages are kept. */
static char *as_typed(const struct tester *t, const char *msg)
{
	const struct tester_options *o = t->options;
	size_t flen = strlen(t->conf_file);
	if (strncmp(msg, t->conf_file, flen) != 0 || msg[flen] != ':')
		return xstrdup(msg);
	char *end;
	long line = strtol(msg + flen + 1, &end, 10);
	const char *rest = end + (*end == ':') + (end[*end == ':'] == ' ');
	long i = line - t->first_key_line;
	char *who, *out;
	if (i >= 0 && (size_t)i < o->nkeys) {
		who = typed_key(o, (size_t)i);
		out = xasprintf("%s: %s", who, after_prefix(rest, o->keys[i], strcspn(o->keys[i], "=")));
	} else if (line == t->plugin_line) {
		who = typed_plugin(o);
		out = xasprintf("%s: %s", who, after_prefix(rest, "plugin", 6));
	} else {
		return xstrdup(after_prefix(rest, NULL, 0));
	}
	free(who);
	return out;
}

static void tester_take_config(struct tester *t, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->errors.n; i++)
		refuse(t->result, as_typed(t, cfg->errors.v[i]));
	for (size_t i = 0; i < cfg->warnings.n; i++)
		strv_push(&t->result->warnings, as_typed(t, cfg->warnings.v[i]));
}

/* What cannot be one line of an .ini file is refused before one is written. */
static void check_keys(const struct tester_options *o, struct test_result *r)
{
	for (size_t i = 0; i < o->nkeys; i++) {
		const char *kv = o->keys[i];
		size_t klen = strcspn(kv, "=");
		char *who = typed_key(o, i);
		if (!kv[klen] || klen == 0)
			refuse(r, xasprintf("%s: expected key=value", who));
		else if (strpbrk(kv, "\n\r"))
			refuse(r, xasprintf("%s: a key or value cannot contain a line break", who));
		else if (memchr(kv, ':', klen) || memchr(kv, '[', klen) || kv[0] == ';' || kv[0] == '#')
			refuse(r, xasprintf("%s: not a valid key name", who));
		free(who);
	}
}

/* ---- the generated configuration ---- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* The worker is named after the plugin's file stem, made a valid name. */
static void worker_name(const char *plugin, char *out, size_t size)
{
	char *copy = xstrdup(plugin);
	snprintf(out, size, "%s", basename(copy));
	free(copy);
	char *dot = strstr(out, ".so");
	if (dot)
		*dot = '\0';
	for (char *p = out; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *p))
			*p = '_';
	if (!out[0] || out[0] == '.' || out[0] == '-')
		snprintf(out, size, "plugin");
}

static long count_lines(const char *text)
{
	long n = 0;
	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* Writes DIR/conf/test.ini and remembers which line holds what the user gave. */
static int write_config(struct tester *t, const char *dir, const char *plugin)
{
	const struct tester_options *o = t->options;
	char name[64];
	worker_name(plugin, name, sizeof(name));
	t->conf_file = xasprintf("%s/conf/test.ini", dir);
	FILE *f = fopen(t->conf_file, "we");
	if (!f)
		return -1;
	char *head = xasprintf("[ward]\nplugin_dir = %s\nstate_dir = %s/state\nautoload = no\n\n[%s]\nrestart = never\n",
			       dir, dir, name);
	t->plugin_line = count_lines(head) + 1;
	t->first_key_line = t->plugin_line + 1;
	fprintf(f, "%splugin = %s\n", head, plugin);
	free(head);
	for (size_t i = 0; i < o->nkeys; i++) {
		const char *eq = strchr(o->keys[i], '=');
		fprintf(f, "%.*s = %s\n", (int)(eq - o->keys[i]), o->keys[i], eq + 1);
	}
	return fclose(f);
}

/* The host's observer (daemon/observer.h): each call lands in the tester. */
static void observe_config(void *t, const struct config *cfg) { tester_take_config(t, cfg); }
static void observe_frame(void *t, const struct frame_hdr *hdr, const char *payload) { tester_take_frame(t, hdr, payload); }
static bool observe_take_stop(void *t) { return tester_take_stop(t); }
static void observe_timeout(void *t) { tester_timed_out(t); }
static void observe_stop_overdue(void *t, const struct instance *in) { tester_stop_overdue(t, in); }
static void observe_settled(void *t, const struct worker *w) { tester_collect(t, w); }
static void observe_running(void *t, struct instance *in) { tester_hand_job(t, in); }
static void observe_job_end(void *t, struct instance *in, const struct frame_job_end *end, const char *message,
			    const void *result, size_t len)
{
	tester_job_ended(t, in, end, message, result, len);
}

static void run_forked(struct tester *t, const char *conf)
{
	struct test_result *r = t->result;
	host_log_quiet(true); /* the report tells the story; errors are collected for it */
	host_run_test(conf, &(struct host_observer){
		.ctx = t,
		.request = &t->request,
		.timeout_ns = t->timeout_ns,
		.on_config = observe_config,
		.on_frame = observe_frame,
		.take_stop = observe_take_stop,
		.on_timeout = observe_timeout,
		.on_stop_overdue = observe_stop_overdue,
		.on_settled = observe_settled,
		.on_running = observe_running,
		.on_job_end = observe_job_end,
	});
	host_log_quiet(false);
	if (!r->load.seen && r->end.reason == REASON_NONE) { /* no process ever ran */
		r->config_error = true;
		if (!r->errors.n)
			strv_push(&r->errors, xstrdup("the host did not start the plugin"));
	}
}

/* ---- in-process: the same configuration, loader and runtime, no fork ---- */

static void parse_frames(struct test_result *r, struct tester *t, const char *data, size_t len)
{
	struct frame_hdr hdr;
	const char *payload;
	long n;
	static const char *const levels[] = {"ERROR", "WARN", "INFO", "DEBUG"};
	while ((n = frame_next(data, len, &hdr, &payload)) > 0) {
		if (hdr.type == FRAME_LOG)
			strv_push(&r->log, xasprintf("%s %.*s", levels[hdr.level <= 3 ? hdr.level : 2], (int)hdr.len, payload));
		else if (hdr.type == FRAME_PHASE || hdr.type == FRAME_CYCLE)
			tester_take_frame(t, &hdr, payload);
		else if (hdr.type == FRAME_METRICS)
			pmetric_set_apply(&r->metrics, payload, hdr.len); /* the runtime's own writing */
		data += n;
		len -= (size_t)n;
	}
}

/* The plugin runs in this process: what the runtime and the plugin do to
 * SIGTERM (a handler, a mask) must not outlive the run. */
struct signal_state {
	sigset_t mask;
	struct sigaction term, death;
};

static void save_signals(struct signal_state *s)
{
	sigprocmask(SIG_SETMASK, NULL, &s->mask);
	sigaction(SIGTERM, NULL, &s->term);
	sigaction(HOST_DEATH_SIGNAL, NULL, &s->death);
}

static void restore_signals(const struct signal_state *s)
{
	sigset_t term, pending;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	struct timespec now = {0, 0};
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM))
		sigtimedwait(&term, NULL, &now); /* the run's own stop, held by a plugin that blocked it */
	sigaction(SIGTERM, &s->term, NULL);
	sigaction(HOST_DEATH_SIGNAL, &s->death, NULL);
	sigprocmask(SIG_SETMASK, &s->mask, NULL);
}

/* Loads and runs the plugin here, its frames going to an unnamed file. */
static void run_here(struct tester *t, const struct worker_conf *wc, const char *state_dir, const int *listen_fds,
		     int nlisten)
{
	struct test_result *r = t->result;
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	/* struct slot is cache-line aligned; calloc would not honour that. */
	struct slot *slot = aligned_alloc(_Alignof(struct slot), sizeof(*slot));
	if (!slot)
		abort();
	memset(slot, 0, sizeof(*slot));
	ward_ctx ctx = {.name = wc->name, .state_dir = state_dir, .conf = wc->plugin_keys.v, .nconf = wc->plugin_keys.n,
			.frame_fd = fd, .slot = slot, .listen_fds = listen_fds, .nlisten = nlisten, .no_jobs = true};
	struct ward_plugin plugin;
	struct signal_state saved;
	save_signals(&saved);
	int64_t t0 = mono_ns();
	if (fd >= 0 && runtime_install_signals() == 0 && loader_open(wc->plugin, &plugin, &r->end) == 0) {
		char who[256];
		snprintf(who, sizeof(who), "%s %s", plugin.name ? plugin.name : "?", plugin.version ? plugin.version : "?");
		runtime_report_phase(&ctx, PHASE_LOAD, mono_ns() - t0, who);
		ctx.options = plugin.options;
		runtime_run(&ctx, &plugin, wc->interval_ms, &t->request, &r->end);
	}
	restore_signals(&saved);
	if (fd >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		char *data = size > 0 ? xmalloc((size_t)size) : NULL;
		if (data && pread(fd, data, (size_t)size, 0) == size)
			parse_frames(r, t, data, (size_t)size);
		free(data);
		close(fd);
	} else {
		refuse(r, xasprintf("unable to set up the in-process run: %s", strerror(errno)));
	}
	free(slot);
}

/* The configuration is checked exactly as the host checks it, and the
 * worker's listen sockets are created by the host's own code. */
static void run_in_process(struct tester *t, const char *conf)
{
	struct config cfg;
	if (config_load(conf, &cfg) == 0)
		probe_check_config(&cfg, NULL);
	tester_take_config(t, &cfg);
	if (!t->result->config_error && cfg.nworkers == 1) {
		struct worker w = {.conf = &cfg.workers[0]}; /* only for listener.c: no host, no process */
		char *state_dir = xasprintf("%s/workers/%s", cfg.state_dir, w.conf->name);
		if (mkdir_p(state_dir, 0700) < 0) {
			refuse(t->result, xasprintf("unable to create %s: %s", state_dir, strerror(errno)));
		} else if (listener_open_all(&w) == 0) {
			int fds[w.nlisteners ? w.nlisteners : 1];
			for (size_t i = 0; i < w.nlisteners; i++)
				fds[i] = w.listeners[i].watch.fd;
			run_here(t, w.conf, state_dir, fds, (int)w.nlisteners);
		} else {
			t->result->config_error = true; /* listener.c said which address, into the errors */
		}
		listener_close_all(&w);
		free(state_dir);
	}
	config_free(&cfg);
}

/* ---- running a test ---- */

/* The generated configuration in a fresh directory, then the run. */
static int run_in_dir(struct tester *t, const char *plugin)
{
	char dir[] = "/tmp/ward-test-run-XXXXXX";
	if (!mkdtemp(dir)) {
		fprintf(stderr, "ward: unable to create a directory for the test: %s\n", strerror(errno));
		return -1;
	}
	char *conf = xasprintf("%s/conf", dir);
	int rc = mkdir(conf, 0700) < 0 || write_config(t, dir, plugin) < 0 ? -1 : 0;
	if (rc < 0) {
		fprintf(stderr, "ward: unable to write the test configuration in %s: %s\n", dir, strerror(errno));
	} else {
		host_log_collect_errors(&t->result->errors);
		if (t->options->in_process)
			run_in_process(t, conf);
		else
			run_forked(t, conf);
		host_log_collect_errors(NULL);
	}
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(conf);
	return rc;
}

int tester_run(const struct tester_options *o, struct test_result *r)
{
	*r = (struct test_result){0};
	/* The in-process run has no host to send the stop after --cycles: it sends it itself. */
	struct tester t = {.request = {.max_cycles = o->cycles, .report = true,
				       .self_stop_ms = o->in_process ? TEST_STOP_GRACE_MS : 0},
			   .options = o, .timeout_ns = (int64_t)o->timeout_ms * NS_PER_MS, .result = r};
	char plugin[PATH_MAX];
	check_keys(o, r);
	r->njobs = o->njobs;
	r->jobs = o->njobs ? xcalloc(o->njobs, sizeof(*r->jobs)) : NULL;
	if (o->njobs && o->in_process)
		refuse(r, xstrdup(o->from_harness ? "jobs are handed over by the host: the in-process run takes none"
						  : "--job and --jobs need the host: drop --in-process"));
	/* dlopen() looks a bare "tick.so" up in the library path: the user means the file here. */
	if (!realpath(o->plugin, plugin)) {
		char *who = typed_plugin(o);
		refuse(r, xasprintf("%s: unable to find the plugin: %s", who, strerror(errno)));
		free(who);
	}
	int rc = r->config_error ? 0 : run_in_dir(&t, plugin);
	free(t.conf_file);
	judge(r);
	return rc;
}

int tester_describe(const char *plugin, uint64_t timeout_ms, FILE *out)
{
	char path[PATH_MAX];
	if (!realpath(plugin, path)) {
		fprintf(stderr, "ward: %s: unable to find the plugin: %s\n", plugin, strerror(errno));
		return -1;
	}
	return probe_describe(path, timeout_ms, out);
}

void test_result_free(struct test_result *r)
{
	free(r->cycles);
	for (size_t i = 0; i < r->njobs; i++) {
		free(r->jobs[i].message);
		free(r->jobs[i].result);
	}
	free(r->jobs);
	strv_free(&r->log);
	strv_free(&r->errors);
	strv_free(&r->warnings);
	pmetric_set_free(&r->metrics);
	*r = (struct test_result){0};
}
