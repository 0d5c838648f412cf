/*
 * jobstore_sqlite.c - the job store (jobstore.h) in SQLite: <state_dir>/jobs.db,
 * WAL, written by the host alone with synchronous=OFF and no automatic
 * checkpoints; the fsyncs and checkpoints are the syncer process's
 * (syncer/syncer.h, started and watched through daemon/syncer_client.c).
 * Host daemon only.
 *
 * The schema, for whoever reads jobs.db (the CLI: `ward jobs`, `ward job`).
 * Open it with SQLITE_OPEN_READONLY (a read-only connection never
 * checkpoints nor deletes the WAL). All times are ms since the epoch.
 *
 *   jobs(id INTEGER PRIMARY KEY, queue TEXT, key TEXT (NULL: none),
 *        state TEXT ('queued', 'running', 'done', 'dead', 'cancelled'),
 *        payload BLOB, result BLOB (done only), attempts INTEGER (of the
 *        current round: `ward job retry` starts a new one at 0), tries
 *        INTEGER (every attempt ever), created_at, run_at (when it may run:
 *        the delay or the retry), finished_at (done, dead, cancelled; else
 *        NULL), last_error TEXT ("REASON: MESSAGE" of the last failed
 *        attempt, or "cancelled"))
 *   attempts(job, attempt (1, 2, ... over the job's whole life: a retried
 *        job's attempts are numbered after the old ones, which stay),
 *        worker, instance, pid, started_at, ended_at (NULL while it runs),
 *        outcome ('done' or 'failed'), reason (NULL when done; else "error",
 *        "signal", "job-timeout", "host-died", ...), message (one line),
 *        log (a failed attempt's last log lines)); PRIMARY KEY(job, attempt)
 *   indexes: jobs_claim(queue, run_at, id) WHERE state = 'queued' (claims,
 *        oldest first; the queue's depth and next run), jobs_key UNIQUE
 *        (queue, key) WHERE key IS NOT NULL AND state IN ('queued', 'running'),
 *        jobs_finished(finished_at) WHERE finished_at IS NOT NULL (pruning).
 * Counting a state with count(*) reads every row of it (a million done jobs
 * take a while): the host keeps the counts per queue in memory (stats).
 *
 * Batches: the first write opens a transaction, commit() COMMITs it (into
 * the WAL, no fsync) and numbers it. sync() waits for the syncer's
 * fdatasync of the WAL: one in flight at a time, and the next one covers
 * every batch committed meanwhile (group commit). A batch that could not be
 * committed (disk full, database deleted or corrupt) is lost whole: every
 * write of it after the failure fails too, and its waiters get the error.
 */
#define _GNU_SOURCE
#include "daemon/jobstore.h"
#include "daemon/dbfile.h"
#include "daemon/log.h"
#include "daemon/syncer_client.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const state_names[JOB_STATE_COUNT] = {
	[JOB_QUEUED] = "queued", [JOB_RUNNING] = "running", [JOB_DONE] = "done",
	[JOB_DEAD] = "dead", [JOB_CANCELLED] = "cancelled",
};

const char *job_state_name(enum job_state s)
{
	return (unsigned)s < JOB_STATE_COUNT ? state_names[s] : "unknown";
}

int job_state_parse(const char *word)
{
	for (int i = 0; word && i < JOB_STATE_COUNT; i++)
		if (strcmp(word, state_names[i]) == 0)
			return i;
	return -1;
}

void job_claim_free(struct job_claim *c)
{
	if (!c)
		return;
	free(c->key);
	free(c->payload);
	c->key = NULL;
	c->payload = NULL;
}

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, queue TEXT NOT NULL, key TEXT,"
	" state TEXT NOT NULL, payload BLOB, result BLOB, attempts INTEGER NOT NULL DEFAULT 0,"
	" tries INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, run_at INTEGER NOT NULL,"
	" finished_at INTEGER, last_error TEXT);"
	"CREATE INDEX IF NOT EXISTS jobs_claim ON jobs(queue, run_at, id) WHERE state = 'queued';"
	"CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs(queue, key)"
	" WHERE key IS NOT NULL AND state IN ('queued', 'running');"
	"CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS attempts(job INTEGER NOT NULL, attempt INTEGER NOT NULL, worker TEXT,"
	" instance INTEGER, pid INTEGER, started_at INTEGER, ended_at INTEGER, outcome TEXT, reason TEXT,"
	" message TEXT, log TEXT, PRIMARY KEY(job, attempt)) WITHOUT ROWID;";

enum stmt_id {
	ST_FIND_KEY, ST_INSERT, ST_PICK, ST_MARK_RUNNING, ST_ATTEMPT_BEGIN, ST_NEXT_RUN, ST_FINISH,
	ST_ATTEMPT_END, ST_RUNNING, ST_RUNNING_QUEUE, ST_STATE_OF, ST_RETRY, ST_CANCEL, ST_OUTCOME, ST_OLDEST,
	ST_PRUNE_PICK, ST_PRUNE_JOB, ST_PRUNE_ATTEMPTS, ST_COUNTS, ST_COUNT
};

