/*
 * units.h - the value syntax shared by configuration files and the plugin
 * runtime: durations, sizes, booleans and integers. One parser for each, so
 * `ward check` and ward_conf_ms() can never disagree about what "5s" means.
 */
#ifndef WARD_UNITS_H
#define WARD_UNITS_H

#include <stdint.h>

/* "250ms", "5s", "2m", "1h", "1d"; a bare number is seconds. 0 or -1. */
int parse_duration_ms(const char *s, uint64_t *ms);
/* "512", "512K", "10M", "1G" (powers of 1024; an optional trailing B). 0 or -1. */
int parse_size(const char *s, uint64_t *bytes);
/* yes/no, true/false, on/off, 1/0 (any case). 0 or -1. */
int parse_bool(const char *s, int *value);
/* A whole decimal number with optional sign. 0 or -1. */
int parse_long(const char *s, long *value);
/* "1500ms" / "2s" / "3m12s" style, for humans; writes into buf. */
void format_duration_ms(uint64_t ms, char *buf, unsigned size);

#endif
