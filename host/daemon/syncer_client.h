/*
 * syncer_client.h - the host's side of the syncer process (syncer/syncer.h):
 * starts it, watches its socket in the loop, sends one request at a time and
 * hands each answer to its owner (the sqlite job store). A syncer that dies
 * is started again and the request it held is sent again. Host daemon only.
 */
#ifndef WARD_SYNCER_CLIENT_H
#define WARD_SYNCER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"
#include "syncer/syncer.h"

struct syncer_client;
/* An answer: seq as sent, err 0 or an errno. */
typedef void syncer_answer_fn(struct syncer_client *c, uint64_t seq, int err);

struct syncer_client {
	struct loop *loop;
	char *db_path;
	struct watch watch; /* the socket; fd -1 while no syncer runs */
	struct timer restart; /* a syncer that keeps dying is started again after a pause */
	pid_t pid;
	int pidfd; /* -1: none */
	int64_t started_ns;
	bool busy;               /* a request is in flight */
	struct syncer_request inflight;
	syncer_answer_fn *on_answer;
	uint64_t restarts;       /* how many times it had to be started again */
	uint64_t requests;       /* sent, resends included (for tests) */
};

/* Starts the syncer for db_path. 0, or -1 with errno (the client is still
 * usable: requests start it again). */
int syncer_client_start(struct syncer_client *c, struct loop *loop, const char *db_path, syncer_answer_fn *on_answer);
/* Sends a request; only one at a time (busy must be false). */
void syncer_client_send(struct syncer_client *c, uint64_t seq, enum syncer_op op);
/* Ends the syncer: closes its socket and reaps it. */
void syncer_client_stop(struct syncer_client *c);

#endif
