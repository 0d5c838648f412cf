/*
 * test_jobs.c - jobs end to end, host side (SPEC §8, docs/jobs.md): the
 * producer protocol on ward.sock spoken by a raw client (jc_*), the
 * dispatcher handing jobs to the job_cmd fixture, attempts that fail with
 * the exit of the process that held them, retries, dead jobs, a new host
 * failing what a dead one left running, activation by job, waiters told at
 * once when the worker will not come, status, metrics and pruning.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void no_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(jobs, .init = no_sigpipe, .fini = wt_teardown, .timeout = 120);

/* ---- a raw job-protocol client ---- */

struct jc {
	int fd;
	char *buf; /* what was read and not taken yet */
	size_t len;
};

#define JC_BUF (3 * 1024 * 1024)

static struct jc jc_connect(struct wt *t)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/ward.sock", t->state);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	long long deadline = now_ms() + 10000;
	for (;;) { /* the control socket comes a moment after the host's pid row */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return (struct jc){.fd = fd, .buf = wt_keep(malloc(JC_BUF))};
		close(fd);
		cr_assert(now_ms() < deadline, "no control socket at %s: %s", path, strerror(errno));
		sleep_ms(20);
	}
}

static void jc_send(struct jc *c, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		cr_assert(n > 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* Reads until want bytes are buffered, EOF or timeout. */
static void jc_fill(struct jc *c, size_t want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (c->len < want) {
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return;
		ssize_t n = read(c->fd, c->buf + c->len, JC_BUF - c->len);
		if (n <= 0)
			return;
		c->len += (size_t)n;
	}
}

/* One reply line without its newline (owned by the test), "" at EOF or timeout. */
static char *jc_line(struct jc *c, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			char *line = wt_keep(strndup(c->buf, n));
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return line;
		}
		int left = (int)(deadline - now_ms());
		size_t before = c->len;
		if (left <= 0)
			return "";
		jc_fill(c, c->len + 1, left);
		if (c->len == before)
			return "";
	}
}

/* LEN bytes after a `done ID LEN` line. */
static char *jc_bytes(struct jc *c, size_t len, int timeout_ms)
{
	jc_fill(c, len, timeout_ms);
	cr_assert(c->len >= len, "only %zu of %zu result bytes came", c->len, len);
	char *out = wt_keep(malloc(len + 1));
	memcpy(out, c->buf, len);
	out[len] = '\0';
	memmove(c->buf, c->buf + len, c->len - len);
	c->len -= len;
	return out;
}

static struct jc jc_open(struct wt *t)
{
	struct jc c = jc_connect(t);
	jc_send(&c, "jobs 1\n", 7);
	char *hello = jc_line(&c, 5000);
	cr_assert_str_eq(hello, "ok jobs 1");
	return c;
}

static void jc_send_enqueue(struct jc *c, const char *queue, const char *payload, const char *key, long delay_ms)
{
	char head[600];
	int n = snprintf(head, sizeof(head), "enqueue %s %zu %ld %s\n", queue, strlen(payload), delay_ms, key ? key : "-");
	jc_send(c, head, (size_t)n);
	jc_send(c, payload, strlen(payload));
}

/* The reply line of one enqueue. */
static char *jc_enqueue_reply(struct jc *c, const char *queue, const char *payload)
{
	jc_send_enqueue(c, queue, payload, NULL, 0);
	return jc_line(c, 10000);
}

/* A job queued: its id. */
static long long jc_enqueue(struct jc *c, const char *queue, const char *payload)
{
	char *reply = jc_enqueue_reply(c, queue, payload);
	long long id = 0;
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1 && id > 0, "enqueue %s: %s", payload, reply);
	return id;
}

/* `wait ID TIMEOUT_MS`: the reply line; *result the bytes of a `done`. */
static char *jc_wait(struct jc *c, long long id, int timeout_ms, char **result)
{
	char req[64];
	int n = snprintf(req, sizeof(req), "wait %lld %d\n", id, timeout_ms);
	jc_send(c, req, (size_t)n);
	char *line = jc_line(c, timeout_ms + 10000);
	long long got;
	size_t len;
	if (result)
		*result = NULL;
	if (sscanf(line, "done %lld %zu", &got, &len) == 2) {
		char *bytes = jc_bytes(c, len, 5000);
		if (result)
			*result = bytes;
	}
	return line;
}

/* The job is done with result `want`. */
static void assert_done(struct jc *c, long long id, const char *want)
{
	char *result;
	char *line = jc_wait(c, id, 20000, &result);
	cr_assert(strncmp(line, "done ", 5) == 0, "job %lld: %s", id, line);
	cr_assert_str_eq(result, want, "job %lld's result", id);
}

/* `ward job ID --json` (after the host's sync). */
static char *job_json(long long id)
{
	char *out, *err, args[64];
	snprintf(args, sizeof(args), "job %lld --json", id);
	int rc = wt_cli(&wt, &out, &err, args);
	cr_assert_eq(rc, 0, "ward %s: %s", args, err);
	return out;
}

static char *job_text(long long id)
{
	char *out, *err, args[64];
	snprintf(args, sizeof(args), "job %lld", id);
	int rc = wt_cli(&wt, &out, &err, args);
	cr_assert_eq(rc, 0, "ward %s: %s", args, err);
	return out;
}

