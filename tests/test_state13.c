/*
 * test_state13.c - what a host keeps in state_dir, as a user sees it: runs
 * left open by a host that died are closed by the next one (host-died);
 * every file ward creates there is mode 0600; state_dir removed under a
 * running host is put back and still keeps a second host out; the "lock
 * held" message is one line; and `ward status` says when what it shows may
 * be stale because the history cannot be written.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(state, .fini = wt_teardown, .timeout = 120);

static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
	cr_assert((size_t)snprintf(buf, size, "%s/%s", dir, name) < size);
}

/* How many lines of text contain a, and b too unless it is NULL. */
static int lines_with(const char *text, const char *a, const char *b)
{
	int n = 0;
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *one = strndup(line, len);
		n += strstr(one, a) && (!b || strstr(one, b));
		free(one);
		line = end ? end + 1 : NULL;
	}
	return n;
}

static void wait_running(int n)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = %d FROM instances WHERE state = 'running'", n),
		  "the workers did not come up; the host said:\n%s", wt_host_stderr(&wt));
}

/* SIGKILL, as the OOM killer or a power cut would end a host. */
static pid_t kill_host(void)
{
	pid_t old = wt.pid;
	kill(old, SIGKILL);
	waitpid(old, NULL, 0);
	wt.pid = 0;
	return old;
}

/* ---- runs a dead host left open ---- */

Test(state, runs_a_host_that_died_left_open_are_closed_by_the_next_host_as_host_died)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninstances = 2\n");
	wt_start(&wt);
	wait_running(2);
	pid_t w0 = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w' AND instance = 0");
	pid_t w1 = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w' AND instance = 1");
	pid_t old = kill_host();
	/* Its workers die with it (parent-death signal)... */
	cr_assert(wait_pid_gone(w0, 5000) && wait_pid_gone(w1, 5000), "the workers outlived their host");
	/* ...and the history still has their runs open: what the next host finds. */
	cr_assert_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 2);

	wt_start(&wt);
	wait_running(2);
	char *out, *err, want[160];
	cr_assert_eq(wt_cli(&wt, &out, &err, "history --json"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "\"reason\": \"host-died\""), 2, "the dead host's runs are not host-died:\n%s", out);
	snprintf(want, sizeof(want), "\"message\": \"the host (pid %d) died during this run", (int)old);
	cr_expect_eq(wt_count(out, want), 2, "the message does not name the dead host:\n%s", out);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE pid IN (%d, %d) AND reason = 'host-died'"
				     " AND ended_at >= started_at AND ended_at <= (SELECT value FROM host WHERE key = 'started_at')",
				(int)w0, (int)w1),
		     2, "the end recorded is not between the run's start and the next host's start");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 2,
		     "only the new host's two runs may be open");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM events WHERE event = 'host-died'"), 2);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history w"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "host-died: the host"), 2, "%s", out);
	cr_expect_eq(wt_count(out, "(running)"), 2, "the dead host's runs still show (running):\n%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 0, "%s", err);
	cr_expect(strstr(out, "\"last_exit\": {\"reason\": \"host-died\""), "%s", out);
	/* One line on the new host's stderr, with the dead host's pid and the count. */
	snprintf(want, sizeof(want), "the previous host (pid %d) died", (int)old);
	cr_expect_eq(lines_with(wt_host_stderr(&wt), want, "2 runs"), 1, "the host said:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(state, a_host_that_stopped_leaves_nothing_for_the_next_one_to_close)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	wait_running(1);
	cr_assert_eq(wt_stop(&wt, 10000), 0);
	wt_start(&wt);
	wait_running(1);
	cr_expect_eq(wt_count(wt_host_stderr(&wt), "previous host"), 0, "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE reason = 'host-died'"), 0);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- file modes ---- */

static const char *const own_files[] = {"ward.db", "ward.db-wal", "ward.db-shm", "ward.lock", "ward.sock"};

/* Each of ward's files in state_dir is 0600 (and exists, when all_exist). */
static void expect_private(const char *when, bool all_exist)
{
	for (size_t i = 0; i < sizeof(own_files) / sizeof(*own_files); i++) {
		char path[400];
		struct stat st;
		path_in(path, sizeof(path), wt.state, own_files[i]);
		if (lstat(path, &st) < 0) {
			cr_expect(!all_exist, "%s: %s does not exist", when, own_files[i]);
			continue;
		}
		cr_expect_eq(st.st_mode & 0777, 0600, "%s: %s has mode %03o, not 0600", when, own_files[i],
			     (unsigned)(st.st_mode & 0777));
	}
}

static void make_public(void)
{
	for (size_t i = 0; i < sizeof(own_files) / sizeof(*own_files); i++) {
		char path[400];
		path_in(path, sizeof(path), wt.state, own_files[i]);
		if (chmod(path, 0644) < 0)
			cr_assert_eq(errno, ENOENT);
	}
}

Test(state, every_file_ward_creates_in_state_dir_is_mode_0600)
{
	wt_setup(&wt, "[w]\nplugin = crash_after\nrestart_delay = 50ms\nmax_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	/* History written: the WAL and its index exist while the host runs. */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 3 FROM runs"));
	expect_private("while the host runs", true);
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "status");
	cr_assert(rc == 0 || rc == 3, "exit %d: %s", rc, err); /* 3 while the crashing worker is in backoff */
	cr_assert_eq(wt_cli(&wt, &out, &err, "history"), 0, "%s", err);
	expect_private("after status and history", true);

	/* Files an older ward made 0644, left by a host that died: made private. */
	kill_host();
	make_public();
	long long runs = wt_sql_int(&wt, "SELECT count(*) FROM runs");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= %lld FROM runs", runs + 3));
	expect_private("after a host started on files left 0644", true);

	/* No host: the readers create what SQLite needs with the database's mode. */
	cr_assert_eq(wt_stop(&wt, 10000), 0);
	cr_assert_eq(wt_cli(&wt, &out, &err, "status"), 1, "%s", err);
	cr_assert_eq(wt_cli(&wt, &out, &err, "history"), 0, "%s", err);
	expect_private("after status with no host running", false);
}

