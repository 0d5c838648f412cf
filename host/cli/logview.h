/*
 * logview.h - `ward logs`: the last lines of a worker's log, and following
 * it as it grows and rotates. Reads files only; needs no running host.
 * CLI process only.
 */
#ifndef WARD_LOGVIEW_H
#define WARD_LOGVIEW_H

#include <stdbool.h>

int logview_show(const char *log_dir, const char *name, long lines, bool follow);

#endif
