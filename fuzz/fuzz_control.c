/*
 * fuzz_control.c - libFuzzer target for the control protocol, through the
 * real control socket: LLVMFuzzerInitialize builds a host in this process
 * (configuration loaded from a temporary directory, two workers, the event
 * loop, an in-memory history) and opens its control socket with
 * control_open(). Each input is then sent by a client over a real Unix
 * socket, in chunks, and the host's own loop (loop_run_once) accepts it,
 * reads it, runs it and replies, until the host closes the connection.
 * No code of host/ is changed or copied.
 *
 * The workers never get a process: `start` only asks for one, and the part
 * of the host that would fork (dependency ordering in run.c's main loop) is
 * not run here. `reload` re-reads the unchanged configuration.
 *
 * Beyond sanitizer reports, a request the host does not finish within 2 s
 * (a hang) aborts, and so does a reply that does not start with "ok\n" or
 * "error\n".
 */
#define _GNU_SOURCE
#include "daemon/control.h"
#include "daemon/dependency.h"
#include "daemon/host.h"
#include "daemon/history.h"
#include "common/loop.h"
#include "common/util.h"
#include "daemon/reaper.h"
#include "daemon/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char root[256];
static struct host *host;
static struct timer tick;
static char sock_path[1024];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

/* What run.c does on its flush timer. */
static void flush_history(struct timer *t)
{
	(void)t;
	history_flush(host->history);
}

static void no_op(struct timer *t)
{
	(void)t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	/* Under $TMPDIR: fuzz/run points it into build-fuzz/, so a run that
	 * crashed (and skipped the atexit clean-up) leaves nothing in /tmp. */
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/ward-fuzz-control-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		abort();
	atexit(cleanup);
	char conf[512], plugins[600], path[700];
	snprintf(conf, sizeof(conf), "%s/conf", root);
	snprintf(plugins, sizeof(plugins), "%s/plugins", conf);
	if (mkdir(conf, 0755) < 0 || mkdir(plugins, 0755) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/a.so", plugins);
	put(path, "");
	snprintf(path, sizeof(path), "%s/b.so", plugins);
	put(path, "");
	snprintf(path, sizeof(path), "%s/ward.ini", conf);
	put(path, "[ward]\nautoload = no\n"
		  "[a]\nautostart = no\n"
		  "[b]\nautostart = no\nrequires = a\ninstances = 2\n");

	host = xcalloc(1, sizeof(*host));
	host->pid = getpid();
	if (config_load(conf, &host->cfg) < 0) {
		for (size_t i = 0; i < host->cfg.errors.n; i++)
			fprintf(stderr, "fuzz_control: %s\n", host->cfg.errors.v[i]);
		abort();
	}
	if (mkdir_p(host->cfg.state_dir, 0711) < 0 || mkdir_p(host->cfg.log_dir, 0750) < 0)
		abort();
	host->loop = loop_new();
	if (!host->loop)
		abort();
	host->history = history_open(":memory:", host->cfg.history_keep);
	host->flush_timer.fn = flush_history;
	tick.fn = no_op;
	host->workers = xcalloc(host->cfg.nworkers, sizeof(*host->workers));
	for (size_t i = 0; i < host->cfg.nworkers; i++) {
		struct worker *w = xcalloc(1, sizeof(*w));
		host->workers[host->nworkers++] = w;
		if (worker_init(w, host, &host->cfg.workers[i]) < 0)
			abort();
	}
	dependency_link(host);
	snprintf(sock_path, sizeof(sock_path), "%s/ward.sock", host->cfg.state_dir);
	if (strlen(sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "fuzz_control: %s is too long for a Unix socket: set TMPDIR to a shorter path\n",
			sock_path);
		exit(1);
	}
	if (control_open(host) < 0)
		abort();
	return 0;
}

/* One turn of the host's loop that never sleeps: a timer due now makes
 * loop_run_once return once it has handled whatever is ready. */
static void turn(void)
{
	timer_arm(host->loop, &tick, mono_ns());
	if (loop_run_once(host->loop) < 0)
		abort();
	/* What run.c does on SIGCHLD: a reload's plugin probes are judged once
	 * they are reaped. */
	host_recheck_children(host);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < host->nworkers; i++)
		host->workers[i]->pending_start = ACTIVATION_NONE;
	host->order_dirty = false;

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();

	/* Chunk size from the input itself: requests arrive whole, byte by
	 * byte, or anything between. */
	unsigned sum = 0;
	for (size_t i = 0; i < size; i++)
		sum = sum * 31 + data[i];
	size_t chunk = 1 + sum % 512;

	char reply[8192];
	size_t sent = 0, got = 0;
	bool shut = false, eof = false;
	int64_t deadline = mono_ns() + 2 * NS_PER_SEC;
	while (!eof) {
		if (!shut) {
			size_t n = size - sent < chunk ? size - sent : chunk;
			ssize_t w = n ? send(fd, data + sent, n, MSG_NOSIGNAL) : 0;
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				sent = size; /* the host closed: it has answered or refused */
			if (sent == size) {
				shutdown(fd, SHUT_WR);
				shut = true;
			}
		}
		turn();
		for (;;) {
			char buf[4096];
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0) {
				size_t keep = (size_t)r < sizeof(reply) - got ? (size_t)r : sizeof(reply) - got;
				memcpy(reply + got, buf, keep);
				got += keep;
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EINTR))
				eof = true;
			break;
		}
		if (mono_ns() > deadline) {
			fprintf(stderr, "fuzz_control: the host did not finish a request of %zu bytes within 2 s\n", size);
			abort();
		}
	}
	close(fd);
	/* A one-line request is answered "ok" or "error" and then message lines;
	 * a first line "jobs 1" opens a job session instead (docs/jobs.md), whose
	 * greeting is "ok jobs 1" and whose later replies are that protocol's. */
	static const char session[] = "ok jobs 1\n";
	bool one_line = (got >= 3 && memcmp(reply, "ok\n", 3) == 0) || (got >= 6 && memcmp(reply, "error\n", 6) == 0);
	bool job_session = got >= sizeof(session) - 1 && memcmp(reply, session, sizeof(session) - 1) == 0;
	if (got > 0 && !one_line && !job_session) {
		fprintf(stderr, "fuzz_control: a reply that is neither ok nor error: %.*s\n", (int)got, reply);
		abort();
	}
	/* Let the history batch reach the (in-memory) database, as the host would. */
	history_flush(host->history);
	return 0;
}
