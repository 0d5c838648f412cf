/*
 * slots.c - the host's pool of progress slots, one page each. The host reserves
 * address space for slots in chunks; each start of a process replaces its
 * slot's page with a fresh memfd of exactly one page, sealed so that nobody
 * can grow or shrink it, mapped over the slot's place (MAP_FIXED). The
 * process is handed that memfd and the host closes its copy: the host keeps
 * one mapping per slot and no descriptor.
 *
 * So the only memory a worker process can reach is its own page. Other
 * slots are in other files it never gets; mremap() past its page, mmap() at
 * another offset, or the file reopened through /proc/self/map_files (root)
 * find nothing there but the end of a one-page file. The cost is a page of
 * shared memory per instance (4 KiB) and four system calls per start.
 *
 * The free list lives in the host's private heap, so a worker scribbling
 * over its page can never corrupt the pool. Host daemon only; the child maps
 * its one page with worker/slot.c, and the layout both see is struct slot
 * in common/proto.h.
 */
#define _GNU_SOURCE
#include "daemon/slots.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS_PER_CHUNK 256 /* a megabyte of address space; pages cost only once used */

static struct slot **free_slots; /* host-private stack of free slots */
static size_t nfree, cap;

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static int grow(void)
{
	size_t page = page_size();
	char *chunk = mmap(NULL, SLOTS_PER_CHUNK * page, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (chunk == MAP_FAILED)
		return -1;
	if (nfree + SLOTS_PER_CHUNK > cap) {
		cap = nfree + SLOTS_PER_CHUNK;
		free_slots = xrealloc(free_slots, cap * sizeof(*free_slots));
	}
	for (size_t i = SLOTS_PER_CHUNK; i-- > 0;)
		free_slots[nfree++] = (struct slot *)(void *)(chunk + i * page);
	return 0;
}

struct slot *slot_alloc(void)
{
	if (nfree == 0 && grow() < 0)
		return NULL;
	struct slot *s = free_slots[--nfree];
	slot_reset(s);
	return s;
}

void slot_free(struct slot *s)
{
	if (!s)
		return;
	/* Back to private memory: the last process's page is released. */
	if (mmap(s, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return; /* still its old page, which works as well: keep it out of the pool rather than guess */
	if (nfree == cap) {
		cap = cap ? cap * 2 : SLOTS_PER_CHUNK;
		free_slots = xrealloc(free_slots, cap * sizeof(*free_slots));
	}
	free_slots[nfree++] = s;
}

void slot_reset(struct slot *s)
{
	atomic_store(&s->cycles, 0);
	atomic_store(&s->beats, 0);
	atomic_store(&s->phase, PHASE_SETUP);
	atomic_store(&s->sleeping, 0);
	atomic_store(&s->init_ns, 0);
	atomic_store(&s->last_cycle_ns, 0);
	atomic_store(&s->last_beat_ns, 0);
}

int slot_renew(struct slot *s)
{
	size_t page = page_size();
	int fd = memfd_create("ward-slot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	/* Sealed: a process that shrank it would make the host fault on its
	 * next read; one that grew it would gain nothing, but nothing is simpler. */
	if (ftruncate(fd, (off_t)page) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0 ||
	    mmap(s, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	slot_reset(s); /* a fresh page is zeroed already; this says what zero means */
	return fd;
}
