/*
 * test_logout.c - where worker lines go and in what form ([ward]
 * log_output, log_format): on the host's stdout through a pipe, as a
 * container runtime reads it, with 20 workers writing at once (every line
 * whole, naming its worker and instance, none lost, none out of order);
 * in the files and on stdout with `both`; as JSON that Python's json
 * module reads, the host's own events included; and bad values refused by
 * `ward check` with file, line and key.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(logout, .fini = wt_teardown, .timeout = 180);

#define WORKERS 20
#define LINES 2000 /* each way: 2 x 20 x 2000 = 80,000 lines, about 5 MB through a 64 KiB pipe */

static char *path_in(const char *file)
{
	char *path;
	cr_assert(asprintf(&path, "%s/%s", wt.dir, file) > 0);
	return wt_keep(path);
}

/* Every instance's run ended `done`. */
static void wait_all_done(int runs)
{
	bool done = wt_wait_sql(&wt, UNDER_ASAN ? 120000 : 60000,
				"SELECT count(*) = %d FROM runs WHERE reason = 'done'", runs);
	cr_assert(done, "not every worker finished; host stderr:\n%s", wt_host_stderr(&wt));
}

/* Stops the host, then waits for the copier of its stdout to see the end. */
static char *stop_and_read_stdout(pid_t copier, const char *path)
{
	cr_assert_eq(wt_stop(&wt, 20000), 0, "the host did not stop; stderr:\n%s", wt_host_stderr(&wt));
	int status = -1;
	for (int i = 0; i < 1000 && waitpid(copier, &status, WNOHANG) == 0; i++)
		sleep_ms(10);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the stdout copier did not end cleanly");
	char *text = wt_read_raw(path);
	cr_assert(text, "nothing was written to stdout");
	return wt_keep(text);
}

static bool file_has_content(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size > 0;
}

/* The host's text lines: "STAMP [NAME:INSTANCE] pid=PID LEVEL TEXT". Checks
 * each is whole and well formed, that the "out/log bN:0 seq K" lines name
 * the worker of their prefix and count 1, 2, ... lines in each stream of
 * each of the workers b<first>... b<first + workers - 1>, nothing missing. */
static void check_text_lines(const char *text, int first, int workers, int lines)
{
	size_t len = strlen(text);
	cr_assert(len > 0 && text[len - 1] == '\n', "the last line is not whole");
	long next[WORKERS][2];
	for (int w = 0; w < workers; w++)
		next[w][0] = next[w][1] = 1;
	int n = 0;
	for (const char *line = text; *line; n++) {
		const char *end = strchr(line, '\n');
		char *one = strndup(line, (size_t)(end - line));
		char name[64], level[16], stream[8], named[64];
		int instance, pid, off = 0, wi;
		long seq;
		cr_assert(strlen(one) > 25 && one[4] == '-' && one[10] == 'T' && one[23] == 'Z' && one[24] == ' ',
			  "line %d has no timestamp: %s", n + 1, one);
		cr_assert(sscanf(one + 25, "[%63[^:]:%d] pid=%d %15s %n", name, &instance, &pid, level, &off) == 4 && off > 0,
			  "line %d does not name its worker and instance: %s", n + 1, one);
		const char *body = one + 25 + off;
		if (sscanf(body, "%7s %63[^:]:%*d seq %ld", stream, named, &seq) == 3 &&
		    (strcmp(stream, "out") == 0 || strcmp(stream, "log") == 0)) {
			cr_assert_str_eq(named, name, "line %d carries another worker's text: %s", n + 1, one);
			cr_assert(sscanf(name, "b%d", &wi) == 1 && wi >= first && wi < first + workers, "unknown worker: %s", one);
			wi -= first;
			cr_assert_eq(instance, 0);
			int s = strcmp(stream, "log") == 0;
			cr_assert_eq(seq, next[wi][s], "%s: %s line %ld expected, got: %s", name, stream, next[wi][s], one);
			cr_assert_str_eq(level, s ? "INFO" : "OUT", "%s", one);
			next[wi][s]++;
		}
		free(one);
		line = end + 1;
	}
	for (int w = 0; w < workers; w++)
		for (int s = 0; s < 2; s++)
			cr_assert_eq(next[w][s], lines + 1, "b%d: %ld of %d %s lines arrived", first + w, next[w][s] - 1, lines,
				     s ? "ward_log" : "stdout");
}

