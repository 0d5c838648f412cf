/*
 * report.c - `ward status` and `ward history`: queries on <state_dir>/ward.db
 * printed as an aligned table for people or as JSON (SPEC §6) for programs.
 * The database is opened read-only; WAL mode means the host is never held up.
 */
#define _GNU_SOURCE
#include "cli/report.h"
#include "daemon/cgroup.h"
#include "daemon/host.h"
#include "daemon/lifecycle.h"
#include "common/json.h"
#include "common/reason.h"
#include "daemon/statedir.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void json_time(FILE *f, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		fputs("null", f);
		return;
	}
	char buf[32];
	format_iso_ms(sqlite3_column_int64(st, col), buf, sizeof(buf));
	json_string(f, buf);
}

static void json_int_or_null(FILE *f, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		fputs("null", f);
	else
		fprintf(f, "%lld", (long long)sqlite3_column_int64(st, col));
}

/* A signal number column as its name ("SIGSEGV"), or null. */
static void json_signal(FILE *f, sqlite3_stmt *st, int col)
{
	char sig[32];
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		fputs("null", f);
	else
		json_string(f, signal_name(sqlite3_column_int(st, col), sig, sizeof(sig)));
}

static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static sqlite3 *open_state(const struct report_opts *o)
{
	char *path = xasprintf("%s/ward.db", o->state_dir);
	sqlite3 *db = NULL;
	if (access(path, F_OK) < 0) {
		fprintf(stderr, "ward: no state database at %s: no host has run with this configuration yet (start one with `ward run -c %s`)\n",
			path, o->config_dir);
		free(path);
		return NULL;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "ward: unable to open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		db = NULL;
	} else {
		sqlite3_busy_timeout(db, 500);
	}
	free(path);
	return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "ward: unable to read the state database: %s\n", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

static const char *plugin_stem(const char *path, char *buf, size_t size)
{
	const char *base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path ? path : "";
	snprintf(buf, size, "%s", base);
	size_t n = strlen(buf);
	if (n > 3 && strcmp(buf + n - 3, ".so") == 0)
		buf[n - 3] = '\0';
	return buf;
}

/* The last finished run of a worker: reason, code, signal, core, ended_at, message. */
static const char last_exit_sql[] =
	"SELECT reason, code, signal, core, ended_at, message FROM runs"
	" WHERE worker = ?1 AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1";

static const char instances_sql[] =
	"SELECT instance, pid, state, started_at, cycles, ready_at, init_ms, last_cycle_ms, progress_at"
	" FROM instances WHERE worker = ?1 ORDER BY instance";

/* The CPU time of every process of the instance: null without cgroups. */
static void json_cpu_seconds(sqlite3_stmt *in, const char *worker)
{
	uint64_t usec;
	if (sqlite3_column_type(in, 1) != SQLITE_NULL &&
	    cgroup_cpu_usec_of(sqlite3_column_int(in, 1), worker, sqlite3_column_int(in, 0), &usec) == 0)
		printf("%.3f", (double)usec / 1e6);
	else
		fputs("null", stdout);
}

static void print_json_worker(sqlite3 *db, sqlite3_stmt *w, bool first)
{
	const char *name = col_text(w, 0);
	char stem[256];
	printf("%s\n  {\"name\": ", first ? "" : ",");
	json_string(stdout, name);
	printf(", \"plugin\": ");
	json_string(stdout, plugin_stem(col_text(w, 1), stem, sizeof(stem)));
	printf(", \"state\": ");
	json_string(stdout, col_text(w, 2));
	printf(", \"instances\": [");
	sqlite3_stmt *in = prepare(db, instances_sql);
	if (in) {
		sqlite3_bind_text(in, 1, name, -1, SQLITE_STATIC);
		for (int k = 0; sqlite3_step(in) == SQLITE_ROW; k++) {
			bool live = sqlite3_column_type(in, 1) != SQLITE_NULL;
			printf("%s{\"instance\": %d, \"pid\": ", k ? ", " : "", sqlite3_column_int(in, 0));
			json_int_or_null(stdout, in, 1);
			printf(", \"state\": ");
			json_string(stdout, col_text(in, 2));
			printf(", \"started_at\": ");
			if (live)
				json_time(stdout, in, 3);
			else
				fputs("null", stdout);
			printf(", \"cycles\": %lld, \"init_ms\": ", (long long)sqlite3_column_int64(in, 4));
			json_int_or_null(stdout, in, 6);
			printf(", \"last_cycle_ms\": ");
			json_int_or_null(stdout, in, 7);
			printf(", \"last_progress_at\": ");
			json_time(stdout, in, 8);
			printf(", \"cpu_seconds\": ");
			json_cpu_seconds(in, name);
			printf("}");
		}
		sqlite3_finalize(in);
	}
	printf("], \"restarts\": %d, \"listen\": [", sqlite3_column_int(w, 3));
	const char *listen = col_text(w, 4);
	for (const char *p = listen; p && *p;) {
		size_t n = strcspn(p, ",");
		char *one = xstrndup(p, n);
		printf("%s", p == listen ? "" : ", ");
		json_string(stdout, one);
		free(one);
		p += n + (p[n] == ',');
	}
	printf("], \"on_demand\": ");
	json_string(stdout, col_text(w, 5));
	printf(", \"last_exit\": ");
	sqlite3_stmt *le = prepare(db, last_exit_sql);
	if (le) {
		sqlite3_bind_text(le, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(le) == SQLITE_ROW) {
			printf("{\"reason\": ");
			json_string(stdout, col_text(le, 0));
			printf(", \"code\": ");
			json_int_or_null(stdout, le, 1);
			printf(", \"signal\": ");
			json_signal(stdout, le, 2);
			printf(", \"core\": %s, \"at\": ", sqlite3_column_int(le, 3) ? "true" : "false");
			json_time(stdout, le, 4);
			printf(", \"message\": ");
			json_string(stdout, col_text(le, 5));
			printf("}");
		} else {
			printf("null");
		}
		sqlite3_finalize(le);
	} else {
		printf("null");
	}
	printf("}");
}

static void describe_last_exit(sqlite3 *db, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "-");
	sqlite3_stmt *le = prepare(db, last_exit_sql);
	if (!le)
		return;
	sqlite3_bind_text(le, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(le) == SQLITE_ROW) {
		struct exit_info e = {.reason = reason_from_name(col_text(le, 0)),
				      .code = sqlite3_column_int(le, 1),
				      .signal = sqlite3_column_int(le, 2),
				      .core = sqlite3_column_int(le, 3)};
		char desc[400], ago[32];
		exit_describe(&e, desc, sizeof(desc));
		int64_t age = wall_ms() - sqlite3_column_int64(le, 4);
		format_duration_ms(age > 0 ? (uint64_t)age : 0, ago, sizeof(ago));
		snprintf(buf, size, "%s, %s ago", desc, ago);
	}
	sqlite3_finalize(le);
}

