/*
 * slots.h - the host's pool of progress slots (struct slot, common/proto.h),
 * a page each, shared with worker processes. Each process maps its own
 * slot's page from a one-page memory file the host hands it (worker/slot.h),
 * and can reach nothing else; the host keeps the bookkeeping in private
 * memory, so a worker scribbling over its page can never corrupt the pool.
 * Host daemon only.
 */
#ifndef WARD_SLOTS_H
#define WARD_SLOTS_H

#include "common/proto.h"

struct slot *slot_alloc(void); /* zeroed; NULL with errno when mmap fails */
void slot_free(struct slot *s);
void slot_reset(struct slot *s);

/* Before a process starts: s becomes a fresh page, a new memory file the
 * host maps in its place. Returns that file's descriptor for the process
 * (the caller closes it once handed over), or -1 with errno. */
int slot_renew(struct slot *s);

#endif
