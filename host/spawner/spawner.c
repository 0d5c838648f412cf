/*
 * spawner.c - the helper process that forks workers (and plugin probes)
 * for the host: the spawner's own loop, and the host's side of asking it.
 *
 * fork() costs in proportion to what the forking process holds: a page table
 * entry for every page it touched, and a descriptor table that the child
 * copies and must then close. A host running thousands of workers holds
 * thousands of pipes and megabytes of bookkeeping, so forking from it would
 * make every start slower than the last (quadratic boot). The spawner is
 * forked first thing, before ward reads its configuration; it keeps nothing
 * but its request socket, so forking from it costs the same at the 10,000th
 * worker as at the first. And since it never held a configuration, no worker
 * starts with another worker's secrets in its memory. Right after the fork
 * it executes ward again, with an empty environment: nothing of the host's
 * memory, not even the environment strings on the initial stack, is in what
 * it forks.
 *
 * A request carries everything the process needs: the worker's settings
 * (encoded below), the host's variables it inherits and, as descriptors, its
 * stdout pipe, its runtime socket, its progress slot's memory and its listen
 * sockets. The host never waits for an answer: it sends without blocking,
 * queues what the socket does not take yet, reads the answers (one per
 * request, in order) from its loop, and gives up on a spawner that does not
 * answer within REPLY_TIMEOUT_MS: it kills it and forks processes itself.
 * With cgroups a request also hands over the instance's cgroup, which
 * clone3(CLONE_INTO_CGROUP) starts the process in, and the cgroup of every
 * worker: if the host dies (even by SIGKILL), the spawner kills that whole
 * cgroup before it exits, so no worker process outlives the host, whatever
 * it did with signals, sessions or double forks.
 *
 * It forks with CLONE_PARENT, so the worker is the host's child exactly as if
 * the host had forked it: the host reaps it, signals it, and is the parent its
 * parent-death signal watches. The flags are those glibc's own fork uses
 * (the kernel writes the child's tid into glibc's thread descriptor), so plugin
 * code sees an ordinary forked process.
 */
#define _GNU_SOURCE
#include "spawner/spawner.h"
#include "daemon/cgroup.h"
#include "worker/runtime.h"
#include "daemon/host.h"
#include "daemon/reaper.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_TIMEOUT_MS 10000 /* a fork of a small process under heavy load, with room to spare */
#define MAX_FDS 250            /* below the kernel's SCM_MAX_FD (253) */
#define FIXED_FDS 3            /* stdout pipe, runtime channel, slot memory; then listen sockets */
#define PROBE_FDS 1            /* a probe's: its verdict pipe */
#define REQUEST_FD 3
#define REQUEST_MAX (128 * 1024) /* a worker's settings, encoded; larger ones are forked by the host */

/* A request: this, then NUL-terminated strings: name, plugin, state_dir,
 * user, group, workdir (each present only when its bit is in `present`),
 * then nenv env entries, nkeys plugin keys and nbase variables of the
 * host's environment. The descriptors: FIXED_FDS and nlisten sockets, or
 * for a probe (probe.c) PROBE_FDS. */
struct request {
	int32_t instance, nlisten;
	uint64_t interval_ms;
	struct limit_conf limits[4]; /* nofile, memory, cpu, core */
	int64_t nice;
	uint32_t nenv, nkeys, nbase;
	uint8_t inherit_env, nice_set, has_test, present, probe;
	struct test_request test;
	pid_t host_pid;
	uint8_t has_cgroup; /* CGROUP_FDS more descriptors after the listen sockets */
};

#define CGROUP_FDS 2 /* the instance's cgroup, the cgroup of every worker */

enum { HAS_USER = 1, HAS_GROUP = 2, HAS_WORKDIR = 4 };

struct reply {
	int32_t pid; /* > 0, or 0 on failure */
	int32_t err; /* errno of the failure */
};

/* ---- in the spawner ---- */

/* What glibc's fork() hands the kernel, read back from this process: where the
 * thread descriptor keeps its tid, and the robust-mutex list head. */
