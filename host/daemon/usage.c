/*
 * usage.c - the memory and CPU time of worker instances, and the tally of
 * the processes that ended; runs in the host, and reads only when asked
 * (a scrape, `ward status`): an idle host never wakes for it.
 *
 * With cgroups an instance is its cgroup: CPU is cpu.stat's usage_usec, and
 * memory is memory.current where the memory controller reaches it, else the
 * sum of the resident sets of the processes in cgroup.procs. Without, an
 * instance is every process in its session or process group (the worker's
 * process leads both): one pass over /proc/<pid>/stat sums their resident
 * sets and CPU time (with the time of the children they reaped).
 *
 * A CPU counter must never go down, but a process that ends and is not
 * reaped by the worker (re-parented to the host) takes its time with it:
 * each instance keeps the highest reading of its run, and what the run used
 * in the end (wait4's rusage, or the cgroup's last reading) goes into the
 * worker's tally when the run is over.
 */
#define _GNU_SOURCE
#include "daemon/usage.h"
#include "daemon/cgroup.h"
#include "daemon/history.h"
#include "daemon/host.h"
#include "daemon/pidtable.h"
#include "daemon/worker.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small file below dirfd (AT_FDCWD: a path) into buf, NUL-terminated; its length or -1. */
static ssize_t slurp_at(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, buf, size - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static uint64_t page_bytes(void)
{
	static uint64_t size;
	if (!size) {
		long n = sysconf(_SC_PAGESIZE);
		size = n > 0 ? (uint64_t)n : 4096;
	}
	return size;
}

static uint64_t ticks_to_usec(uint64_t ticks)
{
	static long hz;
	if (!hz)
		hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
	return ticks * 1000000 / (uint64_t)hz;
}

/* The fields of /proc/<pid>/stat that attribute a process and what it used. */
struct proc_stat {
	pid_t pgrp, session;
	uint64_t cpu_ticks; /* utime + stime + cutime + cstime */
	uint64_t rss_pages;
};

/* Parses /proc/<pid>/stat (in buf). 0, or -1 when it is not one. The
 * command name may hold spaces and parentheses: fields start after the last ')'. */
static int parse_stat(const char *buf, struct proc_stat *ps)
{
	const char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	char state;
	long pgrp, session;
	unsigned long long ut, st, cut, cst, rss;
	/* 3 state, 5 pgrp, 6 session, 14-17 times, 24 rss (man 5 proc) */
	int n = sscanf(p + 1, " %c %*d %ld %ld %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu %*d %*d %*d %*d %*u %*u %llu",
		       &state, &pgrp, &session, &ut, &st, &cut, &cst, &rss);
	if (n != 8)
		return -1;
	*ps = (struct proc_stat){.pgrp = (pid_t)pgrp, .session = (pid_t)session, .cpu_ticks = ut + st + cut + cst,
				 .rss_pages = rss};
	return 0;
}

static int read_proc_stat(pid_t pid, struct proc_stat *ps)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	return slurp_at(AT_FDCWD, path, buf, sizeof(buf)) < 0 ? -1 : parse_stat(buf, ps);
}

/* A new reading of the instance's run; the CPU time never goes back. */
static void take_reading(struct instance *in, uint64_t rss_bytes, uint64_t cpu_usec)
{
	struct usage *u = &in->usage;
	if (u->pid != in->pid)
		*u = (struct usage){.pid = in->pid};
	u->known = true;
	u->read_ns = mono_ns();
	u->rss_bytes = rss_bytes;
	if (cpu_usec > u->cpu_usec)
		u->cpu_usec = cpu_usec;
}

/* The resident memory of the instance's cgroup: memory.current, or the sum
 * over cgroup.procs. Where the memory controller does not reach the
 * instances (memory.current is missing once), it is not looked for again:
 * the controllers of ward's cgroups do not change while the host runs. */
static uint64_t cgroup_rss(int dir)
{
	static bool no_memory_controller;
	char buf[16384];
	if (!no_memory_controller) {
		if (slurp_at(dir, "memory.current", buf, sizeof(buf)) > 0)
			return strtoull(buf, NULL, 10);
		no_memory_controller = errno == ENOENT;
	}
	if (slurp_at(dir, "cgroup.procs", buf, sizeof(buf)) < 0)
		return 0;
	uint64_t pages = 0;
	for (char *p = buf, *end; *p; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		char path[64], statm[256];
		unsigned long long size, resident;
		snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
		if (slurp_at(AT_FDCWD, path, statm, sizeof(statm)) > 0 && sscanf(statm, "%llu %llu", &size, &resident) == 2)
			pages += resident;
	}
	return pages * page_bytes();
}

/* One instance with a cgroup of its own. false: it has none (read it from /proc). */
static bool sample_cgroup(struct instance *in)
{
	uint64_t usec;
	int dir = cgroup_instance_dir(in);
	if (dir < 0)
		return false;
	if (cgroup_instance_cpu_usec(in, &usec) < 0)
		usec = 0;
	take_reading(in, cgroup_rss(dir), usec);
	close(dir);
	return true;
}

/* Readings summed per instance over one pass of /proc. */
struct tally_of_procs {
	struct instance *in;
	uint64_t rss_pages, cpu_ticks;
};

