/*
 * test_faults.c - the host under faults of its environment. For each one the
 * host keeps supervising (a crashing worker keeps being restarted), says what
 * is wrong once on its stderr (one line, not one per attempt), and recovers
 * by itself when the fault goes away (a recovery line, and history and logs
 * written again):
 *
 *   - the log disk is full (a small tmpfs, filled up);
 *   - the log directory is replaced by a file; a worker's log is deleted;
 *   - a file size limit (RLIMIT_FSIZE) is put on the host;
 *   - the history database is deleted, or is not a database at all;
 *   - a worker's plugin file is deleted, replaced, or overwritten in place;
 *   - fork() fails (a pids cgroup with pids.max = 1);
 *   - the host runs out of file descriptors (RLIMIT_NOFILE lowered with
 *     prlimit), for starting workers and for the control socket.
 *
 * The tests run as root, which bypasses file permissions, so "unwritable"
 * is made with faults root cannot bypass: a full file system, a path that is
 * not a directory, a file size limit. Mounts happen in a private mount
 * namespace of the test process, and cgroups are removed at teardown. A test
 * whose fault cannot be made on this machine is skipped, saying why.
 */
#define _GNU_SOURCE
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void faults_fini(void);
static void faults_init(void)
{
	signal(SIGPIPE, SIG_IGN);
}
TestSuite(faults, .init = faults_init, .fini = faults_fini, .timeout = 120);

/* A worker that crashes at once and is restarted every 50 ms, without limit:
 * supervision that never stops, so a stall shows at once. */
#define CYCLING                                                                              \
	"[w]\nplugin = crash_after\nrestart_delay = 50ms\nrestart_delay_max = 50ms\n"        \
	"max_restarts = unlimited\nlimit.core = 0\n"

/* ---- helpers ---- */

static char mounted[400];  /* a tmpfs this test mounted */
static char cgroup_dir[400]; /* a pids cgroup this test created */
static char cgroup_parent[400];

static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *hit = memmem(line, len, needle, strlen(needle));
		n += hit != NULL;
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

/* Lines of the host's stderr that contain every one of up to two needles. */
static int host_lines(const char *a, const char *b)
{
	char *err = wt_read_raw(wt.errfile);
	if (!err)
		return 0;
	int n = 0;
	for (const char *line = err; *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (memmem(line, len, a, strlen(a)) && (!b || memmem(line, len, b, strlen(b))))
			n++;
		if (!nl)
			break;
		line = nl + 1;
	}
	free(err);
	return n;
}

static bool host_alive(void);

/* Waits for a line of the host's stderr; gives up early if the host died. */
static bool wait_host_line(int timeout_ms, const char *a, const char *b)
{
	long long deadline = now_ms() + timeout_ms;
	do {
		if (host_lines(a, b) > 0)
			return true;
		if (!host_alive())
			return false;
		sleep_ms(20);
	} while (now_ms() < deadline);
	return false;
}

/* The host's stderr for a failure message, without the one warning per
 * crash of the restarting worker (they say nothing about the fault). */
static char *host_said(void)
{
	char *err = wt_host_stderr(&wt);
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);
	int skipped = 0;
	for (const char *line = err; *line;) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
		if (memmem(line, n, "] exited: ", 10))
			skipped++;
		else
			fwrite(line, 1, n, m);
		line += n;
	}
	if (skipped)
		fprintf(m, "(and %d lines \"[w:0] exited: ...\")\n", skipped);
	fclose(m);
	if (len > 20000) { /* a flood: its start and its end are enough */
		memcpy(out + 8000, "\n...\n", 5);
		memmove(out + 8005, out + len - 8000, 8001);
	}
	return wt_keep(out);
}

static bool host_alive(void)
{
	int status;
	if (wt.pid <= 0)
		return false;
	pid_t r = waitpid(wt.pid, &status, WNOHANG);
	if (r == 0)
		return true;
	if (r == wt.pid) {
		wt.status = status;
		wt.pid = 0;
	}
	return false;
}