/* Per worker: pids, the uptime of the oldest running instance, total cycles. */
static void summarize_instances(sqlite3 *db, const char *name, char *pids, size_t psize,
				char *uptime, size_t usize, long long *cycles)
{
	snprintf(pids, psize, "-");
	snprintf(uptime, usize, "-");
	*cycles = 0;
	sqlite3_stmt *in = prepare(db, instances_sql);
	if (!in)
		return;
	sqlite3_bind_text(in, 1, name, -1, SQLITE_STATIC);
	size_t len = 0;
	int64_t oldest = 0;
	while (sqlite3_step(in) == SQLITE_ROW) {
		*cycles += sqlite3_column_int64(in, 4);
		if (sqlite3_column_type(in, 1) == SQLITE_NULL)
			continue;
		if (len < psize)
			len += (size_t)snprintf(pids + len, psize - len, "%s%d", len ? "," : "", sqlite3_column_int(in, 1));
		int64_t ready = sqlite3_column_int64(in, 5);
		if (ready && (!oldest || ready < oldest))
			oldest = ready;
	}
	if (oldest)
		format_duration_ms((uint64_t)(wall_ms() - oldest), uptime, usize);
	sqlite3_finalize(in);
}

static void ago(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		snprintf(buf, size, "-");
		return;
	}
	int64_t d = wall_ms() - sqlite3_column_int64(st, col);
	format_duration_ms(d > 0 ? (uint64_t)d : 0, buf, (unsigned)size);
}

