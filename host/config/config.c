/*
 * config.c - turns a configuration directory into a struct config.
 *
 * inih parses each *.ini file; every key=value becomes an entry remembering
 * its file and line. Entries are then sorted so that later files override
 * earlier ones key by key, and resolved through one table of ward's keys that
 * holds each key's type and default: parsing, defaults and messages all come
 * from that table. Problems are collected, never fatal, so `ward check`
 * reports every one of them. This file never touches plugin code. Runs in
 * the host daemon (boot, reload) and the CLI (`ward check`, `ward test`).
 */
#define _GNU_SOURCE
#include "config/config.h"
#include "common/address.h"
#include "common/units.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NAME_LEN 64
#define CONFIG_MAX_LINE 16384 /* characters in a line: values of 4096 and more fit */

/* One key = value line as read. Strings are owned; file points into cfg->files. */
struct entry {
	char *section, *key, *value;
	struct origin at;
	size_t seq; /* reading order, so the last one of equal keys wins */
};

struct entries {
	struct entry *v;
	size_t n, cap;
	struct entry *headers; /* every [section] line, key and value NULL, in reading order */
	size_t nheaders, hcap;
};

/* A contiguous run of sorted entries sharing one section. */
struct section_run {
	const struct entry *v;
	size_t n;
};

/* ---- diagnostics ---- */

static void add_error_v(struct config *cfg, struct origin at, const char *section,
			const char *key, const char *fmt, va_list ap)
{
	char *why;
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	char *where = at.line > 0 ? xasprintf("%s:%d", at.file, at.line) : xstrdup(at.file);
	char *raw;
	if (section && key)
		raw = xasprintf("%s: [%s] %s: %s", where, section, key, why ? why : "?");
	else if (section)
		raw = xasprintf("%s: [%s]: %s", where, section, why ? why : "?");
	else if (key)
		raw = xasprintf("%s: %s: %s", where, key, why ? why : "?");
	else
		raw = xasprintf("%s: %s", where, why ? why : "?");
	/* Names and values come from the file: a stray ESC or byte order mark
	 * must show as such, not act on the terminal or hide. */
	char *msg = escape_invisible(raw);
	free(raw);
	/* A bad [defaults] value reaches every worker: say it once. */
	bool seen = false;
	for (size_t i = 0; i < cfg->errors.n && !seen; i++)
		seen = strcmp(cfg->errors.v[i], msg) == 0;
	if (seen)
		free(msg);
	else
		strv_push(&cfg->errors, msg);
	free(where);
	free(why);
}

static void add_error(struct config *cfg, struct origin at, const char *section,
		      const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_error(struct config *cfg, struct origin at, const char *section,
		      const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_error_v(cfg, at, section, key, fmt, ap);
	va_end(ap);
}

void config_error(struct config *cfg, struct origin at, const char *section, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_error_v(cfg, at, section, key, fmt, ap);
	va_end(ap);
}

/* Levenshtein distance, for "did you mean" suggestions on short key names. */
size_t config_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return SIZE_MAX;
	size_t row[41];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* ---- reading files ---- */

struct reader {
	FILE *fp;
	struct config *cfg;
	struct entries *entries;
	const char *file;
	int line;
	char *buf;
	size_t bufsize;
};

/* Remembers a [section] line: a section may define a worker without any
 * key, and messages about a section should point at its header. */
static void note_header(struct entries *e, char *name, struct origin at)
{
	if (e->nheaders == e->hcap) {
		e->hcap = e->hcap ? e->hcap * 2 : 16;
		e->headers = xrealloc(e->headers, e->hcap * sizeof(*e->headers));
	}
	e->headers[e->nheaders++] = (struct entry){.section = name, .at = at};
}

/* Reports lines inih would reject, so every syntax error gets its own
 * message (inih itself only returns the first error's line number). */
static void check_line_syntax(struct reader *r, const char *s)
{
	struct origin at = {r->file, r->line};
	if (*s == '\0' || *s == ';' || *s == '#')
		return;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end) {
			add_error(r->cfg, at, NULL, NULL, "section header has no closing ']'");
			return;
		}
		note_header(r->entries, xstrndup(s + 1, (size_t)(end - s - 1)), at);
		/* inih ignores the rest of the line: "[a] b" would quietly be [a]. */
		const char *rest = end + 1 + strspn(end + 1, " \t");
		if (*rest && *rest != ';')
			add_error(r->cfg, at, NULL, NULL,
				  "text after ']' in a section header: \"%.40s\" (only a ; comment may follow it)", rest);
		return;
	}
	if (!strpbrk(s, "=:"))
		add_error(r->cfg, at, NULL, NULL,
			  "expected 'key = value' or '[section]', found \"%.40s\"", s);
}

/*
 * The ini_reader handed to inih: one line per call, so r->line is the line
 * the handler's entry came from. Leading white space is removed so an
 * indented "key = value" is never mistaken for a continuation of the line
 * above (inih's multi-line values are not part of ward's syntax).
 */
static char *read_line(char *str, int num, void *stream)
{
	struct reader *r = stream;
	ssize_t len = getline(&r->buf, &r->bufsize, r->fp);
	if (len < 0) {
		explicit_bzero(str, (size_t)num); /* inih's buffer held the last line: it may be a secret */
		return NULL;
	}
	r->line++;
	char *s = r->buf;
	if (r->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3; /* a UTF-8 byte order mark, as some editors write */
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	check_line_syntax(r, s);
	if (n + 2 > (size_t)num) {
		add_error(r->cfg, (struct origin){r->file, r->line}, NULL, NULL,
			  "line is longer than %d characters", num - 2);
		s[0] = '\0';
		n = 0;
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct reader *r = user;
	struct origin at = {r->file, r->line};
	if (*section == '\0') {
		add_error(r->cfg, at, NULL, key,
			  "key outside any section: put it under [ward], [defaults] or a [worker] section");
		return 1;
	}
	if (*key == '\0') {
		add_error(r->cfg, at, section, NULL, "empty key name");
		return 1;
	}
	struct entries *e = r->entries;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->v = xrealloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n] = (struct entry){xstrdup(section), xstrdup(key), xstrdup(value), at, e->n};
	e->n++;
	return 1;
}

static int is_ini_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".ini") == 0;
}

static void read_file(struct config *cfg, struct entries *entries, const char *path)
{
	strv_push(&cfg->files, xstrdup(path));
	struct reader r = {.cfg = cfg, .entries = entries, .file = cfg->files.v[cfg->files.n - 1]};
	r.fp = fopen(path, "re");
	if (!r.fp) {
		add_error(cfg, (struct origin){r.file, 0}, NULL, NULL, "unable to read: %s", strerror(errno));
		return;
	}
	/* stdio's own buffer would hold the file's text (its secrets) after
	 * fclose: read through one we wipe. */
	char *iobuf = xmalloc(BUFSIZ);
	setvbuf(r.fp, iobuf, _IOFBF, BUFSIZ);
#ifdef WARD_INIH_RUNTIME_LIMITS
	/* Debian's libinih makes its line buffer a run-time setting: raised
	 * (on the heap) so DSNs, tokens and long commands fit. */
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = ini_max_line = CONFIG_MAX_LINE + 2; /* + "\n" and NUL */
#endif
	ini_parse_stream(read_line, &r, on_entry, &r);
	if (ferror(r.fp))
		add_error(cfg, (struct origin){r.file, r.line}, NULL, NULL, "read error: %s",
			  strerror(errno));
	fclose(r.fp);
	explicit_bzero(iobuf, BUFSIZ);
	free(iobuf);
	if (r.buf)
		explicit_bzero(r.buf, r.bufsize);
	free(r.buf);
}