/* The per-job writes say OR FAIL: none of them can break a constraint (one
 * row by its id; a state change that keeps the row in or takes it out of
 * jobs_key, never adds a second job to it), and under the default ABORT
 * SQLite keeps a statement journal for each, a copy of every page touched
 * that the transaction already holds. A finish takes no RETURNING either:
 * that builds a temporary b-tree per statement. Both showed as a third of
 * the host's time per job. */
static const char *const sql[ST_COUNT] = {
	[ST_FIND_KEY] = "SELECT id FROM jobs WHERE queue = ?1 AND key = ?2 AND state IN ('queued', 'running')",
	[ST_INSERT] = "INSERT INTO jobs(queue, key, state, payload, created_at, run_at) VALUES(?1, ?2, 'queued', ?3, ?4, ?5)",
	[ST_PICK] = "SELECT id, key, payload, created_at, attempts, tries FROM jobs"
		    " WHERE queue = ?1 AND state = 'queued' AND run_at <= ?2 ORDER BY run_at, id LIMIT 1",
	[ST_MARK_RUNNING] = "UPDATE OR FAIL jobs SET state = 'running', attempts = attempts + 1, tries = tries + 1 WHERE id = ?1",
	[ST_ATTEMPT_BEGIN] = "INSERT INTO attempts(job, attempt, worker, instance, pid, started_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_NEXT_RUN] = "SELECT min(run_at) FROM jobs WHERE queue = ?1 AND state = 'queued' AND run_at > ?2",
	[ST_FINISH] = "UPDATE OR FAIL jobs SET state = ?2, result = ?3, run_at = coalesce(?4, run_at), finished_at = ?5,"
		      " last_error = coalesce(?6, last_error) WHERE id = ?1",
	[ST_ATTEMPT_END] = "UPDATE OR FAIL attempts SET ended_at = ?2, outcome = ?3, reason = ?4, message = ?5, log = ?6"
			   " WHERE job = ?1 AND ended_at IS NULL",
	[ST_RUNNING] = "SELECT id, attempts, queue FROM jobs WHERE state = 'running'",
	[ST_RUNNING_QUEUE] = "SELECT queue FROM jobs WHERE id = ?1 AND state = 'running' AND attempts = ?2",
	[ST_STATE_OF] = "SELECT state, queue FROM jobs WHERE id = ?1",
	[ST_RETRY] = "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?2, finished_at = NULL"
		     " WHERE id = ?1 AND state = 'dead'",
	[ST_CANCEL] = "UPDATE jobs SET state = 'cancelled', finished_at = ?2, last_error = 'cancelled'"
		      " WHERE id = ?1 AND state = 'queued'",
	[ST_OUTCOME] = "SELECT state, result, last_error FROM jobs WHERE id = ?1",
	[ST_OLDEST] = "SELECT created_at FROM jobs WHERE queue = ?1 AND state = 'queued' AND run_at <= ?2"
		      " ORDER BY run_at, id LIMIT 1",
	/* The newest job is never pruned: ids are max(id) + 1, and one must
	 * never name two jobs. */
	[ST_PRUNE_PICK] = "SELECT id, queue, state FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1"
			  " AND id < (SELECT max(id) FROM jobs) ORDER BY finished_at LIMIT ?2",
	[ST_PRUNE_JOB] = "DELETE FROM jobs WHERE id = ?1",
	[ST_PRUNE_ATTEMPTS] = "DELETE FROM attempts WHERE job = ?1",
	[ST_COUNTS] = "SELECT queue, state, count(*) FROM jobs GROUP BY queue, state",
};

struct queue_counts {
	char *queue;
	int64_t count[JOB_STATE_COUNT];
};

struct waiter {
	uint64_t batch;
	job_synced_fn *fn;
	void *ctx;
};

#define LOST_MAX 64 /* batches lost to a failure, remembered for their sync() */
struct lost_batch {
	uint64_t batch;
	int err;
};

struct sqlite_store {
	struct jobstore base;
	struct loop *loop;
	char *path;
	sqlite3 *db;
	dev_t dev; /* the file opened, to notice it was deleted or replaced */
	ino_t ino;
	sqlite3_stmt *st[ST_COUNT];
	bool in_batch;     /* a transaction is open */
	int poisoned;      /* errno that lost the current batch, 0: none */
	uint64_t batch;    /* the last batch numbered by commit */
	uint64_t durable;  /* every batch up to this one is on stable storage */
	struct lost_batch lost[LOST_MAX];
	size_t lost_next;
	uint64_t nlost;    /* batches lost since the store was opened */
	struct waiter *waiters;
	size_t nwaiters, capwaiters;
	struct syncer_client syncer;
	struct queue_counts *queues;
	size_t nqueues;
	bool counts_stale;
	bool failing;      /* a failure was reported; its end is reported once */
	bool sync_failing;
	uint64_t syncs;    /* SYNC answers received */
	char error[768];
};

#define STORE(s) ((struct sqlite_store *)(s))

