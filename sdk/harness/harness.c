/*
 * harness.c - the plugin test harness (ward_harness.h) on top of ward's own
 * tester: the run happens in a forked helper process that is a small ward
 * host, and its report comes back over a pipe as lines, so nothing of the
 * run (signal mask, child reaper, the plugin itself) touches the test
 * process. In-process runs call the tester directly.
 */
#define _GNU_SOURCE
#include <ward_harness.h>

#include "cli/test_report.h"
#include "cli/test_run.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct ward_harness {
	char *plugin;
	struct strv keys;
	unsigned long cycles, timeout_ms;
	int in_process;
	struct test_job_input *jobs; /* each data owned */
	size_t njobs;
	struct test_result r;
	bool ran;
};

ward_harness *ward_harness_new(const char *plugin_path)
{
	ward_harness *h = xcalloc(1, sizeof(*h));
	h->plugin = xstrdup(plugin_path);
	/* Relative to the directory the test is in now, whatever it does later. */
	char *absolute = realpath(plugin_path, NULL);
	if (absolute) {
		free(h->plugin);
		h->plugin = absolute;
	}
	h->timeout_ms = 30000;
	return h;
}

void ward_harness_free(ward_harness *h)
{
	if (!h)
		return;
	free(h->plugin);
	strv_free(&h->keys);
	for (size_t i = 0; i < h->njobs; i++)
		free((void *)h->jobs[i].data);
	free(h->jobs);
	test_result_free(&h->r);
	free(h);
}

void ward_harness_set(ward_harness *h, const char *key, const char *value)
{
	strv_push(&h->keys, xasprintf("%s=%s", key, value));
}

void ward_harness_cycles(ward_harness *h, unsigned long n) { h->cycles = n; }
void ward_harness_timeout_ms(ward_harness *h, unsigned long ms) { h->timeout_ms = ms; }
void ward_harness_in_process(ward_harness *h, int yes) { h->in_process = yes; }

size_t ward_harness_job(ward_harness *h, const void *payload, size_t len)
{
	void *copy = xmalloc(len ? len : 1);
	if (len)
		memcpy(copy, payload, len);
	h->jobs = xrealloc(h->jobs, (h->njobs + 1) * sizeof(*h->jobs));
	h->jobs[h->njobs] = (struct test_job_input){copy, len};
	return h->njobs++;
}

size_t ward_harness_job_count(const ward_harness *h) { return h->njobs; }

struct ward_harness_job_outcome ward_harness_job_outcome(const ward_harness *h, size_t i)
{
	if (i >= h->r.njobs)
		return (struct ward_harness_job_outcome){.outcome = "not-run", .message = ""};
	const struct test_job *j = &h->r.jobs[i];
	return (struct ward_harness_job_outcome){.outcome = test_job_outcome_name(j->outcome), .returned = j->ret,
						 .message = j->message ? j->message : "",
						 .result = j->result_len ? j->result : NULL, .result_len = j->result_len,
						 .ms = j->ns / 1e6};
}

/* ---- the report over a pipe: one item per line ---- */

/* Bytes as hex ("-" for none): a job's message and result stay on their line. */
static void put_hex(FILE *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (!len)
		fputc('-', out);
	for (size_t i = 0; i < len; i++)
		fprintf(out, "%02x", p[i]);
}

static size_t get_hex(const char *hex, size_t hexlen, char **out)
{
	*out = NULL;
	if (hexlen == 1 && hex[0] == '-')
		return 0;
	size_t n = hexlen / 2;
	char *buf = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			v = 0;
		buf[i] = (char)v;
	}
	buf[n] = '\0';
	*out = buf;
	return n;
}

static void take_job(struct test_result *r, const char *line)
{
	int outcome, ret, n = 0;
	long long ns;
	if (sscanf(line, "J %d %d %lld %n", &outcome, &ret, &ns, &n) != 3 || !n)
		return;
	const char *msg = line + n, *sp = strchr(msg, ' ');
	if (!sp)
		return;
	r->jobs = xrealloc(r->jobs, (r->njobs + 1) * sizeof(*r->jobs));
	struct test_job *j = &r->jobs[r->njobs++];
	*j = (struct test_job){.outcome = (enum test_job_outcome)outcome, .ret = ret, .ns = ns};
	get_hex(msg, (size_t)(sp - msg), &j->message);
	char *result;
	j->result_len = get_hex(sp + 1, strlen(sp + 1), &result);
	j->result = result;
}

