/*
 * sdnotify.h - the host's end of systemd's sd_notify protocol for command
 * workers ($NOTIFY_SOCKET: READY=1, WATCHDOG=1, STATUS=, STOPPING=1,
 * RELOADING=1). Not to be confused with notify.c, where the host tells its
 * own supervisor (systemd) that it is ready. Host daemon only.
 */
#ifndef WARD_SDNOTIFY_H
#define WARD_SDNOTIFY_H

#include <stdint.h>

#include "daemon/worker.h"

struct sdnotify_handler {
	/* A command worker with ready = notify sent READY=1. */
	void (*on_ready)(void *ctx, struct instance *in);
	void *ctx;
};

void sdnotify_init(struct host *h, struct sdnotify_handler handler);
/* Opens the socket if it is not yet (at a command worker's first start),
 * and sets h->notify_socket to its address ("@...", the abstract form of
 * $NOTIFY_SOCKET); it stays NULL when the socket cannot be opened (said). */
void sdnotify_open(struct host *h);
/* Messages ignored since boot because their sender belongs to no worker. */
uint64_t sdnotify_foreign(const struct host *h);
void sdnotify_close(struct host *h);

#endif
