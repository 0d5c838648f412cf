/*
 * report.c - `ward status` and `ward history`: queries on <state_dir>/ward.db
 * printed as an aligned table for people or as JSON (docs/operator-guide.md) for programs.
 * Runs in the CLI process. The database is opened read-only; WAL mode means
 * the host is never held up.
 */
#define _GNU_SOURCE
#include "cli/report.h"
#include "daemon/cgroup.h"
#include "daemon/worker.h"
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

/* A JSON object's members from a row: member c is column c. */
enum field_kind { F_INT, F_STRING, F_TIME, F_SIGNAL, F_BOOL };
struct field {
	const char *name;
	enum field_kind kind;
};

static void print_fields(sqlite3_stmt *st, const struct field *fields, int n)
{
	for (int c = 0; c < n; c++) {
		printf("%s\"%s\": ", c ? ", " : "", fields[c].name);
		switch (fields[c].kind) {
		case F_INT: json_int_or_null(stdout, st, c); break;
		case F_STRING: json_string(stdout, col_text(st, c)); break;
		case F_TIME: json_time(stdout, st, c); break;
		case F_SIGNAL: json_signal(stdout, st, c); break;
		case F_BOOL: fputs(sqlite3_column_int(st, c) ? "true" : "false", stdout); break;
		}
	}
}

/* The columns of last_exit_sql, as `ward status --json` names them. */
static const struct field exit_fields[] = {
	{"reason", F_STRING}, {"code", F_INT}, {"signal", F_SIGNAL}, {"core", F_BOOL}, {"at", F_TIME},
	{"message", F_STRING},
};

/* The columns of report_history's query, as `ward history --json` names them. */
static const struct field run_fields[] = {
	{"id", F_INT}, {"worker", F_STRING}, {"instance", F_INT}, {"pid", F_INT}, {"activation", F_STRING},
	{"started_at", F_TIME}, {"ready_at", F_TIME}, {"ended_at", F_TIME}, {"reason", F_STRING},
	{"code", F_INT}, {"signal", F_SIGNAL}, {"core", F_BOOL}, {"message", F_STRING}, {"cycles", F_INT},
	{"init_ms", F_INT}, {"last_cycle_ms", F_INT},
};

/* What printing one row of a report needs besides the row. */
struct list {
	const struct report_opts *o;
	sqlite3 *db;
	bool colour;
};

