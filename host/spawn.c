/*
 * spawn.c - the host side of starting a worker process. The child gets the
 * write ends of two pipes (stdout/stderr and runtime frames) and its slot;
 * everything else about the child's set-up happens in child.c.
 */
#define _GNU_SOURCE
#include "spawn.h"
#include "child.h"
#include "output.h"
#include "slot.h"
#include "tester.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "util.h"
#include <unistd.h>

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
}

/* The host's current configuration and the ones reloads replaced. */
static struct config *const *spawn_configs(struct host *h, size_t *n)
{
	static struct config **all;
	static size_t cap;
	if (cap < h->nold + 1) {
		cap = h->nold + 1;
		all = xrealloc(all, cap * sizeof(*all));
	}
	all[0] = &h->cfg;
	for (size_t i = 0; i < h->nold; i++)
		all[i + 1] = h->old_configs[i];
	*n = h->nold + 1;
	return all;
}

int spawn_process(struct instance *in)
{
	size_t nconfigs;
	struct worker *w = in->worker;
	int out[2] = {-1, -1}, frames[2] = {-1, -1};
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(frames, O_CLOEXEC) < 0)
		goto fail;
	slot_reset(in->slot);
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listen_fds[i] = w->listeners[i].watch.fd;
	struct child_spec spec = {
		.listen_fds = w->listen_fds,
		.test = w->host->test ? tester_request(w->host->test) : NULL,
		.configs = spawn_configs(w->host, &nconfigs),
		.nconfigs = nconfigs,
		.nlisten = (int)w->nlisteners,
		.conf = w->conf,
		.instance = in->index,
		.state_dir = w->state_dir,
		.out_fd = out[1],
		.frame_fd = frames[1],
		.slot = in->slot,
		.host_pid = w->host->pid,
	};
	pid_t pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0)
		child_main(&spec);
	close(out[1]);
	close(frames[1]);
	/* The host must never block on a worker: read ends are non-blocking. */
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(frames[0], F_SETFL, O_NONBLOCK) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to make its pipes non-blocking: %s", w->conf->name,
			 in->index, strerror(errno));
	/* Also done by the child: whichever runs first, the group exists before
	 * anyone could signal it. ESRCH/EACCES mean the child got there first. */
	setpgid(pid, pid);
	in->pid = pid;
	output_attach(in, out[0], frames[0]);
	return 0;
fail:;
	int saved = errno;
	close_pair(out);
	close_pair(frames);
	errno = saved;
	return -1;
}
