/*
 * pmetric.c - plugin metrics' naming rule, their FRAME_METRICS records and
 * the host's per-instance set of them (pmetric.h). Pure code: no I/O. Used
 * by the worker process, the host and `ward test`.
 */
#define _GNU_SOURCE
#include "common/pmetric.h"
#include "common/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the naming rule (what promtool's linter checks of a name) ---- */

static bool ends_with(const char *s, size_t len, const char *tail)
{
	size_t n = strlen(tail);
	return len >= n && memcmp(s + len - n, tail, n) == 0;
}

/* The words of a name (between the _) that promtool calls a unit badly. */
static const char *const abbreviated_units[] = {"s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb",
						"m", "h", "d"};
static const char *const base_units[] = {"amperes", "bytes", "celsius", "grams", "joules", "kelvin",
					 "meters", "metres", "seconds", "volts"};
static const struct {
	const char *unit, *base;
} other_units[] = {
	{"minutes", "seconds"}, {"hours", "seconds"}, {"days", "seconds"}, {"weeks", "seconds"},
	{"kelvins", "kelvin"}, {"fahrenheit", "celsius"}, {"rankine", "celsius"}, {"inches", "meters"},
	{"yards", "meters"}, {"miles", "meters"}, {"bits", "bytes"}, {"calories", "joules"},
	{"pounds", "grams"}, {"ounces", "grams"},
};
static const char *const unit_prefixes[] = {"pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo",
					    "kibi", "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi"};
static const char *const type_words[] = {"counter", "gauge", "histogram", "summary"};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static bool word_is(const char *w, size_t len, const char *s)
{
	return strlen(s) == len && memcmp(w, s, len) == 0;
}

/* A unit spelled with a prefix ("milliseconds", "kilobytes"), whose base unit in *base. */
static bool prefixed_unit(const char *w, size_t len, const char **base)
{
	for (size_t p = 0; p < ARRAY_LEN(unit_prefixes); p++) {
		size_t plen = strlen(unit_prefixes[p]);
		if (len <= plen || memcmp(w, unit_prefixes[p], plen) != 0)
			continue;
		for (size_t u = 0; u < ARRAY_LEN(base_units); u++)
			if (word_is(w + plen, len - plen, base_units[u]))
				return *base = base_units[u], true;
		for (size_t u = 0; u < ARRAY_LEN(other_units); u++)
			if (word_is(w + plen, len - plen, other_units[u].unit))
				return *base = other_units[u].base, true;
	}
	return false;
}

/* What is wrong with one word of the name, or NULL. */
static const char *word_problem(const char *w, size_t len)
{
	static char why[128];
	const char *base;
	for (size_t i = 0; i < ARRAY_LEN(abbreviated_units); i++)
		if (word_is(w, len, abbreviated_units[i]))
			return "it has an abbreviated unit as a word (_ms, _s, _kb...): spell out the base unit (_seconds, _bytes)";
	for (size_t i = 0; i < ARRAY_LEN(other_units); i++)
		if (word_is(w, len, other_units[i].unit)) {
			snprintf(why, sizeof(why), "use the base unit %s instead of %s", other_units[i].base, other_units[i].unit);
			return why;
		}
	if (prefixed_unit(w, len, &base)) {
		snprintf(why, sizeof(why), "use the base unit %s instead of %.*s", base, (int)len, w);
		return why;
	}
	for (size_t i = 0; i < ARRAY_LEN(type_words); i++)
		if (word_is(w, len, type_words[i])) {
			snprintf(why, sizeof(why), "it has the metric type \"%s\" as a word", type_words[i]);
			return why;
		}
	return NULL;
}

const char *pmetric_name_problem(const char *name, enum pmetric_kind kind)
{
	size_t len = strnlen(name, PMETRIC_NAME_MAX + 1);
	if (len == 0)
		return "the name is empty";
	if (len > PMETRIC_NAME_MAX)
		return "the name is longer than 64 bytes";
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return "only lower-case letters, digits and _ may be in a name";
	bool total = ends_with(name, len, "_total") || strcmp(name, "total") == 0;
	if (kind == PMETRIC_COUNTER && !total)
		return "a counter's name (ward_count) must end in _total";
	if (kind == PMETRIC_GAUGE && total)
		return "a gauge's name (ward_gauge) must not end in _total: that ending is for counters (ward_count)";
	/* As the exported name ends, with the prefix's _ in front. */
	char full[sizeof(PMETRIC_PREFIX) + PMETRIC_NAME_MAX];
	int flen = snprintf(full, sizeof(full), PMETRIC_PREFIX "%s", name);
	if (ends_with(full, (size_t)flen, "_count") || ends_with(full, (size_t)flen, "_sum") ||
	    ends_with(full, (size_t)flen, "_bucket"))
		return "the endings _count, _sum and _bucket are for histograms and summaries";
	for (const char *w = name; *w;) {
		size_t wlen = strcspn(w, "_");
		const char *why = wlen ? word_problem(w, wlen) : NULL;
		if (why)
			return why;
		w += wlen + (w[wlen] == '_');
	}
	return NULL;
}

