/*
 * report.c - `ward status` and `ward history`: queries on <state_dir>/ward.db
 * printed as an aligned table for people or as JSON (docs/operator-guide.md)
 * for programs; `ward status --json` is daemon/status_json.c's, which the
 * host's GET /status serves too. Runs in the CLI process. The database is
 * opened read-only; WAL mode means the host is never held up.
 */
#define _GNU_SOURCE
#include "cli/report.h"
#include "cli/logview.h"
#include "daemon/status_json.h"
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

static const char *col_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

sqlite3 *report_open_readonly(const char *path, const char *what, const char *missing)
{
	sqlite3 *db = NULL;
	if (access(path, F_OK) < 0) {
		fprintf(stderr, "ward: no %s at %s: %s\n", what, path, missing);
		return NULL;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "ward: unable to open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 500);
	return db;
}

static sqlite3 *open_state(const struct report_opts *o)
{
	char *path = xasprintf("%s/ward.db", o->state_dir);
	char *missing = xasprintf("no host has run with this configuration yet (start one with `ward run -c %s`)",
				  o->config_dir);
	sqlite3 *db = report_open_readonly(path, "state database", missing);
	free(missing);
	free(path);
	return db;
}

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

static void describe_last_exit(sqlite3 *db, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "-");
	sqlite3_stmt *le = status_prepare(db, status_last_exit_sql);
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

/* A worker's row of `ward status`, summed over its instances. */
struct summary {
	char pids[64], uptime[32], mem[16], cpu[32];
	long long cycles;
};

/* 1.8M, 512K, 3.1G: the suffixes of the configuration's sizes. */
static void format_bytes(uint64_t n, char *buf, size_t size)
{
	static const char units[] = "KMGT";
	double v = (double)n;
	int u = -1;
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%lluB", (unsigned long long)n);
	else
		snprintf(buf, size, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

/* MEM and CPU: the sums over the instances whose process was measured. */
static void summarize_usage(struct summary *s, uint64_t rss, uint64_t cpu_usec, bool measured)
{
	snprintf(s->mem, sizeof(s->mem), "-");
	snprintf(s->cpu, sizeof(s->cpu), "-");
	if (!measured)
		return;
	format_bytes(rss, s->mem, sizeof(s->mem));
	format_duration_ms(cpu_usec / 1000, s->cpu, sizeof(s->cpu));
}

/* Per worker: pids, the uptime of the oldest running instance, total cycles, memory and CPU. */
static void summarize_instances(sqlite3 *db, const char *name, struct summary *s)
{
	snprintf(s->pids, sizeof(s->pids), "-");
	snprintf(s->uptime, sizeof(s->uptime), "-");
	s->cycles = 0;
	summarize_usage(s, 0, 0, false);
	sqlite3_stmt *in = status_prepare(db, status_instances_sql);
	if (!in)
		return;
	sqlite3_bind_text(in, 1, name, -1, SQLITE_STATIC);
	size_t len = 0, psize = sizeof(s->pids);
	int64_t oldest = 0;
	uint64_t rss = 0, cpu = 0;
	bool measured = false;
	while (sqlite3_step(in) == SQLITE_ROW) {
		s->cycles += sqlite3_column_int64(in, 4);
		if (sqlite3_column_type(in, 1) == SQLITE_NULL)
			continue;
		if (len < psize)
			len += (size_t)snprintf(s->pids + len, psize - len, "%s%d", len ? "," : "", sqlite3_column_int(in, 1));
		int64_t ready = sqlite3_column_int64(in, 5);
		if (ready && (!oldest || ready < oldest))
			oldest = ready;
		if (status_has_figure(in, STATUS_COL_RSS) && status_has_figure(in, STATUS_COL_CPU)) {
			rss += (uint64_t)sqlite3_column_int64(in, STATUS_COL_RSS);
			cpu += (uint64_t)sqlite3_column_int64(in, STATUS_COL_CPU);
			measured = true;
		}
	}
	if (oldest)
		format_duration_ms((uint64_t)(wall_ms() - oldest), s->uptime, sizeof(s->uptime));
	summarize_usage(s, rss, cpu, measured);
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
	sqlite3_stmt *in = status_prepare(db, status_instances_sql);
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
		struct summary s;
		summarize_usage(&s, (uint64_t)sqlite3_column_int64(in, STATUS_COL_RSS), (uint64_t)sqlite3_column_int64(in, STATUS_COL_CPU),
				status_has_figure(in, STATUS_COL_RSS) && status_has_figure(in, STATUS_COL_CPU));
		printf("  #%-3d pid %-8s %-9s up %-8s cycles %-10lld init %sms  last cycle %sms  last progress %s ago  mem %s  cpu %s\n",
		       sqlite3_column_int(in, 0), live ? col_text(in, 1) : "-", col_text(in, 2), up,
		       (long long)sqlite3_column_int64(in, 4), col_text(in, 6) ? col_text(in, 6) : "-",
		       col_text(in, 7) ? col_text(in, 7) : "-", progress, s.mem, s.cpu);
		if (live && col_text(in, STATUS_COL_TEXT)) /* a command worker's sd_notify STATUS= */
			printf("       status: %s\n", col_text(in, STATUS_COL_TEXT));
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
 * an error, said by status_prepare(), and db is closed then. */
static sqlite3_stmt *prepare_for_name(sqlite3 *db, const char *sql, const char *name)
{
	sqlite3_stmt *st = status_prepare(db, sql);
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
	printf("%-20s %-14s %-9s %-14s %-9s %-8s %-10s %-7s %-7s %s\n", "NAME", "PLUGIN", "STATE", "PID", "UPTIME",
	       "RESTARTS", "CYCLES", "MEM", "CPU", "LAST EXIT");
}

/* One worker's row of `ward status` (and its instances' for `ward status NAME`). */
static void print_worker_line(const struct list *l, sqlite3_stmt *w, bool first)
{
	(void)first;
	sqlite3 *db = l->db;
	char stem[256], last[512];
	struct summary s;
	summarize_instances(db, col_text(w, 0), &s);
	describe_last_exit(db, col_text(w, 0), last, sizeof(last));
	const char *on = l->colour ? state_colour(col_text(w, 2)) : "";
	printf("%-20s %-14s %s%-9s%s %-14s %-9s %-8d %-10lld %-7s %-7s %s\n", col_text(w, 0),
	       status_plugin_stem(col_text(w, 1), stem, sizeof(stem)), on, col_text(w, 2), *on ? "\033[0m" : "",
	       s.pids, s.uptime, sqlite3_column_int(w, 3), s.cycles, s.mem, s.cpu, last);
	if (col_text(w, 4))
		printf("  sockets %s%s%s%s\n", col_text(w, 4), col_text(w, 5) ? " (" : "",
		       col_text(w, 5) ? col_text(w, 5) : "", col_text(w, 5) ? ")" : "");
	struct status_queue q;
	if (status_job_queue(db, col_text(w, 0), &q))
		printf("  queue %s: %lld queued (oldest %.1f s), %lld running\n", q.name, (long long)q.queued,
		       q.oldest_queued_seconds, (long long)q.running);
	if (l->o->name)
		print_instance_lines(db, col_text(w, 0));
}

/* `ward status --json`: the renderer GET /status uses too (daemon/status_json.c). */
static int print_status_json(sqlite3 *db, const char *name)
{
	int rows = status_json_write(db, name, stdout);
	sqlite3_close(db);
	return rows;
}

/* `ward status` as a probe (docs/operator-guide.md): a worker that has failed,
 * waits to restart, is not ready yet or is on its way down is not healthy.
 * stopped covers both a stop on request and a worker that waits for its first
 * connection, job or `ward start`. -1 when the database cannot say. */
static int count_unhealthy(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = status_prepare(db, "SELECT count(*) FROM workers WHERE (?1 IS NULL OR name = ?1)"
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
/* As `systemctl status` does: what the worker said last, under its state. */
#define STATUS_LOG_LINES 10

static void print_log_tail(const struct report_opts *o)
{
	if (!o->log_dir)
		return;
	printf("\n");
	fflush(stdout); /* logview writes to descriptor 1 itself */
	logview_show(o->log_dir, o->name, STATUS_LOG_LINES, false); /* a missing log is said on stderr */
}

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
	int rows;
	if (o->json) {
		rows = print_status_json(db, o->name);
	} else {
		sqlite3_stmt *w = prepare_for_name(db, status_workers_sql, o->name);
		if (!w)
			return 1;
		struct list l = {.o = o, .db = db, .colour = use_colour()};
		rows = print_list(&l, w, print_status_header, NULL, print_worker_line);
	}
	if (rows < 0)
		return 1;
	if (o->name && rows == 0) {
		fprintf(stderr, "ward: no worker named '%s'\n", o->name);
		return 1;
	}
	if (o->name && !o->json)
		print_log_tail(o);
	if (held != 1 || unhealthy < 0)
		return 1;
	return unhealthy ? 3 : 0;
}

/* The column of report_history's query after run_fields: the last lines
 * of a failed run, joined by newlines (daemon/runtail.c), or NULL. */
#define RUN_COL_LOG ((int)ARRAY_SIZE(run_fields))

/* Calls fn with each of the run's last lines, oldest first. */
static void each_log_line(sqlite3_stmt *st, void (*fn)(const char *line, bool first))
{
	const char *log = col_text(st, RUN_COL_LOG);
	for (const char *p = log; p && *p;) {
		size_t n = strcspn(p, "\n");
		char *line = xstrndup(p, n);
		fn(line, p == log);
		free(line);
		p += n + (p[n] == '\n');
	}
}

static void print_json_log_line(const char *line, bool first)
{
	printf("%s", first ? "" : ", ");
	json_string(stdout, line);
}

/* `--json --log`: "log": the lines as a list of strings, oldest first; [] when none were kept. */
static void print_json_log(sqlite3_stmt *st)
{
	printf(", \"log\": [");
	each_log_line(st, print_json_log_line);
	printf("]");
}

/* One run of `ward history --json`. */
static void print_json_run(const struct list *l, sqlite3_stmt *st, bool first)
{
	printf("%s\n  {", first ? "" : ",");
	status_json_fields(stdout, st, run_fields, (int)ARRAY_SIZE(run_fields));
	if (l->o->log)
		print_json_log(st);
	printf("}");
}

/* `--log`: under a failed run, the last lines its process wrote, indented.
 * A worker's bytes must not drive the terminal: its control characters
 * and bytes that are not UTF-8 are shown as \xNN (escape_invisible). */
static void print_log_line(const char *line, bool first)
{
	(void)first;
	char *shown = escape_invisible(line);
	printf("    %s\n", shown);
	free(shown);
}

/* One run of `ward history`, the columns of report_history's query. */
static void print_run_line(const struct list *l, sqlite3_stmt *st, bool first)
{
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
	if (l->o->log)
		each_log_line(st, print_log_line);
}

static void print_history_header(void)
{
	printf("%-24s %-20s %-4s %-8s %-10s %-9s %-10s %s\n", "STARTED", "WORKER", "INST", "PID", "ACTIVATION",
	       "RAN", "CYCLES", "EXIT");
}

/* A database no host of this version has opened yet has no runs.log column. */
static bool runs_have_log(sqlite3 *db)
{
	sqlite3_stmt *st = status_prepare(db, "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'log'");
	bool has = st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	return has;
}

int report_history(const struct report_opts *o)
{
	sqlite3 *db = open_state(o);
	if (!db)
		return 1;
	char *sql = xasprintf("SELECT id, worker, instance, pid, activation, started_at, ready_at, ended_at, reason, code,"
			      " signal, core, message, cycles, init_ms, last_cycle_ms, %s FROM (SELECT * FROM runs"
			      " WHERE ?1 IS NULL OR worker = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
			      o->log && runs_have_log(db) ? "log" : "NULL");
	sqlite3_stmt *st = prepare_for_name(db, sql, o->name);
	free(sql);
	if (!st)
		return 1;
	sqlite3_bind_int64(st, 2, o->limit > 0 ? o->limit : 20);
	print_list(&(struct list){.o = o, .db = db}, st, print_history_header, print_json_run, print_run_line);
	return 0;
}
