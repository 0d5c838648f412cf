/*
 * test_pmetrics.c - a plugin's own metrics (ward_gauge, ward_count) as an
 * operator and a plugin author meet them: `ward metrics` has
 * ward_plugin_<name>{worker,instance} for every instance, each family once
 * even when several workers report it, and promtool accepts the text; a
 * count grows, carries on across crashes and loses nothing at a clean stop;
 * a name ward refuses gets one warning in the worker's log and no sample; a
 * worker removed by a reload takes its samples along; `ward test` reports
 * the values, and a million counts in one cycle take no time to speak of.
 */
#define _GNU_SOURCE
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

TestSuite(pmetrics, .fini = wt_teardown, .timeout = 120);



static double plugin_sample(const char *text, const char *name, const char *worker, int instance)
{
	char series[300];
	snprintf(series, sizeof(series), "ward_plugin_%s{worker=\"%s\",instance=\"%d\"}", name, worker, instance);
	return wt_metric(text, series);
}

/* Scrapes until the sample is at least min (10 s at most); the last text. */
static char *scrape_until(const char *name, const char *worker, int instance, double min)
{
	char *text = wt_metrics(&wt);
	for (long long end = now_ms() + 10000; plugin_sample(text, name, worker, instance) < min && now_ms() < end;
	     text = wt_metrics(&wt))
		sleep_ms(50);
	cr_assert(plugin_sample(text, name, worker, instance) >= min, "ward_plugin_%s of %s:%d never reached %g:\n%s",
		  name, worker, instance, min, text);
	return text;
}


/* The lines of text that start with prefix are one block, with nothing else between them. */
static bool contiguous(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	int blocks = 0;
	bool in_block = false;
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		bool match = strncmp(line, prefix, n) == 0;
		blocks += match && !in_block;
		in_block = match;
	}
	return blocks == 1;
}

