/*
 * history.c - the SQLite side of ward's state. Each write is queued as a
 * statement id plus its values; history_flush binds and runs them all in one
 * transaction. Run ids are handed out by the host (not by SQLite), so a run
 * can be begun, marked ready and ended without waiting for the database.
 * Host daemon only (the CLI reads the database itself: cli/report.c).
 */
#define _GNU_SOURCE
#include "daemon/history.h"
#include "daemon/dbfile.h"
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_QUEUE 200000
#define MAX_VALUES 10
/* The failed runs' last lines waiting in the queue, in bytes: up to 10 KiB
 * a run, they would make a queue the database does not take (locked, disk
 * full) big. Past this, runs are recorded without them. */
#define MAX_QUEUED_LOG_BYTES (16 * 1024 * 1024)

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	/* workers and instances are snapshots rebuilt at every boot: recreating
	 * them keeps their columns current without migrations. */
	"DROP TABLE IF EXISTS workers;"
	"DROP TABLE IF EXISTS instances;"
	"DROP TABLE IF EXISTS job_queues;"
	"CREATE TABLE IF NOT EXISTS runs(id INTEGER PRIMARY KEY, worker TEXT NOT NULL,"
	" instance INTEGER NOT NULL, pid INTEGER, activation TEXT, started_at INTEGER,"
	" ready_at INTEGER, init_ms INTEGER, ended_at INTEGER, reason TEXT, code INTEGER,"
	" signal INTEGER, core INTEGER, message TEXT, cycles INTEGER, last_cycle_ms INTEGER, log TEXT);"
	"CREATE INDEX IF NOT EXISTS runs_by_worker ON runs(worker, id);"
	"CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at INTEGER, worker TEXT,"
	" instance INTEGER, event TEXT, detail TEXT);"
	"CREATE TABLE IF NOT EXISTS workers(name TEXT PRIMARY KEY, plugin TEXT, state TEXT,"
	" instances INTEGER, restarts INTEGER, updated_at INTEGER, listen TEXT, on_demand TEXT);"
	"CREATE TABLE IF NOT EXISTS instances(worker TEXT, instance INTEGER, pid INTEGER,"
	" state TEXT, started_at INTEGER, ready_at INTEGER, cycles INTEGER, init_ms INTEGER,"
	" last_cycle_ms INTEGER, progress_at INTEGER, rss_bytes INTEGER, cpu_usec INTEGER,"
	" status_text TEXT, PRIMARY KEY(worker, instance));"
	"CREATE TABLE IF NOT EXISTS host(key TEXT PRIMARY KEY, value TEXT);"
	/* each job worker's queue as of the last sync (jobs.c), for `ward status` */
	"CREATE TABLE IF NOT EXISTS job_queues(worker TEXT PRIMARY KEY, queue TEXT, queued INTEGER,"
	" running INTEGER, oldest_queued_at INTEGER, updated_at INTEGER);";

enum stmt_id {
	ST_RUN_BEGIN, ST_RUN_READY, ST_RUN_END, ST_EVENT, ST_WORKER, ST_INSTANCE, ST_HOST,
	ST_INSTANCE_USAGE, ST_INSTANCE_STATUS, ST_CLEAR_WORKERS, ST_CLEAR_INSTANCES, ST_FORGET_WORKER, ST_FORGET_INSTANCES, ST_FORGET_INSTANCE, ST_PRUNE_RUNS,
	ST_PRUNE_EVENTS, ST_JOB_QUEUE, ST_COUNT
};

