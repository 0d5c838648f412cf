/*
 * pmetric.h - plugin metrics (ward_gauge, ward_count of <ward.h>): the rule a
 * metric's name follows, the records of a FRAME_METRICS frame, and the set of
 * one instance's metrics as the host keeps them. The worker process writes
 * records (worker/pmetrics.c); the host reads them into a set per instance
 * (daemon/channel.c) and exports it (daemon/metrics.c); `ward test` keeps
 * its plugin's set for the report. Shared by every process of ward.
 */
#ifndef WARD_PMETRIC_H
#define WARD_PMETRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pmetric_kind { PMETRIC_GAUGE = 1, PMETRIC_COUNTER = 2 };

#define PMETRIC_NAME_MAX 64 /* bytes of a name, without the ward_plugin_ prefix */
#define PMETRIC_MAX 64      /* metrics one process may have */
#define PMETRIC_PREFIX "ward_plugin_"

/*
 * NULL when name may be a metric of that kind, else why not, as a phrase
 * ("a gauge's name must not end in _total"). The rule is what Prometheus's
 * `promtool check metrics` accepts without a complaint once ward_plugin_
 * is put in front: lower-case letters, digits and _; a counter's name ends
 * in _total and a gauge's does not (so no name is ever both); no _count,
 * _sum or _bucket ending, no type name as a word, no abbreviated or
 * non-base unit as a word ("_ms", "_minutes": use _seconds, _bytes).
 */
const char *pmetric_name_problem(const char *name, enum pmetric_kind kind);
/* (The phrase may be in a buffer the next call reuses: one thread at a time.) */

/* One metric in a FRAME_METRICS payload, followed by its name's len bytes
 * (no NUL). A frame holds whole records only. value: a gauge's last value,
 * or what a counter has summed in the sending process so far. */
struct pmetric_record {
	uint8_t kind; /* enum pmetric_kind */
	uint8_t len;
	uint8_t pad[6];
	double value;
};
#define PMETRIC_RECORD_MAX (sizeof(struct pmetric_record) + PMETRIC_NAME_MAX)

/* Writes one record at buf: the bytes it took, 0 when it does not fit in room. */
size_t pmetric_put(char *buf, size_t room, enum pmetric_kind kind, const char *name, size_t len, double value);

/* One instance's metrics, as the host shows them. */
struct pmetric {
	char name[PMETRIC_NAME_MAX + 1];
	enum pmetric_kind kind;
	double value; /* a gauge's value; the current process's count */
	double base;  /* a counter: what the instance's ended processes counted */
	bool live;    /* reported by the current process */
};

struct pmetric_set {
	struct pmetric *v; /* owned, PMETRIC_MAX once the first record came */
	size_t n;
	bool refused;      /* this process sent a payload that was refused: said once */
};

/* Takes a FRAME_METRICS payload whole: 0, or -1 when it is not one (a bad
 * name, a negative count, more metrics than a process may have: not what
 * the runtime writes), and then none of its records is taken. A counter's
 * figure lower than the last one is ignored. */
int pmetric_set_apply(struct pmetric_set *s, const char *payload, size_t len);
/* A new process of the instance starts: its gauges go (they were the last
 * process's), its counters keep counting on from what they reached. */
void pmetric_set_new_process(struct pmetric_set *s);
/* What the sample says: a gauge's value, a counter's total over the processes. */
double pmetric_value(const struct pmetric *m);
/* A deep copy of from into to (to's old content is not freed). */
void pmetric_set_copy(struct pmetric_set *to, const struct pmetric_set *from);
void pmetric_set_free(struct pmetric_set *s);

/* A sample value as the text format writes it: NaN, +Inf, -Inf, or the
 * shortest decimal that reads back as v. */
void pmetric_format_value(double v, char *buf, size_t size);

#endif
