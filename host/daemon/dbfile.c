/*
 * dbfile.c - the host's database files made private (dbfile.h). Host daemon
 * only.
 */
#include "daemon/dbfile.h"
#include "daemon/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void db_make_private(const char *path, bool create)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0 && errno == ENOENT)
		return; /* no directory (or no file to make private): opening fails next, and says so */
	if (fd < 0 || fchmod(fd, 0600) < 0)
		host_log(HOST_WARN, "unable to make %s private (mode 0600): %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

void db_make_companions_private(const char *path)
{
	static const char *const suffixes[] = {"-wal", "-shm"};
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		char *file = xasprintf("%s%s", path, suffixes[i]);
		if (chmod(file, 0600) < 0 && errno != ENOENT)
			host_log(HOST_WARN, "unable to make %s private (mode 0600): %s", file, strerror(errno));
		free(file);
	}
}
