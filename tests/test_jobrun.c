/*
 * test_jobrun.c - jobs on the worker side and their transport: `ward test
 * --job/--jobs` and the harness hand jobs to .job through the host's own
 * runtime channel (channel_send_job, FRAME_JOB_END), inline and through a
 * memfd both ways; and what every worker gets besides: ward_last_exit,
 * ward_restarts, ward_watch_fd.
 */
#define _GNU_SOURCE
#include "support.h"
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ward_harness.h>


TestSuite(jobrun, .fini = wt_teardown, .timeout = 120);

static char *fixture(const char *stem)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s.so", FIXTURE_DIR, stem) > 0);
	return wt_keep(p);
}

/* Runs `ward ARGS` (no -c) and returns its exit code, stdout in *out. */
static int ward(const char *args, char **out)
{
	char cmd[8192], o[64], e[64];
	snprintf(o, sizeof(o), "/tmp/ward-jobrun-%d.out", (int)getpid());
	snprintf(e, sizeof(e), "/tmp/ward-jobrun-%d.err", (int)getpid());
	snprintf(cmd, sizeof(cmd), "timeout 60 %s %s >%s 2>%s", WARD_BIN, args, o, e);
	int status = system(cmd);
	*out = wt_read(o);
	char *err = wt_read(e);
	cr_assert(*out && err, "could not run %s", cmd);
	unlink(o);
	unlink(e);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- ward test --job ---- */

Test(jobrun, ward_test_job_reports_each_outcome_result_and_its_log_lines_carry_the_job)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --job hello --job fail --job ret3 --timeout 20s", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 1, "a failed job fails the test:\n%s", out);
	cr_expect(strstr(out, "  job 1 ") && strstr(out, "done  result \"len=5:hello\""), "%s", out);
	cr_expect(strstr(out, "  job 2 ") && strstr(out, "failed: asked to fail"),
		  "a negative return ends with the last error line:\n%s", out);
	cr_expect(strstr(out, "  job 3 ") && strstr(out, "failed: returned 3"), "%s", out);
	cr_expect(strstr(out, "job=1 INFO job 1 attempt 1 key - bytes 5"), "log lines carry job=N:\n%s", out);
	cr_expect(strstr(out, "job=2 ERROR asked to fail"), "%s", out);
	cr_expect(strstr(out, "ended: stopped"), "after the last job the plugin is stopped:\n%s", out);
	cr_expect(strstr(out, "(no shutdown function)"), "job_echo has no shutdown:\n%s", out);
}

Test(jobrun, ward_test_job_passes_when_every_job_is_done)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --job a --job bb --timeout 20s", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 0, "%s", out);
	cr_expect(strstr(out, "result \"len=1:a\"") && strstr(out, "result \"len=2:bb\""), "%s", out);
	cr_expect(strstr(out, "ok: the plugin behaved"), "%s", out);
}

Test(jobrun, a_result_of_1_mib_comes_back_whole_and_a_larger_one_is_refused)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --job big --job huge --timeout 20s --json", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 0, "%s", out);
	cr_expect(strstr(out, "\"id\": 1, \"outcome\": \"done\""), "%s", out);
	cr_expect(strstr(out, "\"result_bytes\": 1048576"), "the 1 MiB result (through a memfd) is whole:\n%s", out);
	cr_expect(strstr(out, "\"result\": \"rc=-1 EMSGSIZE\""),
		  "ward_job_result refuses 1 MiB + 1 with EMSGSIZE:\n%s", out);
}

Test(jobrun, jobs_file_hands_one_job_per_line_and_large_payloads_go_through_a_memfd)
{
	char path[] = "/tmp/ward-jobrun-jobs-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	FILE *f = fdopen(fd, "w");
	for (int i = 0; i < 100000; i++)
		fputc('p', f);
	fputs("\n\nsecond\nthird\n", f);
	fclose(f);
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --jobs %s --timeout 20s --json", fixture("job_echo"), path);
	int rc = ward(args, &out);
	unlink(path);
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "\"result\": \"len=100000:pppp"), "a 100 kB payload arrives whole:\n%s", out);
	cr_expect(strstr(out, "\"id\": 2, \"outcome\": \"done\"") && strstr(out, "len=6:second"),
		  "a blank line is skipped:\n%s", out);
	cr_expect(strstr(out, "\"id\": 3, \"outcome\": \"done\"") && strstr(out, "len=5:third"), "%s", out);
	cr_expect(!strstr(out, "\"id\": 4"), "%s", out);
}

Test(jobrun, a_crash_in_a_job_leaves_it_unfinished_with_the_exit_reason)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --job crash --job next --timeout 20s", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 1, "%s", out);
	cr_expect(strstr(out, "  job 1 ") && strstr(out, "unfinished: the process ended holding it: signal SIGSEGV: in a job"),
		  "%s", out);
	cr_expect(strstr(out, "  job 2 ") && strstr(out, "not-run"), "%s", out);
}