/* The instance a process belongs to: the worker's process leads its session and its group. */
static struct instance *owner_of(const struct proc_stat *ps)
{
	struct instance *in = pidtable_find(ps->session);
	if (!in && ps->pgrp != ps->session)
		in = pidtable_find(ps->pgrp);
	return in && in->pid > 0 ? in : NULL;
}

static int by_instance(const void *a, const void *b)
{
	const struct instance *x = ((const struct tally_of_procs *)a)->in, *y = ((const struct tally_of_procs *)b)->in;
	return x < y ? -1 : x > y;
}

/* Adds what every process of /proc uses to the instance it belongs to, in
 * sums[0..n) (every instance without a cgroup, sorted by by_instance). */
static void scan_proc(struct tally_of_procs *sums, size_t n)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		struct proc_stat ps;
		if (*end || pid <= 0 || read_proc_stat((pid_t)pid, &ps) < 0)
			continue;
		struct tally_of_procs key = {.in = owner_of(&ps)}, *sum;
		if (key.in && (sum = bsearch(&key, sums, n, sizeof(*sums), by_instance))) {
			sum->rss_pages += ps.rss_pages;
			sum->cpu_ticks += ps.cpu_ticks;
		}
	}
	closedir(d);
}

/* A reading of this process taken less than max_age_ns ago. */
static bool reading_younger(const struct instance *in, int64_t now, int64_t max_age_ns)
{
	return in->usage.known && in->usage.pid == in->pid && now - in->usage.read_ns < max_age_ns;
}

/* Every instance with a process and no cgroup, read from one pass over /proc. */
static void sample_processes(struct tally_of_procs *sums, size_t n)
{
	if (n == 0)
		return;
	qsort(sums, n, sizeof(*sums), by_instance);
	scan_proc(sums, n);
	for (size_t i = 0; i < n; i++)
		take_reading(sums[i].in, sums[i].rss_pages * page_bytes(), ticks_to_usec(sums[i].cpu_ticks));
}

/* Reads the instances with a process of workers [from, end) whose reading
 * is max_age_ns old or more; true when a reading it kept is older than
 * USAGE_FRESH_NS. */
static bool sample_workers(struct host *h, size_t from, size_t end, int64_t max_age_ns)
{
	size_t n = 0, max = 0;
	for (size_t i = from; i < end; i++)
		max += (size_t)h->workers[i]->ninst;
	struct tally_of_procs *sums = max ? xcalloc(max, sizeof(*sums)) : NULL;
	int64_t now = mono_ns();
	bool kept_stale = false;
	for (size_t i = from; i < end; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			struct instance *in = h->workers[i]->inst[k];
			if (in->pid <= 0)
				continue;
			if (reading_younger(in, now, max_age_ns))
				kept_stale |= !reading_younger(in, now, USAGE_FRESH_NS);
			else if (!sample_cgroup(in))
				sums[n++].in = in;
		}
	sample_processes(sums, n);
	free(sums);
	return kept_stale;
}

void usage_sample_all(struct host *h)
{
	sample_workers(h, 0, h->nworkers, USAGE_FRESH_NS);
}

bool usage_sample_slice(struct host *h, size_t *from, size_t count)
{
	if (!cgroup_active(&h->cgroups))
		count = h->nworkers; /* one pass over /proc reads them all: in one go */
	size_t end = *from + count < h->nworkers ? *from + count : h->nworkers;
	sample_workers(h, *from < end ? *from : end, end, USAGE_FRESH_NS);
	*from = end;
	return end >= h->nworkers;
}

bool usage_sample_for_scrape(struct host *h)
{
	return sample_workers(h, 0, h->nworkers, USAGE_SCRAPE_AGE_NS);
}

void usage_record_all(struct host *h)
{
	usage_sample_all(h);
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++) {
			const struct instance *in = h->workers[i]->inst[k];
			if (in->pid > 0 && in->usage.known && in->usage.pid == in->pid)
				history_instance_usage(h->history, in->worker->conf->name, in->index, in->usage.rss_bytes,
						       in->usage.cpu_usec);
		}
}

static uint64_t timeval_usec(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

void usage_reaped(struct instance *in, const struct rusage *ru)
{
	uint64_t usec = timeval_usec(ru->ru_utime) + timeval_usec(ru->ru_stime), cg;
	/* The cgroup counts what the process's escaped descendants used too. */
	if (cgroup_instance_cpu_usec(in, &cg) == 0 && cg > usec)
		usec = cg;
	uint64_t rss = in->usage.pid == in->pid ? in->usage.rss_bytes : 0;
	take_reading(in, rss, usec);
}

void usage_run_ended(struct instance *in, const struct exit_info *e, uint64_t cycles)
{
	struct worker_tally *t = &in->worker->tally;
	if ((unsigned)e->reason < REASON_COUNT)
		t->exits[e->reason]++;
	t->cycles += cycles;
	t->last_exit_ms = e->at_ms;
	if (in->usage.pid == in->pid && in->pid > 0)
		t->cpu_usec += in->usage.cpu_usec;
	in->usage = (struct usage){0};
}
