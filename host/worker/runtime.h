/*
 * runtime.h - the worker-side runtime: the ward_ctx handed to plugin code,
 * the ward_* functions of <ward.h>, and the cycle loop. Runs only in a
 * worker process (or `ward test`), never in the host.
 */
#ifndef WARD_RUNTIME_H
#define WARD_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <ward.h>

#include "common/proto.h"
#include <sys/types.h>
#include "common/reason.h"

#define RUNTIME_WATCH_MAX 64 /* descriptors ward_watch_fd takes */

struct ward_ctx {
	const char *name;
	int instance;
	const char *state_dir;
	char *const *conf;   /* "key=value", owned by the caller, lives as long as the process */
	size_t nconf;
	const struct ward_option *options; /* the plugin's declared keys, or NULL */
	int frame_fd;        /* runtime channel to the host; -1 writes log lines to stderr */
	struct slot *slot;   /* progress slot shared with the host; never NULL */
	const int *listen_fds;
	int nlisten;
	const char *last_exit; /* ward_last_exit: NULL for the instance's first process */
	int restarts;          /* ward_restarts */
	bool no_jobs;          /* frame_fd is no channel (the in-process test): no job can come */
	/* ward_watch_fd: what ends an idle wait besides the interval */
	int watch_fds[RUNTIME_WATCH_MAX];
	int nwatch;
	struct ward_job *job;  /* the job .job runs now (worker/jobrun.c), or NULL */
};

/* SIGTERM becomes a stop request; the host-death signal takes the worker's
 * whole process group down. Call once, before plugin code runs. 0 or -1. */
int runtime_install_signals(void);

void runtime_send_ready(ward_ctx *ctx);
/* One frame of that type with that payload to the host (none without a channel). */
void runtime_send_frame(ward_ctx *ctx, uint8_t type, const void *payload, size_t len);
void runtime_send_end(ward_ctx *ctx, enum reason reason, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Runs init, the cycle loop and shutdown of an already loaded plugin, as
 * docs/plugin-guide.md describes, and returns how it ended (the caller exits with
 * out->code). interval_ms is the wait after WARD_IDLE. */
void runtime_run(ward_ctx *ctx, const struct ward_plugin *plugin, uint64_t interval_ms,
		 const struct test_request *test, struct exit_info *out);
/* Under test: one phase's duration (and a note, e.g. the plugin's identity). */
void runtime_report_phase(ward_ctx *ctx, enum phase phase, int64_t ns, const char *note);

/* The signal the kernel sends a worker when its host dies (PR_SET_PDEATHSIG). */
#define HOST_DEATH_SIGNAL (SIGRTMAX - 1) /* SIGRTMAX itself is taken by valgrind */

#endif