Test(pmetrics, every_instance_of_every_worker_has_its_samples_and_promtool_accepts_them)
{
	wt_setup(&wt, "[pm]\nplugin = pmetrics\ninstances = 2\ninterval = 50ms\n"
		      "[idle]\nplugin = idle\n"
		      "[other]\nplugin = pmetrics\ninterval = 50ms\n");
	wt_start(&wt);
	scrape_until("queue_depth", "pm", 0, 3);
	scrape_until("queue_depth", "pm", 1, 3);
	char *text = scrape_until("queue_depth", "other", 0, 3);
	wt_promtool_accepts(text);
	cr_expect_eq(wt_count(text, "# TYPE ward_plugin_queue_depth gauge\n"), 1, "%s", text);
	cr_expect_eq(wt_count(text, "# TYPE ward_plugin_items_total counter\n"), 1, "%s", text);
	cr_expect_eq(wt_count(text, "# HELP ward_plugin_items_total "), 1, "%s", text);
	cr_expect(contiguous(text, "ward_plugin_queue_depth{"), "a family's samples are not together:\n%s", text);
	cr_expect(contiguous(text, "ward_plugin_items_total{"), "a family's samples are not together:\n%s", text);
	/* A count set to 0 in init is there before anything was counted. */
	cr_expect_eq(plugin_sample(text, "errors_total", "pm", 1), 0, "%s", text);
	cr_expect(!strstr(text, "worker=\"idle\",instance"), "a worker without metrics has samples:\n%s", text);
	/* One count per cycle, so the count grows with the gauge. */
	double items = plugin_sample(text, "items_total", "pm", 1);
	cr_expect(items >= 3, "%s", text);
	text = scrape_until("items_total", "pm", 1, items + 2);
	cr_expect(plugin_sample(text, "queue_depth", "pm", 1) >= items + 2, "%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(pmetrics, a_count_carries_on_across_crashes_and_a_gauge_starts_again)
{
	/* Each process counts one item per cycle and crashes in its third
	 * cycle, before that cycle's figures are sent: it reports 2. */
	wt_setup(&wt, "[pm]\nplugin = pmetrics\ninterval = 10ms\ncrash_at = 3\nrestart_delay = 10ms\n"
		      "max_restarts = unlimited\nlimit.core = 0\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) >= 3 FROM runs WHERE worker = 'pm' AND reason = 'signal'"),
		  "%s", wt_host_stderr(&wt));
	long long crashed = wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'pm' AND reason = 'signal'");
	char *text = wt_metrics(&wt);
	double items = plugin_sample(text, "items_total", "pm", 0), depth = plugin_sample(text, "queue_depth", "pm", 0);
	cr_expect(items >= 2.0 * (double)crashed, "%lld processes counted 2 each, the count says %g:\n%s", crashed, items,
		  text);
	cr_expect(depth >= -1 && depth <= 2, "a gauge of a new process starts again, this one says %g:\n%s", depth, text);
	wt_promtool_accepts(text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(pmetrics, a_clean_stop_loses_no_count)
{
	/* Cycles back to back send every 100 ms; the last ones go at the end. */
	wt_setup(&wt, "[pm]\nplugin = pmetrics\nbusy = yes\n");
	wt_start(&wt);
	scrape_until("items_total", "pm", 0, 1000);
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "stop pm"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'stopped' FROM workers WHERE name = 'pm'"));
	char *text = wt_metrics(&wt);
	double cycles = wt_metric(text, "ward_worker_cycles_total{worker=\"pm\"}");
	cr_expect(cycles > 1000, "%s", text);
	cr_expect_eq(plugin_sample(text, "items_total", "pm", 0), cycles,
		     "%g cycles counted one item each, the count says %g", cycles, plugin_sample(text, "items_total", "pm", 0));
	cr_expect_eq(plugin_sample(text, "queue_depth", "pm", 0), cycles, "a stopped instance keeps its last gauge:\n%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(pmetrics, a_refused_name_is_warned_about_once_and_has_no_sample)
{
	wt_setup(&wt, "[pm]\nplugin = pmetrics\nbad = yes\nodd = yes\ninterval = 10ms\n");
	wt_start(&wt);
	char *text = scrape_until("queue_depth", "pm", 0, 10);
	char *log = wt_log(&wt, "pm");
	cr_expect_eq(wt_count(log, "ward_gauge(\"Bad-Name\"): not a metric name ward exports: only lower-case letters"), 1,
		     "%s", log);
	cr_expect_eq(wt_count(log, "ward_count(\"items\"): not a metric name ward exports: a counter's name (ward_count) "
				   "must end in _total"), 1, "%s", log);
	cr_expect_eq(wt_count(log, "ward_gauge(\"queue_depth_total\"): not a metric name"), 1, "%s", log);
	cr_expect_eq(wt_count(log, "ward_gauge(\"latency_ms\"): not a metric name ward exports: it has an abbreviated unit"),
		     1, "%s", log);
	cr_expect_eq(wt_count(log, "ward_count(\"items_total\", -1): a count only grows"), 1, "%s", log);
	cr_expect_eq(wt_count(log, " WARN "), 5, "one warning per refused name or bad delta:\n%s", log);
	cr_expect(!strstr(text, "Bad") && !strstr(text, "ward_plugin_items{") && !strstr(text, "queue_depth_total") &&
		  !strstr(text, "latency_ms"), "a refused name has a sample:\n%s", text);
	/* The negative deltas were ignored: one item per cycle, as the gauge counts cycles. */
	cr_expect_eq(plugin_sample(text, "items_total", "pm", 0) >= plugin_sample(text, "queue_depth", "pm", 0) - 1, 1,
		     "%s", text);
	cr_expect(strstr(text, "ward_plugin_ratio{worker=\"pm\",instance=\"0\"} NaN\n"), "%s", text);
	cr_expect(strstr(text, "ward_plugin_ceiling{worker=\"pm\",instance=\"0\"} +Inf\n"), "%s", text);
	wt_promtool_accepts(text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(pmetrics, a_worker_removed_by_reload_takes_its_samples_along)
{
	wt_setup(&wt, "[idle]\nplugin = idle\n");
	wt_write_conf(&wt, "pm.ini", "[pm]\nplugin = pmetrics\ninterval = 10ms\n");
	wt_start(&wt);
	scrape_until("queue_depth", "pm", 0, 2);
	char path[400], *out, *err;
	snprintf(path, sizeof(path), "%s/pm.ini", wt.conf);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s", err);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 0 FROM workers WHERE name = 'pm'"), "%s", wt_host_stderr(&wt));
	char *text = wt_metrics(&wt);
	cr_expect(!strstr(text, "ward_plugin_"), "a removed worker's samples are still there:\n%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- ward test ---- */

static void a_million_counts(const char *how)
{
	wt_setup(&wt, "");
	char args[600], *out, *err;
	snprintf(args, sizeof(args), "test %s/pmetrics.so --cycles 1 calls=1000000 %s --json", FIXTURE_DIR, how);
	long long t0 = now_ms();
	int rc = wt_ward_in(wt.dir, &out, &err, args);
	long long took = now_ms() - t0;
	cr_assert_eq(rc, 0, "%s%s", out, err);
	cr_expect(strstr(out, "\"metrics\": {\"errors_total\": 0, \"queue_depth\": 1, \"items_total\": 1000000}"), "%s", out);
	/* A system call per ward_count would take seconds (a million datagrams). */
	char *ms = strstr(out, "\"cycles\": [{\"result\": \"WARD_IDLE\", \"ms\": ");
	cr_assert(ms, "%s", out);
	double cycle_ms = strtod(ms + strlen("\"cycles\": [{\"result\": \"WARD_IDLE\", \"ms\": "), NULL);
	cr_expect(cycle_ms < (UNDER_ASAN ? 2000 : 500), "a cycle of a million ward_count calls took %.1f ms", cycle_ms);
	cr_expect(took < 10000, "ward test took %lld ms", took);
}

Test(pmetrics, ward_test_reports_a_million_counts_made_in_one_cycle)
{
	a_million_counts("");
}

Test(pmetrics, ward_test_in_process_reports_them_too)
{
	a_million_counts("--in-process");
}

Test(pmetrics, ward_test_lists_the_metrics_in_its_report)
{
	wt_setup(&wt, "");
	char args[600], *out, *err;
	snprintf(args, sizeof(args), "test %s/pmetrics.so --cycles 2 interval=10ms", FIXTURE_DIR);
	cr_assert_eq(wt_ward_in(wt.dir, &out, &err, args), 0, "%s%s", out, err);
	cr_expect(strstr(out, "  metrics:\n    ward_plugin_errors_total 0\n    ward_plugin_queue_depth 2\n"
			      "    ward_plugin_items_total 2\n"), "%s", out);
}

/* ---- the naming rule is what promtool accepts ---- */

#include "common/pmetric.h"

Test(pmetrics, every_name_ward_accepts_passes_promtool_and_the_refused_ones_would_not)
{
	static const char *const accepted[] = {
		"queue_depth", "request_duration_seconds", "payload_bytes", "temperature_celsius", "x", "a1_b2",
		"x__y", "_leading", "ratio", "thermometers", "hits_counted", "last_summarized_at", "seconds",
	};
	static const char *const accepted_counts[] = {"items_total", "payload_bytes_total", "total", "errors_5xx_total"};
	static const char *const refused[] = {
		"Bad", "fooBar", "a:b", "a-b", "", "x_total", "latency_ms", "wait_s", "size_kb", "age_minutes",
		"latency_milliseconds", "size_kilobytes", "q_count", "q_sum", "q_bucket", "x_gauge", "my_counter_x",
		"x_histogram", "a_summary", "traffic_bits",
		"a_name_that_is_much_much_longer_than_sixty_four_bytes_which_is_the_limit_here",
	};
	wt_setup(&wt, "");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert(f);
	for (size_t i = 0; i < sizeof(accepted) / sizeof(*accepted); i++) {
		cr_expect_null(pmetric_name_problem(accepted[i], PMETRIC_GAUGE), "%s: %s", accepted[i],
			       pmetric_name_problem(accepted[i], PMETRIC_GAUGE));
		fprintf(f, "# HELP ward_plugin_%s h\n# TYPE ward_plugin_%s gauge\nward_plugin_%s{worker=\"w\",instance=\"0\"} 1\n",
			accepted[i], accepted[i], accepted[i]);
	}
	for (size_t i = 0; i < sizeof(accepted_counts) / sizeof(*accepted_counts); i++) {
		cr_expect_null(pmetric_name_problem(accepted_counts[i], PMETRIC_COUNTER), "%s", accepted_counts[i]);
		fprintf(f, "# HELP ward_plugin_%s h\n# TYPE ward_plugin_%s counter\nward_plugin_%s{worker=\"w\",instance=\"0\"} 1\n",
			accepted_counts[i], accepted_counts[i], accepted_counts[i]);
	}
	fclose(f);
	wt_keep(text);
	wt_promtool_accepts(text);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		cr_expect_not_null(pmetric_name_problem(refused[i], PMETRIC_GAUGE), "%s was accepted", refused[i]);
	cr_expect_not_null(pmetric_name_problem("items", PMETRIC_COUNTER));
	cr_expect_not_null(pmetric_name_problem("latency_ms_total", PMETRIC_COUNTER));
}

/* The host checks what arrives as the worker does: a forged record is refused whole. */
Test(pmetrics, the_host_refuses_a_frame_the_runtime_would_not_write)
{
	char buf[512];
	struct pmetric_set s = {0};
	size_t n = pmetric_put(buf, sizeof(buf), PMETRIC_GAUGE, "queue_depth", 11, 5);
	n += pmetric_put(buf + n, sizeof(buf) - n, PMETRIC_COUNTER, "items_total", 11, 7);
	cr_assert_eq(pmetric_set_apply(&s, buf, n), 0);
	cr_expect_eq(s.n, 2);
	size_t bad = pmetric_put(buf + n, sizeof(buf) - n, PMETRIC_GAUGE, "Bad-Name", 8, 1);
	cr_expect_eq(pmetric_set_apply(&s, buf, n + bad), -1);
	cr_expect_eq(pmetric_set_apply(&s, buf, n - 1), -1, "a record cut short");
	size_t neg = pmetric_put(buf, sizeof(buf), PMETRIC_COUNTER, "items_total", 11, -1);
	cr_expect_eq(pmetric_set_apply(&s, buf, neg), -1);
	cr_expect_eq(s.n, 2);
	/* A payload whose new names do not fit is refused whole: its first, valid record is not taken either. */
	struct pmetric_set full = {0};
	for (int i = 0; i < PMETRIC_MAX; i++) {
		char name[32];
		int len = snprintf(name, sizeof(name), "g%d", i);
		size_t k = pmetric_put(buf, sizeof(buf), PMETRIC_GAUGE, name, (size_t)len, i);
		cr_assert_eq(pmetric_set_apply(&full, buf, k), 0);
	}
	size_t k = pmetric_put(buf, sizeof(buf), PMETRIC_GAUGE, "g0", 2, 100);
	k += pmetric_put(buf + k, sizeof(buf) - k, PMETRIC_GAUGE, "one_too_many", 12, 1);
	cr_expect_eq(pmetric_set_apply(&full, buf, k), -1);
	cr_expect_eq(pmetric_value(&full.v[0]), 0, "a refused payload was taken in part");
	pmetric_set_free(&full);
	/* A new process: the gauge goes, the count carries on from 7. */
	pmetric_set_new_process(&s);
	cr_expect_eq(s.n, 1);
	n = pmetric_put(buf, sizeof(buf), PMETRIC_COUNTER, "items_total", 11, 3);
	cr_assert_eq(pmetric_set_apply(&s, buf, n), 0);
	cr_expect_eq(pmetric_value(&s.v[0]), 10);
	pmetric_set_free(&s);
}
