/*
 * spawner.h - the spawner process: the helper that forks workers (and plugin
 * probes) on the host's behalf, so that the cost of starting a worker does
 * not grow with what the host holds. Declares how a process becomes the
 * spawner and the protocol on its request socket; what runs in the host to
 * ask it is daemon/spawner_client.h. The processes it forks are the host's
 * children all the same.
 */
#ifndef WARD_SPAWNER_H
#define WARD_SPAWNER_H

#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/types.h>

/* The request socket is a SOCK_SEQPACKET pair. A request is one datagram of
 * at most SPAWNER_REQUEST_MAX bytes (a child spec, encoded by
 * worker/childspec.c) with at most SPAWNER_MAX_FDS descriptors: the spec's
 * own and, when the spec names an instance's cgroup, one more, the cgroup
 * of every worker, which the spawner kills should the host die. Each
 * request gets one struct spawner_reply, in order. */
#define SPAWNER_REQUEST_MAX (128 * 1024) /* a worker's settings, encoded; larger ones are forked by the host */
#define SPAWNER_MAX_FDS 250              /* below the kernel's SCM_MAX_FD (253) */
#define SPAWNER_WORKERS_CGROUP_FDS 1     /* after the spec's, with an instance cgroup */

struct spawner_reply {
	int32_t pid; /* > 0, or 0 on failure */
	int32_t err; /* errno of the failure; in the first reply, the hello:
		      * why ward could not be executed again (0: it was) */
};

/* In the host's fresh fork, with sock the spawner's end of the request
 * socket: becomes the spawner. It executes this program again (so nothing
 * of the host's memory is in what it forks), says hello with its pid, then
 * serves requests until the host is gone. */
noreturn void spawner_become(int sock, pid_t host_pid);

#endif
