/*
 * sqlitefloor.c - the floor of the jobs benchmark (bench/jobs/run.sh): this
 * machine's raw SQLite speed for what ward's job store does per job, in one
 * process, no IPC, no event loop: insert the job (enqueue), take the oldest
 * queued one and record the attempt (claim), mark it done and end the
 * attempt (finish). The schema is JOBS-DESIGN.md's (jobs, attempts, the
 * claim, key and prune indexes), in WAL mode, statements prepared once.
 *
 *   sqlitefloor DIR N BATCH MODE
 *     MODE off    synchronous=OFF: no fsync at all (what a commit costs)
 *     MODE fsync  synchronous=FULL: every commit fsyncs the WAL
 *   Jobs go in rounds of BATCH: one transaction inserts BATCH jobs, the next
 *   claims and finishes them. BATCH 1 with fsync: two durable commits per job.
 *
 * Prints one line of key=value pairs (jobs/s).
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static sqlite3 *db;

static void die(const char *what)
{
	fprintf(stderr, "sqlitefloor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "no database");
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void exec(const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlitefloor: %s: %s\n", sql, err ? err : "?");
		exit(1);
	}
}

static sqlite3_stmt *prep(const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		die(sql);
	return st;
}

static void step_done(sqlite3_stmt *st, const char *what)
{
	if (sqlite3_step(st) != SQLITE_DONE)
		die(what);
	sqlite3_reset(st);
}

static const char schema[] =
	"CREATE TABLE jobs(id INTEGER PRIMARY KEY, queue TEXT NOT NULL, key TEXT, state TEXT NOT NULL,"
	" payload BLOB, result BLOB, attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
	" run_at INTEGER NOT NULL, finished_at INTEGER, last_error TEXT);"
	"CREATE TABLE attempts(job INTEGER NOT NULL, attempt INTEGER NOT NULL, worker TEXT, instance INTEGER,"
	" pid INTEGER, started_at INTEGER, ended_at INTEGER, outcome TEXT, reason TEXT, message TEXT, log TEXT,"
	" PRIMARY KEY(job, attempt)) WITHOUT ROWID;"
	"CREATE INDEX jobs_claim ON jobs(queue, run_at, id) WHERE state = 'queued';"
	"CREATE UNIQUE INDEX jobs_key ON jobs(queue, key) WHERE key IS NOT NULL AND state IN ('queued','running');"
	"CREATE INDEX jobs_prune ON jobs(finished_at) WHERE finished_at IS NOT NULL;";

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: sqlitefloor DIR N BATCH off|fsync\n");
		return 2;
	}
	long n = atol(argv[2]), batch = atol(argv[3]);
	int fsync_mode = strcmp(argv[4], "fsync") == 0;
	if (n <= 0 || batch <= 0 || (!fsync_mode && strcmp(argv[4], "off") != 0)) {
		fprintf(stderr, "sqlitefloor: N and BATCH must be positive, MODE off or fsync\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/floor.db", argv[1]);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path);
	exec("PRAGMA journal_mode=WAL");
	exec(fsync_mode ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
	exec("PRAGMA wal_autocheckpoint=0"); /* as the host's connection: the syncer checkpoints */
	exec(schema);

	sqlite3_stmt *ins = prep("INSERT INTO jobs(queue, key, state, payload, created_at, run_at)"
				 " VALUES('q', NULL, 'queued', ?1, ?2, ?2)");
	sqlite3_stmt *pick = prep("SELECT id, attempts, key, payload, created_at FROM jobs"
				  " WHERE queue = 'q' AND state = 'queued' AND run_at <= ?1 ORDER BY run_at, id LIMIT 1");
	sqlite3_stmt *take = prep("UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = ?1");
	sqlite3_stmt *att = prep("INSERT INTO attempts(job, attempt, worker, instance, pid, started_at)"
				 " VALUES(?1, ?2, 'w', 0, 1234, ?3)");
	sqlite3_stmt *fin = prep("UPDATE jobs SET state = 'done', result = ?2, finished_at = ?3 WHERE id = ?1");
	sqlite3_stmt *end = prep("UPDATE attempts SET ended_at = ?3, outcome = 'done' WHERE job = ?1 AND attempt = ?2");
	sqlite3_stmt *begin = prep("BEGIN"), *commit = prep("COMMIT");

	int64_t t0 = now_ns();
	long done = 0;
	while (done < n) {
		long here = n - done < batch ? n - done : batch;
		step_done(begin, "BEGIN");
		for (long i = 0; i < here; i++) {
			sqlite3_bind_blob(ins, 1, "x", 1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, wall_ms());
			step_done(ins, "insert");
		}
		step_done(commit, "COMMIT");
		step_done(begin, "BEGIN");
		for (long i = 0; i < here; i++) {
			int64_t now = wall_ms();
			sqlite3_bind_int64(pick, 1, now);
			if (sqlite3_step(pick) != SQLITE_ROW)
				die("claim found no job");
			int64_t id = sqlite3_column_int64(pick, 0);
			int attempt = sqlite3_column_int(pick, 1) + 1;
			(void)sqlite3_column_blob(pick, 3); /* the payload is read, as a claim hands it over */
			sqlite3_reset(pick);
			sqlite3_bind_int64(take, 1, id);
			step_done(take, "claim");
			sqlite3_bind_int64(att, 1, id);
			sqlite3_bind_int(att, 2, attempt);
			sqlite3_bind_int64(att, 3, now);
			step_done(att, "attempt");
			sqlite3_bind_int64(fin, 1, id);
			sqlite3_bind_blob(fin, 2, "1234567890123456789", 19, SQLITE_STATIC);
			sqlite3_bind_int64(fin, 3, now);
			step_done(fin, "finish");
			sqlite3_bind_int64(end, 1, id);
			sqlite3_bind_int(end, 2, attempt);
			sqlite3_bind_int64(end, 3, now);
			step_done(end, "end attempt");
		}
		step_done(commit, "COMMIT");
		done += here;
	}
	double s = (double)(now_ns() - t0) / 1e9;
	printf("jobs=%ld batch=%ld mode=%s seconds=%.3f jobs_per_s=%.0f\n", n, batch, argv[4], s, (double)n / s);
	sqlite3_close(db);
	return 0;
}
