/*
 * ward.h - the whole contract between a ward plugin and the process that runs it.
 *
 * A plugin is a shared object that includes this header and nothing else of
 * ward's. It links against no ward library: the ward_* functions below are
 * provided by the ward process that loads the plugin (the host's worker
 * process, `ward test`, or the test harness), all of which run the same
 * runtime.
 *
 *     #include <ward.h>
 *     static int  demo_init(ward_ctx *ctx, void **state);  // 0 = ready, <0 = failed
 *     static int  demo_cycle(ward_ctx *ctx, void *state);  // a ward result
 *     static void demo_shutdown(ward_ctx *ctx, void *state);
 *     WARD_PLUGIN(.name = "demo", .version = "1.0.0",
 *                 .init = demo_init, .cycle = demo_cycle, .shutdown = demo_shutdown);
 *
 * ABI rules (version 1):
 *   - The loader reads abi_version and struct_size before anything else and
 *     refuses a plugin built for another ABI version, naming both versions.
 *   - Fields are only ever appended to struct ward_plugin. A plugin built with
 *     an older header (smaller struct_size) keeps loading; the missing fields
 *     read as zero. A plugin built with a newer header (larger struct_size)
 *     is refused with a message asking to rebuild it against this ward.
 *   - Existing fields, the result codes, log levels and function signatures
 *     never change within an ABI version. A change to any of them is a new
 *     WARD_ABI_VERSION.
 *   - ward_ctx is opaque: plugins see functions, never fields.
 *
 * Guarantees to plugin code:
 *   - init runs once per process, before any cycle.
 *   - cycle runs on the process's main thread.
 *   - shutdown runs once after a successful init when the process ends
 *     without crashing: after DONE, after ERROR, or after a stop request.
 *   - A running cycle is never interrupted by a stop request. A long cycle
 *     polls ward_stopping() or waits with ward_sleep(), and calls
 *     ward_heartbeat() so the watchdog knows it is making progress.
 *   - Threads and child processes the plugin creates belong to the worker
 *     and die with it. Plugins must not change the disposition of SIGTERM
 *     (it is how a stop is requested) nor block SIGRTMAX-1 (it is how the
 *     runtime learns that the host died).
 */
#ifndef WARD_H
#define WARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. Stored in every plugin by WARD_PLUGIN. */
#define WARD_ABI_VERSION 1

/* What a cycle returns. Any negative value counts as WARD_ERROR. */
enum ward_result {
	WARD_ERROR = -1, /* failed: shutdown runs, then the process exits with failure */
	WARD_OK    = 0,  /* did work: cycle again at once */
	WARD_IDLE  = 1,  /* nothing to do: cycle again after `interval`, or sooner when stopping */
	WARD_DONE  = 2,  /* finished for good: shutdown runs, then the process exits 0 */
};

/* Levels for ward_log(). */
enum ward_log_level {
	WARD_LOG_ERROR = 0,
	WARD_LOG_WARN  = 1,
	WARD_LOG_INFO  = 2,
	WARD_LOG_DEBUG = 3,
};

/* The runtime's per-process context. Opaque; valid from init to the end of shutdown. */
typedef struct ward_ctx ward_ctx;

/* One job being processed. Opaque; valid only during the .job call it is handed to. */
typedef struct ward_job ward_job;

/* Types a plugin can declare for its own configuration keys. */
enum ward_option_type {
	WARD_OPT_STRING = 0,
	WARD_OPT_INT,
	WARD_OPT_BOOL,
	WARD_OPT_DURATION, /* "250ms", "5s", "2m", "1h"; a bare number is seconds */
	WARD_OPT_SIZE,     /* "512K", "10M", "1G"; a bare number is bytes */
	WARD_OPT_ENUM,     /* one of `choices`, a '|'-separated list */
};

/*
 * One plugin configuration key. A plugin's .options is an array of these,
 * terminated by an entry whose name is NULL. When a plugin declares options,
 * `ward check` refuses keys it does not declare, values of the wrong type and
 * missing required keys, and ward_conf*() fall back to `default_value`.
 */