static const char *const sql[ST_COUNT] = {
	[ST_RUN_BEGIN] = "INSERT OR REPLACE INTO runs(id, worker, instance, pid, activation, started_at)"
			 " VALUES(?,?,?,?,?,?)",
	[ST_RUN_READY] = "UPDATE runs SET ready_at=?, init_ms=? WHERE id=?",
	[ST_RUN_END] = "UPDATE runs SET ended_at=?, reason=?, code=?, signal=?, core=?, message=?,"
		       " cycles=?, last_cycle_ms=?, log=? WHERE id=?",
	[ST_EVENT] = "INSERT INTO events(at, worker, instance, event, detail) VALUES(?,?,?,?,?)",
	[ST_WORKER] = "INSERT INTO workers(name, plugin, state, instances, restarts, updated_at, listen, on_demand)"
		      " VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET plugin=excluded.plugin,"
		      " state=excluded.state, instances=excluded.instances,"
		      " restarts=excluded.restarts, updated_at=excluded.updated_at,"
		      " listen=excluded.listen, on_demand=excluded.on_demand",
	[ST_INSTANCE] = "INSERT INTO instances(worker, instance, pid, state, started_at, ready_at, cycles,"
			" init_ms, last_cycle_ms, progress_at) VALUES(?,?,?,?,?,?,?,?,?,?)"
			" ON CONFLICT(worker, instance) DO UPDATE SET pid=excluded.pid, state=excluded.state,"
			" started_at=excluded.started_at, ready_at=excluded.ready_at, cycles=excluded.cycles,"
			" init_ms=excluded.init_ms, last_cycle_ms=excluded.last_cycle_ms,"
			" progress_at=excluded.progress_at",
	[ST_INSTANCE_USAGE] = "UPDATE instances SET rss_bytes=?, cpu_usec=? WHERE worker=? AND instance=?",
	[ST_INSTANCE_STATUS] = "UPDATE instances SET status_text=NULLIF(?, '') WHERE worker=? AND instance=?",
	[ST_HOST] = "INSERT OR REPLACE INTO host(key, value) VALUES(?,?)",
	[ST_CLEAR_WORKERS] = "DELETE FROM workers",
	[ST_CLEAR_INSTANCES] = "DELETE FROM instances",
	[ST_FORGET_WORKER] = "DELETE FROM workers WHERE name = ?",
	[ST_FORGET_INSTANCES] = "DELETE FROM instances WHERE worker = ?",
	[ST_FORGET_INSTANCE] = "DELETE FROM instances WHERE worker = ? AND instance = ?",
	[ST_PRUNE_RUNS] = "DELETE FROM runs WHERE id <= ?",
	[ST_PRUNE_EVENTS] = "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?",
	[ST_JOB_QUEUE] = "INSERT OR REPLACE INTO job_queues(worker, queue, queued, running, oldest_queued_at, updated_at)"
			 " VALUES(?,?,?,?,?,?)",
};

/* V_RUN: a run as the host numbers it, written as run + run_shift (see open_db). */
enum value_type { V_NULL, V_INT, V_TEXT, V_RUN };
struct value {
	enum value_type type;
	int64_t i;
	char *s; /* owned */
};

struct op {
	enum stmt_id stmt;
	int n;
	struct value v[MAX_VALUES];
};

struct history {
	char *path;
	sqlite3 *db;
	dev_t dev;      /* the file opened, to notice it was deleted or replaced */
	ino_t ino;
	bool recreated; /* opened anew after that: the caller records the live state again */
	sqlite3_stmt *stmt[ST_COUNT];
	struct op *queue;
	size_t head, len, cap; /* ring buffer */
	int64_t next_run;      /* the host's own run numbers, from 1 */
	int64_t run_shift;     /* what turns them into ids above any in the file */
	long keep_runs;
	uint64_t runs_since_prune;
	uint64_t dropped;
	size_t queued_log_bytes; /* of the ST_RUN_END ops queued */
	bool failing;
	int64_t busy_since_ns; /* when the database was first found locked, 0 if not */
	int64_t written_ms;   /* wall clock of the last commit (or of the open) */
	char why[256];        /* what the failure being reported said */
	bool dead_runs_closed; /* the previous host's open runs were looked for */
	int64_t dead_seen_ms;  /* the last progress or state that host recorded */
};

/* ---- queueing ---- */

static struct value I(int64_t i) { return (struct value){V_INT, i, NULL}; }
static struct value RUN(int64_t run) { return (struct value){V_RUN, run, NULL}; }
static struct value T(const char *s) { return s ? (struct value){V_TEXT, 0, xstrdup(s)} : (struct value){0}; }
static struct value NUL(void) { return (struct value){0}; }

#define RUN_END_LOG 8 /* the value of ST_RUN_END that holds the run's last lines */

