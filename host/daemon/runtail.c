/*
 * runtail.c - a ring of the last RUN_TAIL_LINES lines of a run, at most
 * RUN_TAIL_LINE_MAX bytes each: bounded whatever the process writes. Each
 * slot's buffer is kept and reused as the ring turns, so a chatty process
 * costs a copy per line, not an allocation. The time is formatted only when
 * the lines are taken (a failed run), never per line.
 * Host daemon only, called from its loop (pipes.c, channel.c, worker.c).
 */
#define _GNU_SOURCE
#include "daemon/runtail.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUT_MARK " [...]"

struct tail_line {
	int64_t at_ms;
	char level[8];
	char *text; /* owned, NUL-terminated; reused */
	size_t cap;
};

struct run_tail {
	struct tail_line line[RUN_TAIL_LINES];
	int next; /* the slot the next line goes to */
	int n;    /* lines kept */
};

/* Where to cut a line longer than the limit: not inside a UTF-8 character. */
static size_t cut_length(const char *text, size_t len)
{
	if (len <= RUN_TAIL_LINE_MAX)
		return len;
	size_t n = RUN_TAIL_LINE_MAX;
	for (int back = 0; back < 3 && n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80; back++)
		n--;
	return n;
}

void run_tail_add(struct run_tail **t, int64_t at_ms, const char *level, const char *text, size_t len)
{
	if (!*t)
		*t = xcalloc(1, sizeof(**t));
	struct run_tail *r = *t;
	struct tail_line *l = &r->line[r->next];
	r->next = (r->next + 1) % RUN_TAIL_LINES;
	if (r->n < RUN_TAIL_LINES)
		r->n++;
	size_t keep = cut_length(text, len);
	size_t need = keep + (keep < len ? sizeof(CUT_MARK) - 1 : 0) + 1;
	if (l->cap < need) {
		l->text = xrealloc(l->text, need);
		l->cap = need;
	}
	memcpy(l->text, text, keep);
	/* The lines are stored joined by newlines, as SQLite text: a newline,
	 * a carriage return or a NUL inside one must not split or end it. */
	for (size_t i = 0; i < keep; i++)
		if (l->text[i] == '\n' || l->text[i] == '\r' || l->text[i] == '\0')
			l->text[i] = ' ';
	if (keep < len)
		memcpy(l->text + keep, CUT_MARK, sizeof(CUT_MARK) - 1);
	l->text[need - 1] = '\0';
	l->at_ms = at_ms;
	snprintf(l->level, sizeof(l->level), "%s", level);
}

char *run_tail_take(struct run_tail **t)
{
	char *out = run_tail_copy(*t);
	run_tail_free(t);
	return out;
}

char *run_tail_copy(const struct run_tail *r)
{
	if (!r || r->n == 0)
		return NULL;
	size_t size = 1;
	for (int i = 0; i < r->n; i++)
		size += strlen(r->line[i].text) + 48;
	char *out = xmalloc(size), *o = out;
	int first = (r->next - r->n + RUN_TAIL_LINES) % RUN_TAIL_LINES;
	for (int i = 0; i < r->n; i++) {
		const struct tail_line *l = &r->line[(first + i) % RUN_TAIL_LINES];
		char stamp[32];
		format_iso_ms(l->at_ms, stamp, sizeof(stamp));
		o += snprintf(o, size - (size_t)(o - out), "%s%s %s %s", i ? "\n" : "", stamp, l->level, l->text);
	}
	return out;
}

void run_tail_free(struct run_tail **t)
{
	if (!*t)
		return;
	for (int i = 0; i < RUN_TAIL_LINES; i++)
		free((*t)->line[i].text);
	free(*t);
	*t = NULL;
}
