/*
 * spawner.c - the helper process that forks workers for the host.
 *
 * fork() costs in proportion to what the forking process holds: a page table
 * entry for every page it touched, and a descriptor table that the child
 * copies and must then close. A host running thousands of workers holds
 * thousands of pipes and megabytes of bookkeeping, so forking from it would
 * make every start slower than the last (quadratic boot). The spawner is
 * forked first thing, before ward reads its configuration; it keeps nothing
 * but its request socket, so forking from it costs the same at the 10,000th
 * worker as at the first. And since it never held a configuration, no worker
 * starts with another worker's secrets in its memory.
 *
 * A request carries everything the process needs: the worker's settings
 * (encoded below) and, as descriptors, its stdout pipe, its runtime channel,
 * its progress slot's memory and its listen sockets, and with cgroups its
 * instance's cgroup, which clone3(CLONE_INTO_CGROUP) starts it in, and the
 * cgroup of every worker: if the host dies (even by SIGKILL), the spawner
 * kills that whole cgroup before it exits, so no worker process outlives the
 * host, whatever it did with signals, sessions or double forks.
 *
 * It forks with CLONE_PARENT, so the worker is the host's child exactly as if
 * the host had forked it: the host reaps it, signals it, and is the parent its
 * parent-death signal watches. The flags are those glibc's own fork uses
 * (the kernel writes the child's tid into glibc's thread descriptor), so plugin
 * code sees an ordinary forked process.
 */
#define _GNU_SOURCE
#include "spawner.h"
#include "runtime.h"
#include "worker.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
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
#define REQUEST_FD 3
#define REQUEST_MAX (128 * 1024) /* a worker's settings, encoded; larger ones are forked by the host */

/* A request: this, then NUL-terminated strings: name, plugin, state_dir,
 * user, group, workdir (each present only when its bit is in `present`),
 * then nenv env entries and nkeys plugin keys. */
struct request {
	int32_t instance, nlisten;
	int64_t slot_offset;
	uint64_t interval_ms;
	struct limit_conf limits[4]; /* nofile, memory, cpu, core */
	int64_t nice;
	uint32_t nenv, nkeys;
	uint8_t inherit_env, nice_set, has_test, present;
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
		   struct child_spec *spec, struct test_request *test)
{
	struct request r;
	if (len < sizeof(r))
		return false;
	memcpy(&r, buf, sizeof(r));
	char *at = buf + sizeof(r), *end = buf + len;
	int ncgroup = r.has_cgroup ? CGROUP_FDS : 0;
	if (r.nlisten < 0 || nfds != FIXED_FDS + r.nlisten + ncgroup)
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
	    !decode_strings(&at, end, &conf->env, r.nenv) || !decode_strings(&at, end, &conf->plugin_keys, r.nkeys))
		return false;
	*test = r.test;
	*spec = (struct child_spec){.conf = conf, .instance = r.instance, .state_dir = state_dir,
				    .out_fd = fds[0], .frame_fd = fds[1], .slot_fd = fds[2],
				    .slot_offset = (off_t)r.slot_offset, .test = r.has_test ? test : NULL,
				    .listen_fds = fds + FIXED_FDS, .nlisten = r.nlisten, .host_pid = r.host_pid,
				    .cgroup_fd = ncgroup ? fds[FIXED_FDS + r.nlisten] : -1};
	if (ncgroup && workers_cgroup < 0)
		workers_cgroup = fcntl(fds[FIXED_FDS + r.nlisten + 1], F_DUPFD_CLOEXEC, REQUEST_FD + 1);
	return true;
}

