/*
 * pmetrics.c - the table behind ward_gauge and ward_count (<ward.h>,
 * runtime.c): the plugin's own metrics, kept in the worker process's memory
 * and sent to the host by the runtime's loop (pmetrics.h). A call makes no system call: it
 * looks the name up (the last one used first), stores the value and marks
 * it changed. A name is checked against the rule of common/pmetric.h once,
 * when first used; a name refused, or one past the PMETRIC_MAX a process may
 * have, gets one warning in the worker's log and its calls are ignored.
 * Plugin threads may call both: a mutex (no system call unless two threads
 * meet in it) guards the table. Runs in the worker process.
 */
#define _GNU_SOURCE
#include "worker/pmetrics.h"
#include "common/pmetric.h"
#include "common/proto.h"
#include "common/units.h"
#include "common/util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define REFUSED_MAX 16 /* names warned about; later ones are ignored with one last warning */

struct entry {
	char name[PMETRIC_NAME_MAX + 1];
	uint8_t len;
	uint8_t kind;          /* enum pmetric_kind */
	bool changed;          /* since the last send */
	bool warned;           /* about a bad counter delta, once */
	double value;          /* a gauge's last value, a counter's sum */
};

/* A name refused once, kept to be refused quietly after: its first bytes. */
struct refused {
	char name[PMETRIC_NAME_MAX + 1];
	bool longer;           /* the name went on past those bytes */
};

static struct {
	pthread_mutex_t lock;
	struct entry v[PMETRIC_MAX];
	int n, last;           /* last: the entry the last call used */
	struct refused refused[REFUSED_MAX];
	int nrefused;
	bool refused_overflow; /* the last warning about refused names was written */
	int64_t sent_ns;       /* when changes were last sent */
	/* Held from taking the changes to sending them, so that two threads
	 * sending at once send a counter's figures in the order they grew. */
	pthread_mutex_t send_lock;
} table = {.lock = PTHREAD_MUTEX_INITIALIZER, .send_lock = PTHREAD_MUTEX_INITIALIZER};

_Atomic bool pmetrics_changed; /* some entry changed: the loop's one load */

void pmetrics_reset(void)
{
	pthread_mutex_lock(&table.lock);
	table.n = table.last = table.nrefused = 0;
	table.refused_overflow = false;
	table.sent_ns = 0;
	atomic_store(&pmetrics_changed, false);
	pthread_mutex_unlock(&table.lock);
}

static struct entry *lookup(const char *name)
{
	if (table.n && strcmp(table.v[table.last].name, name) == 0)
		return &table.v[table.last];
	for (int i = 0; i < table.n; i++)
		if (strcmp(table.v[i].name, name) == 0) {
			table.last = i;
			return &table.v[i];
		}
	return NULL;
}

/* Whether name was refused before; else it is remembered as refused now, and
 * true comes back when that was one name too many to remember. */
static bool refused_before(const char *name, bool *overflow)
{
	size_t len = strnlen(name, PMETRIC_NAME_MAX + 1);
	bool longer = len > PMETRIC_NAME_MAX;
	if (longer)
		len = PMETRIC_NAME_MAX;
	*overflow = false;
	for (int i = 0; i < table.nrefused; i++)
		if (table.refused[i].longer == longer && strncmp(table.refused[i].name, name, len) == 0 &&
		    table.refused[i].name[len] == '\0')
			return true;
	if (table.nrefused == REFUSED_MAX) {
		*overflow = !table.refused_overflow;
		table.refused_overflow = true;
		return !*overflow;
	}
	struct refused *r = &table.refused[table.nrefused++];
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	r->longer = longer;
	return false;
}

static const char *function_of(enum pmetric_kind kind)
{
	return kind == PMETRIC_COUNTER ? "ward_count" : "ward_gauge";
}

