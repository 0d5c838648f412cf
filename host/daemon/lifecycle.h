/*
 * lifecycle.h - the worker state table alone: (state, event) -> (action,
 * next state), pure data and one lookup, no side effects. Used by the host's
 * worker state machine (daemon/worker.c); tested on its own (test_states.c).
 */
#pragma once

#include "daemon/worker.h"

enum event { EV_START, EV_READY, EV_EXIT, EV_STOP, EV_TIMER, EV_HUNG, EV_COUNT };

enum action {
	ACT_NONE,           /* the event changes nothing in this state */
	ACT_START_FRESH,    /* a start from outside: a fresh failure streak, then spawn */
	ACT_SPAWN,          /* spawn, keeping the streak */
	ACT_BECOME_READY,
	ACT_END_RUN,        /* the restart policy decides the next state */
	ACT_TERMINATE,      /* SIGTERM */
	ACT_INIT_TIMED_OUT, /* SIGKILL; stays starting until the process is gone */
	ACT_STOP_TIMED_OUT, /* SIGKILL; stays stopping */
	ACT_HUNG,           /* SIGKILL; stays running */
	ACT_CANCEL_BACKOFF,
	ACT_RESTART,        /* the backoff delay is over */
	ACT_COUNT
};

/* next is IS_COUNT when the action decides it (ACT_END_RUN); for ACT_NONE
 * it is the state itself. */
struct step {
	enum action action;
	enum istate next;
};

struct step lifecycle_step(enum istate state, enum event ev);
