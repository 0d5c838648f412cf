/*
 * syncer.h - the syncer process: the helper that makes jobs.db durable for
 * the host, so that the host's loop never waits on an fsync. The host's
 * store (daemon/jobstore_sqlite.c, through daemon/syncer_client.c) commits
 * with synchronous=OFF and asks the syncer to fdatasync() the WAL; the
 * syncer also checkpoints the WAL into the database when it grows. Declares
 * how a process becomes the syncer and the protocol on its socket.
 *
 * The protocol: a SOCK_SEQPACKET pair. The host sends struct syncer_request
 * datagrams, one at a time (it waits for each answer: one sync in flight);
 * the syncer answers each with one struct syncer_reply carrying the same
 * seq. The host numbers SYNC requests by the last batch they cover, so a
 * reply {seq, 0} means every batch up to seq is on stable storage.
 *   SYNC        fdatasync(<db>-wal) (the file of the inode: whoever wrote
 *               it), the database file and its directory once per file
 *               first seen; err = errno of a failure, 0 when durable. After
 *               answering, a WAL past SYNCER_CHECKPOINT_BYTES is
 *               checkpointed (PASSIVE; the syncer's own connection uses
 *               synchronous=NORMAL, so the database is fsynced before the
 *               WAL may be reset and nothing checkpointed is lost).
 *   CHECKPOINT  a PASSIVE checkpoint now; err = 0 or an errno (EIO).
 * The syncer ends when the host closes its end or dies (parent-death signal).
 */
#ifndef WARD_SYNCER_H
#define WARD_SYNCER_H

#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#define SYNCER_CHECKPOINT_BYTES (4 * 1024 * 1024)

enum syncer_op { SYNCER_SYNC = 1, SYNCER_CHECKPOINT = 2 };

struct syncer_request {
	uint64_t seq;
	uint32_t op; /* enum syncer_op */
	uint32_t unused;
};

struct syncer_reply {
	uint64_t seq;
	int32_t err;
	uint32_t unused;
};

/* In the host's fresh fork, with sock the syncer's end of the socket and
 * db_path the database: becomes the syncer. It executes this program again
 * (nothing of the host's memory, SQLite's state included, stays in it; when
 * exec is impossible it syncs from the copy, without checkpoints). */
noreturn void syncer_become(int sock, pid_t host_pid, const char *db_path);

#endif
