/*
 * spawner.h - the helper process that forks workers on the host's behalf, so
 * that the cost of starting a worker does not grow with what the host holds.
 * The worker it forks is the host's child all the same.
 */
#ifndef WARD_SPAWNER_H
#define WARD_SPAWNER_H

#include <stdbool.h>
#include <sys/types.h>

#include "child.h"

struct host;

struct spawner {
	pid_t pid;     /* 0: none running */
	int sock;      /* the host's end of the request socket; -1 without a spawner */
	bool disabled; /* unusable or dead (said once): the host forks workers itself */
};

/* Forks the spawner. First thing in the host, while it holds nothing: no
 * configuration, no descriptors, little memory. */
void spawner_open(struct host *h);

/* Forks the instance's process through the spawner. 0 with *pid set; -1 with
 * errno when the fork itself failed; 1 when there is no spawner to ask (the
 * caller then forks the process itself, which works the same but costs more
 * as the host grows, and must wipe the host's memory in the child). */
int spawner_start(struct host *h, const struct child_spec *spec, pid_t *pid);

/* Whether pid is the running spawner: neither a worker nor a stray. */
bool spawner_is(const struct host *h, pid_t pid);
/* The host reaped pid: if it was the spawner, the host forks workers itself from now on. */
void spawner_reaped(struct host *h, pid_t pid, int wait_status);

/* Ends the spawner and waits for it (host exit). */
void spawner_close(struct host *h);

#endif
