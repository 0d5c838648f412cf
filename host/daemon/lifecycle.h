/*
 * lifecycle.h - the vocabulary and the pure decision table of the worker
 * state machine (docs/lifecycle.md): instance states, the events that move
 * them, why a run was started, and which action each (state, event) pair
 * calls for. No I/O, no clock: daemon/worker.c performs the actions. Used by
 * the host daemon, and by the CLI for the names it reads back from history.
 * The names are contract (JSON, history, `ward status`): never rename one.
 */
#ifndef WARD_LIFECYCLE_H
#define WARD_LIFECYCLE_H

#include <stdbool.h>

enum istate { IS_STOPPED, IS_STARTING, IS_RUNNING, IS_STOPPING, IS_BACKOFF, IS_FAILED, IS_DONE, IS_COUNT };

const char *istate_name(enum istate s); /* "unknown" for a value out of range */
/* false: no state has that name (name may be NULL). */
bool istate_parse(const char *name, enum istate *out);

/* What asked for a run to start, as history's runs.activation says it.
 * ACTIVATION_NONE (0, false as a condition): no start asked for. */
enum activation {
	ACTIVATION_NONE, ACTIVATION_BOOT, ACTIVATION_COMMAND, ACTIVATION_RESTART, ACTIVATION_DEPENDENCY,
	ACTIVATION_CONNECTION, ACTIVATION_RELOAD, ACTIVATION_COUNT
};
const char *activation_name(enum activation a);

enum event { EV_START, EV_READY, EV_EXIT, EV_STOP, EV_TIMER, EV_HUNG, EV_COUNT };

/* What an event does in a state. Each action leads to the states its comment names. */
enum action {
	ACT_NONE,              /* the event changes nothing in that state */
	ACT_START_FRESH,       /* a fresh streak, then ACT_SPAWN */
	ACT_SPAWN,             /* ask for a process: starting (backoff if none can be made) */
	ACT_BECOME_READY,      /* running */
	ACT_PROCESS_ENDED,     /* the restart policy: stopped, backoff, starting, failed or done */
	ACT_TERMINATE,         /* SIGTERM, stopping */
	ACT_INIT_TIMED_OUT,    /* SIGKILL; stays starting until the process is gone */
	ACT_STOP_TIMED_OUT,    /* SIGKILL; stays stopping until the process is gone */
	ACT_HUNG,              /* SIGKILL; stays running until the process is gone */
	ACT_CANCEL_BACKOFF,    /* stopped */
	ACT_RESTART_AFTER_BACKOFF, /* ACT_SPAWN, activation "restart" */
	ACT_COUNT
};

/* The table (after s6-supervise): ACT_NONE for a pair it does not define
 * and for values out of range. */
enum action transition_for(enum istate s, enum event ev);

#endif