/* ---- errors ---- */

static bool corrupt_code(int code)
{
	code &= 0xff;
	return code == SQLITE_CORRUPT || code == SQLITE_NOTADB;
}

static int errno_of(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL:
		return ENOSPC;
	case SQLITE_NOMEM:
		return ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return EACCES;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return EBUSY;
	default:
		return EIO;
	}
}

static const char *advice(int code)
{
	switch (code & 0xff) {
	case SQLITE_FULL:
		return "its file system is full: free space there; jobs are refused until then";
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		return "check that the host's user can write the file and its directory";
	default:
		return "check the file and its disk; the call is retried with the next batch";
	}
}

/* The failure of the last SQLite call: the error text, said once in the
 * host's log until the store works again. */
static void failed(struct sqlite_store *s, const char *what)
{
	int code = s->db ? sqlite3_extended_errcode(s->db) : SQLITE_CANTOPEN;
	snprintf(s->error, sizeof(s->error), "unable to %s the jobs database %s: %s; %s", what, s->path,
		 s->db ? sqlite3_errmsg(s->db) : "cannot open", advice(code));
	if (!s->failing) {
		s->failing = true;
		host_log(HOST_ERR, "%s", s->error);
	}
}

static void recovered(struct sqlite_store *s)
{
	if (!s->failing)
		return;
	s->failing = false;
	host_log(HOST_INFO, "the jobs database %s works again", s->path);
}

/* ---- the file ---- */


static void close_db(struct sqlite_store *s)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	if (s->db) {
		/* The WAL goes only after the database is on disk (a checkpoint
		 * at close with synchronous=OFF would not fsync it first). */
		sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
		sqlite3_close(s->db);
	}
	s->db = NULL;
	s->in_batch = false;
}

static int open_db(struct sqlite_store *s)
{
	db_make_private(s->path, true);
	/* One thread: no mutex around each call (a sixth of the CPU of a claim). */
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA wal_autocheckpoint=0;"
				"PRAGMA cache_size=-16384;", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	db_make_companions_private(s->path);
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK)
			return -1;
	struct stat st;
	if (stat(s->path, &st) < 0)
		return -1;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->counts_stale = true;
	return 0;
}

/* The database is corrupt: moved aside with its WAL (what it held can still
 * be read there), and a new one made in its place. Said once per file. */
static int move_aside(struct sqlite_store *s)
{
	char why[256];
	snprintf(why, sizeof(why), "%s", s->db ? sqlite3_errmsg(s->db) : "not a database");
	close_db(s);
	int64_t ms = wall_ms();
	char *aside = xasprintf("%s.corrupt-%lld", s->path, (long long)ms);
	char *wal = xasprintf("%s-wal", s->path), *wal_aside = xasprintf("%s-wal", aside);
	char *shm = xasprintf("%s-shm", s->path);
	int rc = rename(s->path, aside);
	int err = errno;
	if (rc == 0) {
		if (rename(wal, wal_aside) < 0 && errno != ENOENT)
			unlink(wal);
		unlink(shm);
		host_log(HOST_ERR, "the jobs database %s is corrupt (%s): moved aside as %s, and a new, empty one"
				   " made in its place; the jobs it held are lost to the host (read them there with sqlite3)",
			 s->path, why, aside);
	} else {
		host_log(HOST_ERR, "the jobs database %s is corrupt (%s) and cannot be moved aside (%s): move it"
				   " away yourself; jobs are refused until then", s->path, why, strerror(err));
	}
	free(aside);
	free(wal);
	free(wal_aside);
	free(shm);
	if (rc < 0)
		return -1;
	return open_db(s);
}

static void lose_batch(struct sqlite_store *s, int err)
{
	if (!s->poisoned)
		s->poisoned = err ? err : EIO;
	s->counts_stale = true;
}

/* After a failed call: a corrupt file is replaced; a transaction SQLite
 * rolled back by itself (disk full, I/O error) loses the batch. */
static void after_failure(struct sqlite_store *s, const char *what)
{
	int code = s->db ? sqlite3_extended_errcode(s->db) : SQLITE_CANTOPEN;
	failed(s, what);
	if (s->in_batch && (!s->db || sqlite3_get_autocommit(s->db))) {
		s->in_batch = false;
		lose_batch(s, errno_of(code));
	}
	if (s->db && corrupt_code(code)) {
		if (s->in_batch)
			lose_batch(s, EIO);
		if (move_aside(s) < 0)
			close_db(s);
	}
}

/* The file at the path is no longer the one the host has open. */
static bool replaced(const struct sqlite_store *s)
{
	struct stat st;
	return stat(s->path, &st) < 0 || st.st_dev != s->dev || st.st_ino != s->ino;
}

/* SQLite leaves the WAL and index of a database file that was deleted or
 * replaced under it at the path (checked: it does not checkpoint them away
 * at close then), and the file now at the path would be read through them
 * as if it were the old one. The WAL is kept aside (what the host wrote
 * since the last checkpoint), the index removed. */