struct ward_option {
	const char *name;
	enum ward_option_type type;
	const char *default_value; /* as it would be written in the .ini, or NULL */
	int required;              /* nonzero: the worker's section must set it */
	const char *help;          /* one line, shown by `ward check` and docs tools */
	const char *choices;       /* WARD_OPT_ENUM only: "fast|safe|off" */
};

/*
 * The descriptor every plugin exports under the symbol name `ward_plugin`.
 * Define it with WARD_PLUGIN(...), which fills abi_version and struct_size.
 * New fields are only ever added at the end.
 */
struct ward_plugin {
	uint32_t abi_version; /* WARD_ABI_VERSION of the header the plugin was built with */
	uint32_t struct_size; /* sizeof(struct ward_plugin) in that header */
	const char *name;     /* short name, shown in logs and `ward check` */
	const char *version;  /* the plugin's own version string */
	const char *description;
	/* Prepare the worker. Set *state to the plugin's own per-process state
	 * (handed back to cycle and shutdown). Return 0 when ready, <0 on failure.
	 * May be NULL when there is nothing to prepare. */
	int (*init)(ward_ctx *ctx, void **state);
	/* Do one unit of work and return a ward_result. Required. */
	int (*cycle)(ward_ctx *ctx, void *state);
	/* Release what init acquired. May be NULL. */
	void (*shutdown)(ward_ctx *ctx, void *state);
	/* The plugin's own keys, terminated by an entry with name == NULL; may be NULL. */
	const struct ward_option *options;
	/* Added within ABI 1 (after options). Process one job of the worker's
	 * queue (see "Jobs" below). When set, cycle may be NULL; when both are
	 * set, a job that arrives is handed to job between cycles, and an idle
	 * wait ends early for it. Return WARD_OK when the job is done, a
	 * negative value when it failed (it is retried as the worker's
	 * job_attempts and job_retry_delay say); any other value is a failure
	 * with the message "returned N". The watchdog covers a running job as
	 * it covers a cycle. */
	int (*job)(ward_ctx *ctx, void *state, struct ward_job *job);
};

#if defined(__GNUC__)
#define WARD_EXPORT __attribute__((visibility("default")))
#define WARD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WARD_EXPORT
#define WARD_PRINTF(f, a)
#endif

/*
 * Defines the plugin's descriptor. Takes designated initializers for the
 * fields above; abi_version and struct_size are filled in for you.
 */
#define WARD_PLUGIN(...)                                                       \
	WARD_EXPORT extern const struct ward_plugin ward_plugin;               \
	WARD_EXPORT const struct ward_plugin ward_plugin = {                   \
		.abi_version = WARD_ABI_VERSION,                               \
		.struct_size = (uint32_t)sizeof(struct ward_plugin),           \
		__VA_ARGS__                                                    \
	}

/* ---- Runtime functions, provided by the process that loads the plugin ---- */

/* The worker's value for one of the plugin's keys, or NULL when unset and the
 * plugin declared no default. The string lives as long as the process. */
const char *ward_conf(ward_ctx *ctx, const char *key);
/* Typed reads; `dflt` when the key is unset or does not parse. */
long ward_conf_int(ward_ctx *ctx, const char *key, long dflt);
int ward_conf_bool(ward_ctx *ctx, const char *key, int dflt);
uint64_t ward_conf_ms(ward_ctx *ctx, const char *key, uint64_t dflt);

/* One printf-style line into the worker's log, with timestamp, instance, pid
 * and level. The line has reached the host when this returns, so it is never
 * lost when the process crashes right after. Lines longer than about 4000
 * bytes are truncated. Safe to call from any thread of the plugin. */
void ward_log(ward_ctx *ctx, int level, const char *fmt, ...) WARD_PRINTF(3, 4);

/* "Still making progress": call inside a cycle that takes longer than the
 * worker's watchdog. Costs no system call. */
void ward_heartbeat(ward_ctx *ctx);

/* Nonzero once a stop has been requested. Costs no system call. */
int ward_stopping(ward_ctx *ctx);

/* Sleep for `ms` milliseconds. Returns 0 after the full sleep, nonzero as soon
 * as a stop is requested (within a few milliseconds). Counts as a heartbeat. */
int ward_sleep(ward_ctx *ctx, uint64_t ms);

/* The worker's name (its section in the configuration) and this process's
 * instance number, 0 .. instances-1. */