/* Frees the oldest op of the queue, done with (written or dropped). */
static void pop_op(struct history *h)
{
	struct op *op = &h->queue[h->head];
	if (op->stmt == ST_RUN_END && op->v[RUN_END_LOG].s)
		h->queued_log_bytes -= strlen(op->v[RUN_END_LOG].s);
	for (int i = 0; i < op->n; i++)
		free(op->v[i].s);
	h->head = (h->head + 1) % h->cap;
	h->len--;
}

static void enqueue(struct history *h, enum stmt_id stmt, int n, const struct value *v)
{
	if (h->len == MAX_QUEUE) { /* full: the oldest record goes */
		pop_op(h);
		h->dropped++;
	}
	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct op *q = xmalloc(cap * sizeof(*q));
		for (size_t i = 0; i < h->len; i++)
			q[i] = h->queue[(h->head + i) % h->cap];
		free(h->queue);
		h->queue = q;
		h->head = 0;
		h->cap = cap;
	}
	struct op *op = &h->queue[(h->head + h->len) % h->cap];
	op->stmt = stmt;
	op->n = n;
	if (n)
		memcpy(op->v, v, (size_t)n * sizeof(*v));
	h->len++;
}

#define ENQUEUE(h, stmt, ...)                                                   \
	do {                                                                    \
		struct value vals_[] = {__VA_ARGS__};                           \
		enqueue(h, stmt, (int)ARRAY_SIZE(vals_), vals_);                \
	} while (0)

/* ---- the database ---- */

/* A reader (`ward status`, a script running sqlite3) can hold ward.db's lock
 * for a moment, above all while the host creates the schema or switches to
 * WAL: that is contention, not a failure. It is retried like one, quietly,
 * and reported only once it has lasted BUSY_GRACE_NS. */
#define BUSY_GRACE_NS (250 * 1000000LL)

static bool busy_for_a_moment(struct history *h)
{
	int code = h->db ? sqlite3_errcode(h->db) : SQLITE_OK;
	if (code != SQLITE_BUSY && code != SQLITE_LOCKED)
		return false;
	int64_t now = mono_ns();
	if (!h->busy_since_ns)
		h->busy_since_ns = now;
	return now - h->busy_since_ns < BUSY_GRACE_NS;
}

static void report(struct history *h, const char *what)
{
	if (h->failing || busy_for_a_moment(h))
		return;
	h->failing = true;
	snprintf(h->why, sizeof(h->why), "%s", h->db ? sqlite3_errmsg(h->db) : "cannot open");
	host_log(HOST_ERR, "unable to %s history database %s: %s; supervision goes on and writes are retried",
		 what, h->path, h->why);
}

static void close_db(struct history *h)
{
	for (int i = 0; i < ST_COUNT; i++) {
		sqlite3_finalize(h->stmt[i]);
		h->stmt[i] = NULL;
	}
	sqlite3_close(h->db);
	h->db = NULL;
}


/* Column 0 of the first row of sql as an integer (0 when there is no row). */
static int64_t query_int(struct history *h, const char *sql, bool *ok)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*ok = false;
		return 0;
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		*ok = false;
	sqlite3_finalize(st);
	return v;
}

static bool in_memory(const struct history *h)
{
	return strcmp(h->path, ":memory:") == 0;
}

/* Runs are numbered by the host the moment they begin, whether or not the
 * database can be written then (locked at boot, deleted, replaced). Every file
 * opened moves the numbering above the ids it already holds, so a run written
 * late never takes, or with INSERT OR REPLACE overwrites, the id of a run
 * recorded before: history never shows one run's end on another. Runs begun
 * in a file that is gone update nothing in its successor. */