static const char *burst_workers(int workers, int lines)
{
	static char ini[8192];
	size_t at = 0;
	for (int w = 0; w < workers; w++)
		at += (size_t)snprintf(ini + at, sizeof(ini) - at, "[b%d]\nplugin = logout_burst\nlines = %d\n\n", w, lines);
	return ini;
}

Test(logout, stdout_from_20_workers_at_once_whole_in_order_and_no_file)
{
	char ini[9000];
	snprintf(ini, sizeof(ini), "log_output = stdout\n\n%s", burst_workers(WORKERS, LINES));
	wt_setup(&wt, ini);
	const char *out = path_in("stdout");
	pid_t copier = wt_start_stdout(&wt, out);
	wait_all_done(WORKERS);
	char *text = stop_and_read_stdout(copier, out);
	check_text_lines(text, 0, WORKERS, LINES);
	for (int w = 0; w < WORKERS; w++) {
		char *log;
		cr_assert(asprintf(&log, "%s/logs/b%d.log", wt.state, w) > 0);
		cr_assert(!file_has_content(log), "log_output = stdout wrote %s", log);
		free(log);
	}
	char *cli_out, *cli_err;
	wt_cli(&wt, &cli_out, &cli_err, "logs b0");
	cr_assert(strstr(cli_err, "log_output = stdout: worker lines go to the host's stdout"), "ward logs: %s", cli_err);
	char *err = wt_host_stderr(&wt);
	cr_assert(!strstr(err, "dropped"), "lines were dropped:\n%s", err);
	cr_assert(!strstr(err, "benchline") && !strstr(err, " seq "), "worker lines on stderr:\n%s", err);
}

Test(logout, both_writes_the_same_lines_to_the_file_and_stdout)
{
	char ini[9000];
	snprintf(ini, sizeof(ini), "log_output = both\n\n%s", burst_workers(2, 500));
	wt_setup(&wt, ini);
	const char *out = path_in("stdout");
	pid_t copier = wt_start_stdout(&wt, out);
	wait_all_done(2);
	char *text = stop_and_read_stdout(copier, out);
	check_text_lines(text, 0, 2, 500);
	char *files = wt_keep(strdup(""));
	for (int w = 0; w < 2; w++) {
		char name[8];
		snprintf(name, sizeof(name), "b%d", w);
		char *log = wt_log(&wt, name);
		cr_assert(log && strlen(log) > 0, "no log file for %s", name);
		check_text_lines(log, w, 1, 500); /* its own lines only */
		char *joined;
		cr_assert(asprintf(&joined, "%s%s", files, log) > 0);
		files = wt_keep(joined);
	}
	/* Every line of the files is on stdout, byte for byte. */
	for (const char *line = files; *line;) {
		const char *end = strchr(line, '\n');
		char *one = strndup(line, (size_t)(end - line + 1));
		cr_assert(strstr(text, one), "a line of the file is not on stdout: %s", one);
		free(one);
		line = end + 1;
	}
}

/* Every line of path parsed by Python's json module: an object with the
 * fields of SPEC 5 and their types; `worker` lines also carry the special
 * message of logout_burst, from stdout and from ward_log, exactly. */