static void send_report(FILE *out, const struct test_result *r)
{
	const struct test_phase *ph[] = {&r->load, &r->init, &r->shutdown};
	for (int i = 0; i < 3; i++)
		if (ph[i]->seen)
			fprintf(out, "P %d %lld %s\n", i, (long long)ph[i]->ns, ph[i]->note);
	fprintf(out, "R %d\n", r->init_rc);
	for (size_t i = 0; i < r->ncycles; i++)
		fprintf(out, "C %d %lld\n", r->cycles[i].result, (long long)r->cycles[i].ns);
	for (size_t i = 0; i < r->njobs; i++) {
		const struct test_job *j = &r->jobs[i];
		fprintf(out, "J %d %d %lld ", (int)j->outcome, j->ret, (long long)j->ns);
		put_hex(out, j->message, j->message ? strlen(j->message) : 0);
		fputc(' ', out);
		put_hex(out, j->result, j->result_len);
		fputc('\n', out);
	}
	for (size_t i = 0; i < r->log.n; i++)
		fprintf(out, "L %s\n", r->log.v[i]);
	for (size_t i = 0; i < r->errors.n; i++)
		fprintf(out, "X %s\n", r->errors.v[i]);
	for (size_t i = 0; i < r->warnings.n; i++)
		fprintf(out, "W %s\n", r->warnings.v[i]);
	for (size_t i = 0; i < r->metrics.n; i++) /* %a: the very double, read back by strtod */
		fprintf(out, "M %d %a %s\n", (int)r->metrics.v[i].kind, pmetric_value(&r->metrics.v[i]), r->metrics.v[i].name);
	fprintf(out, "E %d %d %d %d %d %d %d %s\n", (int)r->end.reason, r->end.code, r->end.signal, (int)r->end.core,
		r->timed_out, r->config_error, r->ok, r->end.message);
}

static void take_metric(struct pmetric_set *s, const char *line)
{
	int kind, n = 0;
	char value[64];
	if (sscanf(line, "M %d %63s %n", &kind, value, &n) != 2 || !n || strlen(line + n) > PMETRIC_NAME_MAX)
		return;
	if (!s->v)
		s->v = xcalloc(PMETRIC_MAX, sizeof(*s->v));
	if (s->n == PMETRIC_MAX)
		return;
	struct pmetric *m = &s->v[s->n++];
	*m = (struct pmetric){.kind = (enum pmetric_kind)kind, .value = strtod(value, NULL), .live = true};
	snprintf(m->name, sizeof(m->name), "%s", line + n);
}

static void take_line(struct test_result *r, char *line)
{
	int i, a, b, c, d, e, f, g, n = 0;
	long long ns;
	if (sscanf(line, "P %d %lld %n", &i, &ns, &n) == 2 && i >= 0 && i < 3) {
		struct test_phase *ph[] = {&r->load, &r->init, &r->shutdown};
		ph[i]->seen = true;
		ph[i]->ns = ns;
		snprintf(ph[i]->note, sizeof(ph[i]->note), "%s", line + n);
	} else if (sscanf(line, "R %d", &a) == 1) {
		r->init_rc = a;
	} else if (sscanf(line, "C %d %lld", &a, &ns) == 2) {
		if (r->ncycles == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->cycles = xrealloc(r->cycles, r->cap * sizeof(*r->cycles));
		}
		r->cycles[r->ncycles++] = (struct test_cycle){a, ns};
	} else if (strncmp(line, "J ", 2) == 0) {
		take_job(r, line);
	} else if (strncmp(line, "L ", 2) == 0) {
		strv_push(&r->log, xstrdup(line + 2));
	} else if (strncmp(line, "X ", 2) == 0) {
		strv_push(&r->errors, xstrdup(line + 2));
	} else if (strncmp(line, "W ", 2) == 0) {
		strv_push(&r->warnings, xstrdup(line + 2));
	} else if (strncmp(line, "M ", 2) == 0) {
		take_metric(&r->metrics, line);
	} else if (sscanf(line, "E %d %d %d %d %d %d %d %n", &a, &b, &c, &d, &e, &f, &g, &n) == 7) {
		r->end.reason = (enum reason)a;
		r->end.code = b;
		r->end.signal = c;
		r->end.core = d;
		r->timed_out = e;
		r->config_error = f;
		r->ok = g;
		snprintf(r->end.message, sizeof(r->end.message), "%s", line + n);
	}
}