static void read_dir(struct config *cfg, struct entries *entries)
{
	struct dirent **names;
	int n = scandir(cfg->dir, &names, is_ini_file, alphasort);
	if (n < 0) {
		add_error(cfg, (struct origin){cfg->dir, 0}, NULL, NULL,
			  "unable to read the configuration directory: %s", strerror(errno));
		return;
	}
	if (n == 0)
		add_error(cfg, (struct origin){cfg->dir, 0}, NULL, NULL,
			  "no *.ini files: nothing to run (see docs/configuration.md)");
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", cfg->dir, names[i]->d_name);
		read_file(cfg, entries, path);
		free(path);
		free(names[i]);
	}
	free(names);
}

/* ---- sorted entries: later files override earlier ones key by key ---- */

static int entry_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c = strcmp(a->section, b->section);
	if (c == 0)
		c = strcmp(a->key, b->key);
	if (c == 0)
		c = a->seq < b->seq ? -1 : a->seq > b->seq;
	return c;
}

/* Values may be secrets (env.*, plugin keys): wiped before their memory is
 * reused, because every worker is a fork of the host's memory. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void free_entry(struct entry *e)
{
	free(e->section);
	free(e->key);
	free_secret(e->value);
}

/* Sorts by (section, key) and keeps only the last occurrence of each. */
static void keep_last_values(struct entries *e)
{
	if (e->n > 1) /* qsort must not see the NULL of an empty array */
		qsort(e->v, e->n, sizeof(*e->v), entry_cmp);
	size_t out = 0;
	for (size_t i = 0; i < e->n; i++) {
		bool overridden = i + 1 < e->n && strcmp(e->v[i].section, e->v[i + 1].section) == 0 &&
				  strcmp(e->v[i].key, e->v[i + 1].key) == 0;
		if (overridden)
			free_entry(&e->v[i]);
		else
			e->v[out++] = e->v[i];
	}
	e->n = out;
}

static struct section_run find_section(const struct entries *e, const char *section)
{
	size_t lo = 0, hi = e->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (strcmp(e->v[mid].section, section) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t end = lo;
	while (end < e->n && strcmp(e->v[end].section, section) == 0)
		end++;
	if (end == lo) /* also: no entries at all, and e->v is NULL */
		return (struct section_run){NULL, 0};
	return (struct section_run){e->v + lo, end - lo};
}

static const struct entry *find_key(struct section_run run, const char *key)
{
	for (size_t i = 0; i < run.n; i++)
		if (strcmp(run.v[i].key, key) == 0)
			return &run.v[i];
	return NULL;
}

/* ---- the key tables ---- */

enum key_kind {
	K_BOOL,     /* bool */
	K_INT,      /* int within [min, max] */
	K_LONG,     /* long within [min, max] */
	K_DURATION, /* uint64_t milliseconds */
	K_SIZE,     /* uint64_t bytes */
	K_RESTART,  /* enum restart_policy */
	K_MAX_RESTARTS, /* long, or -1 for "unlimited" */
	K_LIST,     /* struct strv, comma separated */
	K_STRING,   /* char * */
	K_PATH,     /* char *, made absolute against the configuration directory */
	K_LIMIT_COUNT, K_LIMIT_SIZE, K_LIMIT_SECONDS, /* struct limit_conf */
	K_ADDRESS,  /* char *, an ADDR:PORT to listen on (common/address.h) */
	K_LOG_OUTPUT, /* int: enum log_output, one of choices[K_LOG_OUTPUT] */
	K_LOG_FORMAT, /* int: enum log_format */
	K_SPECIAL,  /* handled by the caller (plugin, enabled) */
};

struct key_def {
	const char *name;
	enum key_kind kind;
	const char *dflt; /* NULL: unset unless configured */
	size_t offset;
	long min, max;
	const char *help; /* one line, for `ward check --keys` */
};

/* The values of each kind that is a choice of words, in the order of its
 * enum (config.h): the value's index is what the field holds. */
static const char *const choices[][4] = {
	[K_LOG_OUTPUT] = {"file", "stdout", "both"},
	[K_LOG_FORMAT] = {"text", "json"},
};

#define W(field) offsetof(struct worker_conf, field)
static const struct key_def worker_keys[] = {
	{"plugin", K_SPECIAL, NULL, 0, 0, 0, "plugin file stem (in plugin_dir) or path; unset: the section name"},
	{"enabled", K_SPECIAL, "yes", 0, 0, 0, "no: not a worker at all"},
	{"autostart", K_BOOL, "yes", W(autostart), 0, 0, "no: not started at boot"},
	{"instances", K_INT, "1", W(instances), 1, 1024, "processes running this worker, 1..1024"},
	{"interval", K_DURATION, "1s", W(interval_ms), 0, 0, "wait after a cycle returns WARD_IDLE"},
	{"restart", K_RESTART, "on-failure", W(restart), 0, 0, "always, on-failure or never"},
	{"restart_delay", K_DURATION, "100ms", W(restart_delay_ms), 0, 0, "first delay before a restart (it doubles)"},
	{"restart_delay_max", K_DURATION, "30s", W(restart_delay_max_ms), 0, 0, "cap of the doubling restart delay"},
	{"max_restarts", K_MAX_RESTARTS, "10", W(max_restarts), 0, 1000000, "short failed runs in a row that are restarted, or unlimited"},
	{"restart_window", K_DURATION, "60s", W(restart_window_ms), 0, 0, "a run this long resets the failure count and the delay"},
	{"init_timeout", K_DURATION, "30s", W(init_timeout_ms), 0, 0, "longest time from fork to the end of init; 0: no limit"},
	{"watchdog", K_DURATION, "60s", W(watchdog_ms), 0, 0, "longest time a cycle may go without progress; 0: off"},
	{"stop_timeout", K_DURATION, "10s", W(stop_timeout_ms), 0, 0, "time between SIGTERM and SIGKILL when stopping"},
	{"requires", K_LIST, NULL, W(requires), 0, 0, "workers that must be running before this one starts"},
	{"listen", K_LIST, NULL, W(listen), 0, 0, "sockets the host holds for the worker: unix:PATH or tcp:HOST:PORT"},
	{"user", K_STRING, NULL, W(user), 0, 0, "run as this user; unset: the host's"},
	{"group", K_STRING, NULL, W(group), 0, 0, "run with this group; unset: the user's primary group"},
	{"inherit_env", K_BOOL, "no", W(inherit_env), 0, 0, "yes: the worker gets the host's environment"},
	{"workdir", K_PATH, NULL, W(workdir), 0, 0, "working directory; unset: the worker's state directory"},
	{"nice", K_LONG, NULL, W(nice), -20, 19, "scheduling priority, -20..19; unset: unchanged"},
	{"limit.nofile", K_LIMIT_COUNT, NULL, W(limit_nofile), 0, 0, "RLIMIT_NOFILE: a number, or unlimited; unset: inherited"},
	{"limit.memory", K_LIMIT_SIZE, NULL, W(limit_memory), 0, 0, "RLIMIT_AS: a size, or unlimited; unset: inherited"},
	{"limit.cpu", K_LIMIT_SECONDS, NULL, W(limit_cpu), 0, 0, "RLIMIT_CPU: whole seconds as a duration, or unlimited; unset: inherited"},
	{"limit.core", K_LIMIT_SIZE, NULL, W(limit_core), 0, 0, "RLIMIT_CORE: a size, or unlimited; unset: inherited"},
	{"critical", K_BOOL, "no", W(critical), 0, 0, "yes: its failing stops the host (exit status 3)"},
	/* jobs (SPEC §8; daemon/jobs.c) */
	{"queue", K_STRING, NULL, W(queue), 0, 0, "the job queue it takes jobs from, when its plugin has .job; unset: the worker's name"},
	{"job_timeout", K_DURATION, "5m", W(job_timeout_ms), 0, 0, "longest a job may run; past it the process is killed (job-timeout); 0: no limit"},
	{"job_attempts", K_INT, "5", W(job_attempts), 1, 1000000, "attempts before a job is dead, 1..1000000"},
	{"job_retry_delay", K_DURATION, "1s", W(job_retry_delay_ms), 0, 0, "delay before a failed job's next attempt (it doubles)"},
	{"job_retry_delay_max", K_DURATION, "10m", W(job_retry_delay_max_ms), 0, 0, "cap of the doubling job retry delay"},
};
#undef W

#define H(field) offsetof(struct config, field)
static const struct key_def host_keys[] = {
	{"plugin_dir", K_PATH, "plugins", H(plugin_dir), 0, 0, "where plugins are looked up by stem, and what autoload scans"},
	{"state_dir", K_PATH, "state", H(state_dir), 0, 0, "holds ward.db, ward.lock and each worker's directory"},
	{"log_dir", K_PATH, NULL, H(log_dir), 0, 0, "holds NAME.log for each worker; unset: <state_dir>/logs"},
	{"autoload", K_BOOL, "yes", H(autoload), 0, 0, "yes: every *.so in plugin_dir is a worker named after its stem"},
	{"strict_permissions", K_BOOL, "yes", H(strict_permissions), 0, 0, "yes: refuse plugin files others could have written"},
	{"log_max_size", K_SIZE, "10M", H(log_max_size), 0, 0, "a log is rotated at this size; 0: never"},
	{"log_keep", K_LONG, "5", H(log_keep), 0, 1000, "rotated log files kept, 0..1000"},
	{"history_keep", K_LONG, "10000", H(history_keep), 1, 1000000000, "runs kept in ward.db, 1..1000000000"},
	{"exit_when_done", K_BOOL, "no", H(exit_when_done), 0, 0,
	 "yes: the host exits once no worker can run again: 0 when all ended done, 3 when one failed"},
	{"http", K_ADDRESS, NULL, H(http), 0, 0, "ADDR:PORT of the read-only HTTP endpoint (/metrics, /healthz, /readyz, /status); unset: none"},
	{"log_output", K_LOG_OUTPUT, "file", H(log_output), 0, 0,
	 "where worker lines go: file (NAME.log), stdout (the host's, each line naming NAME:INSTANCE) or both"},
	{"log_format", K_LOG_FORMAT, "text", H(log_format), 0, 0,
	 "text, or json: one object a line (ts, worker, instance, pid, level, msg), the host's events too"},
	{"job_keep", K_DURATION, "7d", H(job_keep_ms), 0, 0, "how long finished jobs are kept in jobs.db"},
	{"job_group", K_STRING, NULL, H(job_group), 0, 0, "a group whose members may queue jobs; unset: only the host's user and root"},
};
#undef H

static const char *const kind_names[] = {
	[K_BOOL] = "boolean", [K_INT] = "number", [K_LONG] = "number", [K_DURATION] = "duration",
	[K_SIZE] = "size", [K_RESTART] = "enum", [K_MAX_RESTARTS] = "number", [K_LIST] = "list",
	[K_STRING] = "string", [K_PATH] = "path", [K_LIMIT_COUNT] = "number", [K_LIMIT_SIZE] = "size",
	[K_LIMIT_SECONDS] = "duration", [K_ADDRESS] = "address", [K_LOG_OUTPUT] = "choice", [K_LOG_FORMAT] = "choice", [K_SPECIAL] = "special",
};

static void print_key_table(const char *title, const struct key_def *defs, size_t n, FILE *out)
{
	fprintf(out, "%s\n  %-20s %-9s %-11s %s\n", title, "key", "type", "default", "meaning");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-20s %-9s %-11s %s\n", defs[i].name, kind_names[defs[i].kind],
			defs[i].dflt ? defs[i].dflt : "-", defs[i].help);
}