/* A new entry for name, or NULL with the warning to write in warn ("" for none). */
static struct entry *add(enum pmetric_kind kind, const char *name, char *warn, size_t size)
{
	const char *problem = pmetric_name_problem(name, kind);
	if (!problem && table.n < PMETRIC_MAX) {
		struct entry *e = &table.v[table.n];
		*e = (struct entry){.len = (uint8_t)strlen(name), .kind = (uint8_t)kind};
		memcpy(e->name, name, e->len + 1);
		table.last = table.n++;
		return e;
	}
	bool overflow;
	if (refused_before(name, &overflow))
		return NULL;
	if (overflow)
		snprintf(warn, size, "%s(\"%.64s%s\"): ignored, as are all calls with a name ward has not seen "
			 "before that it refuses: %d names were refused already",
			 function_of(kind), name, strlen(name) > 64 ? "..." : "", REFUSED_MAX);
	else if (problem)
		snprintf(warn, size, "%s(\"%.64s%s\"): not a metric name ward exports: %s; this call and every later "
			 "one with this name are ignored (see docs/plugin-guide.md, \"Metrics\")",
			 function_of(kind), name, strlen(name) > 64 ? "..." : "", problem);
	else
		snprintf(warn, size, "%s(\"%s\"): a process may have %d metrics and this one has them all; "
			 "this call and every later one with this name are ignored",
			 function_of(kind), name, PMETRIC_MAX);
	return NULL;
}

void pmetrics_update(enum pmetric_kind kind, const char *name, double v, char *warn, size_t size)
{
	warn[0] = '\0';
	if (!name)
		name = "";
	pthread_mutex_lock(&table.lock);
	struct entry *e = lookup(name);
	if (!e)
		e = add(kind, name, warn, size);
	/* A sum that would overflow to infinity is refused like a bad delta: the
	 * host takes only finite counts, and would drop the process's frame. */
	if (e && kind == PMETRIC_COUNTER && !(isfinite(v) && v >= 0 && isfinite(e->value + v))) {
		if (!e->warned)
			snprintf(warn, size, "ward_count(\"%s\", %g): a count only grows: a delta must be a finite "
				 "number >= 0 that keeps the count finite; this call, and later ones like it, are ignored", name, v);
		e->warned = true;
		e = NULL;
	}
	if (e) {
		e->value = kind == PMETRIC_COUNTER ? e->value + v : v;
		e->changed = true;
		atomic_store_explicit(&pmetrics_changed, true, memory_order_relaxed);
	}
	pthread_mutex_unlock(&table.lock);
}

void pmetrics_flush(bool now, pmetrics_send_fn *send, void *arg)
{
	if (!atomic_load_explicit(&pmetrics_changed, memory_order_relaxed))
		return;
	int64_t t = mono_ns();
	char records[PMETRIC_MAX * PMETRIC_RECORD_MAX];
	size_t len = 0;
	pthread_mutex_lock(&table.send_lock);
	pthread_mutex_lock(&table.lock);
	if (!now && t - table.sent_ns < PMETRICS_FLUSH_MS * NS_PER_MS) {
		pthread_mutex_unlock(&table.lock);
		pthread_mutex_unlock(&table.send_lock);
		return;
	}
	atomic_store_explicit(&pmetrics_changed, false, memory_order_relaxed);
	table.sent_ns = t;
	for (int i = 0; i < table.n; i++) {
		struct entry *e = &table.v[i];
		if (!e->changed)
			continue;
		e->changed = false;
		len += pmetric_put(records + len, sizeof(records) - len, e->kind, e->name, e->len, e->value);
	}
	pthread_mutex_unlock(&table.lock);
	/* Sent outside the table's lock: a full channel must not hold up the
	 * plugin's threads calling ward_gauge and ward_count. */
	size_t room = FRAME_MAX - sizeof(struct frame_hdr), at = 0;
	while (at < len) {
		size_t n = 0;
		while (at + n < len) {
			struct pmetric_record r;
			memcpy(&r, records + at + n, sizeof(r));
			if (n + sizeof(r) + r.len > room)
				break;
			n += sizeof(r) + r.len;
		}
		send(arg, records + at, n);
		at += n;
	}
	pthread_mutex_unlock(&table.send_lock);
}
