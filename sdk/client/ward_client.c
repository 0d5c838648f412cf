/*
 * ward_client.c - libward-client (<ward_client.h>): the producer's side of
 * the job protocol (docs/jobs.md "The protocol") over one blocking stream
 * connection to <state_dir>/ward.sock. Runs in the producer's process, not
 * in ward's; links nothing but libc, so it shares no code with host/ (the
 * host's side is host/daemon/jobsession.c).
 */
#define _GNU_SOURCE
#include "ward_client.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WARD_API __attribute__((visibility("default")))
#define NAME_MAX_LEN 255
#define LINE_MAX_LEN 65536 /* a reply line; the host's messages are far shorter */
#define DELAY_MAX_MS ((uint64_t)INT32_MAX * 1000) /* the most the host accepts */
#define ERR_LEN 1200

struct ward_client {
	int fd;
	bool broken;      /* the stream can no longer be trusted: every call fails */
	char err[ERR_LEN];
	char *in;         /* received, not yet consumed */
	size_t in_start, in_len, in_cap;
};

static __thread char open_err[ERR_LEN] = "";

static void set_err(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, ERR_LEN, fmt, ap);
	va_end(ap);
}

/* ---- where the socket is ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* `[ward] state_dir` of one file into *value (replacing it), as inih reads
 * it: sections, `key = value`, ';' and '#' comment lines, " ;" inline. */
static int read_state_dir(const char *path, char **value)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[4096];
	bool in_ward = false;
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line);
		if (*s == ';' || *s == '#' || !*s)
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			in_ward = end && (size_t)(end - s - 1) == 4 && strncmp(s + 1, "ward", 4) == 0;
			continue;
		}
		char *eq = strchr(s, '=');
		if (!in_ward || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(s), "state_dir") != 0)
			continue;
		char *v = eq + 1;
		for (char *c = v; *c; c++)
			if (*c == ';' && c > v && (c[-1] == ' ' || c[-1] == '\t')) {
				*c = '\0';
				break;
			}
		v = trim(v);
		char *copy = strdup(v);
		if (!copy) {
			fclose(f);
			return -1;
		}
		free(*value);
		*value = copy;
	}
	int failed = ferror(f);
	fclose(f);
	return failed ? -1 : 0;
}

static int is_ini(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".ini") == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* <state_dir>/ward.sock of configuration directory dir (malloc'd), or NULL
 * with open_err and errno set. */
static char *socket_of_config(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, is_ini, by_name);
	if (n < 0) {
		int e = errno;
		set_err(open_err, "cannot read the configuration directory %s: %s", dir, strerror(e));
		errno = e;
		return NULL;
	}
	char *state_dir = NULL, *sock = NULL;
	int rc = 0, e = 0;
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (rc == 0 && snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
		    read_state_dir(path, &state_dir) < 0) {
			e = errno;
			set_err(open_err, "cannot read %s: %s", path, strerror(e));
			rc = -1;
		}
		free(names[i]);
	}
	free(names);
	if (rc == 0) {
		const char *sd = state_dir && *state_dir ? state_dir : "state";
		int n = sd[0] == '/' ? asprintf(&sock, "%s/ward.sock", sd) : asprintf(&sock, "%s/%s/ward.sock", dir, sd);
		if (n < 0) {
			e = errno;
			sock = NULL;
			set_err(open_err, "out of memory");
		}
	}
	free(state_dir);
	if (!sock)
		errno = e ? e : ENOMEM;
	return sock;
}

/* ---- the stream ---- */

