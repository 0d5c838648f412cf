/*
 * test_report.c - the report of a `ward test` run (test_run.c makes the
 * result): the human-readable one and the JSON one, and the names a result's
 * parts are given, which the harness uses too. Runs in the `ward test`
 * process (and the harness's process, for the names).
 */
#define _GNU_SOURCE
#include "cli/test_report.h"
#include "common/json.h"

#include <math.h>
#include <string.h>
#include <ward.h>

const char *cycle_result_name(int result)
{
	switch (result) {
	case WARD_OK: return "WARD_OK";
	case WARD_IDLE: return "WARD_IDLE";
	case WARD_DONE: return "WARD_DONE";
	}
	return result < 0 ? "WARD_ERROR" : "(not a ward result)";
}

const char *test_job_outcome_name(enum test_job_outcome o)
{
	switch (o) {
	case TEST_JOB_DONE: return "done";
	case TEST_JOB_FAILED: return "failed";
	case TEST_JOB_UNFINISHED: return "unfinished";
	case TEST_JOB_NOT_RUN: break;
	}
	return "not-run";
}

/* A result shown as text: printable ASCII (and tabs), no NUL, short enough for a line. */
static bool printable(const void *data, size_t len)
{
	const unsigned char *p = data;
	if (len > 200)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] >= 0x7f)
			return false;
	return true;
}

static void print_json_jobs(FILE *out, const struct test_result *r)
{
	fprintf(out, ", \"jobs\": [");
	for (size_t i = 0; i < r->njobs; i++) {
		const struct test_job *j = &r->jobs[i];
		fprintf(out, "%s{\"id\": %zu, \"outcome\": \"%s\", \"returned\": %d, \"ms\": %.3f, \"message\": ",
			i ? ", " : "", i + 1, test_job_outcome_name(j->outcome), j->ret, j->ns / 1e6);
		if (j->message)
			json_string(out, j->message);
		else
			fputs("null", out);
		fprintf(out, ", \"result_bytes\": %zu, \"result\": ", j->result_len);
		if (j->result_len && printable(j->result, j->result_len)) {
			char text[201];
			memcpy(text, j->result, j->result_len);
			text[j->result_len] = '\0';
			json_string(out, text);
		} else {
			fputs(j->result_len ? "null" : "\"\"", out);
		}
		fprintf(out, "}");
	}
	fprintf(out, "]");
}

static void print_jobs(FILE *out, const struct test_result *r)
{
	for (size_t i = 0; i < r->njobs; i++) {
		const struct test_job *j = &r->jobs[i];
		fprintf(out, "  job %-6zu%9.3f ms  %s", i + 1, j->ns / 1e6, test_job_outcome_name(j->outcome));
		if (j->message)
			fprintf(out, ": %s", j->message);
		if (j->result_len && printable(j->result, j->result_len))
			fprintf(out, "  result \"%.*s\"", (int)j->result_len, (const char *)j->result);
		else if (j->result_len)
			fprintf(out, "  result of %zu bytes", j->result_len);
		fputc('\n', out);
	}
}

const char *test_result_reason(const struct test_result *r)
{
	return r->config_error ? "config-error" : reason_name(r->end.reason);
}

static void print_json_strings(FILE *out, const char *name, const struct strv *v)
{
	fprintf(out, ", \"%s\": [", name);
	for (size_t i = 0; i < v->n; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, v->v[i]);
	}
	fprintf(out, "]");
}

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
	fprintf(out, "]");
	print_json_jobs(out, r);
	fprintf(out, ", \"metrics\": {");
	for (size_t i = 0; i < r->metrics.n; i++) {
		const struct pmetric *m = &r->metrics.v[i];
		char value[32];
		pmetric_format_value(pmetric_value(m), value, sizeof(value));
		/* JSON has no NaN nor Inf: null */
		fprintf(out, "%s\"%s\": %s", i ? ", " : "", m->name, isfinite(pmetric_value(m)) ? value : "null");
	}
	fprintf(out, "}");
	print_json_strings(out, "log", &r->log);
	print_json_strings(out, "errors", &r->errors);
	print_json_strings(out, "warnings", &r->warnings);
	fprintf(out, ", \"end\": {\"reason\": \"%s\", \"code\": %d, \"signal\": ", test_result_reason(r), r->end.code);
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
	for (size_t i = 0; i < r->errors.n; i++)
		fprintf(out, "  error: %s\n", r->errors.v[i]);
	for (size_t i = 0; i < r->warnings.n; i++)
		fprintf(out, "  warning: %s\n", r->warnings.v[i]);
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
	print_jobs(out, r);
	if (r->shutdown.seen)
		fprintf(out, "  shutdown  %9.3f ms%s\n", r->shutdown.ns / 1e6, strcmp(r->shutdown.note, "none") ? "" : "  (no shutdown function)");
	if (r->metrics.n) {
		fprintf(out, "  metrics:\n");
		for (size_t i = 0; i < r->metrics.n; i++) {
			char value[32];
			pmetric_format_value(pmetric_value(&r->metrics.v[i]), value, sizeof(value));
			fprintf(out, "    " PMETRIC_PREFIX "%s %s\n", r->metrics.v[i].name, value);
		}
	}
	if (r->log.n) {
		fprintf(out, "  log:\n");
		for (size_t i = 0; i < r->log.n; i++)
			fprintf(out, "    %s\n", r->log.v[i]);
	}
	char end[512];
	exit_describe(&r->end, end, sizeof(end));
	fprintf(out, "  ended: %s%s\n", r->config_error ? "did not start (see the errors above)" : end,
		r->timed_out ? " (after the time allowed ran out)" : "");
	fprintf(out, "%s\n", r->ok ? "ok: the plugin behaved" :
		r->timed_out ? "FAILED: it did not finish in the time allowed (use --cycles N for a plugin that runs until stopped)" :
		"FAILED: see above");
}
