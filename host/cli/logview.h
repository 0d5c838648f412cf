/*
 * logview.h - `ward logs`: the last lines of a worker's log (or of several,
 * merged in time order), and following them as they grow and rotate. Reads files only; needs no running host.
 * CLI process only.
 */
#ifndef WARD_LOGVIEW_H
#define WARD_LOGVIEW_H

#include <stdbool.h>

#include <stddef.h>

int logview_show(const char *log_dir, const char *name, long lines, bool follow);
/* ONE_LOG: as logview_show. MERGED_NAMED: the workers named (a log that
 * cannot be opened is said, the others shown, and the exit status is 1).
 * MERGED_ALL: every worker (one that never ran, and has no log, is left out). */
enum merge { ONE_LOG, MERGED_NAMED, MERGED_ALL };

/* Several workers' logs merged in time order: the last `lines` lines in all,
 * then (follow) what each appends, line by line. 0, or 1. */
int logview_show_merged(const char *log_dir, const char *const *names, size_t n, long lines, bool follow,
			enum merge which);

#endif