static const char *how_host_died(void)
{
	static char buf[128];
	if (WIFSIGNALED(wt.status))
		snprintf(buf, sizeof(buf), "killed by SIG%s", sigabbrev_np(WTERMSIG(wt.status)));
	else
		snprintf(buf, sizeof(buf), "exited with %d", WEXITSTATUS(wt.status));
	return buf;
}

#define ASSERT_HOST_ALIVE(when)                                                                   \
	cr_assert(host_alive(), "the host died %s (%s); its stderr:\n%s", when, how_host_died(),  \
		  host_said())

static long long runs(void)
{
	return wt_sql_int(&wt, "SELECT count(*) FROM runs");
}

/* Waits until the history shows at least n runs. */
static bool wait_runs(long long n, int timeout_ms)
{
	return wt_wait_sql(&wt, timeout_ms, "SELECT count(*) >= %lld FROM runs", n);
}

static int log_starts(const char *worker)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/logs/%s.log", wt.state, worker);
	char *log = wt_read_raw(path);
	int n = log ? count_lines(log, " WARD started (") : 0;
	free(log);
	return n;
}

static bool wait_log_starts(const char *worker, int n, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	do {
		if (log_starts(worker) >= n)
			return true;
		sleep_ms(20);
	} while (now_ms() < deadline);
	return false;
}

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);
	cr_assert(n > 0 && (size_t)n < size, "path too long: %s/%s", dir, name);
}

static void copy_file(const char *from, const char *to)
{
	char *data = wt_read(from);
	cr_assert(data, "cannot read %s", from);
	struct stat st;
	cr_assert(stat(from, &st) == 0);
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "cannot write %s: %s", to, strerror(errno));
	cr_assert(write(fd, data, (size_t)st.st_size) == st.st_size);
	close(fd);
}

/* Its own mount namespace, so a mount made by the test is invisible to the
 * rest of the machine and goes away with the test process. */