static int run_in_helper(ward_harness *h, const struct tester_options *o)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		struct test_result r;
		int rc = tester_run(o, &r);
		FILE *out = fdopen(p[1], "w");
		if (rc == 0 && out)
			send_report(out, &r);
		_exit(out && fclose(out) == 0 && rc == 0 ? 0 : 1);
	}
	close(p[1]);
	FILE *in = fdopen(p[0], "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool got_end = false;
	while (in && (n = getline(&line, &cap, in)) > 0) {
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		got_end |= line[0] == 'E';
		take_line(&h->r, line);
	}
	free(line);
	if (in)
		fclose(in);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return got_end ? 0 : -1;
}

int ward_harness_run(ward_harness *h)
{
	test_result_free(&h->r);
	struct tester_options o = {.plugin = h->plugin, .keys = h->keys.v, .nkeys = h->keys.n,
				   .cycles = h->cycles, .timeout_ms = h->timeout_ms, .in_process = h->in_process,
				   .from_harness = true, .jobs = h->jobs, .njobs = h->njobs};
	int rc = h->in_process ? tester_run(&o, &h->r) : run_in_helper(h, &o);
	h->ran = rc == 0;
	return rc < 0 ? -1 : h->r.ok ? 0 : 1;
}

const char *ward_harness_reason(const ward_harness *h) { return test_result_reason(&h->r); }
const char *ward_harness_message(const ward_harness *h) { return h->r.end.message; }
int ward_harness_exit_code(const ward_harness *h) { return h->r.end.code; }
int ward_harness_signal(const ward_harness *h) { return h->r.end.signal; }
int ward_harness_timed_out(const ward_harness *h) { return h->r.timed_out; }
int ward_harness_init_result(const ward_harness *h) { return h->r.init_rc; }
int ward_harness_shutdown_ran(const ward_harness *h) { return h->r.shutdown.seen; }
double ward_harness_load_ms(const ward_harness *h) { return h->r.load.ns / 1e6; }
double ward_harness_init_ms(const ward_harness *h) { return h->r.init.ns / 1e6; }
double ward_harness_shutdown_ms(const ward_harness *h) { return h->r.shutdown.ns / 1e6; }
size_t ward_harness_cycle_count(const ward_harness *h) { return h->r.ncycles; }

int ward_harness_cycle_result(const ward_harness *h, size_t i)
{
	return i < h->r.ncycles ? h->r.cycles[i].result : -99;
}

double ward_harness_cycle_ms(const ward_harness *h, size_t i)
{
	return i < h->r.ncycles ? h->r.cycles[i].ns / 1e6 : -1;
}

size_t ward_harness_log_count(const ward_harness *h) { return h->r.log.n; }

const char *ward_harness_log_line(const ward_harness *h, size_t i)
{
	return i < h->r.log.n ? h->r.log.v[i] : NULL;
}

int ward_harness_log_contains(const ward_harness *h, const char *needle)
{
	for (size_t i = 0; i < h->r.log.n; i++)
		if (strstr(h->r.log.v[i], needle))
			return 1;
	return 0;
}

double ward_harness_metric(const ward_harness *h, const char *name)
{
	for (size_t i = 0; i < h->r.metrics.n; i++)
		if (strcmp(h->r.metrics.v[i].name, name) == 0)
			return pmetric_value(&h->r.metrics.v[i]);
	return NAN;
}