static void set_aside_old_wal(const struct sqlite_store *s)
{
	char *wal = xasprintf("%s-wal", s->path), *shm = xasprintf("%s-shm", s->path);
	char *aside = xasprintf("%s-wal.replaced-%lld", s->path, (long long)wall_ms());
	if (rename(wal, aside) == 0)
		host_log(HOST_WARN, "the WAL of the jobs database that was at %s is kept as %s", s->path, aside);
	else if (errno != ENOENT)
		host_log(HOST_ERR, "unable to move %s aside: %s; move it away yourself, or the new jobs database"
				   " reads as the old one", wal, strerror(errno));
	if (unlink(shm) < 0 && errno != ENOENT)
		host_log(HOST_ERR, "unable to remove %s: %s", shm, strerror(errno));
	free(wal);
	free(shm);
	free(aside);
}

/* Opens the database again when it was deleted or replaced under the host
 * (writing on into an unlinked file would lose every job). */
static void reopen_if_replaced(struct sqlite_store *s)
{
	if (s->db && !replaced(s))
		return;
	bool was_replaced = s->db != NULL;
	if (was_replaced)
		host_log(HOST_ERR, "the jobs database %s was deleted or replaced: making a new one; the jobs it held"
				   " are lost to the host (restore the file while the host is stopped to get them back)",
			 s->path);
	close_db(s);
	if (was_replaced)
		set_aside_old_wal(s);
	if (open_db(s) < 0) {
		after_failure(s, "open");
		if (s->db)
			close_db(s);
	}
}

/* The start of every write: the batch's transaction. 0, or -1 (the error said). */
static int begin_write(struct sqlite_store *s)
{
	if (s->poisoned) {
		if (!s->error[0])
			snprintf(s->error, sizeof(s->error), "the jobs database %s lost this batch", s->path);
		return -1;
	}
	if (s->in_batch)
		return 0;
	reopen_if_replaced(s);
	if (!s->db)
		return -1;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		after_failure(s, "write to");
		return -1;
	}
	s->in_batch = true;
	return 0;
}

/* ---- counts per queue (in memory: count(*) of a million done jobs is slow) ---- */

static struct queue_counts *counts_of(struct sqlite_store *s, const char *queue, bool add)
{
	for (size_t i = 0; i < s->nqueues; i++)
		if (strcmp(s->queues[i].queue, queue) == 0)
			return &s->queues[i];
	if (!add)
		return NULL;
	s->queues = xrealloc(s->queues, (s->nqueues + 1) * sizeof(*s->queues));
	struct queue_counts *q = &s->queues[s->nqueues++];
	*q = (struct queue_counts){.queue = xstrdup(queue)};
	return q;
}

static void count_move(struct sqlite_store *s, const char *queue, int from, int to)
{
	struct queue_counts *q = counts_of(s, queue, true);
	if (from >= 0)
		q->count[from]--;
	if (to >= 0)
		q->count[to]++;
}

static void free_counts(struct sqlite_store *s)
{
	for (size_t i = 0; i < s->nqueues; i++)
		free(s->queues[i].queue);
	free(s->queues);
	s->queues = NULL;
	s->nqueues = 0;
}

/* Read from the file: at open, and after a batch was lost. */
static int load_counts(struct sqlite_store *s)
{
	if (!s->counts_stale)
		return 0;
	if (!s->db)
		return -1;
	free_counts(s);
	sqlite3_stmt *st = s->st[ST_COUNTS];
	sqlite3_reset(st);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int state = job_state_parse((const char *)sqlite3_column_text(st, 1));
		if (state >= 0)
			counts_of(s, (const char *)sqlite3_column_text(st, 0), true)->count[state] = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		after_failure(s, "read");
		return -1;
	}
	s->counts_stale = false;
	return 0;
}

/* ---- helpers ---- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void *copy_blob(sqlite3_stmt *st, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(st, col);
	*len = (size_t)sqlite3_column_bytes(st, col);
	if (!b || *len == 0) {
		*len = 0;
		return NULL;
	}
	void *p = xmalloc(*len);
	memcpy(p, b, *len);
	return p;
}

static char *copy_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t ? xstrdup((const char *)t) : NULL;
}

/* Steps a statement that returns no row (or one it does not need): 0 or -1. */
static int run(struct sqlite_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	after_failure(s, what);
	return -1;
}

/* ---- operations ---- */

static int64_t st_enqueue(struct jobstore *js, const struct job_new *job, bool *existing)
{
	struct sqlite_store *s = STORE(js);
	*existing = false;
	if (job->len > JOB_DATA_MAX) {
		snprintf(s->error, sizeof(s->error), "payload of %zu bytes is over the 1 MiB limit", job->len);
		return -1;
	}
	if (begin_write(s) < 0)
		return -1;
	if (job->key) {
		sqlite3_stmt *st = s->st[ST_FIND_KEY];
		sqlite3_bind_text(st, 1, job->queue, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, job->key, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			after_failure(s, "read");
			return -1;
		}
		if (id > 0) {
			*existing = true;
			return id;
		}
	}
	sqlite3_stmt *st = s->st[ST_INSERT];
	sqlite3_bind_text(st, 1, job->queue, -1, SQLITE_STATIC);
	bind_text_or_null(st, 2, job->key);
	sqlite3_bind_blob(st, 3, job->payload ? job->payload : "", (int)job->len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, wall_ms());
	sqlite3_bind_int64(st, 5, job->run_at_ms);
	if (run(s, st, "add a job to") < 0)
		return -1;
	count_move(s, job->queue, -1, JOB_QUEUED);
	return sqlite3_last_insert_rowid(s->db);
}