static int send_all(ward_client *c, const void *a, size_t alen, const void *b, size_t blen)
{
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
	while (iov[0].iov_len + iov[1].iov_len) {
		ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			set_err(c->err, "lost the connection to the host (send: %s)", strerror(e));
			c->broken = true;
			errno = e;
			return -1;
		}
		for (size_t k = 0; k < 2 && n > 0; k++) {
			size_t take = (size_t)n < iov[k].iov_len ? (size_t)n : iov[k].iov_len;
			iov[k].iov_base = (char *)iov[k].iov_base + take;
			iov[k].iov_len -= take;
			n -= (ssize_t)take;
		}
		if (iov[0].iov_len == 0) { /* the first part is out: go on with the second */
			msg.msg_iov = &iov[1];
			msg.msg_iovlen = 1;
		}
	}
	return 0;
}

/* Receives more bytes into c->in; -1 on error or end of stream (reported). */
static int fill(ward_client *c)
{
	if (c->in_start && c->in_start == c->in_len)
		c->in_start = c->in_len = 0;
	if (c->in_len == c->in_cap) {
		if (c->in_start) {
			memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
			c->in_len -= c->in_start;
			c->in_start = 0;
		} else {
			size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
			char *in = realloc(c->in, cap);
			if (!in) {
				set_err(c->err, "out of memory");
				return -1;
			}
			c->in = in;
			c->in_cap = cap;
		}
	}
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			return 0;
		}
		if (n < 0 && errno == EINTR)
			continue;
		int e = n == 0 ? EPIPE : errno;
		if (n == 0)
			set_err(c->err, "the host closed the connection (it stopped, or refused a request)");
		else
			set_err(c->err, "lost the connection to the host (recv: %s)", strerror(e));
		c->broken = true;
		errno = e;
		return -1;
	}
}

/* The next reply line, without its newline, in c->in (valid until the next
 * read); NULL on error. */
static char *read_line(ward_client *c)
{
	for (;;) {
		char *start = c->in + c->in_start;
		char *nl = c->in_len > c->in_start ? memchr(start, '\n', c->in_len - c->in_start) : NULL;
		if (nl) {
			*nl = '\0';
			c->in_start = (size_t)(nl + 1 - c->in);
			return start;
		}
		if (c->in_len - c->in_start > LINE_MAX_LEN) {
			set_err(c->err, "the host's reply is not a line of the job protocol");
			c->broken = true;
			errno = EPROTO;
			return NULL;
		}
		if (fill(c) < 0)
			return NULL;
	}
}