/* `ward status NAME`: one line per instance under the worker's row. */
static void print_instance_lines(sqlite3 *db, const char *name)
{
	sqlite3_stmt *in = prepare(db, instances_sql);
	if (!in)
		return;
	sqlite3_bind_text(in, 1, name, -1, SQLITE_STATIC);
	while (sqlite3_step(in) == SQLITE_ROW) {
		char up[32], progress[32];
		bool live = sqlite3_column_type(in, 1) != SQLITE_NULL;
		if (live)
			ago(in, 5, up, sizeof(up));
		else
			snprintf(up, sizeof(up), "-");
		ago(in, 8, progress, sizeof(progress));
		printf("  #%-3d pid %-8s %-9s up %-8s cycles %-10lld init %sms  last cycle %sms  last progress %s ago\n",
		       sqlite3_column_int(in, 0), live ? col_text(in, 1) : "-", col_text(in, 2), up,
		       (long long)sqlite3_column_int64(in, 4), col_text(in, 6) ? col_text(in, 6) : "-",
		       col_text(in, 7) ? col_text(in, 7) : "-", progress);
	}
	sqlite3_finalize(in);
}

/* Colour only for a person at a terminal, and never when NO_COLOR is set. */
static bool use_colour(void)
{
	const char *term = getenv("TERM");
	return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
}

static const char *state_colour(const char *name)
{
	enum istate state;
	if (!istate_parse(name, &state))
		return "";
	switch (state) {
	case IS_RUNNING: return "\033[32m";
	case IS_FAILED: return "\033[1;31m";
	case IS_BACKOFF: case IS_STARTING: case IS_STOPPING: return "\033[33m";
	default: return "";
	}
}

int report_status(const struct report_opts *o)
{
	bool colour = !o->json && use_colour();
	int host_pid = 0;
	int held = statedir_lock_held(o->state_dir, &host_pid);
	sqlite3 *db = open_state(o);
	if (!db)
		return 1;
	if (held != 1)
		fprintf(stderr, "ward: no host is running for %s; showing the last recorded state\n", o->config_dir);
	sqlite3_stmt *w = prepare(db, "SELECT name, plugin, state, restarts, listen, on_demand FROM workers"
				      " WHERE ?1 IS NULL OR name = ?1 ORDER BY name");
	if (!w) {
		sqlite3_close(db);
		return 1;
	}
	if (o->name)
		sqlite3_bind_text(w, 1, o->name, -1, SQLITE_STATIC);
	int rows = 0;
	if (o->json)
		printf("[");
	else
		printf("%-20s %-14s %-9s %-14s %-9s %-8s %-10s %s\n", "NAME", "PLUGIN", "STATE", "PID", "UPTIME",
		       "RESTARTS", "CYCLES", "LAST EXIT");
	while (sqlite3_step(w) == SQLITE_ROW) {
		if (o->json) {
			print_json_worker(db, w, rows == 0);
		} else {
			char stem[256], pids[64], uptime[32], last[512];
			long long cycles;
			summarize_instances(db, col_text(w, 0), pids, sizeof(pids), uptime, sizeof(uptime), &cycles);
			describe_last_exit(db, col_text(w, 0), last, sizeof(last));
			const char *on = colour ? state_colour(col_text(w, 2)) : "";
			printf("%-20s %-14s %s%-9s%s %-14s %-9s %-8d %-10lld %s\n", col_text(w, 0),
			       plugin_stem(col_text(w, 1), stem, sizeof(stem)), on, col_text(w, 2), *on ? "\033[0m" : "",
			       pids, uptime, sqlite3_column_int(w, 3), cycles, last);
			if (col_text(w, 4))
				printf("  sockets %s%s%s%s\n", col_text(w, 4), col_text(w, 5) ? " (" : "",
				       col_text(w, 5) ? col_text(w, 5) : "", col_text(w, 5) ? ")" : "");
			if (o->name)
				print_instance_lines(db, col_text(w, 0));
		}
		rows++;
	}
	if (o->json)
		printf("%s]\n", rows ? "\n" : "");
	sqlite3_finalize(w);
	sqlite3_close(db);
	if (o->name && rows == 0) {
		fprintf(stderr, "ward: no worker named '%s'\n", o->name);
		return 1;
	}
	return held == 1 ? 0 : 1;
}

