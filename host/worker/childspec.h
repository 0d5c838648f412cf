/*
 * childspec.h - the child spec: everything a worker or probe process is
 * handed when it is made, in one struct, and its encoding for the trip from
 * the host (which fills and encodes it) through the spawner (which decodes
 * it) to the process (worker/child.c reads it). A process the host forks
 * itself reads the host's struct directly.
 */
#ifndef WARD_CHILDSPEC_H
#define WARD_CHILDSPEC_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/config.h"
#include "common/proto.h"
#include "common/wire.h"

struct child_spec {
	/* The worker's settings. The process uses name, plugin, interval, user,
	 * group, env, inherit_env, workdir, nice, limits and plugin keys; all of
	 * them travel (config_worker_to_wire). */
	const struct worker_conf *conf;
	int instance;
	const char *state_dir; /* the worker's private directory, absolute */
	/* How the instance's previous process ended, as `ward status` words it
	 * (exit_describe), NULL for its first; and how many times it was
	 * restarted since its worker was started: ward_last_exit, ward_restarts. */
	const char *last_exit;
	int restarts;
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
	const char *notify_socket; /* a command worker's $NOTIFY_SOCKET (daemon/sdnotify.c); NULL: none */
	int cgroup_fd;         /* the instance's cgroup (cgroup.c); -1: none */
	bool in_cgroup;        /* the spawner cloned the process into it already */
	/* The process joins it through cgroup.procs instead of being cloned into
	 * it: a killed cgroup that still holds processes, where Linux kills what
	 * is cloned in (daemon/cgroup.c). */
	bool cgroup_by_procs;
	/* Set when the host forked the process itself, which then starts with a
	 * copy of the host's memory: every configuration the host holds (where
	 * other workers' secrets are wiped) and its shared mappings (unmapped).
	 * NULL when the spawner forked it: it never held any of that. */
	const struct config *host_config;
	struct config *const *old_configs;
	size_t nold;
};

/* The most descriptors a spec with nlisten listen sockets hands over. */
#define CHILDSPEC_MAX_FDS(nlisten) (3 + (nlisten) + 1)

/* The spec into w (w->failed when it does not fit), and its descriptors
 * into fds (room for CHILDSPEC_MAX_FDS): how many. What stays behind: the
 * host_config fields, and where each setting was written. */
void childspec_encode(const struct child_spec *spec, struct wire *w);
int childspec_fds(const struct child_spec *spec, int *fds);

/* A spec rebuilt from its encoding: spec.conf points at conf, whose strings
 * (like state_dir's and base_env's) point into the buffer it was decoded
 * from, so wiping that buffer wipes the secrets it carried. */
struct child_spec_decoded {
	struct child_spec spec;
	struct worker_conf conf;
	struct test_request test;
	struct strv base_env;
};

/* Decodes len bytes of buf, received with nfds descriptors: how many of
 * them (from the first) the spec takes, or -1 when the bytes are malformed
 * or too few descriptors came. Free d with childspec_decoded_free either way. */
int childspec_decode(char *buf, size_t len, const int *fds, int nfds, struct child_spec_decoded *d);
/* Frees what decoding allocated; the descriptors are the caller's. */
void childspec_decoded_free(struct child_spec_decoded *d);

#endif