static int st_claim(struct jobstore *js, const char *queue, int64_t now_ms, const struct job_taker *taker,
		    struct job_claim *out)
{
	struct sqlite_store *s = STORE(js);
	*out = (struct job_claim){0};
	if (begin_write(s) < 0)
		return -1;
	sqlite3_stmt *st = s->st[ST_PICK];
	sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc == SQLITE_DONE)
			return 0;
		after_failure(s, "read");
		return -1;
	}
	out->id = sqlite3_column_int64(st, 0);
	out->key = copy_text(st, 1);
	out->payload = copy_blob(st, 2, &out->len);
	out->created_ms = sqlite3_column_int64(st, 3);
	out->attempt = sqlite3_column_int(st, 4) + 1;
	int64_t tries = sqlite3_column_int64(st, 5);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);

	st = s->st[ST_MARK_RUNNING];
	sqlite3_bind_int64(st, 1, out->id);
	if (run(s, st, "write to") < 0)
		goto fail;
	st = s->st[ST_ATTEMPT_BEGIN];
	sqlite3_bind_int64(st, 1, out->id);
	sqlite3_bind_int64(st, 2, tries + 1);
	bind_text_or_null(st, 3, taker->worker);
	sqlite3_bind_int(st, 4, taker->instance);
	sqlite3_bind_int64(st, 5, taker->pid);
	sqlite3_bind_int64(st, 6, taker->at_ms);
	if (run(s, st, "write to") < 0)
		goto fail;
	count_move(s, queue, JOB_QUEUED, JOB_RUNNING);
	return 1;
fail:
	job_claim_free(out);
	return -1;
}

static int64_t st_next_run_at(struct jobstore *js, const char *queue)
{
	struct sqlite_store *s = STORE(js);
	if (!s->db)
		return 0;
	sqlite3_stmt *st = s->st[ST_NEXT_RUN];
	sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wall_ms());
	int rc = sqlite3_step(st);
	int64_t at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		after_failure(s, "read");
	return at;
}

static int st_finish(struct jobstore *js, const struct job_attempt_end *end)
{
	struct sqlite_store *s = STORE(js);
	if (end->result_len > JOB_DATA_MAX) {
		snprintf(s->error, sizeof(s->error), "result of %zu bytes is over the 1 MiB limit", end->result_len);
		return -1;
	}
	if (begin_write(s) < 0)
		return -1;
	static const int next_state[] = {[JOB_NEXT_DONE] = JOB_DONE, [JOB_NEXT_RETRY] = JOB_QUEUED, [JOB_NEXT_DEAD] = JOB_DEAD};
	int state = next_state[end->next];
	sqlite3_stmt *st = s->st[ST_RUNNING_QUEUE];
	sqlite3_bind_int64(st, 1, end->id);
	sqlite3_bind_int(st, 2, end->attempt);
	int rc = sqlite3_step(st);
	char *queue = rc == SQLITE_ROW ? copy_text(st, 0) : NULL;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		after_failure(s, "read");
		return -1;
	}
	if (!queue) {
		snprintf(s->error, sizeof(s->error), "job %lld is not running attempt %d", (long long)end->id, end->attempt);
		return 1;
	}
	char *last_error = NULL;
	if (end->next != JOB_NEXT_DONE)
		last_error = end->message ? xasprintf("%s: %s", end->reason ? end->reason : "error", end->message)
					  : xstrdup(end->reason ? end->reason : "error");
	st = s->st[ST_FINISH];
	sqlite3_bind_int64(st, 1, end->id);
	sqlite3_bind_text(st, 2, state_names[state], -1, SQLITE_STATIC);
	if (end->next == JOB_NEXT_DONE)
		sqlite3_bind_blob(st, 3, end->result ? end->result : "", (int)end->result_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	if (end->next == JOB_NEXT_RETRY)
		sqlite3_bind_int64(st, 4, end->retry_at_ms);
	else
		sqlite3_bind_null(st, 4);
	if (end->next == JOB_NEXT_RETRY)
		sqlite3_bind_null(st, 5);
	else
		sqlite3_bind_int64(st, 5, end->at_ms);
	bind_text_or_null(st, 6, last_error);
	rc = run(s, st, "write to");
	free(last_error);
	if (rc < 0) {
		free(queue);
		return -1;
	}
	st = s->st[ST_ATTEMPT_END];
	sqlite3_bind_int64(st, 1, end->id);
	sqlite3_bind_int64(st, 2, end->at_ms);
	sqlite3_bind_text(st, 3, end->next == JOB_NEXT_DONE ? "done" : "failed", -1, SQLITE_STATIC);
	bind_text_or_null(st, 4, end->next == JOB_NEXT_DONE ? NULL : (end->reason ? end->reason : "error"));
	bind_text_or_null(st, 5, end->message);
	bind_text_or_null(st, 6, end->log_tail);
	rc = run(s, st, "write to");
	if (rc == 0)
		count_move(s, queue, JOB_RUNNING, state);
	free(queue);
	return rc;
}