static bool private_mounts(void)
{
	return unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static void host_cpu_ms(pid_t pid, long long *ms)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *s = wt_read(path);
	*ms = -1;
	char *end = s ? strrchr(s, ')') : NULL;
	unsigned long ut, st;
	if (end && sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
		*ms = (long long)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* The lowest descriptor number the host does not use: with its soft
 * RLIMIT_NOFILE set there, it can only open what it closes from then on. */
static int lowest_free_fd(pid_t pid)
{
	char path[64];
	for (int fd = 0;; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if (access(path, F_OK) < 0)
			return fd;
	}
}

static void set_nofile(pid_t pid, rlim_t soft, struct rlimit *old)
{
	struct rlimit cur;
	cr_assert(prlimit(pid, RLIMIT_NOFILE, NULL, &cur) == 0, "prlimit: %s", strerror(errno));
	if (old)
		*old = cur;
	/* Only the soft limit: raising a hard limit again may need
	 * CAP_SYS_RESOURCE, which this sandbox's root does not have. */
	struct rlimit lim = {soft, cur.rlim_max};
	cr_assert(prlimit(pid, RLIMIT_NOFILE, &lim, NULL) == 0, "prlimit: %s", strerror(errno));
}

static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	ssize_t n = write(fd, text, strlen(text));
	int err = errno;
	close(fd);
	cr_assert(n == (ssize_t)strlen(text), "write %s to %s: %s", text, path, strerror(err));
}

/* Moves every process of the test's pids cgroup back and removes it. */
static void remove_cgroup(void)
{
	if (!cgroup_dir[0])
		return;
	char path[600], parent_procs[600];
	path_in(path, sizeof(path), cgroup_dir, "pids.max");
	int fd = open(path, O_WRONLY);
	if (fd >= 0) {
		(void)!write(fd, "max", 3);
		close(fd);
	}
	path_in(path, sizeof(path), cgroup_dir, "cgroup.procs");
	path_in(parent_procs, sizeof(parent_procs), cgroup_parent, "cgroup.procs");
	for (int round = 0; round < 100 && rmdir(cgroup_dir) < 0 && errno == EBUSY; round++) {
		FILE *f = fopen(path, "re");
		int pid;
		while (f && fscanf(f, "%d", &pid) == 1) {
			int out = open(parent_procs, O_WRONLY);
			if (out >= 0) {
				dprintf(out, "%d", pid);
				close(out);
			}
		}
		if (f)
			fclose(f);
		sleep_ms(10);
	}
	cgroup_dir[0] = '\0';
}

/* A pids cgroup holding the host, so its forks can be made to fail: as root,
 * RLIMIT_NPROC does not apply, but pids.max does. false when the machine has
 * no usable pids controller. */
/* Moves the host and its spawner (which forks the workers) into a new pids cgroup. */
static bool host_into_pids_cgroup(pid_t host)
{
	static const char *const roots[] = {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	for (size_t i = 0; i < sizeof(roots) / sizeof(*roots); i++) {
		char probe[600];
		path_in(probe, sizeof(probe), roots[i], "cgroup.procs");
		if (access(probe, W_OK) < 0)
			continue;
		snprintf(cgroup_dir, sizeof(cgroup_dir), "%s/ward-test-%d", roots[i], (int)getpid());
		if (mkdir(cgroup_dir, 0755) < 0) {
			cgroup_dir[0] = '\0';
			continue;
		}
		snprintf(cgroup_parent, sizeof(cgroup_parent), "%s", roots[i]);
		char max[600], procs[600];
		path_in(max, sizeof(max), cgroup_dir, "pids.max");
		path_in(procs, sizeof(procs), cgroup_dir, "cgroup.procs");
		int fd = open(procs, O_WRONLY);
		pid_t spawner = wt_spawner(host);
		bool ok = access(max, W_OK) == 0 && fd >= 0 && dprintf(fd, "%d", (int)host) > 0;
		if (fd >= 0)
			ok = close(fd) == 0 && ok;
		fd = spawner > 0 ? open(procs, O_WRONLY) : -1;
		if (spawner > 0)
			ok = ok && fd >= 0 && dprintf(fd, "%d", (int)spawner) > 0;
		if (fd >= 0)
			ok = close(fd) == 0 && ok;
		if (ok)
			return true;
		remove_cgroup();
	}
	return false;
}

static void faults_fini(void)
{
	if (wt.pid > 0) {
		kill(wt.pid, SIGKILL);
		waitpid(wt.pid, NULL, 0);
		wt.pid = 0;
	}
	remove_cgroup();
	if (mounted[0]) {
		umount2(mounted, MNT_DETACH);
		mounted[0] = '\0';
	}
	wt_teardown();
}

/* Each line of a log must be one record: "TIMESTAMP [w:0] pid=N LEVEL text". */
static void expect_whole_lines(const char *worker)
{
	char *log = wt_log(&wt, worker);
	int bad = 0;
	for (char *line = log; *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char tag[32];
		snprintf(tag, sizeof(tag), "[%s:", worker);
		const char *first = memmem(line, len, tag, strlen(tag));
		const char *second = first ? memmem(first + 1, len - (size_t)(first + 1 - line), tag, strlen(tag)) : NULL;
		if (!first || second || !nl) {
			if (bad++ < 3)
				cr_log_error("malformed log line: \"%.*s\"", (int)(len > 300 ? 300 : len), line);
		}
		if (!nl)
			break;
		line = nl + 1;
	}
	cr_expect_eq(bad, 0, "%d malformed (cut or merged) lines in %s.log after the fault", bad, worker);
}

/* ---- the log disk ---- */

Test(faults, a_full_log_disk_is_reported_once_supervision_goes_on_and_logging_resumes)
{
	if (!private_mounts())
		cr_skip_test("no private mount namespace here (%s): cannot mount a small file system", strerror(errno));
	wt_setup(&wt, CYCLING);
	char logs[400];
	path_in(logs, sizeof(logs), wt.state, "logs");
	cr_assert(mkdir(wt.state, 0755) == 0 && mkdir(logs, 0750) == 0);
	if (mount("tmpfs", logs, "tmpfs", 0, "size=1m") < 0)
		cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
	snprintf(mounted, sizeof(mounted), "%s", logs);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000), "the worker is not being restarted:\n%s", host_said());

	/* Fill the disk. */
	char filler[500];
	path_in(filler, sizeof(filler), logs, "filler");
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	static char block[4096];
	while (write(fd, block, sizeof(block)) > 0)
		;
	close(fd);
	cr_assert(wait_host_line(5000, "unable to write log", "No space left on device"),
		  "a full log disk was not reported:\n%s", host_said());
	long long before = runs();
	sleep_ms(1500);
	ASSERT_HOST_ALIVE("while its log disk was full");
	cr_expect(runs() >= before + 5, "supervision stalled while the log disk was full (%lld -> %lld runs)", before,
		  runs());
	cr_expect_eq(host_lines("unable to write log", NULL), 1, "the full disk was not reported exactly once:\n%s",
		     host_said());

	/* Room again: the host says so, and the log goes on. */
	int starts = log_starts("w");
	cr_assert(unlink(filler) == 0);
	cr_expect(wait_host_line(5000, "is writable again", NULL), "no recovery line:\n%s", host_said());
	cr_expect(wait_log_starts("w", starts + 3, 5000), "the log was not written again after the disk had room");
	cr_expect_eq(host_lines("unable to write log", NULL), 1, "%s", host_said());
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	expect_whole_lines("w");
}

