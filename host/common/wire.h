/*
 * wire.h - a byte buffer written and read field by field, for messages
 * between processes of one ward binary (the child spec the host sends the
 * spawner: worker/childspec.c). Both ends are the same program on the same
 * machine, so numbers go in the machine's own byte order. Used in the host
 * (writes) and the spawner (reads).
 */
#ifndef WARD_WIRE_H
#define WARD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* A buffer of size bytes, at the next byte to write or read. A write that
 * does not fit, or a read past the end or of a malformed field, sets failed
 * and every later one does nothing: check failed once, at the end. */
struct wire {
	char *buf;
	size_t size, at;
	bool failed;
};

void wire_put_bytes(struct wire *w, const void *p, size_t n);
void wire_put_u64(struct wire *w, uint64_t v);
/* s may be NULL: read back as NULL. */
void wire_put_string(struct wire *w, const char *s);
/* n strings (none NULL), read back by wire_get_strings. */
void wire_put_strings(struct wire *w, const char *const *v, size_t n);
void wire_put_strv(struct wire *w, const struct strv *sv);

void wire_get_bytes(struct wire *w, void *p, size_t n);
uint64_t wire_get_u64(struct wire *w);
/* The string in the buffer itself (NUL-terminated there), or NULL. */
char *wire_get_string(struct wire *w);
/* Into sv: the array is allocated (free(sv->v)), its strings stay in the
 * buffer; every one of them is present (not NULL). */
void wire_get_strings(struct wire *w, struct strv *sv);

#endif