void config_print_keys(FILE *out)
{
	print_key_table("[ward] keys:", host_keys, ARRAY_SIZE(host_keys), out);
	print_key_table("\nworker keys ([NAME] sections, and [defaults]):", worker_keys, ARRAY_SIZE(worker_keys), out);
	/* env.NAME is a family of keys, not a row: load_worker reads it by prefix. */
	fprintf(out, "  %-20s %-9s %-11s %s\n", "env.NAME", "string", "-", "set environment variable NAME");
	fprintf(out, "\nAny other key of a worker section is passed to its plugin.\n");
}

static const struct key_def *find_def(const struct key_def *defs, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

static const char *nearest_key(const struct key_def *defs, size_t n, const char *name)
{
	const char *best = NULL;
	/* Only close misspellings: one letter off for short keys, two for longer ones. */
	size_t best_d = strlen(name) <= 5 ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		size_t d = config_edit_distance(defs[i].name, name);
		if (d < best_d) {
			best_d = d;
			best = defs[i].name;
		}
	}
	return best;
}

static char *absolute_path(const struct config *cfg, const char *path)
{
	return path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", cfg->dir, path);
}

static void split_list(const char *value, struct strv *out)
{
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',')
			p++;
		const char *end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > start)
			strv_push(out, xstrndup(start, (size_t)(end - start)));
	}
}

/* "expected a whole number from MIN to MAX", plus `more`. The text lives
 * until the next call: every caller reports it at once. */
static const char *out_of_range(const struct key_def *def, const char *more)
{
	static char why[128];
	snprintf(why, sizeof(why), "expected a whole number from %ld to %ld%s", def->min, def->max, more);
	return why;
}

/* One parser per key kind: value into field, NULL or the reason it is invalid. */
typedef const char *parse_fn(const struct config *cfg, const struct key_def *def, void *field, const char *value);

static const char *parse_bool_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg, (void)def;
	int b;
	if (parse_bool(value, &b) < 0)
		return "expected yes or no (also true/false, on/off, 1/0)";
	*(bool *)field = b;
	return NULL;
}

static const char *parse_int_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg;
	long l;
	if (parse_long(value, &l) < 0 || l < def->min || l > def->max)
		return out_of_range(def, "");
	if (def->kind == K_INT)
		*(int *)field = (int)l;
	else
		*(long *)field = l;
	return NULL;
}

/* K_DURATION (milliseconds) or K_SIZE (bytes), both uint64_t. */
static const char *parse_amount_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg;
	uint64_t u;
	bool duration = def->kind == K_DURATION;
	if ((duration ? parse_duration_ms(value, &u) : parse_size(value, &u)) < 0)
		return duration ? "expected a duration such as 250ms, 5s, 2m or 1h (a bare number is seconds)"
				: "expected a size such as 512K, 10M or 1G";
	*(uint64_t *)field = u;
	return NULL;
}

static const char *parse_restart_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg, (void)def;
	if (strcmp(value, "always") == 0)
		*(enum restart_policy *)field = RESTART_ALWAYS;
	else if (strcmp(value, "on-failure") == 0)
		*(enum restart_policy *)field = RESTART_ON_FAILURE;
	else if (strcmp(value, "never") == 0)
		*(enum restart_policy *)field = RESTART_NEVER;
	else
		return "expected always, on-failure or never";
	return NULL;
}