Test(jobrun, jobs_reach_a_plugin_with_cycles_without_waiting_out_its_interval)
{
	char *out, args[1024];
	/* interval 1h: if a job waited for the interval, the run would time out */
	snprintf(args, sizeof(args), "test %s interval=1h --job a --job b --timeout 20s", fixture("job_and_cycle"));
	long long t0 = now_ms();
	cr_expect_eq(ward(args, &out), 0, "%s", out);
	cr_expect_lt(now_ms() - t0, 15000, "%s", out);
	/* Both jobs done, whenever they came: before the first cycle (both may,
	 * on a fast run) or in the idle wait after it, which would otherwise
	 * last the hour. That a job ends an idle wait already under way is
	 * jobs::a_plugin_with_cycles_takes_jobs_during_its_idle_wait, where the
	 * job is queued only once the worker is idle. */
	cr_expect_eq(wt_count(out, "done  result \"cycles="), 2, "%s", out);
}

Test(jobrun, ward_test_job_refuses_a_plugin_without_job_and_in_process_runs)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --job a --timeout 20s", fixture("idle"));
	cr_expect_eq(ward(args, &out), 1, "%s", out);
	cr_expect(strstr(out, "error: the plugin has no .job function"), "%s", out);
	snprintf(args, sizeof(args), "test %s --job a --in-process --timeout 20s", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 1, "%s", out);
	cr_expect(strstr(out, "error: --job and --jobs need the host: drop --in-process"), "%s", out);
}

Test(jobrun, a_plugin_with_neither_cycle_nor_job_is_refused_clearly)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s --timeout 20s", fixture("neither"));
	cr_expect_eq(ward(args, &out), 1, "%s", out);
	cr_expect(strstr(out, "load-failed: plugin 'neither' has neither a cycle nor a job function"), "%s", out);
}

/* ---- the harness ---- */

Test(jobrun, harness_queues_jobs_and_reports_outcomes_and_results)
{
	ward_harness *h = ward_harness_new(fixture("job_echo"));
	size_t a = ward_harness_job(h, "abc", 3);
	size_t b = ward_harness_job(h, "fail", 4);
	size_t c = ward_harness_job(h, "big", 3);
	cr_expect_eq(ward_harness_job_count(h), 3);
	cr_expect_eq(ward_harness_run(h), 1, "a failed job: the run did not pass");
	struct ward_harness_job_outcome o = ward_harness_job_outcome(h, a);
	cr_expect_str_eq(o.outcome, "done");
	cr_expect_eq(o.returned, WARD_OK);
	cr_expect_eq(o.result_len, 9);
	cr_expect(o.result && memcmp(o.result, "len=3:abc", 9) == 0);
	o = ward_harness_job_outcome(h, b);
	cr_expect_str_eq(o.outcome, "failed");
	cr_expect_str_eq(o.message, "asked to fail");
	cr_expect_lt(o.returned, 0);
	o = ward_harness_job_outcome(h, c);
	cr_expect_str_eq(o.outcome, "done");
	cr_expect_eq(o.result_len, 1048576);
	cr_expect(o.result && ((const char *)o.result)[1048575] == 'x');
	cr_expect_str_eq(ward_harness_job_outcome(h, 7).outcome, "not-run");
	cr_expect(ward_harness_log_contains(h, "job=3 INFO job 3 attempt 1"));
	ward_harness_free(h);
}

/* ---- ward_last_exit, ward_restarts ---- */

Test(jobrun, last_exit_and_restarts_after_a_crash_and_reset_by_restart)
{
	wt_setup(&wt, "[p]\nplugin = past_life\ninterval = 1h\nrestart_delay = 50ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 20000, "p", "last exit: (none); restarts: 0"), "%s", wt_log(&wt, "p"));
	cr_assert(wt_wait_log(&wt, 20000, "p", "last exit: signal SIGSEGV"), "%s", wt_log(&wt, "p"));
	char *log = wt_log(&wt, "p");
	cr_expect(strstr(log, "last exit: signal SIGSEGV (core dumped): in a cycle; restarts: 1") ||
		  strstr(log, "last exit: signal SIGSEGV: in a cycle; restarts: 1"),
		  "worded as ward status words it:\n%s", log);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "restart p"), 0, "%s", err);
	cr_expect(wt_wait_log(&wt, 20000, "p", "last exit: stopped; restarts: 0"),
		  "ward restart resets the count:\n%s", wt_log(&wt, "p"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- ward_watch_fd ---- */

Test(jobrun, watch_fd_wakes_an_idle_plugin)
{
	char fifo[512], ini[1024];
	wt_setup(&wt, "");
	snprintf(fifo, sizeof(fifo), "%s/wake.fifo", wt.dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0, "%s", strerror(errno));
	snprintf(ini, sizeof(ini), "[w]\nplugin = watch_fifo\ninterval = 1h\nfifo = %s\n", fifo);
	wt_write_conf(&wt, "w.ini", ini);
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 20000, "w", "cycle 1"), "%s", wt_log(&wt, "w"));
	sleep_ms(300);
	cr_expect(!strstr(wt_log(&wt, "w"), "cycle 2"), "nothing written yet, interval 1h:\n%s", wt_log(&wt, "w"));
	cr_expect(!strstr(wt_log(&wt, "w"), "accepted a descriptor that is not open"), "%s", wt_log(&wt, "w"));
	int fd = open(fifo, O_WRONLY | O_NONBLOCK);
	cr_assert(fd >= 0, "%s", strerror(errno));
	cr_assert_eq(write(fd, "x", 1), 1);
	cr_expect(wt_wait_log(&wt, 10000, "w", "cycle 2"), "data in the fifo starts a cycle:\n%s", wt_log(&wt, "w"));
	cr_assert_eq(write(fd, "y", 1), 1);
	cr_expect(wt_wait_log(&wt, 10000, "w", "cycle 3"), "%s", wt_log(&wt, "w"));
	close(fd);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- the example ---- */

Test(jobrun, the_wordcount_example_counts_the_file_a_job_names)
{
	char path[] = "/tmp/ward-jobrun-wc-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "one two\n  three\n", 16), 16);
	close(fd);
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s/wordcount.so --job %s --job /nonexistent/file --timeout 20s", PLUGIN_DIR,
		 path);
	int rc = ward(args, &out);
	unlink(path);
	cr_expect_eq(rc, 1, "the second job fails:\n%s", out);
	cr_expect(strstr(out, "  job 1 ") && strstr(out, "done  result \"2 3 16\""), "as wc counts it:\n%s", out);
	cr_expect(strstr(out, "failed: unable to open /nonexistent/file: No such file or directory"), "%s", out);
}

