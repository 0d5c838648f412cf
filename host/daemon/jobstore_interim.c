/*
 * jobstore_interim.c - INTERIM stand-in for the sqlite store (branch
 * jobstore owns host/daemon/jobstore_sqlite.c): the same jobstore.h
 * interface and schema on <state_dir>/jobs.db, but its sync is a plain
 * fdatasync in the loop (no syncer process, no group commit across turns).
 * Every symbol is weak: once the real store is linked, it replaces this
 * file whole, and this file goes. Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/jobstore.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEAK __attribute__((weak))

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, queue TEXT NOT NULL, key TEXT, state TEXT NOT NULL,"
	" payload BLOB, result BLOB, attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER, run_at INTEGER,"
	" finished_at INTEGER, last_error TEXT);"
	"CREATE TABLE IF NOT EXISTS attempts(job INTEGER, attempt INTEGER, worker TEXT, instance INTEGER, pid INTEGER,"
	" started_at INTEGER, ended_at INTEGER, outcome TEXT, reason TEXT, message TEXT, log TEXT,"
	" PRIMARY KEY(job, attempt));"
	"CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(queue, run_at, id) WHERE state = 'queued';"
	"CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs(queue, key) WHERE key IS NOT NULL AND state IN ('queued','running');"
	"CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;";

#define CACHED 32

struct interim {
	struct jobstore base;
	sqlite3 *db;
	const char *cached_sql[CACHED]; /* prepared statements, by their text's address */
	sqlite3_stmt *cached[CACHED];
	char *wal;
	bool in_batch;
	uint64_t batch;
	char error[512];
};

static const char *const state_names[JOB_STATE_COUNT] = {"queued", "running", "done", "dead", "cancelled"};

WEAK const char *job_state_name(enum job_state s)
{
	return (unsigned)s < JOB_STATE_COUNT ? state_names[s] : "unknown";
}

WEAK int job_state_parse(const char *word)
{
	for (int s = 0; s < JOB_STATE_COUNT; s++)
		if (strcmp(word, state_names[s]) == 0)
			return s;
	return -1;
}

WEAK void job_claim_free(struct job_claim *c)
{
	free(c->key);
	free(c->payload);
	c->key = NULL;
	c->payload = NULL;
}

static struct interim *of(struct jobstore *s)
{
	return (struct interim *)s;
}

static int fail(struct interim *s, const char *what)
{
	snprintf(s->error, sizeof(s->error), "%s: %s", what, sqlite3_errmsg(s->db));
	return -1;
}

static int begin(struct interim *s)
{
	if (s->in_batch)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return fail(s, "begin");
	s->in_batch = true;
	return 0;
}

/* A statement of this file (sql is one of its literals), prepared once. */
static sqlite3_stmt *prep(struct interim *s, const char *sql)
{
	int i = 0;
	for (; i < CACHED && s->cached_sql[i]; i++)
		if (s->cached_sql[i] == sql)
			return s->cached[i];
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
		fail(s, "prepare");
		return NULL;
	}
	if (i < CACHED) {
		s->cached_sql[i] = sql;
		s->cached[i] = st;
	}
	return st;
}

/* Done with a statement from prep(): reset for its next use. */
static void done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

static int64_t st_enqueue(struct jobstore *base, const struct job_new *job, bool *existing)
{
	struct interim *s = of(base);
	*existing = false;
	if (begin(s) < 0)
		return -1;
	if (job->key) {
		sqlite3_stmt *q = prep(s, "SELECT id FROM jobs WHERE queue = ?1 AND key = ?2 AND state IN ('queued','running')");
		if (!q)
			return -1;
		sqlite3_bind_text(q, 1, job->queue, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, job->key, -1, SQLITE_STATIC);
		int64_t id = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
		done(q);
		if (id) {
			*existing = true;
			return id;
		}
	}
	sqlite3_stmt *st = prep(s, "INSERT INTO jobs(queue, key, state, payload, created_at, run_at) VALUES(?1, ?2, 'queued', ?3, ?4, ?5)");
	if (!st)
		return -1;
	sqlite3_bind_text(st, 1, job->queue, -1, SQLITE_STATIC);
	if (job->key)
		sqlite3_bind_text(st, 2, job->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, job->len ? job->payload : "", (int)job->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, wall_ms());
	sqlite3_bind_int64(st, 5, job->run_at_ms);
	int rc = sqlite3_step(st);
	done(st);
	if (rc != SQLITE_DONE)
		return fail(s, "insert");
	return sqlite3_last_insert_rowid(s->db);
}

