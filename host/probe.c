/*
 * probe.c - loads a plugin in a forked child with loader.c and sends the
 * verdict back over a pipe. The parent never maps plugin code.
 */
#define _GNU_SOURCE
#include "probe.h"
#include "child.h"
#include "loader.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void run_probe(const char *path, int fd)
{
	child_reset_signals(); /* load it exactly as a worker would: a crash is a crash */
	int null = open("/dev/null", O_WRONLY);
	if (null >= 0) { /* constructors' chatter is not the report */
		dup2(null, 1);
		dup2(null, 2);
	}
	struct probe_result r = {0};
	struct ward_plugin p;
	if (loader_open(path, &p, &r.why) == 0) {
		r.ok = true;
		copy_str(r.name, sizeof(r.name), p.name);
		copy_str(r.version, sizeof(r.version), p.version);
	}
	if (write_all(fd, &r, sizeof(r)) < 0)
		_exit(1);
	_exit(0);
}

int probe_plugin(const char *path, uint64_t timeout_ms, struct probe_result *out)
{
	*out = (struct probe_result){0};
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		run_probe(path, p[1]);
	}
	close(p[1]);
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	int ready;
	do
		ready = poll(&pfd, 1, (int)timeout_ms);
	while (ready < 0 && errno == EINTR);
	size_t got = 0;
	if (ready > 0) {
		ssize_t n;
		while (got < sizeof(*out) && (n = read(p[0], (char *)out + got, sizeof(*out) - got)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			got += (size_t)n;
		}
	} else {
		kill(pid, SIGKILL);
	}
	close(p[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof(*out))
		return 0;
	out->ok = false;
	out->why.reason = REASON_LOAD_FAILED;
	char sig[32];
	if (ready == 0)
		snprintf(out->why.message, sizeof(out->why.message),
			 "loading did not finish within %llu ms (a constructor hangs?)", (unsigned long long)timeout_ms);
	else if (WIFSIGNALED(status))
		snprintf(out->why.message, sizeof(out->why.message),
			 "killed by %s while loading the plugin (a constructor crashed)",
			 signal_name(WTERMSIG(status), sig, sizeof(sig)));
	else
		snprintf(out->why.message, sizeof(out->why.message), "the probe process exited with %d while loading",
			 WEXITSTATUS(status));
	return 0;
}
