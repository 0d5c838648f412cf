/*
 * The greeter's tests: each runs the plugin exactly as the ward host would
 * (its own process, the same runtime) and checks what an operator would see.
 */
#include <criterion/criterion.h>
#include <ward_harness.h>

static ward_harness *run(const char *count)
{
	ward_harness *h = ward_harness_new(PLUGIN_PATH);
	ward_harness_set(h, "count", count);
	ward_harness_set(h, "interval", "10ms");
	ward_harness_set(h, "greeting", "hi there");
	cr_assert_eq(ward_harness_run(h), 0, "the plugin misbehaved: %s %s", ward_harness_reason(h),
		     ward_harness_message(h));
	return h;
}

Test(greeter, greets_count_times_then_finishes)
{
	ward_harness *h = run("2");
	cr_expect_str_eq(ward_harness_reason(h), "done");
	cr_expect_eq(ward_harness_cycle_count(h), 3);
	cr_expect_eq(ward_harness_cycle_result(h, 0), WARD_IDLE);
	cr_expect_eq(ward_harness_cycle_result(h, 2), WARD_DONE);
	cr_expect(ward_harness_log_contains(h, "hi there from greeter:0"));
	cr_expect_eq(ward_harness_metric(h, "greetings_total"), 2);
	cr_expect(ward_harness_shutdown_ran(h));
	ward_harness_free(h);
}

Test(greeter, an_unknown_key_is_refused_before_the_plugin_runs)
{
	ward_harness *h = ward_harness_new(PLUGIN_PATH);
	ward_harness_set(h, "greetting", "typo");
	cr_expect_eq(ward_harness_run(h), 1);
	cr_expect_eq(ward_harness_cycle_count(h), 0);
	ward_harness_free(h);
}

Test(greeter, runs_in_process_too)
{
	ward_harness *h = ward_harness_new(PLUGIN_PATH);
	ward_harness_set(h, "count", "1");
	ward_harness_set(h, "interval", "1ms");
	ward_harness_in_process(h, 1);
	cr_expect_eq(ward_harness_run(h), 0);
	cr_expect(ward_harness_log_contains(h, "hello from"));
	cr_expect_eq(ward_harness_metric(h, "greetings_total"), 1);
	ward_harness_free(h);
}
