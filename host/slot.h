/*
 * slot.h - the pool of progress slots (proto.h) in memory shared with worker
 * processes. Slots are mapped before the fork that uses them, so a child
 * inherits its slot; the host keeps the bookkeeping in private memory, so a
 * worker scribbling over shared memory can never corrupt the pool.
 */
#ifndef WARD_SLOT_H
#define WARD_SLOT_H

#include "proto.h"

struct slot *slot_alloc(void); /* zeroed; NULL with errno when mmap fails */
void slot_free(struct slot *s);
void slot_reset(struct slot *s);

#endif
