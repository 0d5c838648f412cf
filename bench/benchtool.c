/*
 * benchtool.c - the measuring helper of bench/compare.sh. Built by bench/run
 * with cc into a temporary directory; not part of the CMake build.
 *
 * Every process of one comparison run lives under one temporary directory
 * TOP: the worker binary is TOP/bin/worker, and each supervisor's files are
 * below TOP. A *worker* is a live (not zombie) process whose executable is
 * TOP/bin/worker, or whose working directory is below TOP and contains
 * "/state/workers/" (a ward worker: a fork of ward, which does not exec).
 * A supervisor's *side* is its top process and every descendant that is not
 * a worker (runsvdir + runsv, s6-svscan + s6-supervise, supervisord, the ward
 * host and its spawner).
 *
 *   benchtool reaper CMD...            run CMD as a child subreaper: reap
 *                                      orphans, and SIGKILL whatever is left
 *                                      below it when CMD exits
 *   benchtool now                      CLOCK_MONOTONIC in ns
 *   benchtool spawn OUT CMD...         start CMD in a new session (stdout and
 *                                      stderr to OUT); prints "PID T0_NS";
 *                                      with SPAWN_STDOUT_PIPE=FILE in the
 *                                      environment, CMD's stdout is a pipe
 *                                      that a child of benchtool copies into
 *                                      FILE (64 KiB reads), as a container
 *                                      runtime reads a container's stdout
 *   benchtool stamps FILE N MS         wait up to MS for N stamp lines; prints
 *                                      "COUNT LAST_NS"
 *   benchtool restarts FILE N MS       wait for N+1 stamps; prints
 *                                      "RESTARTS MEDIAN_NS P90_NS P99_NS"
 *   benchtool floor PROGRAM FILE N     the floor of a restart: N+1 times
 *                                      fork, execve "PROGRAM crash 0 FILE"
 *                                      (it stamps FILE and dies by SIGSEGV),
 *                                      waitpid, at once again; prints what
 *                                      `restarts FILE N` prints
 *   benchtool mem TOP PID              "SUP_RSS_KB SUP_PSS_KB SUP_PROCS
 *                                       WORKER_RSS_KB WORKER_PSS_KB WORKERS"
 *   benchtool usage TOP PID SECONDS    CPU time (schedstat) and context switches
 *                                      of the supervisor side over SECONDS:
 *                                      "CPU_MS CTXSW PROCS"
 *   benchtool count TOP                "ALL WORKERS": live processes naming TOP
 *                                      (as cleanup finds them), and the workers
 *   benchtool workers TOP              number of live workers
 *   benchtool waitgone TOP MS [CMD...] run CMD (not waited for), then poll
 *                                      until no worker is left or MS passed;
 *                                      prints "ELAPSED_MS LEFT"
 *   benchtool waitlog FILE MARKER MS   wait until the last 64 KiB of FILE
 *                                      holds MARKER; prints "FOUND_NS" or "timeout"
 *   benchtool timecmd MS CMD...        run CMD (stdout to /dev/null), kill it
 *                                      after MS; prints "ELAPSED_MS STATUS"
 *   benchtool ask SOCKET MS            connect to a unix socket, send "PING\n",
 *                                      read one line; prints "ELAPSED_MS REPLY"
 *                                      (connect -> reply), or "ELAPSED_MS -"
 *   benchtool cleanup TOP              SIGKILL every process whose executable,
 *                                      working directory or command line names
 *                                      TOP (not this one nor its ancestors);
 *                                      prints how many were left after 60 s (0)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static void reap_quietly(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- /proc ---- */

struct proc {
	int pid, ppid;
	char state;
	unsigned long long ticks; /* utime + stime */
	long ctxsw;
	long rss_kb, pss_kb;
};

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return (int)n;
}

/* pid, ppid, state and CPU ticks from /proc/PID/stat */
static int read_stat(int pid, struct proc *p)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	char *r = strrchr(buf, ')');
	if (!r)
		return -1;
	unsigned long long ut = 0, st = 0;
	int ppid = 0;
	char state = '?';
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(r + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &ppid, &ut, &st) != 4)
		return -1;
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	p->state = state;
	p->ticks = ut + st;
	return 0;
}

static long status_field(int pid, const char *file, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t len = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':') {
			v = atol(line + len + 1);
			break;
		}
	fclose(f);
	return v;
}

/* Time on a CPU in ns (/proc/PID/schedstat), or -1. */
static long long cpu_ns(int pid)
{
	char path[64], buf[128];
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	if (read_text(path, buf, sizeof(buf)) < 0)
		return -1;
	return atoll(buf);
}

