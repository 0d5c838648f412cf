/*
 * reason.h - why a worker process ended: the exit reasons of docs/lifecycle.md, and how
 * a wait status plus what the worker said before dying become one of them.
 */
#ifndef WARD_REASON_H
#define WARD_REASON_H

#include <stdbool.h>
#include <stdint.h>

enum reason {
	REASON_NONE = 0,
	REASON_DONE,
	REASON_STOPPED,
	REASON_EXIT,
	REASON_SIGNAL,
	REASON_LOAD_FAILED,
	REASON_ABI_MISMATCH,
	REASON_INIT_FAILED,
	REASON_INIT_TIMEOUT,
	REASON_ERROR,
	REASON_HUNG,
	REASON_STOP_TIMEOUT,
	REASON_HOST_DIED, /* left open by a host that died; closed by the next one */
	REASON_JOB_TIMEOUT, /* a job ran past job_timeout: the host killed the process */
	REASON_COUNT,
};

struct exit_info {
	enum reason reason;
	int code;      /* exit code, when the process exited */
	int signal;    /* terminating signal, when it was killed */
	bool core;     /* a core was dumped */
	int64_t at_ms; /* wall clock */
	char message[320];
};

const char *reason_name(enum reason r);
enum reason reason_from_name(const char *name);
/* done and stopped are the two endings that are not failures. */
bool reason_is_failure(enum reason r);
/* "SIGSEGV" for 11; "signal 77" for unnamed ones. */
const char *signal_name(int sig, char *buf, unsigned size);
/* The signal "USR1", "SIGUSR1" (any case) or "10" names, or -1. */
int signal_parse(const char *s);
/* One line for humans: "signal SIGSEGV (core dumped)", "exit 3", "load-failed: ..." */
void exit_describe(const struct exit_info *e, char *buf, unsigned size);

#endif