static void check_json(const char *path, const char *kind)
{
	const char *script = path_in("check.py");
	FILE *f = fopen(script, "w");
	cr_assert(f);
	fputs("import json, re, sys\n"
	      "SPECIAL = 'special \"q\" back\\\\slash tab\\there ctl\\x01\\x1b[31m e\\u0301 \\u00fc \\u6f22 \\U0001f642 bad\\ufffd end'\n"
	      "path, kind = sys.argv[1], sys.argv[2]\n"
	      "data = open(path, 'rb').read()\n"
	      "assert data.endswith(b'\\n'), 'the last line is not whole'\n"
	      "lines = data.decode('utf-8').split('\\n')[:-1]\n"
	      "assert lines, 'no lines'\n"
	      "stamp = re.compile(r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z')\n"
	      "special = 0\n"
	      "for n, line in enumerate(lines, 1):\n"
	      "    o = json.loads(line)\n"
	      "    where = '%s line %d: %s' % (path, n, line)\n"
	      "    assert type(o) is dict, where\n"
	      "    assert set(o) == {'ts', 'worker', 'instance', 'pid', 'level', 'msg'}, where\n"
	      "    assert type(o['ts']) is str and stamp.fullmatch(o['ts']), where\n"
	      "    assert type(o['pid']) is int and o['pid'] > 0, where\n"
	      "    assert type(o['msg']) is str, where\n"
	      "    if kind == 'host':\n"
	      "        assert o['worker'] is None and o['instance'] is None, where\n"
	      "        assert o['level'] in ('error', 'warn', 'info', 'debug'), where\n"
	      "    else:\n"
	      "        assert type(o['worker']) is str and type(o['instance']) is int, where\n"
	      "        assert o['level'] in ('out', 'ward', 'error', 'warn', 'info', 'debug'), where\n"
	      "        special += (o['level'], o['msg']) in (('out', SPECIAL), ('warn', SPECIAL + ' two\\nlines'))\n"
	      "assert kind == 'host' or special == 2, '%s: the special lines: %d of 2 found intact' % (path, special)\n"
	      "print('ok', len(lines))\n",
	      f);
	fclose(f);
	char *cmd, *report = path_in("check.out");
	cr_assert(asprintf(&cmd, "python3 %s %s %s >%s 2>&1", script, path, kind, report) > 0);
	int status = system(cmd);
	free(cmd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "python3 refused %s:\n%s", path, wt_read(report));
}

Test(logout, json_lines_in_the_file_on_stdout_and_the_host_events)
{
	wt_setup(&wt, "log_output = both\nlog_format = json\n\n"
		      "[j0]\nplugin = logout_burst\nlines = 50\nspecial = yes\n"
		      "intervall = 1s\n"); /* a near miss: the configuration's warning is an event too */
	const char *out = path_in("stdout");
	pid_t copier = wt_start_stdout(&wt, out);
	wait_all_done(1);
	stop_and_read_stdout(copier, out);
	char *log;
	cr_assert(asprintf(&log, "%s/logs/j0.log", wt.state) > 0);
	check_json(wt_keep(log), "worker");
	check_json(out, "worker");
	cr_assert(wt_count(wt_host_stderr(&wt), "host exiting") == 1, "the host's events are not on stderr");
	cr_assert(strstr(wt_host_stderr(&wt), "intervall"), "no warning about 'intervall':\n%s", wt_host_stderr(&wt));
	check_json(wt.errfile, "host");
}

Test(logout, bad_values_are_refused_by_ward_check_with_file_line_and_key)
{
	wt_setup(&wt, "log_output = syslog\nlog_format = yaml\n");
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_assert_neq(rc, 0, "ward check accepted bad values:\n%s", out);
	cr_assert(strstr(err, "ward.ini:6: [ward] log_output: invalid value \"syslog\": expected file, stdout or both"),
		  "%s", err);
	cr_assert(strstr(err, "ward.ini:7: [ward] log_format: invalid value \"yaml\": expected text or json"), "%s", err);
}

Test(logout, ward_logs_merges_json_logs_in_time_order)
{
	char ini[9000];
	snprintf(ini, sizeof(ini), "log_format = json\n\n%s", burst_workers(2, 300));
	wt_setup(&wt, ini);
	wt_start(&wt);
	wait_all_done(2);
	cr_assert_eq(wt_stop(&wt, 20000), 0);
	int in_files = wt_count(wt_log(&wt, "b0"), "\n") + wt_count(wt_log(&wt, "b1"), "\n");
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "logs -n 100000"), 0, "%s", err);
	cr_assert_eq(wt_count(out, "\n"), in_files, "ward logs printed another number of lines:\n%s", err);
	char last[32] = "";
	for (const char *line = out; *line;) {
		const char *end = strchr(line, '\n');
		cr_assert(strncmp(line, "{\"ts\":\"", 7) == 0, "not a JSON line: %.*s", (int)(end - line), line);
		char ts[32];
		snprintf(ts, sizeof(ts), "%.24s", line + 7);
		cr_assert(strcmp(last, ts) <= 0, "%s printed after %s", ts, last);
		strcpy(last, ts);
		line = end + 1;
	}
}

