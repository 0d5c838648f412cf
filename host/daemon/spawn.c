/*
 * spawn.c - the host side of starting a worker process. The child gets the
 * write end of its stdout/stderr pipe, its runtime socket, its listen
 * sockets and its slot, and starts in its instance's cgroup when there are
 * cgroups (cgroup.c); the spawner (spawner.c) forks it, or the host itself
 * when no spawner can run. Everything about the child's set-up happens in
 * child.c, whichever process forked it. The answer may come later: the
 * instance learns it through the spawn_answer its caller (worker.c) handed.
 * Host daemon only.
 */
#define _GNU_SOURCE
#include "daemon/spawn.h"
#include "daemon/host.h"
#include "daemon/cgroup.h"
#include "worker/child.h"
#include "daemon/channel.h"
#include "daemon/pipes.h"
#include "daemon/slots.h"
#include "daemon/spawner_client.h"
#include "daemon/observer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/util.h"
#include <unistd.h>

/* What the new process is handed: the write end of its stdout pipe, its
 * runtime socket and its slot's memory file; the host keeps the pipe's read
 * end. -1 with errno, with nothing left open. */
static int open_child_fds(struct instance *in, int *read_end, struct child_spec *spec)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	int frame_fd = channel_connect(in);
	int slot_fd = frame_fd < 0 ? -1 : slot_renew(in->slot);
	if (slot_fd < 0) {
		int saved = errno;
		close(out[0]);
		close(out[1]);
		if (frame_fd >= 0)
			close(frame_fd);
		channel_forget(in);
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
	if (spec->cgroup_fd >= 0)
		close(spec->cgroup_fd);
}

static int prepare(struct spawn_job *j, struct child_spec *spec)
{
	struct instance *in = container_of(j, struct instance, spawn_job);
	struct worker *w = in->worker;
	struct host *h = w->host;
	for (size_t i = 0; i < w->nlisteners; i++)
		w->listen_fds[i] = w->listeners[i].watch.fd;
	*spec = (struct child_spec){
		.listen_fds = w->listen_fds,
		.test = h->test ? h->test->request : NULL,
		.nlisten = (int)w->nlisteners,
		.conf = in->conf,
		.instance = in->index,
		.state_dir = w->state_dir,
		.host_pid = h->pid,
		/* Used only when the host forks it itself: what the copy must wipe. */
		.host_config = &h->cfg,
		.old_configs = h->old_configs,
		.nold = h->nold,
		.cgroup_fd = -1,
		.restarts = (int)in->restarts,
	};
	if (in->last_exit.reason != REASON_NONE) {
		exit_describe(&in->last_exit, in->last_exit_text, sizeof(in->last_exit_text));
		spec->last_exit = in->last_exit_text;
	}
	if (cgroup_instance_open(in, &spec->cgroup_fd) < 0)
		return -1;
	spec->cgroup_by_procs = in->cg_killed; /* still there after its kill: processes hold it */
	if (open_child_fds(in, &in->out.fd, spec) < 0) {
		int saved = errno;
		if (spec->cgroup_fd >= 0)
			close(spec->cgroup_fd);
		errno = saved;
		return -1;
	}
	spec->base_env = child_inherited_env(in->conf);
	if (in->conf->command)
		spec->notify_socket = h->notify_socket; /* opened by worker.c before it asked for the process */
	return 0;
}

static void release(struct spawn_job *j, struct child_spec *spec, bool sent)
{
	struct instance *in = container_of(j, struct instance, spawn_job);
	close_child_fds(spec);
	free((void *)spec->base_env);
	if (!sent) { /* prepared again when it is sent */
		close(in->out.fd);
		in->out.fd = -1;
		channel_forget(in);
	}
}

static void done(struct spawn_job *j, pid_t pid, int err)
{
	struct instance *in = container_of(j, struct instance, spawn_job);
	struct worker *w = in->worker;
	if (pid < 0) {
		if (in->out.fd >= 0)
			close(in->out.fd);
		in->out.fd = -1;
		channel_forget(in);
		cgroup_instance_kill(in); /* a spawner that failed mid-request may have cloned it there */
		cgroup_instance_forget(in);
		in->spawn_answer->failed(in, err);
		return;
	}
	/* The host must never block on a worker: the read end is non-blocking. */
	if (fcntl(in->out.fd, F_SETFL, O_NONBLOCK) < 0)
		host_log(HOST_ERR, "[%s:%d] unable to make its pipe non-blocking: %s", w->conf->name, in->index,
			 strerror(errno));
	/* No setpgid(pid, pid) here: the child makes its own session (and group)
	 * first thing, which a group leader cannot. Until it has, the host's
	 * kills also name the process itself. */
	pipe_attach(in, in->out.fd);
	in->spawn_answer->spawned(in, pid);
}

/* The spawner died before answering: what it may have cloned into the
 * instance's cgroup goes before the host forks the process itself. */
static void orphaned(struct spawn_job *j)
{
	cgroup_instance_kill(container_of(j, struct instance, spawn_job));
}

void spawn_process(struct instance *in, const struct spawn_answer *answer)
{
	in->spawn_answer = answer;
	in->spawn_job = (struct spawn_job){.prepare = prepare, .release = release, .done = done, .orphaned = orphaned};
	in->out.fd = -1;
	spawner_submit(in->worker->host, &in->spawn_job);
}

/* Worker processes that hold a pipe now: each costs the host one descriptor. */
static size_t processes_with_pipes(const struct host *h, size_t *all)
{
	size_t n = 0;
	*all = 0;
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			n += h->workers[i]->inst[k]->out.fd >= 0;
			++*all;
		}
	return n;
}

/* At EMFILE about every descriptor below the limit is taken: what the pipes
 * do not hold is the host's own (its files, sockets, the open logs). */
const char *spawn_out_of_descriptors(struct host *h)
{
	static char detail[96];
	if (detail[0])
		return detail;
	struct rlimit rl;
	unsigned long long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long)rl.rlim_cur : 0;
	size_t all, fit = processes_with_pipes(h, &all);
	unsigned long long own = limit > fit ? limit - fit : 0;
	snprintf(detail, sizeof(detail), "out of file descriptors (RLIMIT_NOFILE %llu)", limit);
	host_log(HOST_ERR,
		 "unable to start a process: %s: out of file descriptors: RLIMIT_NOFILE is %llu, the host holds one "
		 "per worker process and about %llu of its own, so %zu of the %zu worker processes can run; the others "
		 "wait in backoff and start when descriptors are free. Raise the limit to at least %llu: LimitNOFILE= "
		 "in ward's systemd unit, or ulimit -n before `ward run`",
		 strerror(EMFILE), limit, own, fit, all, own + all + 16);
	return detail;
}