/* ---- state_dir removed under a running host ---- */

/* `ward status` of a running host answers again (exit 0) within timeout_ms. */
static bool wait_status_ok(int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char *out, *err;
	do {
		if (wt_cli(&wt, &out, &err, "status") == 0 && strstr(out, "running"))
			return true;
		sleep_ms(100);
	} while (now_ms() < deadline);
	return false;
}

static void expect_second_host_refused(const char *when)
{
	char *out, *err, want[160];
	cr_expect_eq(wt_cli(&wt, &out, &err, "run"), 1, "%s: a second host was not refused:\n%s", when, err);
	snprintf(want, sizeof(want), "another ward host (pid %d) is already running", (int)wt.pid);
	cr_expect(strstr(err, want), "%s: the second host said:\n%s", when, err);
}

static void expect_dir(const char *name, unsigned mode)
{
	char path[400];
	struct stat st;
	path_in(path, sizeof(path), wt.state, name);
	cr_expect(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "%s was not created again", name);
	cr_expect_eq(st.st_mode & 0777, mode, "%s has mode %03o", name, (unsigned)(st.st_mode & 0777));
}

Test(state, a_state_dir_removed_under_a_running_host_is_created_again_and_still_locked)
{
	wt_setup(&wt, "[w]\nplugin = idle\n[v]\nplugin = idle\n");
	wt_start(&wt);
	wait_running(2);
	pid_t w = (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'w'");
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", wt.state);
	cr_assert_eq(system(cmd), 0);
	cr_assert(wait_status_ok(10000), "`ward status` does not work again after state_dir was removed; the host said:\n%s",
		  wt_host_stderr(&wt));
	expect_dir("workers/w", 0750);
	expect_dir("workers/v", 0750);
	expect_private("after state_dir was created again", true);
	expect_second_host_refused("after state_dir was removed");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "restart v"), 0, "`ward restart` does not reach the host: %s", err);
	cr_expect(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM runs WHERE worker = 'v' AND activation = 'command'"));
	cr_expect(pid_alive(w), "a worker was disturbed");
	cr_expect_eq(wt_sql_int(&wt, "SELECT value FROM host WHERE key = 'pid'"), wt.pid, "the live state was not recorded");
	cr_expect_eq(lines_with(wt_host_stderr(&wt), "state_dir", "was removed while this host ran"), 1,
		     "not said exactly once:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(state, a_removed_lock_file_is_taken_again_so_a_second_host_is_refused)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	wait_running(1);
	char lock[400];
	path_in(lock, sizeof(lock), wt.state, "ward.lock");
	cr_assert_eq(unlink(lock), 0);
	long long deadline = now_ms() + 10000;
	while (access(lock, F_OK) < 0 && now_ms() < deadline)
		sleep_ms(20);
	cr_assert_eq(access(lock, F_OK), 0, "ward.lock was not created again");
	expect_second_host_refused("after ward.lock was removed");
	cr_expect_eq(lines_with(wt_host_stderr(&wt), "ward.lock (held again)", NULL), 1, "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- the lock message ---- */

Test(state, the_lock_held_message_is_one_line)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	char *out, *err, want[512];
	cr_assert_eq(wt_cli(&wt, &out, &err, "run"), 1, "%s", err);
	snprintf(want, sizeof(want), "another ward host (pid %d) is already running with state_dir %s", (int)wt.pid,
		 wt.state);
	cr_expect_eq(lines_with(err, want, NULL), 1, "not one line:\n%s", err);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- status while the history cannot be written ---- */

Test(state, status_says_what_it_shows_may_be_stale_while_the_history_cannot_be_written)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	wt_start(&wt);
	wait_running(1);
	char *out, *err, path[400];
	cr_assert_eq(wt_cli(&wt, &out, &err, "status"), 0, "%s", err);
	cr_expect_eq(wt_count(err, "stale"), 0, "%s", err);
	path_in(path, sizeof(path), wt.state, "ward.db");
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	int rc = wt_cli(&wt, &out, &err, "status");
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	cr_expect_eq(rc, 0, "the workers are healthy: status still exits 0");
	cr_expect(strstr(out, "running"), "%s", out);
	cr_expect_eq(lines_with(err, "the history database has not been written since 20", "database is locked; what status and history show may be stale"),
		     1, "status did not say it may be stale:\n%s", err);
	/* Once the database can be written again, status is live and says nothing. */
	long long deadline = now_ms() + 10000;
	do {
		rc = wt_cli(&wt, &out, &err, "status");
		sleep_ms(50);
	} while ((rc != 0 || strstr(err, "stale")) && now_ms() < deadline);
	cr_expect_eq(rc, 0);
	cr_expect_eq(wt_count(err, "stale"), 0, "%s", err);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
