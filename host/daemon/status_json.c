/*
 * status_json.c - `ward status --json` from ward.db (status_json.h): the one
 * renderer of the CLI's `ward status --json` and of the host's GET /status.
 * Runs in the CLI process and in the host; either opens the database
 * read-only, and WAL mode means the host's writes never wait for it.
 */
#define _GNU_SOURCE
#include "daemon/status_json.h"
#include "common/json.h"
#include "common/reason.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

const char status_last_exit_sql[] =
	"SELECT reason, code, signal, core, ended_at, message FROM runs"
	" WHERE worker = ?1 AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1";

const char status_instances_sql[] =
	"SELECT instance, pid, state, started_at, cycles, ready_at, init_ms, last_cycle_ms, progress_at,"
	" rss_bytes, cpu_usec FROM instances WHERE worker = ?1 ORDER BY instance";

const char status_workers_sql[] = "SELECT name, plugin, state, restarts, listen, on_demand FROM workers"
				  " WHERE ?1 IS NULL OR name = ?1 ORDER BY name";

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

sqlite3_stmt *status_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "ward: unable to read the state database: %s\n", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

const char *status_plugin_stem(const char *path, char *buf, size_t size)
{
	const char *base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path ? path : "";
	snprintf(buf, size, "%s", base);
	size_t n = strlen(buf);
	if (n > 3 && strcmp(buf + n - 3, ".so") == 0)
		buf[n - 3] = '\0';
	return buf;
}

void status_json_fields(FILE *out, sqlite3_stmt *st, const struct field *fields, int n)
{
	for (int c = 0; c < n; c++) {
		fprintf(out, "%s\"%s\": ", c ? ", " : "", fields[c].name);
		switch (fields[c].kind) {
		case F_INT: json_int_or_null(out, st, c); break;
		case F_STRING: json_string(out, col_text(st, c)); break;
		case F_TIME: json_time(out, st, c); break;
		case F_SIGNAL: json_signal(out, st, c); break;
		case F_BOOL: fputs(sqlite3_column_int(st, c) ? "true" : "false", out); break;
		}
	}
}

/* The columns of status_last_exit_sql, as `ward status --json` names them. */
static const struct field exit_fields[] = {
	{"reason", F_STRING}, {"code", F_INT}, {"signal", F_SIGNAL}, {"core", F_BOOL}, {"at", F_TIME},
	{"message", F_STRING},
};

bool status_has_figure(sqlite3_stmt *in, int col)
{
	return sqlite3_column_type(in, 1) != SQLITE_NULL && sqlite3_column_type(in, col) != SQLITE_NULL;
}

static void json_usage(FILE *out, sqlite3_stmt *in)
{
	fprintf(out, ", \"rss_bytes\": ");
	if (status_has_figure(in, STATUS_COL_RSS))
		fprintf(out, "%lld", (long long)sqlite3_column_int64(in, STATUS_COL_RSS));
	else
		fputs("null", out);
	fprintf(out, ", \"cpu_seconds\": ");
	if (status_has_figure(in, STATUS_COL_CPU))
		fprintf(out, "%.3f", (double)sqlite3_column_int64(in, STATUS_COL_CPU) / 1e6);
	else
		fputs("null", out);
}

/* The instances of worker name, as members of a JSON list. */
static void write_instances(FILE *out, sqlite3 *db, const char *name)
{
	sqlite3_stmt *in = status_prepare(db, status_instances_sql);
	if (!in)
		return;
	sqlite3_bind_text(in, 1, name, -1, SQLITE_STATIC);
	for (int k = 0; sqlite3_step(in) == SQLITE_ROW; k++) {
		bool live = sqlite3_column_type(in, 1) != SQLITE_NULL;
		fprintf(out, "%s{\"instance\": %d, \"pid\": ", k ? ", " : "", sqlite3_column_int(in, 0));
		json_int_or_null(out, in, 1);
		fprintf(out, ", \"state\": ");
		json_string(out, col_text(in, 2));
		fprintf(out, ", \"started_at\": ");
		if (live)
			json_time(out, in, 3);
		else
			fputs("null", out);
		fprintf(out, ", \"cycles\": %lld, \"init_ms\": ", (long long)sqlite3_column_int64(in, 4));
		json_int_or_null(out, in, 6);
		fprintf(out, ", \"last_cycle_ms\": ");
		json_int_or_null(out, in, 7);
		fprintf(out, ", \"last_progress_at\": ");
		json_time(out, in, 8);
		json_usage(out, in);
		fprintf(out, "}");
	}
	sqlite3_finalize(in);
}

