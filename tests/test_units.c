/*
 * test_units.c - the value syntax every configuration file and plugin shares:
 * durations, sizes, booleans and whole numbers. What is accepted is parsed
 * exactly; everything else is refused rather than guessed at.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "common/units.h"

/* Parses s as a duration, asserting success; the sentinel shows "not written". */
static uint64_t duration(const char *s)
{
	uint64_t ms = 0xdeadbeef;
	cr_assert_eq(parse_duration_ms(s, &ms), 0, "\"%s\" should be a valid duration", s);
	return ms;
}

static void refuse_duration(const char *s)
{
	uint64_t ms = 0xdeadbeef;
	cr_expect_eq(parse_duration_ms(s, &ms), -1, "\"%s\" should be refused as a duration", s);
}

static uint64_t size(const char *s)
{
	uint64_t bytes = 0xdeadbeef;
	cr_assert_eq(parse_size(s, &bytes), 0, "\"%s\" should be a valid size", s);
	return bytes;
}

static void refuse_size(const char *s)
{
	uint64_t bytes = 0xdeadbeef;
	cr_expect_eq(parse_size(s, &bytes), -1, "\"%s\" should be refused as a size", s);
}

static int boolean(const char *s)
{
	int v = 42;
	cr_assert_eq(parse_bool(s, &v), 0, "\"%s\" should be a valid boolean", s);
	return v;
}

static long number(const char *s)
{
	long v = 4242;
	cr_assert_eq(parse_long(s, &v), 0, "\"%s\" should be a valid number", s);
	return v;
}

static void refuse_number(const char *s)
{
	long v = 4242;
	cr_expect_eq(parse_long(s, &v), -1, "\"%s\" should be refused as a number", s);
	cr_expect_eq(v, 4242, "a refused number must leave the output alone (\"%s\")", s);
}

/* ---- durations ---- */

Test(units, milliseconds_are_taken_as_they_are)
{
	cr_expect_eq(duration("250ms"), 250);
	cr_expect_eq(duration("0ms"), 0);
	cr_expect_eq(duration("1ms"), 1);
}

Test(units, seconds_minutes_hours_and_days_are_converted_to_milliseconds)
{
	cr_expect_eq(duration("5s"), 5000);
	cr_expect_eq(duration("2m"), 120000);
	cr_expect_eq(duration("1h"), 3600000);
	cr_expect_eq(duration("1d"), 86400000);
	cr_expect_eq(duration("90m"), 5400000);
}

Test(units, a_bare_number_is_seconds)
{
	cr_expect_eq(duration("3"), 3000);
	cr_expect_eq(duration("0"), 0);
	cr_expect_eq(duration("60"), 60000);
}

Test(units, an_empty_duration_is_refused)
{
	refuse_duration("");
}

Test(units, an_unknown_duration_unit_is_refused)
{
	refuse_duration("5x");
	refuse_duration("5sec");
	refuse_duration("5 s");
	refuse_duration("ms");
	refuse_duration("s");
	refuse_duration("5s ");
	refuse_duration(" 5s");
}

Test(units, a_negative_duration_is_refused)
{
	refuse_duration("-1");
	refuse_duration("-5s");
	refuse_duration("+5s");
}

Test(units, a_fractional_duration_is_refused)
{
	refuse_duration("1.5s");
	refuse_duration("0.5");
}

Test(units, a_duration_that_does_not_fit_in_64_bits_is_refused)
{
	/* The number itself does not fit... */
	refuse_duration("18446744073709551616ms");
	refuse_duration("99999999999999999999999");
	/* ...or the number fits but not once converted to milliseconds. */
	refuse_duration("18446744073709551615s");
	refuse_duration("5124095576031h");
	/* The largest value that still fits is fine. */
	cr_expect_eq(duration("5124095576030h"), 5124095576030ULL * 3600000ULL);
	cr_expect_eq(duration("18446744073709551615ms"), UINT64_MAX);
}

/* ---- sizes ---- */

Test(units, sizes_use_powers_of_1024)
{
	cr_expect_eq(size("512K"), 512ULL * 1024);
	cr_expect_eq(size("10M"), 10ULL * 1024 * 1024);
	cr_expect_eq(size("1G"), 1024ULL * 1024 * 1024);
}

