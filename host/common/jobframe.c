/*
 * jobframe.c - job frames on the wire (see jobframe.h). Runs in the host
 * and in worker processes: both ends send one and read the other's.
 */
#define _GNU_SOURCE
#include "common/jobframe.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

/* A memfd holding data, sealed so the receiver can read it as it is. */
static int sealed_memfd(const void *data, size_t len)
{
	int fd = memfd_create("ward-job", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, SEALS) < 0)
		goto fail;
	return fd;
fail:;
	int saved = errno ? errno : EIO;
	close(fd);
	errno = saved;
	return -1;
}

int jobframe_send(int sock, const void *to, socklen_t tolen, uint8_t type, const void *head, size_t headlen,
		  const void *data, size_t len, bool in_memfd, int flags)
{
	size_t inline_len = in_memfd ? 0 : len;
	if (headlen + inline_len > UINT16_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	struct frame_hdr hdr = {.len = (uint16_t)(headlen + inline_len), .type = type, .at_ms = wall_ms()};
	struct iovec iov[3] = {{&hdr, sizeof(hdr)}, {(void *)head, headlen}, {(void *)data, inline_len}};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr m = {.msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = iov,
			   .msg_iovlen = inline_len ? 3 : 2};
	int fd = -1;
	if (in_memfd) {
		if ((fd = sealed_memfd(data, len)) < 0)
			return -1;
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	while ((n = sendmsg(sock, &m, flags | MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	int saved = errno;
	if (fd >= 0)
		close(fd); /* the receiver has its own now */
	errno = saved;
	return n < 0 ? -1 : 0;
}

int jobframe_read_memfd(int fd, size_t len, size_t max, void **out)
{
	*out = NULL;
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) !=
				 (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		errno = EBADF;
		return -1;
	}
	if (len > max || st.st_size < 0 || (uint64_t)st.st_size != len) {
		errno = EMSGSIZE;
		return -1;
	}
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return -1;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = n < 0 ? errno : EIO;
			free(buf);
			errno = saved;
			return -1;
		}
		done += (size_t)n;
	}
	*out = buf;
	return 0;
}

int jobframe_take_fds(struct msghdr *m, int *fds, int maxfds)
{
	int n = 0;
	if (!m->msg_control || m->msg_controllen < sizeof(struct cmsghdr))
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n < maxfds)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}