static int st_claim(struct jobstore *base, const char *queue, int64_t now_ms, const struct job_taker *t,
		    struct job_claim *out)
{
	struct interim *s = of(base);
	if (begin(s) < 0)
		return -1;
	sqlite3_stmt *q = prep(s, "SELECT id, attempts, key, payload, created_at FROM jobs WHERE state = 'queued' AND queue = ?1"
				  " AND run_at <= ?2 ORDER BY run_at, id LIMIT 1");
	if (!q)
		return -1;
	sqlite3_bind_text(q, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, now_ms);
	int rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		done(q);
		return rc == SQLITE_DONE ? 0 : fail(s, "claim");
	}
	*out = (struct job_claim){0};
	out->id = sqlite3_column_int64(q, 0);
	out->attempt = sqlite3_column_int(q, 1) + 1;
	if (sqlite3_column_type(q, 2) != SQLITE_NULL)
		out->key = xstrdup((const char *)sqlite3_column_text(q, 2));
	out->len = (size_t)sqlite3_column_bytes(q, 3);
	out->payload = xmalloc(out->len + 1);
	if (out->len)
		memcpy(out->payload, sqlite3_column_blob(q, 3), out->len);
	out->created_ms = sqlite3_column_int64(q, 4);
	done(q);
	sqlite3_stmt *u = prep(s, "UPDATE jobs SET state = 'running', attempts = ?2 WHERE id = ?1");
	sqlite3_stmt *a = prep(s, "INSERT OR REPLACE INTO attempts(job, attempt, worker, instance, pid, started_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
	if (!u || !a) {
		done(u);
		done(a);
		job_claim_free(out);
		return -1;
	}
	sqlite3_bind_int64(u, 1, out->id);
	sqlite3_bind_int(u, 2, out->attempt);
	sqlite3_bind_int64(a, 1, out->id);
	sqlite3_bind_int(a, 2, out->attempt);
	sqlite3_bind_text(a, 3, t->worker, -1, SQLITE_STATIC);
	sqlite3_bind_int(a, 4, t->instance);
	sqlite3_bind_int(a, 5, (int)t->pid);
	sqlite3_bind_int64(a, 6, t->at_ms);
	bool ok = sqlite3_step(u) == SQLITE_DONE && sqlite3_step(a) == SQLITE_DONE;
	done(u);
	done(a);
	if (!ok) {
		job_claim_free(out);
		return fail(s, "claim");
	}
	return 1;
}

static int64_t st_next_run_at(struct jobstore *base, const char *queue)
{
	struct interim *s = of(base);
	sqlite3_stmt *q = prep(s, "SELECT min(run_at) FROM jobs WHERE state = 'queued' AND queue = ?1 AND run_at > ?2");
	if (!q)
		return 0;
	sqlite3_bind_text(q, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, wall_ms());
	int64_t at = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	done(q);
	return at;
}

static int st_finish(struct jobstore *base, const struct job_attempt_end *e)
{
	struct interim *s = of(base);
	if (begin(s) < 0)
		return -1;
	static const char *const outcomes[] = {"done", "failed", "failed"};
	sqlite3_stmt *a = prep(s, "UPDATE attempts SET ended_at = ?3, outcome = ?4, reason = ?5, message = ?6, log = ?7"
				  " WHERE job = ?1 AND attempt = ?2");
	sqlite3_stmt *j = prep(s, "UPDATE jobs SET state = ?2, result = ?3, run_at = CASE WHEN ?2 = 'queued' THEN ?4 ELSE run_at END,"
				  " finished_at = CASE WHEN ?2 = 'queued' THEN NULL ELSE ?5 END,"
				  " last_error = coalesce(?6, last_error) WHERE id = ?1");
	if (!a || !j) {
		done(a);
		done(j);
		return -1;
	}
	sqlite3_bind_int64(a, 1, e->id);
	sqlite3_bind_int(a, 2, e->attempt);
	sqlite3_bind_int64(a, 3, e->at_ms);
	sqlite3_bind_text(a, 4, outcomes[e->next], -1, SQLITE_STATIC);
	if (e->reason)
		sqlite3_bind_text(a, 5, e->reason, -1, SQLITE_STATIC);
	if (e->message)
		sqlite3_bind_text(a, 6, e->message, -1, SQLITE_STATIC);
	if (e->log_tail)
		sqlite3_bind_text(a, 7, e->log_tail, -1, SQLITE_STATIC);
	const char *state = e->next == JOB_NEXT_DONE ? "done" : e->next == JOB_NEXT_DEAD ? "dead" : "queued";
	sqlite3_bind_int64(j, 1, e->id);
	sqlite3_bind_text(j, 2, state, -1, SQLITE_STATIC);
	if (e->next == JOB_NEXT_DONE)
		sqlite3_bind_blob(j, 3, e->result_len ? e->result : "", (int)e->result_len, SQLITE_STATIC);
	sqlite3_bind_int64(j, 4, e->retry_at_ms);
	sqlite3_bind_int64(j, 5, e->at_ms);
	char *err = e->reason ? xasprintf("attempt %d: %s", e->attempt, e->message ? e->message : e->reason) : NULL;
	if (err)
		sqlite3_bind_text(j, 6, err, -1, SQLITE_TRANSIENT);
	free(err);
	bool ok = sqlite3_step(a) == SQLITE_DONE && sqlite3_step(j) == SQLITE_DONE;
	done(a);
	done(j);
	return ok ? 0 : fail(s, "finish");
}