static const char *JOB_WORKER = "[w]\nplugin = job_cmd\njob_retry_delay = 0\n";

/* ---- hand-off ---- */

Test(jobs, enqueue_runs_the_job_and_wait_returns_its_result)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "echo hello jobs");
	assert_done(&c, id, "hello jobs");
	/* `ward job ID --json`: exactly SPEC §8's fields */
	char *json = job_json(id);
	cr_assert(strstr(json, "\"state\": \"done\""), "%s", json);
	cr_assert(strstr(json, "\"queue\": \"w\""), "%s", json);
	cr_assert(strstr(json, "\"result_bytes\": 10"), "%s", json);
	cr_assert(strstr(json, "\"attempt\": 1, \"instance\": 0, \"pid\": "), "%s", json);
	cr_assert(strstr(json, "\"outcome\": \"done\""), "%s", json);
	/* the job's log line carries its id */
	char needle[64];
	snprintf(needle, sizeof(needle), "job=%lld", id);
	cr_assert(wt_wait_log(&wt, 5000, "w", needle), "no log line with %s:\n%s", needle, wt_log(&wt, "w"));
	/* ward jobs lists it */
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "jobs --state done"), 0, "%s", err);
	cr_assert(strstr(out, " w ") && strstr(out, "done"), "%s", out);
}

Test(jobs, oldest_first_and_shared_across_instances)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\ninstances = 2\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long ids[8];
	for (int i = 0; i < 8; i++)
		ids[i] = jc_enqueue(&c, "w", "sleep 100");
	for (int i = 0; i < 8; i++)
		assert_done(&c, ids[i], "slept");
	int on[2] = {0, 0};
	long long prev_start = 0;
	for (int i = 0; i < 8; i++) {
		char *json = job_json(ids[i]);
		const char *inst = strstr(json, "\"instance\": ");
		cr_assert(inst, "%s", json);
		on[atoi(inst + 12) & 1]++;
		const char *st = strstr(json, "\"started_at\": \"");
		cr_assert(st, "%s", json);
		/* ISO times sort as strings: each job started no earlier than the one queued before it */
		long long key = 0;
		for (const char *p = st + 15; *p && *p != '"'; p++)
			if (*p >= '0' && *p <= '9')
				key = key * 10 + (*p - '0');
		cr_assert(key >= prev_start, "job %lld started before an older one", ids[i]);
		prev_start = key;
	}
	cr_assert(on[0] >= 3 && on[1] >= 3, "both instances take turns: %d and %d jobs", on[0], on[1]);
}

Test(jobs, a_plugin_with_cycles_takes_jobs_during_its_idle_wait)
{
	wt_setup(&wt, "[both]\nplugin = job_and_cycle\ninterval = 1h\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'both' AND state = 'running'"));
	struct jc c = jc_open(&wt);
	long long t0 = now_ms();
	long long id = jc_enqueue(&c, "both", "x");
	char *result;
	char *line = jc_wait(&c, id, 20000, &result);
	cr_assert(strncmp(line, "done ", 5) == 0, "%s", line);
	cr_assert(now_ms() - t0 < 5000, "the job ended the hour-long idle wait");
	cr_assert(strncmp(result, "cycles=", 7) == 0, "%s", result);
}

/* ---- no job outlives its process ---- */

Test(jobs, crash_fails_the_attempt_at_once_and_the_job_runs_again)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "crash1");
	long long t0 = now_ms();
	assert_done(&c, id, "attempt 2");
	cr_assert(now_ms() - t0 < 10000, "the retry waited for no lease");
	char *json = job_json(id);
	cr_assert(strstr(json, "\"attempt\": 1,") && strstr(json, "\"reason\": \"signal\""), "%s", json);
	cr_assert(strstr(json, "\"attempt\": 2,"), "%s", json);
	cr_assert(strstr(json, "SIGSEGV"), "the attempt's message names the signal: %s", json);
	/* a failed attempt keeps its process's last log lines */
	char *text = job_text(id);
	cr_assert(strstr(text, "attempt 1: crash1"), "%s", text);
}

Test(jobs, poison_job_goes_dead_without_blocking_the_queue)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_retry_delay = 200ms\njob_attempts = 3\nrestart_delay = 10ms\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long poison = jc_enqueue(&c, "w", "crash");
	long long others[5];
	for (int i = 0; i < 5; i++)
		others[i] = jc_enqueue(&c, "w", "ok");
	for (int i = 0; i < 5; i++)
		assert_done(&c, others[i], "ok");
	char *line = jc_wait(&c, poison, 20000, NULL);
	cr_assert(strncmp(line, "failed ", 7) == 0 && strstr(line, " dead "), "%s", line);
	cr_assert(strstr(line, "SIGSEGV"), "the dead job says why: %s", line);
	char *json = job_json(poison);
	cr_assert_eq(wt_count(json, "\"reason\": \"signal\""), 3, "three attempts, each failed by its signal: %s", json);
	/* runs that completed jobs are progress: the worker is not failed, it runs on */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'running'"),
		  "state %s", wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'w'"));
}