int report_history(const struct report_opts *o)
{
	sqlite3 *db = open_state(o);
	if (!db)
		return 1;
	sqlite3_stmt *st = prepare(db,
		"SELECT id, worker, instance, pid, activation, started_at, ready_at, ended_at, reason, code,"
		" signal, core, message, cycles, init_ms, last_cycle_ms FROM (SELECT * FROM runs WHERE ?1 IS NULL OR worker = ?1"
		" ORDER BY id DESC LIMIT ?2) ORDER BY id");
	if (!st) {
		sqlite3_close(db);
		return 1;
	}
	if (o->name)
		sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : 20);
	int rows = 0;
	if (o->json)
		printf("[");
	else
		printf("%-24s %-20s %-4s %-8s %-10s %-9s %-10s %s\n", "STARTED", "WORKER", "INST", "PID", "ACTIVATION",
		       "RAN", "CYCLES", "EXIT");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (o->json) {
			static const char *const ints[] = {"id", NULL, "instance", "pid"};
			printf("%s\n  {", rows ? "," : "");
			for (int c = 0; c < 4; c++) {
				if (c == 1) {
					printf(", \"worker\": ");
					json_string(stdout, col_text(st, 1));
					continue;
				}
				printf("%s\"%s\": ", c ? ", " : "", ints[c]);
				json_int_or_null(stdout, st, c);
			}
			printf(", \"activation\": ");
			json_string(stdout, col_text(st, 4));
			printf(", \"started_at\": ");
			json_time(stdout, st, 5);
			printf(", \"ready_at\": ");
			json_time(stdout, st, 6);
			printf(", \"ended_at\": ");
			json_time(stdout, st, 7);
			printf(", \"reason\": ");
			json_string(stdout, col_text(st, 8));
			printf(", \"code\": ");
			json_int_or_null(stdout, st, 9);
			printf(", \"signal\": ");
			json_signal(stdout, st, 10);
			printf(", \"core\": %s, \"message\": ", sqlite3_column_int(st, 11) ? "true" : "false");
			json_string(stdout, col_text(st, 12));
			printf(", \"cycles\": ");
			json_int_or_null(stdout, st, 13);
			printf(", \"init_ms\": ");
			json_int_or_null(stdout, st, 14);
			printf(", \"last_cycle_ms\": ");
			json_int_or_null(stdout, st, 15);
			printf("}");
		} else {
			char started[32], ran[32] = "-", exitdesc[512] = "(running)";
			format_iso_ms(sqlite3_column_int64(st, 5), started, sizeof(started));
			if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
				int64_t d = sqlite3_column_int64(st, 7) - sqlite3_column_int64(st, 5);
				format_duration_ms(d > 0 ? (uint64_t)d : 0, ran, sizeof(ran));
				struct exit_info e = {.reason = reason_from_name(col_text(st, 8)),
						      .code = sqlite3_column_int(st, 9),
						      .signal = sqlite3_column_int(st, 10),
						      .core = sqlite3_column_int(st, 11)};
				snprintf(e.message, sizeof(e.message), "%s", col_text(st, 12) ? col_text(st, 12) : "");
				exit_describe(&e, exitdesc, sizeof(exitdesc));
			}
			printf("%-24s %-20s %-4d %-8d %-10s %-9s %-10lld %s\n", started, col_text(st, 1),
			       sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
			       col_text(st, 4) ? col_text(st, 4) : "-", ran,
			       (long long)sqlite3_column_int64(st, 13), exitdesc);
		}
		rows++;
	}
	if (o->json)
		printf("%s]\n", rows ? "\n" : "");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}