static int st_recover(struct jobstore *base, void (*fn)(void *ctx, int64_t id, int attempt, const char *queue),
		      void *ctx)
{
	struct interim *s = of(base);
	sqlite3_stmt *q = prep(s, "SELECT id, attempts, queue FROM jobs WHERE state = 'running'");
	if (!q)
		return -1;
	struct row {
		int64_t id;
		int attempt;
		char *queue;
	} *rows = NULL;
	size_t n = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		rows = xrealloc(rows, (n + 1) * sizeof(*rows));
		rows[n++] = (struct row){sqlite3_column_int64(q, 0), sqlite3_column_int(q, 1),
					 xstrdup((const char *)sqlite3_column_text(q, 2))};
	}
	done(q);
	for (size_t i = 0; i < n; i++) {
		fn(ctx, rows[i].id, rows[i].attempt, rows[i].queue);
		free(rows[i].queue);
	}
	free(rows);
	return 0;
}

static int change_state(struct interim *s, int64_t id, const char *from, const char *sql, int64_t now_ms)
{
	sqlite3_stmt *q = prep(s, "SELECT state FROM jobs WHERE id = ?1");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, id);
	int rc = sqlite3_step(q);
	bool found = rc == SQLITE_ROW;
	bool right = found && strcmp((const char *)sqlite3_column_text(q, 0), from) == 0;
	done(q);
	if (!found)
		return 1;
	if (!right)
		return 2;
	if (begin(s) < 0)
		return -1;
	sqlite3_stmt *u = prep(s, sql);
	if (!u)
		return -1;
	sqlite3_bind_int64(u, 1, id);
	sqlite3_bind_int64(u, 2, now_ms);
	rc = sqlite3_step(u);
	done(u);
	return rc == SQLITE_DONE ? 0 : fail(s, "update");
}

static int st_retry(struct jobstore *base, int64_t id, int64_t now_ms)
{
	return change_state(of(base), id, "dead",
			    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?2, finished_at = NULL WHERE id = ?1", now_ms);
}

static int st_cancel(struct jobstore *base, int64_t id, int64_t now_ms)
{
	return change_state(of(base), id, "queued",
			    "UPDATE jobs SET state = 'cancelled', finished_at = ?2, last_error = 'cancelled' WHERE id = ?1", now_ms);
}

static int st_outcome(struct jobstore *base, int64_t id, struct job_outcome *out)
{
	struct interim *s = of(base);
	sqlite3_stmt *q = prep(s, "SELECT state, result, last_error FROM jobs WHERE id = ?1");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, id);
	int rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		done(q);
		return rc == SQLITE_DONE ? 0 : fail(s, "outcome");
	}
	*out = (struct job_outcome){0};
	out->state = (enum job_state)job_state_parse((const char *)sqlite3_column_text(q, 0));
	out->result_len = (size_t)sqlite3_column_bytes(q, 1);
	if (out->result_len) {
		out->result = xmalloc(out->result_len);
		memcpy(out->result, sqlite3_column_blob(q, 1), out->result_len);
	}
	if (sqlite3_column_type(q, 2) != SQLITE_NULL)
		out->last_error = xstrdup((const char *)sqlite3_column_text(q, 2));
	done(q);
	return 1;
}

