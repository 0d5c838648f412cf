/*
 * probe.c - loads a plugin in a forked child with loader.c and sends the
 * verdict back over a pipe. The parent never maps plugin code.
 */
#define _GNU_SOURCE
#include "probe.h"
#include "child.h"
#include "loader.h"
#include "options.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
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
	FILE *out = fdopen(fd, "w");
	if (!out)
		_exit(1);
	if (loader_open(path, &p, &r.why) == 0) {
		r.ok = true;
		copy_str(r.name, sizeof(r.name), p.name);
		copy_str(r.version, sizeof(r.version), p.version);
		copy_str(r.description, sizeof(r.description), p.description);
	}
	fwrite(&r, sizeof(r), 1, out);
	if (r.ok)
		options_write(p.options, out);
	_exit(fclose(out) == 0 ? 0 : 1);
}

int probe_plugin(const char *path, uint64_t timeout_ms, struct probe_result *out, struct option_table *options)
{
	*out = (struct probe_result){0};
	if (options)
		*options = (struct option_table){0};
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
	char *text;
	size_t got;
	read_until_eof(p[0], mono_ns() + (int64_t)timeout_ms * NS_PER_MS, &text, &got);
	close(p[0]);
	kill(pid, SIGKILL); /* harmless if it already exited; ends a hung constructor */
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got >= sizeof(*out)) {
		memcpy(out, text, sizeof(*out));
		if (out->ok && options)
			options_read(text + sizeof(*out), options);
		free(text);
		return 0;
	}
	free(text);
	out->ok = false;
	out->why.reason = REASON_LOAD_FAILED;
	char sig[32];
	if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		snprintf(out->why.message, sizeof(out->why.message),
			 "killed by %s while loading the plugin (a constructor crashed)",
			 signal_name(WTERMSIG(status), sig, sizeof(sig)));
	else if (WIFSIGNALED(status))
		snprintf(out->why.message, sizeof(out->why.message),
			 "loading did not finish within %llu ms (a constructor hangs?)", (unsigned long long)timeout_ms);
	else
		snprintf(out->why.message, sizeof(out->why.message), "the probe process exited with %d while loading",
			 WEXITSTATUS(status));
	return 0;
}

int probe_describe(const char *path, uint64_t timeout_ms, FILE *out)
{
	struct probe_result r;
	struct option_table t;
	if (probe_plugin(path, timeout_ms, &r, &t) < 0) {
		fprintf(stderr, "ward: unable to probe %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!r.ok) {
		fprintf(stderr, "ward: %s: %s: %s\n", path, reason_name(r.why.reason), r.why.message);
		return -1;
	}
	fprintf(out, "%s %s (ward plugin ABI %d)\n", r.name[0] ? r.name : "(no name)", r.version[0] ? r.version : "(no version)",
		WARD_ABI_VERSION);
	if (r.description[0])
		fprintf(out, "%s\n", r.description);
	options_print(&t, out);
	options_free(&t);
	return 0;
}
