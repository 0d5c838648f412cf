/*
 * usage.h - what workers use and have done, for `ward metrics` and `ward
 * status` (host process): the resident memory and CPU time of an instance's
 * processes, read from its cgroup (memory.current, cpu.stat) or from /proc
 * only when asked (a scrape, a status, or right after a scrape's answer),
 * never on a timer; and the worker's
 * tally of processes that ended (by reason, their cycles and CPU time), kept
 * where a run ends.
 */
#ifndef WARD_USAGE_H
#define WARD_USAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/reason.h"

struct host;
struct instance;
struct rusage;
struct worker;

/* An instance's current run, as last read. */
struct usage {
	pid_t pid;           /* the process it was read for; 0: none read yet */
	bool known;          /* rss_bytes and cpu_usec hold figures */
	uint64_t rss_bytes;  /* resident memory of every process of the run */
	uint64_t cpu_usec;   /* CPU time of the run so far: never less than an earlier reading */
	int64_t read_ns;     /* mono_ns() of the reading: one younger than USAGE_FRESH_NS is reused */
};

/* How long a reading stands: scrapes and `ward status` calls within it (a
 * scrape storm, several Prometheus servers) read no file again. */
#define USAGE_FRESH_NS (1000LL * 1000 * 1000)

/* A worker's processes that ended, since the worker was created (boot or a
 * reload that changed it). Counters only grow. */
struct worker_tally {
	uint64_t exits[REASON_COUNT]; /* by exit reason */
	uint64_t cycles;              /* cycles those processes completed */
	uint64_t cpu_usec;            /* CPU time they used */
	int64_t last_exit_ms;         /* wall clock of the latest end; 0: none yet */
	uint64_t connections;         /* connections the host itself took on the worker's sockets */
};

/* How old a reading a scrape may serve, when scrapes keep coming: a scrape
 * answers from the readings taken after the scrape before it (then reads
 * them again, its answer out), so that reading one file per figure (about
 * 40 us an instance) is not in its time. One whose reading is older, or who
 * has none of this run, is read at once. */
#define USAGE_SCRAPE_AGE_NS (300LL * 1000 * 1000 * 1000)

/* Reads the figures of every instance of h that has a process into its
 * `usage` (one pass over /proc when there are no cgroups). */
void usage_sample_all(struct host *h);
/* The same for a scrape: keeps readings younger than USAGE_SCRAPE_AGE_NS.
 * true when one of those is older than USAGE_FRESH_NS: call
 * usage_sample_all() once the answer is out. */
bool usage_sample_for_scrape(struct host *h);
/* usage_sample_all() in slices, for the loop's other work to come between:
 * the instances of workers [*from, *from + count) (every worker when there
 * are no cgroups: one pass over /proc reads them all). Advances *from;
 * true once it is past the last worker. */
bool usage_sample_slice(struct host *h, size_t *from, size_t count);
/* usage_sample_all, then writes each live instance's figures to history (status reads them). */
void usage_record_all(struct host *h);
/* The host reaped the instance's process with this rusage: its final CPU time. */
void usage_reaped(struct instance *in, const struct rusage *ru);
/* The run is over (end_run): counted in the worker's tally. */
void usage_run_ended(struct instance *in, const struct exit_info *e, uint64_t cycles);

#endif