static long ctx_switches(int pid)
{
	long a = status_field(pid, "status", "voluntary_ctxt_switches");
	long b = status_field(pid, "status", "nonvoluntary_ctxt_switches");
	return a < 0 || b < 0 ? -1 : a + b;
}

static int link_under(int pid, const char *what, const char *top, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	ssize_t n = readlink(path, out, len - 1);
	if (n < 0)
		return 0;
	out[n] = 0;
	size_t tl = strlen(top);
	return strncmp(out, top, tl) == 0 && (out[tl] == '/' || out[tl] == 0);
}

static int is_worker(int pid, const char *top)
{
	char buf[PATH_MAX], want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/bin/worker", top);
	if (link_under(pid, "exe", top, buf, sizeof(buf)) && strcmp(buf, want) == 0)
		return 1;
	if (link_under(pid, "cwd", top, buf, sizeof(buf)) && strstr(buf, "/state/workers/"))
		return 1;
	return 0;
}

static int cmdline_names(int pid, const char *top)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	int n = read_text(path, buf, sizeof(buf));
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (buf[i] == 0)
			buf[i] = ' ';
	return strstr(buf, top) != NULL;
}

/* Every process, as a malloc'ed array. */
static struct proc *all_procs(int *count)
{
	int cap = 1024, n = 0;
	struct proc *v = malloc(sizeof(*v) * (size_t)cap);
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		if (n == cap) {
			cap *= 2;
			v = realloc(v, sizeof(*v) * (size_t)cap);
		}
		if (read_stat(atoi(e->d_name), &v[n]) == 0)
			n++;
	}
	if (d)
		closedir(d);
	*count = n;
	return v;
}

/* in[i] = 1 when v[i] is top or one of its descendants. */
static char *descendants(struct proc *v, int n, int top)
{
	int maxpid = 0;
	for (int i = 0; i < n; i++)
		if (v[i].pid > maxpid)
			maxpid = v[i].pid;
	int *at = malloc(sizeof(int) * ((size_t)maxpid + 1));
	for (int p = 0; p <= maxpid; p++)
		at[p] = -1;
	for (int i = 0; i < n; i++)
		at[v[i].pid] = i;
	char *in = calloc((size_t)(n > 0 ? n : 1), 1); /* 0 unknown, 1 in, 2 out */
	for (int i = 0; i < n; i++) {
		int j = i, steps = 0;
		while (j >= 0 && !in[j] && v[j].pid != top && v[j].ppid > 0 && steps++ < 64)
			j = v[j].ppid <= maxpid ? at[v[j].ppid] : -1;
		char r = j >= 0 && (in[j] == 1 || v[j].pid == top) ? 1 : 2;
		for (int k = i; k >= 0 && k != j && !in[k];) {
			in[k] = r;
			k = v[k].ppid <= maxpid && v[k].ppid > 0 ? at[v[k].ppid] : -1;
		}
		if (j >= 0 && !in[j])
			in[j] = r;
	}
	for (int i = 0; i < n; i++)
		in[i] = in[i] == 1;
	free(at);
	return in;
}

static int count_workers(const char *top)
{
	int n, w = 0;
	struct proc *v = all_procs(&n);
	for (int i = 0; i < n; i++)
		if (v[i].state != 'Z' && is_worker(v[i].pid, top))
			w++;
	free(v);
	return w;
}

/* This process and its ancestors, whose command lines may name TOP: never counted nor killed. */
static int mine[64], nmine;

static void find_mine(struct proc *v, int n)
{
	nmine = 0;
	for (int p = getpid(); p > 1 && nmine < 64;) {
		mine[nmine++] = p;
		int next = 0;
		for (int i = 0; i < n; i++)
			if (v[i].pid == p)
				next = v[i].ppid;
		p = next;
	}
}

static int is_mine(int pid)
{
	for (int k = 0; k < nmine; k++)
		if (mine[k] == pid)
			return 1;
	return 0;
}

static int names_top(int pid, const char *top)
{
	char buf[PATH_MAX];
	return link_under(pid, "exe", top, buf, sizeof(buf)) || link_under(pid, "cwd", top, buf, sizeof(buf)) ||
	       cmdline_names(pid, top);
}

/* ---- commands ---- */

