/*
 * client.c - connects to <state_dir>/ward.sock, sends one request and reads
 * the reply, all under one deadline, so a CLI command can never hang on a
 * host that does not answer. Runs in the CLI process.
 */
#define _GNU_SOURCE
#include "cli/client.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS 30000

static enum client_result explain_connect(const char *path, int err)
{
	if (err == ENOENT || err == ECONNREFUSED)
		return CLIENT_NO_HOST;
	if (err == EACCES || err == EPERM) {
		struct stat st;
		struct passwd *pw = stat(path, &st) == 0 ? getpwuid(st.st_uid) : NULL;
		fprintf(stderr, "ward: permission denied on %s: only %s (the host's user) and root may control this host\n",
			path, pw ? pw->pw_name : "its owner");
		return CLIENT_FAILED;
	}
	fprintf(stderr, "ward: unable to reach the host at %s: %s\n", path, strerror(err));
	return CLIENT_FAILED;
}

static enum client_result print_reply(char *reply, bool quiet)
{
	char *nl = strchr(reply, '\n');
	if (!nl) {
		fprintf(stderr, "ward: the host closed the connection without an answer\n");
		return CLIENT_FAILED;
	}
	*nl = '\0';
	bool ok = strcmp(reply, "ok") == 0;
	if (!quiet && nl[1])
		fputs(nl + 1, ok ? stdout : stderr);
	return ok ? CLIENT_OK : CLIENT_REFUSED;
}

/* Like write_all, but a closed connection is EPIPE, not a SIGPIPE that
 * would kill the CLI before it could say what the host answered. */
static int send_request(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

enum client_result client_request(const char *state_dir, const char *request, bool quiet)
{
	char *path = xasprintf("%s/ward.sock", state_dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	enum client_result result = CLIENT_FAILED;
	int64_t deadline = mono_ns() + (int64_t)CLIENT_TIMEOUT_MS * NS_PER_MS;
	char *reply = NULL;
	size_t len = 0;
	int fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ward: control socket path %s is too long\n", path);
		goto out;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		result = explain_connect(path, errno);
		goto out;
	}
	char *line = xasprintf("%s\n", request);
	int rc = send_request(fd, line, strlen(line)), send_err = errno;
	free(line);
	/* A host that refused us (too many clients, a request too long) may
	 * have answered and closed before reading it all: read its answer. */
	if (rc < 0 && send_err != EPIPE && send_err != ECONNRESET) {
		fprintf(stderr, "ward: unable to send the request to %s: %s\n", path, strerror(send_err));
		goto out;
	}
	if (!read_until_eof(fd, deadline, &reply, &len)) {
		fprintf(stderr, "ward: the host at %s did not answer within %d s\n", path, CLIENT_TIMEOUT_MS / 1000);
		goto out;
	}
	if (rc < 0 && !strchr(reply, '\n')) {
		fprintf(stderr, "ward: the host at %s closed the connection before taking the request: %s\n", path,
			strerror(send_err));
		goto out;
	}
	result = print_reply(reply, quiet);
out:
	if (fd >= 0)
		close(fd);
	free(reply);
	free(path);
	return result;
}
