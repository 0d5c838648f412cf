/*
 * child.h - the worker process, from just after fork() to exit: it prepares
 * the process (process group, signals, descriptors, environment, identity,
 * limits, working directory), loads the plugin and runs it. Everything here
 * runs in the child; it shares nothing with the host but proto.h and the
 * spec it was handed at fork.
 */
#ifndef WARD_CHILD_H
#define WARD_CHILD_H

#include <stdnoreturn.h>
#include <sys/types.h>

#include "config.h"
#include "proto.h"

struct child_spec {
	const struct worker_conf *conf;
	int instance;
	const char *state_dir; /* the worker's private directory, absolute */
	int out_fd;            /* write end of the stdout/stderr pipe */
	int frame_fd;          /* write end of the runtime pipe */
	const struct test_request *test; /* NULL outside `ward test` */
	/* Every configuration the host holds (its current one and those a reload
	 * replaced): other workers' secrets in them are wiped in this process. */
	struct config *const *configs;
	size_t nconfigs;
	const int *listen_fds; /* the worker's sockets, in configuration order */
	int nlisten;
	struct slot *slot;
	pid_t host_pid;
};

noreturn void child_main(const struct child_spec *spec);
/* Default dispositions for every signal and an empty mask: what plugin code
 * may count on (also used by `ward check`'s probe, which loads plugins too). */
void child_reset_signals(void);

#endif