static struct {
	void *tid_address;
	void *robust_head;
	size_t robust_len;
} glibc_fork;

/* The cgroup of every worker, kept from the first request that names it. */
static int workers_cgroup = -1;
static pid_t served_host;

/* The parent-death signal: if the host is gone (not a stray signal from
 * someone else), every worker dies with it, then the spawner. */
static void on_host_death(int sig)
{
	(void)sig;
	if (getppid() == served_host)
		return;
	int fd = workers_cgroup >= 0 ? openat(workers_cgroup, "cgroup.kill", O_WRONLY | O_CLOEXEC) : -1;
	if (fd >= 0 && write(fd, "1", 1) < 0)
		_exit(1);
	_exit(0);
}

/* Straight into the instance's cgroup when there is one (cgroup_fd >= 0):
 * *in_cgroup says, in the child, whether that worked; if clone3 refused it
 * (a kernel before 5.7), the child moves itself (child.c). */
static pid_t clone_as_host_child(int cgroup_fd, bool *in_cgroup)
{
	uint64_t flags = CLONE_PARENT | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
	struct clone_args args = {.flags = flags, .child_tid = (uint64_t)(uintptr_t)glibc_fork.tid_address};
	long pid = -1;
	*in_cgroup = false;
	if (cgroup_fd >= 0) {
		args.flags = flags | CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
		pid = syscall(SYS_clone3, &args, sizeof(args));
		*in_cgroup = pid >= 0;
		args.flags = flags;
		args.cgroup = 0;
	}
	if (cgroup_fd < 0 || (pid < 0 && errno != EAGAIN && errno != ENOMEM))
		pid = syscall(SYS_clone3, &args, sizeof(args));
#if defined(__x86_64__)
	/* clone3 refused (ENOSYS: e.g. container seccomp profiles): the old call. */
	if (pid < 0 && errno == ENOSYS)
		pid = syscall(SYS_clone, flags, NULL, NULL, glibc_fork.tid_address, 0);
#endif
	if (pid == 0) /* what glibc's fork does in the child: a fresh robust list */
		syscall(SYS_set_robust_list, glibc_fork.robust_head, glibc_fork.robust_len);
	return (pid_t)pid;
}

static int send_reply(int sock, pid_t pid, int err)
{
	struct reply r = {.pid = pid > 0 ? pid : 0, .err = err};
	return send(sock, &r, sizeof(r), MSG_NOSIGNAL) == (ssize_t)sizeof(r) ? 0 : -1;
}

/* Receives one request and its descriptors into buf. Its length, 0 at the
 * host's end, -1 on error. */
static ssize_t receive_request(int sock, char *buf, size_t size, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	ssize_t n;
	*nfds = 0;
	while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			*nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), (size_t)*nfds * sizeof(int));
		}
	return (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? -1 : n;
}

/* Takes the next string of [*at, end); NULL when none is left. */
static char *next_string(char **at, char *end)
{
	char *s = *at, *nul = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
	if (!nul)
		return NULL;
	*at = nul + 1;
	return s;
}

static bool decode_strings(char **at, char *end, struct strv *sv, uint32_t n)
{
	if ((size_t)n > (size_t)(end - *at)) /* each string takes a byte at least */
		return false;
	sv->v = xcalloc((size_t)n + 1, sizeof(char *));
	sv->n = sv->cap = n;
	for (uint32_t i = 0; i < n; i++)
		if (!(sv->v[i] = next_string(at, end)))
			return false;
	return true;
}

