/*
 * test_abi.c - the loader's checks of docs/plugin-guide.md and the isolation of §3: a
 * plugin without a descriptor, built for another ABI, with a descriptor of
 * the wrong size, without a cycle, that is not ELF at all, or whose
 * constructor crashes is refused, both by `ward check` and by `ward run`,
 * with the loader's own words; none of its functions ever runs, and neither
 * the host nor any other worker is affected.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

TestSuite(abi, .fini = wt_teardown, .timeout = 60);

#define LAST_RUN(col, worker) "SELECT " col " FROM runs WHERE worker = '" worker "' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1"

/* A crashing constructor must not leave core files behind, whichever ward
 * process (the `ward check` probe or a worker) it takes down. */
static void no_cores(void)
{
	struct rlimit rl = {0, 0};
	cr_assert(setrlimit(RLIMIT_CORE, &rl) == 0, "setrlimit: %s", strerror(errno));
}

static char *fixture(const char *stem)
{
	char *path;
	cr_assert(asprintf(&path, "%s/%s.so", FIXTURE_DIR, stem) > 0);
	return wt_keep(path);
}

/* Writes a text file named junk.so into a directory of the test's own and
 * returns its absolute path. Long enough that the dynamic loader reads a
 * whole ELF header's worth of it. */
static char *make_junk(struct wt *t)
{
	char *dir, *path;
	cr_assert(asprintf(&dir, "%s/junk", t->dir) > 0);
	cr_assert(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	cr_assert(asprintf(&path, "%s/junk.so", dir) > 0);
	FILE *f = fopen(path, "w");
	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	for (int i = 0; i < 4; i++)
		fputs("this is not a shared object, only a text file that is named like one\n", f);
	fclose(f);
	free(dir);
	return wt_keep(path);
}

/* The dynamic loader's complaint about a file that is not ELF. */
static bool says_not_elf(const char *msg)
{
	return msg && (strstr(msg, "ELF") || strstr(msg, "file too short"));
}

/*
 * `ward check` on the configuration in wt: exits 1 and reports
 * "plugin PATH (worker NAME): REASON: MESSAGE" on stderr. Returns MESSAGE
 * (malloc'd, up to the end of its line).
 */
static char *check_refuses(const char *worker, const char *path, const char *reason)
{
	char *out = NULL, *err = NULL;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_assert_not_null(err, "no stderr captured from `ward check`");
	cr_assert_eq(rc, 1, "`ward check` must exit 1 for a bad plugin, exited %d; stdout:\n%s\nstderr:\n%s",
		     rc, out ? out : "", err);
	char *head;
	cr_assert(asprintf(&head, "plugin %s (worker %s): %s: ", path, worker, reason) > 0);
	char *at = strstr(err, head);
	cr_assert_not_null(at, "`ward check` did not report \"%s...\"; stderr:\n%s", head, err);
	at += strlen(head);
	char *msg = wt_keep(strndup(at, strcspn(at, "\n")));
	cr_assert(msg[0], "`ward check` reported an empty message; stderr:\n%s", err);
	free(head);
	return msg;
}

/*
 * Under `ward run` (with restart = never): the worker ends up failed, its
 * last run is recorded with `reason` and the loader's message, and the
 * worker's log says "exited: REASON: MESSAGE". Returns the message.
 */
static char *run_refuses(const char *worker, const char *reason)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = '%s'", worker),
		  "worker %s did not become failed; host stderr:\n%s", worker, wt_host_stderr(&wt));
	char *got = wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = '%s' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1", worker);
	cr_assert_not_null(got, "no finished run recorded for %s", worker);
	cr_assert_str_eq(got, reason, "worker %s: run recorded as '%s', expected '%s'", worker, got, reason);
	char *msg = wt_sql_text(&wt, "SELECT message FROM runs WHERE worker = '%s' AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1", worker);
	cr_assert(msg && msg[0], "worker %s: the run has no message (the loader's words are missing)", worker);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = '%s' AND ready_at IS NOT NULL", worker), 0,
		     "worker %s: a refused plugin was recorded as ready", worker);
	char *line;
	cr_assert(asprintf(&line, "exited: %s: %s", reason, msg) > 0);
	bool logged = wt_wait_log(&wt, 3000, worker, line);
	char *log = wt_log(&wt, worker);
	cr_expect(logged, "the log of %s lacks \"%s\":\n%s", worker, line, log);
	free(line);
	return msg;
}