static const char *parse_max_restarts_key(const struct config *cfg, const struct key_def *def, void *field,
					  const char *value)
{
	(void)cfg;
	long l;
	if (strcmp(value, "unlimited") == 0) {
		*(long *)field = -1;
		return NULL;
	}
	if (parse_long(value, &l) < 0 || l < def->min || l > def->max)
		return out_of_range(def, ", or 'unlimited'");
	*(long *)field = l;
	return NULL;
}

static const char *parse_list_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg, (void)def;
	strv_free(field);
	split_list(value, field);
	return NULL;
}

static const char *parse_string_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	if (*value == '\0')
		return def->kind == K_PATH ? "expected a path" : "expected a value";
	free(*(char **)field);
	*(char **)field = def->kind == K_PATH ? absolute_path(cfg, value) : xstrdup(value);
	return NULL;
}

/* limit.*: a count, a size or whole seconds, or unlimited (also "infinity"). */
static int parse_limit_value(enum key_kind kind, const char *value, uint64_t *u)
{
	long l;
	if (strcmp(value, "unlimited") == 0 || strcmp(value, "infinity") == 0) {
		*u = UINT64_MAX;
		return 0;
	}
	if (kind == K_LIMIT_SIZE)
		return parse_size(value, u);
	if (kind == K_LIMIT_SECONDS) {
		int rc = parse_duration_ms(value, u);
		*u /= 1000;
		return rc;
	}
	int rc = parse_long(value, &l) < 0 || l < 0 ? -1 : 0;
	*u = (uint64_t)l;
	return rc;
}

static const char *parse_limit_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg;
	struct limit_conf *lim = field;
	uint64_t u;
	if (parse_limit_value(def->kind, value, &u) < 0)
		return def->kind == K_LIMIT_SIZE ? "expected a size such as 512M, or unlimited"
		       : def->kind == K_LIMIT_SECONDS ? "expected a duration such as 30s, or unlimited"
		       : "expected a whole number, or unlimited";
	lim->set = true;
	lim->value = u;
	return NULL;
}

static const char *parse_address_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg, (void)def;
	struct sockaddr_storage ss;
	socklen_t len;
	const char *why = address_parse(value, &ss, &len);
	if (why)
		return why;
	free(*(char **)field);
	*(char **)field = xstrdup(value);
	return NULL;
}

/* A word of choices[def->kind], stored as its index. */
static const char *parse_choice_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg;
	const char *const *words = choices[def->kind];
	size_t n = 0;
	while (n < ARRAY_SIZE(choices[0]) && words[n])
		n++;
	for (size_t i = 0; i < n; i++)
		if (strcmp(value, words[i]) == 0) {
			*(int *)field = (int)i;
			return NULL;
		}
	static char why[128]; /* reported at once by the caller, as out_of_range's text */
	int at = snprintf(why, sizeof(why), "expected ");
	for (size_t i = 0; i < n; i++)
		at += snprintf(why + at, sizeof(why) - (size_t)at, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ", words[i]);
	return why;
}

static const char *parse_special_key(const struct config *cfg, const struct key_def *def, void *field, const char *value)
{
	(void)cfg, (void)def, (void)field, (void)value;
	return NULL; /* the caller handles it */
}

static parse_fn *const parsers[] = {
	[K_BOOL] = parse_bool_key,
	[K_INT] = parse_int_key,
	[K_LONG] = parse_int_key,
	[K_DURATION] = parse_amount_key,
	[K_SIZE] = parse_amount_key,
	[K_RESTART] = parse_restart_key,
	[K_MAX_RESTARTS] = parse_max_restarts_key,
	[K_LIST] = parse_list_key,
	[K_STRING] = parse_string_key,
	[K_PATH] = parse_string_key,
	[K_LIMIT_COUNT] = parse_limit_key,
	[K_LIMIT_SIZE] = parse_limit_key,
	[K_LIMIT_SECONDS] = parse_limit_key,
	[K_ADDRESS] = parse_address_key,
	[K_LOG_OUTPUT] = parse_choice_key,
	[K_LOG_FORMAT] = parse_choice_key,
	[K_SPECIAL] = parse_special_key,
};

/* Parses one value into base+def->offset. Returns NULL or the reason it is invalid. */
static const char *apply_value(const struct config *cfg, void *base, const struct key_def *def,
			       const char *value)
{
	if ((size_t)def->kind >= ARRAY_SIZE(parsers) || !parsers[def->kind])
		return "unknown key type";
	return parsers[def->kind](cfg, def, (char *)base + def->offset, value);
}

/* ---- [ward] ---- */

static void load_host_settings(struct config *cfg, const struct entries *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_keys); i++)
		if (host_keys[i].dflt)
			apply_value(cfg, cfg, &host_keys[i], host_keys[i].dflt);
	struct section_run run = find_section(e, "ward");
	for (size_t i = 0; i < run.n; i++) {
		const struct entry *en = &run.v[i];
		const struct key_def *def = find_def(host_keys, ARRAY_SIZE(host_keys), en->key);
		if (!def) {
			const char *near = nearest_key(host_keys, ARRAY_SIZE(host_keys), en->key);
			add_error(cfg, en->at, "ward", en->key, "unknown host setting%s%s%s", near ? "; did you mean '" : "",
				  near ? near : "", near ? "'?" : " (worker keys go in [defaults] or a worker section)");
			continue;
		}
		const char *why = apply_value(cfg, cfg, def, en->value);
		if (!why && strcmp(def->name, "job_group") == 0 && !getgrnam(en->value))
			why = "no such group (name an existing group whose members may queue jobs)";
		if (why)
			add_error(cfg, en->at, "ward", en->key, "invalid value \"%s\": %s", en->value, why);
	}
	if (!cfg->log_dir)
		cfg->log_dir = xasprintf("%s/logs", cfg->state_dir);
}

/* ---- workers ---- */

/* A queue name travels in the job protocol's space-separated lines. */
static bool valid_queue_name(const char *q)
{
	size_t n = strlen(q);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (q[i] <= ' ' || q[i] > '~')
			return false;
	return true;
}

static bool valid_worker_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > MAX_NAME_LEN || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			return false;
	return true;
}

static bool valid_env_name(const char *name)
{
	if (!isalpha((unsigned char)*name) && *name != '_')
		return false;
	for (; *name; name++)
		if (!isalnum((unsigned char)*name) && *name != '_')
			return false;
	return true;
}

static int is_plugin_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