Test(jobs, job_timeout_kills_the_process_and_fails_the_attempt)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_timeout = 300ms\njob_attempts = 1\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "sleep 20000");
	char *line = jc_wait(&c, id, 15000, NULL);
	cr_assert(strncmp(line, "failed ", 7) == 0 && strstr(line, "dead"), "%s", line);
	char *json = job_json(id);
	cr_assert(strstr(json, "\"reason\": \"job-timeout\""), "%s", json);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'job-timeout'"),
		  "the run's exit reason is job-timeout");
	char *out, *err;
	wt_cli(&wt, &out, &err, "history w");
	cr_assert(strstr(out, "job-timeout"), "%s", out);
}

Test(jobs, hung_job_is_killed_by_the_watchdog)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\nwatchdog = 300ms\njob_attempts = 1\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "hang");
	char *line = jc_wait(&c, id, 15000, NULL);
	cr_assert(strncmp(line, "failed ", 7) == 0, "%s", line);
	char *json = job_json(id);
	cr_assert(strstr(json, "\"reason\": \"hung\""), "%s", json);
}

Test(jobs, a_new_host_fails_what_a_dead_one_left_running)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "sleep1 60000");
	char needle[64];
	snprintf(needle, sizeof(needle), "job %lld attempt 1: sleep1", id);
	cr_assert(wt_wait_log(&wt, 10000, "w", needle), "the job did not start:\n%s", wt_log(&wt, "w"));
	close(c.fd);
	kill(wt.pid, SIGKILL);
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	sleep_ms(300); /* its workers die with it (parent-death signal) */
	wt_start(&wt);
	c = jc_open(&wt);
	assert_done(&c, id, "attempt 2");
	char *json = job_json(id);
	cr_assert(strstr(json, "\"reason\": \"host-died\""), "%s", json);
}

Test(jobs, every_answered_enqueue_survives_a_sigkilled_host)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	for (int i = 0; i < 200; i++)
		jc_send_enqueue(&c, "w", "ok", NULL, 600000); /* delayed: nothing runs them meanwhile */
	long long last = 0;
	for (int i = 0; i < 200; i++) {
		char *reply = jc_line(&c, 10000);
		cr_assert(sscanf(reply, "ok %lld new", &last) == 1, "%s", reply);
	}
	kill(wt.pid, SIGKILL); /* right after the last answer */
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	sleep_ms(300);
	wt_start(&wt);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "jobs w --state queued -n 1000 --json"), 0, "%s", err);
	cr_assert_eq(wt_count(out, "\"state\": \"queued\""), 200, "every answered job is there: %s", out);
	char want[64];
	snprintf(want, sizeof(want), "{\"id\": %lld,", last);
	cr_assert(strstr(out, want), "the last one too: %s", out);
}

/* A producer in a process of its own: enqueues "ok" jobs one after the
 * other on one session and appends each id to ids_path only once the host
 * answered it (durable), until the host goes away. No criterion here: it
 * runs in a forked child. */
static void produce_until_the_host_dies(const char *sock_path, const char *ids_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	int out = open(ids_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int fd = -1;
	for (long long deadline = now_ms() + 10000; now_ms() < deadline; sleep_ms(20)) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		fd = -1;
	}
	char buf[256];
	if (out < 0 || fd < 0 || write(fd, "jobs 1\n", 7) != 7)
		_exit(1);
	size_t len = 0;
	for (bool greeted = false;;) {
		if (greeted) {
			static const char req[] = "enqueue w 2 0 -\nok";
			if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
				_exit(0);
		}
		char *nl;
		while (!(nl = memchr(buf, '\n', len))) {
			ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				_exit(0); /* the host died: what was answered is in ids_path */
			len += (size_t)n;
		}
		*nl = '\0';
		long long id;
		if (greeted && sscanf(buf, "ok %lld", &id) == 1)
			dprintf(out, "%lld\n", id);
		else if (greeted || strcmp(buf, "ok jobs 1") != 0)
			_exit(2);
		greeted = true;
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len);
	}
}

Test(jobs, every_answered_job_is_done_after_a_host_killed_at_random_points)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\ninstances = 2\njob_retry_delay = 0\n");
	char sock[1200], ids_path[1200];
	snprintf(sock, sizeof(sock), "%s/ward.sock", wt.state);
	snprintf(ids_path, sizeof(ids_path), "%s/answered", wt.dir);
	srand((unsigned)getpid());
	for (int round = 0; round < 4; round++) {
		wt_start(&wt);
		pid_t producer = fork();
		cr_assert(producer >= 0);
		if (producer == 0)
			produce_until_the_host_dies(sock, ids_path);
		sleep_ms(300 + rand() % 700); /* enqueues, hand-offs, commits and syncs under way */
		kill(wt.pid, SIGKILL);
		waitpid(wt.pid, NULL, 0);
		wt.pid = 0;
		int st;
		cr_assert_eq(waitpid(producer, &st, 0), producer);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the producer failed: %d", st);
		sleep_ms(200); /* the workers die with their host (parent-death signal) */
	}
	wt_start(&wt);
	char *ids = wt_read(ids_path);
	cr_assert(ids && *ids, "no enqueue was answered in four rounds");
	long answered = 0, lost = 0;
	long long deadline = now_ms() + 60000;
	for (char *p = ids, *end; *p; p = end + 1) {
		long long id = strtoll(p, &end, 10);
		if (*end != '\n')
			break;
		answered++;
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = %lld AND state = 'done'", id);
		while (wt_jobs_sql_int(&wt, sql) != 1 && now_ms() < deadline)
			sleep_ms(50);
		lost += wt_jobs_sql_int(&wt, sql) != 1;
	}
	cr_expect_eq(lost, 0, "%ld of %ld answered jobs are not done", lost, answered);
	long twice = wt_jobs_sql_int(&wt, "SELECT count(*) FROM (SELECT job FROM attempts GROUP BY job HAVING count(*) > 1)");
	/* At least once is the promise (docs/jobs.md): told, not asserted. */
	cr_log_info("%ld answered jobs across 4 SIGKILLed hosts, all done; %ld ran more than once", answered, twice);
}

