/*
 * metrics.h - the host's metrics in the Prometheus text exposition format
 * (version 0.0.4), rendered from the host's own memory: the families of
 * docs/metrics.md, for `ward metrics` (control socket) and GET /metrics.
 * Host process; reading the workers' memory and CPU time happens here, when
 * a scrape asks (or right after its answer), never on a timer.
 */
#ifndef WARD_METRICS_H
#define WARD_METRICS_H

#include <stdbool.h>
#include <stdio.h>

struct host;

/* The content type of what metrics_write writes, for an HTTP reply. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes every family, each with its HELP and TYPE, to out, with memory and
 * CPU read now (or within the last second: usage.h). */
void metrics_write(struct host *h, FILE *out);
/* The same for GET /metrics, with the readings taken after the scrape
 * before (usage_sample_for_scrape). true: some were older than a second;
 * read them again once the answer is out (http.c does, in slices:
 * usage_sample_slice), for the next scrape. */
bool metrics_write_for_scrape(struct host *h, FILE *out);

#endif