Test(faults, a_deleted_log_file_is_created_again_and_no_line_goes_to_the_deleted_file)
{
	/* What an operator does to free space: rm the worker's log. The lines
	 * that follow must land in a new NAME.log that `ward logs` shows, not in
	 * the deleted file the host still has open (with the default 10M
	 * log_max_size a rotation could be hours away). */
	wt_setup(&wt, CYCLING);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000));
	char log[600];
	path_in(log, sizeof(log), wt.state, "logs/w.log");
	cr_assert(unlink(log) == 0);
	long long before = runs();
	bool back = false;
	for (long long deadline = now_ms() + 3000; !back && now_ms() < deadline; sleep_ms(20))
		back = access(log, F_OK) == 0;
	ASSERT_HOST_ALIVE("after its worker's log was deleted");
	cr_expect(back, "3 s after w.log was deleted there is still no w.log: the lines go to the deleted file");
	cr_expect(wait_runs(before + 5, 5000), "supervision stalled after the log was deleted");
	if (back)
		cr_expect(wt_wait_log(&wt, 5000, "w", "started (restart)"), "the new w.log gets no lines");
	cr_expect(host_lines("w.log", NULL) <= 1, "the deleted log was reported more than once:\n%s", host_said());
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, a_log_dir_replaced_by_a_file_is_reported_once_and_logging_resumes_when_it_is_back)
{
	/* log_max_size = 4K: the log is rotated (closed and opened again)
	 * about every second, and that is when a log directory that has gone
	 * shows: an open log file keeps working wherever its directory went. */
	wt_setup(&wt, "[ward]\nlog_max_size = 4K\nlog_keep = 2\n" CYCLING);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000));
	/* Swapped in one step (a file is made, then exchanged with the
	 * directory), so the host never sees a moment without either. */
	char logs[400], away[400];
	path_in(logs, sizeof(logs), wt.state, "logs");
	path_in(away, sizeof(away), wt.state, "logs.away");
	int fd = open(away, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert(renameat2(AT_FDCWD, away, AT_FDCWD, logs, RENAME_EXCHANGE) == 0, "renameat2: %s", strerror(errno));
	cr_assert(wait_host_line(10000, "unable to write log", "Not a directory"),
		  "a log directory replaced by a file was not reported:\n%s", host_said());
	long long before = runs();
	sleep_ms(1500);
	ASSERT_HOST_ALIVE("without its log directory");
	cr_expect(runs() >= before + 5, "supervision stalled without a log directory (%lld -> %lld runs)", before, runs());
	cr_expect_eq(host_lines("unable to write log", NULL), 1, "not reported exactly once:\n%s", host_said());

	/* Put the directory back the same way. */
	cr_assert(renameat2(AT_FDCWD, away, AT_FDCWD, logs, RENAME_EXCHANGE) == 0, "renameat2: %s", strerror(errno));
	cr_assert(unlink(away) == 0);
	cr_expect(wait_host_line(5000, "is writable again", NULL), "no recovery line:\n%s", host_said());
	cr_expect(wt_wait_log(&wt, 5000, "w", "started (restart)"), "the log was not written again");
	cr_expect_eq(host_lines("unable to write log", NULL), 1, "%s", host_said());
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* Sizes of the largest file the host writes: logs, database, its stderr. */
static off_t largest_file(void)
{
	off_t max = 0;
	struct stat st;
	const char *dirs[] = {wt.state, NULL};
	char logs[600];
	path_in(logs, sizeof(logs), wt.state, "logs");
	dirs[1] = logs;
	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[1200];
			snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > max)
				max = st.st_size;
		}
		if (d)
			closedir(d);
	}
	if (stat(wt.errfile, &st) == 0 && st.st_size > max)
		max = st.st_size;
	return max;
}