/* Everything readable on fd now, appended to *buf; false at end of file. */
static bool read_available(int fd, char **buf, size_t *len, size_t *cap, int wait_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	while (poll(&p, 1, wait_ms) > 0) {
		if (*len + 65536 > *cap) {
			*cap = (*cap + 65536) * 2;
			*buf = realloc(*buf, *cap);
			cr_assert(*buf);
		}
		ssize_t n = read(fd, *buf + *len, 65536);
		if (n <= 0)
			return n < 0 && errno == EINTR;
		*len += (size_t)n;
		wait_ms = 0;
	}
	return true;
}

#define UNREAD_LINES 12000 /* 20 x 2 x 12,000 lines, about 30 MB: more than the pipe and the host's 16 MiB hold */

Test(logout, a_reader_that_stops_reading_never_blocks_the_host_and_drops_are_counted)
{
	char ini[9000];
	snprintf(ini, sizeof(ini), "log_output = stdout\n\n%s", burst_workers(WORKERS, UNREAD_LINES));
	wt_setup(&wt, ini);
	int from = wt_start_stdout_pipe(&wt); /* not read until the workers are done */
	wait_all_done(WORKERS);               /* the loop went on: it took every worker's end */
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status"), 0, "ward status while stdout is full: %s", err);
	cr_assert_eq(wt_count(wt_host_stderr(&wt), "stdout is not being read"), 1, "%s", wt_host_stderr(&wt));

	char *buf = NULL;
	size_t len = 0, cap = 0;
	long long deadline = now_ms() + 60000;
	while (!strstr(wt_host_stderr(&wt), "stdout takes worker lines again") && now_ms() < deadline)
		read_available(from, &buf, &len, &cap, 50);
	char *said = strstr(wt_host_stderr(&wt), "stdout takes worker lines again; ");
	cr_assert(said, "the host never said stdout drained:\n%s", wt_host_stderr(&wt));
	long dropped = atol(said + strlen("stdout takes worker lines again; "));
	cr_assert_eq(wt_stop(&wt, 20000), 0);
	while (read_available(from, &buf, &len, &cap, 1000) && now_ms() < deadline)
		;
	close(from);
	buf = wt_keep(realloc(buf, len + 1));
	buf[len] = '\0';

	/* Whole lines, and each stream in order with gaps where lines were dropped. */
	cr_assert(len > 0 && buf[len - 1] == '\n');
	long next[WORKERS][2] = {{0}}, received = 0;
	for (const char *at = buf; *at; at = strchr(at, '\n') + 1) {
		char line[256], name[64], stream[8]; /* sscanf measures its whole input: one line, not the rest */
		snprintf(line, sizeof(line), "%.*s", (int)(strchr(at, '\n') - at), at);
		int wi;
		long seq;
		cr_assert(strncmp(line + 24, " [b", 3) == 0, "not a whole line: %s", line);
		if (sscanf(line + 24, " [%63[^:]:0] pid=%*d %*s %7s %*[^:]:0 seq %ld", name, stream, &seq) != 3)
			continue;
		cr_assert(sscanf(name, "b%d", &wi) == 1 && wi >= 0 && wi < WORKERS);
		int s = strcmp(stream, "log") == 0;
		cr_assert_gt(seq, next[wi][s], "%s %s line %ld after %ld", name, stream, seq, next[wi][s]);
		next[wi][s] = seq;
		received++;
	}
	long total = 2L * WORKERS * UNREAD_LINES;
	cr_assert_gt(dropped, 0);
	/* What was dropped is counted: the counted drops are the lines missing
	 * (and at most the few WARD lines of each worker more). */
	cr_assert(received + dropped >= total && received + dropped <= total + WORKERS * 5,
		  "%ld lines received, %ld dropped, %ld written", received, dropped, total);
}

/* `ward run 2>&1 | reader` with a reader that stops: the host's own lines
 * (a crashing worker's, every 50 ms) go the same way as the workers' and
 * must not block the loop either, nor land inside a worker's line. */