/* kB of a "Key:" line of /proc/PID/status, or -1. */
static long status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

Test(jobs, a_flood_of_a_million_enqueues_leaves_the_host_memory_bounded, .timeout = 600)
{
	/* Delayed an hour, so every job stays queued: the queue is in jobs.db, not in the host. */
	wt_setup(&wt, "[w]\nplugin = job_cmd\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long before = status_kib(wt.pid, "VmRSS:");
	long n = UNDER_ASAN ? 100000 : 1000000, sent = 0, answered = 0;
	while (answered < n) {
		for (; sent < n && sent - answered < 512; sent++)
			jc_send_enqueue(&c, "w", "a payload of a few words", NULL, 3600000);
		char *reply = jc_line(&c, 30000);
		cr_assert(strncmp(reply, "ok ", 3) == 0, "enqueue %ld: %s", answered, reply);
		answered++;
	}
	long peak = status_kib(wt.pid, "VmHWM:");
	cr_log_info("%ld enqueues: the host's resident memory %ld KiB before, %ld KiB at its peak", n, before, peak);
	/* Under ASan freed memory sits in its quarantine (256 MiB by default),
	 * so the host's resident size says nothing there: the bound is the
	 * normal build's, which runs the full million. */
	if (!UNDER_ASAN)
		cr_expect_lt(peak - before, 48 * 1024, "the host grew by %ld KiB for %ld queued jobs", peak - before, n);
	cr_assert_eq(wt_jobs_sql_int(&wt, "SELECT count(*) FROM jobs WHERE state = 'queued'"), n);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status w"), 0, "%s", err);
	char want[64];
	snprintf(want, sizeof(want), "%ld queued", n);
	cr_expect(strstr(out, want), "status does not show the queue: %s", out);
}

/* ---- activation, and nobody waits for a worker that will not come ---- */

Test(jobs, autostart_no_worker_is_started_by_its_first_job)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\nautostart = no\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	cr_assert_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 0, "started before a job came");
	long long id = jc_enqueue(&c, "w", "ok");
	assert_done(&c, id, "ok");
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 'w' AND activation = 'job'"),
		  "history says the run was started by a job");
}

Test(jobs, failed_worker_enqueue_says_so_and_wait_answers_at_once)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\nfail_init = yes\nmax_restarts = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'failed'"));
	struct jc c = jc_open(&wt);
	char *reply = jc_enqueue_reply(&c, "w", "ok");
	long long id = 0;
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1, "%s", reply);
	cr_assert(strstr(reply, "worker w is failed (init-failed"), "the answer says why: %s", reply);
	long long t0 = now_ms();
	char *line = jc_wait(&c, id, 60000, NULL);
	cr_assert(now_ms() - t0 < 5000, "the wait was answered at once");
	cr_assert(strncmp(line, "failed ", 7) == 0 && strstr(line, " failed worker w is failed"), "%s", line);
}

Test(jobs, stopped_worker_wait_answers_at_once_and_start_runs_the_job)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	char *out, *err;
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'running'"));
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'stopped'"));
	struct jc c = jc_open(&wt);
	long long id = 0;
	char *reply = jc_enqueue_reply(&c, "w", "echo later");
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1 && strstr(reply, "stopped"), "%s", reply);
	long long t0 = now_ms();
	char *line = jc_wait(&c, id, 60000, NULL);
	cr_assert(now_ms() - t0 < 5000, "the wait was answered at once");
	cr_assert(strncmp(line, "failed ", 7) == 0 && strstr(line, " stopped "), "%s", line);
	cr_assert_eq(wt_cli(&wt, &out, &err, "start w"), 0, "%s", err);
	assert_done(&c, id, "later");
}

Test(jobs, a_waiter_is_told_when_a_reload_removes_the_queues_workers)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "w.ini", "[w]\nplugin = job_cmd\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	jc_send_enqueue(&c, "w", "ok", NULL, 60000); /* delayed: still queued at the reload */
	long long id = 0;
	char *reply = jc_line(&c, 10000);
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1, "%s", reply);
	char req[64];
	int n = snprintf(req, sizeof(req), "wait %lld 60000\n", id); /* waiting before the reload */
	jc_send(&c, req, (size_t)n);
	sleep_ms(200);
	wt_write_conf(&wt, "w.ini", "\n");
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s%s", out, err);
	long long t0 = now_ms();
	char *line = jc_line(&c, 20000);
	cr_assert(now_ms() - t0 < 10000, "told soon after the reload");
	cr_assert_str_eq(line, "failed 1 stopped no worker takes jobs from queue 'w' any more");
}

