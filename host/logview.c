/*
 * logview.c - prints the tail of <log_dir>/<NAME>.log and, with -f, keeps
 * printing what is appended, reopening the file when the host rotates it.
 */
#define _GNU_SOURCE
#include "logview.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Offset where the last `lines` lines of fd begin. */
static off_t tail_offset(int fd, off_t size, long lines)
{
	char buf[8192];
	off_t pos = size;
	long seen = 0;
	while (pos > 0) {
		size_t chunk = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
		pos -= (off_t)chunk;
		if (pread(fd, buf, chunk, pos) != (ssize_t)chunk)
			return 0;
		for (size_t i = chunk; i-- > 0;) {
			if (buf[i] != '\n' || (pos + (off_t)i == size - 1))
				continue;
			if (++seen == lines)
				return pos + (off_t)i + 1;
		}
	}
	return 0;
}

static int copy_from(int fd, off_t *pos)
{
	char buf[65536];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), *pos)) > 0) {
		if (write_all(1, buf, (size_t)n) < 0)
			return -1;
		*pos += n;
	}
	return n < 0 ? -1 : 0;
}

int logview_show(const char *log_dir, const char *name, long lines, bool follow)
{
	char *path = xasprintf("%s/%s.log", log_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ward: unable to open %s: %s (is '%s' a worker that has run?)\n", path, strerror(errno), name);
		free(path);
		return 1;
	}
	struct stat st;
	fstat(fd, &st);
	off_t pos = lines == 0 ? st.st_size : tail_offset(fd, st.st_size, lines);
	int rc = copy_from(fd, &pos);
	while (follow && rc == 0) {
		struct timespec nap = {0, 200 * 1000000L};
		nanosleep(&nap, NULL);
		rc = copy_from(fd, &pos);
		struct stat now;
		/* Rotated: the name points at a new file. Finish the old one, then switch. */
		if (stat(path, &now) == 0 && now.st_ino != st.st_ino) {
			int nfd = open(path, O_RDONLY | O_CLOEXEC);
			if (nfd < 0)
				continue;
			copy_from(fd, &pos);
			close(fd);
			fd = nfd;
			fstat(fd, &st);
			pos = 0;
		}
	}
	close(fd);
	free(path);
	return rc == 0 ? 0 : 1;
}
