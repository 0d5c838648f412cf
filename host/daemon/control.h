/*
 * control.h - the host's control socket, <state_dir>/ward.sock: how `ward
 * status|start|stop|restart|reload` talk to a running host. Only the host's
 * own user and root may connect. The protocol is one request line and one
 * reply, then the host closes the connection:
 *
 *     request:  VERB [ARG...]\n           at most 4096 bytes and 255 ARGs, words split by spaces
 *     reply:    ok\n  or  error\n          then zero or more message lines
 *
 * Verbs: ping, sync (history is brought up to date before the reply, so a
 * client reading it sees live state), metrics (the reply's lines are the
 * metrics in the Prometheus text format), start NAME..., stop NAME...,
 * restart NAME..., reload. A malformed, oversized or half-sent request gets
 * an error reply or a closed connection and never disturbs the host.
 */
#ifndef WARD_CONTROL_H
#define WARD_CONTROL_H

#include <stdint.h>
#include <stdio.h>

#include "daemon/worker.h"

#define CONTROL_MAX_REQUEST 4096

int control_open(struct host *h);
void control_close(struct host *h);
/* `sync`: ward.db brought up to date with the host's memory (live states,
 * memory and CPU), as `ward status` and GET /status (http.c) read it. 0, or
 * -1 when the history cannot be written: since when, and why. */
int control_sync(struct host *h, int64_t *since, const char **why);

#endif