/* The names of autoloaded workers: the stems of plugin_dir's *.so files. */
static void scan_plugin_dir(struct config *cfg, struct strv *stems)
{
	struct dirent **names;
	int n = scandir(cfg->plugin_dir, &names, is_plugin_file, alphasort);
	if (n < 0) {
		add_error(cfg, (struct origin){cfg->plugin_dir, 0}, NULL, NULL,
			  "unable to read plugin_dir: %s (set plugin_dir in [ward])", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		strv_push(stems, xstrndup(names[i]->d_name, strlen(names[i]->d_name) - 3));
		free(names[i]);
	}
	free(names);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_reserved_section(const char *s)
{
	return strcmp(s, "ward") == 0 || strcmp(s, "defaults") == 0;
}

/* Every worker name: autoloaded stems plus worker sections, sorted, unique. */
static void collect_worker_names(struct config *cfg, const struct entries *e, struct strv *names)
{
	struct strv all = {0};
	if (cfg->autoload)
		scan_plugin_dir(cfg, &all);
	for (size_t i = 0; i < e->nheaders; i++)
		if (!is_reserved_section(e->headers[i].section))
			strv_push(&all, xstrdup(e->headers[i].section));
	if (all.n > 1)
		qsort(all.v, all.n, sizeof(char *), compare_strings);
	for (size_t i = 0; i < all.n; i++) {
		if (names->n && strcmp(names->v[names->n - 1], all.v[i]) == 0)
			free(all.v[i]);
		else
			strv_push(names, all.v[i]);
	}
	free(all.v);
}

/* The first [name] header read, or NULL for a worker that only autoload made. */
static const struct origin *section_origin(const struct entries *e, const char *name)
{
	for (size_t i = 0; i < e->nheaders; i++)
		if (strcmp(e->headers[i].section, name) == 0)
			return &e->headers[i].at;
	return NULL;
}

static void resolve_plugin(struct config *cfg, struct worker_conf *w, const struct entry *pe)
{
	const char *spec = pe ? pe->value : w->name;
	size_t n = strlen(spec);
	if (strchr(spec, '/') || (n > 3 && strcmp(spec + n - 3, ".so") == 0))
		w->plugin = absolute_path(cfg, spec);
	else
		w->plugin = xasprintf("%s/%s.so", cfg->plugin_dir, spec);
	struct origin at = pe ? pe->at : w->where;
	struct stat st;
	if (pe && n == 0)
		add_error(cfg, at, w->name, "plugin", "invalid value \"\": expected a value: a plugin file stem or a path");
	else if (stat(w->plugin, &st) < 0)
		add_error(cfg, at, w->name, "plugin", "unable to find plugin file %s: %s (check plugin_dir, or set plugin = STEM or a path)",
			  w->plugin, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		add_error(cfg, at, w->name, "plugin", "%s is not a regular file", w->plugin);
}

/* A key of [defaults] or of the worker's section that is not a ward key:
 * env.NAME becomes environment, anything else is the plugin's. */
static void add_extra_key(struct config *cfg, struct worker_conf *w, const struct entry *en, int shared)
{
	if (strncmp(en->key, "env.", 4) == 0) {
		const char *var = en->key + 4;
		if (!valid_env_name(var)) {
			add_error(cfg, en->at, en->section, en->key,
				  "invalid environment variable name (letters, digits and _ only)");
			return;
		}
		strv_push(&w->env, xasprintf("%s=%s", var, en->value));
		return;
	}
	w->plugin_key_at = xrealloc(w->plugin_key_at, (w->plugin_keys.n + 1) * sizeof(*w->plugin_key_at));
	w->plugin_key_at[w->plugin_keys.n] = en->at;
	w->plugin_key_shared = xrealloc(w->plugin_key_shared, (w->plugin_keys.n + 1) * sizeof(*w->plugin_key_shared));
	w->plugin_key_shared[w->plugin_keys.n] = shared;
	if (shared >= 0)
		cfg->shared_keys[shared].takers++;
	strv_push(&w->plugin_keys, xasprintf("%s=%s", en->key, en->value));
}

void config_forget_warning(struct config *cfg, struct origin at)
{
	char *raw = xasprintf("%s:%d: ", at.file, at.line), *prefix = escape_invisible(raw);
	free(raw);
	size_t kept = 0;
	for (size_t i = 0; i < cfg->warnings.n; i++) {
		if (strncmp(cfg->warnings.v[i], prefix, strlen(prefix)) == 0)
			free(cfg->warnings.v[i]);
		else
			cfg->warnings.v[kept++] = cfg->warnings.v[i];
	}
	cfg->warnings.n = kept;
	free(prefix);
}

const char *config_nearest_worker_key(const char *key)
{
	return nearest_key(worker_keys, ARRAY_SIZE(worker_keys), key);
}

static bool is_worker_key(const char *key)
{
	return find_def(worker_keys, ARRAY_SIZE(worker_keys), key) != NULL;
}

/* Fills w from its own section, then [defaults], then the built-in defaults.
 * Returns false when the worker is disabled. */
static bool load_worker(struct config *cfg, const struct entries *e, const char *name,
			struct worker_conf *w)
{
	struct section_run own = find_section(e, name);
	struct section_run defs = find_section(e, "defaults");
	*w = (struct worker_conf){.name = xstrdup(name)};
	const struct origin *header = section_origin(e, name);
	w->where = header ? *header : (struct origin){cfg->plugin_dir, 0};

	if (!valid_worker_name(name))
		add_error(cfg, w->where, name, NULL,
			  "invalid worker name: use letters, digits, '_', '.' and '-' (at most %d characters)",
			  MAX_NAME_LEN);

	const struct entry *en = find_key(own, "enabled");
	if (!en)
		en = find_key(defs, "enabled");
	int enabled = 1;
	if (en && parse_bool(en->value, &enabled) < 0)
		add_error(cfg, en->at, en->section, "enabled", "invalid value \"%s\": expected yes or no",
			  en->value);
	if (!enabled)
		return false;

	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++) {
		const struct key_def *def = &worker_keys[i];
		if (def->kind == K_SPECIAL)
			continue;
		const struct entry *src = find_key(own, def->name);
		if (!src)
			src = find_key(defs, def->name);
		const char *value = src ? src->value : def->dflt;
		if (!value)
			continue;
		const char *why = apply_value(cfg, w, def, value);
		if (why)
			add_error(cfg, src ? src->at : w->where, src ? src->section : name, def->name,
				  "invalid value \"%s\": %s", value, why);
	}
	if (find_key(own, "nice") || find_key(defs, "nice"))
		w->nice_set = true;

	const struct entry *pe = find_key(own, "plugin");
	resolve_plugin(cfg, w, pe ? pe : find_key(defs, "plugin"));

	for (size_t i = 0; i < defs.n; i++)
		if (!is_worker_key(defs.v[i].key) && !find_key(own, defs.v[i].key))
			add_extra_key(cfg, w, &defs.v[i], (int)i);
	for (size_t i = 0; i < own.n; i++)
		if (!is_worker_key(own.v[i].key))
			add_extra_key(cfg, w, &own.v[i], -1);
	return true;
}

/* Keys that are one or two letters away from a ward key are almost always
 * typos; they still go to the plugin, but the operator is told. */
static void warn_near_misses(struct config *cfg, const struct entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct entry *en = &e->v[i];
		if (strcmp(en->section, "ward") == 0 || is_worker_key(en->key) ||
		    strncmp(en->key, "env.", 4) == 0)
			continue;
		const char *near = nearest_key(worker_keys, ARRAY_SIZE(worker_keys), en->key);
		if (!near)
			continue;
		char *raw = xasprintf("%s:%d: [%s] %s: not a ward key, so it is passed to the plugin; did you mean '%s'?",
				      en->at.file, en->at.line, en->section, en->key, near);
		strv_push(&cfg->warnings, escape_invisible(raw));
		free(raw);
	}
}

static const char *check_listen_address(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return strlen(addr + 5) == 0 ? "unix: needs a path" :
		       strlen(addr + 5) >= 100 ? "unix socket path is too long (at most 99 bytes)" : NULL;
	if (strncmp(addr, "tcp:", 4) == 0) {
		const char *port = strrchr(addr + 4, ':');
		long p;
		if (!port || port == addr + 4 || parse_long(port + 1, &p) < 0 || p < 1 || p > 65535)
			return "expected tcp:HOST:PORT with a port from 1 to 65535 (HOST may be an address, [v6], a name or *)";
		return NULL;
	}
	return "expected unix:PATH or tcp:HOST:PORT";
}

/* What can be known about a unix socket path without binding it. */
static const char *check_unix_path(const char *addr)
{
	if (strncmp(addr, "unix:", 5) != 0)
		return NULL;
	const char *path = addr + 5;
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return "the path exists and is not a socket";
	return NULL; /* a missing directory is created by the host */
}

/* Where the worker's value of key was written: its own section, else
 * [defaults], else (a built-in default) its section header. */
static struct origin key_origin(const struct entries *e, const struct worker_conf *w, const char *key)
{
	const struct entry *en = find_key(find_section(e, w->name), key);
	if (!en)
		en = find_key(find_section(e, "defaults"), key);
	return en ? en->at : w->where;
}

static void check_worker_refs(struct config *cfg, struct worker_conf *w, const struct entries *e)
{
	struct origin at = key_origin(e, w, "requires");
	w->requires_at = at;
	for (size_t i = 0; i < w->requires.n; i++) {
		const char *dep = w->requires.v[i];
		if (strcmp(dep, w->name) == 0)
			add_error(cfg, at, w->name, "requires", "a worker cannot require itself");
		else if (!config_find_worker(cfg, dep))
			add_error(cfg, at, w->name, "requires", "no enabled worker named '%s'", dep);
	}
	at = key_origin(e, w, "listen");
	for (size_t i = 0; i < w->listen.n; i++) {
		const char *why = check_listen_address(w->listen.v[i]);
		if (why) {
			add_error(cfg, at, w->name, "listen", "\"%s\": %s", w->listen.v[i], why);
			continue;
		}
		if (strncmp(w->listen.v[i], "unix:", 5) == 0 && w->listen.v[i][5] != '/') {
			char *abs = xasprintf("unix:%s/%s", cfg->dir, w->listen.v[i] + 5);
			free(w->listen.v[i]);
			w->listen.v[i] = abs;
		}
		why = check_unix_path(w->listen.v[i]);
		if (why)
			add_error(cfg, at, w->name, "listen", "\"%s\": %s", w->listen.v[i], why);
	}
	if (w->restart_delay_max_ms < w->restart_delay_ms)
		w->restart_delay_max_ms = w->restart_delay_ms;
	if (w->job_retry_delay_max_ms < w->job_retry_delay_ms)
		w->job_retry_delay_max_ms = w->job_retry_delay_ms;
	if (w->queue && !valid_queue_name(w->queue))
		add_error(cfg, key_origin(e, w, "queue"), w->name, "queue",
			  "invalid value \"%s\": expected 1 to 255 printable ASCII characters without spaces", w->queue);
}

/* ---- listen addresses: one worker each ---- */

/* One listen address of one worker, reduced to what bind() sees. */
struct listen_use {
	const struct worker_conf *w;
	const char *address; /* as configured (unix paths made absolute) */
	struct origin at;
	bool tcp, any;       /* tcp: any is a wildcard host (*, 0.0.0.0, [::]) */
	long port;
	char *key;           /* unix: the normalised path; tcp: the normalised host */
	size_t seq;          /* among equal addresses, the one written first is "first" */
};

/* path with "//", "/./" and "/x/../" taken out, and its directory's
 * symbolic links resolved when it exists. */
static char *normal_path(const char *path)
{
	char *out = xmalloc(strlen(path) + 2), *o = out;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || n == 0) {
			/* nothing to add */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > out && *--o != '/')
				;
		} else {
			*o++ = '/';
			memcpy(o, p, n);
			o += n;
		}
		p += n + (p[n] == '/');
	}
	*o = '\0';
	char *slash = strrchr(out, '/'), real[PATH_MAX];
	if (!slash)
		return out;
	*slash = '\0';
	if (!realpath(out[0] ? out : "/", real)) {
		*slash = '/';
		return out;
	}
	char *resolved = xasprintf("%s/%s", strcmp(real, "/") ? real : "", slash + 1);
	free(out);
	return resolved;
}

