/*
 * syncer.c - the syncer process (syncer.h): fdatasync()s jobs.db's WAL when
 * the host asks, fsyncs the database and its directory once per file, and
 * checkpoints the WAL when it grows. Runs in its own process, this program
 * executed again by syncer_become(); the host's side is
 * daemon/syncer_client.c.
 */
#define _GNU_SOURCE
#include "syncer/syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNCER_FD 3
#define SYNCER_ARGV0 "ward-syncer"
#define SYNCER_FLAG "--sync-for-host-pid"

struct syncer {
	const char *db_path;
	char wal_path[4096];
	int wal_fd;       /* the WAL last synced, -1: none yet */
	dev_t wal_dev;
	ino_t wal_ino;
	dev_t db_dev;     /* the database whose file and directory were fsynced */
	ino_t db_ino;
	bool can_checkpoint; /* false in a copy of the host (no exec): SQLite's state is the host's */
	sqlite3 *db;      /* for checkpoints, opened when first needed */
};

static bool same_file(const struct stat *st, dev_t dev, ino_t ino)
{
	return st->st_dev == dev && st->st_ino == ino;
}

/* The database and the directory that names it, once per database file
 * (a new one after the host recreated it): the names must survive a power
 * cut as much as what the WAL holds. */
static int sync_db_and_dir(struct syncer *s)
{
	struct stat st;
	if (stat(s->db_path, &st) < 0)
		return errno == ENOENT ? 0 : errno;
	if (same_file(&st, s->db_dev, s->db_ino))
		return 0;
	int fd = open(s->db_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	close(fd);
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", s->db_path);
	int dir = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || fsync(dir) < 0) {
		int err = errno;
		if (dir >= 0)
			close(dir);
		return err;
	}
	close(dir);
	s->db_dev = st.st_dev;
	s->db_ino = st.st_ino;
	return 0;
}

/* The WAL the path names now: the one held, or a new one (the database was
 * recreated). 0, or an errno; ENOENT is no WAL (nothing written yet). */
static int hold_current_wal(struct syncer *s)
{
	struct stat st;
	if (stat(s->wal_path, &st) < 0)
		return errno;
	if (s->wal_fd >= 0 && same_file(&st, s->wal_dev, s->wal_ino))
		return 0;
	int fd = open(s->wal_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	s->wal_fd = fd;
	s->wal_dev = st.st_dev;
	s->wal_ino = st.st_ino;
	return 0;
}

static int do_sync(struct syncer *s)
{
	int err = hold_current_wal(s);
	if (err == ENOENT)
		return sync_db_and_dir(s); /* no WAL: whatever was committed is in the database */
	if (err)
		return err;
	if (fdatasync(s->wal_fd) < 0)
		return errno;
	return sync_db_and_dir(s);
}

static void close_db(struct syncer *s)
{
	sqlite3_close(s->db);
	s->db = NULL;
}

/* A PASSIVE checkpoint: never waits for the host's writes. The connection
 * is reopened when the database file changed under it. */
static int do_checkpoint(struct syncer *s)
{
	if (!s->can_checkpoint)
		return 0;
	struct stat st;
	if (s->db && (stat(s->db_path, &st) < 0 || !same_file(&st, s->db_dev, s->db_ino)))
		close_db(s);
	if (!s->db) {
		if (sqlite3_open_v2(s->db_path, &s->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
			close_db(s);
			return EIO;
		}
		/* This connection never checkpoints on close: it may be the last
		 * one, and the host decides when the WAL goes. */
		sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	}
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc == SQLITE_OK || rc == SQLITE_BUSY)
		return 0;
	close_db(s); /* a corrupt or replaced file: a new connection next time */
	return EIO;
}

static bool wal_is_big(const struct syncer *s)
{
	struct stat st;
	return s->wal_fd >= 0 && fstat(s->wal_fd, &st) == 0 && st.st_size > SYNCER_CHECKPOINT_BYTES;
}

static noreturn void serve(const char *db_path, bool can_checkpoint)
{
	struct syncer s = {.db_path = db_path, .wal_fd = -1, .can_checkpoint = can_checkpoint};
	snprintf(s.wal_path, sizeof(s.wal_path), "%s-wal", db_path);
	for (;;) {
		struct syncer_request rq;
		ssize_t got = recv(SYNCER_FD, &rq, sizeof(rq), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(rq))
			_exit(0); /* the host closed its end (0), or is gone */
		struct syncer_reply r = {.seq = rq.seq};
		r.err = rq.op == SYNCER_CHECKPOINT ? do_checkpoint(&s) : do_sync(&s);
		if (send(SYNCER_FD, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
			_exit(0);
		if (rq.op == SYNCER_SYNC && r.err == 0 && wal_is_big(&s))
			do_checkpoint(&s); /* after the answer: the waiters need not wait for it */
	}
}

/* Runs before main() in every program that links the host: only a syncer
 * started by syncer_become() matches. */
__attribute__((constructor)) static void serve_if_syncer(int argc, char **argv, char **envp)
{
	int type = 0;
	socklen_t tlen = sizeof(type);
	if (argc != 4 || strcmp(argv[0], SYNCER_ARGV0) != 0 || strcmp(argv[1], SYNCER_FLAG) != 0 || !envp ||
	    envp[0] || getsockopt(SYNCER_FD, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET)
		return;
	if (getppid() != (pid_t)atoi(argv[2]))
		_exit(1); /* the host died before the exec */
	serve(argv[3], true);
}

noreturn void syncer_become(int sock, pid_t host_pid, const char *db_path)
{
	/* Only the host ends it (by closing the socket, or its death): not a
	 * Ctrl-C sent to the terminal's process group. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigprocmask(SIG_BLOCK, &all, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != host_pid)
		_exit(1);
	int moved = sock == SYNCER_FD ? fcntl(sock, F_SETFD, 0) : dup2(sock, SYNCER_FD);
	if (moved < 0 || close_range(SYNCER_FD + 1, ~0U, 0) < 0)
		_exit(1);
	prctl(PR_SET_NAME, "ward-syncer");
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", (int)host_pid);
	char *argv[] = {SYNCER_ARGV0, SYNCER_FLAG, pid, (char *)db_path, NULL};
	char *envp[] = {NULL};
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe >= 0)
		execveat(exe, "", argv, envp, AT_EMPTY_PATH);
	/* No /proc, or no exec allowed: sync from this copy of the host. Its
	 * SQLite state is the host's, so it must not open the database:
	 * no checkpoints (the host's store checkpoints at close). */
	serve(db_path, false);
}