Test(units, a_bare_size_is_bytes)
{
	cr_expect_eq(size("100"), 100);
	cr_expect_eq(size("0"), 0);
}

Test(units, a_size_may_end_with_a_B)
{
	cr_expect_eq(size("1MB"), 1024ULL * 1024);
	cr_expect_eq(size("2KB"), 2048);
	cr_expect_eq(size("100B"), 100);
}

Test(units, an_unknown_size_unit_is_refused)
{
	refuse_size("10Q");
	refuse_size("10KK");
	refuse_size("10MBB");
	refuse_size("K");
}

Test(units, an_empty_negative_or_fractional_size_is_refused)
{
	refuse_size("");
	refuse_size("-1");
	refuse_size("-1K");
	refuse_size("1.5M");
}

Test(units, a_size_that_does_not_fit_in_64_bits_is_refused)
{
	refuse_size("18446744073709551616");
	refuse_size("17179869184G"); /* 2^34 * 2^30 = 2^64 */
	cr_expect_eq(size("17179869183G"), 17179869183ULL << 30);
}

/* ---- booleans ---- */

Test(units, yes_true_on_and_1_are_true)
{
	cr_expect_eq(boolean("yes"), 1);
	cr_expect_eq(boolean("true"), 1);
	cr_expect_eq(boolean("on"), 1);
	cr_expect_eq(boolean("1"), 1);
}

Test(units, no_false_off_and_0_are_false)
{
	cr_expect_eq(boolean("no"), 0);
	cr_expect_eq(boolean("false"), 0);
	cr_expect_eq(boolean("off"), 0);
	cr_expect_eq(boolean("0"), 0);
}

Test(units, booleans_ignore_case)
{
	cr_expect_eq(boolean("YES"), 1);
	cr_expect_eq(boolean("True"), 1);
	cr_expect_eq(boolean("oN"), 1);
	cr_expect_eq(boolean("NO"), 0);
	cr_expect_eq(boolean("False"), 0);
	cr_expect_eq(boolean("OFF"), 0);
}

Test(units, anything_else_is_not_a_boolean)
{
	static const char *bad[] = {"maybe", "", "y", "n", "2", "yess", "enabled", " yes", "no "};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int v = 42;
		cr_expect_eq(parse_bool(bad[i], &v), -1, "\"%s\" should be refused as a boolean", bad[i]);
		cr_expect_eq(v, 42, "a refused boolean must leave the output alone (\"%s\")", bad[i]);
	}
}

/* ---- whole numbers ---- */

Test(units, whole_numbers_may_be_signed)
{
	cr_expect_eq(number("0"), 0);
	cr_expect_eq(number("42"), 42);
	cr_expect_eq(number("-17"), -17);
	cr_expect_eq(number("+5"), 5);
}

Test(units, the_extremes_of_long_are_whole_numbers)
{
	cr_expect_eq(number("9223372036854775807"), 9223372036854775807L);
	cr_expect_eq(number("-9223372036854775808"), -9223372036854775807L - 1);
}

Test(units, a_number_outside_long_is_refused)
{
	refuse_number("9223372036854775808");
	refuse_number("-9223372036854775809");
}

Test(units, a_number_with_anything_around_it_is_refused)
{
	refuse_number("");
	refuse_number("-");
	refuse_number("abc");
	refuse_number("12abc");
	refuse_number("1.5");
	refuse_number(" 5");
	refuse_number("5 ");
	refuse_number("5s");
}

/* ---- formatting for humans ---- */

Test(units, durations_are_formatted_for_humans)
{
	char buf[32];
	format_duration_ms(250, buf, sizeof(buf));
	cr_expect_str_eq(buf, "250ms");
	format_duration_ms(1500, buf, sizeof(buf));
	cr_expect_str_eq(buf, "1.5s");
	format_duration_ms(192000, buf, sizeof(buf));
	cr_expect_str_eq(buf, "3m12s");
	format_duration_ms(2 * 3600000 + 5 * 60000, buf, sizeof(buf));
	cr_expect_str_eq(buf, "2h05m");
}
