/*
 * test_logs13.c - the host's logs under what operators and workers do to
 * them: an external logrotate and its SIGUSR1, stray signals that must not
 * end the host, JOURNAL_STREAM left over from a redirected stderr, a worker
 * forging a frame's time, a worker writing terminal escape sequences for
 * `ward logs` to print, and a log directory the host may no longer search.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void logs_init(void)
{
	unsetenv("JOURNAL_STREAM"); /* a test runner under systemd may set it */
}
TestSuite(logs, .init = logs_init, .fini = wt_teardown, .timeout = 90);

/* ---- helpers ---- */

static char *log_path(const char *file)
{
	char *path;
	cr_assert(asprintf(&path, "%s/logs/%s", wt.state, file) > 0);
	return wt_keep(path);
}

/* Waits until the host's stderr contains needle. */
static bool wait_host_said(int timeout_ms, const char *needle)
{
	long long deadline = now_ms() + timeout_ms;
	do {
		char *err = wt_read_raw(wt.errfile);
		bool found = err && strstr(err, needle);
		free(err);
		if (found)
			return true;
		sleep_ms(20);
	} while (now_ms() < deadline);
	return false;
}

/* The highest N of "tick N" in text (0: none), and whether every tick from
 * first to that one is there exactly once. */
static int last_tick(const char *text, int first, bool *contiguous)
{
	int last = 0;
	*contiguous = true;
	for (int n = first;; n++) {
		char needle[32];
		snprintf(needle, sizeof(needle), "INFO tick %d\n", n);
		int times = wt_count(text, needle);
		if (times == 0)
			break;
		*contiguous = *contiguous && times == 1;
		last = n;
	}
	return last;
}

/* The lowest N of "tick N" in text, or 0. */
static int first_tick(const char *text)
{
	const char *at = text ? strstr(text, "INFO tick ") : NULL;
	return at ? atoi(at + strlen("INFO tick ")) : 0;
}

/* The /proc/PID/status field `key` ("SigBlk:") of pid, or "" */
static char *proc_status_field(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *status = wt_read(path);
	const char *at = status ? strstr(status, key) : NULL;
	if (!at)
		return "";
	at += strlen(key);
	at += strspn(at, " \t");
	return wt_keep(strndup(at, strcspn(at, "\n")));
}

/* ---- SIGUSR1: reopen every log ---- */