/* No "... init must not run" (or any other line written by the plugin). */
static void expect_init_never_ran(const char *worker)
{
	char *log = wt_log(&wt, worker);
	cr_expect_null(strstr(log, "init must not run"), "init of a refused plugin ran (worker %s):\n%s", worker, log);
}

/* ---- no descriptor ---- */

Test(abi, check_refuses_a_plugin_without_a_descriptor)
{
	wt_setup(&wt, "[w]\nplugin = no_descriptor\n");
	char *msg = check_refuses("w", fixture("no_descriptor"), "load-failed");
	cr_expect(strstr(msg, "ward_plugin") || strstr(msg, "WARD_PLUGIN"),
		  "the message does not name the missing descriptor: %s", msg);
}

Test(abi, run_records_a_plugin_without_a_descriptor_as_load_failed)
{
	wt_setup(&wt, "[w]\nplugin = no_descriptor\nrestart = never\n");
	wt_start(&wt);
	char *msg = run_refuses("w", "load-failed");
	cr_expect(strstr(msg, "ward_plugin") || strstr(msg, "WARD_PLUGIN"),
		  "the message does not name the missing descriptor: %s", msg);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- abi_version from the future ---- */

Test(abi, check_refuses_another_abi_version_naming_both)
{
	wt_setup(&wt, "[w]\nplugin = abi_future\n");
	char *msg = check_refuses("w", fixture("abi_future"), "abi-mismatch");
	cr_expect(strstr(msg, "ABI 2"), "the message does not name the plugin's ABI 2: %s", msg);
	cr_expect(strstr(msg, "ABI 1"), "the message does not name this ward's ABI 1: %s", msg);
}

Test(abi, run_records_another_abi_version_as_abi_mismatch)
{
	wt_setup(&wt, "[w]\nplugin = abi_future\nrestart = never\n");
	wt_start(&wt);
	char *msg = run_refuses("w", "abi-mismatch");
	cr_expect(strstr(msg, "ABI 2"), "the message does not name the plugin's ABI 2: %s", msg);
	cr_expect(strstr(msg, "ABI 1"), "the message does not name this ward's ABI 1: %s", msg);
	expect_init_never_ran("w");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- struct_size larger than this ward knows ---- */

Test(abi, check_refuses_a_descriptor_from_a_newer_header)
{
	wt_setup(&wt, "[w]\nplugin = abi_bigger\n");
	char *msg = check_refuses("w", fixture("abi_bigger"), "abi-mismatch");
	cr_expect(strstr(msg, "newer"), "the message does not say the header is newer: %s", msg);
	cr_expect(strstr(msg, "rebuild"), "the message does not ask to rebuild the plugin: %s", msg);
}

Test(abi, run_records_a_descriptor_from_a_newer_header_as_abi_mismatch)
{
	wt_setup(&wt, "[w]\nplugin = abi_bigger\nrestart = never\n");
	wt_start(&wt);
	char *msg = run_refuses("w", "abi-mismatch");
	cr_expect(strstr(msg, "newer"), "the message does not say the header is newer: %s", msg);
	expect_init_never_ran("w");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- struct_size too small ---- */

Test(abi, check_refuses_a_descriptor_too_small_for_abi_1)
{
	wt_setup(&wt, "[w]\nplugin = abi_tiny\n");
	char *msg = check_refuses("w", fixture("abi_tiny"), "abi-mismatch");
	cr_expect(strstr(msg, "4 bytes"), "the message does not give the descriptor's size: %s", msg);
}

Test(abi, run_records_a_descriptor_too_small_as_abi_mismatch)
{
	wt_setup(&wt, "[w]\nplugin = abi_tiny\nrestart = never\n");
	wt_start(&wt);
	run_refuses("w", "abi-mismatch");
	expect_init_never_ran("w");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- no cycle ---- */

Test(abi, check_refuses_a_plugin_without_a_cycle)
{
	wt_setup(&wt, "[w]\nplugin = null_cycle\n");
	char *msg = check_refuses("w", fixture("null_cycle"), "load-failed");
	cr_expect(strstr(msg, "cycle"), "the message does not mention the missing cycle: %s", msg);
}

Test(abi, run_records_a_plugin_without_a_cycle_as_load_failed)
{
	wt_setup(&wt, "[w]\nplugin = null_cycle\nrestart = never\n");
	wt_start(&wt);
	char *msg = run_refuses("w", "load-failed");
	cr_expect(strstr(msg, "cycle"), "the message does not mention the missing cycle: %s", msg);
	expect_init_never_ran("w");
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- not ELF at all ---- */

Test(abi, check_refuses_a_file_that_is_not_elf_with_the_dynamic_loaders_words)
{
	wt_setup(&wt, "");
	char *junk = make_junk(&wt), *ini;
	cr_assert(asprintf(&ini, "[w]\nplugin = %s\n", junk) > 0);
	wt_write_conf(&wt, "junk.ini", ini);
	free(ini);
	char *msg = check_refuses("w", junk, "load-failed");
	cr_expect(says_not_elf(msg), "the dynamic loader's message is missing: %s", msg);
	cr_expect(strstr(msg, junk), "the message does not name the file: %s", msg);
}

Test(abi, run_records_a_file_that_is_not_elf_as_load_failed)
{
	wt_setup(&wt, "");
	char *junk = make_junk(&wt), *ini;
	cr_assert(asprintf(&ini, "[w]\nplugin = %s\nrestart = never\n", junk) > 0);
	wt_write_conf(&wt, "junk.ini", ini);
	free(ini);
	wt_start(&wt);
	char *msg = run_refuses("w", "load-failed");
	cr_expect(says_not_elf(msg), "the dynamic loader's message is missing: %s", msg);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- a constructor that crashes ---- */

Test(abi, check_survives_a_crashing_constructor_and_reports_it)
{
	no_cores();
	wt_setup(&wt, "[w]\nplugin = ctor_crash\n");
	/* check_refuses asserts the exit code is exactly 1: ward check itself
	 * was not killed, only its probe. */
	char *msg = check_refuses("w", fixture("ctor_crash"), "load-failed");
	cr_expect(strstr(msg, "SIGSEGV"), "the message does not name SIGSEGV: %s", msg);
	cr_expect(strstr(msg, "loading"), "the message does not say it happened while loading: %s", msg);
}

Test(abi, run_survives_a_crashing_constructor_restarts_it_and_keeps_other_workers)
{
	no_cores();
	wt_setup(&wt, "[good]\nplugin = idle\n\n"
		      "[crash]\nplugin = ctor_crash\nrestart_delay = 50ms\nmax_restarts = 2\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'running' FROM workers WHERE name = 'good'"),
		  "the healthy worker did not reach running; host stderr:\n%s", wt_host_stderr(&wt));
	long long good_pid = wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'good' AND instance = 0");
	cr_assert_gt(good_pid, 0, "no pid recorded for the healthy worker");

	/* Restarted per policy: at least two runs, then failed after max_restarts. */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'crash' AND ended_at IS NOT NULL"),
		  "the worker whose constructor crashes was not restarted; host stderr:\n%s", wt_host_stderr(&wt));
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = 'crash'"),
		  "the worker did not give up after max_restarts; host stderr:\n%s", wt_host_stderr(&wt));
	long long runs = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'crash'");
	cr_expect_eq(runs, 3, "max_restarts = 2 should give exactly 3 runs, got %lld", runs);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'crash' AND (reason IS NOT 'load-failed' OR message NOT LIKE '%%SIGSEGV%%')"), 0,
		     "every run must be load-failed with SIGSEGV in its message");
	cr_expect_eq(wt_sql_int(&wt, LAST_RUN("signal", "crash")), SIGSEGV);
	char *msg = run_refuses("crash", "load-failed");
	cr_expect(strstr(msg, "SIGSEGV"), "the message does not name SIGSEGV: %s", msg);

	/* The host survived every one of them. */
	cr_expect_eq(kill(wt.pid, 0), 0, "the host is gone");
	cr_expect(pid_alive(wt.pid), "the host is gone (or a zombie); its stderr:\n%s", wt_host_stderr(&wt));

	/* The healthy worker never noticed: same process, still running, one run. */
	sleep_ms(200);
	char *state = wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'good'");
	cr_expect(state && strcmp(state, "running") == 0, "the healthy worker is '%s', not running", state ? state : "(none)");
	cr_expect_eq(wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = 'good' AND instance = 0"), good_pid,
		     "the healthy worker's process changed");
	cr_expect(pid_alive((pid_t)good_pid), "the healthy worker's process %lld died", good_pid);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'good'"), 1,
		     "the healthy worker was restarted");
	cr_expect_eq(wt_stop(&wt, 5000), 0, "the host did not exit cleanly; its stderr:\n%s", wt_host_stderr(&wt));
}

/* ---- nothing of a refused plugin runs ---- */

Test(abi, init_of_a_refused_plugin_never_runs_across_restarts)
{
	wt_setup(&wt, "[future]\nplugin = abi_future\nrestart_delay = 50ms\nmax_restarts = 2\n\n"
		      "[bigger]\nplugin = abi_bigger\nrestart_delay = 50ms\nmax_restarts = 2\n\n"
		      "[tiny]\nplugin = abi_tiny\nrestart_delay = 50ms\nmax_restarts = 2\n\n"
		      "[nocycle]\nplugin = null_cycle\nrestart_delay = 50ms\nmax_restarts = 2\n");
	wt_start(&wt);
	static const char *const workers[] = {"future", "bigger", "tiny", "nocycle"};
	static const char *const reasons[] = {"abi-mismatch", "abi-mismatch", "abi-mismatch", "load-failed"};
	for (int i = 0; i < 4; i++) {
		run_refuses(workers[i], reasons[i]);
		cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = '%s'", workers[i]), 3,
			     "%s: max_restarts = 2 should give 3 runs", workers[i]);
	}
	for (int i = 0; i < 4; i++)
		expect_init_never_ran(workers[i]);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

/* ---- one bad plugin does not affect the others ---- */

Test(abi, a_plugin_failing_to_load_does_not_affect_other_workers)
{
	wt_setup(&wt, "[bad]\nplugin = no_descriptor\nrestart = never\n\n"
		      "[good]\nplugin = idle\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'running' FROM workers WHERE name = 'good'"),
		  "the good worker did not reach running; host stderr:\n%s", wt_host_stderr(&wt));
	run_refuses("bad", "load-failed");
	cr_expect(wt_wait_log(&wt, 3000, "good", "idle ready"), "the good worker's init did not log");
	sleep_ms(200);
	char *state = wt_sql_text(&wt, "SELECT state FROM workers WHERE name = 'good'");
	cr_expect(state && strcmp(state, "running") == 0, "the good worker is '%s', not running", state ? state : "(none)");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'good'"), 1);
	cr_expect_eq(wt_stop(&wt, 5000), 0);
}

