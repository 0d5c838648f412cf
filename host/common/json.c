/*
 * json.c - JSON string escaping for ward's machine-readable output: the
 * CLI's `--json` outputs and the host's log_format = json lines. No state,
 * any process may call it.
 */
#include "common/json.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Whether any of the 8 bytes in x needs more than copying: below 0x20,
 * '"', '\\' or 0x80 and up (checked as UTF-8). The has-a-zero-byte test of
 * "Bit Twiddling Hacks" (exact for whether one exists), on x and on x with
 * each byte XORed with the byte looked for. */
static uint64_t needs_care(uint64_t x)
{
	uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
	return ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x) | (x & HIGHS);
}

size_t json_escape(char *out, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)text;
	char *o = out;
	for (size_t i = 0; i < len;) {
		uint64_t eight;
		if (len - i >= 8 && (memcpy(&eight, s + i, 8), !(needs_care(eight) & HIGHS))) {
			memcpy(o, s + i, 8); /* plain ASCII: most of any log line */
			o += 8;
			i += 8;
			continue;
		}
		unsigned char c = s[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			*o++ = (char)c;
			i++;
			continue;
		}
		if (c >= 0x80) {
			uint32_t cp;
			size_t n = utf8_char(s + i, len - i, &cp);
			if (n) {
				for (size_t k = 0; k < n; k++)
					*o++ = (char)s[i + k];
			} else { /* not UTF-8: U+FFFD, so the line stays valid JSON */
				memcpy(o, "\\ufffd", 6);
				o += 6;
				n = 1;
			}
			i += n;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\n': *o++ = 'n'; break;
		case '\t': *o++ = 't'; break;
		case '\r': *o++ = 'r'; break;
		default:
			*o++ = 'u';
			*o++ = '0';
			*o++ = '0';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
		i++;
	}
	return (size_t)(o - out);
}

void json_string(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	size_t len = strlen(s);
	char small[1024];
	char *buf = JSON_ESCAPED_MAX(len) <= sizeof(small) ? small : xmalloc(JSON_ESCAPED_MAX(len));
	fputc('"', f);
	fwrite(buf, 1, json_escape(buf, s, len), f);
	fputc('"', f);
	if (buf != small)
		free(buf);
}