/* ---- the protocol's refusals ---- */

/* ---- the job store's faults, seen from outside ---- */

/* The enqueue of `payload` is answered `ok ID new` and the job is done; or,
 * right after jobs.db went, it is refused with one of the two errors that
 * say why (its batch was written into the file that is gone; the file now
 * there is no database, moved aside for the next try), and sent again it
 * runs. */
static long long runs_to_the_end(struct jc *c, const char *payload, const char *result)
{
	char *reply = jc_enqueue_reply(c, "w", payload);
	long long id = 0;
	if (strncmp(reply, "error ", 6) == 0) {
		cr_expect(strstr(reply, "is lost: jobs.db was deleted or replaced before it was on disk; send it again") ||
				  strstr(reply, "could not be stored: unable to open the jobs database"),
			  "enqueue %s: %s", payload, reply);
		reply = jc_enqueue_reply(c, "w", payload);
	}
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1 && id > 0, "enqueue %s: %s\n%s", payload, reply,
		  wt_host_stderr(&wt));
	assert_done(c, id, result);
	return id;
}

/* jobs.db deleted, then replaced by a file that is no database, while the
 * host runs (the store's own tests cover a full disk): each is said once,
 * the jobs queued after it run, and supervision does not notice. */
Test(jobs, a_deleted_or_corrupt_jobs_db_is_said_once_and_supervision_goes_on)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_retry_delay = 0\n\n[other]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "other", "idle ready"));
	pid_t other = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'other'");
	struct jc c = jc_open(&wt);
	runs_to_the_end(&c, "echo before", "before");
	char db[400], junk[400];
	snprintf(db, sizeof(db), "%s/jobs.db", wt.state);
	cr_assert_eq(unlink(db), 0, "%s: %s", db, strerror(errno));
	cr_expect_eq(runs_to_the_end(&c, "echo after the deletion", "after the deletion"), 1,
		     "the new jobs.db is not empty: the old one's jobs show through it");
	struct stat st;
	cr_expect(stat(db, &st) == 0, "no new %s", db);
	cr_expect_eq(wt_count(wt_host_stderr(&wt), "was deleted or replaced"), 1, "said once:\n%s", wt_host_stderr(&wt));

	snprintf(junk, sizeof(junk), "%s/junk", wt.state);
	int fd = open(junk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char x[8192];
	memset(x, 'x', sizeof(x));
	cr_assert(fd >= 0 && write(fd, x, sizeof(x)) == (ssize_t)sizeof(x));
	close(fd);
	cr_assert_eq(rename(junk, db), 0);
	cr_expect_eq(runs_to_the_end(&c, "echo after the corruption", "after the corruption"), 1,
		     "the new jobs.db is not empty: the old one's jobs show through it");
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(err, "is corrupt"), 1, "said once:\n%s", err);
	cr_expect(strstr(err, "moved aside as "), "where the corrupt file went is not said:\n%s", err);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "test $(ls '%s' | grep -c '^jobs.db.corrupt-[0-9]*$') = 1", wt.state);
	cr_expect_eq(system(cmd), 0, "the corrupt file is not kept beside the new one");

	cr_expect_eq(wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'other'"), other,
		     "the other worker was restarted");
	char *out;
	cr_expect_eq(wt_cli(&wt, &out, NULL, "status"), 0, "ward status:\n%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* The state directory as a small tmpfs of this test's own (a private mount
 * namespace, which the host it starts shares). */
static void state_on_a_small_tmpfs(void)
{
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
	cr_assert(mkdir(wt.state, 0700) == 0 || errno == EEXIST, "%s: %s", wt.state, strerror(errno));
	cr_assert_eq(mount("tmpfs", wt.state, "tmpfs", 0, "size=8M,mode=0700"), 0, "mount: %s", strerror(errno));
}

static void unmount_state(void)
{
	if (wt.pid > 0)
		wt_stop(&wt, 10000);
	umount2(wt.state, MNT_DETACH);
	wt_teardown();
}

/* Fills the file system of path's directory: the filler's path. */
static void fill_up(const char *dir, char *filler, size_t size)
{
	snprintf(filler, size, "%s/filler", dir);
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "%s: %s", filler, strerror(errno));
	static char block[64 * 1024];
	while (write(fd, block, sizeof(block)) > 0)
		;
	while (write(fd, block, 512) > 0)
		;
	close(fd);
}

/* The disk under jobs.db full while the host runs: an enqueue that does
 * not fit is refused with the reason, the jobs stored before are kept,
 * another worker is not touched, and once there is room the next one runs. */