Test(logs, sigusr1_reopens_every_log_after_an_external_rotation)
{
	wt_setup(&wt, "[a]\nplugin = logs_ticker\n\n[b]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "a", "INFO tick 3\n"), "a's log:\n%s", wt_log(&wt, "a"));
	cr_assert(wt_wait_log(&wt, 5000, "b", "idle ready"), "b's log:\n%s", wt_log(&wt, "b"));
	/* What logrotate does without copytruncate: rename, then signal. */
	cr_assert(rename(log_path("a.log"), log_path("a.log.rotated")) == 0);
	cr_assert(rename(log_path("b.log"), log_path("b.log.rotated")) == 0);
	cr_assert(kill(wt.pid, SIGUSR1) == 0);
	cr_assert(wait_host_said(5000, "SIGUSR1: reopened 2 of 2 worker logs"),
		  "no reopen reported (host %s):\n%s", pid_alive(wt.pid) ? "alive" : "dead", wt_host_stderr(&wt));
	/* b writes nothing: only the reopen can have made its new file. */
	struct stat st;
	cr_expect(stat(log_path("b.log"), &st) == 0, "b.log was not opened again at its path");
	cr_assert(wt_wait_log(&wt, 5000, "a", "INFO tick"), "no new lines in a.log");
	char *old = wt_read(log_path("a.log.rotated"));
	sleep_ms(500);
	char *now = wt_log(&wt, "a");
	cr_expect_str_eq(wt_read(log_path("a.log.rotated")), old, "lines still went to the renamed file");

	/* Every tick is in one file or the other, once: none lost at the switch. */
	bool old_whole, new_whole;
	int old_last = last_tick(old, 1, &old_whole);
	int new_first = first_tick(now);
	int new_last = last_tick(now, new_first, &new_whole);
	cr_expect(old_whole && new_whole, "a tick is missing or repeated:\n--- a.log.rotated\n%s--- a.log\n%s", old, now);
	cr_expect_eq(new_first, old_last + 1, "ticks %d to %d are lost at the reopen", old_last + 1, new_first - 1);
	cr_expect_gt(new_last, new_first, "a.log stopped growing after the reopen:\n%s", now);
	cr_expect(pid_alive(wt.pid), "SIGUSR1 ended the host");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- other signals: logged once, ignored ---- */

/* What the host says of a signal from this process, as it names signals. */
static void ignored_line(int sig, char *buf, size_t size)
{
	const char *abbrev = sigabbrev_np(sig);
	char name[32];
	if (abbrev)
		snprintf(name, sizeof(name), "SIG%s", abbrev);
	else
		snprintf(name, sizeof(name), "signal %d", sig);
	snprintf(buf, size, "%s from pid %d (uid %u) ignored", name, (int)getpid(), (unsigned)getuid());
}

Test(logs, signals_that_would_end_the_host_are_logged_once_and_ignored)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "w", "idle ready"));
	const int sigs[] = {SIGUSR2, SIGALRM,   SIGVTALRM, SIGPROF,  SIGIO,       SIGPWR,
			    SIGSTKFLT, SIGQUIT, SIGXCPU, SIGRTMIN, SIGRTMIN + 5};
	const size_t n = sizeof(sigs) / sizeof(sigs[0]);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < n; i++) {
			cr_assert(kill(wt.pid, sigs[i]) == 0);
			sleep_ms(20); /* one at a time: the same signal pending twice is delivered once */
		}
	char last[96];
	ignored_line(SIGRTMIN + 5, last, sizeof(last));
	cr_assert(wait_host_said(5000, last), "the host %s:\n%s", pid_alive(wt.pid) ? "did not report it" : "died",
		  wt_host_stderr(&wt));
	sleep_ms(200); /* the second round is read by now too */
	cr_assert(pid_alive(wt.pid), "a signal ended the host");
	char *out;
	cr_expect_eq(wt_cli(&wt, &out, NULL, "status"), 0, "ward status after the signals:\n%s", out);
	cr_expect(strstr(out, "running"), "ward status:\n%s", out);

	char *err = wt_host_stderr(&wt);
	for (size_t i = 0; i < n; i++) {
		char said[96];
		ignored_line(sigs[i], said, sizeof(said));
		cr_expect_eq(wt_count(err, said), 1, "\"%s\" is not said exactly once:\n%s", said, err);
	}
	/* The host blocks them all; its workers must not inherit that. */
	pid_t worker = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w'");
	cr_assert_gt(worker, 0);
	cr_expect_str_eq(proc_status_field(worker, "SigBlk:"), "0000000000000000", "the worker starts with signals blocked");
	cr_expect_str_eq(proc_status_field(worker, "SigIgn:"), "0000000000000000", "the worker starts with signals ignored");
	cr_expect_eq(wt_stop(&wt, 10000), 0, "SIGTERM after the ignored signals");
}

/* A worker is forked from the spawner, which resets for it only the signals
 * it found away from their default: what was ignored when ward started must
 * be among them, for a plugin and for a program alike. */
Test(logs, signals_ignored_when_ward_started_are_not_ignored_in_its_workers)
{
	wt_setup(&wt, "[w]\nplugin = idle\n\n[c]\ncommand = sleep 60\n");
	signal(SIGHUP, SIG_IGN); /* as nohup leaves it */
	signal(SIGUSR2, SIG_IGN);
	signal(SIGRTMIN + 3, SIG_IGN);
	wt_start(&wt);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	signal(SIGRTMIN + 3, SIG_DFL);
	cr_assert(wt_wait_log(&wt, 5000, "w", "idle ready"));
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM instances WHERE worker = 'c' AND state = 'running'"),
		  "the command worker did not come up:\n%s", wt_host_stderr(&wt));
	const char *names[] = {"w", "c"};
	for (int i = 0; i < 2; i++) {
		pid_t pid = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = '%s'", names[i]);
		cr_assert_gt(pid, 0);
		cr_expect_str_eq(proc_status_field(pid, "SigIgn:"), "0000000000000000",
				 "worker %s starts with the signals ward started with ignored", names[i]);
		cr_expect_str_eq(proc_status_field(pid, "SigBlk:"), "0000000000000000", "worker %s starts with signals blocked",
				 names[i]);
	}
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- JOURNAL_STREAM ---- */

