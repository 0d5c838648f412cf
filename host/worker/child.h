/*
 * child.h - the worker process, from just after fork() to exit: it prepares
 * the process (cgroup, session and process group, signals, descriptors, environment, identity,
 * limits, working directory), loads the plugin and runs it. Everything here
 * runs in the child; it shares nothing with the host but proto.h and the
 * spec it was handed at fork.
 */
#ifndef WARD_CHILD_H
#define WARD_CHILD_H

#include <stdbool.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#include "config/config.h"
#include "common/proto.h"

struct child_spec {
	/* The settings the process uses: name, plugin, interval, user, group, env,
	 * inherit_env, workdir, nice, limits and plugin keys. */
	const struct worker_conf *conf;
	int instance;
	const char *state_dir; /* the worker's private directory, absolute */
	bool probe;            /* a probe (probe.c): load the plugin, send the verdict on frame_fd, exit */
	int out_fd;            /* write end of the stdout/stderr pipe; -1: /dev/null (a probe) */
	int frame_fd;          /* its runtime socket, connected to the host (daemon/channel.c); a probe's verdict pipe */
	int slot_fd;           /* the one-page memory file of its progress slot; -1: none (a probe) */
	const struct test_request *test; /* NULL outside `ward test` */
	/* The host's variables the process starts its environment from
	 * (child_inherited_env), NULL-terminated; its own are added to them. */
	const char *const *base_env;
	const int *listen_fds; /* the worker's sockets, in configuration order */
	int nlisten;
	pid_t host_pid;
	int cgroup_fd;         /* the instance's cgroup (cgroup.c); -1: none */
	bool in_cgroup;        /* the spawner cloned the process into it already */
	/* Set when the host forked the process itself, which then starts with a
	 * copy of the host's memory: every configuration the host holds (where
	 * other workers' secrets are wiped) and its shared mappings (unmapped).
	 * NULL when the spawner forked it: it never held any of that. */
	const struct config *host_config;
	struct config *const *old_configs;
	size_t nold;
};

noreturn void child_main(const struct child_spec *spec);
/* In the host: the host's variables a process of w inherits (pointers into
 * environ), NULL-terminated; free the array, not the strings. */
const char **child_inherited_env(const struct worker_conf *w);
/* Zeroes the environment strings the kernel put on this process's initial
 * stack at exec (a forked process has a copy of its parent's). */
void child_wipe_initial_environment(void);
/* Default dispositions for every signal and an empty mask: what plugin code
 * may count on (also used by `ward check`'s probe, which loads plugins too). */
void child_reset_signals(void);

#endif