Test(jobs, a_full_disk_refuses_enqueues_with_the_reason_and_supervision_goes_on, .fini = unmount_state)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_retry_delay = 0\n\n[other]\nplugin = idle\n");
	state_on_a_small_tmpfs();
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 5000, "other", "idle ready"));
	pid_t other = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'other'");
	struct jc c = jc_open(&wt);
	long long before = jc_enqueue(&c, "w", "echo before");
	assert_done(&c, before, "before");
	char filler[400];
	fill_up(wt.state, filler, sizeof(filler));
	/* a payload bigger than what can be left */
	static char big[200 * 1024];
	memcpy(big, "echo ", 5);
	memset(big + 5, 'x', sizeof(big) - 6);
	char *reply = NULL;
	for (int i = 0; i < 20; i++) {
		reply = jc_enqueue_reply(&c, "w", big);
		if (strncmp(reply, "error ", 6) == 0)
			break;
	}
	cr_assert(reply && strncmp(reply, "error ", 6) == 0, "20 enqueues of 200 KiB on a full disk were all stored: %s",
		  reply);
	cr_expect(strstr(reply, "full") || strstr(reply, "No space left on device"),
		  "the refusal does not say the disk is full: %s", reply);
	cr_expect(strstr(reply, "send it again") || strstr(reply, "could not be stored"), "%s", reply);
	cr_expect_eq(wt_count(wt_host_stderr(&wt), "its file system is full"), 1, "said once:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'other'"), other,
		     "the other worker was restarted while the disk was full");
	cr_assert_eq(unlink(filler), 0);
	long long after = 0;
	for (int i = 0; i < 3 && !after; i++) { /* the first may still meet the lost batch */
		reply = jc_enqueue_reply(&c, "w", "echo after");
		sscanf(reply, "ok %lld new", &after);
	}
	cr_assert_gt(after, 0, "no enqueue is stored once there is room: %s\n%s", reply, wt_host_stderr(&wt));
	assert_done(&c, after, "after");
	cr_expect(strstr(wt_host_stderr(&wt), "works again"), "the recovery is not said:\n%s", wt_host_stderr(&wt));
	/* The job stored before is done in the end: if the disk filled up
	 * before its end was written, that attempt failed and it ran again. */
	assert_done(&c, before, "before");
	char *json = job_json(before);
	cr_expect(strstr(json, "\"state\": \"done\""), "the job stored before the disk filled up: %s", json);
}

/* A job handed out in a batch the full disk then lost: jobs.db never heard
 * of that attempt (nor, here, of the job: its enqueue was refused). When
 * its process ends, that end must not be taken for the end of the job
 * that now has its id and attempt number. */
Test(jobs, the_end_of_an_attempt_whose_claim_was_lost_is_not_recorded, .fini = unmount_state)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_retry_delay = 0\n");
	state_on_a_small_tmpfs();
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	assert_done(&c, jc_enqueue(&c, "w", "echo before"), "before");
	sleep_ms(100); /* its end committed */
	char filler[400];
	fill_up(wt.state, filler, sizeof(filler));
	/* handed to the idle instance in the batch that stores it: both lost */
	char *reply = jc_enqueue_reply(&c, "w", "sleep 1500");
	cr_assert(strncmp(reply, "error job 2 is not on disk", 26) == 0, "on a full disk: %s", reply);
	cr_assert(wt_wait_log(&wt, 5000, "w", "job 2 attempt 1: sleep 1500"), "%s", wt_log(&wt, "w"));
	cr_assert_eq(unlink(filler), 0);
	/* the same id and attempt number, for another job */
	long long id = jc_enqueue(&c, "w", "echo new");
	cr_assert_eq(id, 2);
	char *result;
	char *line = jc_wait(&c, id, 20000, &result);
	cr_assert(strncmp(line, "done ", 5) == 0, "job 2: %s", line);
	cr_expect_str_eq(result, "new", "job 2 was given the end of the lost attempt of another job");
	cr_expect(wt_wait_log(&wt, 5000, "w", "its claim was lost with a batch jobs.db could not write"), "%s",
		  wt_log(&wt, "w"));
}

Test(jobs, unknown_queue_names_the_queues)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\n[v]\nplugin = job_cmd\nqueue = images\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	char *reply = jc_enqueue_reply(&c, "nope", "ok");
	cr_assert_str_eq(reply, "error no queue 'nope'; queues: images, w");
	/* the session goes on */
	long long id = jc_enqueue(&c, "images", "echo via queue key");
	assert_done(&c, id, "via queue key");
}

Test(jobs, malformed_request_is_refused_and_the_connection_closed)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	/* pipelined: the good request is answered first, in order */
	jc_send_enqueue(&c, "w", "ok", NULL, 0);
	jc_send(&c, "enqueue w x 0 -\n", 16);
	char *first = jc_line(&c, 10000), *second = jc_line(&c, 5000);
	cr_assert(strncmp(first, "ok ", 3) == 0, "%s", first);
	cr_assert(strncmp(second, "error malformed request", 23) == 0, "%s", second);
	cr_assert_str_eq(jc_line(&c, 5000), "", "the connection is closed");
	/* the host is unharmed */
	struct jc d = jc_open(&wt);
	assert_done(&d, jc_enqueue(&d, "w", "echo fine"), "fine");
}

