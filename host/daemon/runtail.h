/*
 * runtail.h - the last lines a run's process wrote (its stdout/stderr and
 * its ward_log lines), kept in memory while the run lasts so that a run
 * that fails can be recorded with them (`ward history NAME --log`).
 * Host daemon only.
 */
#ifndef WARD_RUNTAIL_H
#define WARD_RUNTAIL_H

#include <stddef.h>
#include <stdint.h>

#define RUN_TAIL_LINES 20      /* SPEC §5: the last 20 lines */
#define RUN_TAIL_LINE_MAX 512  /* bytes of text kept of one line; longer ones are cut */

struct run_tail;

/* Keeps one line (text without its newline, read at at_ms) in *t, which is
 * allocated at the first line: an instance that never writes costs nothing. */
void run_tail_add(struct run_tail **t, int64_t at_ms, const char *level, const char *text, size_t len);
/* The lines kept, oldest first, one "TIME LEVEL TEXT" each, joined by
 * newlines (owned by the caller); NULL when there is none. *t is freed. */
char *run_tail_take(struct run_tail **t);
/* The same, *t kept (a failed job's attempt, its process running on); NULL when empty. */
char *run_tail_copy(const struct run_tail *t);
void run_tail_free(struct run_tail **t);

#endif