/* tcp:HOST:PORT (already checked): numeric hosts in one spelling, names in lower case. */
static void normal_tcp(const char *address, struct listen_use *u)
{
	const char *spec = address + 4, *colon = strrchr(spec, ':');
	parse_long(colon + 1, &u->port);
	char *host = xstrndup(spec, (size_t)(colon - spec)), *h = host;
	size_t n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h[n - 1] = '\0';
		h++;
	}
	unsigned char bin[16];
	char text[INET6_ADDRSTRLEN];
	int family = inet_pton(AF_INET, h, bin) == 1 ? AF_INET : inet_pton(AF_INET6, h, bin) == 1 ? AF_INET6 : 0;
	static const unsigned char zero[16];
	u->any = strcmp(h, "*") == 0 || (family && memcmp(bin, zero, family == AF_INET ? 4 : 16) == 0);
	if (family && inet_ntop(family, bin, text, sizeof(text))) {
		u->key = xstrdup(text);
	} else {
		u->key = xstrdup(h);
		for (char *c = u->key; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	free(host);
}

/* Unix paths first; tcp by port, a wildcard host first among equal ports. */
static int listen_use_cmp(const void *pa, const void *pb)
{
	const struct listen_use *a = pa, *b = pb;
	if (a->tcp != b->tcp)
		return a->tcp ? 1 : -1;
	if (a->tcp && a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->any != b->any)
		return a->any ? -1 : 1;
	int c = strcmp(a->key, b->key);
	if (c == 0) /* files are read in the lexical order of their paths */
		c = strcmp(a->at.file, b->at.file);
	if (c == 0)
		c = a->at.line != b->at.line ? (a->at.line < b->at.line ? -1 : 1) : a->seq < b->seq ? -1 : 1;
	return c;
}

static void report_clash(struct config *cfg, const struct listen_use *u, const struct listen_use *first)
{
	if (first->w == u->w && strcmp(first->address, u->address) == 0)
		add_error(cfg, u->at, u->w->name, "listen", "\"%s\": listed twice", u->address);
	else if (first->w == u->w)
		add_error(cfg, u->at, u->w->name, "listen", "\"%s\": listed twice (also as \"%s\")", u->address,
			  first->address);
	else
		add_error(cfg, u->at, u->w->name, "listen",
			  "\"%s\": worker '%s' listens there too, with \"%s\" (%s:%d); an address can belong to one worker only",
			  u->address, first->w->name, first->address, first->at.file, first->at.line);
}

/* Two workers bound to one address would fail at run time, the second
 * blaming "another process": refused here, naming both. */
static void check_listen_clashes(struct config *cfg, const struct entries *e)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->nworkers; i++)
		n += cfg->workers[i].listen.n;
	struct listen_use *uses = xcalloc(n ? n : 1, sizeof(*uses));
	n = 0;
	for (size_t i = 0; i < cfg->nworkers; i++) {
		const struct worker_conf *w = &cfg->workers[i];
		for (size_t k = 0; k < w->listen.n; k++) {
			const char *a = w->listen.v[k];
			if (check_listen_address(a))
				continue; /* reported already */
			struct listen_use *u = &uses[n];
			*u = (struct listen_use){.w = w, .address = a, .at = key_origin(e, w, "listen"),
						 .tcp = strncmp(a, "tcp:", 4) == 0, .seq = n++};
			if (u->tcp)
				normal_tcp(a, u);
			else
				u->key = normal_path(a + 5);
		}
	}
	if (n > 1)
		qsort(uses, n, sizeof(*uses), listen_use_cmp);
	for (size_t i = 1, first = 0; i < n; i++) {
		bool same_port = uses[i].tcp && uses[first].tcp && uses[i].port == uses[first].port;
		if (same_port && uses[first].any)
			report_clash(cfg, &uses[i], &uses[first]);
		else if (uses[i].tcp == uses[first].tcp && (!uses[i].tcp || same_port) &&
			 strcmp(uses[i].key, uses[first].key) == 0)
			report_clash(cfg, &uses[i], &uses[first]);
		else
			first = i;
	}
	for (size_t i = 0; i < n; i++)
		free(uses[i].key);
	free(uses);
}

