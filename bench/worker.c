/*
 * worker.c - the benchmark worker for supervisord, runit and s6: the same
 * behaviour as the `stamp` plugin gives a ward worker. Built by bench/run
 * with cc into a temporary directory; not part of the CMake build.
 *
 *   worker MODE ID OUT [LINES]
 *   ./run                       (a symlink to this program, as runit and s6
 *                                start it: the arguments come from ./args)
 *
 * On start it appends "<ID> <CLOCK_MONOTONIC ns>\n" to OUT in one write,
 * then, by MODE:
 *   crash        raise(SIGSEGV)
 *   idle         sleep until killed (SIGTERM ends it: default disposition)
 *   ignore-term  ignore SIGTERM, then sleep until SIGKILLed
 *   lines        write LINES lines of 100 bytes to stdout, then idle
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One payload line: 99 characters and '\n'. bench/compare.sh counts them. */
#define LINE_FMT "benchline %07ld %s\n"

static void idle_forever(void)
{
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	char mode[32] = "", out[512] = "";
	long id = 0, lines = 0;
	if (argc >= 4) {
		snprintf(mode, sizeof(mode), "%s", argv[1]);
		id = atol(argv[2]);
		snprintf(out, sizeof(out), "%s", argv[3]);
		lines = argc > 4 ? atol(argv[4]) : 0;
	} else {
		FILE *f = fopen("args", "r");
		if (!f || fscanf(f, "%31s %ld %511s %ld", mode, &id, out, &lines) < 3) {
			fprintf(stderr, "usage: worker MODE ID OUT [LINES] (or ./args)\n");
			return 2;
		}
		fclose(f);
	}

	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char stamp[64];
	int n = snprintf(stamp, sizeof(stamp), "%ld %lld\n", id, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	int fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (fd >= 0) {
		if (write(fd, stamp, (size_t)n) != n)
			perror("worker: stamp");
		close(fd);
	}

	if (strcmp(mode, "crash") == 0) {
		raise(SIGSEGV);
		return 1;
	}
	if (strcmp(mode, "ignore-term") == 0)
		signal(SIGTERM, SIG_IGN);
	if (strcmp(mode, "lines") == 0) {
		/* "benchline NNNNNNN " is 18 characters; 81 of padding make 99 */
		char pad[82];
		memset(pad, 'x', 81);
		pad[81] = 0;
		for (long i = 0; i < lines; i++)
			printf(LINE_FMT, i, pad);
		fflush(stdout);
	}
	idle_forever();
}
