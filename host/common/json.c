/*
 * json.c - JSON string escaping for ward's machine-readable output. Used by
 * the CLI (status, history, test); no state, any process may call it.
 */
#include "common/json.h"
#include "common/util.h"

#include <stdint.h>

/* JSON is UTF-8 (RFC 8259): a character is written as it is, a byte that
 * is not part of one (a worker's log line may hold anything) becomes
 * U+FFFD, so that a parser never rejects the whole document. Bytes used. */
static size_t utf8_out(FILE *f, const unsigned char *p)
{
	uint32_t cp;
	size_t n = utf8_char(p, &cp);
	if (n == 0) {
		fputs("\\ufffd", f);
		return 1;
	}
	fwrite(p, 1, n, f);
	return n;
}

void json_string(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else if (*p < 0x80)
				fputc(*p, f);
			else
				p += utf8_out(f, p) - 1;
		}
	}
	fputc('"', f);
}
