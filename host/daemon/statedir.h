/*
 * statedir.h - the host's state_dir: created at boot with log_dir, locked
 * for the host's lifetime through <state_dir>/ward.lock (one host per
 * state_dir), and put back together when it is removed while the host runs.
 */
#ifndef WARD_STATEDIR_H
#define WARD_STATEDIR_H

#include <stdbool.h>

struct config;
struct host;

/* At boot, before anything is written there: creates state_dir and log_dir
 * and takes the lock. 0, or -1 when the host cannot start (reported). */
int statedir_open(const struct config *cfg);
/* Once the loop and the control socket exist: from now on a removal of
 * state_dir, or of the files the host keeps in it, is noticed and repaired. */
void statedir_watch(struct host *h);
/* True while a removal in state_dir was seen and is not repaired yet: the
 * host holds its history writes back until then (they are queued). */
bool statedir_repairing(void);
/* Stops watching and releases the lock: last, after the history is closed. */
void statedir_close(struct host *h);

/* <state_dir>/ward.lock is held by a running host: 1 if held, 0 if not, -1 on
 * error. *pid receives the holder's pid when the file names one (else 0). */
int statedir_lock_held(const char *state_dir, int *pid);

#endif
