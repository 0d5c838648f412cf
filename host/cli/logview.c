/*
 * logview.c - prints the tail of <log_dir>/<NAME>.log and, with -f, keeps
 * printing what is appended, following the host's rotations without losing
 * or repeating a line. Runs in the CLI process (`ward logs`).
 */
#define _GNU_SOURCE
#include "cli/logview.h"
#include "common/util.h"

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

/* A log holds whatever bytes a worker wrote, and a terminal obeys ESC and
 * OSC sequences (titles, cursor moves, some even answered as if typed). So
 * control characters other than tab and newline - C0, DEL, and C1
 * (U+0080..U+009F, 0xC2 0x80..0x9F in UTF-8) - are printed as \xHH, to a
 * pipe or a file too: `ward logs` prints the same text wherever it goes. */
#define CHUNK 65536

static bool held_c2; /* a 0xC2 not printed yet: the next byte may make it a C1 control */

static size_t put_hex(char *out, unsigned char c)
{
	static const char digits[] = "0123456789abcdef";
	out[0] = '\\';
	out[1] = 'x';
	out[2] = digits[c >> 4];
	out[3] = digits[c & 15];
	return 4;
}

static size_t escape(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];
		if (held_c2) {
			held_c2 = false;
			if (c >= 0x80 && c <= 0x9f) {
				o += put_hex(out + o, 0xc2);
				o += put_hex(out + o, c);
				continue;
			}
			out[o++] = (char)0xc2;
		}
		if (c == 0xc2)
			held_c2 = true;
		else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			o += put_hex(out + o, c);
		else
			out[o++] = (char)c;
	}
	return o;
}

/* A 0xC2 still held at the end is a character cut short: print it as it is. */
static int release_held(void)
{
	if (!held_c2)
		return 0;
	held_c2 = false;
	return write_all(1, "\xc2", 1);
}

static int copy_from(int fd, off_t *pos)
{
	static unsigned char buf[CHUNK];
	static char out[4 * CHUNK + 8]; /* four bytes out for each in, a held 0xC2 */
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), *pos)) > 0) {
		if (write_all(1, out, escape(buf, (size_t)n, out)) < 0)
			return -1;
		*pos += n;
	}
	return n < 0 ? -1 : 0;
}

/* After a rotation: the files newer than the one we were reading, oldest
 * first. The old file is found among NAME.log.1.. by its inode; every file
 * rotated after it (there may be several since the last look) is printed
 * whole before the current file is opened, so no line is lost or repeated. */
static int catch_up_rotations(const char *path, ino_t old_ino)
{
	int k = 1;
	for (; k <= 1000; k++) {
		char *name = xasprintf("%s.%d", path, k);
		struct stat st;
		int found = stat(name, &st);
		free(name);
		if (found < 0)
			return 0; /* deleted already: nothing newer can be told apart */
		if (st.st_ino == old_ino)
			break;
	}
	for (int i = k - 1; i >= 1; i--) {
		char *name = xasprintf("%s.%d", path, i);
		int fd = open(name, O_RDONLY | O_CLOEXEC);
		free(name);
		if (fd < 0)
			continue;
		off_t pos = 0;
		int rc = copy_from(fd, &pos);
		close(fd);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int follow(const char *path, int fd, off_t pos)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	for (;;) {
		if (copy_from(fd, &pos) < 0)
			return -1;
		struct stat now;
		if (stat(path, &now) == 0 && now.st_ino != st.st_ino) {
			int nfd = open(path, O_RDONLY | O_CLOEXEC);
			if (nfd < 0)
				continue;
			if (copy_from(fd, &pos) < 0 || catch_up_rotations(path, st.st_ino) < 0) {
				close(nfd);
				return -1;
			}
			close(fd);
			fd = nfd;
			pos = 0;
			if (fstat(fd, &st) < 0)
				return -1;
			continue;
		}
		struct timespec nap = {0, 100 * 1000000L};
		nanosleep(&nap, NULL);
	}
}

int logview_show(const char *log_dir, const char *name, long lines, bool follow_it)
{
	char *path = xasprintf("%s/%s.log", log_dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ward: unable to open %s: %s (is '%s' a worker that has run?)\n", path, strerror(errno), name);
		free(path);
		return 1;
	}
	struct stat st;
	int rc = fstat(fd, &st);
	off_t pos = rc < 0 ? 0 : lines == 0 ? st.st_size : tail_offset(fd, st.st_size, lines);
	if (rc == 0)
		rc = copy_from(fd, &pos);
	if (rc == 0 && follow_it)
		rc = follow(path, fd, pos); /* returns only on an error: ended by a signal */
	else
		close(fd);
	if (rc == 0)
		rc = release_held();
	free(path);
	return rc == 0 ? 0 : 1;
}