/* Starts the host with JOURNAL_STREAM naming its stderr's file (`right`) or
 * another one, and returns its stderr once it has said it is up. */
static char *host_lines_with_journal_stream(bool right)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	/* The host's stderr is this file (opened with O_TRUNC: the same inode). */
	int fd = open(wt.errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	struct stat st;
	cr_assert(fstat(fd, &st) == 0);
	close(fd);
	char value[64];
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + (right ? 0 : 1));
	cr_assert(setenv("JOURNAL_STREAM", value, 1) == 0);
	wt_start(&wt);
	unsetenv("JOURNAL_STREAM");
	cr_assert(wait_host_said(5000, "host up"), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	return wt_host_stderr(&wt);
}

Test(logs, journal_stream_of_another_file_gives_plain_lines)
{
	char *err = host_lines_with_journal_stream(false);
	cr_expect(strstr(err, "]: info: host up: ") && strstr(err, "Z ward["), "stderr is not the journal, yet:\n%s", err);
	cr_expect(!strstr(err, "<6>"), "journald priority prefixes on a stderr that is not the journal:\n%s", err);
}

Test(logs, journal_stream_naming_stderr_gives_journald_lines)
{
	char *err = host_lines_with_journal_stream(true);
	cr_expect(strstr(err, "<6>host up: "), "stderr is the journal stream, yet:\n%s", err);
	cr_expect(!strstr(err, " ward["), "plain lines to the journal:\n%s", err);
}

/* ---- timestamps: the host's clock ---- */