/* A child of the host other than `old`, or 0. */
static pid_t other_child(pid_t old)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)wt.pid, (int)wt.pid);
	char *s = wt_read(path);
	for (char *p = s, *end; p && *p; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0 && pid != old && pid_alive((pid_t)pid))
			return (pid_t)pid;
	}
	return 0;
}

Test(faults, a_file_size_limit_makes_writes_fail_and_never_kills_the_host)
{
	/* One worker that logs a line every few milliseconds and nothing else
	 * that writes: its log is the first file to reach the limit. */
	wt_setup(&wt, "[talk]\nplugin = chaos\ntalk = yes\ncycle_ms = 5\nrestart_delay = 50ms\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'talk'"));
	pid_t worker = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'talk'");
	/* As if the host had been started under `ulimit -f` or LimitFSIZE=. */
	struct rlimit old, lim;
	cr_assert(prlimit(wt.pid, RLIMIT_FSIZE, NULL, &old) == 0);
	lim = (struct rlimit){(rlim_t)largest_file() + 16384, old.rlim_max};
	cr_assert(prlimit(wt.pid, RLIMIT_FSIZE, &lim, NULL) == 0, "prlimit: %s", strerror(errno));
	bool said = wait_host_line(10000, "unable to write log", "File too large");
	ASSERT_HOST_ALIVE("once its worker's log reached the file size limit");
	cr_expect(said, "the file size limit was not reported:\n%s", host_said());
	/* Supervision goes on: a crash is still noticed and the worker restarted. */
	cr_assert(kill(worker, SIGSEGV) == 0);
	pid_t next = 0;
	for (long long deadline = now_ms() + 5000; !(next = other_child(worker)) && now_ms() < deadline;)
		sleep_ms(20);
	cr_expect(next > 0, "the worker was not restarted while its log could not be written");
	sleep_ms(500);
	ASSERT_HOST_ALIVE("at the file size limit");
	cr_expect_eq(host_lines("unable to write log", NULL), 1, "the size limit was not reported exactly once:\n%s",
		     host_said());
	cr_assert(prlimit(wt.pid, RLIMIT_FSIZE, &old, NULL) == 0);
	cr_expect(wait_host_line(5000, "is writable again", NULL), "no recovery line:\n%s", host_said());
	char log[600];
	path_in(log, sizeof(log), wt.state, "logs/talk.log");
	struct stat st;
	cr_assert(stat(log, &st) == 0);
	off_t size = st.st_size;
	bool grew = false;
	for (long long deadline = now_ms() + 5000; !grew && now_ms() < deadline; sleep_ms(20))
		grew = stat(log, &st) == 0 && st.st_size > size + 1024;
	cr_expect(grew, "the log was not written again once the limit was lifted");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	expect_whole_lines("talk");
}

/* ---- the history database ---- */

