/*
 * jobframe.h - the two job frames of proto.h on the wire, for both ends of
 * the runtime channel: FRAME_JOB (host to worker, daemon/channel.c) and
 * FRAME_JOB_END (worker to host, worker/runtime.c). Data too large for the
 * datagram travels in a sealed memfd passed with SCM_RIGHTS; the receiver
 * trusts none of its sizes. Used in the host and in worker processes.
 */
#ifndef WARD_JOBFRAME_H
#define WARD_JOBFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/proto.h"

/* The largest datagram a job frame takes (header, struct, key or message,
 * inline data). */
#define JOBFRAME_MAX (sizeof(struct frame_hdr) + sizeof(struct frame_job_end) + 4096 + FRAME_JOB_INLINE_MAX)

/* One datagram on sock (to `to`, or the connected peer when to is NULL):
 * frame_hdr of type + head (headlen bytes: the frame struct and its text)
 * + data inline, or data in a sealed memfd passed alongside when
 * in_memfd. flags for sendmsg (MSG_DONTWAIT...). 0, or -1 with errno. */
int jobframe_send(int sock, const void *to, socklen_t tolen, uint8_t type, const void *head, size_t headlen,
		  const void *data, size_t len, bool in_memfd, int flags);

/* Reads a memfd's whole content of exactly len bytes (len <= max) into a
 * malloc'd *out, after checking it is a sealed memfd (nobody can change it
 * while it is read, and reading it never blocks). 0, or -1 with errno
 * (EBADF: not a sealed memfd; EMSGSIZE: another size or over max). */
int jobframe_read_memfd(int fd, size_t len, size_t max, void **out);

/* The descriptors an SCM_RIGHTS message carried: up to maxfds into fds,
 * how many (the rest closed). */
int jobframe_take_fds(struct msghdr *m, int *fds, int maxfds);

#endif
