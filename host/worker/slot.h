/*
 * slot.h - a worker process's view of its progress slot (struct slot,
 * common/proto.h): the one page of the memory file the host handed it
 * (daemon/slots.c makes it). Runs in the worker process, after fork.
 */
#ifndef WARD_SLOT_H
#define WARD_SLOT_H

#include "common/proto.h"

/* Maps the page of the file slot_renew (daemon/slots.h) made; NULL with errno. */
struct slot *slot_map(int fd);

#endif
