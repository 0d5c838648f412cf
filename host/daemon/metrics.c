/*
 * metrics.c - renders the host's metrics in the Prometheus text format from
 * what the host keeps in memory (the workers, their instances' slots, the
 * tallies of usage.c), plus one reading of memory and CPU time per scrape.
 * Runs in the host, in its loop; writes into a FILE the caller owns (a
 * memory stream for the control socket or the HTTP endpoint).
 *
 * Every family is written with its HELP and TYPE, even without samples
 * (the job families, until there are jobs), so a scraper sees one schema.
 * The plugins' own metrics (ward_plugin_*, from ward_gauge and ward_count)
 * come last, each family once, with the samples of every worker that has it.
 * Counters end in _total; the state is a stateset written as a gauge (one
 * sample per state, 1 for the current one); sizes are bytes, times seconds.
 */
#define _GNU_SOURCE
#include "daemon/metrics.h"
#include "daemon/jobs.h"
#include "daemon/host.h"
#include "daemon/sdnotify.h"
#include "daemon/usage.h"
#include "daemon/worker.h"
#include "common/pmetric.h"
#include "common/proto.h"
#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ward.h>

#ifndef WARD_VERSION
#define WARD_VERSION "0.1.0"
#endif

/* What one worker's samples say, gathered once per scrape. */
struct worker_figures {
	char *name;            /* the label value, escaped; owned */
	uint64_t rss_bytes;    /* its live processes now */
	uint64_t cpu_usec;     /* ended and live processes */
	uint64_t cycles;       /* ended and live processes */
};

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static char *escape_label(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
	char *out = xcalloc(n + 1, 1), *q = out;
	for (const char *p = s; *p; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n')
			*q++ = '\\';
		*q++ = *p == '\n' ? 'n' : *p;
	}
	return out;
}

static void gather(const struct worker *w, struct worker_figures *f)
{
	*f = (struct worker_figures){.name = escape_label(w->conf->name), .cpu_usec = w->tally.cpu_usec,
				     .cycles = w->tally.cycles};
	for (int i = 0; i < w->ninst; i++) {
		const struct instance *in = w->inst[i];
		if (in->pid <= 0)
			continue; /* its last run is in the tally */
		f->cycles += atomic_load_explicit(&in->slot->cycles, memory_order_relaxed);
		if (in->usage.known && in->usage.pid == in->pid) {
			f->rss_bytes += in->usage.rss_bytes;
			f->cpu_usec += in->usage.cpu_usec;
		}
	}
}

static void write_build_info(FILE *out)
{
	family(out, "ward_build_info", "gauge", "ward's version and plugin ABI version; always 1.");
	fprintf(out, "ward_build_info{version=\"%s\",abi=\"%d\"} 1\n", WARD_VERSION, WARD_ABI_VERSION);
}

static void write_states(FILE *out, struct host *h, const struct worker_figures *f)
{
	family(out, "ward_worker_state", "gauge",
	       "The worker's state, one sample per state: 1 for the current one, 0 for the others.");
	for (size_t i = 0; i < h->nworkers; i++) {
		enum istate now = worker_state(h->workers[i]);
		for (int s = 0; s < IS_COUNT; s++)
			fprintf(out, "ward_worker_state{worker=\"%s\",state=\"%s\"} %d\n", f[i].name,
				istate_name((enum istate)s), s == (int)now);
	}
	family(out, "ward_worker_ready", "gauge", "1 when every instance of the worker is running (its init returned 0), else 0.");
	for (size_t i = 0; i < h->nworkers; i++) {
		const struct worker *w = h->workers[i];
		fprintf(out, "ward_worker_ready{worker=\"%s\"} %d\n", f[i].name, w->in_state[IS_RUNNING] == w->ninst);
	}
}

