/*
 * cgroup.c - containment of worker processes with cgroup v2; runs in the host.
 *
 * Process groups and sessions do not contain: a process can leave them
 * (setsid(), a double fork), and once its parent is gone it is re-parented
 * out of reach. A cgroup cannot be left without write access to another
 * one, so where the host can create cgroups every worker instance runs in a
 * cgroup of its own, <workers>/<name>.worker/<instance>:
 *   - created before its process starts (the spawner clones the process
 *     straight into it; a process the host forks itself moves in first thing);
 *   - killed as a whole with cgroup.kill when the process ends or is killed;
 *   - known empty from cgroup.events (a modify event, watched in the loop)
 *     before the run counts as over, and kept, empty, for the instance's
 *     next run (removing a cgroup and making it again cost a restart about
 *     45 us of its 1 ms here). cpu.stat counts on across runs, so each run's
 *     CPU is counted from its start (cg_cpu_base). A cgroup that was killed
 *     is made anew instead: Linux (6.18 here) kills every process cloned
 *     into a cgroup once cgroup.kill was written to it, as if the kill were
 *     still going on; so is one the memory controller reaches (its
 *     memory.current keeps what earlier runs charged). The cgroup is removed
 *     when the instance goes (reload, host end).
 * <workers> is <own>/workers when the host's own cgroup holds nothing but the
 * host and its spawner (systemd's Delegate=yes, a container): the two move
 * to <own>/supervisor, as cgroup v2 wants processes out of the inner nodes
 * that may later share out memory and CPU. Otherwise (the hierarchy's root,
 * or a cgroup shared with other processes) it is <own>/ward-<hash of
 * state_dir>. Both names are the same for the same state_dir, so a host finds
 * what a previous one left after a SIGKILL and kills it before it starts
 * anything. The ".worker" suffix keeps worker names clear of the cgroup
 * interface files (cgroup.*, memory.*).
 */
#define _GNU_SOURCE
#include "daemon/cgroup.h"
#include "daemon/host.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small file helpers (cgroup files are small and read in one go) ---- */