Test(faults, a_deleted_history_database_is_noticed_and_created_again)
{
	wt_setup(&wt, CYCLING);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000));
	static const char *const files[] = {"ward.db", "ward.db-wal", "ward.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		char path[400];
		path_in(path, sizeof(path), wt.state, files[i]);
		cr_assert(unlink(path) == 0 || errno == ENOENT, "unlink %s: %s", path, strerror(errno));
	}
	int starts = log_starts("w");
	sleep_ms(1500);
	ASSERT_HOST_ALIVE("after its database was deleted");
	cr_expect(log_starts("w") >= starts + 5, "supervision stalled after the database was deleted");
	/* What a user sees: the history works again by itself. */
	bool back = wt_wait_sql(&wt, 6000, "SELECT count(*) > 0 FROM runs");
	cr_expect(back, "6 s after ward.db was deleted, the host has not created it again: `ward status` and"
			" `ward history` show nothing while the host runs");
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "status");
	/* The crasher is in backoff (exit 3) or, for the few milliseconds of a run, running
	 * (exit 0): either is a true answer. Exit 1 would mean status broke with the database. */
	cr_expect((rc == 3 || rc == 0) && strstr(out, "crash_after"),
		  "ward status after the database was deleted (exit %d, expected 3 or 0):\n%s%s", rc, out, err);
	int said = host_lines("history database", NULL) - host_lines("history database", "works again");
	cr_expect_eq(said, 1, "the deleted database was not reported exactly once:\n%s", host_said());
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, a_history_database_that_is_not_a_database_is_reported_once_and_replaced_once_removed)
{
	wt_setup(&wt, CYCLING);
	char db[400];
	path_in(db, sizeof(db), wt.state, "ward.db");
	cr_assert(mkdir(wt.state, 0755) == 0);
	int fd = open(db, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0);
	char garbage[16384];
	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (char)(i * 2654435761u >> 13);
	cr_assert(write(fd, garbage, sizeof(garbage)) == (ssize_t)sizeof(garbage));
	close(fd);
	wt_launch(&wt);
	cr_assert(wait_log_starts("w", 5, 5000), "the host does not supervise with a broken database:\n%s",
		  host_said());
	ASSERT_HOST_ALIVE("with a broken database");
	cr_expect_eq(host_lines("history database", "not a database"), 1, "not reported exactly once:\n%s",
		     host_said());
	char *out, *err;
	long long t0 = now_ms();
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 1, "status with a broken database must fail");
	cr_expect(now_ms() - t0 < 10000);
	cr_expect(strstr(err, "not a database"), "status does not say what is wrong:\n%s", err);
	/* The operator moves the broken file away: the host creates a new one
	 * and writes what it kept meanwhile. */
	cr_assert(unlink(db) == 0);
	cr_expect(wait_host_line(5000, "history database", "works again"), "no recovery:\n%s", host_said());
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '%d'", (int)wt.pid),
		  "what the host recorded while the database was broken was lost");
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) >= 5 FROM runs"));
	int rc = wt_cli(&wt, &out, &err, "status");
	cr_expect(rc == 0 || rc == 3, "status answers again (exit %d): %s", rc, err);
	cr_expect_eq(host_lines("history database", "not a database"), 1, "%s", host_said());
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- the plugin file ---- */

static char plugin_path[400];

static void setup_own_plugin(const char *fixture, const char *extra)
{
	wt_setup(&wt, "");
	char dir[400], src[600];
	path_in(dir, sizeof(dir), wt.dir, "plugins");
	cr_assert(mkdir(dir, 0755) == 0);
	path_in(plugin_path, sizeof(plugin_path), dir, "p.so");
	snprintf(src, sizeof(src), "%s/%s.so", FIXTURE_DIR, fixture);
	copy_file(src, plugin_path);
	char ini[1200];
	snprintf(ini, sizeof(ini), "[w]\nplugin = %s\n%s", plugin_path, extra);
	wt_write_conf(&wt, "w.ini", ini);
}

static pid_t running_pid(void)
{
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM instances WHERE worker = 'w'"),
		  "w is not running; host said:\n%s", host_said());
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w'");
}

static void expect_still_running(pid_t pid, const char *after)
{
	sleep_ms(1000);
	cr_expect(pid_alive(pid), "the running worker died after its plugin file was %s", after);
	cr_expect_eq(wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w' AND state = 'running'"), pid,
		     "the worker is not running as before after its plugin file was %s", after);
	cr_expect_eq(runs(), 1, "the worker was restarted because its plugin file was %s", after);
}

