/*
 * status_json.h - the JSON of `ward status --json`, read from ward.db. One
 * renderer for the CLI's `ward status --json` (cli/report.c) and the host's
 * GET /status (daemon/http.c), so that the two can never drift apart; it
 * lives in daemon/ because the CLI may use the daemon's code and not the
 * other way round. The row-to-JSON pieces `ward history --json` shares are
 * here too. Runs in the CLI process and in the host.
 */
#ifndef WARD_STATUS_JSON_H
#define WARD_STATUS_JSON_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The last finished run of a worker (?1): reason, code, signal, core, ended_at, message. */
extern const char status_last_exit_sql[];
/* The instances of a worker (?1): instance, pid, state, started_at, cycles,
 * ready_at, init_ms, last_cycle_ms, progress_at, rss_bytes, cpu_usec (what
 * the instance's process used when the host last recorded it, at the sync
 * before status; NULL until then). */
extern const char status_instances_sql[];
enum { STATUS_COL_RSS = 9, STATUS_COL_CPU = 10 };
/* A figure (STATUS_COL_*) of a status_instances_sql row: only while the instance has a process. */
bool status_has_figure(sqlite3_stmt *in, int col);
/* Every worker, or the one named ?1: name, plugin, state, restarts, listen, on_demand. */
extern const char status_workers_sql[];

/* A JSON object's members from a row: member c is column c. */
enum field_kind { F_INT, F_STRING, F_TIME, F_SIGNAL, F_BOOL };
struct field {
	const char *name;
	enum field_kind kind;
};
void status_json_fields(FILE *out, sqlite3_stmt *st, const struct field *fields, int n);

/* A statement, or NULL with the reason on stderr ("unable to read the state database"). */
sqlite3_stmt *status_prepare(sqlite3 *db, const char *sql);
/* The file stem of a plugin path ("ticker" of ".../ticker.so"), in buf. */
const char *status_plugin_stem(const char *path, char *buf, size_t size);

/* `ward status --json` of every worker (name NULL) or of one into out:
 * the number of workers written, or -1 when the database could not be read
 * (said on stderr, nothing written). */
int status_json_write(sqlite3 *db, const char *name, FILE *out);

/* The queue a job worker takes jobs from, as the host's last sync saw it
 * (ward.db's job_queues). 1 found, 0 none (not a job worker). */
struct status_queue {
	char name[256];
	int64_t queued, running;
	int64_t oldest_queued_ms;      /* created_at of the oldest runnable queued job; 0: none */
	double oldest_queued_seconds;  /* its age at that sync */
};
int status_job_queue(sqlite3 *db, const char *worker, struct status_queue *q);

#endif
