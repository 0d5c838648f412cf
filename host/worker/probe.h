/*
 * probe.h - the probe process's side of a probe of a plugin file, and the
 * verdict it sends the host (daemon/probe.h). Runs after fork, in the probe.
 */
#ifndef WARD_WORKER_PROBE_H
#define WARD_WORKER_PROBE_H

#include <stdbool.h>
#include <stdnoreturn.h>

#include "common/reason.h"

/* Sent as is on the probe's pipe, followed by the options (common/optwire.h). */
struct probe_result {
	bool ok;
	struct exit_info why; /* when !ok: load-failed or abi-mismatch, with the message */
	char name[64], version[64], description[256];
	bool has_job, has_cycle; /* the descriptor's .job and .cycle are set */
};

/* Once the probe process is prepared like a worker (child.c): loads the
 * plugin and writes the verdict on fd; or says why it could not even get
 * that far. */
noreturn void probe_report(int fd, const char *plugin);
void probe_send_failure(int fd, const char *message);

#endif
