/*
 * util.h - small helpers shared by every part of ward: clocks, allocation
 * that cannot fail silently, and growable arrays. Nothing here knows about
 * workers or plugins.
 */
#ifndef WARD_UTIL_H
#define WARD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define NS_PER_MS 1000000LL
#define NS_PER_SEC 1000000000LL
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Monotonic time in nanoseconds: for deadlines and durations. */
int64_t mono_ns(void);
/* Wall-clock time in milliseconds since the epoch: for what is recorded and shown. */
int64_t wall_ms(void);
/* "2026-11-23T15:45:28.123Z" into buf (at least 32 bytes). */
void format_iso_ms(int64_t ms, char *buf, size_t size);

/* Allocation failure in ward is not recoverable in a useful way: these abort
 * with a message instead of returning NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable array of owned strings. */
struct strv {
	char **v;
	size_t n, cap;
};
void strv_push(struct strv *sv, char *owned);
void strv_free(struct strv *sv);

/* Write all of buf, retrying on EINTR and short writes. 0 or -1 (errno set). */
int write_all(int fd, const void *buf, size_t len);

/* Reads fd until end of file or the CLOCK_MONOTONIC deadline (ns). *out
 * gets what arrived, NUL-terminated (owned by the caller), *len its size.
 * Returns 1 at end of file, 0 when the deadline came first. */
int read_until_eof(int fd, int64_t deadline_ns, char **out, size_t *len);

/* mkdir -p with the given mode for created components. 0 or -1 (errno set). */
int mkdir_p(const char *path, unsigned mode);

/* The length of the valid UTF-8 character at s (at most len bytes: it
 * also stops at a NUL), its code point in *cp; 0 for a byte that does not
 * start one (RFC 3629: overlong forms, surrogates and > U+10FFFF included). */
size_t utf8_char(const unsigned char *s, size_t len, uint32_t *cp);

/* A copy of s (owned by the caller) that shows what a terminal would hide:
 * control characters, invisible characters such as a byte order mark, and
 * bytes that are not UTF-8 become \xNN, one per byte. For text read from
 * files or clients that ends up in a message. */
char *escape_invisible(const char *s);

struct msghdr;
/* The pid in a received message's SCM_CREDENTIALS (its socket has
 * SO_PASSCRED on), or 0 when it carries none. */
pid_t msg_sender_pid(struct msghdr *m);

#endif