/* The time of the log line containing needle, or -1 when it has no sane stamp. */
static time_t stamp_of(const char *log, const char *needle)
{
	const char *at = strstr(log, needle);
	if (!at)
		return -1;
	while (at > log && at[-1] != '\n')
		at--;
	struct tm tm = {0};
	int ms, used = 0;
	if (sscanf(at, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ [%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &ms, &used) != 7 || used != 26)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

Test(logs, log_lines_are_stamped_by_the_host_clock_not_by_the_frame)
{
	time_t before = time(NULL);
	wt_setup(&wt, "[w]\nplugin = logs_forge_time\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "w", "forgery done (sent)"), "%s", wt_log(&wt, "w"));
	time_t after = time(NULL);
	char *log = wt_log(&wt, "w");
	const char *lines[] = {"INFO forged far future\n", "INFO forged before 1970\n", "INFO forgery done"};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		time_t t = stamp_of(log, lines[i]);
		/* Generous: only the host's clock can land in this window. */
		cr_expect(t >= before - 600 && t <= after + 600, "\"%s\" is not stamped with the host's clock:\n%s",
			  lines[i], log);
	}
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- `ward logs` escapes control characters ---- */

Test(logs, ward_logs_prints_control_characters_escaped)
{
	wt_setup(&wt, "[w]\nplugin = logs_escape\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "w", "INFO ward_log title"), "%s", wt_log(&wt, "w"));
	cr_assert(wt_wait_log(&wt, 5000, "w", "OUT stdout title"), "%s", wt_log(&wt, "w"));
	/* The file keeps the bytes the worker wrote. */
	cr_expect(strstr(wt_log(&wt, "w"), "\x1b]0;pwned\x07"), "the log file lost the worker's bytes");

	char *out;
	cr_assert_eq(wt_cli(&wt, &out, NULL, "logs w -n 50"), 0);
	const char *raw[] = {"\x1b", "\x07", "\x7f", "\xc2\x9b"};
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
		cr_expect(!strstr(out, raw[i]), "ward logs printed the raw control byte 0x%02x:\n%s",
			  (unsigned char)raw[i][strlen(raw[i]) - 1], out);
	const char *shown = "title \\x1b]0;pwned\\x07 csi \\xc2\\x9b31m del \\x7f tab\tend\n";
	cr_expect_eq(wt_count(out, shown), 2, "not shown escaped (tab and newline kept) on both lines:\n%s", out);
	cr_expect(strstr(out, "OUT stdout title") && strstr(out, "INFO ward_log title"), "%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- a log directory the host cannot search ---- */

/* Root bypasses directory permissions with CAP_DAC_OVERRIDE and
 * CAP_DAC_READ_SEARCH: the host started from here lacks them (dropped from
 * the bounding set of this test's process, so they are gone after exec),
 * as a hardened service's CapabilityBoundingSet would have it. This process
 * keeps its own to read what the host cannot. */
static void host_without_dac_override(void)
{
	if (geteuid() != 0)
		return; /* a host of another user than root meets permissions anyway */
	cr_assert(prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) == 0, "%s", strerror(errno));
	cr_assert(prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) == 0, "%s", strerror(errno));
}

Test(logs, a_log_directory_the_host_cannot_search_keeps_its_open_log)
{
	host_without_dac_override();
	wt_setup(&wt, "[w]\nplugin = logs_ticker\n");
	wt_start(&wt);
	unsigned long long caps = strtoull(proc_status_field(wt.pid, "CapEff:"), NULL, 16);
	cr_assert(!(caps & (1ull << CAP_DAC_OVERRIDE | 1ull << CAP_DAC_READ_SEARCH)),
		  "the host may still bypass permissions (CapEff %llx)", caps);
	cr_assert(wt_wait_log(&wt, 5000, "w", "INFO tick 3\n"), "%s", wt_log(&wt, "w"));
	char logs[400];
	snprintf(logs, sizeof(logs), "%s/logs", wt.state);
	cr_assert(chmod(logs, 0) == 0);
	/* The host compares the path with its open file once a second: stat()
	 * now fails with EACCES, which says nothing about the file. */
	bool said = wait_host_said(5000, "unable to check that log");
	sleep_ms(2500); /* two more comparisons */
	bool whole;
	int before = last_tick(wt_log(&wt, "w"), 1, &whole);
	sleep_ms(1000);
	int after = last_tick(wt_log(&wt, "w"), 1, &whole);
	cr_assert(chmod(logs, 0750) == 0);
	char *err = wt_host_stderr(&wt);
	cr_expect(said && strstr(err, "Permission denied; writing on to the open file"), "not reported:\n%s", err);
	cr_expect_eq(wt_count(err, "unable to check that log"), 1, "reported more than once:\n%s", err);
	cr_expect(!strstr(err, "unable to write log") && !strstr(err, "deleted or replaced"),
		  "a working log was closed:\n%s", err);
	cr_expect(after >= before + 3 && whole, "the log stopped or lost lines (tick %d, then %d):\n%s", before, after,
		  wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- `ward logs` of several workers, merged in time order ---- */

/* The lines of out whose text names "[worker:", counted. */
static int lines_of(const char *out, const char *worker)
{
	char tag[64];
	snprintf(tag, sizeof(tag), "[%s:", worker);
	return wt_count(out, tag);
}

/* Every line starts with a stamp no earlier than the line before's. */
static bool in_time_order(const char *out, int *lines)
{
	char prev[40] = "";
	*lines = 0;
	for (const char *p = out; *p; (*lines)++) {
		const char *eol = strchr(p, '\n');
		size_t word = strcspn(p, " \n");
		char stamp[40];
		snprintf(stamp, sizeof(stamp), "%.*s", (int)(word < 39 ? word : 39), p);
		if (strcmp(stamp, prev) < 0)
			return false;
		memcpy(prev, stamp, sizeof(prev));
		if (!eol)
			break;
		p = eol + 1;
	}
	return true;
}

Test(logs, ward_logs_with_no_name_merges_every_workers_log_in_time_order)
{
	wt_setup(&wt, "[a]\nplugin = log_stdout\ncycles = 200\nrestart = on-failure\n"
		      "[b]\nplugin = log_stdout\ncycles = 200\nrestart = on-failure\n"
		      "[never]\nplugin = log_stdout\nautostart = no\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE reason = 'done'"));
	cr_assert(wt_wait_log(&wt, 5000, "a", "stdout line 200"));
	cr_assert(wt_wait_log(&wt, 5000, "b", "stdout line 200"));
	char *out, *err;
	/* A worker that never ran has an empty log: it adds nothing. */
	cr_assert_eq(wt_cli(&wt, &out, &err, "logs -n 100000"), 0, "%s", err);
	cr_expect_eq(lines_of(out, "a"), lines_of(wt_log(&wt, "a"), "a"), "%s", out);
	cr_expect_eq(lines_of(out, "b"), lines_of(wt_log(&wt, "b"), "b"), "%s", out);
	cr_expect_geq(lines_of(out, "a"), 400, "both stdout and stderr lines of a");
	int n;
	cr_expect(in_time_order(out, &n), "not in time order:\n%s", out);

	/* -n counts lines in all, the latest of the merge. */
	cr_assert_eq(wt_cli(&wt, &out, &err, "logs -n 30"), 0, "%s", err);
	cr_expect(in_time_order(out, &n) && n == 30, "%d lines:\n%s", n, out);
	cr_expect_eq(lines_of(out, "a") + lines_of(out, "b"), 30, "%s", out);

	/* Two named: the same merge of just those. */
	cr_assert_eq(wt_cli(&wt, &out, &err, "logs b a -n 100000"), 0, "%s", err);
	cr_expect(in_time_order(out, &n), "%s", out);
	cr_expect(lines_of(out, "a") >= 400 && lines_of(out, "b") >= 400, "%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(logs, ward_logs_naming_a_worker_without_a_log_says_so_and_shows_the_others)
{
	wt_setup(&wt, "[a]\nplugin = log_stdout\nrestart = on-failure\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "a", "stdout line 3"));
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "logs a ghost"), 1);
	cr_expect(strstr(err, "ghost.log") && strstr(err, "'ghost'"), "the worker without a log is not named: %s", err);
	cr_expect(strstr(out, "[a:0]") && strstr(out, "stdout line 3"), "%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(logs, ward_logs_follow_with_no_name_prints_every_workers_new_lines)
{
	wt_setup(&wt, "[a]\nplugin = log_stdout\ncycles = 500\nautostart = no\nrestart = on-failure\n"
		      "[b]\nplugin = log_stdout\ncycles = 500\nautostart = no\nrestart = on-failure\n");
	wt_start(&wt);
	/* Nothing ran yet: create the logs so that there is something to follow. */
	for (const char *const *w = (const char *const[]){"a.log", "b.log", NULL}; *w; w++) {
		FILE *f = fopen(log_path(*w), "a");
		cr_assert(f);
		fclose(f);
	}
	char *outpath;
	cr_assert(asprintf(&outpath, "%s/follow.out", wt.dir) > 0);
	wt_keep(outpath);
	pid_t follower = fork();
	cr_assert(follower >= 0);
	if (follower == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		execl(WARD_BIN, "ward", "logs", "-f", "-n", "0", "-c", wt.conf, (char *)NULL);
		_exit(127);
	}
	sleep_ms(300);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start a b"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE reason = 'done'"));
	char *followed = NULL;
	for (int waited = 0; waited < 5000; waited += 50) {
		followed = wt_read(outpath);
		if (followed && strstr(followed, "[a:0]") && wt_count(followed, "stdout line 500\n") == 2)
			break;
		sleep_ms(50);
	}
	kill(follower, SIGTERM);
	waitpid(follower, NULL, 0);
	cr_assert(followed);
	for (int i = 1; i <= 500; i++) {
		char line[64];
		snprintf(line, sizeof(line), "OUT stdout line %d\n", i);
		cr_expect_eq(wt_count(followed, line), 2, "line %d not followed once in each log", i);
	}
	cr_expect_eq(lines_of(followed, "a"), lines_of(wt_log(&wt, "a"), "a"));
	cr_expect_eq(lines_of(followed, "b"), lines_of(wt_log(&wt, "b"), "b"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(logs, status_of_one_worker_ends_with_its_last_log_lines)
{
	wt_setup(&wt, "[a]\nplugin = log_stdout\ncycles = 30\nrestart = on-failure\n[b]\nplugin = log_stdout\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'a' AND reason = 'done'"));
	char *out, *err;
	wt_cli(&wt, &out, &err, "status a");
	cr_expect(strstr(out, "stdout line 30\n"), "the last line is not shown:\n%s", out);
	cr_expect(!strstr(out, "stdout line 5\n"), "more than the last lines are shown:\n%s", out);
	cr_expect(!strstr(out, "[b:0]"), "another worker's log is shown:\n%s", out);
	/* The state comes first, then the lines. */
	cr_expect(strstr(out, "done") && strstr(out, "done") < strstr(out, "stdout line 30"), "%s", out);
	wt_cli(&wt, &out, &err, "status");
	cr_expect(!strstr(out, "stdout line"), "status of every worker shows log lines:\n%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
