/*
 * slot.c - the worker process's mapping of its progress slot: the one page
 * of the sealed memory file the host handed it, shared with the host, which
 * samples it for the watchdog and `ward status`. Runs in the worker process
 * (worker/child.c calls it after fork); the host's pool is daemon/slots.c.
 */
#define _GNU_SOURCE
#include "worker/slot.h"

#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

struct slot *slot_map(int fd)
{
	void *p = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}