Test(abi, check_reports_every_bad_plugin_and_not_the_good_one)
{
	no_cores();
	wt_setup(&wt, "[good]\nplugin = idle\n\n"
		      "[a]\nplugin = no_descriptor\n\n"
		      "[b]\nplugin = abi_future\n\n"
		      "[c]\nplugin = abi_bigger\n\n"
		      "[d]\nplugin = abi_tiny\n\n"
		      "[e]\nplugin = null_cycle\n\n"
		      "[f]\nplugin = ctor_crash\n");
	char *out = NULL, *err = NULL;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_assert_not_null(err);
	cr_expect_eq(rc, 1, "`ward check` exited %d; stderr:\n%s", rc, err);
	static const struct { const char *worker, *stem, *reason; } bad[] = {
		{"a", "no_descriptor", "load-failed"}, {"b", "abi_future", "abi-mismatch"},
		{"c", "abi_bigger", "abi-mismatch"},   {"d", "abi_tiny", "abi-mismatch"},
		{"e", "null_cycle", "load-failed"},    {"f", "ctor_crash", "load-failed"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *head;
		cr_assert(asprintf(&head, "plugin %s (worker %s): %s: ", fixture(bad[i].stem), bad[i].worker, bad[i].reason) > 0);
		cr_expect(strstr(err, head), "missing \"%s\" in:\n%s", head, err);
		free(head);
	}
	cr_expect_null(strstr(err, "(worker good)"), "the good plugin was reported:\n%s", err);
	cr_expect(strstr(err, "6 errors"), "`ward check` did not count 6 errors:\n%s", err);
}

Test(abi, check_accepts_a_good_plugin)
{
	wt_setup(&wt, "[good]\nplugin = idle\n");
	char *out = NULL, *err = NULL;
	int rc = wt_cli(&wt, &out, &err, "check");
	cr_expect_eq(rc, 0, "`ward check` refused a good plugin (exit %d); stderr:\n%s", rc, err ? err : "");
	cr_expect(out && strstr(out, "configuration is valid"), "stdout:\n%s", out ? out : "");
}
