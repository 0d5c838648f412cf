/*
 * metrics.h - the host's metrics in the Prometheus text exposition format
 * (version 0.0.4), rendered from the host's own memory: the families of
 * docs/metrics.md, for `ward metrics` (control socket) and GET /metrics.
 * Host process; reading the workers' memory and CPU time happens here, when
 * a scrape asks, never on a timer.
 */
#ifndef WARD_METRICS_H
#define WARD_METRICS_H

#include <stdio.h>

struct host;

/* The content type of what metrics_write writes, for an HTTP reply. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes every family, each with its HELP and TYPE, to out. */
void metrics_write(struct host *h, FILE *out);

#endif