struct running_job {
	int64_t id;
	int attempt;
	char *queue;
};

static int st_recover(struct jobstore *js, void (*fn)(void *ctx, int64_t id, int attempt, const char *queue), void *ctx)
{
	struct sqlite_store *s = STORE(js);
	if (!s->db || load_counts(s) < 0)
		return -1;
	int64_t running = 0;
	for (size_t i = 0; i < s->nqueues; i++)
		running += s->queues[i].count[JOB_RUNNING];
	if (running == 0)
		return 0; /* no scan of the whole table at every boot */
	struct running_job *jobs = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = s->st[ST_RUNNING];
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			jobs = xrealloc(jobs, cap * sizeof(*jobs));
		}
		jobs[n++] = (struct running_job){sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), copy_text(st, 2)};
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		after_failure(s, "read");
	for (size_t i = 0; i < n; i++) {
		if (rc == SQLITE_DONE)
			fn(ctx, jobs[i].id, jobs[i].attempt, jobs[i].queue);
		free(jobs[i].queue);
	}
	free(jobs);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The state and queue of job id: the state, -2 when there is no such job, -1 on error. */
static int state_of(struct sqlite_store *s, int64_t id, char *queue, size_t size)
{
	if (!s->db)
		return -1;
	sqlite3_stmt *st = s->st[ST_STATE_OF];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int state = -2;
	if (rc == SQLITE_ROW) {
		state = job_state_parse((const char *)sqlite3_column_text(st, 0));
		if (queue)
			snprintf(queue, size, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		after_failure(s, "read");
		return -1;
	}
	return state;
}

/* retry and cancel: from one state to another. */
static int change_state(struct sqlite_store *s, int64_t id, int64_t now_ms, enum stmt_id stmt, int from, int to,
			const char *verb)
{
	if (begin_write(s) < 0)
		return -1;
	char queue[JOB_KEY_MAX + 1];
	int state = state_of(s, id, queue, sizeof(queue));
	if (state == -1)
		return -1;
	if (state == -2) {
		snprintf(s->error, sizeof(s->error), "no job %lld", (long long)id);
		return 1;
	}
	if (state != from) {
		snprintf(s->error, sizeof(s->error), "job %lld is %s: only a %s job can be %s", (long long)id,
			 job_state_name(state), job_state_name(from), verb);
		return 2;
	}
	sqlite3_stmt *st = s->st[stmt];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now_ms);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		snprintf(s->error, sizeof(s->error), "job %lld cannot be queued again: an unfinished job of queue %s has its key",
			 (long long)id, queue);
		return 2;
	}
	if (rc != SQLITE_DONE) {
		after_failure(s, "write to");
		return -1;
	}
	count_move(s, queue, from, to);
	return 0;
}

static int st_retry(struct jobstore *js, int64_t id, int64_t now_ms)
{
	return change_state(STORE(js), id, now_ms, ST_RETRY, JOB_DEAD, JOB_QUEUED, "retried");
}

static int st_cancel(struct jobstore *js, int64_t id, int64_t now_ms)
{
	return change_state(STORE(js), id, now_ms, ST_CANCEL, JOB_QUEUED, JOB_CANCELLED, "cancelled");
}

static int st_outcome(struct jobstore *js, int64_t id, struct job_outcome *out)
{
	struct sqlite_store *s = STORE(js);
	*out = (struct job_outcome){0};
	if (!s->db)
		return -1;
	sqlite3_stmt *st = s->st[ST_OUTCOME];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->state = job_state_parse((const char *)sqlite3_column_text(st, 0));
		out->result = copy_blob(st, 1, &out->result_len);
		out->last_error = copy_text(st, 2);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		after_failure(s, "read");
		return -1;
	}
	return rc == SQLITE_ROW;
}

static int st_queue_of(struct jobstore *js, int64_t id, char *queue, size_t size)
{
	int state = state_of(STORE(js), id, queue, size);
	return state == -1 ? -1 : state != -2;
}

static int st_stats(struct jobstore *js, const char *queue, struct job_queue_stats *out)
{
	struct sqlite_store *s = STORE(js);
	*out = (struct job_queue_stats){0};
	if (load_counts(s) < 0)
		return -1;
	const struct queue_counts *q = counts_of(s, queue, false);
	if (q)
		memcpy(out->count, q->count, sizeof(out->count));
	if (!q || q->count[JOB_QUEUED] == 0)
		return 0;
	sqlite3_stmt *st = s->st[ST_OLDEST];
	sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, wall_ms());
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		out->oldest_queued_ms = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		after_failure(s, "read");
		return -1;
	}
	return 0;
}