Test(faults, a_deleted_plugin_leaves_its_worker_running_and_a_restart_fails_with_load_failed)
{
	setup_own_plugin("idle", "restart_delay = 50ms\nmax_restarts = 2\n");
	wt_start(&wt);
	pid_t pid = running_pid();
	cr_assert(unlink(plugin_path) == 0);
	expect_still_running(pid, "deleted");

	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "restart w"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = 'w'"),
		  "w did not fail for good without its plugin file:\n%s", host_said());
	ASSERT_HOST_ALIVE("after a plugin file was deleted");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE id = 1"), "stopped");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE id > 1 AND reason = 'load-failed'"), 3,
		     "every run after the deletion must be load-failed");
	char *msg = wt_sql_text(&wt, "SELECT message FROM runs ORDER BY id DESC LIMIT 1");
	cr_expect(msg && strstr(msg, plugin_path) && strstr(msg, "No such file"),
		  "the reason does not say which file is missing: %s", msg ? msg : "(null)");
	cr_expect(strstr(wt_log(&wt, "w"), "No such file"), "the worker's log does not say what is wrong:\n%s",
		  wt_log(&wt, "w"));
	cr_expect(host_lines("[w:0] failed:", "load-failed") == 1, "%s", host_said());

	/* The file is back: a restart brings the worker back. */
	char src[600];
	snprintf(src, sizeof(src), "%s/idle.so", FIXTURE_DIR);
	copy_file(src, plugin_path);
	cr_assert_eq(wt_cli(&wt, &out, &err, "restart w"), 0, "%s", err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT state = 'running' FROM workers WHERE name = 'w'"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, a_replaced_plugin_leaves_its_worker_running_and_is_picked_up_at_the_next_start)
{
	setup_own_plugin("idle", "interval = 50ms\n");
	wt_start(&wt);
	pid_t pid = running_pid();
	/* Replaced the way installers do it: a new file renamed over the old one. */
	char tmp[500], src[600];
	snprintf(tmp, sizeof(tmp), "%s.new", plugin_path);
	snprintf(src, sizeof(src), "%s/done_after.so", FIXTURE_DIR);
	copy_file(src, tmp);
	cr_assert(rename(tmp, plugin_path) == 0);
	expect_still_running(pid, "replaced");

	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "restart w"), 0, "%s", err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT state = 'done' FROM workers WHERE name = 'w'"),
		  "the restarted worker does not run the new plugin:\n%s", wt_log(&wt, "w"));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE id = 1"), "stopped");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE id = 2"), "done");
	cr_expect(strstr(wt_log(&wt, "w"), "shutdown ran"), "%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, a_plugin_overwritten_in_place_may_crash_its_worker_but_never_the_host)
{
	setup_own_plugin("idle", "interval = 20ms\nrestart_delay = 50ms\n");
	wt_start(&wt);
	running_pid();
	/* `cp new.so plugin.so`: the file the running process has mapped is
	 * truncated and rewritten under it. What the old process does next
	 * is up to the new bytes; the host must only record it and go on. */
	char src[600];
	snprintf(src, sizeof(src), "%s/done_after.so", FIXTURE_DIR);
	copy_file(src, plugin_path);
	sleep_ms(1000);
	ASSERT_HOST_ALIVE("after a plugin file was overwritten under its worker");
	char *first = wt_sql_text(&wt, "SELECT coalesce(reason, 'still running') FROM runs WHERE id = 1");
	cr_log_info("overwritten in place: the old process: %s", first);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "restart w"), 0, "%s", err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE reason = 'done'"),
		  "the new plugin never ran:\n%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE reason IS NULL"), 0);
}

/* ---- processes and descriptors ---- */

