/*
 * jobs_report.h - what `ward jobs` and `ward job ID` print, read from the
 * job database the host keeps (<state_dir>/jobs.db, read-only). CLI only.
 */
#ifndef WARD_JOBS_REPORT_H
#define WARD_JOBS_REPORT_H

#include <stdbool.h>

struct jobs_report_opts {
	const char *state_dir;
	const char *queue; /* NULL: every queue */
	const char *state; /* NULL: every state */
	long limit;        /* rows, newest first; <= 0: 20 */
	bool json;
};

int report_jobs(const struct jobs_report_opts *o);
/* Every attempt of job id; 1 when there is no such job. */
int report_job(const struct jobs_report_opts *o, long long id);

#endif
