/*
 * tester.c - one plugin, run as the host would run it, with a report. The
 * forked mode is the real host (host_run_test) on a generated configuration
 * in a temporary directory: nothing about the plugin's process differs from
 * production. The runtime adds FRAME_PHASE/FRAME_CYCLE frames because the
 * test asked for them; this file turns them into the report.
 */
#define _GNU_SOURCE
#include "tester.h"
#include "child.h"
#include "host.h"
#include "json.h"
#include "loader.h"
#include "log.h"
#include "runtime.h"
#include "units.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tester {
	struct test_request request;
	int64_t timeout_ns;
	struct test_result *result;
};

const char *cycle_result_name(int result)
{
	switch (result) {
	case WARD_OK: return "WARD_OK";
	case WARD_IDLE: return "WARD_IDLE";
	case WARD_DONE: return "WARD_DONE";
	}
	return result < 0 ? "WARD_ERROR" : "(not a ward result)";
}

const struct test_request *tester_request(struct tester *t)
{
	return &t->request;
}

int64_t tester_timeout_ns(const struct tester *t)
{
	return t->timeout_ns;
}

void tester_timed_out(struct tester *t)
{
	t->result->timed_out = true;
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

static void take_cycle(struct test_result *r, const struct frame_timing *ft)
{
	if (r->ncycles == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->cycles = xrealloc(r->cycles, r->cap * sizeof(*r->cycles));
	}
	r->cycles[r->ncycles++] = (struct test_cycle){ft->what, ft->ns};
}

void tester_take_frame(struct tester *t, const struct frame_hdr *hdr, const char *payload)
{
	struct frame_timing ft;
	if (hdr->len < sizeof(ft))
		return;
	memcpy(&ft, payload, sizeof(ft));
	if (hdr->type == FRAME_PHASE)
		take_phase(t->result, &ft, payload + sizeof(ft), hdr->len - sizeof(ft));
	else
		take_cycle(t->result, &ft);
}

/* Did the plugin behave? Loaded, init returned 0, ended by finishing or by
 * being stopped, with its shutdown run, within the time allowed. */
static void judge(struct test_result *r)
{
	bool clean_end = r->end.reason == REASON_DONE || r->end.reason == REASON_STOPPED;
	r->ok = !r->config_error && !r->timed_out && r->load.seen && r->init.seen && r->init_rc == 0 &&
		clean_end && r->shutdown.seen;
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

void tester_collect(struct tester *t, const struct worker *w)
{
	t->result->end = w->inst[0].last_exit;
	log_flush((struct log_file *)&w->log);
	read_log(t->result, w->log.path);
}

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

static int write_config(const struct tester_options *o, const char *dir, const char *plugin)
{
	/* Named so that an error in a key=value reads as coming from the command line. */
	char *path = xasprintf("%s/conf/command-line.ini", dir), name[64];
	worker_name(plugin, name, sizeof(name));
	FILE *f = fopen(path, "we");
	free(path);
	if (!f)
		return -1;
	fprintf(f, "[ward]\nplugin_dir = %s\nstate_dir = %s/state\nautoload = no\n\n[%s]\nplugin = %s\nrestart = never\n",
		dir, dir, name, plugin);
	for (size_t i = 0; i < o->nkeys; i++) {
		const char *eq = strchr(o->keys[i], '=');
		fprintf(f, "%.*s = %s\n", (int)(eq - o->keys[i]), o->keys[i], eq + 1);
	}
	return fclose(f);
}

static int run_forked(const struct tester_options *o, struct test_result *r)
{
	char dir[] = "/tmp/ward-test-run-XXXXXX", plugin[PATH_MAX];
	if (!realpath(o->plugin, plugin)) {
		fprintf(stderr, "ward: unable to find %s: %s\n", o->plugin, strerror(errno));
		return -1;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "ward: unable to create a directory for the test: %s\n", strerror(errno));
		return -1;
	}
	char *conf = xasprintf("%s/conf", dir);
	int rc = mkdir(conf, 0700) < 0 || write_config(o, dir, plugin) < 0 ? -1 : 0;
	if (rc < 0) {
		fprintf(stderr, "ward: unable to write the test configuration in %s: %s\n", dir, strerror(errno));
	} else {
		struct tester t = {.request = {.max_cycles = o->cycles, .report = true},
				   .timeout_ns = (int64_t)o->timeout_ms * NS_PER_MS, .result = r};
		host_log_quiet(true); /* the report tells the story */
		if (host_run_test(conf, &t) != 0)
			r->config_error = !r->load.seen && r->end.reason == REASON_NONE;
		host_log_quiet(false);
	}
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(conf);
	return rc;
}

/* ---- in-process: the same loader and runtime, no fork ---- */

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
		data += n;
		len -= (size_t)n;
	}
}

