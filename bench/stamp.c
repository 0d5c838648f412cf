/*
 * stamp.c - benchmark plugin: on its first cycle it appends
 * "<instance> <CLOCK_MONOTONIC ns>\n" to the file named by `out`, then does
 * what `then` says:
 *   idle         (the default) return WARD_IDLE: boot time, idle cost, stop
 *   crash        SIGSEGV: restart latency
 *   ignore-term  never return and never look at ward_stopping(): a worker
 *                that ignores a stop request, so only the stop_timeout
 *                SIGKILL ends it (plugins may not change SIGTERM's
 *                disposition, so this is how a plugin ignores SIGTERM)
 *   lines        print `lines` lines of 100 bytes to stdout, then idle:
 *                log throughput. The runtime makes stdout line-buffered
 *                (a write per line); `block_buffered = yes` gives it a 4 KiB
 *                buffer instead, as a C program writing to a pipe has by
 *                default: bench/worker.c, what the other supervisors run
 *   ward-log     the same lines through ward_log (the runtime channel)
 * bench/worker.c does the same for the other supervisors (bench/compare.sh).
 */
#include <ward.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct stamp {
	int first_done;
};

static int stamp_init(ward_ctx *ctx, void **state)
{
	static struct stamp s; /* one per process: each worker process has its own copy */
	(void)ctx;
	*state = &s;
	return 0;
}

static int stamp_cycle(ward_ctx *ctx, void *state)
{
	struct stamp *s = state;
	if (!s->first_done) {
		s->first_done = 1;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		char line[64];
		int n = snprintf(line, sizeof(line), "%d %lld\n", ward_instance(ctx),
				 (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
		int fd = open(ward_conf(ctx, "out"), O_WRONLY | O_APPEND | O_CREAT, 0644);
		if (fd >= 0) {
			if (write(fd, line, (size_t)n) < 0)
				ward_log(ctx, WARD_LOG_ERROR, "cannot write the stamp");
			close(fd);
		}
		const char *then = ward_conf(ctx, "then");
		if (then && strcmp(then, "crash") == 0)
			raise(SIGSEGV);
		if (then && strcmp(then, "ignore-term") == 0)
			for (;;) {
				struct timespec nap = {0, 100 * 1000000L};
				nanosleep(&nap, NULL);
				ward_heartbeat(ctx); /* not hung, just deaf to the stop */
			}
		if (then && strcmp(then, "lines") == 0) {
			/* the same 100-byte lines as bench/worker.c */
			char pad[82];
			memset(pad, 'x', 81);
			pad[81] = 0;
			if (ward_conf_bool(ctx, "block_buffered", 0))
				setvbuf(stdout, NULL, _IOFBF, 4096); /* nothing was written to it yet */
			long lines = ward_conf_int(ctx, "lines", 0);
			for (long i = 0; i < lines; i++)
				printf("benchline %07ld %s\n", i, pad);
			fflush(stdout);
		}
		if (then && strcmp(then, "ward-log") == 0) {
			char pad[82];
			memset(pad, 'x', 81);
			pad[81] = 0;
			long lines = ward_conf_int(ctx, "lines", 0);
			for (long i = 0; i < lines; i++)
				ward_log(ctx, WARD_LOG_INFO, "benchline %07ld %s", i, pad);
		}
	}
	return WARD_IDLE;
}

WARD_PLUGIN(.name = "stamp", .version = "1.0", .init = stamp_init, .cycle = stamp_cycle);
