/*
 * probe.h - `ward check`'s look inside a plugin file: it is loaded and its
 * descriptor checked in a throwaway child process, exactly as a worker would
 * load it, so a constructor that crashes or hangs only takes the probe down.
 */
#ifndef WARD_PROBE_H
#define WARD_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "reason.h"

struct probe_result {
	bool ok;
	struct exit_info why; /* when !ok: load-failed or abi-mismatch, with the message */
	char name[64], version[64];
};

/* 0 when the probe ran (see out->ok), -1 when it could not be started. */
int probe_plugin(const char *path, uint64_t timeout_ms, struct probe_result *out);

#endif
