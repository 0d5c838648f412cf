/*
 * report.h - what `ward status` and `ward history` print, read from the
 * state database the host keeps (read-only; never blocks the host).
 * CLI process only.
 */
#ifndef WARD_REPORT_H
#define WARD_REPORT_H

#include <stdbool.h>

struct report_opts {
	const char *state_dir;
	const char *config_dir;
	const char *log_dir; /* status NAME ends with the worker's last log lines */
	const char *name; /* one worker, or NULL for all */
	bool json;
	long limit;       /* history rows */
	bool log;         /* history: with the last lines of each failed run */
};

int report_status(const struct report_opts *o);
int report_history(const struct report_opts *o);

typedef struct sqlite3 sqlite3;
/* One of the host's databases at path, read-only (waiting up to 500 ms for
 * the host's lock); NULL when it cannot be read, said on stderr: "ward: no
 * WHAT at PATH: MISSING" when it does not exist. */
sqlite3 *report_open_readonly(const char *path, const char *what, const char *missing);

#endif
