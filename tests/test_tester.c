/*
 * test_tester.c - `ward test`, the plugin test harness and option schemas:
 * a plugin tested runs exactly as the host runs it, every phase is reported,
 * and a worker section is checked against the options its plugin declares.
 */
#define _GNU_SOURCE
#include "support.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ward_harness.h>

TestSuite(tester, .fini = wt_teardown, .timeout = 60);

static char *fixture(const char *stem)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s.so", FIXTURE_DIR, stem) > 0);
	return wt_keep(p);
}

/* Runs `ward ARGS` (no -c) and returns its exit code, stdout in *out. */
static int ward(const char *args, char **out, char **err)
{
	char cmd[4096], o[64], e[64];
	snprintf(o, sizeof(o), "/tmp/ward-tester-%d.out", (int)getpid()); /* tests may run in parallel */
	snprintf(e, sizeof(e), "/tmp/ward-tester-%d.err", (int)getpid());
	snprintf(cmd, sizeof(cmd), "timeout 60 %s %s >%s 2>%s", WARD_BIN, args, o, e);
	int status = system(cmd);
	*out = wt_read(o);
	*err = wt_read(e);
	cr_assert(*out && *err, "could not run %s", cmd);
	unlink(o);
	unlink(e);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(tester, ward_test_reports_every_phase_and_cycle_and_passes_a_plugin_that_behaves)
{
	char *out, *err, args[1024];
	snprintf(args, sizeof(args), "test %s/ticker.so --cycles 3 interval=20ms message=hey", PLUGIN_DIR);
	cr_expect_eq(ward(args, &out, &err), 0, "%s%s", out, err);
	cr_expect(strstr(out, "  load ") && strstr(out, "ticker 1.0.0"), "%s", out);
	cr_expect(strstr(out, "  init ") && strstr(out, "returned 0"), "%s", out);
	cr_expect(strstr(out, "  cycle 1 ") && strstr(out, "  cycle 3 ") && !strstr(out, "  cycle 4 "), "%s", out);
	cr_expect(strstr(out, "WARD_IDLE"), "%s", out);
	cr_expect(strstr(out, "  shutdown "), "%s", out);
	cr_expect(strstr(out, "INFO hey 2 at "), "the plugin's log lines are missing:\n%s", out);
	cr_expect(strstr(out, "ended: stopped: stopped after 3 cycles"), "%s", out);
	cr_expect(strstr(out, "ok: the plugin behaved"), "%s", out);
}

Test(tester, ward_test_json_has_phases_cycles_log_and_end)
{
	char *out, *err, args[1024];
	snprintf(args, sizeof(args), "test %s/countdown.so count=2 step=10ms --json", PLUGIN_DIR);
	cr_expect_eq(ward(args, &out, &err), 0, "%s", err);
	cr_expect(strstr(out, "\"ok\": true"), "%s", out);
	cr_expect(strstr(out, "{\"phase\": \"load\", \"ms\": "), "%s", out);
	cr_expect(strstr(out, "{\"result\": \"WARD_OK\", \"ms\": 1"), "a 10 ms step should take about 10 ms: %s", out);
	cr_expect(strstr(out, "{\"result\": \"WARD_DONE\""), "%s", out);
	cr_expect(strstr(out, "\"end\": {\"reason\": \"done\", \"code\": 0, \"signal\": null"), "%s", out);
}

Test(tester, ward_test_fails_a_plugin_that_misbehaves_and_says_how)
{
	struct { const char *args, *want; } cases[] = {
		{"crash_after.so cycles=1 limit.core=0", "ended: signal SIGSEGV: in a cycle"},
		{"init_fail.so", "ended: init-failed"},
		{"error_after.so", "ended: error"},
		{"abi_future.so", "ended: abi-mismatch: plugin built for ward ABI 2"},
		{"hang_cycle.so watchdog=300ms stop_timeout=200ms", "ended: hung"},
		{"idle.so --timeout 300ms", "did not finish in the time allowed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out, *err, args[1024];
		snprintf(args, sizeof(args), "test %s/%s", FIXTURE_DIR, cases[i].args);
		cr_expect_eq(ward(args, &out, &err), 1, "%s: should fail:\n%s", cases[i].args, out);
		cr_expect(strstr(out, cases[i].want), "%s: missing \"%s\" in:\n%s", cases[i].args, cases[i].want, out);
	}
}

Test(tester, a_plugin_under_test_gets_the_same_process_as_under_the_host)
{
	/* Under the host: */
	wt_setup(&wt, "[env_dump]\nplugin = env_dump\nenv.FOO = bar\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE reason = 'done'"));
	char path[1200];
	snprintf(path, sizeof(path), "%s/workers/env_dump/env-0.txt", wt.state);
	char *host = wt_read(path);
	cr_assert(host);
	wt_stop(&wt, 5000);
	/* Under the harness, which keeps the state dir: the run writes there too. */
	ward_harness *h = ward_harness_new(fixture("env_dump"));
	ward_harness_set(h, "env.FOO", "bar");
	cr_assert_eq(ward_harness_run(h), 0, "%s", ward_harness_message(h));
	ward_harness_free(h);
	/* The variable names, descriptors and user match line by line (values
	 * such as paths and pids differ by nature). */
	const char *same[] = {"fds=0,1,2,3,4\n", "FOO=bar\n", "WARD_NAME=env_dump\n", "WARD_INSTANCE=0\n", "uid=0 gid=0\n"};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		cr_expect(strstr(host, same[i]), "host run lacks %s", same[i]);
	char *out, *err, args[1024];
	snprintf(args, sizeof(args), "test %s env.FOO=bar --json", fixture("env_dump"));
	cr_expect_eq(ward(args, &out, &err), 0, "%s", err);
}

Test(tester, the_harness_isolates_a_crash_and_reports_it)
{
	ward_harness *h = ward_harness_new(fixture("crash_after"));
	ward_harness_set(h, "cycles", "2");
	ward_harness_set(h, "limit.core", "0");
	cr_expect_eq(ward_harness_run(h), 1);
	cr_expect_str_eq(ward_harness_reason(h), "signal");
	cr_expect_eq(ward_harness_signal(h), 11);
	cr_expect_eq(ward_harness_cycle_count(h), 2);
	cr_expect_eq(ward_harness_cycle_result(h, 1), WARD_OK);
	cr_expect(ward_harness_log_contains(h, "ERROR last words before crash"));
	cr_expect(!ward_harness_shutdown_ran(h), "shutdown must not run after a crash");
	ward_harness_free(h);
}

Test(tester, the_harness_runs_cycles_until_done_and_times_each_phase)
{
	ward_harness *h = ward_harness_new(fixture("done_after"));
	ward_harness_set(h, "cycles", "4");
	cr_expect_eq(ward_harness_run(h), 0);
	cr_expect_str_eq(ward_harness_reason(h), "done");
	cr_expect_eq(ward_harness_cycle_count(h), 5);
	cr_expect_eq(ward_harness_cycle_result(h, 4), WARD_DONE);
	cr_expect(ward_harness_load_ms(h) > 0 && ward_harness_init_ms(h) >= 0 && ward_harness_shutdown_ran(h));
	cr_expect(ward_harness_log_contains(h, "shutdown ran"));
	ward_harness_free(h);
}

Test(tester, the_harness_runs_in_process_on_request)
{
	ward_harness *h = ward_harness_new(fixture("conf_echo"));
	ward_harness_set(h, "greeting", "inside");
	ward_harness_in_process(h, 1);
	cr_expect_eq(ward_harness_run(h), 0, "%s", ward_harness_message(h));
	cr_expect(ward_harness_log_contains(h, "greeting=inside"));
	cr_expect_str_eq(ward_harness_reason(h), "done");
	ward_harness_free(h);
}

Test(tester, describe_prints_name_version_abi_and_options)
{
	char *out, *err, args[1024];
	snprintf(args, sizeof(args), "test --describe %s", fixture("options_demo"));
	cr_expect_eq(ward(args, &out, &err), 0, "%s", err);
	cr_expect(strstr(out, "options_demo 2.1 (ward plugin ABI 1)\ndeclares its options\noptions:\n"), "%s", out);
	cr_expect(strstr(out, "name                 string    required"), "%s", out);
	cr_expect(strstr(out, "mode                 fast|safe default safe"), "%s", out);
}

Test(tester, declared_options_give_defaults_and_refuse_bad_keys)
{
	ward_harness *h = ward_harness_new(fixture("options_demo"));
	ward_harness_set(h, "name", "x");
	cr_expect_eq(ward_harness_run(h), 0);
	cr_expect(ward_harness_log_contains(h, "name=x count=2 mode=safe delay_ms=250"), "defaults not applied");
	ward_harness_free(h);
	wt_setup(&wt, "[a]\nplugin = options_demo\nname = ok\ncuont = 3\n"
		      "[b]\nplugin = options_demo\nname = ok\ncount = many\nmode = reckless\n"
		      "[c]\nplugin = options_demo\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1);
	cr_expect(strstr(err, "ward.ini:9: [a] cuont: not an option of this plugin; did you mean 'count'?"), "%s", err);
	cr_expect(strstr(err, "ward.ini:13: [b] count: invalid value \"many\": expected a whole number"), "%s", err);
	cr_expect(strstr(err, "ward.ini:14: [b] mode: invalid value \"reckless\": expected one of the listed choices: fast|safe"), "%s", err);
	cr_expect(strstr(err, "ward.ini:15: [c] name: required by the plugin but not set: who we are"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "run"), 1, "ward run must refuse the same errors");
	cr_expect(strstr(err, "[a] cuont"), "%s", err);
	cr_expect(!strstr(err, "[a] name: not a ward key"), "a key the plugin declares is not a misspelt ward key:\n%s", err);
}

Test(tester, a_plugin_built_with_an_older_header_keeps_loading)
{
	ward_harness *h = ward_harness_new(fixture("abi_older"));
	cr_expect_eq(ward_harness_run(h), 0, "%s: %s", ward_harness_reason(h), ward_harness_message(h));
	cr_expect(ward_harness_log_contains(h, "old plugin cycling"));
	ward_harness_free(h);
}

Test(tester, strict_permissions_refuses_plugins_others_could_replace_symlinks_resolved)
{
	wt_setup(&wt, "");
	char dir[200], cmd[9000];
	snprintf(dir, sizeof(dir), "%s/p", wt.dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/real && cp %s/idle.so %s/real/idle.so && chmod 755 %s %s/real && "
		 "chmod 644 %s/real/idle.so && ln -s real/idle.so %s/link.so", dir, FIXTURE_DIR, dir, dir, dir, dir, dir);
	cr_assert(system(cmd) == 0);
	char ini[3000];
	snprintf(ini, sizeof(ini), "[ward]\nstrict_permissions = yes\n[w]\nplugin = %s/link.so\n", dir);
	wt_write_conf(&wt, "zz.ini", ini);
	chmod(wt.dir, 0755);
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 0, "a safe plugin was refused: %s", err);
	snprintf(cmd, sizeof(cmd), "%s/real/idle.so", dir);
	chmod(cmd, 0666);
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1);
	cr_expect(strstr(err, "zz.ini:3: [w] plugin: refused by strict_permissions:") && strstr(err, "real/idle.so is writable by everyone: run `chmod go-w"),
		  "the symlink's target must be checked: %s", err);
	chmod(cmd, 0644);
	snprintf(cmd, sizeof(cmd), "%s/real", dir);
	chmod(cmd, 0775);
	cr_expect_eq(wt_cli(&wt, &out, &err, "check"), 1);
	cr_expect(strstr(err, "real is writable by its group"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "run"), 1, "ward run must refuse it too");
}
