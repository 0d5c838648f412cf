/*
 * json.h - the little JSON ward writes (`--json` outputs): one escaper, so
 * every command quotes strings the same way.
 */
#ifndef WARD_JSON_H
#define WARD_JSON_H

#include <stdio.h>

/* s as a JSON string literal, or null when s is NULL. */
void json_string(FILE *f, const char *s);

#endif