struct pruned {
	int64_t id;
	int state;
	char *queue;
};

static long st_prune(struct jobstore *js, int64_t before_ms, long limit)
{
	struct sqlite_store *s = STORE(js);
	if (limit <= 0)
		return 0;
	if (begin_write(s) < 0)
		return -1;
	struct pruned *rows = xcalloc((size_t)limit, sizeof(*rows));
	long n = 0;
	sqlite3_stmt *st = s->st[ST_PRUNE_PICK];
	sqlite3_bind_int64(st, 1, before_ms);
	sqlite3_bind_int64(st, 2, limit);
	int rc;
	while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows[n].id = sqlite3_column_int64(st, 0);
		rows[n].queue = copy_text(st, 1);
		rows[n].state = job_state_parse((const char *)sqlite3_column_text(st, 2));
		n++;
	}
	if (n == limit)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	long done = 0;
	if (rc != SQLITE_DONE)
		after_failure(s, "read");
	for (long i = 0; rc == SQLITE_DONE && i < n; i++) {
		sqlite3_bind_int64(s->st[ST_PRUNE_ATTEMPTS], 1, rows[i].id);
		sqlite3_bind_int64(s->st[ST_PRUNE_JOB], 1, rows[i].id);
		if (run(s, s->st[ST_PRUNE_ATTEMPTS], "prune") < 0 || run(s, s->st[ST_PRUNE_JOB], "prune") < 0)
			break;
		count_move(s, rows[i].queue, rows[i].state, -1);
		done++;
	}
	for (long i = 0; i < n; i++)
		free(rows[i].queue);
	free(rows);
	return rc == SQLITE_DONE && done == n ? done : -1;
}

/* ---- batches and durability ---- */

static void remember_lost(struct sqlite_store *s, uint64_t batch, int err)
{
	s->nlost++;
	s->lost[s->lost_next] = (struct lost_batch){batch, err};
	s->lost_next = (s->lost_next + 1) % LOST_MAX;
}

static int lost_err(const struct sqlite_store *s, uint64_t batch)
{
	for (size_t i = 0; i < LOST_MAX; i++)
		if (s->lost[i].batch == batch)
			return s->lost[i].err;
	return 0;
}

/* Every committed batch is synced, waited for or not (claims and finishes
 * too, and the syncer checkpoints only after a sync): one in flight, the
 * next one covering all batches committed meanwhile. */
static void send_sync(struct sqlite_store *s)
{
	if (!s->syncer.busy && s->batch > s->durable)
		syncer_client_send(&s->syncer, s->batch, SYNCER_SYNC);
}

static bool st_pending(struct jobstore *js)
{
	struct sqlite_store *s = STORE(js);
	return s->in_batch || s->poisoned;
}

static uint64_t st_commit(struct jobstore *js)
{
	struct sqlite_store *s = STORE(js);
	if (!s->in_batch && !s->poisoned)
		return 0;
	uint64_t n = ++s->batch;
	if (s->in_batch && !s->poisoned && replaced(s)) {
		/* Deleted or replaced since the batch began: its writes went into
		 * a file that is gone. Lost, and said so to whoever waits for
		 * them, rather than answered as on disk. */
		snprintf(s->error, sizeof(s->error), "the jobs database %s was deleted or replaced while this batch was"
			 " being written: the batch is lost; send it again", s->path);
		lose_batch(s, ENOENT);
	}
	if (s->in_batch && !s->poisoned) {
		if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
			s->in_batch = false;
			recovered(s);
			send_sync(s);
			return n;
		}
		int code = sqlite3_extended_errcode(s->db);
		after_failure(s, "commit to");
		lose_batch(s, errno_of(code));
	}
	if (s->in_batch && s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_batch = false;
	remember_lost(s, n, s->poisoned);
	s->poisoned = 0;
	return n;
}


static void on_sync_answer(struct syncer_client *c, uint64_t seq, int err)
{
	struct sqlite_store *s = container_of(c, struct sqlite_store, syncer);
	s->syncs++;
	if (err == 0) {
		if (seq > s->durable)
			s->durable = seq;
		if (s->sync_failing)
			host_log(HOST_INFO, "the jobs database %s is synced to disk again", s->path);
		s->sync_failing = false;
	} else if (!s->sync_failing) {
		s->sync_failing = true;
		host_log(HOST_ERR, "unable to sync the jobs database %s to disk: %s; the jobs enqueued meanwhile are"
				   " refused; check the disk", s->path, strerror(err));
	}
	if (err)
		snprintf(s->error, sizeof(s->error), "unable to sync the jobs database %s to disk: %s", s->path, strerror(err));
	/* The waiters answered, those of later batches kept; a callback may add more. */
	size_t n = s->nwaiters;
	struct waiter *w = s->waiters;
	s->waiters = NULL;
	s->nwaiters = s->capwaiters = 0;
	for (size_t i = 0; i < n; i++) {
		if (w[i].batch <= seq) {
			w[i].fn(w[i].ctx, w[i].batch, err);
			continue;
		}
		if (s->nwaiters == s->capwaiters) {
			s->capwaiters = s->capwaiters ? s->capwaiters * 2 : 16;
			s->waiters = xrealloc(s->waiters, s->capwaiters * sizeof(*s->waiters));
		}
		s->waiters[s->nwaiters++] = w[i];
	}
	free(w);
	send_sync(s);
}