static int shift_runs_above_the_file(struct history *h)
{
	sqlite3_stmt *max;
	if (sqlite3_prepare_v2(h->db, "SELECT coalesce(max(id), 0) FROM runs", -1, &max, NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(max);
	int64_t top = rc == SQLITE_ROW ? sqlite3_column_int64(max, 0) : 0;
	sqlite3_finalize(max);
	if (rc != SQLITE_ROW)
		return -1;
	if (1 + h->run_shift <= top)
		h->run_shift = top;
	return 0;
}

static int open_db(struct history *h)
{
	if (!in_memory(h))
		db_make_private(h->path, true);
	if (sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
		goto fail;
	/* The previous host's latest signs of life, before the schema drops them
	 * (see close_runs_left_open). No such tables: 0. */
	bool ignored;
	if (!h->dead_runs_closed)
		h->dead_seen_ms = query_int(h, "SELECT max(coalesce((SELECT max(progress_at) FROM instances), 0),"
					       " coalesce((SELECT max(updated_at) FROM workers), 0))", &ignored);
	if (sqlite3_exec(h->db, schema, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (!in_memory(h))
		db_make_companions_private(h->path);
	/* Columns added since a database was created; "duplicate column" otherwise. */
	sqlite3_exec(h->db, "ALTER TABLE runs ADD COLUMN last_cycle_ms INTEGER", NULL, NULL, NULL);
	sqlite3_exec(h->db, "ALTER TABLE runs ADD COLUMN log TEXT", NULL, NULL, NULL);
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(h->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->stmt[i], NULL) != SQLITE_OK)
			goto fail;
	if (shift_runs_above_the_file(h) < 0)
		goto fail;
	struct stat st;
	if (stat(h->path, &st) == 0) {
		h->dev = st.st_dev;
		h->ino = st.st_ino;
	}
	return 0;
fail:
	report(h, "open");
	close_db(h);
	return -1;
}

struct history *history_open(const char *path, long keep_runs)
{
	struct history *h = xcalloc(1, sizeof(*h));
	h->path = xstrdup(path);
	h->keep_runs = keep_runs;
	h->next_run = 1;
	h->written_ms = wall_ms();
	/* Opening and a first commit now, at boot, before any worker starts:
	 * that closes the runs a host that died left open (retried with the
	 * next writes if the database cannot be written yet). */
	if (open_db(h) == 0)
		history_flush(h);
	return h;
}

void history_close(struct history *h)
{
	if (!h)
		return;
	history_flush(h);
	while (h->len)
		pop_op(h);
	free(h->queue);
	close_db(h);
	free(h->path);
	free(h);
}

static int run_op(struct history *h, const struct op *op)
{
	sqlite3_stmt *st = h->stmt[op->stmt];
	sqlite3_reset(st);
	for (int i = 0; i < op->n; i++) {
		const struct value *v = &op->v[i];
		if (v->type == V_INT)
			sqlite3_bind_int64(st, i + 1, v->i);
		else if (v->type == V_RUN)
			sqlite3_bind_int64(st, i + 1, v->i + h->run_shift);
		else if (v->type == V_TEXT)
			sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, i + 1);
	}
	int rc = sqlite3_step(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

/* The database file was deleted or replaced under the host: writing on into
 * the old, unlinked file would lose everything. Open the path again. */
bool history_reopen_if_replaced(struct history *h, bool quiet)
{
	struct stat st;
	if (!h->db || in_memory(h) || (stat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino))
		return false;
	if (!quiet)
		host_log(HOST_WARN, "history database %s was deleted or replaced: creating it again", h->path);
	close_db(h);
	h->recreated = true; /* whenever it opens, it is a new file: the caller records the live state */
	return open_db(h) == 0;
}

bool history_dirty(const struct history *h)
{
	return h->len > 0 || !h->dead_runs_closed; /* what history_flush() would write */
}

bool history_take_recreated(struct history *h)
{
	bool r = h->recreated;
	h->recreated = false;
	return r;
}

/* ---- runs a host that died left open ---- */

struct dead_host {
	int64_t pid;     /* 0: unknown */
	int64_t runs;    /* left open */
	int64_t last_ms; /* the last time it recorded anything: the runs' end */
};

static bool exec_with(struct history *h, const char *sql, int64_t at_ms, const char *message)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h->db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, at_ms);
	sqlite3_bind_text(st, 2, message, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE;
}

/* A run with no end when a host starts was left by a host that died: this
 * host holds ward.lock, so nobody else writes here. Its processes died with
 * it (parent-death signal), at a time nobody recorded: the last time that
 * host recorded anything (a run, an event, a worker's progress) is the
 * closest known, and never later than the truth. Runs in the first
 * transaction of this host, before anything it queued. */
static int close_runs_left_open(struct history *h, struct dead_host *dead)
{
	bool ok = true;
	dead->runs = query_int(h, "SELECT count(*) FROM runs WHERE ended_at IS NULL", &ok);
	if (!ok || dead->runs == 0)
		return ok ? 0 : -1;
	dead->pid = query_int(h, "SELECT value FROM host WHERE key = 'pid'", &ok);
	dead->last_ms = query_int(h, "SELECT max(coalesce(max(started_at), 0), coalesce(max(ready_at), 0),"
				     " coalesce(max(ended_at), 0), coalesce((SELECT max(at) FROM events), 0)) FROM runs", &ok);
	if (h->dead_seen_ms > dead->last_ms)
		dead->last_ms = h->dead_seen_ms;
	char pid[32] = "", message[160];
	if (dead->pid > 0)
		snprintf(pid, sizeof(pid), " (pid %lld)", (long long)dead->pid);
	snprintf(message, sizeof(message), "the host%s died during this run; the end shown is its last record", pid);
	if (!ok ||
	    !exec_with(h, "INSERT INTO events(at, worker, instance, event, detail)"
			  " SELECT ?1, worker, instance, 'host-died', ?2 FROM runs WHERE ended_at IS NULL", dead->last_ms, message) ||
	    !exec_with(h, "UPDATE runs SET ended_at = max(?1, started_at), reason = 'host-died', core = 0,"
			  " message = ?2 WHERE ended_at IS NULL", dead->last_ms, message))
		return -1;
	return 0;
}

static void said_dead_host(const struct history *h, const struct dead_host *dead)
{
	if (dead->runs == 0)
		return;
	char pid[32] = "";
	if (dead->pid > 0)
		snprintf(pid, sizeof(pid), " (pid %lld)", (long long)dead->pid);
	host_log(HOST_WARN, "the previous host%s died without stopping: %lld run%s it left open in %s %s ended with reason host-died",
		 pid, (long long)dead->runs, dead->runs == 1 ? "" : "s", h->path, dead->runs == 1 ? "is" : "are");
}

/* ---- flushing ---- */

static int run_queue(struct history *h)
{
	for (size_t i = 0; i < h->len; i++)
		if (run_op(h, &h->queue[(h->head + i) % h->cap]) < 0)
			return -1;
	return 0;
}

int history_flush(struct history *h)
{
	if (h->len == 0 && h->dead_runs_closed)
		return 0;
	history_reopen_if_replaced(h, false);
	if (!h->db && open_db(h) < 0)
		return -1;
	if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		report(h, "write to");
		return -1;
	}
	struct dead_host dead = {0};
	if ((!h->dead_runs_closed && close_runs_left_open(h, &dead) < 0) || run_queue(h) < 0) {
		report(h, "write to");
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		report(h, "commit to");
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	h->written_ms = wall_ms();
	h->busy_since_ns = 0;
	if (!h->dead_runs_closed) {
		h->dead_runs_closed = true;
		said_dead_host(h, &dead);
	}
	while (h->len)
		pop_op(h);
	if (h->failing) {
		host_log(HOST_INFO, "history database %s works again; %llu records were lost meanwhile",
			 h->path, (unsigned long long)h->dropped);
		h->failing = false;
		h->dropped = 0;
	}
	return 0;
}

bool history_stale(const struct history *h, int64_t *since_ms, const char **why)
{
	*since_ms = h->written_ms;
	*why = h->failing ? h->why : "database is locked";
	return h->failing || h->busy_since_ns;
}

bool history_contended(const struct history *h)
{
	return h->busy_since_ns && !h->failing;
}

void history_set_keep(struct history *h, long keep_runs)
{
	h->keep_runs = keep_runs;
}

/* ---- records ---- */

int64_t history_begin(struct history *h, const char *worker, int instance, pid_t pid,
		      int64_t started_ms, const char *activation)
{
	int64_t run = h->next_run++;
	ENQUEUE(h, ST_RUN_BEGIN, RUN(run), T(worker), I(instance), I(pid), T(activation), I(started_ms));
	/* Prune in the same batches, every so often, rather than on a timer. */
	if (++h->runs_since_prune >= 256 || run % 1024 == 0) {
		h->runs_since_prune = 0;
		ENQUEUE(h, ST_PRUNE_RUNS, RUN(run - h->keep_runs));
		ENQUEUE(h, ST_PRUNE_EVENTS, I(h->keep_runs * 10));
	}
	return run;
}

void history_ready(struct history *h, int64_t run, int64_t ready_ms, int64_t init_ms)
{
	ENQUEUE(h, ST_RUN_READY, I(ready_ms), I(init_ms), RUN(run));
}

void history_end(struct history *h, int64_t run, const struct exit_info *e, uint64_t cycles,
		 int64_t last_cycle_ms, const char *log)
{
	bool exited = e->reason != REASON_SIGNAL && e->signal == 0;
	size_t log_bytes = log ? strlen(log) : 0;
	if (h->queued_log_bytes + log_bytes > MAX_QUEUED_LOG_BYTES)
		log = NULL; /* the host's memory first: the run is recorded, without its lines */
	else
		h->queued_log_bytes += log_bytes;
	ENQUEUE(h, ST_RUN_END, I(e->at_ms), T(reason_name(e->reason)), exited ? I(e->code) : NUL(),
		e->signal ? I(e->signal) : NUL(), I(e->core), e->message[0] ? T(e->message) : NUL(),
		I((int64_t)cycles), cycles ? I(last_cycle_ms) : NUL(), T(log), RUN(run));
}

void history_event(struct history *h, const char *worker, int instance, const char *event,
		   const char *detail)
{
	ENQUEUE(h, ST_EVENT, I(wall_ms()), T(worker), instance >= 0 ? I(instance) : NUL(), T(event), T(detail));
}

void history_worker_state(struct history *h, const char *worker, const char *plugin,
			  const char *state, int instances, unsigned restarts, const char *listen,
			  const char *on_demand)
{
	ENQUEUE(h, ST_WORKER, T(worker), T(plugin), T(state), I(instances), I(restarts), I(wall_ms()),
		T(listen), T(on_demand));
}

void history_job_queue(struct history *h, const char *worker, const char *queue, int64_t queued, int64_t running,
		       int64_t oldest_queued_ms)
{
	ENQUEUE(h, ST_JOB_QUEUE, T(worker), T(queue), I(queued), I(running),
		oldest_queued_ms ? I(oldest_queued_ms) : NUL(), I(wall_ms()));
}

static struct value I_OR_NULL(int64_t v, bool present) { return present ? I(v) : NUL(); }

void history_instance_state(struct history *h, const struct instance_row *r)
{
	ENQUEUE(h, ST_INSTANCE, T(r->worker), I(r->instance), I_OR_NULL(r->pid, r->pid > 0), T(r->state),
		I_OR_NULL(r->started_ms, r->started_ms), I_OR_NULL(r->ready_ms, r->ready_ms), I((int64_t)r->cycles),
		I_OR_NULL(r->init_ms, r->init_ms >= 0), I_OR_NULL(r->last_cycle_ms, r->last_cycle_ms >= 0),
		I_OR_NULL(r->progress_ms, r->progress_ms));
}

void history_instance_usage(struct history *h, const char *worker, int instance, uint64_t rss_bytes,
			    uint64_t cpu_usec)
{
	ENQUEUE(h, ST_INSTANCE_USAGE, I((int64_t)rss_bytes), I((int64_t)cpu_usec), T(worker), I(instance));
}

void history_instance_status(struct history *h, const char *worker, int instance, const char *text)
{
	ENQUEUE(h, ST_INSTANCE_STATUS, T(text), T(worker), I(instance));
}

void history_host(struct history *h, const char *key, const char *value)
{
	ENQUEUE(h, ST_HOST, T(key), T(value));
}

void history_forget_worker(struct history *h, const char *worker)
{
	ENQUEUE(h, ST_FORGET_WORKER, T(worker));
	ENQUEUE(h, ST_FORGET_INSTANCES, T(worker));
}

void history_forget_instance(struct history *h, const char *worker, int instance)
{
	ENQUEUE(h, ST_FORGET_INSTANCE, T(worker), I(instance));
}

void history_reset_states(struct history *h)
{
	enqueue(h, ST_CLEAR_WORKERS, 0, NULL);
	enqueue(h, ST_CLEAR_INSTANCES, 0, NULL);
}
