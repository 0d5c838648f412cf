/*
 * spawn.c - the host side of starting a worker process. The child gets the
 * write end of its stdout/stderr pipe, its runtime socket, its listen
 * sockets and its slot; the spawner (spawner.c) forks it, or the host itself
 * when no spawner can run. Everything about the child's set-up happens in
 * child.c, whichever process forked it.
 */
#define _GNU_SOURCE
#include "spawn.h"
#include "child.h"
#include "output.h"
#include "slot.h"
#include "spawner.h"
#include "tester.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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

/* What the new process is handed: the write end of its stdout pipe, its
 * runtime socket and its slot's memory file; the host keeps the pipe's read
 * end. -1 with errno, with nothing left open. */
static int open_child_fds(struct instance *in, int *read_end, struct child_spec *spec)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	int frame_fd = output_channel_open(in);
	int slot_fd = frame_fd < 0 ? -1 : slot_renew(in->slot);
	if (slot_fd < 0) {
		int saved = errno;
		close(out[0]);
		close(out[1]);
		if (frame_fd >= 0)
			close(frame_fd);
		output_channel_forget(in);
		errno = saved;
		return -1;
	}
	*read_end = out[0];
	spec->out_fd = out[1];
	spec->frame_fd = frame_fd;
	spec->slot_fd = slot_fd;
	return 0;
}

/* Once the process has them (or could not be made): the host's copies go. */
static void close_child_fds(const struct child_spec *spec)
{
	close(spec->out_fd);
	close(spec->frame_fd);
	close(spec->slot_fd);
}

int spawn_process(struct instance *in)
{
	struct worker *w = in->worker;
	struct host *h = w->host;
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listen_fds[i] = w->listeners[i].watch.fd;
	struct child_spec spec = {
		.listen_fds = w->listen_fds,
		.test = h->test ? tester_request(h->test) : NULL,
		.nlisten = (int)w->nlisteners,
		.conf = w->conf,
		.instance = in->index,
		.state_dir = w->state_dir,
		.host_pid = h->pid,
	};
	int read_end;
	if (open_child_fds(in, &read_end, &spec) < 0)
		return -1;
	const char **base_env = child_inherited_env(w->conf);
	spec.base_env = base_env;
	pid_t pid = fork_child(h, &spec);
	int saved = errno;
	free(base_env);
	close_child_fds(&spec);
	if (pid < 0) {
		close(read_end);
		output_channel_forget(in);
		errno = saved;
		return -1;
	}
	/* The host must never block on a worker: the read end is non-blocking. */
	if (fcntl(read_end, F_SETFL, O_NONBLOCK) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to make its pipe non-blocking: %s", w->conf->name, in->index,
			 strerror(errno));
	/* Also done by the child: whichever runs first, the group exists before
	 * anyone could signal it. ESRCH/EACCES mean the child got there first. */
	setpgid(pid, pid);
	in->pid = pid;
	output_attach(in, read_end);
	return 0;
}
