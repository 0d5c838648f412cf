/*
 * stamp.c - benchmark plugin: on its first cycle it appends
 * "<instance> <CLOCK_MONOTONIC ns>\n" to the file named by `out`, then does
 * what `then` says: crash (SIGSEGV, to measure restart latency) or idle
 * (to measure boot time and idle cost).
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
	}
	return WARD_IDLE;
}

WARD_PLUGIN(.name = "stamp", .version = "1.0", .init = stamp_init, .cycle = stamp_cycle);
