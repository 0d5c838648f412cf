/*
 * observer.h - how `ward test` watches the host it runs (host process).
 * The host calls these at the few points a test report needs; in production
 * struct host's observer is NULL and none of this runs. Implemented by
 * cli/test_run.c, so daemon/ never includes the tester.
 */
#ifndef WARD_OBSERVER_H
#define WARD_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* After --timeout the plugin gets SIGTERM, and SIGKILL this long after if it
 * is still there (or after stop_timeout, when shorter): a run never takes
 * much longer than --timeout. */
#define TEST_STOP_GRACE_MS 2000

struct config;
struct frame_hdr;
struct frame_job_end;
struct instance;
struct test_request;
struct worker;

struct host_observer {
	void *ctx;                          /* handed back to every call */
	const struct test_request *request; /* for the worker's process (spawn.c) */
	int64_t timeout_ns;                 /* the whole run ends after this long */
	/* The configuration's errors and warnings, instead of printing them. */
	void (*on_config)(void *ctx, const struct config *cfg);
	/* A phase or cycle frame from the worker (channel.c). */
	void (*on_frame)(void *ctx, const struct frame_hdr *hdr, const char *payload);
	/* Before the loop sleeps, for each instance running and not asked to
	 * stop: `ward test --job` hands it the next job. May be NULL. */
	void (*on_running)(void *ctx, struct instance *in);
	/* The job handed to it ended (channel.h's on_job_end). May be NULL. */
	void (*on_job_end)(void *ctx, struct instance *in, const struct frame_job_end *end, const char *message,
			   const void *result, size_t result_len);
	/* True once the run is to stop the worker now (--cycles N were run). */
	bool (*take_stop)(void *ctx);
	void (*on_timeout)(void *ctx);
	/* A process did not stop on SIGTERM and is about to be killed: the
	 * observer finds out why while /proc still shows it (worker.c). */
	void (*on_stop_overdue)(void *ctx, const struct instance *in);
	/* The host is done: the worker as it ended. */
	void (*on_settled)(void *ctx, const struct worker *w);
};

#endif
