/*
 * spawner.c - the spawner process: forks workers (and plugin probes) for
 * the host. Everything here runs in the spawner; the host's side of asking
 * it (queue, deadlines, answers) is daemon/spawner_client.c.
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
 * A request carries everything the process needs, as a child spec
 * (worker/childspec.c): the worker's settings, the host's variables it
 * inherits and, as descriptors, its stdout pipe, its runtime socket, its
 * progress slot's memory and its listen sockets. The spawner answers each
 * request, in order, with the pid or why there is none; it never decides
 * anything about the host's children (the host does, see spawner_client.c).
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
#include "worker/child.h"
#include "worker/childspec.h"
#include "worker/runtime.h"
#include "common/util.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define REQUEST_FD 3

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
	struct spawner_reply r = {.pid = pid > 0 ? pid : 0, .err = err};
	return send(sock, &r, sizeof(r), MSG_NOSIGNAL) == (ssize_t)sizeof(r) ? 0 : -1;
}

/* Receives one request and its descriptors into buf. Its length, 0 at the
 * host's end, -1 on error. */
static ssize_t receive_request(int sock, char *buf, size_t size, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(SPAWNER_MAX_FDS * sizeof(int))];
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

/* Rebuilds the spec from a request of len bytes in buf (strings stay in buf),
 * and keeps the cgroup of every worker from the first request that has it. */
static bool decode(char *buf, size_t len, const int *fds, int nfds, struct child_spec_decoded *d)
{
	int used = childspec_decode(buf, len, fds, nfds, d);
	int more = d->spec.cgroup_fd >= 0 ? SPAWNER_WORKERS_CGROUP_FDS : 0;
	if (used < 0 || nfds != used + more)
		return false;
	if (more && workers_cgroup < 0)
		workers_cgroup = fcntl(fds[used], F_DUPFD_CLOEXEC, REQUEST_FD + 1);
	return true;
}

/* The spawner's argument strings, which `ps` and `top -c` show as a
 * process's command line: the spawner writes "ward: spawner" over them, and
 * each worker its own name over its copy, so that one worker can be told from
 * another (the comm, which `top` shows, stays the host's: `pkill ward` and
 * the like still find them all). */
static struct {
	char *at;
	size_t len;
} args_area;

static void set_title(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_title(const char *fmt, ...)
{
	if (!args_area.at)
		return; /* serving from the host's copy (no exec): its argv is the host's */
	memset(args_area.at, 0, args_area.len);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args_area.at, args_area.len, fmt, ap);
	va_end(ap);
}

static void name_worker(const struct child_spec *spec)
{
	if (spec->probe)
		set_title("ward: probe %s", spec->conf->plugin);
	else
		set_title("ward: worker %s:%d", spec->conf->name, spec->instance);
}

static void serve(int sock, const char *worker_comm)
{
	static char buf[SPAWNER_REQUEST_MAX];
	int fds[SPAWNER_MAX_FDS], nfds;
	ssize_t len;
	while ((len = receive_request(sock, buf, sizeof(buf), fds, &nfds)) != 0) {
		struct child_spec_decoded d;
		bool whole = len > 0 && decode(buf, (size_t)len, fds, nfds, &d);
		struct child_spec *spec = &d.spec;
		pid_t pid = -1;
		if (whole) {
			pid = clone_as_host_child(spec->cgroup_by_procs ? -1 : spec->cgroup_fd, &spec->in_cgroup);
			if (pid == 0) {
				prctl(PR_SET_NAME, worker_comm);
				name_worker(spec);
				child_main(spec);
			}
		}
		int err = whole ? errno : EPROTO;
		/* The next worker must not find this one's settings (its secrets) here. */
		if (len > 0) {
			explicit_bzero(buf, (size_t)len);
			childspec_decoded_free(&d);
		}
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
	 * the parent-death signal did (spawner_become). */
	served_host = host_pid;
	struct sigaction sa = {.sa_handler = on_host_death, .sa_flags = SA_RESTART};
	sigfillset(&sa.sa_mask);
	if (sigaction(HOST_DEATH_SIGNAL, &sa, NULL) < 0 || getppid() != host_pid)
		_exit(1);
	child_note_signals(); /* its dispositions change no more */
	prctl(PR_SET_NAME, "ward-spawner");
	set_title("ward: spawner");
	/* No fastbins: a worker's first large malloc() would otherwise
	 * consolidate the free chunks decoding requests left in this heap,
	 * writing (and so copying) its pages in every process forked from it. */
	mallopt(M_MXFAST, 0);
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
 * envp. Only a spawner started by spawner_become() matches. */
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
noreturn void spawner_become(int sock, pid_t host_pid)
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