const char *ward_name(ward_ctx *ctx);
int ward_instance(ward_ctx *ctx);

/* A directory private to this worker (<state_dir>/workers/<name>, shared by
 * its instances: put ward_instance() in file names) that survives restarts.
 * It is also the working directory unless `workdir` is set. */
const char *ward_state_dir(ward_ctx *ctx);

/* The listening sockets the host holds for this worker (`listen` key), in
 * configuration order. ward_listen_fd returns -1 for an index out of range. */
int ward_listen_count(ward_ctx *ctx);
int ward_listen_fd(ward_ctx *ctx, int i);

/* ---- Added within ABI 1 (a ward that has them loads plugins calling them) ---- */

/*
 * The plugin's own metrics, exported by `ward metrics` and GET /metrics as
 * ward_plugin_<name>{worker="...",instance="N"}. ward_gauge sets a value
 * (queue depth, temperature: any double, NaN and +-Inf included);
 * ward_count adds delta, a finite number >= 0, to a count that only grows
 * (ward_count(ctx, "errors_total", 0) in init shows the count at 0 before
 * the first error). Neither makes a system call: the runtime sends what
 * changed to the host when a cycle ends, at most every 100 ms while cycles
 * run back to back, and when the process ends cleanly; a crash loses at
 * most the last 100 ms. Counts carry on across restarts of the instance;
 * gauges start again with each process. Safe to call from any thread.
 *
 * A name is lower-case letters, digits and _, at most 64 bytes; a count's
 * name ends in _total and a gauge's does not; no _count, _sum or _bucket
 * ending; units spelled out and in base units (_seconds, _bytes; not _ms,
 * _kb, _minutes); at most 64 metrics per process. A call that breaks
 * these rules is ignored, with one warning in the worker's log per name.
 */
void ward_gauge(ward_ctx *ctx, const char *name, double value);
void ward_count(ward_ctx *ctx, const char *name, double delta);

/* ---- Added within ABI 1: jobs and the process's past ----
 *
 * Jobs are durable work queued through the host (`ward enqueue`, the control
 * socket, or libward-client) and handed, one at a time per process, to the
 * .job of a worker whose `queue` they are in. A job is delivered at least
 * once: when the process holding it ends for any reason, the attempt fails
 * with that process's exit reason and the job is queued again, so .job may
 * see the same job more than once. Use ward_job_attempt() and ward_job_key()
 * to make processing idempotent.
 */

/* The payload (up to 1 MiB; *len set, len may be NULL). Valid during the .job call. */
const void *ward_job_payload(const ward_job *job, size_t *len);
/* The job's id, as `ward enqueue` printed it. */
int64_t ward_job_id(const ward_job *job);
/* 1 for the first attempt, 2 for the first retry, ... */
int ward_job_attempt(const ward_job *job);
/* The key the producer gave, or NULL. */
const char *ward_job_key(const ward_job *job);
/* Sets the job's result (up to 1 MiB, copied), handed to whoever waits for
 * the job once .job returns WARD_OK. A later call replaces it. 0, or -1
 * with errno (EMSGSIZE past 1 MiB). */
int ward_job_result(ward_ctx *ctx, ward_job *job, const void *data, size_t len);

/* In init: how the previous process of this instance ended, worded as
 * `ward status` words it ("signal SIGSEGV: in a cycle"), or NULL when this
 * is the instance's first process. Valid until the process ends. */
const char *ward_last_exit(ward_ctx *ctx);
/* How many times this instance was restarted since its worker was last
 * started (`ward start`, `ward restart` and a reload that changed it reset
 * it to 0). */
int ward_restarts(ward_ctx *ctx);
/* After a cycle returns WARD_IDLE, the next cycle also starts as soon as fd
 * is readable, not only after `interval`. Several fds may be watched, for
 * the rest of the process's life (up to 64); one the plugin closes is
 * dropped. Readable stays readable: drain it in the cycle. A plugin without
 * .cycle waits for jobs only. 0, or -1 with errno (EBADF for a descriptor
 * that is not open, EMFILE past 64). */
int ward_watch_fd(ward_ctx *ctx, int fd);

#ifdef __cplusplus
}
#endif

#endif /* WARD_H */
