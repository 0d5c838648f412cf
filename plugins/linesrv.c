/*
 * linesrv - an on-demand worker serving a tiny line protocol on the sockets
 * ward holds for it (`listen`). Configured with `autostart = no`, it is not
 * running until a client connects: ward owns the socket from boot, the first
 * connection starts this worker, and the client is answered as soon as init
 * returns. After `idle_exit` without clients it finishes (WARD_DONE) and ward
 * waits for the next connection to start it again.
 *
 * Protocol, one command per line: PING -> PONG, TIME -> the time (UTC),
 * ECHO text -> text, QUIT -> closes; anything else -> ERR unknown command.
 *
 * Try it (the socket path comes from conf.d/10-workers.ini):
 *     printf 'PING\nTIME\nQUIT\n' | nc -U state/linesrv.sock
 */
#include <ward.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct linesrv {
	uint64_t idle_exit_ms;
	time_t last_client;
};

static int linesrv_init(ward_ctx *ctx, void **state)
{
	if (ward_listen_count(ctx) == 0) {
		ward_log(ctx, WARD_LOG_ERROR, "no socket to serve: set `listen` for this worker");
		return -1;
	}
	struct linesrv *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->idle_exit_ms = ward_conf_ms(ctx, "idle_exit", 30000);
	s->last_client = time(NULL);
	*state = s;
	return 0;
}

/* Answers one command; returns 0 to keep the connection, -1 to close it. */
static int answer(int c, const char *cmd)
{
	char reply[512];
	if (strcmp(cmd, "PING") == 0) {
		snprintf(reply, sizeof(reply), "PONG\n");
	} else if (strcmp(cmd, "TIME") == 0) {
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(reply, sizeof(reply), "%Y-%m-%dT%H:%M:%SZ\n", &tm);
	} else if (strncmp(cmd, "ECHO ", 5) == 0) {
		snprintf(reply, sizeof(reply), "%s\n", cmd + 5);
	} else if (strcmp(cmd, "QUIT") == 0) {
		return -1;
	} else {
		snprintf(reply, sizeof(reply), "ERR unknown command\n");
	}
	return write(c, reply, strlen(reply)) < 0 ? -1 : 0;
}

/* Serves one client until it quits, goes quiet for 5 s, or ward asks us to stop. */
static void serve(ward_ctx *ctx, int c)
{
	char line[256];
	size_t n = 0;
	struct pollfd p = {.fd = c, .events = POLLIN};
	while (!ward_stopping(ctx) && poll(&p, 1, 5000) > 0) {
		ssize_t r = read(c, line + n, 1);
		if (r <= 0)
			break;
		if (line[n] == '\r')
			continue;
		if (line[n] != '\n' && n < sizeof(line) - 2) {
			n++;
			continue;
		}
		line[n] = '\0';
		n = 0;
		ward_heartbeat(ctx); /* a long conversation is progress, not a hang */
		if (answer(c, line) < 0)
			break;
	}
	close(c);
}

static int linesrv_cycle(ward_ctx *ctx, void *state)
{
	struct linesrv *s = state;
	struct pollfd p = {.fd = ward_listen_fd(ctx, 0), .events = POLLIN};
	/* Wait for a client at most 200 ms, so a stop request is noticed soon. */
	if (poll(&p, 1, 200) > 0) {
		int c = accept(p.fd, NULL, NULL);
		if (c >= 0) {
			serve(ctx, c);
			s->last_client = time(NULL);
		}
	}
	if ((uint64_t)(time(NULL) - s->last_client) * 1000 >= s->idle_exit_ms) {
		ward_log(ctx, WARD_LOG_INFO, "no client for a while: finishing until the next connection");
		return WARD_DONE;
	}
	return WARD_OK;
}

static void linesrv_shutdown(ward_ctx *ctx, void *state)
{
	(void)ctx;
	free(state);
}

static const struct ward_option linesrv_options[] = {
	{"idle_exit", WARD_OPT_DURATION, "30s", 0, "finish after this long without a client", NULL},
	{0},
};

WARD_PLUGIN(.name = "linesrv", .version = "1.0.0",
	    .description = "an on-demand line-protocol server (PING, TIME, ECHO, QUIT)",
	    .init = linesrv_init, .cycle = linesrv_cycle, .shutdown = linesrv_shutdown,
	    .options = linesrv_options);