static void write_exits(FILE *out, struct host *h, const struct worker_figures *f)
{
	family(out, "ward_worker_restarts_total", "counter", "Restarts of the worker's instances by the restart policy.");
	for (size_t i = 0; i < h->nworkers; i++)
		fprintf(out, "ward_worker_restarts_total{worker=\"%s\"} %u\n", f[i].name, h->workers[i]->restarts);
	family(out, "ward_worker_exits_total", "counter", "Processes of the worker that ended, by exit reason.");
	for (size_t i = 0; i < h->nworkers; i++)
		for (int r = REASON_NONE + 1; r < REASON_COUNT; r++)
			fprintf(out, "ward_worker_exits_total{worker=\"%s\",reason=\"%s\"} %llu\n", f[i].name,
				reason_name((enum reason)r), (unsigned long long)h->workers[i]->tally.exits[r]);
	family(out, "ward_worker_last_exit_timestamp_seconds", "gauge",
	       "When the worker's last process ended (Unix time); no sample before one has.");
	for (size_t i = 0; i < h->nworkers; i++) {
		int64_t at = h->workers[i]->tally.last_exit_ms;
		if (at)
			fprintf(out, "ward_worker_last_exit_timestamp_seconds{worker=\"%s\"} %lld.%03lld\n", f[i].name,
				(long long)(at / 1000), (long long)(at % 1000));
	}
}

static void write_usage(FILE *out, struct host *h, const struct worker_figures *f)
{
	family(out, "ward_worker_cycles_total", "counter", "Cycles completed by the worker's processes, ended ones included.");
	for (size_t i = 0; i < h->nworkers; i++)
		fprintf(out, "ward_worker_cycles_total{worker=\"%s\"} %llu\n", f[i].name, (unsigned long long)f[i].cycles);
	family(out, "ward_worker_memory_bytes", "gauge",
	       "Resident memory of the worker's processes now: their cgroups' memory.current, or the sum of their resident sets.");
	for (size_t i = 0; i < h->nworkers; i++)
		fprintf(out, "ward_worker_memory_bytes{worker=\"%s\"} %llu\n", f[i].name, (unsigned long long)f[i].rss_bytes);
	family(out, "ward_worker_cpu_seconds_total", "counter", "CPU time used by the worker's processes, ended ones included.");
	for (size_t i = 0; i < h->nworkers; i++)
		fprintf(out, "ward_worker_cpu_seconds_total{worker=\"%s\"} %llu.%06llu\n", f[i].name,
			(unsigned long long)(f[i].cpu_usec / 1000000), (unsigned long long)(f[i].cpu_usec % 1000000));
	family(out, "ward_socket_connections_total", "counter",
	       "Connections the host took on the worker's listen sockets itself: one per socket activation, and each one closed while the worker was failed. Connections the worker accepts are not seen by the host.");
	for (size_t i = 0; i < h->nworkers; i++)
		if (h->workers[i]->nlisteners)
			fprintf(out, "ward_socket_connections_total{worker=\"%s\"} %llu\n", f[i].name,
				(unsigned long long)h->workers[i]->tally.connections);
	family(out, "ward_notify_ignored_total", "counter",
	       "sd_notify messages to $NOTIFY_SOCKET ignored because their sender is in no command worker's process group or cgroup.");
	fprintf(out, "ward_notify_ignored_total %llu\n", (unsigned long long)sdnotify_foreign(h));
}

/* ---- the plugins' own metrics ---- */

struct plugin_sample {
	const struct pmetric *m;
	size_t worker; /* index in host->workers, and in the figures */
	int instance;
};

/* By name, so that each family is written once with all its samples (the
 * text format wants a family's samples together); then by worker and instance. */
static int by_family(const void *a, const void *b)
{
	const struct plugin_sample *x = a, *y = b;
	int c = strcmp(x->m->name, y->m->name);
	if (c)
		return c;
	if (x->worker != y->worker)
		return x->worker < y->worker ? -1 : 1;
	return x->instance - y->instance;
}