Test(logout, with_stderr_on_the_same_unread_pipe_the_host_still_supervises_and_lines_stay_whole)
{
	char ini[9000];
	snprintf(ini, sizeof(ini),
		 "log_output = stdout\n\n%s[crashy]\nplugin = crash_after\ncycles = 1\ninterval = 10ms\n"
		 "restart_delay = 50ms\nrestart_delay_max = 100ms\nmax_restarts = unlimited\nlimit.core = 0\n",
		 burst_workers(WORKERS, UNREAD_LINES));
	wt_setup(&wt, ini);
	int from = wt_start_stdout_stderr_pipe(&wt); /* not read until the workers are done */
	wait_all_done(WORKERS);
	long long crashes = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'crashy'");
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) >= %lld FROM runs WHERE worker = 'crashy'", crashes + 10),
		  "the crashing worker is not restarted while stdout and stderr are full");
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "status");
	cr_assert(rc == 0 || rc == 3, "ward status while stdout and stderr are full: exit %d: %s", rc, err);

	char *buf = NULL;
	size_t len = 0, cap = 0;
	kill(wt.pid, SIGTERM); /* it finishes once its last lines are read (or after 2 s) */
	for (long long deadline = now_ms() + 60000; read_available(from, &buf, &len, &cap, 1000) && now_ms() < deadline;)
		;
	close(from);
	cr_expect_eq(wt_wait_exit(&wt, 20000), 0);
	buf = wt_keep(realloc(buf, len + 1));
	buf[len] = '\0';
	cr_assert(len > 0 && buf[len - 1] == '\n');
	int host_lines = 0;
	for (const char *at = buf; *at; at = strchr(at, '\n') + 1) {
		char line[512];
		snprintf(line, sizeof(line), "%.*s", (int)(strchr(at, '\n') - at), at);
		/* A stamp, then a worker's "[NAME:N]" or the host's "ward[PID]:", once. */
		cr_assert(strncmp(line, "20", 2) == 0 && (strncmp(line + 24, " [", 2) == 0 || strncmp(line + 24, " ward[", 6) == 0),
			  "not a whole line: %s", line);
		cr_assert(!strstr(line + 24, "Z ward[") && !strstr(line + 24, "Z ["), "two lines in one: %s", line);
		host_lines += strncmp(line + 24, " ward[", 6) == 0;
	}
	cr_expect_gt(host_lines, 10, "the host's own lines did not come through the pipe");
}

Test(logout, a_reload_moves_the_lines_from_the_file_to_stdout)
{
	wt_setup(&wt, "[t]\nplugin = logs_ticker\n");
	const char *out = path_in("stdout");
	pid_t copier = wt_start_stdout(&wt, out);
	cr_assert(wt_wait_log(&wt, 10000, "t", "tick 2"), "%s", wt_host_stderr(&wt));
	char *ini = wt_read(path_in("conf/ward.ini"));
	const char *after_ward = strstr(ini, "autoload = no\n") + strlen("autoload = no\n");
	char *next;
	cr_assert(asprintf(&next, "%.*slog_output = stdout\n%s", (int)(after_ward - ini), ini, after_ward) > 0);
	wt_write_conf(&wt, "ward.ini", next);
	free(next);
	char *rout, *rerr;
	cr_assert_eq(wt_cli(&wt, &rout, &rerr, "reload"), 0, "%s%s", rout, rerr);
	cr_assert(strstr(rout, "unchanged: 1 worker"), "the worker was restarted: %s", rout);
	/* The log file stops growing; the ticks go on, on stdout. */
	char *log_path;
	cr_assert(asprintf(&log_path, "%s/logs/t.log", wt.state) > 0);
	sleep_ms(300);
	struct stat before, after;
	cr_assert(stat(log_path, &before) == 0);
	sleep_ms(700);
	cr_assert(stat(log_path, &after) == 0);
	free(log_path);
	cr_assert_eq(before.st_size, after.st_size, "the log file still grows after the reload");
	char *text = stop_and_read_stdout(copier, out);
	cr_assert(strstr(text, "[t:0]") && strstr(text, " INFO tick "), "no tick on stdout after the reload:\n%s", text);
}