/* ---- records ---- */

size_t pmetric_put(char *buf, size_t room, enum pmetric_kind kind, const char *name, size_t len, double value)
{
	struct pmetric_record r = {.kind = (uint8_t)kind, .len = (uint8_t)len, .value = value};
	if (len > PMETRIC_NAME_MAX || room < sizeof(r) + len)
		return 0;
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), name, len);
	return sizeof(r) + len;
}

/* ---- the host's set ---- */

static struct pmetric *find(struct pmetric_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

/* Room for one more: a free place, else that of a counter no process reports any more. */
static struct pmetric *place_for(struct pmetric_set *s)
{
	if (!s->v)
		s->v = xcalloc(PMETRIC_MAX, sizeof(*s->v));
	if (s->n < PMETRIC_MAX)
		return &s->v[s->n++];
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].live)
			return &s->v[i];
	return NULL;
}

/* A record checked as the runtime writes it; its name into name. */
static bool record_valid(const struct pmetric_record *r, const char *text, char *name)
{
	if (r->len == 0 || r->len > PMETRIC_NAME_MAX || (r->kind != PMETRIC_GAUGE && r->kind != PMETRIC_COUNTER))
		return false;
	memcpy(name, text, r->len);
	name[r->len] = '\0';
	if (strlen(name) != r->len || pmetric_name_problem(name, (enum pmetric_kind)r->kind))
		return false;
	return r->kind == PMETRIC_GAUGE || (isfinite(r->value) && r->value >= 0);
}

static int apply_record(struct pmetric_set *s, const struct pmetric_record *r, const char *name)
{
	struct pmetric *m = find(s, name);
	if (m && m->kind != (enum pmetric_kind)r->kind)
		return -1; /* cannot be: the names of the two kinds differ */
	if (!m) {
		m = place_for(s);
		if (!m)
			return -1;
		*m = (struct pmetric){.kind = (enum pmetric_kind)r->kind};
		memcpy(m->name, name, strlen(name) + 1);
	}
	/* A process's count never goes back: an older figure is ignored. */
	if (!(m->kind == PMETRIC_COUNTER && m->live && r->value < m->value))
		m->value = r->value;
	m->live = true;
	return 0;
}

/* Whether the set has room for n more names: slots never used, and those
 * of a past process's metrics that this process has not sent. */
static bool room_for(const struct pmetric_set *s, size_t n)
{
	size_t room = PMETRIC_MAX - s->n;
	for (size_t i = 0; i < s->n; i++)
		room += !s->v[i].live;
	return n <= room;
}

int pmetric_set_apply(struct pmetric_set *s, const char *payload, size_t len)
{
	/* Pass 0 checks every record (and that the new names fit), pass 1
	 * takes them: a payload is taken whole or not at all. */
	size_t new_names = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && !room_for(s, new_names))
			return -1;
		for (size_t at = 0; at < len;) {
			struct pmetric_record r;
			char name[PMETRIC_NAME_MAX + 1];
			if (len - at < sizeof(r))
				return -1;
			memcpy(&r, payload + at, sizeof(r));
			if (len - at - sizeof(r) < r.len || !record_valid(&r, payload + at + sizeof(r), name))
				return -1;
			if (pass == 0 && !find(s, name))
				new_names++; /* a name twice in one payload counts twice: room to spare */
			if (pass == 1 && apply_record(s, &r, name) < 0)
				return -1;
			at += sizeof(r) + r.len;
		}
	}
	return 0;
}

void pmetric_set_new_process(struct pmetric_set *s)
{
	size_t kept = 0;
	for (size_t i = 0; i < s->n; i++) {
		struct pmetric m = s->v[i];
		if (m.kind != PMETRIC_COUNTER)
			continue;
		m.base += m.value;
		m.value = 0;
		m.live = false;
		s->v[kept++] = m;
	}
	s->n = kept;
	s->refused = false;
}

double pmetric_value(const struct pmetric *m)
{
	return m->kind == PMETRIC_COUNTER ? m->base + m->value : m->value;
}

void pmetric_set_copy(struct pmetric_set *to, const struct pmetric_set *from)
{
	*to = (struct pmetric_set){0};
	if (!from->n)
		return;
	to->v = xcalloc(PMETRIC_MAX, sizeof(*to->v));
	memcpy(to->v, from->v, from->n * sizeof(*to->v));
	to->n = from->n;
}

void pmetric_set_free(struct pmetric_set *s)
{
	free(s->v);
	*s = (struct pmetric_set){0};
}

void pmetric_format_value(double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(buf, size, "%.*g", digits, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}
