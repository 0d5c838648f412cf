/*
 * emptyjob.c - benchmark plugin for bench/jobs: a job-only plugin whose .job
 * returns WARD_OK at once. Runs in the worker processes of the ward host that
 * bench/jobs/run.sh starts.
 *
 * What it records, so that the driver (bench/jobs/wardjobs.c) can time it:
 *   - the job's result is the CLOCK_MONOTONIC time (ns, decimal text) at
 *     which .job was called: enqueue -> .job latency, read by `wait ID`;
 *   - when the key `stats` names a file, the plugin maps it shared and counts
 *     every call in it (struct jobstats below, shared by both instances and
 *     read by the driver while it runs): enqueue -> done throughput without
 *     asking the host anything while it is measured;
 *   - a payload "crash" on the job's first attempt stores the time in
 *     crash_ns and raises SIGSEGV while holding the job: recovery time is
 *     the second attempt's call time minus crash_ns.
 */
#include <ward.h>

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "jobstats.h"

static struct jobstats *stats; /* one mapping per process, NULL without `stats` */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int emptyjob_init(ward_ctx *ctx, void **state)
{
	*state = NULL;
	const char *path = ward_conf(ctx, "stats");
	if (!path || !*path)
		return 0;
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		ward_log(ctx, WARD_LOG_ERROR, "cannot open the stats file %s", path);
		return -1;
	}
	void *p = mmap(NULL, sizeof(struct jobstats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		ward_log(ctx, WARD_LOG_ERROR, "cannot map the stats file %s", path);
		return -1;
	}
	stats = p;
	return 0;
}

static int emptyjob_job(ward_ctx *ctx, void *state, ward_job *job)
{
	(void)state;
	int64_t now = mono_ns();
	size_t len = 0;
	const char *payload = ward_job_payload(job, &len);
	if (len == 5 && memcmp(payload, "crash", 5) == 0 && ward_job_attempt(job) == 1) {
		if (stats)
			__atomic_store_n(&stats->crash_ns, mono_ns(), __ATOMIC_SEQ_CST);
		raise(SIGSEGV); /* dies holding the job */
	}
	char text[24];
	int n = snprintf(text, sizeof(text), "%lld", (long long)now);
	ward_job_result(ctx, job, text, (size_t)n);
	if (stats) {
		__atomic_store_n(&stats->last_ns, mono_ns(), __ATOMIC_RELAXED);
		__atomic_add_fetch(&stats->calls, 1, __ATOMIC_SEQ_CST);
	}
	return WARD_OK;
}

static const struct ward_option emptyjob_options[] = {
	{.name = "stats", .type = WARD_OPT_STRING, .help = "file the calls are counted in (bench/jobs/wardjobs creates it)"},
	{.name = NULL},
};

WARD_PLUGIN(.name = "emptyjob", .version = "1.0", .description = "bench: a job that returns WARD_OK at once",
	    .init = emptyjob_init, .job = emptyjob_job, .options = emptyjob_options);