/* Rebuilds the spec from a request of len bytes in buf (strings stay in buf). */
static bool decode(char *buf, size_t len, const int *fds, int nfds, struct worker_conf *conf,
		   struct strv *base_env, struct child_spec *spec, struct test_request *test)
{
	struct request r;
	if (len < sizeof(r))
		return false;
	memcpy(&r, buf, sizeof(r));
	char *at = buf + sizeof(r), *end = buf + len;
	int ncgroup = r.has_cgroup && !r.probe ? CGROUP_FDS : 0;
	if (r.nlisten < 0 || nfds != (r.probe ? PROBE_FDS : FIXED_FDS + r.nlisten + ncgroup))
		return false;
	*conf = (struct worker_conf){.interval_ms = r.interval_ms, .inherit_env = r.inherit_env,
				     .nice_set = r.nice_set, .nice = (long)r.nice,
				     .limit_nofile = r.limits[0], .limit_memory = r.limits[1],
				     .limit_cpu = r.limits[2], .limit_core = r.limits[3]};
	conf->name = next_string(&at, end);
	conf->plugin = next_string(&at, end);
	const char *state_dir = next_string(&at, end);
	if (r.present & HAS_USER)
		conf->user = next_string(&at, end);
	if (r.present & HAS_GROUP)
		conf->group = next_string(&at, end);
	if (r.present & HAS_WORKDIR)
		conf->workdir = next_string(&at, end);
	if (!conf->name || !conf->plugin || !state_dir || ((r.present & HAS_USER) && !conf->user) ||
	    ((r.present & HAS_GROUP) && !conf->group) || ((r.present & HAS_WORKDIR) && !conf->workdir) ||
	    !decode_strings(&at, end, &conf->env, r.nenv) || !decode_strings(&at, end, &conf->plugin_keys, r.nkeys) ||
	    !decode_strings(&at, end, base_env, r.nbase))
		return false;
	*test = r.test;
	*spec = (struct child_spec){.conf = conf, .instance = r.instance, .state_dir = state_dir,
				    .out_fd = fds[0], .frame_fd = fds[1], .slot_fd = fds[2],
				    .test = r.has_test ? test : NULL,
				    .listen_fds = fds + FIXED_FDS, .nlisten = r.nlisten, .host_pid = r.host_pid,
				    .base_env = (const char *const *)base_env->v,
				    .cgroup_fd = ncgroup ? fds[FIXED_FDS + r.nlisten] : -1};
	if (r.probe)
		*spec = (struct child_spec){.conf = conf, .state_dir = state_dir, .probe = true, .out_fd = -1,
					    .frame_fd = fds[0], .slot_fd = -1, .host_pid = r.host_pid,
					    .base_env = (const char *const *)base_env->v, .cgroup_fd = -1};
	if (ncgroup && workers_cgroup < 0)
		workers_cgroup = fcntl(fds[FIXED_FDS + r.nlisten + 1], F_DUPFD_CLOEXEC, REQUEST_FD + 1);
	return true;
}

/* The spawner's argument strings, which `ps` shows as a process's command
 * line: each worker writes its own name over its copy. */
static struct {
	char *at;
	size_t len;
} args_area;

static void name_worker(const struct child_spec *spec, const char *worker_comm)
{
	if (!args_area.at)
		return;
	memset(args_area.at, 0, args_area.len);
	if (spec->probe)
		snprintf(args_area.at, args_area.len, "%s probe %s", worker_comm, spec->conf->plugin);
	else
		snprintf(args_area.at, args_area.len, "%s worker %s:%d", worker_comm, spec->conf->name, spec->instance);
}

static void serve(int sock, const char *worker_comm)
{
	static char buf[REQUEST_MAX];
	int fds[MAX_FDS], nfds;
	ssize_t len;
	while ((len = receive_request(sock, buf, sizeof(buf), fds, &nfds)) != 0) {
		struct worker_conf conf = {0};
		struct strv base_env = {0};
		struct child_spec spec;
		struct test_request test;
		bool whole = len > 0 && decode(buf, (size_t)len, fds, nfds, &conf, &base_env, &spec, &test);
		pid_t pid = -1;
		if (whole) {
			pid = clone_as_host_child(spec.cgroup_fd, &spec.in_cgroup);
			if (pid == 0) {
				prctl(PR_SET_NAME, worker_comm);
				name_worker(&spec, worker_comm);
				child_main(&spec);
			}
		}
		int err = whole ? errno : EPROTO;
		/* The next worker must not find this one's settings (its secrets) here. */
		if (len > 0)
			explicit_bzero(buf, (size_t)len);
		free(conf.env.v);
		free(conf.plugin_keys.v);
		free(base_env.v);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (send_reply(sock, pid, err) < 0)
			break;
	}
	/* The host closed its end. Either it SIGKILLs this process next (it
	 * exits, or no longer wants a spawner: retire), or it is dying and its
	 * death signal, which takes every worker down, comes next: a dying
	 * process's descriptors are closed before its children are told. */
	for (;;)
		pause();
}