static void serve(int sock, const char *worker_comm)
{
	static char buf[REQUEST_MAX];
	int fds[MAX_FDS], nfds;
	ssize_t len;
	while ((len = receive_request(sock, buf, sizeof(buf), fds, &nfds)) != 0) {
		struct worker_conf conf = {0};
		struct child_spec spec;
		struct test_request test;
		bool whole = len > 0 && decode(buf, (size_t)len, fds, nfds, &conf, &spec, &test);
		pid_t pid = -1;
		if (whole) {
			pid = clone_as_host_child(spec.cgroup_fd, &spec.in_cgroup);
			if (pid == 0) {
				prctl(PR_SET_NAME, worker_comm);
				child_main(&spec);
			}
		}
		int err = whole ? errno : EPROTO;
		/* The next worker must not find this one's settings (its secrets) here. */
		if (len > 0)
			explicit_bzero(buf, (size_t)len);
		free(conf.env.v);
		free(conf.plugin_keys.v);
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

/* The spawner's life: drop what the host holds, say whether it can serve, serve. */
static noreturn void spawner_main(int sock, pid_t host_pid)
{
	/* Only the host ends it (EOF, or its parent-death signal): not a Ctrl-C
	 * sent to the terminal's process group. Workers reset the mask. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, HOST_DEATH_SIGNAL);
	sigprocmask(SIG_BLOCK, &all, NULL);
	served_host = host_pid;
	struct sigaction sa = {.sa_handler = on_host_death, .sa_flags = SA_RESTART};
	sigfillset(&sa.sa_mask);
	if (sigaction(HOST_DEATH_SIGNAL, &sa, NULL) < 0 || prctl(PR_SET_PDEATHSIG, HOST_DEATH_SIGNAL) < 0 ||
	    getppid() != host_pid)
		_exit(1);
	if (dup2(sock, REQUEST_FD) < 0 || close_range(REQUEST_FD + 1, ~0U, 0) < 0) {
		send_reply(sock, 0, errno);
		_exit(1);
	}
	sock = REQUEST_FD;
	char comm[16] = "";
	prctl(PR_GET_NAME, comm);
	prctl(PR_SET_NAME, "ward-spawner");
	size_t len = 0;
	int err = 0;
	errno = 0;
	if (prctl(PR_GET_TID_ADDRESS, &glibc_fork.tid_address) < 0 || !glibc_fork.tid_address)
		err = errno ? errno : ENOSYS;
	else if (syscall(SYS_get_robust_list, 0, &glibc_fork.robust_head, &len) < 0)
		err = errno;
	glibc_fork.robust_len = len;
	if (send_reply(sock, err ? 0 : getpid(), err) < 0 || err)
		_exit(1);
	serve(sock, comm);
	_exit(0);
}

/* ---- in the host ---- */

static void retire(struct host *h)
{
	struct spawner *s = &h->spawner;
	if (s->sock >= 0)
		close(s->sock);
	if (s->pid > 0)
		kill(s->pid, SIGKILL); /* it waits for the host's death otherwise (serve); reaped like any child */
	s->sock = -1;
	s->pid = 0;
}

/* From now on the host forks workers itself: correct, only slower at scale. */
static void disable(struct host *h, const char *what, const char *why)
{
	retire(h);
	h->spawner.disabled = true;
	host_log(HOST_WARN, "%s: %s; the host forks workers itself from now on (starts slow down with thousands of workers)",
		 what, why);
}

/* Waits for the spawner's reply, within REPLY_TIMEOUT_MS. 0, or -1 with errno. */
static int await_reply(struct spawner *s, struct reply *r)
{
	struct pollfd p = {.fd = s->sock, .events = POLLIN};
	int n;
	while ((n = poll(&p, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (n == 0)
		errno = ETIMEDOUT;
	if (n <= 0)
		return -1;
	ssize_t got = recv(s->sock, r, sizeof(*r), 0);
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
		spawner_main(sv[1], h->pid);
	}
	close(sv[1]);
	*s = (struct spawner){.pid = pid, .sock = sv[0]};
	struct reply hello = {0};
	if (await_reply(s, &hello) < 0 || hello.pid != pid) {
		const char *why = strerror(hello.pid == 0 && hello.err ? hello.err : errno);
		kill(pid, SIGKILL);
		disable(h, "the spawner process cannot fork workers here", why);
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
	r.slot_offset = spec->slot_offset;
	r.interval_ms = c->interval_ms;
	r.limits[0] = c->limit_nofile;
	r.limits[1] = c->limit_memory;
	r.limits[2] = c->limit_cpu;
	r.limits[3] = c->limit_core;
	r.nice = c->nice;
	r.nenv = (uint32_t)c->env.n;
	r.nkeys = (uint32_t)c->plugin_keys.n;
	r.inherit_env = c->inherit_env;
	r.nice_set = c->nice_set;
	r.present = (c->user ? HAS_USER : 0) | (c->group ? HAS_GROUP : 0) | (c->workdir ? HAS_WORKDIR : 0);
	r.has_test = spec->test != NULL;
	if (spec->test)
		r.test = *spec->test;
	r.host_pid = spec->host_pid;
	r.has_cgroup = spec->cgroup_fd >= 0;
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
	return fits ? at : 0;
}

static int send_request(struct host *h, const struct child_spec *spec, const char *buf, size_t len)
{
	struct spawner *s = &h->spawner;
	int ncgroup = spec->cgroup_fd >= 0 ? CGROUP_FDS : 0;
	int nfds = FIXED_FDS + spec->nlisten + ncgroup;
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
	int fds[MAX_FDS] = {spec->out_fd, spec->frame_fd, spec->slot_fd};
	for (int i = 0; i < spec->nlisten; i++)
		fds[FIXED_FDS + i] = spec->listen_fds[i];
	if (ncgroup) {
		fds[FIXED_FDS + spec->nlisten] = spec->cgroup_fd;
		fds[FIXED_FDS + spec->nlisten + 1] = h->cgroups.workers_fd;
	}
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	ssize_t n;
	while ((n = sendmsg(s->sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)len ? 0 : -1;
}

int spawner_start(struct host *h, const struct child_spec *spec, pid_t *pid)
{
	static char buf[REQUEST_MAX];
	struct spawner *s = &h->spawner;
	size_t len;
	if (s->disabled || FIXED_FDS + spec->nlisten + CGROUP_FDS > MAX_FDS || !(len = encode(spec, buf, sizeof(buf))))
		return 1;
	struct reply r;
	int64_t sent_ns = mono_ns();
	int sent = send_request(h, spec, buf, len);
	int send_errno = errno;
	explicit_bzero(buf, len); /* the worker's secrets: not for a process the host forks later */
	if (sent < 0 && send_errno == EMSGSIZE)
		return 1; /* too big for this socket: the host forks this one itself */
	if (sent < 0 || await_reply(s, &r) < 0) {
		char why[128];
		snprintf(why, sizeof(why), "it did not answer (%s)", strerror(sent < 0 ? send_errno : errno));
		kill(s->pid, SIGKILL);
		disable(h, "the spawner process failed", why);
		/* It may have forked the process before it stopped answering: a
		 * child of the host that no instance knows. */
		host_kill_strays(h, sent_ns);
		return 1;
	}
	if (r.pid <= 0 && r.err != EAGAIN && r.err != ENOMEM) {
		/* Not short of resources: this kernel or sandbox refuses the clone. */
		disable(h, "the spawner process cannot fork workers here", strerror(r.err));
		return 1;
	}
	if (r.pid <= 0) {
		errno = r.err;
		return -1;
	}
	*pid = r.pid;
	return 0;
}

bool spawner_is(const struct host *h, pid_t pid)
{
	return pid > 0 && pid == h->spawner.pid;
}

void spawner_reaped(struct host *h, pid_t pid, int wait_status)
{
	if (!spawner_is(h, pid))
		return;
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
	retire(h);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}