/* How worker name's last run ended, as a JSON object; null before any ended. */
static void write_last_exit(FILE *out, sqlite3 *db, const char *name)
{
	sqlite3_stmt *le = status_prepare(db, status_last_exit_sql);
	if (!le) {
		fprintf(out, "null");
		return;
	}
	sqlite3_bind_text(le, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(le) == SQLITE_ROW) {
		fprintf(out, "{");
		status_json_fields(out, le, exit_fields, (int)ARRAY_SIZE(exit_fields));
		fprintf(out, "}");
	} else {
		fprintf(out, "null");
	}
	sqlite3_finalize(le);
}

/* The listen column ("a,b") as a JSON list's members. */
static void write_listen(FILE *out, const char *listen)
{
	for (const char *p = listen; p && *p;) {
		size_t n = strcspn(p, ",");
		char *one = xstrndup(p, n);
		fprintf(out, "%s", p == listen ? "" : ", ");
		json_string(out, one);
		free(one);
		p += n + (p[n] == ',');
	}
}

int status_job_queue(sqlite3 *db, const char *worker, struct status_queue *q)
{
	sqlite3_stmt *st = NULL;
	/* an older host's ward.db has no such table: no queue to show */
	if (sqlite3_prepare_v2(db, "SELECT queue, queued, running, oldest_queued_at, updated_at FROM job_queues WHERE worker = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, worker, -1, SQLITE_STATIC);
	int found = sqlite3_step(st) == SQLITE_ROW;
	if (found) {
		snprintf(q->name, sizeof(q->name), "%s", col_text(st, 0) ? col_text(st, 0) : "");
		q->queued = sqlite3_column_int64(st, 1);
		q->running = sqlite3_column_int64(st, 2);
		q->oldest_queued_ms = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
		int64_t at = sqlite3_column_int64(st, 4), age = at - q->oldest_queued_ms;
		q->oldest_queued_seconds = q->oldest_queued_ms && age > 0 ? (double)age / 1000.0 : 0.0;
	}
	sqlite3_finalize(st);
	return found;
}

static void write_queue(FILE *out, sqlite3 *db, const char *name)
{
	struct status_queue q;
	if (!status_job_queue(db, name, &q)) {
		fputs("null", out);
		return;
	}
	fputs("{\"name\": ", out);
	json_string(out, q.name);
	fprintf(out, ", \"queued\": %lld, \"running\": %lld, \"oldest_queued_seconds\": %.3f}", (long long)q.queued,
		(long long)q.running, q.oldest_queued_seconds);
}

/* One row of status_workers_sql as a JSON object. */
static void write_worker(FILE *out, sqlite3 *db, sqlite3_stmt *w, bool first)
{
	const char *name = col_text(w, 0);
	char stem[256];
	fprintf(out, "%s\n  {\"name\": ", first ? "" : ",");
	json_string(out, name);
	fprintf(out, ", \"plugin\": ");
	json_string(out, status_plugin_stem(col_text(w, 1), stem, sizeof(stem)));
	fprintf(out, ", \"state\": ");
	json_string(out, col_text(w, 2));
	fprintf(out, ", \"instances\": [");
	write_instances(out, db, name);
	fprintf(out, "], \"restarts\": %d, \"listen\": [", sqlite3_column_int(w, 3));
	write_listen(out, col_text(w, 4));
	fprintf(out, "], \"on_demand\": ");
	json_string(out, col_text(w, 5));
	fprintf(out, ", \"last_exit\": ");
	write_last_exit(out, db, name);
	fprintf(out, ", \"queue\": ");
	write_queue(out, db, name);
	fprintf(out, "}");
}

int status_json_write(sqlite3 *db, const char *name, FILE *out)
{
	sqlite3_stmt *w = status_prepare(db, status_workers_sql);
	if (!w)
		return -1;
	if (name)
		sqlite3_bind_text(w, 1, name, -1, SQLITE_STATIC);
	int rows = 0;
	fputs("[", out);
	for (; sqlite3_step(w) == SQLITE_ROW; rows++)
		write_worker(out, db, w, rows == 0);
	fprintf(out, "%s]\n", rows ? "\n" : "");
	sqlite3_finalize(w);
	return rows;
}
