/*
 * slot.h - the pool of progress slots (proto.h) in memory shared with worker
 * processes. A worker maps its slot's page from a descriptor the host hands
 * it; the host keeps the bookkeeping in private memory, so a worker
 * scribbling over shared memory can never corrupt the pool.
 */
#ifndef WARD_SLOT_H
#define WARD_SLOT_H

#include "proto.h"

struct slot *slot_alloc(void); /* zeroed; NULL with errno when mmap fails */
void slot_free(struct slot *s);
void slot_reset(struct slot *s);

#include <sys/types.h>
/* The descriptor of the memory that holds s, and s's offset in it. 0 or -1. */
int slot_locate(const struct slot *s, int *fd, off_t *offset);
/* In a worker: maps the page that holds the slot at offset; NULL with errno. */
struct slot *slot_map(int fd, off_t offset);

#endif