static int run_in_process(const struct tester_options *o, struct test_result *r)
{
	struct tester t = {.request = {.max_cycles = o->cycles, .report = true}, .result = r};
	struct strv keys = {0};
	uint64_t interval = 1000;
	for (size_t i = 0; i < o->nkeys; i++) {
		if (strncmp(o->keys[i], "interval=", 9) == 0 && parse_duration_ms(o->keys[i] + 9, &interval) == 0)
			continue;
		strv_push(&keys, xstrdup(o->keys[i]));
	}
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	/* struct slot is cache-line aligned; calloc would not honour that. */
	struct slot *slot = aligned_alloc(_Alignof(struct slot), sizeof(*slot));
	if (!slot)
		abort();
	memset(slot, 0, sizeof(*slot));
	ward_ctx ctx = {.name = "test", .state_dir = "/tmp", .conf = keys.v, .nconf = keys.n, .frame_fd = fd, .slot = slot};
	struct ward_plugin plugin;
	int64_t t0 = mono_ns();
	int rc = fd < 0 || runtime_install_signals() < 0 ? -1 : 0;
	if (rc == 0 && loader_open(o->plugin, &plugin, &r->end) == 0) {
		char who[256];
		snprintf(who, sizeof(who), "%s %s", plugin.name ? plugin.name : "?", plugin.version ? plugin.version : "?");
		runtime_report_phase(&ctx, PHASE_LOAD, mono_ns() - t0, who);
		ctx.options = plugin.options;
		runtime_run(&ctx, &plugin, interval, &t.request, &r->end);
	}
	if (fd >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		char *data = size > 0 ? xmalloc((size_t)size) : NULL;
		if (data && pread(fd, data, (size_t)size, 0) == size)
			parse_frames(r, &t, data, (size_t)size);
		free(data);
		close(fd);
	} else {
		fprintf(stderr, "ward: unable to set up the in-process run: %s\n", strerror(errno));
	}
	free(slot);
	strv_free(&keys);
	return rc;
}

int tester_run(const struct tester_options *o, struct test_result *r)
{
	*r = (struct test_result){0};
	for (size_t i = 0; i < o->nkeys; i++)
		if (!strchr(o->keys[i], '=')) {
			fprintf(stderr, "ward: '%s' is not key=value\n", o->keys[i]);
			return -1;
		}
	int rc = o->in_process ? run_in_process(o, r) : run_forked(o, r);
	judge(r);
	return rc;
}

void test_result_free(struct test_result *r)
{
	free(r->cycles);
	strv_free(&r->log);
	*r = (struct test_result){0};
}

/* ---- the report ---- */

static void print_json(const struct tester_options *o, const struct test_result *r, FILE *out)
{
	char sig[32];
	fprintf(out, "{\"plugin\": ");
	json_string(out, o->plugin);
	fprintf(out, ", \"ok\": %s, \"phases\": [", r->ok ? "true" : "false");
	const struct test_phase *ph[] = {&r->load, &r->init, &r->shutdown};
	const char *names[] = {"load", "init", "shutdown"};
	bool first = true;
	for (int i = 0; i < 3; i++) {
		if (!ph[i]->seen)
			continue;
		fprintf(out, "%s{\"phase\": \"%s\", \"ms\": %.3f, \"note\": ", first ? "" : ", ", names[i], ph[i]->ns / 1e6);
		json_string(out, ph[i]->note);
		fprintf(out, "}");
		first = false;
	}
	fprintf(out, "], \"cycles\": [");
	for (size_t i = 0; i < r->ncycles; i++)
		fprintf(out, "%s{\"result\": \"%s\", \"ms\": %.3f}", i ? ", " : "", cycle_result_name(r->cycles[i].result),
			r->cycles[i].ns / 1e6);
	fprintf(out, "], \"log\": [");
	for (size_t i = 0; i < r->log.n; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, r->log.v[i]);
	}
	fprintf(out, "], \"end\": {\"reason\": \"%s\", \"code\": %d, \"signal\": ", reason_name(r->end.reason), r->end.code);
	if (r->end.signal)
		json_string(out, signal_name(r->end.signal, sig, sizeof(sig)));
	else
		fputs("null", out);
	fprintf(out, ", \"message\": ");
	json_string(out, r->end.message);
	fprintf(out, "}, \"timed_out\": %s}\n", r->timed_out ? "true" : "false");
}

void tester_print(const struct tester_options *o, const struct test_result *r, FILE *out, bool json)
{
	if (json) {
		print_json(o, r, out);
		return;
	}
	fprintf(out, "ward test %s%s\n", o->plugin, o->in_process ? " (in process)" : "");
	if (r->load.seen)
		fprintf(out, "  load      %9.3f ms  %s\n", r->load.ns / 1e6, r->load.note);
	if (r->init.seen)
		fprintf(out, "  init      %9.3f ms  returned %d\n", r->init.ns / 1e6, r->init_rc);
	for (size_t i = 0; i < r->ncycles; i++) {
		if (r->ncycles > 40 && i == 20) {
			fprintf(out, "  ...       (%zu more cycles)\n", r->ncycles - 40);
			i = r->ncycles - 20;
		}
		fprintf(out, "  cycle %-4zu%9.3f ms  %s\n", i + 1, r->cycles[i].ns / 1e6, cycle_result_name(r->cycles[i].result));
	}
	if (r->shutdown.seen)
		fprintf(out, "  shutdown  %9.3f ms%s\n", r->shutdown.ns / 1e6, strcmp(r->shutdown.note, "none") ? "" : "  (no shutdown function)");
	if (r->log.n) {
		fprintf(out, "  log:\n");
		for (size_t i = 0; i < r->log.n; i++)
			fprintf(out, "    %s\n", r->log.v[i]);
	}
	char end[512];
	exit_describe(&r->end, end, sizeof(end));
	fprintf(out, "  ended: %s%s\n", r->end.reason == REASON_NONE ? "did not start (configuration error)" : end,
		r->timed_out ? " (after the time allowed ran out)" : "");
	fprintf(out, "%s\n", r->ok ? "ok: the plugin behaved" :
		r->timed_out ? "FAILED: it did not finish in the time allowed (use --cycles N for a plugin that runs until stopped)" :
		"FAILED: see above");
}
