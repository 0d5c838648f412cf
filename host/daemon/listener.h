/*
 * listener.h - the sockets the host holds for a worker (`listen`): created,
 * bound and listening at boot before any worker starts, handed to every
 * process of the worker, and kept across its restarts so no connection is
 * lost. While the worker has no process the host watches them: the first
 * connection starts it (socket activation). Once the worker has failed, the
 * host accepts and closes every connection at once, so clients get an error
 * instead of a timeout. The host never reads from a client. A socket that
 * cannot be bound (its port taken, its directory not creatable) is retried
 * with a backoff; the worker does not start until every one is bound.
 *
 * listener.c sits above worker.c and below dependency.c: a connection asks
 * for the worker's start through h->connection_starts (daemon/host.h),
 * which run.c sets at boot to dependency_request_start().
 */
#ifndef WARD_LISTENER_H
#define WARD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/loop.h"

struct worker;

struct listener {
	struct watch watch; /* fd: the listening socket, blocking (the worker's accept blocks) */
	struct worker *worker;
	const char *address; /* as configured; owned by the config */
	bool watched;        /* registered with the loop */
	char error[256];     /* why the last bind failed, while watch.fd is -1 */
};

enum listen_mode {
	LISTEN_HANDED,   /* a process of the worker owns them: the host stays out */
	LISTEN_ACTIVATE, /* no process: the first connection starts the worker */
	LISTEN_DRAIN,    /* the worker failed: accept and close at once */
};

/* Creates and binds every socket of w. 0, or -1 after logging which
 * addresses failed; those are retried from then on until they are bound. */
int listener_open_all(struct worker *w);
/* Closes them (a unix socket's file is removed): before worker_free(). */
void listener_close_all(struct worker *w);
/* A socket of w is not bound (yet): the worker cannot start. */
bool listener_unbound(const struct worker *w);
/* `ward start`: tries the unbound sockets now. 0 once all are bound, else
 * -1 with the reason written to why. */
int listener_bind_now(struct worker *w, char *why, size_t size);
/* Applies the mode the worker's state calls for; cheap when nothing changes. */
void listener_update(struct worker *w);

#endif
