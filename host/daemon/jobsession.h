/*
 * jobsession.h - the producer protocol on ward.sock (docs/jobs.md), in the
 * host daemon. control.c accepts the connection; a first request line
 * `jobs 1` hands it over here, and it stays open as a job session:
 *
 *     enqueue QUEUE LEN DELAY_MS KEY\n<LEN bytes>  ->  ok ID new[ WORDS]\n | ok ID existing\n | error MESSAGE\n
 *     wait ID TIMEOUT_MS\n                          ->  done ID LEN\n<LEN bytes> | failed ID STATE MESSAGE\n
 *                                                       | unfinished ID\n | error MESSAGE\n
 *
 * Requests may be pipelined; replies come in request order. An enqueue is
 * answered only once its job is durable (jobs.c, group commit). A payload
 * over 1 MiB or a malformed request gets `error ...` and the connection is
 * closed after the replies before it. A client that goes away leaves every
 * job it queued stored or not, never half.
 */
#ifndef WARD_JOBSESSION_H
#define WARD_JOBSESSION_H

#include <stddef.h>

#include "daemon/host.h"

#define JOBS_PROTOCOL_LINE "jobs 1"

/* Takes fd (non-blocking, its peer allowed to queue jobs) and the bytes
 * read after the `jobs 1` line; answers `ok jobs 1`. */
void jobsession_start(struct host *h, int fd, const char *rest, size_t len);
/* Refuses a peer not allowed to queue jobs: one error line, then closes fd. */
void jobsession_refuse(int fd, const char *why);
/* Every session ends (the host stops). */
void jobsession_close_all(struct host *h);

#endif