static int st_queue_of(struct jobstore *base, int64_t id, char *queue, size_t size)
{
	struct interim *s = of(base);
	sqlite3_stmt *q = prep(s, "SELECT queue FROM jobs WHERE id = ?1");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, id);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		snprintf(queue, size, "%s", sqlite3_column_text(q, 0));
	done(q);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : fail(s, "queue_of");
}

static int st_stats(struct jobstore *base, const char *queue, struct job_queue_stats *out)
{
	struct interim *s = of(base);
	*out = (struct job_queue_stats){0};
	sqlite3_stmt *q = prep(s, "SELECT state, count(*) FROM jobs WHERE queue = ?1 GROUP BY state");
	if (!q)
		return -1;
	sqlite3_bind_text(q, 1, queue, -1, SQLITE_STATIC);
	while (sqlite3_step(q) == SQLITE_ROW) {
		int st = job_state_parse((const char *)sqlite3_column_text(q, 0));
		if (st >= 0)
			out->count[st] = sqlite3_column_int64(q, 1);
	}
	done(q);
	q = prep(s, "SELECT min(created_at) FROM jobs WHERE queue = ?1 AND state = 'queued' AND run_at <= ?2");
	if (!q)
		return -1;
	sqlite3_bind_text(q, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, wall_ms());
	if (sqlite3_step(q) == SQLITE_ROW)
		out->oldest_queued_ms = sqlite3_column_int64(q, 0);
	done(q);
	return 0;
}

static long st_prune(struct jobstore *base, int64_t before_ms, long limit)
{
	struct interim *s = of(base);
	if (begin(s) < 0)
		return -1;
	sqlite3_stmt *q = prep(s, "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1 LIMIT ?2)");
	if (!q)
		return -1;
	sqlite3_bind_int64(q, 1, before_ms);
	sqlite3_bind_int64(q, 2, limit);
	int rc = sqlite3_step(q);
	done(q);
	if (rc != SQLITE_DONE)
		return fail(s, "prune");
	long n = sqlite3_changes(s->db);
	sqlite3_exec(s->db, "DELETE FROM attempts WHERE job NOT IN (SELECT id FROM jobs)", NULL, NULL, NULL);
	return n;
}

static uint64_t st_commit(struct jobstore *base)
{
	struct interim *s = of(base);
	if (!s->in_batch)
		return 0;
	s->in_batch = false;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fail(s, "commit");
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	return ++s->batch;
}

static void st_sync(struct jobstore *base, uint64_t batch, job_synced_fn *fn, void *ctx)
{
	struct interim *s = of(base);
	int fd = open(s->wal, O_RDONLY | O_CLOEXEC);
	int err = 0;
	if (fd >= 0) {
		if (fdatasync(fd) < 0)
			err = errno;
		close(fd);
	}
	fn(ctx, batch, err);
}

static const char *st_error(struct jobstore *base)
{
	return of(base)->error;
}

static void st_close(struct jobstore *base)
{
	struct interim *s = of(base);
	st_commit(base);
	for (int i = 0; i < CACHED && s->cached_sql[i]; i++)
		sqlite3_finalize(s->cached[i]);
	sqlite3_close(s->db);
	free(s->wal);
	free(s);
}

static const struct jobstore_ops interim_ops = {
	.enqueue = st_enqueue, .claim = st_claim, .next_run_at = st_next_run_at, .finish = st_finish,
	.recover = st_recover, .retry = st_retry, .cancel = st_cancel, .outcome = st_outcome,
	.queue_of = st_queue_of, .stats = st_stats, .prune = st_prune, .commit = st_commit, .sync = st_sync,
	.error = st_error, .close = st_close,
};

WEAK struct jobstore *jobstore_sqlite_open(const char *state_dir, struct loop *loop, char *why, size_t why_size)
{
	(void)loop;
	struct interim *s = xcalloc(1, sizeof(*s));
	s->base.ops = &interim_ops;
	char *path = xasprintf("%s/jobs.db", state_dir);
	s->wal = xasprintf("%s-wal", path);
	mode_t old = umask(0177);
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "PRAGMA synchronous=OFF; PRAGMA wal_autocheckpoint=1000;", NULL, NULL, NULL);
	umask(old);
	free(path);
	if (rc != SQLITE_OK) {
		snprintf(why, why_size, "%s", s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite3_close(s->db);
		free(s->wal);
		free(s);
		return NULL;
	}
	return &s->base;
}
