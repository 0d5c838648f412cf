/*
 * reason.c - names of exit reasons and signals, and the one-line description
 * of a process end used in logs, status and history. Shared by every
 * process: the worker says its reason, the host records it, the CLI prints it.
 */
#define _GNU_SOURCE
#include "common/reason.h"
#include "common/units.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const names[REASON_COUNT] = {
	[REASON_NONE] = "none",
	[REASON_DONE] = "done",
	[REASON_STOPPED] = "stopped",
	[REASON_EXIT] = "exit",
	[REASON_SIGNAL] = "signal",
	[REASON_LOAD_FAILED] = "load-failed",
	[REASON_ABI_MISMATCH] = "abi-mismatch",
	[REASON_INIT_FAILED] = "init-failed",
	[REASON_INIT_TIMEOUT] = "init-timeout",
	[REASON_ERROR] = "error",
	[REASON_HUNG] = "hung",
	[REASON_STOP_TIMEOUT] = "stop-timeout",
	[REASON_HOST_DIED] = "host-died",
	[REASON_JOB_TIMEOUT] = "job-timeout",
};

const char *reason_name(enum reason r)
{
	return (unsigned)r < REASON_COUNT ? names[r] : "unknown";
}

enum reason reason_from_name(const char *name)
{
	for (int r = 0; r < REASON_COUNT; r++)
		if (strcmp(names[r], name) == 0)
			return (enum reason)r;
	return REASON_NONE;
}

bool reason_is_failure(enum reason r)
{
	return r != REASON_DONE && r != REASON_STOPPED && r != REASON_NONE;
}

const char *signal_name(int sig, char *buf, unsigned size)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, size, "SIG%s", abbrev);
	else
		snprintf(buf, size, "signal %d", sig);
	return buf;
}

int signal_parse(const char *s)
{
	long n;
	if (parse_long(s, &n) == 0)
		return n >= 1 && n < NSIG ? (int)n : -1;
	const char *name = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (int sig = 1; sig < NSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev && strcasecmp(abbrev, name) == 0)
			return sig;
	}
	return -1;
}

void exit_describe(const struct exit_info *e, char *buf, unsigned size)
{
	char sig[32];
	int n;
	switch (e->reason) {
	case REASON_EXIT:
		n = snprintf(buf, size, "exit %d", e->code);
		break;
	case REASON_SIGNAL:
		n = snprintf(buf, size, "signal %s%s", signal_name(e->signal, sig, sizeof(sig)),
			     e->core ? " (core dumped)" : "");
		break;
	default:
		n = snprintf(buf, size, "%s", reason_name(e->reason));
		break;
	}
	if (e->message[0] && n >= 0 && (unsigned)n < size)
		snprintf(buf + n, size - (unsigned)n, ": %s", e->message);
}