/* The spawner's life once it holds nothing of the host's: say whether it
 * can serve (and whether it had to stay a copy of the host: exec_errno),
 * then serve. */
static noreturn void spawner_main(pid_t host_pid, const char *worker_comm, int exec_errno)
{
	int sock = REQUEST_FD;
	/* The handler does not survive the exec: installed here. The mask and
	 * the parent-death signal did (become_spawner). */
	served_host = host_pid;
	struct sigaction sa = {.sa_handler = on_host_death, .sa_flags = SA_RESTART};
	sigfillset(&sa.sa_mask);
	if (sigaction(HOST_DEATH_SIGNAL, &sa, NULL) < 0 || getppid() != host_pid)
		_exit(1);
	prctl(PR_SET_NAME, "ward-spawner");
	size_t len = 0;
	int err = 0;
	errno = 0;
	if (prctl(PR_GET_TID_ADDRESS, &glibc_fork.tid_address) < 0 || !glibc_fork.tid_address)
		err = errno ? errno : ENOSYS;
	else if (syscall(SYS_get_robust_list, 0, &glibc_fork.robust_head, &len) < 0)
		err = errno;
	glibc_fork.robust_len = len;
	if (send_reply(sock, err ? 0 : getpid(), err ? err : exec_errno) < 0 || err)
		_exit(1);
	serve(sock, worker_comm);
	_exit(0);
}

/* The spawner is this program executed again, so that nothing of the host
 * is in its memory: neither its heap nor the environment strings on its
 * initial stack, which every process it forks would inherit. argv says it,
 * the environment is empty, the request socket is REQUEST_FD. */
#define SPAWNER_ARGV0 "ward-spawner"
#define SPAWNER_FLAG "--serve-host-pid"
#define ROOM_FOR_NAMES "                                                               " /* argv[4] */

/* Runs before main() in every program that links the host (ward, and test
 * programs using the harness): glibc hands ELF constructors argc, argv and
 * envp. Only a spawner started by become_spawner() matches. */
