/*
 * jobs_report.c - `ward jobs` and `ward job ID` (jobs_report.h): queries on
 * <state_dir>/jobs.db, opened read-only (WAL: the host is never held up),
 * printed as a table for people or as JSON for programs. CLI process only.
 */
#define _GNU_SOURCE
#include "cli/jobs_report.h"
#include "cli/report.h"
#include "common/json.h"
#include "common/util.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sqlite3 *open_jobs(const char *state_dir)
{
	char *path = xasprintf("%s/jobs.db", state_dir);
	sqlite3 *db = report_open_readonly(path, "job database", "no job was queued with this configuration yet");
	free(path);
	return db;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "ward: unable to read jobs.db: %s\n", sqlite3_errmsg(db));
		return NULL;
	}
	return st;
}

static const char *text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return t ? t : "";
}

static bool is_null(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL;
}

static void json_time_col(FILE *f, sqlite3_stmt *st, int col)
{
	if (is_null(st, col) || sqlite3_column_int64(st, col) == 0) {
		fputs("null", f);
		return;
	}
	char buf[40];
	format_iso_ms(sqlite3_column_int64(st, col), buf, sizeof(buf));
	json_string(f, buf);
}

static void json_text_col(FILE *f, sqlite3_stmt *st, int col)
{
	if (is_null(st, col))
		fputs("null", f);
	else
		json_string(f, text(st, col));
}

static void json_int_col(FILE *f, sqlite3_stmt *st, int col)
{
	if (is_null(st, col))
		fputs("null", f);
	else
		fprintf(f, "%lld", (long long)sqlite3_column_int64(st, col));
}

static void time_col(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	if (is_null(st, col) || sqlite3_column_int64(st, col) == 0)
		snprintf(buf, size, "-");
	else
		format_iso_ms(sqlite3_column_int64(st, col), buf, size);
}

/* ---- ward jobs ---- */

static const char list_sql[] =
	"SELECT id, queue, key, state, attempts, created_at, run_at, finished_at, last_error FROM jobs"
	" WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3";