/* ---- the watchdog, a stop, and what the channel refuses ---- */

Test(jobrun, the_watchdog_covers_a_running_job)
{
	char *out, args[1024];
	snprintf(args, sizeof(args), "test %s watchdog=500ms --job hang --timeout 20s", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 1, "%s", out);
	cr_expect(strstr(out, "unfinished: the process ended holding it: hung: no progress for 500ms in a job"),
		  "a job that shows no progress is hung, in a job:\n%s", out);
}

Test(jobrun, a_stop_during_a_job_lets_it_finish)
{
	char *out, args[1024];
	/* the run's timeout (SIGTERM) comes while the job sleeps: the job ends
	 * done (its ward_sleep returns early), then the plugin stops */
	snprintf(args, sizeof(args), "test %s --job slow --timeout 100ms", fixture("job_echo"));
	cr_expect_eq(ward(args, &out), 1, "a timed-out run fails:\n%s", out);
	cr_expect(strstr(out, "  job 1 ") && strstr(out, "done  result \"stopped early\""), "%s", out);
	cr_expect(strstr(out, "ended: stopped"), "%s", out);
}

Test(jobrun, descriptors_smuggled_on_the_runtime_channel_are_closed_and_never_read)
{
	wt_setup(&wt, "[s]\nplugin = fd_smuggler\ninterval = 1h\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 20000, "s", "smuggling done"), "%s", wt_log(&wt, "s"));
	sleep_ms(300); /* the host has read every datagram before the log line after them */
	char *log = wt_log(&wt, "s");
	cr_expect(strstr(log, "INFO smuggled 0") && strstr(log, "INFO smuggled 49"),
		  "log lines that came with descriptors still count:\n%s", log);
	int fds = wt_fd_count(wt.pid);
	cr_expect_gt(fds, 0);
	cr_expect_lt(fds, 40, "the host kept descriptors it was sent (%d open)", fds);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 0, "the host answers (it never blocked on a pipe):\n%s", err);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- log lines of a process holding a job ---- */

static char *one_line(enum log_format format, const char *name, int64_t job)
{
	struct log_file lf = {0};
	log_configure(LOG_OUTPUT_FILE, format, NULL);
	cr_assert_eq(log_open(&lf, wt.dir, name, 0, 0), 0);
	log_line(&lf, 1700000000000, 1, 77, job, "INFO", "hello", 5);
	log_line(&lf, 1700000000001, 1, 77, 0, "INFO", "after", 5);
	log_flush(&lf);
	char path[600];
	snprintf(path, sizeof(path), "%s/%s.log", wt.dir, name);
	char *text = wt_read(path);
	log_close(&lf);
	log_configure(LOG_OUTPUT_FILE, LOG_FORMAT_TEXT, NULL);
	cr_assert(text, "no log file at %s", path);
	return text;
}

Test(jobrun, log_lines_carry_the_job_in_text_and_json)
{
	wt_setup(&wt, "");
	char *text = one_line(LOG_FORMAT_TEXT, "w", 42);
	cr_expect(strstr(text, " [w:1] pid=77 job=42 INFO hello\n"), "%s", text);
	cr_expect(strstr(text, " [w:1] pid=77 INFO after\n"), "no job, no marker:\n%s", text);
	char *json = one_line(LOG_FORMAT_JSON, "j", 42);
	cr_expect(strstr(json, "\"worker\":\"j\",\"instance\":1,\"pid\":77,\"job\":42,\"level\":\"info\",\"msg\":\"hello\"}"),
		  "%s", json);
	cr_expect(strstr(json, "\"pid\":77,\"level\":\"info\",\"msg\":\"after\"}"), "%s", json);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'");
	char *out;
	cr_expect_eq(wt_run_with_input(cmd, json, &out), 0, "python's json reads every line:\n%s", json);
}
