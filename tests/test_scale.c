/*
 * test_scale.c - the host's descriptor budget: one descriptor per worker
 * process (its stdout pipe; log files are opened on demand), so a limit
 * that could not hold two per worker still starts them all, and a limit
 * too small even for one is said once, with what to raise.
 */
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

TestSuite(scale, .fini = wt_teardown, .timeout = 60);

/* The limit the host inherits; it raises its soft limit to the hard one. */
#define HARD_LIMIT 256

/* n single-instance idle workers w0..w<n-1>: one log file each. */
static void setup_workers(int n)
{
	size_t cap = (size_t)n * 40 + 1;
	char *ini = wt_keep(calloc(1, cap));
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(ini + len, cap - len, "[w%d]\nplugin = idle\n", i);
	wt_setup(&wt, ini);
}

/* The host and everything it starts get HARD_LIMIT (this test's process too:
 * Criterion runs each test in a process of its own). */
static void launch_under_limit(void)
{
	struct rlimit rl = {HARD_LIMIT, HARD_LIMIT};
	cr_assert(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: %s", strerror(errno));
	wt_start(&wt);
}

static long long running(void)
{
	return wt_sql_int(&wt, "SELECT count(*) FROM instances WHERE state = 'running'");
}

/* 150 workers: two descriptors each (300) do not fit under 256, one each does. */
Test(scale, workers_that_fit_with_one_descriptor_each_all_start)
{
	setup_workers(150);
	launch_under_limit();
	bool all = wt_wait_sql(&wt, 30000, "SELECT count(*) = 150 FROM instances WHERE state = 'running'");
	cr_expect(all, "%lld of 150 workers running; the host said:\n%s", running(), wt_host_stderr(&wt));
	char *err = wt_host_stderr(&wt);
	cr_expect(!strstr(err, "file descriptors") && !strstr(err, "Too many open files"), "the host said:\n%s", err);
	/* Logs still work for every worker, opened on demand. */
	cr_expect(wt_wait_log(&wt, 5000, "w0", "ready") && wt_wait_log(&wt, 5000, "w149", "ready"));
	cr_expect_eq(wt_stop(&wt, 20000), 0);
}

/* 250 workers need more than 256 even at one each: the rest wait, said once. */
Test(scale, too_many_workers_for_the_limit_are_said_once_with_what_to_raise)
{
	setup_workers(250);
	launch_under_limit();
	bool said = false;
	for (long long deadline = now_ms() + 30000; !said && now_ms() < deadline; sleep_ms(50))
		said = strstr(wt_host_stderr(&wt), "out of file descriptors") != NULL;
	cr_assert(said, "no word on the limit; the host said:\n%s", wt_host_stderr(&wt));
	sleep_ms(2500); /* the waiting instances retry every second: twice at least */
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(err, "out of file descriptors"), 1, "said more than once:\n%s", err);
	cr_expect(strstr(err, "RLIMIT_NOFILE is 256") && strstr(err, "LimitNOFILE=") && strstr(err, "ulimit -n"),
		  "the line does not say what to raise:\n%s", err);
	cr_expect_eq(wt_count(err, "unable to start a process"), 1, "not one line for all:\n%s", err);
	long long run = running();
	cr_expect(run > 100 && run < 250, "%lld running", run);
	cr_expect(wt_sql_int(&wt, "SELECT count(*) FROM events WHERE detail = 'out of file descriptors (RLIMIT_NOFILE 256)'") > 0,
		  "the waiting instances' events do not say why");
	cr_expect_eq(wt_stop(&wt, 20000), 0);
}

/* More workers than log files kept open: a rename plus SIGUSR1 (logrotate)
 * still sends every worker's next lines to a new file at its path. */
Test(scale, logs_closed_between_writes_still_follow_sigusr1)
{
	setup_workers(80);
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) = 80 FROM instances WHERE state = 'running'"),
		  "%lld of 80 running; the host said:\n%s", running(), wt_host_stderr(&wt));
	char from[1200], to[1300];
	snprintf(from, sizeof(from), "%s/logs/w3.log", wt.state);
	snprintf(to, sizeof(to), "%s.1", from);
	cr_assert(rename(from, to) == 0, "rename %s: %s", from, strerror(errno));
	kill(wt.pid, SIGUSR1);
	bool said = false;
	for (long long deadline = now_ms() + 5000; !said && now_ms() < deadline; sleep_ms(20))
		said = strstr(wt_host_stderr(&wt), "reopened 80 of 80 worker logs") != NULL;
	cr_expect(said, "the host said:\n%s", wt_host_stderr(&wt));
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "restart w3"), 0, "%s", err);
	cr_expect(wt_wait_log(&wt, 5000, "w3", "stop requested") || wt_wait_log(&wt, 5000, "w3", "started"),
		  "no new lines in the new w3.log");
	cr_expect_eq(wt_stop(&wt, 20000), 0);
}
