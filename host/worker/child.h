/*
 * child.h - the worker process, from just after fork() to exit: it prepares
 * the process (cgroup, session and process group, signals, descriptors, environment, identity,
 * limits, working directory), loads the plugin and runs it. Everything here
 * runs in the child; it shares nothing with the host but proto.h and the
 * spec it was handed at fork (childspec.h).
 */
#ifndef WARD_CHILD_H
#define WARD_CHILD_H

#include <stdbool.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#include "config/config.h"
#include "worker/childspec.h"

noreturn void child_main(const struct child_spec *spec);
/* In the host: the host's variables a process of w inherits (pointers into
 * environ), NULL-terminated; free the array, not the strings. */
const char **child_inherited_env(const struct worker_conf *w);
/* Zeroes the environment strings the kernel put on this process's initial
 * stack at exec (a forked process has a copy of its parent's). */
void child_wipe_initial_environment(void);
/* Default dispositions for every signal and an empty mask: what plugin code
 * may count on (also used by `ward check`'s probe, which loads plugins too). */
void child_reset_signals(void);
/* Notes which signals this process has away from their default disposition,
 * so that child_reset_signals() in its forks resets those alone: the
 * spawner's are its host-death handler and whatever was ignored when ward
 * started, a few against 64 sigaction calls in every start. Called once the
 * process's dispositions are final. */
void child_note_signals(void);

#endif