static void write_plugin_metrics(FILE *out, struct host *h, const struct worker_figures *f)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < h->nworkers; i++)
		for (int j = 0; j < h->workers[i]->ninst; j++)
			n += h->workers[i]->inst[j]->metrics.n;
	if (!n)
		return;
	struct plugin_sample *s = xcalloc(n, sizeof(*s));
	for (size_t i = 0; i < h->nworkers; i++)
		for (int j = 0; j < h->workers[i]->ninst; j++) {
			const struct pmetric_set *set = &h->workers[i]->inst[j]->metrics;
			for (size_t m = 0; m < set->n; m++)
				s[k++] = (struct plugin_sample){&set->v[m], i, j};
		}
	qsort(s, n, sizeof(*s), by_family);
	for (size_t i = 0; i < n; i++) {
		const struct pmetric *m = s[i].m;
		char name[sizeof(PMETRIC_PREFIX) + PMETRIC_NAME_MAX], value[32];
		snprintf(name, sizeof(name), PMETRIC_PREFIX "%s", m->name);
		if (i == 0 || strcmp(s[i - 1].m->name, m->name) != 0)
			family(out, name, m->kind == PMETRIC_COUNTER ? "counter" : "gauge",
			       m->kind == PMETRIC_COUNTER
				       ? "A plugin's own count (ward_count), the instance's ended processes included."
				       : "A plugin's own gauge (ward_gauge): the last value the instance's process set.");
		pmetric_format_value(pmetric_value(m), value, sizeof(value));
		fprintf(out, "%s{worker=\"%s\",instance=\"%d\"} %s\n", name, f[s[i].worker].name, s[i].instance, value);
	}
	free(s);
}

/* ---- the host's own process (the names every Prometheus client library uses) ---- */

static ssize_t slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* When this process started (Unix time, seconds), from its starttime in
 * clock ticks since boot and the boot time; -1 when /proc does not say. */
static double start_time_seconds(void)
{
	static double start = -1;
	if (start >= 0)
		return start; /* a process's start does not move */
	char buf[4096];
	unsigned long long ticks, btime = 0;
	const char *p = slurp("/proc/self/stat", buf, sizeof(buf)) > 0 ? strrchr(buf, ')') : NULL;
	/* after ")": field 3 is the state, field 22 starttime */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &ticks) != 1)
		return -1;
	const char *b = slurp("/proc/stat", buf, sizeof(buf)) > 0 ? strstr(buf, "\nbtime ") : NULL;
	if (!b || sscanf(b + 7, "%llu", &btime) != 1)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	start = (double)btime + (double)ticks / (double)(hz > 0 ? hz : 100);
	return start;
}

/* Since Linux 6.2 the size of /proc/self/fd is the number of descriptors:
 * one stat() instead of reading a directory of ten thousand entries. */
static long open_fds(void)
{
	struct stat st;
	if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
		return (long)st.st_size;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void write_process(FILE *out)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		family(out, "process_cpu_seconds_total", "counter", "CPU time used by the host process (user and system).");
		fprintf(out, "process_cpu_seconds_total %.6f\n",
			(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	}
	char buf[256];
	unsigned long long size, resident;
	if (slurp("/proc/self/statm", buf, sizeof(buf)) > 0 && sscanf(buf, "%llu %llu", &size, &resident) == 2) {
		unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
		family(out, "process_resident_memory_bytes", "gauge", "Resident memory of the host process.");
		fprintf(out, "process_resident_memory_bytes %llu\n", resident * page);
		family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory of the host process.");
		fprintf(out, "process_virtual_memory_bytes %llu\n", size * page);
	}
	long fds = open_fds();
	if (fds >= 0) {
		family(out, "process_open_fds", "gauge", "Open file descriptors of the host process.");
		fprintf(out, "process_open_fds %ld\n", fds);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		family(out, "process_max_fds", "gauge", "The host process's limit of open file descriptors.");
		fprintf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
	double start = start_time_seconds();
	if (start >= 0) {
		family(out, "process_start_time_seconds", "gauge", "When the host process started (Unix time).");
		fprintf(out, "process_start_time_seconds %.2f\n", start);
	}
}

static void write_families(struct host *h, FILE *out)
{
	struct worker_figures *f = h->nworkers ? xcalloc(h->nworkers, sizeof(*f)) : NULL;
	for (size_t i = 0; i < h->nworkers; i++)
		gather(h->workers[i], &f[i]);
	write_build_info(out);
	write_states(out, h, f);
	write_exits(out, h, f);
	write_usage(out, h, f);
	jobs_write_metrics(h, out); /* the ward_jobs* families (jobs.c) */
	write_process(out);
	write_plugin_metrics(out, h, f);
	for (size_t i = 0; i < h->nworkers; i++)
		free(f[i].name);
	free(f);
}

void metrics_write(struct host *h, FILE *out)
{
	usage_sample_all(h);
	write_families(h, out);
}

bool metrics_write_for_scrape(struct host *h, FILE *out)
{
	bool refresh = usage_sample_for_scrape(h);
	write_families(h, out);
	return refresh;
}
