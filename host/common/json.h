/*
 * json.h - the little JSON ward writes (`--json` outputs, log_format =
 * json): one escaper, so every output quotes strings the same way.
 */
#ifndef WARD_JSON_H
#define WARD_JSON_H

#include <stddef.h>
#include <stdio.h>

/* The most bytes json_escape writes for len bytes of text. */
#define JSON_ESCAPED_MAX(len) ((len) * 6)

/* Writes text (len bytes, NULs included) escaped for the inside of a JSON
 * string into out (room for JSON_ESCAPED_MAX(len)), without quotes; returns
 * the bytes written. Quotes, backslashes and control characters are
 * escaped, valid UTF-8 is kept as it is, and a byte that is not part of
 * valid UTF-8 becomes \ufffd: the result is always valid JSON. */
size_t json_escape(char *out, const char *text, size_t len);
/* s as a JSON string literal, or null when s is NULL. */
void json_string(FILE *f, const char *s);

#endif