static int cmd_reaper(char **argv)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGINT, SIG_IGN); /* the child handles ^C; we clean up after it */
	signal(SIGQUIT, SIG_IGN);
	pid_t main_pid = fork();
	if (main_pid < 0)
		return 1;
	if (main_pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	int rc = 1, st;
	for (;;) {
		pid_t p = waitpid(-1, &st, 0);
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		if (p == main_pid) {
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
	}
	/* Whatever is still below us: kill it, and what gets re-parented to us next. */
	int self = getpid(), killed = 0;
	for (int round = 0; round < 200; round++) {
		int n, found = 0;
		struct proc *v = all_procs(&n);
		for (int i = 0; i < n; i++)
			if (v[i].ppid == self && v[i].state != 'Z') {
				kill(v[i].pid, SIGKILL);
				found++;
			}
		free(v);
		nap_us(20000);
		reap_quietly();
		if (!found)
			break;
		killed += found;
	}
	reap_quietly();
	if (killed)
		fprintf(stderr, "bench: killed %d process(es) left behind\n", killed);
	return rc;
}

/* Copies the pipe's read end into path until end of file; in a child. */
static void copy_pipe(int from, const char *path)
{
	static char buf[65536];
	int to = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (to < 0)
		_exit(1);
	ssize_t n;
	while ((n = read(from, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(to, buf + off, (size_t)(n - off))) < 0)
				_exit(1);
	}
	_exit(0);
}

static int cmd_spawn(char **argv)
{
	const char *pipe_to = getenv("SPAWN_STDOUT_PIPE");
	int fds[2] = {-1, -1};
	if (pipe_to && *pipe_to) {
		if (pipe(fds) < 0)
			return 1;
		pid_t reader = fork();
		if (reader < 0)
			return 1;
		if (reader == 0) {
			close(fds[1]);
			copy_pipe(fds[0], pipe_to);
		}
		close(fds[0]);
	}
	long long t0 = mono_ns();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		setsid();
		int in = open("/dev/null", O_RDONLY);
		int out = open(argv[0], O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (in >= 0)
			dup2(in, 0);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		if (fds[1] >= 0)
			dup2(fds[1], 1);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	if (fds[1] >= 0)
		close(fds[1]);
	printf("%d %lld\n", (int)pid, t0);
	return 0;
}

static int read_stamps(const char *path, long long *ns, int max)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int n = 0;
	long inst;
	long long v;
	while (n < max && fscanf(f, "%ld %lld", &inst, &v) == 2)
		ns[n++] = v;
	fclose(f);
	return n;
}

static int wait_stamps(const char *path, long long *ns, int want, long ms)
{
	long long deadline = mono_ns() + ms * 1000000LL;
	int n;
	while ((n = read_stamps(path, ns, want)) < want && mono_ns() < deadline)
		nap_us(2000);
	return n;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static int cmd_stamps(char **argv)
{
	int want = atoi(argv[1]);
	long long *ns = calloc((size_t)want + 1, sizeof(*ns));
	int got = wait_stamps(argv[0], ns, want, atol(argv[2]));
	long long last = 0;
	for (int i = 0; i < got; i++)
		if (ns[i] > last)
			last = ns[i];
	printf("%d %lld\n", got, last);
	return 0;
}

/* The gaps between N+1 stamps (each one a death and a start): "N MEDIAN P90 P99". */
static void print_gaps(long long *ns, int got)
{
	int n = got - 1;
	if (n < 1) {
		printf("0 0 0 0\n");
		return;
	}
	for (int i = 0; i < n; i++)
		ns[i] = ns[i + 1] - ns[i];
	qsort(ns, (size_t)n, sizeof(*ns), cmp_ll);
	printf("%d %lld %lld %lld\n", n, ns[n / 2], ns[n * 9 / 10], ns[n * 99 / 100]);
}

static int cmd_restarts(char **argv)
{
	int want = atoi(argv[1]);
	long long *ns = calloc((size_t)want + 1, sizeof(*ns));
	print_gaps(ns, wait_stamps(argv[0], ns, want + 1, atol(argv[2])));
	return 0;
}

/* A supervisor that does nothing but restart: what no supervisor can beat. */
static int cmd_floor(char **argv)
{
	char *prog = argv[0], *out = argv[1];
	int want = atoi(argv[2]);
	char *args[] = {prog, "crash", "0", out, NULL};
	for (int i = 0; i <= want; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("benchtool floor: fork");
			return 1;
		}
		if (pid == 0) {
			execv(prog, args);
			_exit(127);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR) {
				perror("benchtool floor: waitpid");
				return 1;
			}
		if (!WIFSIGNALED(st)) {
			fprintf(stderr, "benchtool floor: %s did not crash (status %d)\n", prog, st);
			return 1;
		}
	}
	long long *ns = calloc((size_t)want + 1, sizeof(*ns));
	print_gaps(ns, read_stamps(out, ns, want + 1));
	return 0;
}

static int cmd_mem(char **argv)
{
	const char *top = argv[0];
	int n;
	struct proc *v = all_procs(&n);
	char *in = descendants(v, n, atoi(argv[1]));
	long srss = 0, spss = 0, wrss = 0, wpss = 0;
	int sn = 0, wn = 0;
	for (int i = 0; i < n; i++) {
		if (v[i].state == 'Z')
			continue;
		int w = is_worker(v[i].pid, top);
		if (!in[i] && !w)
			continue;
		long rss = status_field(v[i].pid, "status", "VmRSS");
		long pss = status_field(v[i].pid, "smaps_rollup", "Pss");
		if (rss < 0)
			continue;
		if (w) {
			wrss += rss;
			wpss += pss > 0 ? pss : 0;
			wn++;
		} else {
			srss += rss;
			spss += pss > 0 ? pss : 0;
			sn++;
		}
	}
	printf("%ld %ld %d %ld %ld %d\n", srss, spss, sn, wrss, wpss, wn);
	return 0;
}

static int cmd_usage(char **argv)
{
	const char *top = argv[0];
	int n;
	struct proc *v = all_procs(&n);
	char *in = descendants(v, n, atoi(argv[1]));
	int *pids = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	long long t0 = 0;
	long c0 = 0;
	int m = 0;
	for (int i = 0; i < n; i++)
		if (in[i] && v[i].state != 'Z' && !is_worker(v[i].pid, top)) {
			long c = ctx_switches(v[i].pid);
			long long t = cpu_ns(v[i].pid);
			if (c < 0 || t < 0)
				continue;
			pids[m++] = v[i].pid;
			t0 += t;
			c0 += c;
		}
	nap_us(atol(argv[2]) * 1000000L);
	long long t1 = 0;
	long c1 = 0;
	int lost = 0;
	for (int i = 0; i < m; i++) {
		long c = ctx_switches(pids[i]);
		long long t = cpu_ns(pids[i]);
		if (c < 0 || t < 0) {
			lost++;
			continue;
		}
		t1 += t;
		c1 += c;
	}
	if (lost)
		fprintf(stderr, "bench: %d supervisor process(es) ended during the idle measurement\n", lost);
	printf("%.2f %ld %d\n", (double)(t1 - t0) / 1e6, c1 - c0, m);
	return 0;
}

/* "ALL WORKERS": live processes naming TOP (see cleanup), and how many are workers. */
static int cmd_count(const char *top)
{
	int n, all = 0, w = 0;
	struct proc *v = all_procs(&n);
	find_mine(v, n);
	for (int i = 0; i < n; i++)
		if (v[i].state != 'Z' && !is_mine(v[i].pid) && names_top(v[i].pid, top)) {
			all++;
			w += is_worker(v[i].pid, top);
		}
	free(v);
	printf("%d %d\n", all, w);
	return 0;
}

static int cmd_waitgone(char **argv, int argc)
{
	const char *top = argv[0];
	long ms = atol(argv[1]);
	long long t0 = mono_ns();
	pid_t cmd = -1;
	if (argc > 2) {
		cmd = fork();
		if (cmd == 0) {
			int null = open("/dev/null", O_WRONLY);
			if (null >= 0) {
				dup2(null, 1);
				dup2(null, 2);
			}
			execvp(argv[2], argv + 2);
			_exit(127);
		}
	}
	long long deadline = t0 + ms * 1000000LL;
	int left;
	long long t1;
	for (;;) {
		left = count_workers(top);
		t1 = mono_ns();
		if (left == 0 || t1 >= deadline)
			break;
		nap_us(1000);
		reap_quietly();
	}
	printf("%.1f %d\n", (t1 - t0) / 1e6, left);
	fflush(stdout);
	if (cmd > 0) {
		/* the stop command finishes by itself; bound the wait anyway */
		for (int i = 0; i < 1000 && waitpid(cmd, NULL, WNOHANG) == 0; i++)
			nap_us(10000);
		kill(cmd, SIGKILL);
		waitpid(cmd, NULL, 0);
	}
	return 0;
}

static int cmd_waitlog(char **argv)
{
	const char *marker = argv[1];
	long long deadline = mono_ns() + atol(argv[2]) * 1000000LL;
	static char buf[65536 + 1];
	off_t seen = -1;
	while (mono_ns() < deadline) {
		int fd = open(argv[0], O_RDONLY);
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) == 0 && st.st_size != seen) {
				seen = st.st_size;
				off_t from = st.st_size > 65536 ? st.st_size - 65536 : 0;
				ssize_t n = pread(fd, buf, 65536, from);
				if (n > 0) {
					buf[n] = 0;
					if (memmem(buf, (size_t)n, marker, strlen(marker))) {
						long long t = mono_ns();
						close(fd);
						printf("%lld\n", t);
						return 0;
					}
				}
			}
			close(fd);
		}
		nap_us(2000);
	}
	printf("timeout\n");
	return 0;
}

