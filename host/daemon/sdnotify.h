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
/* The $NOTIFY_SOCKET value for a command worker ("@..." abstract
 * address), the socket opened on first use; NULL when it cannot be (said). */
const char *sdnotify_address(struct host *h);
/* Messages ignored since boot because their sender belongs to no worker. */
uint64_t sdnotify_foreign(const struct host *h);
void sdnotify_close(struct host *h);

#endif
