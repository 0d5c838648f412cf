/*
 * http.h - the read-only HTTP endpoint of `[ward] http` (docs/operator-guide.md):
 * /metrics, /healthz, /readyz and /status, served by libmicrohttpd from
 * the host's own event loop (no thread). Runs in the host process.
 */
#ifndef WARD_HTTP_H
#define WARD_HTTP_H

struct host;

/* Listens on h->cfg.http, when set, and serves it from h->loop. 0 (also
 * when there is no http key), or -1 when the address cannot be listened
 * on (said, naming the address): the host refuses to start then. */
int http_open(struct host *h);
/* Closes every connection and the listening socket. */
void http_close(struct host *h);

#endif