Test(jobs, oversize_payload_is_refused)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	jc_send(&c, "enqueue w 1048577 0 -\n", 22);
	char *reply = jc_line(&c, 5000);
	cr_assert_str_eq(reply, "error payload of 1048577 bytes is over the 1 MiB limit");
	cr_assert_str_eq(jc_line(&c, 5000), "", "the connection is closed");
	/* exactly 1 MiB is taken */
	struct jc d = jc_open(&wt);
	char *big = wt_keep(malloc(1048576 + 1));
	memset(big, 'x', 1048576);
	memcpy(big, "echo ", 5);
	big[1048576] = '\0';
	long long id = jc_enqueue(&d, "w", big);
	char *result;
	char *line = jc_wait(&d, id, 20000, &result);
	cr_assert(strncmp(line, "done ", 5) == 0, "%s", line);
}

Test(jobs, a_request_that_stops_arriving_ends_the_session)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	jc_send(&c, "enqueue w 10 0 -\nabc", 20); /* 7 payload bytes never come */
	long long t0 = now_ms();
	cr_assert_str_eq(jc_line(&c, 15000), "", "the connection is closed");
	cr_assert(now_ms() - t0 >= 4000 && now_ms() - t0 < 12000, "closed after the 5 s request deadline (%lld ms)",
		  now_ms() - t0);
	struct jc d = jc_open(&wt);
	assert_done(&d, jc_enqueue(&d, "w", "echo alive"), "alive");
}

Test(jobs, a_client_gone_before_its_answers_leaves_whole_jobs)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	for (int i = 0; i < 50; i++)
		jc_send_enqueue(&c, "w", "echo gone", NULL, 0);
	jc_send(&c, "enqueue w 9 0 -\necho", 20); /* the last one cut short */
	close(c.fd);
	struct jc d = jc_open(&wt);
	long long last = jc_enqueue(&d, "w", "echo after");
	assert_done(&d, last, "after");
	/* every job the gone client queued is whole: stored and run with its
	 * whole payload, or not stored (the host stops reading a client it
	 * cannot answer); the cut one is never stored */
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "jobs -n 100 --json"), 0, "%s", err);
	int stored = wt_count(out, "\"id\": ") - 1;
	cr_assert(stored >= 0 && stored <= 50 && last == stored + 1, "%d stored, the next id %lld\n%s", stored, last, out);
	for (long long id = 1; id <= stored; id++)
		assert_done(&d, id, "gone");
}

Test(jobs, a_stop_lets_the_running_job_finish)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "sleep 700");
	char needle[64];
	snprintf(needle, sizeof(needle), "job %lld attempt 1: sleep", id);
	cr_assert(wt_wait_log(&wt, 10000, "w", needle), "%s", wt_log(&wt, "w"));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err);
	assert_done(&c, id, "slept");
	char *json = job_json(id);
	cr_assert_eq(wt_count(json, "\"attempt\": "), 1, "one attempt, not interrupted: %s", json);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'stopped'"));
}

Test(jobs, garbage_on_a_job_session_never_harms_the_host)
{
	wt_setup(&wt, JOB_WORKER);
	wt_start(&wt);
	srand(7);
	for (int round = 0; round < 30; round++) {
		struct jc c = jc_open(&wt);
		char junk[700];
		size_t n = 1 + (size_t)rand() % sizeof(junk);
		for (size_t i = 0; i < n; i++)
			junk[i] = (char)(round % 3 == 0 ? rand() % 256 : " enqueuwait0123456789-\n\0"[rand() % 24]);
		send(c.fd, junk, n, MSG_NOSIGNAL);
		if (round % 2)
			jc_line(&c, 200);
		close(c.fd);
	}
	struct jc d = jc_open(&wt);
	assert_done(&d, jc_enqueue(&d, "w", "echo still here"), "still here");
	cr_assert(pid_alive(wt.pid));
}

