/*
 * slot.c - progress slots handed out from chunks of shared anonymous memory.
 * A chunk is mapped once and never unmapped: children forked later inherit
 * every chunk, and the free list lives in the host's private heap.
 */
#define _GNU_SOURCE
#include "slot.h"
#include "util.h"

#include <stddef.h>
#include <sys/mman.h>

#define SLOTS_PER_CHUNK 1024

static struct slot **free_slots; /* host-private stack of free slots */
static size_t nfree, cap;

static int grow(void)
{
	struct slot *chunk = mmap(NULL, SLOTS_PER_CHUNK * sizeof(struct slot), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (chunk == MAP_FAILED)
		return -1;
	if (nfree + SLOTS_PER_CHUNK > cap) {
		cap = nfree + SLOTS_PER_CHUNK;
		free_slots = xrealloc(free_slots, cap * sizeof(*free_slots));
	}
	for (size_t i = SLOTS_PER_CHUNK; i-- > 0;)
		free_slots[nfree++] = &chunk[i];
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