int report_jobs(const struct jobs_report_opts *o)
{
	sqlite3 *db = open_jobs(o->state_dir);
	if (!db)
		return 1;
	sqlite3_stmt *st = prepare(db, list_sql);
	if (!st) {
		sqlite3_close(db);
		return 1;
	}
	if (o->queue)
		sqlite3_bind_text(st, 1, o->queue, -1, SQLITE_STATIC);
	if (o->state)
		sqlite3_bind_text(st, 2, o->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, o->limit > 0 ? o->limit : 20);
	int rc, rows = 0;
	if (o->json)
		fputs("[", stdout);
	else
		printf("%-10s %-16s %-10s %-8s %-24s %s\n", "ID", "QUEUE", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (o->json) {
			printf("%s\n  {\"id\": %lld, \"queue\": ", rows ? "," : "", (long long)sqlite3_column_int64(st, 0));
			json_text_col(stdout, st, 1);
			fputs(", \"key\": ", stdout);
			json_text_col(stdout, st, 2);
			fputs(", \"state\": ", stdout);
			json_text_col(stdout, st, 3);
			fputs(", \"attempts\": ", stdout);
			json_int_col(stdout, st, 4);
			fputs(", \"created_at\": ", stdout);
			json_time_col(stdout, st, 5);
			fputs(", \"run_at\": ", stdout);
			json_time_col(stdout, st, 6);
			fputs(", \"finished_at\": ", stdout);
			json_time_col(stdout, st, 7);
			fputs(", \"last_error\": ", stdout);
			json_text_col(stdout, st, 8);
			fputs("}", stdout);
		} else {
			char created[40];
			time_col(st, 5, created, sizeof(created));
			printf("%-10lld %-16s %-10s %-8lld %-24s %s\n", (long long)sqlite3_column_int64(st, 0), text(st, 1),
			       text(st, 3), (long long)sqlite3_column_int64(st, 4), created,
			       is_null(st, 8) ? "-" : text(st, 8));
		}
		rows++;
	}
	if (o->json)
		fputs(rows ? "\n]\n" : "]\n", stdout);
	int ok = rc == SQLITE_DONE;
	if (!ok)
		fprintf(stderr, "ward: unable to read jobs.db: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok ? 0 : 1;
}

/* ---- ward job ID ---- */

static const char job_sql[] = "SELECT id, queue, key, state, created_at, finished_at, length(result), last_error, run_at"
			      " FROM jobs WHERE id = ?1";
static const char attempts_sql[] = "SELECT attempt, worker, instance, pid, started_at, ended_at, outcome, reason,"
				   " message, log FROM attempts WHERE job = ?1 ORDER BY attempt";

static void print_job_json(sqlite3_stmt *job, sqlite3_stmt *at)
{
	printf("{\"id\": %lld, \"queue\": ", (long long)sqlite3_column_int64(job, 0));
	json_text_col(stdout, job, 1);
	fputs(", \"key\": ", stdout);
	json_text_col(stdout, job, 2);
	fputs(", \"state\": ", stdout);
	json_text_col(stdout, job, 3);
	fputs(", \"created_at\": ", stdout);
	json_time_col(stdout, job, 4);
	fputs(", \"finished_at\": ", stdout);
	json_time_col(stdout, job, 5);
	printf(", \"result_bytes\": %lld, \"attempts\": [", (long long)sqlite3_column_int64(job, 6));
	int n = 0;
	while (sqlite3_step(at) == SQLITE_ROW) {
		printf("%s\n  {\"attempt\": %lld, \"instance\": ", n++ ? "," : "", (long long)sqlite3_column_int64(at, 0));
		json_int_col(stdout, at, 2);
		fputs(", \"pid\": ", stdout);
		json_int_col(stdout, at, 3);
		fputs(", \"started_at\": ", stdout);
		json_time_col(stdout, at, 4);
		fputs(", \"ended_at\": ", stdout);
		json_time_col(stdout, at, 5);
		fputs(", \"outcome\": ", stdout);
		json_text_col(stdout, at, 6);
		fputs(", \"reason\": ", stdout);
		json_text_col(stdout, at, 7);
		fputs(", \"message\": ", stdout);
		json_text_col(stdout, at, 8);
		fputs("}", stdout);
	}
	fputs(n ? "\n]}\n" : "]}\n", stdout);
}

static void print_job_text(sqlite3_stmt *job, sqlite3_stmt *at)
{
	char created[40], finished[40], run_at[40];
	time_col(job, 4, created, sizeof(created));
	time_col(job, 5, finished, sizeof(finished));
	time_col(job, 8, run_at, sizeof(run_at));
	printf("job %lld  queue %s  key %s  state %s\n", (long long)sqlite3_column_int64(job, 0), text(job, 1),
	       is_null(job, 2) ? "-" : text(job, 2), text(job, 3));
	printf("  created %s  finished %s", created, finished);
	if (strcmp(text(job, 3), "queued") == 0)
		printf("  runs from %s", run_at);
	printf("  result %lld bytes\n", (long long)sqlite3_column_int64(job, 6));
	if (!is_null(job, 7))
		printf("  last error: %s\n", text(job, 7));
	while (sqlite3_step(at) == SQLITE_ROW) {
		char started[40], ended[40];
		time_col(at, 4, started, sizeof(started));
		time_col(at, 5, ended, sizeof(ended));
		printf("  attempt %lld  %s:%lld pid %lld  %s .. %s  %s", (long long)sqlite3_column_int64(at, 0), text(at, 1),
		       (long long)sqlite3_column_int64(at, 2), (long long)sqlite3_column_int64(at, 3), started, ended,
		       is_null(at, 6) ? "running" : text(at, 6));
		/* the message often starts with its reason ("signal SIGSEGV: in a job"): said once */
		bool worded = !is_null(at, 8) && strncmp(text(at, 8), text(at, 7), strlen(text(at, 7))) == 0;
		if (worded)
			printf(" (%s)", text(at, 8));
		else if (!is_null(at, 7))
			printf(" (%s%s%s)", text(at, 7), is_null(at, 8) ? "" : ": ", is_null(at, 8) ? "" : text(at, 8));
		putchar('\n');
		if (!is_null(at, 9) && *text(at, 9)) { /* a failed attempt's last log lines */
			char *log = xstrdup(text(at, 9)), *save;
			for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
				printf("      | %s\n", line);
			free(log);
		}
	}
}

int report_job(const struct jobs_report_opts *o, long long id)
{
	sqlite3 *db = open_jobs(o->state_dir);
	if (!db)
		return 1;
	sqlite3_stmt *job = prepare(db, job_sql), *at = job ? prepare(db, attempts_sql) : NULL;
	int status = 1;
	if (!job || !at)
		goto out;
	sqlite3_bind_int64(job, 1, id);
	sqlite3_bind_int64(at, 1, id);
	int rc = sqlite3_step(job);
	if (rc == SQLITE_DONE) {
		fprintf(stderr, "ward: no job %lld (finished jobs are kept job_keep, then pruned)\n", id);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		fprintf(stderr, "ward: unable to read jobs.db: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	if (o->json)
		print_job_json(job, at);
	else
		print_job_text(job, at);
	status = 0;
out:
	sqlite3_finalize(job);
	sqlite3_finalize(at);
	sqlite3_close(db);
	return status;
}