/* As user nobody (group nogroup): what a job session and a control request get. */
static void as_nobody(struct wt *t, char *reply, size_t size)
{
	int pipefd[2];
	cr_assert(pipe(pipefd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		struct passwd *pw = getpwnam("nobody");
		struct group *g = getgrnam("nogroup");
		if (!pw || !g || setgroups(0, NULL) < 0 || setgid(g->gr_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(3);
		struct jc c = jc_open(t);
		char *ok = jc_enqueue_reply(&c, "w", "echo from nobody");
		dprintf(pipefd[1], "%s\n", ok);
		int fd = wt_connect_control(t);
		if (write(fd, "stop w\n", 7) != 7)
			_exit(4);
		char buf[256] = "";
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		dprintf(pipefd[1], "%.*s", n > 0 ? (int)n : 0, buf);
		_exit(0);
	}
	close(pipefd[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < size && (n = read(pipefd[0], reply + got, size - 1 - got)) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	close(pipefd[0]);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed (%d): %s", status, reply);
}

Test(jobs, job_group_members_may_queue_jobs_and_nothing_else)
{
	cr_assert_eq(geteuid(), 0, "this test runs as root (the CI does) so that it can become another user");
	wt_setup(&wt, "");
	wt_write_conf(&wt, "zz.ini", "[ward]\njob_group = nogroup\n[w]\nplugin = job_cmd\n");
	chmod(wt.dir, 0755);
	wt_start(&wt);
	struct jc mine = jc_open(&wt); /* the socket is up */
	char reply[1024];
	as_nobody(&wt, reply, sizeof(reply));
	long long id = 0;
	cr_assert(sscanf(reply, "ok %lld new", &id) == 1, "%s", reply);
	cr_assert(strstr(reply, "error\npermission denied"), "a member of job_group may not stop a worker: %s", reply);
	assert_done(&mine, id, "from nobody");
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM workers WHERE name = 'w' AND state = 'running'"),
		  "the refused stop stopped nothing");
	cr_assert_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1, "one run: never stopped");
}

Test(jobs, check_refuses_a_job_group_that_does_not_exist)
{
	wt_setup(&wt, "");
	wt_write_conf(&wt, "zz.ini", "[ward]\njob_group = no-such-group-ward\n[w]\nplugin = job_cmd\nqueue = has space\n");
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "check"), 1, "%s%s", out, err);
	cr_assert(strstr(err, "zz.ini:2: [ward] job_group: invalid value \"no-such-group-ward\": no such group"), "%s", err);
	cr_assert(strstr(err, "[w] queue: invalid value \"has space\""), "%s", err);
}

/* ---- status, metrics, control verbs, pruning ---- */

Test(jobs, status_and_metrics_show_the_queue)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\nautostart = no\n");
	wt_start(&wt);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop w"), 0, "%s", err); /* stopped by request: jobs wait */
	struct jc c = jc_open(&wt);
	for (int i = 0; i < 3; i++)
		jc_enqueue_reply(&c, "w", "ok");
	sleep_ms(1100);
	wt_cli(&wt, &out, &err, "status");
	cr_assert(strstr(out, "queue w: 3 queued (oldest 1."), "%s", out);
	wt_cli(&wt, &out, &err, "status --json");
	cr_assert(strstr(out, "\"queue\": {\"name\": \"w\", \"queued\": 3, \"running\": 0, \"oldest_queued_seconds\": 1."), "%s",
		  out);
	char *m = wt_metrics(&wt);
	cr_assert_eq(wt_metric(m, "ward_jobs{queue=\"w\",state=\"queued\"}"), 3.0, "%s", m);
	cr_assert(wt_metric(m, "ward_jobs_oldest_queued_seconds{queue=\"w\"}") >= 1.0, "%s", m);
	wt_promtool_accepts(m);
	/* cancel one, then it counts as finished */
	cr_assert_eq(wt_cli(&wt, &out, &err, "job cancel 1"), 0, "%s", err);
	cr_assert_neq(wt_cli(&wt, &out, &err, "job cancel 1"), 0, "a cancelled job cannot be cancelled again");
	m = wt_metrics(&wt);
	cr_assert_eq(wt_metric(m, "ward_jobs_finished_total{queue=\"w\",outcome=\"cancelled\"}"), 1.0, "%s", m);
	cr_assert_eq(wt_metric(m, "ward_jobs{queue=\"w\",state=\"cancelled\"}"), 1.0, "%s", m);
}

Test(jobs, dead_job_retry_runs_it_again)
{
	wt_setup(&wt, "[w]\nplugin = job_cmd\njob_attempts = 2\njob_retry_delay = 0\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "fail");
	char *line = jc_wait(&c, id, 15000, NULL);
	cr_assert(strncmp(line, "failed ", 7) == 0 && strstr(line, " dead ") && strstr(line, "asked to fail"), "%s", line);
	char *out, *err, args[64];
	snprintf(args, sizeof(args), "job retry %lld", id);
	cr_assert_eq(wt_cli(&wt, &out, &err, args), 0, "%s", err);
	cr_assert(wt_wait_log(&wt, 10000, "w", "attempt 1: fail") , "%s", wt_log(&wt, "w"));
	line = jc_wait(&c, id, 15000, NULL);
	cr_assert(strstr(line, " dead "), "dead again after its fresh attempts: %s", line);
	char *json = job_json(id);
	cr_assert(strstr(json, "\"outcome\": \"failed\""), "%s", json);
}

Test(jobs, job_keep_prunes_finished_jobs)
{
	/* job_keep is a [ward] key: in a file after wt_setup's ward.ini */
	wt_setup(&wt, "");
	wt_write_conf(&wt, "zz.ini", "[ward]\njob_keep = 1s\n[w]\nplugin = job_cmd\n");
	wt_start(&wt);
	struct jc c = jc_open(&wt);
	long long id = jc_enqueue(&c, "w", "ok");
	assert_done(&c, id, "ok");
	/* the store keeps the newest job whatever its age (ids are never reused) */
	assert_done(&c, jc_enqueue(&c, "w", "ok"), "ok");
	char *out, *err, args[64];
	snprintf(args, sizeof(args), "job %lld", id);
	long long deadline = now_ms() + 15000;
	int rc;
	while ((rc = wt_cli(&wt, &out, &err, args)) == 0 && now_ms() < deadline)
		sleep_ms(200);
	cr_assert_neq(rc, 0, "job %lld is still kept past job_keep", id);
	cr_assert(strstr(err, "no job"), "%s", err);
}