static void st_sync(struct jobstore *js, uint64_t batch, job_synced_fn *fn, void *ctx)
{
	struct sqlite_store *s = STORE(js);
	int err = batch ? lost_err(s, batch) : 0;
	if (err || batch <= s->durable) {
		if (err && !s->error[0])
			snprintf(s->error, sizeof(s->error), "the jobs database %s lost the batch: %s", s->path, strerror(err));
		fn(ctx, batch, err);
		return;
	}
	if (s->nwaiters == s->capwaiters) {
		s->capwaiters = s->capwaiters ? s->capwaiters * 2 : 16;
		s->waiters = xrealloc(s->waiters, s->capwaiters * sizeof(*s->waiters));
	}
	s->waiters[s->nwaiters++] = (struct waiter){batch, fn, ctx};
	send_sync(s);
}

static const char *st_error(struct jobstore *js)
{
	return STORE(js)->error;
}

/* At close the loop no longer runs: the last syncs are made here, blocking. */
static int sync_now(struct sqlite_store *s)
{
	char *wal = xasprintf("%s-wal", s->path);
	int fd = open(wal, O_RDONLY | O_CLOEXEC);
	int err = fd < 0 ? (errno == ENOENT ? 0 : errno) : (fdatasync(fd) < 0 ? errno : 0);
	if (fd >= 0)
		close(fd);
	free(wal);
	return err;
}

static void st_close(struct jobstore *js)
{
	struct sqlite_store *s = STORE(js);
	if (!s)
		return;
	st_commit(js);
	syncer_client_stop(&s->syncer);
	if (s->nwaiters) {
		int err = sync_now(s);
		if (err == 0)
			s->durable = s->batch;
		struct waiter *w = s->waiters;
		size_t n = s->nwaiters;
		s->waiters = NULL;
		s->nwaiters = 0;
		for (size_t i = 0; i < n; i++)
			w[i].fn(w[i].ctx, w[i].batch, err);
		free(w);
	}
	close_db(s); /* checkpoints with synchronous=NORMAL: the database is fsynced before the WAL goes */
	free(s->waiters);
	free_counts(s);
	free(s->path);
	free(s);
}

static uint64_t st_lost(struct jobstore *js)
{
	return STORE(js)->nlost;
}

static bool st_working(struct jobstore *js)
{
	struct sqlite_store *s = STORE(js);
	return s->db && !s->failing;
}

static const struct jobstore_ops sqlite_ops = {
	.enqueue = st_enqueue,
	.claim = st_claim,
	.next_run_at = st_next_run_at,
	.finish = st_finish,
	.recover = st_recover,
	.retry = st_retry,
	.cancel = st_cancel,
	.outcome = st_outcome,
	.queue_of = st_queue_of,
	.stats = st_stats,
	.prune = st_prune,
	.pending = st_pending,
	.commit = st_commit,
	.sync = st_sync,
	.lost = st_lost,
	.working = st_working,
	.error = st_error,
	.close = st_close,
};

struct jobstore *jobstore_sqlite_open(const char *state_dir, struct loop *loop, char *why, size_t why_size)
{
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	s->loop = loop;
	s->path = xasprintf("%s/jobs.db", state_dir);
	int rc = open_db(s);
	if (rc < 0 && s->db && corrupt_code(sqlite3_extended_errcode(s->db)))
		rc = move_aside(s);
	if (rc == 0)
		rc = load_counts(s);
	if (rc < 0) {
		snprintf(why, why_size, "unable to open the jobs database %s: %s; %s", s->path,
			 s->db ? sqlite3_errmsg(s->db) : strerror(errno),
			 advice(s->db ? sqlite3_extended_errcode(s->db) : SQLITE_CANTOPEN));
		close_db(s);
		free_counts(s);
		free(s->path);
		free(s);
		return NULL;
	}
	if (syncer_client_start(&s->syncer, loop, s->path, on_sync_answer) < 0)
		host_log(HOST_WARN, "unable to start the syncer process for %s: %s; retried (enqueues wait for it)",
			 s->path, strerror(errno));
	return &s->base;
}

void jobstore_sqlite_counters(struct jobstore *js, struct jobstore_sqlite_counters *out)
{
	struct sqlite_store *s = STORE(js);
	*out = (struct jobstore_sqlite_counters){.syncs = s->syncs, .sync_requests = s->syncer.requests,
						 .syncer_restarts = s->syncer.restarts, .syncer_pid = s->syncer.pid,
						 .batches = s->batch, .durable = s->durable};
}