static int cmd_timecmd(char **argv)
{
	long ms = atol(argv[0]);
	long long t0 = mono_ns();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	int st = 0;
	long long deadline = t0 + ms * 1000000LL;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (mono_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			printf("%.1f timeout\n", (mono_ns() - t0) / 1e6);
			return 0;
		}
		nap_us(500);
	}
	printf("%.1f %d\n", (mono_ns() - t0) / 1e6, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}

static int cmd_ask(char **argv)
{
	long long t0 = mono_ns(), deadline = t0 + atol(argv[1]) * 1000000LL;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[0]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char reply[128] = "-";
	size_t n = 0;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, "PING\n", 5) == 5) {
		while (n < sizeof(reply) - 1) {
			long long left = (deadline - mono_ns()) / 1000000;
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (left <= 0 || poll(&p, 1, (int)left) <= 0)
				break;
			ssize_t r = read(fd, reply + n, 1);
			if (r <= 0 || reply[n] == '\n')
				break;
			n++;
		}
		reply[n] = 0;
		if (n == 0)
			snprintf(reply, sizeof(reply), "-");
		if (write(fd, "QUIT\n", 5) < 0)
			n = 0;
	}
	long long t1 = mono_ns();
	if (fd >= 0)
		close(fd);
	printf("%.2f %s\n", (t1 - t0) / 1e6, reply);
	return 0;
}