/* Exactly len bytes of the stream into out. */
static int read_bytes(ward_client *c, char *out, size_t len)
{
	size_t have = c->in_len - c->in_start, take = have < len ? have : len;
	memcpy(out, c->in + c->in_start, take);
	c->in_start += take;
	for (size_t got = take; got < len;) {
		ssize_t n = recv(c->fd, out + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n == 0 ? EPIPE : errno;
			set_err(c->err, "lost the connection to the host in the middle of a result (%s)",
				n == 0 ? "closed" : strerror(e));
			c->broken = true;
			errno = e;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/* ---- checks ---- */

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > NAME_MAX_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

static bool usable(ward_client *c)
{
	if (!c) {
		errno = EINVAL;
		return false;
	}
	if (c->broken) {
		if (!strstr(c->err, "(no more requests on it)"))
			strncat(c->err, " (no more requests on it)", ERR_LEN - strlen(c->err) - 1);
		errno = EPIPE;
		return false;
	}
	c->err[0] = '\0';
	return true;
}

/* "123" -> 123 (> 0), or -1. */
static int64_t parse_id(const char *s)
{
	if (!s || *s < '1' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	return errno || (*end && *end != ' ') ? -1 : (int64_t)v;
}

static void protocol_error(ward_client *c, const char *line)
{
	set_err(c->err, "unexpected reply from the host: '%.200s'", line);
	c->broken = true;
	errno = EPROTO;
}

/* ---- the API ---- */

WARD_API ward_client *ward_client_open(const char *where)
{
	open_err[0] = '\0';
	if (!where || !*where) {
		set_err(open_err, "ward_client_open: say where the host is (a configuration directory or its ward.sock)");
		errno = EINVAL;
		return NULL;
	}
	struct stat st;
	char *path = stat(where, &st) == 0 && S_ISDIR(st.st_mode) ? socket_of_config(where) : strdup(where);
	if (!path) {
		if (!open_err[0])
			set_err(open_err, "out of memory");
		return NULL;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		set_err(open_err, "the socket path %s is longer than a Unix socket allows (%zu bytes)", path,
			sizeof(sa.sun_path) - 1);
		free(path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(sa.sun_path, path);
	ward_client *c = calloc(1, sizeof(*c));
	int e;
	if (!c) {
		e = errno;
		set_err(open_err, "out of memory");
		goto fail;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		e = errno;
		set_err(open_err, "cannot make a socket: %s", strerror(e));
		goto fail;
	}
	int r;
	while ((r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa))) < 0 && errno == EINTR)
		; /* a Unix stream connect interrupted by a signal may simply be tried again */
	if (r < 0) {
		e = errno;
		if (e == ENOENT || e == ECONNREFUSED)
			set_err(open_err, "no host is running at %s (connect: %s)", path, strerror(e));
		else
			set_err(open_err, "cannot connect to the host at %s: %s", path, strerror(e));
		goto fail;
	}
	static const char hello[] = "jobs 1\n";
	if (send_all(c, hello, strlen(hello), NULL, 0) < 0) {
		e = errno;
		set_err(open_err, "%s at %s", c->err, path);
		goto fail;
	}
	char *line = read_line(c);
	if (!line) {
		e = errno;
		set_err(open_err, "%s at %s", c->err, path);
		goto fail;
	}
	if (strcmp(line, "ok jobs 1") != 0) {
		bool refused = strncmp(line, "error ", 6) == 0;
		e = refused && strstr(line, "not allowed") ? EACCES : refused ? ECONNREFUSED : EPROTO;
		if (refused)
			set_err(open_err, "the host at %s refused: %s", path, line + 6);
		else
			set_err(open_err, "%s does not speak ward's job protocol (it answered '%.100s')", path, line);
		goto fail;
	}
	free(path);
	return c;
fail:
	if (c) {
		if (c->fd >= 0)
			close(c->fd);
		free(c->in);
		free(c);
	}
	free(path);
	errno = e;
	return NULL;
}

WARD_API int64_t ward_client_enqueue(ward_client *c, const char *queue, const void *payload, size_t len,
				     const char *key, uint64_t delay_ms)
{
	if (!usable(c))
		return -1;
	if (!queue || !valid_name(queue)) {
		set_err(c->err, "bad queue name '%.300s': 1 to 255 printable ASCII characters without spaces", queue ? queue : "(null)");
		errno = EINVAL;
		return -1;
	}
	if (key && (!valid_name(key) || strcmp(key, "-") == 0)) {
		set_err(c->err, "bad key '%.300s': 1 to 255 printable ASCII characters without spaces, not '-'", key);
		errno = EINVAL;
		return -1;
	}
	if (len > WARD_CLIENT_DATA_MAX) {
		set_err(c->err, "payload of %zu bytes is over the 1 MiB limit (%d bytes)", len, WARD_CLIENT_DATA_MAX);
		errno = EMSGSIZE;
		return -1;
	}
	if (len && !payload) {
		set_err(c->err, "payload is NULL but its length is %zu", len);
		errno = EINVAL;
		return -1;
	}
	if (delay_ms > DELAY_MAX_MS) {
		set_err(c->err, "delay of %" PRIu64 " ms is over the most the host takes (%" PRIu64 " ms, about 68 years)",
			delay_ms, DELAY_MAX_MS);
		errno = EINVAL;
		return -1;
	}
	char head[600];
	int n = snprintf(head, sizeof(head), "enqueue %s %zu %" PRIu64 " %s\n", queue, len, delay_ms, key ? key : "-");
	if (send_all(c, head, (size_t)n, payload, len) < 0)
		return -1;
	char *line = read_line(c);
	if (!line)
		return -1;
	if (strncmp(line, "error ", 6) == 0) {
		set_err(c->err, "%s", line + 6);
		errno = EINVAL;
		return -1;
	}
	int64_t id = strncmp(line, "ok ", 3) == 0 ? parse_id(line + 3) : -1;
	const char *rest = id > 0 ? strchr(line + 3, ' ') : NULL;
	if (!rest || (strcmp(rest, " new") != 0 && strcmp(rest, " existing") != 0 && strncmp(rest, " new ", 5) != 0)) {
		protocol_error(c, line);
		return -1;
	}
	if (strncmp(rest, " new ", 5) == 0) /* stored, with the host's note on why it will not run soon */
		set_err(c->err, "%s", rest + 5);
	return id;
}

WARD_API int ward_client_wait(ward_client *c, int64_t id, uint64_t timeout_ms, void **result, size_t *len)
{
	if (!usable(c))
		return -1;
	if (id <= 0) {
		set_err(c->err, "no job %" PRId64 ": job ids are positive", id);
		errno = EINVAL;
		return -1;
	}
	if (!result || !len) {
		set_err(c->err, "ward_client_wait needs somewhere to put the result (result and len)");
		errno = EINVAL;
		return -1;
	}
	char head[80];
	int n = snprintf(head, sizeof(head), "wait %" PRId64 " %" PRIu64 "\n", id, timeout_ms);
	if (send_all(c, head, (size_t)n, NULL, 0) < 0)
		return -1;
	char *line = read_line(c);
	if (!line)
		return -1;
	char *word = strchr(line, ' ');
	if (!word) {
		protocol_error(c, line);
		return -1;
	}
	*word++ = '\0';
	if (strcmp(line, "error") == 0) {
		set_err(c->err, "%s", word);
		errno = strstr(word, "no job") || strstr(word, "no such") ? ENOENT : EIO;
		return -1;
	}
	if (parse_id(word) != id) {
		word[-1] = ' ';
		protocol_error(c, line);
		return -1;
	}
	char *rest = strchr(word, ' ');
	if (strcmp(line, "unfinished") == 0 && !rest) {
		set_err(c->err, "job %" PRId64 " is not finished yet", id);
		return 4;
	}
	if (strcmp(line, "failed") == 0 && rest) {
		char *state = rest + 1, *msg = strchr(state, ' ');
		if (msg)
			*msg++ = '\0';
		if (!msg || strcmp(msg, "-") == 0)
			set_err(c->err, "job %" PRId64 " is %s", id, state);
		else if (strcmp(state, "dead") == 0 || strcmp(state, "cancelled") == 0)
			set_err(c->err, "job %" PRId64 " is %s: %s", id, state, msg);
		else /* the queue's worker is failed or stopped: the message says why */
			set_err(c->err, "job %" PRId64 " waits for a worker that will not come (%s): %s", id, state, msg);
		return 1;
	}
	char *end = NULL;
	unsigned long long rlen = rest ? strtoull(rest + 1, &end, 10) : 0;
	if (strcmp(line, "done") != 0 || !rest || !end || *end || end == rest + 1 || rlen > WARD_CLIENT_DATA_MAX) {
		word[-1] = ' ';
		if (rest)
			*rest = ' ';
		protocol_error(c, line);
		return -1;
	}
	char *out = NULL;
	if (rlen) {
		out = malloc(rlen);
		if (!out) {
			set_err(c->err, "out of memory for a result of %llu bytes", rlen);
			c->broken = true; /* its bytes stay unread in the stream */
			errno = ENOMEM;
			return -1;
		}
		if (read_bytes(c, out, rlen) < 0) {
			free(out);
			return -1;
		}
	}
	*result = out;
	*len = rlen;
	return 0;
}

WARD_API const char *ward_client_error(ward_client *c)
{
	return c ? c->err : open_err;
}

WARD_API void ward_client_close(ward_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->in);
	free(c);
}
