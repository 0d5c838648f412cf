/*
 * proto.h - everything a worker process and the host share, apart from the
 * SDK header: the frames a worker writes on its runtime channel, and the
 * progress slot it updates in shared memory. Both sides include this file;
 * nothing else crosses the fork.
 */
#ifndef WARD_PROTO_H
#define WARD_PROTO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The runtime channel carries frames, each one datagram written with one
 * write() of at most FRAME_MAX bytes, so frames from several plugin threads
 * never interleave and a frame is in the kernel (and so reaches the host) the
 * moment write() returns, even if the process crashes right after.
 */
enum frame_type {
	FRAME_LOG = 1,   /* level + text: a ward_log line */
	FRAME_READY = 2, /* init returned 0 */
	FRAME_END = 3,   /* struct frame_end + text: why the process is about to exit */
	/* Only under `ward test` and the harness, which ask for a report: */
	FRAME_PHASE = 4, /* struct frame_timing (what = enum phase) + text */
	FRAME_CYCLE = 5, /* struct frame_timing (what = the cycle's result) */
	/* The plugin's own metrics that changed (ward_gauge, ward_count): struct
	 * pmetric_record + name, repeated (common/pmetric.h). Sent at most every
	 * 100 ms while cycles run, and when a cycle ends in anything but WARD_OK. */
	FRAME_METRICS = 6,
	/* The job the host handed over ended: struct frame_job_end + message
	 * text. The result travels inline after the message when it fits in the
	 * frame, else in a sealed memfd passed with SCM_RIGHTS alongside. */
	FRAME_JOB_END = 7,
	FRAME_TYPE_LAST = FRAME_JOB_END,
};

/*
 * Jobs travel the other way on the same channel: the host sends one datagram
 * to the process's runtime socket (which is connected to the host's, so it
 * receives from nobody else): struct frame_hdr (type FRAME_JOB) + struct
 * frame_job + key + payload. A payload that does not fit in
 * FRAME_JOB_INLINE_MAX goes in a sealed memfd passed with SCM_RIGHTS
 * (frame_job.in_memfd). Before sending, the host sets slot.job_pending, so
 * the runtime looks for a job between cycles without a system call.
 */
#define FRAME_JOB 64
#define FRAME_JOB_INLINE_MAX (60 * 1024)
/* Payloads and results: up to 1 MiB inclusive (= jobstore.h's JOB_DATA_MAX). */
#define FRAME_JOB_DATA_MAX (1024 * 1024)
#define FRAME_JOB_KEY_MAX 255

struct frame_job {
	int64_t id;
	int32_t attempt;
	uint32_t key_len;     /* bytes of key right after this struct (no NUL) */
	uint32_t payload_len; /* bytes of payload after the key, or in the memfd */
	uint32_t in_memfd;    /* 1: the payload is in the passed descriptor */
};

enum job_end_outcome { JOB_END_DONE = 0, JOB_END_FAILED = 1 };

struct frame_job_end {
	int64_t id;
	int32_t outcome;     /* enum job_end_outcome */
	int32_t ret;         /* what .job returned */
	uint32_t message_len; /* bytes of message after this struct: why it failed, or 0 */
	uint32_t result_len;  /* bytes of result, after the message or in the memfd */
	uint32_t in_memfd;    /* 1: the result is in the passed descriptor */
	uint32_t pad;
};

struct frame_timing {
	int32_t what;
	int32_t pad;
	int64_t ns;
};

/* What `ward test` asks of the runtime on top of a normal run. */
struct test_request {
	uint64_t max_cycles; /* stop after this many cycles; 0: no limit */
	bool report;         /* send FRAME_PHASE and FRAME_CYCLE */
	uint32_t self_stop_ms; /* after max_cycles: 0, wait for the host's SIGTERM; else no host
				* will send one (in-process): send it yourself, wait this long */
};
/* How `ward test` reports a process the stop handler never reached. */
#define TEST_SIGTERM_UNHEARD "did not stop on SIGTERM: is SIGTERM blocked or ignored?"

struct frame_hdr {
	uint16_t len;  /* payload bytes after this header */
	uint8_t type;  /* enum frame_type */
	uint8_t level; /* FRAME_LOG: a WARD_LOG_* level */
	int32_t pad;   /* 0 (the host knows the sender from its socket) */
	int64_t at_ms; /* wall clock when the frame was written */
};

struct frame_end {
	int32_t reason; /* enum reason */
	int32_t code;   /* exit code the process will use, or init's return value */
};

/* Splits the next frame off data: returns the bytes it takes (header and
 * payload), 0 when data holds only part of it, -1 when data is not a frame. */
static inline long frame_next(const char *data, size_t len, struct frame_hdr *hdr, const char **payload)
{
	if (len < sizeof(*hdr))
		return 0;
	__builtin_memcpy(hdr, data, sizeof(*hdr));
	if (hdr->len > 4096 - sizeof(*hdr) || hdr->type < FRAME_LOG || hdr->type > FRAME_TYPE_LAST)
		return -1;
	if (len < sizeof(*hdr) + hdr->len)
		return 0;
	*payload = data + sizeof(*hdr);
	return (long)(sizeof(*hdr) + hdr->len);
}

#define FRAME_MAX 4096 /* the largest frame: one datagram, one write */
#define FRAME_TEXT_MAX (FRAME_MAX - (int)sizeof(struct frame_hdr) - (int)sizeof(struct frame_end))

/* Where a worker process is in its life; the host reads it to explain a death
 * ("crashed while loading" is not the same story as "crashed in a cycle"). */
enum phase {
	PHASE_SETUP = 0, /* forked, preparing the process; no plugin code yet */
	PHASE_LOAD,      /* dlopen and ABI checks: plugin constructors run here */
	PHASE_INIT,
	PHASE_CYCLE,     /* inside the plugin's cycle */
	PHASE_IDLE,      /* between cycles, waiting out `interval` */
	PHASE_SHUTDOWN,
	PHASE_JOB,       /* inside the plugin's .job: watched like a cycle */
};

/*
 * One per worker instance, in memory shared with the host. The worker only
 * stores to it (no system call per cycle); the host only reads it, at its own
 * deadlines, so a slot is how the watchdog sees progress and how status sees
 * cycle counts. Cache-line sized so instances never share a line.
 */
struct slot {
	_Atomic uint64_t cycles;   /* cycles completed */
	_Atomic uint64_t beats;    /* ward_heartbeat() calls and ward_sleep() entries/exits */
	_Atomic uint32_t phase;    /* enum phase */
	_Atomic uint32_t sleeping; /* nonzero inside ward_sleep(): waiting is not hanging */
	_Atomic int64_t init_ns;   /* time spent in init, once it returned */
	_Atomic int64_t last_cycle_ns; /* duration of the last timed cycle (see runtime.c) */
	_Atomic int64_t last_beat_ns;  /* CLOCK_MONOTONIC of the last ward_heartbeat/ward_sleep */
	_Atomic uint32_t job_pending;  /* set by the host before it sends a job (the only field it writes), cleared by the runtime as it takes it */
	uint8_t pad[12];
} __attribute__((aligned(64)));

#endif
