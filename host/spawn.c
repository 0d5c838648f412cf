/*
 * spawn.c - the host side of starting a worker process. The child gets the
 * write end of its stdout/stderr pipe, its user's runtime channel, its listen
 * sockets and its slot, and starts in its instance's cgroup when there are
 * cgroups (cgroup.c); the spawner (spawner.c) forks it, or the host itself
 * when no spawner can run. Everything about the child's set-up happens in
 * child.c, whichever process forked it.
 */
#define _GNU_SOURCE
#include "spawn.h"
#include "cgroup.h"
#include "child.h"
#include "output.h"
#include "slot.h"
#include "spawner.h"
#include "tester.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "util.h"
#include <unistd.h>

static pid_t fork_child(struct host *h, struct child_spec *spec)
{
	pid_t pid;
	int rc = spawner_start(h, spec, &pid);
	if (rc <= 0)
		return rc == 0 ? pid : -1;
	/* No spawner: the child starts as a copy of the host and must wipe it. */
	spec->host_config = &h->cfg;
	spec->old_configs = h->old_configs;
	spec->nold = h->nold;
	pid = fork();
	if (pid == 0)
		child_main(spec);
	return pid;
}

int spawn_process(struct instance *in)
{
	struct worker *w = in->worker;
	struct host *h = w->host;
	int out[2] = {-1, -1}, slot_fd, cgroup_fd;
	off_t slot_offset;
	int frame_fd = output_channel_for(h, w->conf->user);
	if (frame_fd < 0 || slot_locate(in->slot, &slot_fd, &slot_offset) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	if (cgroup_instance_open(in, &cgroup_fd) < 0) {
		int saved = errno;
		close(out[0]);
		close(out[1]);
		errno = saved;
		return -1;
	}
	slot_reset(in->slot);
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listen_fds[i] = w->listeners[i].watch.fd;
	struct child_spec spec = {
		.listen_fds = w->listen_fds,
		.test = h->test ? tester_request(h->test) : NULL,
		.nlisten = (int)w->nlisteners,
		.conf = w->conf,
		.instance = in->index,
		.state_dir = w->state_dir,
		.out_fd = out[1],
		.frame_fd = frame_fd,
		.slot_fd = slot_fd,
		.slot_offset = slot_offset,
		.host_pid = h->pid,
		.cgroup_fd = cgroup_fd,
	};
	pid_t pid = fork_child(h, &spec);
	int saved = errno;
	close(out[1]);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	if (pid < 0) {
		close(out[0]);
		/* A spawner that failed mid-request may have cloned it there. */
		cgroup_instance_kill(in);
		cgroup_instance_forget(in);
		errno = saved;
		return -1;
	}
	/* The host must never block on a worker: the read end is non-blocking. */
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to make its pipe non-blocking: %s", w->conf->name, in->index,
			 strerror(errno));
	/* No setpgid(pid, pid) here: the child makes its own session (and group)
	 * first thing, which a group leader cannot. Until it has, the host's
	 * kills also name the process itself. */
	in->pid = pid;
	in->channel_fd = frame_fd;
	output_attach(in, out[0]);
	return 0;
}
