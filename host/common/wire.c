/*
 * wire.c - field-by-field messages between processes of one ward binary
 * (see wire.h). A string is its length (UINT64_MAX: NULL), its bytes and a
 * NUL, so a reader can hand out pointers into the buffer: nothing is copied,
 * and wiping the buffer wipes every secret it carried.
 */
#include "common/wire.h"

#include <string.h>

#define ABSENT UINT64_MAX

void wire_put_bytes(struct wire *w, const void *p, size_t n)
{
	if (w->failed || n > w->size - w->at) {
		w->failed = true;
		return;
	}
	memcpy(w->buf + w->at, p, n);
	w->at += n;
}

void wire_put_u64(struct wire *w, uint64_t v)
{
	wire_put_bytes(w, &v, sizeof(v));
}

void wire_put_string(struct wire *w, const char *s)
{
	if (!s) {
		wire_put_u64(w, ABSENT);
		return;
	}
	size_t len = strlen(s);
	wire_put_u64(w, len);
	wire_put_bytes(w, s, len + 1);
}

void wire_put_strings(struct wire *w, const char *const *v, size_t n)
{
	wire_put_u64(w, n);
	for (size_t i = 0; i < n; i++)
		wire_put_string(w, v[i]);
}

void wire_put_strv(struct wire *w, const struct strv *sv)
{
	wire_put_u64(w, sv->n);
	for (size_t i = 0; i < sv->n; i++)
		wire_put_string(w, sv->v[i]);
}

void wire_get_bytes(struct wire *w, void *p, size_t n)
{
	if (w->failed || n > w->size - w->at) {
		w->failed = true;
		memset(p, 0, n);
		return;
	}
	memcpy(p, w->buf + w->at, n);
	w->at += n;
}

uint64_t wire_get_u64(struct wire *w)
{
	uint64_t v;
	wire_get_bytes(w, &v, sizeof(v));
	return v;
}

char *wire_get_string(struct wire *w)
{
	uint64_t len = wire_get_u64(w);
	if (w->failed || len == ABSENT)
		return NULL;
	if (len >= w->size - w->at || w->buf[w->at + len] != '\0' || memchr(w->buf + w->at, '\0', len)) {
		w->failed = true;
		return NULL;
	}
	char *s = w->buf + w->at;
	w->at += len + 1;
	return s;
}

void wire_get_strings(struct wire *w, struct strv *sv)
{
	*sv = (struct strv){0};
	uint64_t n = wire_get_u64(w);
	/* Each string takes 9 bytes at least: a count larger than what is left is a lie. */
	if (w->failed || n > (w->size - w->at) / (sizeof(uint64_t) + 1)) {
		w->failed = true;
		return;
	}
	sv->v = xcalloc((size_t)n + 1, sizeof(char *));
	sv->n = sv->cap = (size_t)n;
	for (size_t i = 0; i < sv->n && !w->failed; i++)
		if (!(sv->v[i] = wire_get_string(w)))
			w->failed = true;
}
