/*
 * pidtable.c - which instance a process id belongs to: open addressing,
 * linear probing, tombstones on removal. Runs in the host process; the
 * reaper asks it for every child that ends, the worker state machine keeps
 * it in step as processes come and go.
 */
#include "daemon/pidtable.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <stdlib.h>

struct pid_entry {
	pid_t pid; /* 0: empty, -1: deleted */
	struct instance *in;
};

static struct pid_entry *pids;
static size_t pids_cap, pids_used;

static size_t pid_hash(pid_t pid)
{
	return ((size_t)pid * 2654435761u) & (pids_cap - 1);
}

static void pids_grow(void)
{
	struct pid_entry *old = pids;
	size_t old_cap = pids_cap;
	pids_cap = pids_cap ? pids_cap * 2 : 1024;
	pids = xcalloc(pids_cap, sizeof(*pids));
	pids_used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].pid > 0) {
			size_t j = pid_hash(old[i].pid);
			while (pids[j].pid != 0)
				j = (j + 1) & (pids_cap - 1);
			pids[j] = old[i];
			pids_used++;
		}
	free(old);
}

static struct pid_entry *pid_find(pid_t pid)
{
	if (!pids_cap)
		return NULL;
	for (size_t j = pid_hash(pid);; j = (j + 1) & (pids_cap - 1)) {
		if (pids[j].pid == pid)
			return &pids[j];
		if (pids[j].pid == 0)
			return NULL;
	}
}

void pidtable_add(struct instance *in)
{
	if ((pids_used + 1) * 2 > pids_cap)
		pids_grow();
	size_t j = pid_hash(in->pid);
	while (pids[j].pid > 0)
		j = (j + 1) & (pids_cap - 1);
	if (pids[j].pid == 0)
		pids_used++;
	pids[j] = (struct pid_entry){in->pid, in};
}

struct instance *pidtable_find(pid_t pid)
{
	struct pid_entry *e = pid > 0 ? pid_find(pid) : NULL;
	return e ? e->in : NULL;
}

void pidtable_remove(struct instance *in)
{
	struct pid_entry *e = pid_find(in->pid);
	if (e && e->in == in) /* not when forgotten already and the pid reused */
		e->pid = -1; /* a tombstone keeps later probes intact */
}

void pidtable_free(void)
{
	free(pids);
	pids = NULL;
	pids_cap = pids_used = 0;
}
