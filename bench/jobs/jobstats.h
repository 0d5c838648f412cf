/*
 * jobstats.h - the shared counters of the jobs benchmark: a small file that
 * bench/jobs/wardjobs creates and maps, and that the emptyjob plugin maps in
 * every worker process (MAP_SHARED) to count its calls. Times are
 * CLOCK_MONOTONIC ns, comparable across the processes of one machine.
 */
#ifndef WARD_BENCH_JOBSTATS_H
#define WARD_BENCH_JOBSTATS_H

#include <stdint.h>

struct jobstats {
	uint64_t calls;   /* .job calls that returned WARD_OK */
	int64_t last_ns;  /* when the latest of them was called */
	int64_t crash_ns; /* when a "crash" job raised SIGSEGV */
	int64_t spare[5];
};

#endif