Test(faults, when_fork_fails_the_host_retries_says_so_once_and_recovers)
{
	wt_setup(&wt, CYCLING);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000));
	if (!host_into_pids_cgroup(wt.pid))
		cr_skip_test("no writable pids cgroup on this machine: cannot make fork() fail for a root host");
	char max[600];
	path_in(max, sizeof(max), cgroup_dir, "pids.max");
	write_text(max, "1"); /* fewer than the host and its spawner: every fork fails with EAGAIN */
	cr_assert(wait_host_line(5000, "unable to start a process", NULL), "the failing fork was not reported:\n%s",
		  host_said());
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM events WHERE worker = 'w' AND event = 'backoff'"
				       " AND detail = 'unable to fork'"));
	sleep_ms(2500); /* two retries or more */
	ASSERT_HOST_ALIVE("while fork() failed");
	cr_expect_eq(host_lines("unable to start a process", NULL), 1, "not reported exactly once:\n%s",
		     host_said());
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 3, "the host does not answer while fork fails, or calls a worker in backoff healthy: %s", err);
	cr_expect(strstr(out, "backoff"), "%s", out);

	long long before = runs();
	write_text(max, "max");
	cr_expect(wait_host_line(5000, "processes can be started again", NULL), "no recovery line:\n%s",
		  host_said());
	cr_expect(wait_runs(before + 5, 5000), "the worker was not restarted once fork worked again");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, out_of_descriptors_the_host_cannot_start_workers_says_so_once_and_recovers)
{
	wt_setup(&wt, CYCLING);
	wt_start(&wt);
	cr_assert(wait_runs(3, 5000));
	struct rlimit old;
	cr_assert(prlimit(wt.pid, RLIMIT_NOFILE, NULL, &old) == 0);
	/* The limit goes right above what the host has open. Caught in the
	 * middle of a start, it would leave a few free: then lower it again. */
	bool said = false;
	for (int attempt = 0; attempt < 5 && !said; attempt++) {
		set_nofile(wt.pid, (rlim_t)lowest_free_fd(wt.pid), NULL);
		said = wait_host_line(2000, "unable to start a process", "Too many open files");
	}
	cr_assert(said, "running out of descriptors was not reported:\n%s", host_said());
	long long events = wt_sql_int(&wt, "SELECT count(*) FROM events");
	sleep_ms(2500);
	ASSERT_HOST_ALIVE("out of descriptors");
	cr_expect_eq(host_lines("unable to start a process", NULL), 1, "not reported exactly once:\n%s",
		     host_said());
	cr_expect(wt_sql_int(&wt, "SELECT count(*) FROM events") > events,
		  "the host stopped recording while out of descriptors");
	char *state = wt_sql_text(&wt, "SELECT state FROM instances WHERE worker = 'w'");
	cr_expect(state && strcmp(state, "backoff") == 0, "w is '%s', not waiting in backoff", state ? state : "(none)");

	long long before = runs();
	cr_assert(prlimit(wt.pid, RLIMIT_NOFILE, &old, NULL) == 0, "prlimit: %s", strerror(errno));
	cr_expect(wait_host_line(5000, "processes can be started again", NULL), "no recovery line:\n%s",
		  host_said());
	cr_expect(wait_runs(before + 5, 5000), "the worker was not restarted once descriptors were back");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(faults, out_of_descriptors_a_control_client_neither_floods_the_log_nor_spins_the_host)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	running_pid();
	struct rlimit old;
	set_nofile(wt.pid, (rlim_t)lowest_free_fd(wt.pid), &old);
	long long cpu0, cpu1;
	host_cpu_ms(wt.pid, &cpu0);
	long long t0 = now_ms();
	/* The connection waits in the socket's backlog: the host cannot accept it. */
	int fd = wt_connect_control(&wt);
	cr_assert(write(fd, "ping\n", 5) == 5);
	sleep_ms(1000);
	host_cpu_ms(wt.pid, &cpu1);
	long long spent = cpu1 - cpu0, wall = now_ms() - t0;
	cr_assert(prlimit(wt.pid, RLIMIT_NOFILE, &old, NULL) == 0, "prlimit: %s", strerror(errno));
	ASSERT_HOST_ALIVE("out of descriptors with a control client waiting");
	/* Once descriptors are back, the waiting client gets its answer. */
	char reply[256] = "";
	size_t n = 0;
	long long deadline = now_ms() + 5000;
	while (n < sizeof(reply) - 1 && now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(fd, reply + n, sizeof(reply) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	reply[n] = '\0';
	close(fd);
	int lines = host_lines("unable to accept", NULL);
	cr_expect(lines <= 1, "the host wrote %d lines about one client it could not accept (a busy loop)", lines);
	cr_expect(spent < wall / 2, "the host used %lld ms of CPU in %lld ms while it could not accept a client",
		  spent, wall);
	cr_expect(strncmp(reply, "ok\npong", 7) == 0 || strncmp(reply, "error\n", 6) == 0,
		  "the waiting client got no answer: \"%s\"", reply);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "status"), 0, "%s", err);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