/* The instances of worker name, as members of a JSON list. */
static void print_json_instances(sqlite3 *db, const char *name)
{
	sqlite3_stmt *in = prepare(db, instances_sql);
	if (!in)
		return;
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

/* How worker name's last run ended, as a JSON object; null before any ended. */
static void print_json_last_exit(sqlite3 *db, const char *name)
{
	sqlite3_stmt *le = prepare(db, last_exit_sql);
	if (!le) {
		printf("null");
		return;
	}
	sqlite3_bind_text(le, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(le) == SQLITE_ROW) {
		printf("{");
		print_fields(le, exit_fields, (int)ARRAY_SIZE(exit_fields));
		printf("}");
	} else {
		printf("null");
	}
	sqlite3_finalize(le);
}

static void print_json_worker(const struct list *l, sqlite3_stmt *w, bool first)
{
	sqlite3 *db = l->db;
	const char *name = col_text(w, 0);
	char stem[256];
	printf("%s\n  {\"name\": ", first ? "" : ",");
	json_string(stdout, name);
	printf(", \"plugin\": ");
	json_string(stdout, plugin_stem(col_text(w, 1), stem, sizeof(stem)));
	printf(", \"state\": ");
	json_string(stdout, col_text(w, 2));
	printf(", \"instances\": [");
	print_json_instances(db, name);
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
	print_json_last_exit(db, name);
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

/* A query whose ?1 is the worker asked for (NULL: every worker). NULL on
 * an error, said by prepare(), and db is closed then. */
static sqlite3_stmt *prepare_for_name(sqlite3 *db, const char *sql, const char *name)
{
	sqlite3_stmt *st = prepare(db, sql);
	if (!st) {
		sqlite3_close(db);
		return NULL;
	}
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return st;
}

typedef void (*row_printer)(const struct list *l, sqlite3_stmt *st, bool first);

/* Every row of st, as a JSON list or as a table under its header; then
 * st and the database are closed. Returns the number of rows. */
static int print_list(const struct list *l, sqlite3_stmt *st, void (*header)(void), row_printer json,
		      row_printer text)
{
	int rows = 0;
	if (l->o->json)
		printf("[");
	else
		header();
	for (; sqlite3_step(st) == SQLITE_ROW; rows++)
		(l->o->json ? json : text)(l, st, rows == 0);
	if (l->o->json)
		printf("%s]\n", rows ? "\n" : "");
	sqlite3_finalize(st);
	sqlite3_close(l->db);
	return rows;
}

static void print_status_header(void)
{
	printf("%-20s %-14s %-9s %-14s %-9s %-8s %-10s %s\n", "NAME", "PLUGIN", "STATE", "PID", "UPTIME",
	       "RESTARTS", "CYCLES", "LAST EXIT");
}

/* One worker's row of `ward status` (and its instances' for `ward status NAME`). */
static void print_worker_line(const struct list *l, sqlite3_stmt *w, bool first)
{
	(void)first;
	sqlite3 *db = l->db;
	char stem[256], pids[64], uptime[32], last[512];
	long long cycles;
	summarize_instances(db, col_text(w, 0), pids, sizeof(pids), uptime, sizeof(uptime), &cycles);
	describe_last_exit(db, col_text(w, 0), last, sizeof(last));
	const char *on = l->colour ? state_colour(col_text(w, 2)) : "";
	printf("%-20s %-14s %s%-9s%s %-14s %-9s %-8d %-10lld %s\n", col_text(w, 0),
	       plugin_stem(col_text(w, 1), stem, sizeof(stem)), on, col_text(w, 2), *on ? "\033[0m" : "",
	       pids, uptime, sqlite3_column_int(w, 3), cycles, last);
	if (col_text(w, 4))
		printf("  sockets %s%s%s%s\n", col_text(w, 4), col_text(w, 5) ? " (" : "",
		       col_text(w, 5) ? col_text(w, 5) : "", col_text(w, 5) ? ")" : "");
	if (l->o->name)
		print_instance_lines(db, col_text(w, 0));
}

/* `ward status` as a probe (docs/operator-guide.md): a worker that has failed,
 * waits to restart, is not ready yet or is on its way down is not healthy.
 * stopped covers both a stop on request and a worker that waits for its first
 * connection, job or `ward start`. -1 when the database cannot say. */
static int count_unhealthy(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = prepare(db, "SELECT count(*) FROM workers WHERE (?1 IS NULL OR name = ?1)"
				       " AND state NOT IN ('running', 'done', 'stopped')");
	if (!st)
		return -1;
	if (name)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return n;
}

/* Exit status: 0 every worker listed is healthy, 3 one is not, 1 no host
 * runs or the state cannot be read. */
int report_status(const struct report_opts *o)
{
	int host_pid = 0;
	int held = statedir_lock_held(o->state_dir, &host_pid);
	sqlite3 *db = open_state(o);
	if (!db)
		return 1;
	if (held != 1)
		fprintf(stderr, "ward: no host is running for %s; showing the last recorded state\n", o->config_dir);
	int unhealthy = count_unhealthy(db, o->name);
	sqlite3_stmt *w = prepare_for_name(db, "SELECT name, plugin, state, restarts, listen, on_demand FROM workers"
						" WHERE ?1 IS NULL OR name = ?1 ORDER BY name", o->name);
	if (!w)
		return 1;
	struct list l = {.o = o, .db = db, .colour = !o->json && use_colour()};
	int rows = print_list(&l, w, print_status_header, print_json_worker, print_worker_line);
	if (o->name && rows == 0) {
		fprintf(stderr, "ward: no worker named '%s'\n", o->name);
		return 1;
	}
	if (held != 1 || unhealthy < 0)
		return 1;
	return unhealthy ? 3 : 0;
}

/* One run of `ward history --json`. */
static void print_json_run(const struct list *l, sqlite3_stmt *st, bool first)
{
	(void)l;
	printf("%s\n  {", first ? "" : ",");
	print_fields(st, run_fields, (int)ARRAY_SIZE(run_fields));
	printf("}");
}

/* One run of `ward history`, the columns of report_history's query. */
static void print_run_line(const struct list *l, sqlite3_stmt *st, bool first)
{
	(void)l;
	(void)first;
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

static void print_history_header(void)
{
	printf("%-24s %-20s %-4s %-8s %-10s %-9s %-10s %s\n", "STARTED", "WORKER", "INST", "PID", "ACTIVATION",
	       "RAN", "CYCLES", "EXIT");
}

int report_history(const struct report_opts *o)
{
	sqlite3 *db = open_state(o);
	if (!db)
		return 1;
	sqlite3_stmt *st = prepare_for_name(db,
		"SELECT id, worker, instance, pid, activation, started_at, ready_at, ended_at, reason, code,"
		" signal, core, message, cycles, init_ms, last_cycle_ms FROM (SELECT * FROM runs WHERE ?1 IS NULL OR worker = ?1"
		" ORDER BY id DESC LIMIT ?2) ORDER BY id", o->name);
	if (!st)
		return 1;
	sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : 20);
	print_list(&(struct list){.o = o, .db = db}, st, print_history_header, print_json_run, print_run_line);
	return 0;
}
