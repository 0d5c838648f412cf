/*
 * spawner_client.h - the host's client of the spawner process (runs in the
 * host, and in `ward check`'s process): has the processes the host wants
 * forked by the spawner (spawner/spawner.h), asked without the host ever
 * waiting for it, or by the host itself when there is no spawner. The
 * process it forks is the host's child all the same.
 */
#ifndef WARD_SPAWNER_CLIENT_H
#define WARD_SPAWNER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "worker/child.h"
#include "common/loop.h"

struct host;

/* A process the host wants forked, embedded in its owner (an instance, a
 * probe): queued until its request fits the spawner's socket, then in
 * flight until the spawner answers. Exactly one done() per submit. */
struct spawn_job {
	/* Fills spec, opening what the child is handed. Called when the request
	 * is about to be sent (again, after a full socket). 0, or -1 with errno. */
	int (*prepare)(struct spawn_job *j, struct child_spec *spec);
	/* Closes what prepare opened for the child; sent: whether the request
	 * (or the host's own fork) got through. */
	void (*release)(struct spawn_job *j, struct child_spec *spec, bool sent);
	/* The process exists (pid > 0), or could not be made (-1, err). */
	void (*done)(struct spawn_job *j, pid_t pid, int err);
	/* Optional: the spawner died with this request unanswered, so it may
	 * have made the process without saying so; the job is forked again. */
	void (*orphaned)(struct spawn_job *j);
	struct spawn_job *next; /* the spawner's queue */
	int64_t deadline;       /* in flight: when the answer is due */
};

/* What the host decides when its client has something to tell: the spawner
 * only makes processes and says which, the host decides about its children.
 * Registered with spawner_attach(); either may be NULL (nothing to do). */
struct spawner_hooks {
	/* The spawner failed with requests unanswered, the oldest sent at
	 * sent_ns (mono_ns()): it may have made processes without saying so. */
	void (*on_strays)(struct host *h, int64_t sent_ns);
	/* No request is unanswered any more, after spawner_recheck_children_later():
	 * a child that had to wait for the answers may be looked at again. */
	void (*on_answered)(struct host *h);
};

struct spawner {
	pid_t pid;          /* 0: none running */
	struct watch watch; /* the host's end of the request socket; fd -1 without a spawner */
	struct timer deadline; /* the oldest request's */
	bool disabled;      /* unusable or dead (said once): the host forks processes itself */
	struct host *host;  /* once attached to the loop */
	/* Jobs in order: the first in_flight are sent, unsent is the next one to send. */
	struct spawn_job *head, *tail, *unsent;
	size_t in_flight;
	bool recheck_children; /* a child had to wait for the answers */
	struct spawner_hooks hooks;
};

/* Forks the spawner. First thing in the host, while it holds nothing: no
 * configuration, no descriptors, little memory. It runs this program again
 * (see spawner/spawner.c), so its memory holds nothing of the host's. */
void spawner_open(struct host *h);
/* Once the host's loop exists: answers are read as they come, and the host
 * hears through hooks what it has to decide. */
void spawner_attach(struct host *h, struct spawner_hooks hooks);

/* Has the job's process forked: by the spawner, without waiting for it
 * (done() comes when it answers, within a deadline after which the host
 * gives up on it), or by the host itself when there is no spawner (done()
 * before this returns). */
void spawner_submit(struct host *h, struct spawn_job *j);

/* Whether requests are still unanswered, after reading the answers that
 * are in. A child of the host that nobody knows may be one of them. */
bool spawner_unanswered(struct host *h);
/* Calls hooks.on_answered once no request is unanswered. */
void spawner_recheck_children_later(struct host *h);

/* Whether pid is the running spawner: neither a worker nor a stray. */
bool spawner_is(const struct host *h, pid_t pid);
/* The host reaped pid: if it was the spawner, the host forks processes itself from now on. */
void spawner_reaped(struct host *h, pid_t pid, int wait_status);

/* Ends the spawner and waits for it (host exit); what is queued is dropped. */
void spawner_close(struct host *h);

#endif