/* Reads name below dirfd into buf, NUL-terminated. Its length, or -1 with errno. */
static ssize_t read_file_at(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	int saved = errno;
	close(fd);
	errno = saved;
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static int write_file_at(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = write_all(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* "populated 1" in a cgroup.events descriptor: 1, 0, or -1 on error. Reading
 * also re-arms the descriptor's modify event. */
static int populated(int events_fd)
{
	char buf[256];
	ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "populated ");
	return p ? p[10] == '1' : -1;
}

/* Waits, blocking, until the cgroup at dirfd is empty or the deadline passes
 * (boot only: before the loop runs). Whether it is empty. */
static bool wait_empty(int dirfd, int64_t deadline_ns)
{
	int fd = openat(dirfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	int pop;
	while ((pop = populated(fd)) > 0 && mono_ns() < deadline_ns) {
		struct pollfd p = {.fd = fd, .events = POLLPRI};
		int ms = (int)((deadline_ns - mono_ns()) / NS_PER_MS) + 1;
		if (poll(&p, 1, ms) < 0 && errno != EINTR)
			break;
	}
	close(fd);
	return pop == 0;
}

/* Calls visit for every process in the cgroup at dirfd and in every cgroup
 * below it; returns how many visits returned true. */
static int visit_procs(int dirfd, bool (*visit)(pid_t pid, void *arg), void *arg)
{
	int n = 0, fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f && fd >= 0)
		close(fd);
	for (long pid; f && fscanf(f, "%ld", &pid) == 1;)
		n += pid > 0 && visit((pid_t)pid, arg);
	if (f)
		fclose(f);
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return n;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		int sub = openat(dirfd, e->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0) {
			n += visit_procs(sub, visit, arg);
			close(sub);
		}
	}
	closedir(d);
	return n;
}

static bool note_first(pid_t pid, void *arg)
{
	int *first = arg;
	if (*first == 0)
		*first = (int)pid;
	return true;
}

/* Processes in the cgroup at dirfd and every cgroup below it; *first gets one. */
static int count_procs(int dirfd, int *first)
{
	return visit_procs(dirfd, note_first, first);
}

/* Removes every cgroup below dirfd, deepest first; those still holding a process stay. */
static void remove_below(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		int sub = openat(dirfd, e->d_name, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (sub >= 0) {
			remove_below(sub);
			close(sub);
		}
		unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

/* ---- where the workers' cgroups go ---- */

/* pid's cgroup v2 path, from /proc/PID/cgroup ("0::/path"); pid 0: the host's. */
static int cgroup_path_of(pid_t pid, char *path, size_t size)
{
	char buf[4096], file[64];
	snprintf(file, sizeof(file), pid ? "/proc/%d/cgroup" : "/proc/self/cgroup", (int)pid);
	if (read_file_at(AT_FDCWD, file, buf, sizeof(buf)) < 0)
		return -1;
	char *line = strstr(buf, "0::/");
	if (!line || (line != buf && line[-1] != '\n'))
		return -1;
	line += 3;
	line[strcspn(line, "\n")] = '\0';
	return snprintf(path, size, "%s", line) < (int)size ? 0 : -1;
}

/* The directory of cgroup cg: a cgroup2 mount whose root holds it, plus
 * the rest of its path. */
static bool cgroup_dir_of(const char *cg, char *dir, size_t size)
{
	char root[PATH_MAX], point[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (f && !found && getline(&line, &cap, f) > 0) {
		const char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep, " - cgroup2 ", 11) != 0 ||
		    sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2 || strchr(point, '\\'))
			continue;
		size_t len = strcmp(root, "/") == 0 ? 0 : strlen(root);
		if (strncmp(cg, root, len) != 0 || (cg[len] != '/' && cg[len] != '\0'))
			continue;
		const char *rest = strcmp(cg + len, "/") == 0 ? "" : cg + len;
		found = snprintf(dir, size, "%s%s", point, rest) < (int)size;
	}
	free(line);
	if (f)
		fclose(f);
	return found;
}

static int own_cgroup_dir(char *dir, size_t size, char *why, size_t wsize)
{
	char cg[PATH_MAX];
	if (cgroup_path_of(0, cg, sizeof(cg)) < 0) {
		snprintf(why, wsize, "the host is in no cgroup v2 hierarchy (/proc/self/cgroup has no 0:: line)");
		return -1;
	}
	if (!cgroup_dir_of(cg, dir, size)) {
		snprintf(why, wsize, "no cgroup v2 hierarchy holding the host's cgroup %s is mounted", cg);
		return -1;
	}
	return 0;
}

/* Whether the cgroup at dirfd holds the host and its spawner and nothing else. */
static bool holds_only_host(int dirfd, const struct host *h)
{
	char buf[256];
	if (read_file_at(dirfd, "cgroup.procs", buf, sizeof(buf)) < 0 || strlen(buf) >= sizeof(buf) - 1)
		return false;
	for (char *p = buf, *end; *p; p = end + (*end == '\n')) {
		long pid = strtol(p, &end, 10);
		if (end == p || (pid != h->pid && pid != h->spawner.pid))
			return false;
	}
	return true;
}

/* Moves the host and its spawner into <dir>/supervisor. */
static int move_into_supervisor(int dirfd, const struct host *h, const char *dir, char *why, size_t wsize)
{
	char pid[32];
	if (mkdirat(dirfd, "supervisor", 0755) < 0 && errno != EEXIST) {
		snprintf(why, wsize, "unable to create %s/supervisor: %s", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		pid_t p = i == 0 ? h->pid : h->spawner.pid;
		snprintf(pid, sizeof(pid), "%d", (int)p);
		if (p > 0 && write_file_at(dirfd, "supervisor/cgroup.procs", pid) < 0) {
			snprintf(why, wsize, "unable to move the host into %s/supervisor: %s", dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t hash = 14695981039346656037ull;
	for (; *s; s++)
		hash = (hash ^ (unsigned char)*s) * 1099511628211ull;
	return hash;
}

/* Sets h->cgroups.path to where the workers' cgroups go. */
static int choose_place(struct host *h, char *why, size_t wsize)
{
	char dir[PATH_MAX];
	if (own_cgroup_dir(dir, sizeof(dir), why, wsize) < 0)
		return -1;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, wsize, "unable to open %s: %s", dir, strerror(errno));
		return -1;
	}
	/* The root has no cgroup.kill; ward never takes a root (or shared) cgroup for its own. */
	bool own = faccessat(fd, "cgroup.kill", F_OK, 0) == 0 && holds_only_host(fd, h);
	int rc = own ? move_into_supervisor(fd, h, dir, why, wsize) : 0;
	close(fd);
	if (own)
		h->cgroups.path = xasprintf("%s/workers", dir);
	else
		h->cgroups.path = xasprintf("%s/ward-%016llx", dir, (unsigned long long)fnv1a(h->cfg.state_dir));
	return rc;
}

/* A previous host on this state_dir was killed and left processes in its
 * cgroups: they are killed before anything starts. */
static void kill_leftovers(int fd, const char *path)
{
	int first = 0, n = count_procs(fd, &first);
	if (n == 0)
		return;
	if (write_file_at(fd, "cgroup.kill", "1") < 0) {
		host_log(HOST_ERR, "a previous host left %d process%s in %s and they cannot be killed: %s", n,
			 n == 1 ? "" : "es", path, strerror(errno));
		return;
	}
	if (wait_empty(fd, mono_ns() + KILL_WAIT_MS * NS_PER_MS)) {
		host_log(HOST_WARN, "a previous host left %d process%s in %s: killed", n, n == 1 ? "" : "es", path);
		return;
	}
	first = 0;
	n = count_procs(fd, &first);
	host_log(HOST_ERR, "a previous host left processes in %s: %d of them (pid %d first) are still alive %d s after SIGKILL",
		 path, n, first, KILL_WAIT_MS / 1000);
}

/* Empties and removes what a previous host left, then creates the workers' cgroup afresh. */
static int open_workers(struct cgroups *cg, char *why, size_t wsize)
{
	int fd = open(cg->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		kill_leftovers(fd, cg->path);
		remove_below(fd);
		close(fd);
		rmdir(cg->path); /* a fresh one: a spawner of the previous host may still hold the old one */
	}
	if (mkdir(cg->path, 0755) < 0 && errno != EEXIST) {
		snprintf(why, wsize, "unable to create %s: %s", cg->path, strerror(errno));
		return -1;
	}
	fd = open(cg->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || faccessat(fd, "cgroup.kill", F_OK, 0) < 0) {
		snprintf(why, wsize, fd < 0 ? "unable to open %s: %s" : "%s has no cgroup.kill (Linux 5.14 or later is needed)",
			 cg->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		rmdir(cg->path);
		return -1;
	}
	cg->workers_fd = fd;
	return 0;
}

void cgroup_setup(struct host *h)
{
	struct cgroups *cg = &h->cgroups;
	char why[PATH_MAX + 128];
	cg->workers_fd = -1;
	if (choose_place(h, why, sizeof(why)) < 0 || open_workers(cg, why, sizeof(why)) < 0) {
		host_log(HOST_WARN, "cgroups: %s; worker processes are contained by their session and process group only (see docs/security.md)",
			 why);
		free(cg->path);
		cg->path = NULL;
		return;
	}
	host_log(HOST_INFO, "each worker instance runs in a cgroup of its own below %s", cg->path);
}

void cgroup_teardown(struct host *h)
{
	struct cgroups *cg = &h->cgroups;
	if (cgroup_active(cg)) {
		remove_below(cg->workers_fd);
		close(cg->workers_fd);
		rmdir(cg->path); /* EBUSY when a process the host could not kill is still in it */
	}
	free(cg->path);
	*cg = (struct cgroups){.workers_fd = -1};
}

/* ---- one cgroup per instance ---- */

static struct cgroups *cgroups_of(const struct instance *in)
{
	return &in->worker->host->cgroups;
}

/* "<name>.worker/<instance>", and a file in it when file is not NULL. */
static void instance_path(const struct instance *in, const char *file, char *buf, size_t size)
{
	snprintf(buf, size, "%s.worker/%d%s%s", in->worker->conf->name, in->index, file ? "/" : "", file ? file : "");
}

int cgroup_instance_open(struct instance *in, int *fd)
{
	struct cgroups *cg = cgroups_of(in);
	char path[300];
	*fd = -1;
	if (!cgroup_active(cg))
		return 0;
	if (in->cg_kept) { /* the last run's, empty */
		instance_path(in, NULL, path, sizeof(path));
		*fd = openat(cg->workers_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (*fd >= 0)
			return 0;
		in->cg_kept = false; /* removed from outside: made again */
		in->cg_cpu_base = 0;
	}
	snprintf(path, sizeof(path), "%s.worker", in->worker->conf->name);
	if (mkdirat(cg->workers_fd, path, 0755) < 0 && errno != EEXIST)
		return -1;
	instance_path(in, NULL, path, sizeof(path));
	if (mkdirat(cg->workers_fd, path, 0755) < 0) {
		if (errno != EEXIST)
			return -1;
		/* Left by an instance of this index that went (a reload) with
		 * processes still in it, perhaps after a kill: joined, not cloned
		 * into, and made anew after the run. */
		in->cg_killed = true;
	}
	*fd = openat(cg->workers_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return *fd < 0 ? -1 : 0;
}

void cgroup_instance_kill(struct instance *in)
{
	struct cgroups *cg = cgroups_of(in);
	char path[320];
	if (!cgroup_active(cg))
		return;
	instance_path(in, "cgroup.kill", path, sizeof(path));
	in->cg_killed = true;
	if (write_file_at(cg->workers_fd, path, "1") < 0 && errno != ENOENT)
		host_log(HOST_ERR, "[%s:%d] unable to kill the processes of its cgroup %s/%s: %s", in->worker->conf->name,
			 in->index, cg->path, path, strerror(errno));
}

static bool send_signal(pid_t pid, void *arg)
{
	return kill(pid, *(int *)arg) == 0;
}

int cgroup_instance_signal(const struct instance *in, int sig)
{
	struct cgroups *cg = cgroups_of(in);
	char path[300];
	if (!cgroup_active(cg))
		return -1;
	instance_path(in, NULL, path, sizeof(path));
	int fd = openat(cg->workers_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int n = visit_procs(fd, send_signal, &sig);
	close(fd);
	return n;
}

/* usage_usec of the instance's cgroup, every run so far. */
static int read_total_cpu_usec(const struct instance *in, uint64_t *usec);

/* The next run starts in the cgroup as it is: its CPU counts from here. */
static void keep(struct instance *in)
{
	uint64_t total;
	in->cg_kept = true;
	if (read_total_cpu_usec(in, &total) == 0)
		in->cg_cpu_base = total;
}

/* Removes the instance's cgroup; one that processes still hold stays, and
 * the next run starts in it, beside them. */
static void remove_cgroup(struct instance *in)
{
	char path[300];
	instance_path(in, NULL, path, sizeof(path));
	if (unlinkat(cgroups_of(in)->workers_fd, path, AT_REMOVEDIR) == 0 || errno == ENOENT) {
		in->cg_kept = false;
		in->cg_killed = false;
		in->cg_cpu_base = 0;
		return;
	}
	keep(in); /* EBUSY */
}

/* Whether the memory controller reaches the instance's cgroup: its
 * memory.current counts pages charged in earlier runs too (page cache), which
 * only removing the cgroup gives back. */
static bool counts_memory(const struct instance *in)
{
	char path[320];
	instance_path(in, "memory.current", path, sizeof(path));
	return faccessat(cgroups_of(in)->workers_fd, path, F_OK, 0) == 0;
}

/* The run is over and its cgroup empty: kept for the next run, unless it
 * was killed (see the top of this file) or counts memory. */
static void keep_for_next_run(struct instance *in)
{
	if (in->cg_events.fd >= 0)
		loop_close(in->worker->host->loop, &in->cg_events);
	if (in->cg_killed || counts_memory(in))
		remove_cgroup(in);
	else
		keep(in);
}

static void on_cgroup_events(struct watch *w, uint32_t events)
{
	(void)events;
	struct instance *in = container_of(w, struct instance, cg_events);
	if (populated(w->fd) > 0)
		return; /* another change (or none): still busy */
	keep_for_next_run(in);
	in->cg_emptied(in);
}

bool cgroup_instance_await_empty(struct instance *in, void (*emptied)(struct instance *in))
{
	struct cgroups *cg = cgroups_of(in);
	char path[320];
	if (!cgroup_active(cg))
		return true;
	instance_path(in, "cgroup.events", path, sizeof(path));
	int fd = openat(cg->workers_fd, path, O_RDONLY | O_CLOEXEC);
	/* Read after opening: a change after this read shows as an event. The
	 * zombie leader no longer counts: most often the cgroup is empty now,
	 * and nothing can enter an empty cgroup but by migration. */
	if (fd >= 0 && populated(fd) > 0) {
		cgroup_instance_kill(in);
		in->cg_events = (struct watch){.fd = fd, .fn = on_cgroup_events};
		in->cg_emptied = emptied;
		if (loop_watch(in->worker->host->loop, &in->cg_events, EPOLLPRI) == 0)
			return false;
		host_log(HOST_ERR, "[%s:%d] unable to watch %s/%s: %s; not waiting for its processes to end",
			 in->worker->conf->name, in->index, cg->path, path, strerror(errno));
		in->cg_events.fd = -1;
	}
	if (fd >= 0)
		close(fd);
	keep_for_next_run(in);
	return true;
}

void cgroup_instance_forget(struct instance *in)
{
	struct cgroups *cg = cgroups_of(in);
	if (in->cg_events.fd >= 0)
		loop_close(in->worker->host->loop, &in->cg_events);
	if (cgroup_active(cg))
		remove_cgroup(in);
}

int cgroup_instance_dir(const struct instance *in)
{
	struct cgroups *cg = cgroups_of(in);
	char path[300];
	if (!cgroup_active(cg))
		return -1;
	instance_path(in, NULL, path, sizeof(path));
	return openat(cg->workers_fd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int cgroup_instance_count(const struct instance *in, int *first)
{
	*first = 0;
	int fd = cgroup_instance_dir(in);
	if (fd < 0)
		return 0;
	int n = count_procs(fd, first);
	close(fd);
	return n;
}

/* usage_usec of the cpu.stat file at path below dirfd. */
static int read_cpu_usec(int dirfd, const char *path, uint64_t *usec)
{
	char buf[1024];
	if (read_file_at(dirfd, path, buf, sizeof(buf)) < 0)
		return -1;
	const char *p = strstr(buf, "usage_usec ");
	if (!p)
		return -1;
	*usec = strtoull(p + 11, NULL, 10);
	return 0;
}

static int read_total_cpu_usec(const struct instance *in, uint64_t *usec)
{
	struct cgroups *cg = cgroups_of(in);
	char path[320];
	if (!cgroup_active(cg))
		return -1;
	instance_path(in, "cpu.stat", path, sizeof(path));
	return read_cpu_usec(cg->workers_fd, path, usec);
}

int cgroup_instance_cpu_usec(const struct instance *in, uint64_t *usec)
{
	uint64_t total;
	if (read_total_cpu_usec(in, &total) < 0)
		return -1;
	*usec = total > in->cg_cpu_base ? total - in->cg_cpu_base : 0;
	return 0;
}

void cgroup_worker_forget(struct worker *w)
{
	struct cgroups *cg = &w->host->cgroups;
	char path[300];
	for (int i = 0; i < w->ninst; i++)
		cgroup_instance_forget(w->inst[i]);
	if (!cgroup_active(cg))
		return;
	snprintf(path, sizeof(path), "%s.worker", w->conf->name);
	unlinkat(cg->workers_fd, path, AT_REMOVEDIR);
}

int cgroup_owner_of(const struct host *h, pid_t pid, char *name, size_t size, int *index)
{
	char path[PATH_MAX];
	if (!cgroup_active(&h->cgroups) || cgroup_path_of(pid, path, sizeof(path)) < 0)
		return -1;
	/* ".../<name>.worker/<index>", possibly with a cgroup of its own below */
	for (char *slash = strrchr(path, '/'); slash && slash != path; slash = strrchr(path, '/')) {
		char *end;
		long i = strtol(slash + 1, &end, 10);
		*slash = '\0';
		const char *dir = strrchr(path, '/');
		size_t dlen = dir ? strlen(dir + 1) : 0;
		if (*end || end == slash + 1 || !dir || dlen <= 7 || strcmp(dir + 1 + dlen - 7, ".worker") != 0)
			continue;
		if (dlen - 7 >= size)
			return -1;
		memcpy(name, dir + 1, dlen - 7);
		name[dlen - 7] = '\0';
		*index = (int)i;
		return 0;
	}
	return -1;
}
