/*
 * ticker - the smallest useful periodic worker: every `interval` it appends
 * "<message> N at <time>" to ticks.txt in its state directory and logs it.
 * Shows per-process state (init/shutdown), plugin options and WARD_IDLE.
 */
#include <ward.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * Everything the worker remembers lives in this struct, allocated in init and
 * handed back to us by the runtime on every cycle. No globals: a plugin's
 * state then has an obvious owner and lifetime, and the same code would still
 * be correct if the runtime ever ran it differently.
 */
struct ticker {
	const char *message; /* from the `message` key; owned by the runtime */
	char *path;          /* <state_dir>/ticks.txt */
	unsigned long count; /* ticks written by this process */
};

static int ticker_init(ward_ctx *ctx, void **state)
{
	struct ticker *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		ward_log(ctx, WARD_LOG_ERROR, "out of memory");
		return -1; /* init failed: the host records init-failed and applies the restart policy */
	}

	/* Because we declare `message` in .options below, ward_conf() already
	 * falls back to its default "tick"; the ?: is only belt and braces. The
	 * returned string lives as long as the process, so we keep the pointer. */
	const char *msg = ward_conf(ctx, "message");
	t->message = msg ? msg : "tick";

	/* The state directory is private to this worker instance and survives
	 * restarts, so the file keeps growing across crashes and reloads. */
	const char *dir = ward_state_dir(ctx);
	size_t len = strlen(dir) + sizeof("/ticks.txt");
	t->path = malloc(len);
	if (t->path == NULL) {
		ward_log(ctx, WARD_LOG_ERROR, "out of memory");
		free(t);
		return -1;
	}
	snprintf(t->path, len, "%s/ticks.txt", dir);

	*state = t;
	ward_log(ctx, WARD_LOG_INFO, "ticking into %s", t->path);
	return 0;
}

static int ticker_cycle(ward_ctx *ctx, void *state)
{
	struct ticker *t = state;
	char when[64];
	char line[512];
	struct tm tm;
	time_t now = time(NULL);

	/* ISO 8601 in UTC, e.g. 2024-05-01T12:00:00Z. */
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

	t->count++;
	int n = snprintf(line, sizeof(line), "%s %lu at %s\n", t->message, t->count, when);
	if (n < 0)
		return WARD_ERROR;
	if ((size_t)n >= sizeof(line)) { /* very long message: keep the newline */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}

	/*
	 * Open with O_APPEND on every cycle rather than keeping a descriptor:
	 * a cycle happens at most once per `interval`, so the cost is nothing,
	 * and if someone deletes or rotates ticks.txt the next tick simply
	 * recreates it. O_APPEND makes each write land at the end of the file
	 * atomically, even if several instances shared the file.
	 */
	int fd = open(t->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		ward_log(ctx, WARD_LOG_ERROR, "cannot open %s: %s", t->path, strerror(errno));
		/* WARD_ERROR ends this process (shutdown still runs); the host
		 * restarts it according to `restart`, with growing delays. */
		return WARD_ERROR;
	}
	ssize_t w = write(fd, line, (size_t)n);
	int saved = errno;
	close(fd);
	if (w != n) {
		ward_log(ctx, WARD_LOG_ERROR, "cannot write %s: %s", t->path,
			 w < 0 ? strerror(saved) : "short write");
		return WARD_ERROR;
	}

	/* ward_log adds timestamp, instance, pid and level; drop our newline. */
	ward_log(ctx, WARD_LOG_INFO, "%.*s", n - 1, line);

	/* Nothing more to do now: the runtime waits `interval` (a host key,
	 * default 1s) before the next cycle, and wakes early to stop. */
	return WARD_IDLE;
}

static void ticker_shutdown(ward_ctx *ctx, void *state)
{
	struct ticker *t = state;
	/* Runs after a stop request, DONE or ERROR - never after a crash, so
	 * never rely on it for anything that must survive one. */
	ward_log(ctx, WARD_LOG_INFO, "stopping after %lu ticks", t->count);
	free(t->path);
	free(t);
}

/* Declaring options lets `ward check` reject typos such as `mesage = hi`
 * and gives ward_conf() a default. The table ends with an all-zero entry. */
static const struct ward_option ticker_options[] = {
	{"message", WARD_OPT_STRING, "tick", 0, "text written on each tick", NULL},
	{0},
};

WARD_PLUGIN(.name = "ticker", .version = "1.0.0",
	    .description = "appends a timestamped line to ticks.txt every interval",
	    .init = ticker_init, .cycle = ticker_cycle, .shutdown = ticker_shutdown,
	    .options = ticker_options);