__attribute__((constructor)) static void serve_if_spawner(int argc, char **argv, char **envp)
{
	int type = 0;
	socklen_t tlen = sizeof(type);
	if (argc != 5 || strcmp(argv[0], SPAWNER_ARGV0) != 0 || strcmp(argv[1], SPAWNER_FLAG) != 0 || !envp ||
	    envp[0] || getsockopt(REQUEST_FD, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET)
		return;
	static char comm[16]; /* argv[3] is overwritten in each worker */
	snprintf(comm, sizeof(comm), "%s", argv[3]);
	args_area.at = argv[0];
	args_area.len = (size_t)(argv[4] + strlen(argv[4]) - argv[0]);
	spawner_main((pid_t)atoi(argv[2]), comm, 0);
}

/* In the host's fresh fork: ties itself to the host, keeps only the request
 * socket, and executes the program again: the very file the host runs, even
 * if it was replaced on disk since. (Opened, not executed by its /proc
 * name: valgrind, which would be executed instead, redirects the open.) */
static noreturn void become_spawner(int sock, pid_t host_pid)
{
	/* Only the host ends it (SIGKILL, or its parent-death signal): not a
	 * Ctrl-C sent to the terminal's process group. Workers reset the mask.
	 * Both survive the exec. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, HOST_DEATH_SIGNAL);
	sigprocmask(SIG_BLOCK, &all, NULL);
	if (prctl(PR_SET_PDEATHSIG, HOST_DEATH_SIGNAL) < 0 || getppid() != host_pid)
		_exit(1);
	int moved = sock == REQUEST_FD ? fcntl(sock, F_SETFD, 0) : dup2(sock, REQUEST_FD);
	if (moved < 0 || close_range(REQUEST_FD + 1, ~0U, 0) < 0) {
		send_reply(sock, 0, errno);
		_exit(1);
	}
	char comm[16] = "", pid[16];
	prctl(PR_GET_NAME, comm);
	snprintf(pid, sizeof(pid), "%d", (int)host_pid);
	char *argv[] = {SPAWNER_ARGV0, SPAWNER_FLAG, pid, comm, ROOM_FOR_NAMES, NULL};
	char *envp[] = {NULL};
	int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe >= 0)
		execveat(exe, "", argv, envp, AT_EMPTY_PATH);
	/* No /proc, or no exec allowed: serve from this copy of the host, with
	 * the environment strings it inherited wiped at least. */
	int err = errno;
	child_wipe_initial_environment();
	spawner_main(host_pid, comm, err);
}

/* ---- in the host ---- */

/* Forks the job's process from the host itself, now: correct, only costlier
 * as the host grows; the child starts as a copy of the host and wipes what
 * is not its own (child.c, from spec->host_config). */
static void fork_here(struct spawn_job *j)
{
	struct child_spec spec = {0};
	if (j->prepare(j, &spec) < 0) {
		j->done(j, -1, errno);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		child_main(&spec);
	int err = errno;
	j->release(j, &spec, pid > 0);
	j->done(j, pid > 0 ? pid : -1, err);
}

/* Takes every job off the queue, in order. */
static struct spawn_job *take_queue(struct spawner *s)
{
	struct spawn_job *all = s->head;
	s->head = s->tail = s->unsent = NULL;
	s->in_flight = 0;
	timer_cancel(s->host->loop, &s->deadline);
	return all;
}

static void retire(struct host *h)
{
	struct spawner *s = &h->spawner;
	if (s->watch.fd >= 0 && h->loop)
		loop_close(h->loop, &s->watch);
	else if (s->watch.fd >= 0)
		close(s->watch.fd);
	if (s->pid > 0)
		kill(s->pid, SIGKILL); /* it waits for the host's death otherwise (serve); reaped like any child */
	s->watch.fd = -1;
	s->pid = 0;
}

/* From now on the host forks workers itself: correct, only slower at scale.
 * What was waiting for the spawner is forked here, in order (`first`, when
 * given, before the rest). The processes it may have forked without saying
 * so are children of the host that no instance knows: killed first. */
static void disable_with(struct host *h, const char *what, const char *why, struct spawn_job *first)
{
	struct spawner *s = &h->spawner;
	bool had_requests = s->in_flight > 0 || first;
	int64_t sent_ns = s->in_flight ? s->head->deadline - (int64_t)REPLY_TIMEOUT_MS * NS_PER_MS : mono_ns();
	size_t n = 0;
	for (struct spawn_job *j = s->head; j && n < s->in_flight; j = j->next, n++)
		if (j->orphaned) /* it may have made the process without saying so */
			j->orphaned(j);
	struct spawn_job *left = s->host ? take_queue(s) : NULL;
	if (first) {
		first->next = left;
		left = first;
	}
	retire(h);
	s->disabled = true;
	host_log(HOST_WARN, "%s: %s; the host forks workers itself from now on (starts slow down with thousands of workers)",
		 what, why);
	if (had_requests)
		host_kill_strays(h, sent_ns);
	while (left) {
		struct spawn_job *j = left;
		left = j->next;
		fork_here(j);
	}
	if (s->recheck_children) {
		s->recheck_children = false;
		host_recheck_children(h);
	}
}

static void disable(struct host *h, const char *what, const char *why)
{
	disable_with(h, what, why, NULL);
}

/* The spawner failed the host: it is killed and replaced by the host itself. */
static void give_up_on(struct host *h, const char *why)
{
	if (h->spawner.pid > 0)
		kill(h->spawner.pid, SIGKILL);
	disable(h, "the spawner process failed", why);
}

/* Waits for the spawner's first reply, within REPLY_TIMEOUT_MS (at boot,
 * before the loop runs). 0, or -1 with errno. */
static int await_reply(struct spawner *s, struct reply *r)
{
	struct pollfd p = {.fd = s->watch.fd, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		return -1;
	ssize_t got = recv(s->watch.fd, r, sizeof(*r), 0);
	if (got == (ssize_t)sizeof(*r))
		return 0;
	errno = got < 0 ? errno : EPIPE;
	return -1;
}

void spawner_open(struct host *h)
{
	struct spawner *s = &h->spawner;
	int sv[2];
	pid_t pid = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0 && (pid = fork()) < 0) {
		int saved = errno;
		close(sv[0]);
		close(sv[1]);
		errno = saved;
	}
	if (pid < 0) {
		disable(h, "unable to start the spawner process", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		become_spawner(sv[1], h->pid);
	}
	close(sv[1]);
	*s = (struct spawner){.pid = pid, .watch = {.fd = sv[0]}};
	struct reply hello = {0};
	if (await_reply(s, &hello) < 0 || hello.pid != pid || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		const char *why = strerror(hello.pid == 0 && hello.err ? hello.err : errno);
		kill(pid, SIGKILL);
		disable(h, "the spawner process cannot fork workers here", why);
	} else if (hello.err) {
		host_log(HOST_WARN, "unable to execute ward again for the spawner process (%s): it forks workers from a copy of the host, whose environment strings it wiped",
			 strerror(hello.err));
	}
}

/* Appends s and its NUL to buf; false when it does not fit. */
static bool put_string(char *buf, size_t size, size_t *at, const char *s)
{
	size_t len = strlen(s) + 1;
	if (len > size - *at)
		return false;
	memcpy(buf + *at, s, len);
	*at += len;
	return true;
}

/* The request for spec into buf: its length, or 0 when it does not fit. */
static size_t encode(const struct child_spec *spec, char *buf, size_t size)
{
	const struct worker_conf *c = spec->conf;
	struct request r;
	memset(&r, 0, sizeof(r)); /* padding too: every byte sent is defined */
	r.instance = spec->instance;
	r.nlisten = spec->nlisten;
	r.interval_ms = c->interval_ms;
	r.limits[0] = c->limit_nofile;
	r.limits[1] = c->limit_memory;
	r.limits[2] = c->limit_cpu;
	r.limits[3] = c->limit_core;
	r.nice = c->nice;
	r.nenv = (uint32_t)c->env.n;
	r.nkeys = (uint32_t)c->plugin_keys.n;
	while (spec->base_env && spec->base_env[r.nbase])
		r.nbase++;
	r.inherit_env = c->inherit_env;
	r.nice_set = c->nice_set;
	r.present = (c->user ? HAS_USER : 0) | (c->group ? HAS_GROUP : 0) | (c->workdir ? HAS_WORKDIR : 0);
	r.has_test = spec->test != NULL;
	r.probe = spec->probe;
	if (spec->test)
		r.test = *spec->test;
	r.host_pid = spec->host_pid;
	r.has_cgroup = !spec->probe && spec->cgroup_fd >= 0;
	memcpy(buf, &r, sizeof(r));
	size_t at = sizeof(r);
	bool fits = put_string(buf, size, &at, c->name) && put_string(buf, size, &at, c->plugin) &&
		    put_string(buf, size, &at, spec->state_dir) &&
		    (!c->user || put_string(buf, size, &at, c->user)) &&
		    (!c->group || put_string(buf, size, &at, c->group)) &&
		    (!c->workdir || put_string(buf, size, &at, c->workdir));
	for (size_t i = 0; fits && i < c->env.n; i++)
		fits = put_string(buf, size, &at, c->env.v[i]);
	for (size_t i = 0; fits && i < c->plugin_keys.n; i++)
		fits = put_string(buf, size, &at, c->plugin_keys.v[i]);
	for (uint32_t i = 0; fits && i < r.nbase; i++)
		fits = put_string(buf, size, &at, spec->base_env[i]);
	return fits ? at : 0;
}

/* The descriptors a request hands over, in order; how many. */
static int request_fds(const struct host *h, const struct child_spec *spec, int *fds)
{
	if (spec->probe) {
		fds[0] = spec->frame_fd;
		return PROBE_FDS;
	}
	fds[0] = spec->out_fd;
	fds[1] = spec->frame_fd;
	fds[2] = spec->slot_fd;
	for (int i = 0; i < spec->nlisten; i++)
		fds[FIXED_FDS + i] = spec->listen_fds[i];
	if (spec->cgroup_fd < 0)
		return FIXED_FDS + spec->nlisten;
	fds[FIXED_FDS + spec->nlisten] = spec->cgroup_fd;
	fds[FIXED_FDS + spec->nlisten + 1] = h->cgroups.workers_fd;
	return FIXED_FDS + spec->nlisten + CGROUP_FDS;
}

static int send_request(struct spawner *s, const struct child_spec *spec, const char *buf, size_t len)
{
	int fds[MAX_FDS];
	int nfds = request_fds(s->host, spec, fds);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
	} ctl;
	memset(ctl.buf, 0, CMSG_SPACE((size_t)nfds * sizeof(int)));
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			   .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	ssize_t n;
	while ((n = sendmsg(s->watch.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

/* The job at the head of the queue is answered. */
static struct spawn_job *pop_answered(struct spawner *s)
{
	struct spawn_job *j = s->head;
	s->head = j->next;
	if (!s->head)
		s->tail = NULL;
	s->in_flight--;
	if (s->in_flight)
		timer_arm(s->host->loop, &s->deadline, s->head->deadline);
	else
		timer_cancel(s->host->loop, &s->deadline);
	return j;
}

/* The spawner's answers received so far. Then, once none is awaited, what
 * had to wait for them (a child nobody knew yet) is looked at again. */
static void read_answers(struct host *h)
{
	struct spawner *s = &h->spawner;
	struct reply r;
	ssize_t got;
	while (s->in_flight && (got = recv(s->watch.fd, &r, sizeof(r), MSG_DONTWAIT)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			break;
		if (got != (ssize_t)sizeof(r)) {
			give_up_on(h, got < 0 ? strerror(errno) : "it sent a malformed answer");
			return;
		}
		struct spawn_job *j = pop_answered(s);
		if (r.pid <= 0 && r.err != EAGAIN && r.err != ENOMEM) {
			/* Not short of resources: this kernel or sandbox refuses the clone. */
			disable_with(h, "the spawner process cannot fork workers here", strerror(r.err), j);
			return;
		}
		j->done(j, r.pid > 0 ? r.pid : -1, r.err);
	}
	if (!s->in_flight && s->recheck_children) {
		s->recheck_children = false;
		host_recheck_children(h);
	}
}

/* Sends one request: 0 sent; 1 the socket is full (try when writable);
 * 2 it cannot go through the spawner (too big): fork it here; -1 the
 * spawner is gone (errno). */
static int send_job(struct spawner *s, struct spawn_job *j, int *prepare_errno)
{
	static char buf[REQUEST_MAX];
	struct child_spec spec = {0};
	*prepare_errno = 0;
	if (j->prepare(j, &spec) < 0) {
		*prepare_errno = errno;
		return 0;
	}
	size_t len = FIXED_FDS + spec.nlisten + CGROUP_FDS > MAX_FDS ? 0 : encode(&spec, buf, sizeof(buf));
	int sent = len ? send_request(s, &spec, buf, len) : -1;
	int err = len ? errno : EMSGSIZE;
	if (len)
		explicit_bzero(buf, len); /* the worker's secrets: not for a process the host forks later */
	j->release(j, &spec, sent == 0);
	if (sent == 0)
		return 0;
	if (err == EAGAIN || err == ENOBUFS)
		return 1;
	if (err == EMSGSIZE || err == ETOOMANYREFS)
		return 2;
	errno = err;
	return -1;
}

/* Takes the next unsent job off the queue (it does not go through the spawner). */
static void unqueue_unsent(struct spawner *s, struct spawn_job *j)
{
	struct spawn_job **p = &s->head, *prev = NULL;
	while (*p != j) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = j->next;
	if (s->tail == j)
		s->tail = prev;
	s->unsent = j->next;
}

/* Sends what is queued, as long as the socket takes it. */
static void send_queued(struct host *h)
{
	struct spawner *s = &h->spawner;
	int rc = 0;
	while (s->unsent && rc != 1) {
		struct spawn_job *j = s->unsent;
		int failed;
		rc = send_job(s, j, &failed);
		if (rc < 0) {
			char why[128];
			snprintf(why, sizeof(why), "it does not take requests (%s)", strerror(errno));
			give_up_on(h, why);
			return;
		}
		if (rc == 2 || (rc == 0 && failed)) {
			unqueue_unsent(s, j);
			if (rc == 2)
				fork_here(j);
			else
				j->done(j, -1, failed);
			continue;
		}
		if (rc == 0) {
			j->deadline = mono_ns() + (int64_t)REPLY_TIMEOUT_MS * NS_PER_MS;
			if (s->in_flight++ == 0)
				timer_arm(h->loop, &s->deadline, j->deadline);
			s->unsent = j->next;
		}
	}
	loop_modify(h->loop, &s->watch, s->unsent ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

static void on_spawner(struct watch *w, uint32_t events)
{
	struct host *h = container_of(w, struct spawner, watch)->host;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		read_answers(h);
	if (h->spawner.watch.fd >= 0 && (events & (EPOLLERR | EPOLLHUP)))
		loop_unwatch(h->loop, w); /* it died: said when it is reaped, which comes next */
	else if (h->spawner.watch.fd >= 0 && h->spawner.unsent)
		send_queued(h);
}

static void on_deadline(struct timer *t)
{
	struct host *h = container_of(t, struct spawner, deadline)->host;
	char why[96];
	snprintf(why, sizeof(why), "it did not answer within %d s", REPLY_TIMEOUT_MS / 1000);
	give_up_on(h, why);
}

void spawner_attach(struct host *h)
{
	struct spawner *s = &h->spawner;
	s->host = h;
	s->watch.fn = on_spawner;
	s->deadline.fn = on_deadline;
	if (s->watch.fd >= 0 && loop_watch(h->loop, &s->watch, EPOLLIN) < 0) {
		kill(s->pid, SIGKILL);
		disable(h, "unable to watch the spawner process", strerror(errno));
	}
}

void spawner_submit(struct host *h, struct spawn_job *j)
{
	struct spawner *s = &h->spawner;
	if (s->disabled || !s->host) {
		fork_here(j);
		return;
	}
	j->next = NULL;
	if (s->tail)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	if (!s->unsent)
		s->unsent = j;
	send_queued(h);
}

bool spawner_unanswered(struct host *h)
{
	if (h->spawner.in_flight)
		read_answers(h);
	return h->spawner.in_flight > 0;
}

void spawner_recheck_children_later(struct host *h)
{
	h->spawner.recheck_children = true;
}

bool spawner_is(const struct host *h, pid_t pid)
{
	return pid > 0 && pid == h->spawner.pid;
}

void spawner_reaped(struct host *h, pid_t pid, int wait_status)
{
	if (!spawner_is(h, pid))
		return;
	read_answers(h); /* what it said before it died still counts */
	char why[64];
	if (WIFSIGNALED(wait_status))
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(wait_status));
	else
		snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(wait_status));
	h->spawner.pid = 0; /* reaped: nothing left to signal */
	disable(h, "the spawner process died", why);
}

void spawner_close(struct host *h)
{
	pid_t pid = h->spawner.pid;
	if (h->spawner.host)
		take_queue(&h->spawner); /* the host is ending: nothing more is started */
	retire(h);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}
