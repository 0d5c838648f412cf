/*
 * flaky - a worker that crashes now and then (SIGSEGV on `crash_percent`% of
 * its cycles). Run it to watch ward record the signal, keep the last log line
 * and restart the worker with growing delays - the host itself never notices.
 */
#include <ward.h>

#include <signal.h>

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int flaky_init(ward_ctx *ctx, void **state)
{
	(void)ctx;
	/* Every restart is a fresh process, so seed from pid and time: with a
	 * fixed seed each new process would replay exactly the same "luck". */
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	*state = NULL; /* nothing to keep between cycles */
	return 0;
}

static int flaky_cycle(ward_ctx *ctx, void *state)
{
	(void)state;
	long percent = ward_conf_int(ctx, "crash_percent", 20);

	if (rand() % 100 < percent) {
		/* ward_log returns only once the line has reached the host, so
		 * this warning is in the log even though we die right after. */
		ward_log(ctx, WARD_LOG_WARN, "about to crash");

		/* A real crash, not a polite exit. (Writing through a NULL
		 * pointer is undefined behaviour the optimiser may delete, so
		 * the example raises the signal a wild write would.) */
		raise(SIGSEGV);
	}

	ward_log(ctx, WARD_LOG_INFO, "working");
	return WARD_IDLE; /* come back after `interval` */
}

static const struct ward_option flaky_options[] = {
	{"crash_percent", WARD_OPT_INT, "20", 0,
	 "chance, in percent, that a cycle crashes with SIGSEGV (0..100)", NULL},
	{0},
};

/* No shutdown callback: there is nothing to release, and a crashed process
 * would not run it anyway. */
WARD_PLUGIN(.name = "flaky", .version = "1.0.0",
	    .description = "crashes on a random share of its cycles",
	    .init = flaky_init, .cycle = flaky_cycle, .options = flaky_options);