/* strict_permissions: a path others could write to, or owned by a user who is
 * neither root nor the host's, could put code into a worker. NULL when fine. */
static const char *unsafe_path(const char *path, char *why, size_t size)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return NULL; /* missing files are reported elsewhere */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, size, "%s is writable by %s: run `chmod go-w %s`", path,
			 st.st_mode & S_IWOTH ? "everyone" : "its group", path);
		return why;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(why, size, "%s is owned by uid %u, neither root nor the host's user: run `chown root %s`",
			 path, (unsigned)st.st_uid, path);
		return why;
	}
	return NULL;
}

/* The plugin file and every directory above it, symlinks resolved. */
static void check_plugin_permissions(struct config *cfg, const struct worker_conf *w)
{
	char real[PATH_MAX], why[PATH_MAX + 160];
	if (!realpath(w->plugin, real))
		return;
	if (unsafe_path(real, why, sizeof(why)))
		add_error(cfg, w->where, w->name, "plugin", "refused by strict_permissions: %s", why);
	for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
		*slash = '\0';
		const char *dir = real[0] ? real : "/";
		/* A sticky world-writable directory such as /tmp cannot have its
		 * entries replaced by others: it is no hole. */
		struct stat st;
		bool sticky = stat(dir, &st) == 0 && (st.st_mode & S_ISVTX);
		if (!sticky && unsafe_path(dir, why, sizeof(why))) {
			add_error(cfg, w->where, w->name, "plugin", "refused by strict_permissions: %s", why);
			break;
		}
		if (!real[0])
			break;
	}
}

/* Depth-first search for a cycle in `requires`; reports each one found once. */
static bool requires_cycle_from(struct config *cfg, size_t i, unsigned char *color, size_t *stack,
				size_t depth)
{
	color[i] = 1;
	stack[depth] = i;
	struct worker_conf *w = &cfg->workers[i];
	for (size_t k = 0; k < w->requires.n; k++) {
		struct worker_conf *dep = config_find_worker(cfg, w->requires.v[k]);
		if (!dep || dep == w)
			continue;
		size_t j = (size_t)(dep - cfg->workers);
		if (color[j] == 1) {
			char path[1024] = "";
			size_t len = 0;
			size_t start = depth;
			while (stack[start] != j)
				start--;
			for (size_t s = start; s <= depth && len < sizeof(path); s++)
				len += (size_t)snprintf(path + len, sizeof(path) - len, "%s -> ",
							cfg->workers[stack[s]].name);
			if (len < sizeof(path))
				snprintf(path + len, sizeof(path) - len, "%s", dep->name);
			add_error(cfg, w->requires_at, w->name, "requires", "dependency cycle: %s", path);
			color[i] = 2; /* finished: a later search must not walk back through it */
			return true;
		}
		if (color[j] == 0 && requires_cycle_from(cfg, j, color, stack, depth + 1)) {
			color[i] = 2;
			return true;
		}
	}
	color[i] = 2;
	return false;
}

static void check_requires_cycles(struct config *cfg)
{
	unsigned char *color = xcalloc(cfg->nworkers, 1);
	size_t *stack = xcalloc(cfg->nworkers + 1, sizeof(size_t));
	for (size_t i = 0; i < cfg->nworkers; i++)
		if (color[i] == 0)
			requires_cycle_from(cfg, i, color, stack, 0);
	free(color);
	free(stack);
}

