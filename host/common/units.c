/*
 * units.c - parsers for the value syntax of ward's configuration, shared by
 * the host's config layer and the plugin runtime's typed ward_conf_* reads.
 * Pure: runs in any process (host, CLI, worker).
 */
#include "common/units.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parses a non-negative decimal number and returns where it stopped. */
static const char *parse_number(const char *s, uint64_t *value)
{
	if (!isdigit((unsigned char)*s))
		return NULL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return NULL;
	*value = v;
	return end;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

int parse_duration_ms(const char *s, uint64_t *ms)
{
	static const struct { const char *suffix; uint64_t ms; } units[] = {
		{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000},
	};
	uint64_t n;
	const char *rest = parse_number(s, &n);
	if (!rest)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(rest, units[i].suffix) == 0)
			return mul_overflows(n, units[i].ms, ms) ? -1 : 0;
	}
	return -1;
}

int parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n;
	const char *rest = parse_number(s, &n);
	if (!rest)
		return -1;
	uint64_t mult = 1;
	switch (toupper((unsigned char)*rest)) {
	case '\0': break;
	case 'K': mult = 1ULL << 10; rest++; break;
	case 'M': mult = 1ULL << 20; rest++; break;
	case 'G': mult = 1ULL << 30; rest++; break;
	case 'T': mult = 1ULL << 40; rest++; break;
	case 'B': break;
	default: return -1;
	}
	if (toupper((unsigned char)*rest) == 'B')
		rest++;
	if (*rest != '\0')
		return -1;
	return mul_overflows(n, mult, bytes) ? -1 : 0;
}

int parse_bool(const char *s, int *value)
{
	static const char *yes[] = {"yes", "true", "on", "1"};
	static const char *no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*value = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*value = 0;
			return 0;
		}
	}
	return -1;
}

int parse_long(const char *s, long *value)
{
	if (*s == '\0')
		return -1;
	errno = 0;
	char *end;
	long v = strtol(s, &end, 10);
	if (errno == ERANGE || *end != '\0' || isspace((unsigned char)*s))
		return -1;
	*value = v;
	return 0;
}

void format_duration_ms(uint64_t ms, char *buf, unsigned size)
{
	if (ms < 1000)
		snprintf(buf, size, "%llums", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(buf, size, "%.1fs", ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, size, "%llum%02llus", (unsigned long long)(ms / 60000),
			 (unsigned long long)(ms / 1000 % 60));
	else if (ms < 86400000)
		snprintf(buf, size, "%lluh%02llum", (unsigned long long)(ms / 3600000),
			 (unsigned long long)(ms / 60000 % 60));
	else
		snprintf(buf, size, "%llud%02lluh", (unsigned long long)(ms / 86400000),
			 (unsigned long long)(ms / 3600000 % 24));
}
