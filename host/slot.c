/*
 * slot.c - progress slots handed out from chunks of shared memory. A chunk is
 * a memfd, mapped once in the host and never unmapped; a worker process maps
 * only the page that holds its own slot, from the chunk's descriptor. The
 * free list lives in the host's private heap.
 */
#define _GNU_SOURCE
#include "slot.h"
#include "util.h"

#include <errno.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS_PER_CHUNK 1024
#define CHUNK_BYTES (SLOTS_PER_CHUNK * sizeof(struct slot))

struct chunk {
	struct slot *base;
	int fd;
};

static struct chunk *chunks;
static size_t nchunks;
static struct slot **free_slots; /* host-private stack of free slots */
static size_t nfree, cap;

static struct slot *map_chunk(int *fd_out)
{
	int fd = memfd_create("ward-slots", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	void *at = MAP_FAILED;
	if (ftruncate(fd, (off_t)CHUNK_BYTES) == 0)
		at = mmap(NULL, CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (at == MAP_FAILED) {
		int saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	*fd_out = fd;
	return at;
}

static int grow(void)
{
	int fd;
	struct slot *chunk = map_chunk(&fd);
	if (!chunk)
		return -1;
	chunks = xrealloc(chunks, (nchunks + 1) * sizeof(*chunks));
	chunks[nchunks++] = (struct chunk){.base = chunk, .fd = fd};
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

int slot_locate(const struct slot *s, int *fd, off_t *offset)
{
	for (size_t i = 0; i < nchunks; i++)
		if (s >= chunks[i].base && s < chunks[i].base + SLOTS_PER_CHUNK) {
			*fd = chunks[i].fd;
			*offset = (off_t)((const char *)s - (const char *)chunks[i].base);
			return 0;
		}
	errno = EINVAL;
	return -1;
}

struct slot *slot_map(int fd, off_t offset)
{
	long page = sysconf(_SC_PAGESIZE);
	off_t at = offset & ~(off_t)(page - 1);
	char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, at);
	return p == MAP_FAILED ? NULL : (struct slot *)(void *)(p + (offset - at));
}