struct worker_conf *config_find_worker(const struct config *cfg, const char *name)
{
	size_t lo = 0, hi = cfg->nworkers;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(cfg->workers[mid].name, name);
		if (c == 0)
			return &cfg->workers[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* What a key's field owns, by its kind (the table says which fields exist). */
static void free_field(const struct key_def *def, void *base)
{
	void *field = (char *)base + def->offset;
	if (def->kind == K_LIST)
		strv_free(field);
	else if (def->kind == K_STRING || def->kind == K_PATH || def->kind == K_ADDRESS)
		free(*(char **)field);
}

static void free_worker(struct worker_conf *w)
{
	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++)
		if (worker_keys[i].kind != K_SPECIAL)
			free_field(&worker_keys[i], w);
	/* What no key row owns: */
	free(w->name);
	free(w->plugin);
	strv_free(&w->env);
	strv_free(&w->plugin_keys);
	free(w->plugin_key_at);
	free(w->plugin_key_shared);
}

/* One shared_key per key of [defaults] (indexed like its sorted run). */
static void note_shared_keys(struct config *cfg, const struct entries *e)
{
	struct section_run defs = find_section(e, "defaults");
	cfg->shared_keys = xcalloc(defs.n ? defs.n : 1, sizeof(*cfg->shared_keys));
	cfg->nshared_keys = defs.n;
	for (size_t i = 0; i < defs.n; i++)
		cfg->shared_keys[i] = (struct shared_key){.key = xstrdup(defs.v[i].key), .at = defs.v[i].at};
}

/* Parses every ward key of [defaults] into a scratch worker, for its errors only. */
static void check_defaults(struct config *cfg, const struct entries *e)
{
	struct section_run defs = find_section(e, "defaults");
	struct worker_conf scratch = {0};
	for (size_t i = 0; i < defs.n; i++) {
		const struct entry *en = &defs.v[i];
		const struct key_def *def = find_def(worker_keys, ARRAY_SIZE(worker_keys), en->key);
		int b;
		const char *why = NULL;
		if (def && def->kind != K_SPECIAL)
			why = apply_value(cfg, &scratch, def, en->value);
		else if (def && strcmp(def->name, "enabled") == 0 && parse_bool(en->value, &b) < 0)
			why = "expected yes or no";
		if (why)
			add_error(cfg, en->at, "defaults", en->key, "invalid value \"%s\": %s", en->value, why);
	}
	free_worker(&scratch);
}

int config_load(const char *dir, struct config *cfg)
{
	*cfg = (struct config){0};
	char resolved[PATH_MAX];
	if (!realpath(dir, resolved)) {
		cfg->dir = xstrdup(dir);
		add_error(cfg, (struct origin){dir, 0}, NULL, NULL,
			  "unable to open the configuration directory: %s (pass it with -c DIR)", strerror(errno));
		return -1;
	}
	cfg->dir = xstrdup(resolved);

	struct entries e = {0};
	read_dir(cfg, &e);
	keep_last_values(&e);
	load_host_settings(cfg, &e);
	warn_near_misses(cfg, &e);

	struct strv names = {0};
	collect_worker_names(cfg, &e, &names);
	cfg->workers = xcalloc(names.n, sizeof(*cfg->workers));
	/* [defaults] is checked once on its own, so its errors show even with no
	 * workers; the same errors found again per worker are dropped as repeats. */
	check_defaults(cfg, &e);
	note_shared_keys(cfg, &e);
	for (size_t i = 0; i < names.n; i++) {
		struct worker_conf *w = &cfg->workers[cfg->nworkers];
		if (load_worker(cfg, &e, names.v[i], w))
			cfg->nworkers++;
		else
			free_worker(w);
	}
	strv_free(&names);
	for (size_t i = 0; i < cfg->nworkers; i++) {
		check_worker_refs(cfg, &cfg->workers[i], &e);
		if (cfg->strict_permissions)
			check_plugin_permissions(cfg, &cfg->workers[i]);
	}
	check_listen_clashes(cfg, &e);
	check_requires_cycles(cfg);

	for (size_t i = 0; i < e.n; i++)
		free_entry(&e.v[i]);
	free(e.v);
	for (size_t i = 0; i < e.nheaders; i++)
		free(e.headers[i].section);
	free(e.headers);
	return cfg->errors.n ? -1 : 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nworkers; i++)
		free_worker(&cfg->workers[i]);
	free(cfg->workers);
	free(cfg->dir);
	free(cfg->plugin_dir);
	free(cfg->state_dir);
	free(cfg->log_dir);
	free(cfg->http);
	strv_free(&cfg->errors);
	strv_free(&cfg->warnings);
	strv_free(&cfg->files);
	for (size_t i = 0; i < cfg->nshared_keys; i++)
		free(cfg->shared_keys[i].key);
	free(cfg->shared_keys);
	*cfg = (struct config){0};
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_strv(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

static bool same_limit(struct limit_conf a, struct limit_conf b)
{
	return a.set == b.set && (!a.set || a.value == b.value);
}

/* Whether a key's field is the same in a and b, by its kind. */
static bool same_field(const struct key_def *def, const void *a, const void *b)
{
	const void *fa = (const char *)a + def->offset, *fb = (const char *)b + def->offset;
	switch (def->kind) {
	case K_BOOL:
		return *(const bool *)fa == *(const bool *)fb;
	case K_INT:
	case K_LOG_OUTPUT:
	case K_LOG_FORMAT:
		return *(const int *)fa == *(const int *)fb;
	case K_LONG:
	case K_MAX_RESTARTS:
		return *(const long *)fa == *(const long *)fb;
	case K_DURATION:
	case K_SIZE:
		return *(const uint64_t *)fa == *(const uint64_t *)fb;
	case K_RESTART:
		return *(const enum restart_policy *)fa == *(const enum restart_policy *)fb;
	case K_LIST:
		return same_strv(fa, fb);
	case K_STRING:
	case K_PATH:
	case K_ADDRESS:
		return same_str(*(char *const *)fa, *(char *const *)fb);
	case K_LIMIT_COUNT:
	case K_LIMIT_SIZE:
	case K_LIMIT_SECONDS:
		return same_limit(*(const struct limit_conf *)fa, *(const struct limit_conf *)fb);
	case K_SPECIAL:
		return true; /* compared below, or no field of its own */
	}
	return false;
}

/* Every setting of struct worker_conf but its origins: each key row of
 * worker_keys, and the fields no row owns. */
bool config_worker_equal(const struct worker_conf *a, const struct worker_conf *b)
{
	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++)
		if (!same_field(&worker_keys[i], a, b))
			return false;
	return same_str(a->name, b->name) && same_str(a->plugin, b->plugin) && same_strv(&a->env, &b->env) &&
	       a->nice_set == b->nice_set && same_strv(&a->plugin_keys, &b->plugin_keys);
}

/* ---- a worker's settings on the wire to its process (worker/childspec.c) ---- */

/* Every key row travels, not only those the worker process reads today: a
 * key the process comes to need then needs nothing but its row and the code
 * that reads it, and a process the spawner forked sees exactly the settings
 * one the host forked itself sees (it has the host's whole worker_conf). */
static void put_field(const struct key_def *def, const void *base, struct wire *out)
{
	const void *f = (const char *)base + def->offset;
	switch (def->kind) {
	case K_BOOL:
		wire_put_u64(out, *(const bool *)f);
		break;
	case K_INT:
	case K_LOG_OUTPUT:
	case K_LOG_FORMAT:
		wire_put_u64(out, (uint64_t)(int64_t)*(const int *)f);
		break;
	case K_LONG:
	case K_MAX_RESTARTS:
		wire_put_u64(out, (uint64_t)(int64_t)*(const long *)f);
		break;
	case K_DURATION:
	case K_SIZE:
		wire_put_u64(out, *(const uint64_t *)f);
		break;
	case K_RESTART:
		wire_put_u64(out, (uint64_t)*(const enum restart_policy *)f);
		break;
	case K_LIST:
		wire_put_strv(out, f);
		break;
	case K_STRING:
	case K_PATH:
	case K_ADDRESS:
		wire_put_string(out, *(char *const *)f);
		break;
	case K_LIMIT_COUNT:
	case K_LIMIT_SIZE:
	case K_LIMIT_SECONDS:
		wire_put_u64(out, ((const struct limit_conf *)f)->set);
		wire_put_u64(out, ((const struct limit_conf *)f)->value);
		break;
	case K_SPECIAL:
		break; /* no field of its own */
	}
}

static void get_field(const struct key_def *def, void *base, struct wire *in)
{
	void *f = (char *)base + def->offset;
	switch (def->kind) {
	case K_BOOL:
		*(bool *)f = wire_get_u64(in) != 0;
		break;
	case K_INT:
	case K_LOG_OUTPUT:
	case K_LOG_FORMAT:
		*(int *)f = (int)(int64_t)wire_get_u64(in);
		break;
	case K_LONG:
	case K_MAX_RESTARTS:
		*(long *)f = (long)(int64_t)wire_get_u64(in);
		break;
	case K_DURATION:
	case K_SIZE:
		*(uint64_t *)f = wire_get_u64(in);
		break;
	case K_RESTART:
		*(enum restart_policy *)f = (enum restart_policy)wire_get_u64(in);
		break;
	case K_LIST:
		wire_get_strings(in, f);
		break;
	case K_STRING:
	case K_PATH:
	case K_ADDRESS:
		*(char **)f = wire_get_string(in);
		break;
	case K_LIMIT_COUNT:
	case K_LIMIT_SIZE:
	case K_LIMIT_SECONDS:
		((struct limit_conf *)f)->set = wire_get_u64(in) != 0;
		((struct limit_conf *)f)->value = wire_get_u64(in);
		break;
	case K_SPECIAL:
		break;
	}
}

/* Every key row of worker_keys, then the fields no row owns (those
 * config_worker_equal compares). Origins stay behind: nothing in the
 * process says where a value was written. */
void config_worker_to_wire(const struct worker_conf *w, struct wire *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++)
		put_field(&worker_keys[i], w, out);
	wire_put_string(out, w->name);
	wire_put_string(out, w->plugin);
	wire_put_strv(out, &w->env);
	wire_put_u64(out, w->nice_set);
	wire_put_strv(out, &w->plugin_keys);
}

void config_worker_from_wire(struct wire *in, struct worker_conf *w)
{
	*w = (struct worker_conf){0};
	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++)
		get_field(&worker_keys[i], w, in);
	w->name = wire_get_string(in);
	w->plugin = wire_get_string(in);
	wire_get_strings(in, &w->env);
	w->nice_set = wire_get_u64(in) != 0;
	wire_get_strings(in, &w->plugin_keys);
	if (!w->name || !w->plugin)
		in->failed = true;
}

void config_worker_free_wired(struct worker_conf *w)
{
	for (size_t i = 0; i < ARRAY_SIZE(worker_keys); i++)
		if (worker_keys[i].kind == K_LIST)
			free(((struct strv *)((char *)w + worker_keys[i].offset))->v);
	free(w->env.v);
	free(w->plugin_keys.v);
	*w = (struct worker_conf){0};
}