static int cmd_cleanup(char **argv)
{
	const char *top = argv[0];
	int left = 0;
	long long deadline = mono_ns() + 60000000000LL; /* 10,000 processes take a while to die */
	do {
		int n;
		struct proc *v = all_procs(&n);
		find_mine(v, n);
		left = 0;
		for (int i = 0; i < n; i++)
			if (v[i].state != 'Z' && !is_mine(v[i].pid) && names_top(v[i].pid, top)) {
				kill(v[i].pid, SIGKILL);
				left++;
			}
		free(v);
		if (left)
			nap_us(20000);
		reap_quietly();
	} while (left && mono_ns() < deadline);
	printf("%d\n", left);
	return left != 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		goto usage;
	const char *c = argv[1];
	char **a = argv + 2;
	int n = argc - 2;
	if (!strcmp(c, "reaper") && n >= 1)
		return cmd_reaper(a);
	if (!strcmp(c, "now")) {
		printf("%lld\n", mono_ns());
		return 0;
	}
	if (!strcmp(c, "spawn") && n >= 2)
		return cmd_spawn(a);
	if (!strcmp(c, "stamps") && n == 3)
		return cmd_stamps(a);
	if (!strcmp(c, "restarts") && n == 3)
		return cmd_restarts(a);
	if (!strcmp(c, "floor") && n == 3)
		return cmd_floor(a);
	if (!strcmp(c, "mem") && n == 2)
		return cmd_mem(a);
	if (!strcmp(c, "usage") && n == 3)
		return cmd_usage(a);
	if (!strcmp(c, "workers") && n == 1) {
		printf("%d\n", count_workers(a[0]));
		return 0;
	}
	if (!strcmp(c, "waitgone") && n >= 2)
		return cmd_waitgone(a, n);
	if (!strcmp(c, "waitlog") && n == 3)
		return cmd_waitlog(a);
	if (!strcmp(c, "timecmd") && n >= 2)
		return cmd_timecmd(a);
	if (!strcmp(c, "ask") && n == 2)
		return cmd_ask(a);
	if (!strcmp(c, "count") && n == 1)
		return cmd_count(a[0]);
	if (!strcmp(c, "cleanup") && n == 1)
		return cmd_cleanup(a);
usage:
	fprintf(stderr, "usage: see the comment at the top of bench/benchtool.c\n");
	return 2;
}
