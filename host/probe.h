/*
 * probe.h - `ward check`'s look inside a plugin file: it is loaded and its
 * descriptor checked in a throwaway child process, exactly as a worker would
 * load it, so a constructor that crashes or hangs only takes the probe down.
 */
#ifndef WARD_PROBE_H
#define WARD_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "reason.h"

struct probe_result {
	bool ok;
	struct exit_info why; /* when !ok: load-failed or abi-mismatch, with the message */
	char name[64], version[64], description[256];
};

struct option_table;
/* 0 when the probe ran (see out->ok), -1 when it could not be started.
 * options, when not NULL, receives the plugin's declared options (free with
 * options_free) whenever out->ok. */
int probe_plugin(const char *path, uint64_t timeout_ms, struct probe_result *out, struct option_table *options);
/* `ward test --describe`: name, version, ABI and options, printed to out. 0 or -1. */
int probe_describe(const char *path, uint64_t timeout_ms, FILE *out);

#endif
