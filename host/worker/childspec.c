/*
 * childspec.c - a child spec on the wire (see childspec.h). Encoded in the
 * host (daemon/spawner_client.c), decoded in the spawner (spawner/spawner.c),
 * read by the process it makes (worker/child.c).
 *
 * There is one list of what a worker's settings are: the key table of
 * config/config.c. The settings travel by walking that table over struct
 * worker_conf (config_worker_to_wire), and decoding walks the same table to
 * build a real worker_conf, so a key the process needs is its table row and
 * the code that reads it, and nothing here. What is listed here are the
 * spec's own fields (instance, directory, environment, descriptors), which
 * are no setting of anyone's.
 *
 * The bytes: probe, instance, host pid, listen count, whether an instance
 * cgroup comes (1; 2: to be joined through cgroup.procs) and a test request, the test request, the state directory,
 * a command worker's $NOTIFY_SOCKET, the restart count and whether a last exit comes, the last exit, the
 * host's variables, then the worker's settings. The descriptors: a
 * probe's verdict pipe; or a worker's stdout pipe, runtime socket, slot
 * memory, listen sockets and, with cgroups, its instance's cgroup.
 */
#include "worker/childspec.h"

#include <stdlib.h>
#include <string.h>

enum { FIXED_FDS = 3 }; /* stdout pipe, runtime socket, slot memory; then listen sockets */

void childspec_encode(const struct child_spec *spec, struct wire *w)
{
	size_t nbase = 0;
	while (spec->base_env && spec->base_env[nbase])
		nbase++;
	wire_put_u64(w, spec->probe);
	wire_put_u64(w, (uint64_t)(int64_t)spec->instance);
	wire_put_u64(w, (uint64_t)(int64_t)spec->host_pid);
	wire_put_u64(w, spec->probe ? 0 : (uint64_t)spec->nlisten);
	wire_put_u64(w, spec->probe || spec->cgroup_fd < 0 ? 0 : spec->cgroup_by_procs ? 2 : 1);
	wire_put_u64(w, spec->test != NULL);
	if (spec->test)
		wire_put_bytes(w, spec->test, sizeof(*spec->test));
	wire_put_string(w, spec->state_dir);
	wire_put_string(w, spec->notify_socket);
	wire_put_u64(w, (uint64_t)(int64_t)spec->restarts);
	wire_put_u64(w, spec->last_exit != NULL);
	if (spec->last_exit)
		wire_put_string(w, spec->last_exit);
	wire_put_strings(w, spec->base_env, nbase);
	config_worker_to_wire(spec->conf, w);
}

int childspec_fds(const struct child_spec *spec, int *fds)
{
	if (spec->probe) {
		fds[0] = spec->frame_fd;
		return 1;
	}
	fds[0] = spec->out_fd;
	fds[1] = spec->frame_fd;
	fds[2] = spec->slot_fd;
	for (int i = 0; i < spec->nlisten; i++)
		fds[FIXED_FDS + i] = spec->listen_fds[i];
	if (spec->cgroup_fd < 0)
		return FIXED_FDS + spec->nlisten;
	fds[FIXED_FDS + spec->nlisten] = spec->cgroup_fd;
	return FIXED_FDS + spec->nlisten + 1;
}

/* The descriptors into spec: how many it takes, or -1 when too few came. */
static int take_fds(struct child_spec *spec, bool has_cgroup, const int *fds, int nfds)
{
	int need = spec->probe ? 1 : FIXED_FDS + spec->nlisten + has_cgroup;
	if (need > nfds)
		return -1;
	spec->out_fd = spec->slot_fd = spec->cgroup_fd = -1;
	if (spec->probe) {
		spec->frame_fd = fds[0];
		return need;
	}
	spec->out_fd = fds[0];
	spec->frame_fd = fds[1];
	spec->slot_fd = fds[2];
	spec->listen_fds = fds + FIXED_FDS;
	if (has_cgroup)
		spec->cgroup_fd = fds[FIXED_FDS + spec->nlisten];
	return need;
}

int childspec_decode(char *buf, size_t len, const int *fds, int nfds, struct child_spec_decoded *d)
{
	*d = (struct child_spec_decoded){0};
	struct wire w = {.buf = buf, .size = len};
	struct child_spec *spec = &d->spec;
	spec->probe = wire_get_u64(&w) != 0;
	spec->instance = (int)(int64_t)wire_get_u64(&w);
	spec->host_pid = (pid_t)(int64_t)wire_get_u64(&w);
	uint64_t nlisten = wire_get_u64(&w);
	uint64_t cgroup = wire_get_u64(&w);
	bool has_cgroup = cgroup != 0;
	spec->cgroup_by_procs = cgroup == 2;
	if (wire_get_u64(&w)) {
		wire_get_bytes(&w, &d->test, sizeof(d->test));
		spec->test = &d->test;
	}
	spec->state_dir = wire_get_string(&w);
	spec->notify_socket = wire_get_string(&w);
	spec->restarts = (int)(int64_t)wire_get_u64(&w);
	bool has_last_exit = wire_get_u64(&w) != 0;
	spec->last_exit = has_last_exit ? wire_get_string(&w) : NULL;
	if (has_last_exit && !spec->last_exit)
		w.failed = true;
	wire_get_strings(&w, &d->base_env);
	spec->base_env = (const char *const *)d->base_env.v;
	config_worker_from_wire(&w, &d->conf);
	spec->conf = &d->conf;
	if (w.failed || !spec->state_dir || nlisten > (uint64_t)nfds || (spec->probe && has_cgroup))
		return -1;
	spec->nlisten = (int)nlisten;
	return take_fds(spec, has_cgroup, fds, nfds);
}

void childspec_decoded_free(struct child_spec_decoded *d)
{
	config_worker_free_wired(&d->conf);
	free(d->base_env.v);
	*d = (struct child_spec_decoded){0};
}
