/*
 * statedir.c - the host's state_dir, in the host process: creating it (and
 * log_dir) at boot, holding <state_dir>/ward.lock for the host's lifetime,
 * and putting back what the host needs there when state_dir, or part of it,
 * is removed while the host runs: the directory, the lock (taken again, so a
 * second host still cannot start on the same configuration), the control
 * socket, the history database with the live state, and the workers'
 * directories.
 *
 * A removal is noticed through inotify on state_dir: one descriptor in the
 * event loop, so an idle host gets no wake-up from it. The host acts once
 * the directory has been quiet for SETTLE_NS, so that it does not race an
 * `rm -rf` still at work, and says once what it created again.
 */
#define _GNU_SOURCE
#include "daemon/statedir.h"
#include "daemon/channel.h"
#include "daemon/control.h"
#include "daemon/history.h"
#include "daemon/log.h"
#include "common/util.h"
#include "daemon/host.h"
#include "daemon/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* 0711: workers running as other users can reach their own directory below
 * it, but nobody can list what is there. */
#define STATE_DIR_MODE 0711
#define LOG_DIR_MODE 0750
#define SETTLE_NS (100 * NS_PER_MS)
#define RETRY_NS (1 * NS_PER_SEC)
#define WATCHED (IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct statedir {
	struct watch watch;  /* the inotify descriptor; -1 when not watching */
	struct timer settle; /* something was removed: look once it is quiet */
	struct host *host;
	int wd;              /* the watch on state_dir; -1 once it is gone */
	int lock_fd;         /* ward.lock, locked; -1 when not held */
	struct stat dir;     /* state_dir as created or found, to notice a new one */
	struct stat lock;    /* the lock file held */
	bool failing;        /* creating state_dir again fails: said once */
};

static struct statedir sd = {.watch.fd = -1, .wd = -1, .lock_fd = -1};

static bool same_file(const char *path, const struct stat *known)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_dev == known->st_dev && st.st_ino == known->st_ino;
}

/* ---- the lock ---- */

static char *lock_path(const char *state_dir)
{
	return xasprintf("%s/ward.lock", state_dir);
}

/* The pid a lock file names, or 0. Only a number is taken from the file, so
 * nothing else it holds (its newline, stray bytes) ends up in a message. */
static int read_lock_pid(int fd)
{
	char buf[32] = {0};
	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return 0;
	char *end;
	errno = 0;
	long pid = strtol(buf, &end, 10);
	bool whole = end != buf && (*end == '\n' || *end == '\0');
	return whole && errno == 0 && pid > 0 && pid <= INT_MAX ? (int)pid : 0;
}

int statedir_lock_held(const char *state_dir, int *pid)
{
	char *path = lock_path(state_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (pid)
		*pid = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	if (pid)
		*pid = read_lock_pid(fd);
	close(fd);
	return held;
}

/* Opens and locks the file at path, mode 0600, and writes the host's pid in
 * it. Its descriptor; -1 on error (reported); -2 when another host holds it
 * (*holder: that host's pid, or 0). */
static int lock_file(const char *path, int *holder)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		host_log(HOST_ERR, "unable to open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		*holder = read_lock_pid(fd);
		close(fd);
		if (err == EWOULDBLOCK)
			return -2;
		host_log(HOST_ERR, "unable to lock %s: %s", path, strerror(err));
		return -1;
	}
	/* A lock file an older ward created with another mode becomes private too. */
	if (fchmod(fd, 0600) < 0)
		host_log(HOST_WARN, "unable to make %s private (mode 0600): %s", path, strerror(errno));
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		host_log(HOST_WARN, "unable to write the host pid into %s: %s", path, strerror(errno));
	return fd;
}

static void say_held(const char *state_dir, int holder)
{
	if (holder > 0)
		host_log(HOST_ERR, "another ward host (pid %d) is already running with state_dir %s", holder, state_dir);
	else
		host_log(HOST_ERR, "another ward host is already running with state_dir %s", state_dir);
}

/* ---- boot ---- */

/* The one line a host that cannot write its state_dir ends with (found
 * most often in a container whose root filesystem is read-only and has no
 * volume at state_dir): what failed, why, and what to do. */
static void say_unwritable(const char *state_dir, const char *failed, int err)
{
	host_log(HOST_ERR, "%s state_dir %s: %s; ward keeps its lock, history database, control socket and worker logs there: make it writable by this host's user (uid %d) or set state_dir to a directory that is (in a container: a volume)",
		 failed, state_dir, strerror(err), (int)getuid());
}

static int make_dirs(const struct config *cfg)
{
	if (mkdir_p(cfg->state_dir, STATE_DIR_MODE) < 0) {
		say_unwritable(cfg->state_dir, "unable to create", errno);
		return -1;
	}
	/* Checked before anything is written there, so that a read-only one
	 * gets this line rather than one per file the host fails to open. */
	if (access(cfg->state_dir, W_OK | X_OK) < 0) {
		say_unwritable(cfg->state_dir, "unable to write in", errno);
		return -1;
	}
	if (mkdir_p(cfg->log_dir, LOG_DIR_MODE) < 0)
		host_log(HOST_ERR, "unable to create log_dir %s: %s; worker logs will be retried", cfg->log_dir,
			 strerror(errno));
	return 0;
}

int statedir_open(const struct config *cfg)
{
	if (make_dirs(cfg) < 0)
		return -1;
	char *path = lock_path(cfg->state_dir);
	int holder = 0;
	sd.lock_fd = lock_file(path, &holder);
	free(path);
	if (sd.lock_fd == -2)
		say_held(cfg->state_dir, holder);
	if (sd.lock_fd < 0) {
		sd.lock_fd = -1;
		return -1;
	}
	if (fstat(sd.lock_fd, &sd.lock) < 0 || stat(cfg->state_dir, &sd.dir) < 0)
		host_log(HOST_WARN, "unable to stat state_dir %s: %s", cfg->state_dir, strerror(errno));
	return 0;
}

/* ---- putting state_dir back ---- */

/* 1: the lock was gone or replaced and is held again; 0: still held; -1: not
 * now (retried); -2: another host took it meanwhile. */
static int restore_lock(struct host *h)
{
	char *path = lock_path(h->cfg.state_dir);
	int holder = 0, fd = same_file(path, &sd.lock) ? 0 : lock_file(path, &holder);
	free(path);
	if (fd <= 0)
		return fd;
	close(sd.lock_fd); /* the new one is held first: there is no moment without a lock */
	sd.lock_fd = fd;
	if (fstat(fd, &sd.lock) < 0)
		memset(&sd.lock, 0, sizeof(sd.lock));
	return 1;
}

static int restore_worker_dirs(struct host *h)
{
	int made = 0;
	struct stat st;
	for (size_t i = 0; i < h->nworkers; i++) {
		struct worker *w = h->workers[i];
		if (stat(w->state_dir, &st) < 0 && errno == ENOENT && worker_make_state_dir(w) == 0)
			made++;
	}
	return made;
}

/* A new database gets the live state before anyone can read it (with
 * state_dir gone, the caller's line says it for the database too). */
static bool restore_history(struct host *h, bool quiet)
{
	bool reopened = history_reopen_if_replaced(h->history, quiet);
	if (history_take_recreated(h->history))
		worker_record_host(h);
	history_flush(h->history); /* a failure is retried by the host's flush timer */
	return reopened;
}

static bool restore_control(struct host *h)
{
	char *path = xasprintf("%s/ward.sock", h->cfg.state_dir);
	struct stat st;
	bool gone = lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode);
	free(path);
	if (!gone || h->test)
		return false;
	control_close(h); /* the listening socket of a path that is gone: nobody can reach it */
	return control_open(h) == 0;
}

static void add_to(char *list, size_t size, const char *what)
{
	size_t n = strlen(list);
	snprintf(list + n, size - n, "%s%s", n ? ", " : "", what);
}

/* Follows the directory now at the path (the old one may have been moved away). */
static void watch_again(struct host *h)
{
	if (sd.wd >= 0)
		inotify_rm_watch(sd.watch.fd, sd.wd);
	sd.wd = inotify_add_watch(sd.watch.fd, h->cfg.state_dir, WATCHED);
	if (sd.wd < 0)
		host_log(HOST_WARN, "unable to watch state_dir %s again: %s; a next removal will not be noticed",
			 h->cfg.state_dir, strerror(errno));
	if (stat(h->cfg.state_dir, &sd.dir) < 0)
		memset(&sd.dir, 0, sizeof(sd.dir));
}

/* Another host locked the state_dir while it was gone: one configuration
 * must never run twice, and that host holds the lock, so this one goes
 * (SIGTERM to itself: the usual orderly stop, through the signalfd). */
static void give_way(struct host *h)
{
	host_log(HOST_ERR, "state_dir %s: another ward host locked it while its lock file was gone; this host stops its workers so that they do not run twice",
		 h->cfg.state_dir);
	raise(SIGTERM);
}

/* log_dir when it is missing (a file in its place is the logs' business:
 * log.c reports it and recovers once it is a directory again). */
static bool restore_log_dir(struct host *h)
{
	struct stat st;
	return stat(h->cfg.log_dir, &st) < 0 && errno == ENOENT && mkdir_p(h->cfg.log_dir, LOG_DIR_MODE) == 0;
}

static void restore(struct timer *t)
{
	struct host *h = sd.host;
	bool dir_gone = !same_file(h->cfg.state_dir, &sd.dir);
	if (mkdir_p(h->cfg.state_dir, STATE_DIR_MODE) < 0) {
		if (!sd.failing)
			host_log(HOST_ERR, "state_dir %s was removed while this host ran and cannot be created again: %s; retrying every second",
				 h->cfg.state_dir, strerror(errno));
		sd.failing = true;
		timer_arm(h->loop, t, mono_ns() + RETRY_NS);
		return;
	}
	sd.failing = false;
	char what[256] = "";
	if (restore_log_dir(h))
		add_to(what, sizeof(what), "log_dir");
	int lock = restore_lock(h);
	if (lock == -2) {
		give_way(h);
		return;
	}
	if (lock < 0)
		timer_arm(h->loop, t, mono_ns() + RETRY_NS);
	if (lock == 1)
		add_to(what, sizeof(what), "ward.lock (held again)");
	if (restore_history(h, dir_gone) && dir_gone)
		add_to(what, sizeof(what), "ward.db (with the live state)");
	int dirs = restore_worker_dirs(h);
	char n[48];
	snprintf(n, sizeof(n), "%d worker director%s", dirs, dirs == 1 ? "y" : "ies");
	if (dirs)
		add_to(what, sizeof(what), n);
	if (channel_restore(h))
		add_to(what, sizeof(what), "ward.chan");
	/* Last: a client that reaches the host again finds the rest in place. */
	if (restore_control(h))
		add_to(what, sizeof(what), "ward.sock");
	if (dir_gone)
		watch_again(h);
	if (what[0])
		host_log(HOST_WARN, "%s %s was removed while this host ran: created again: %s",
			 dir_gone ? "state_dir" : "part of state_dir", h->cfg.state_dir, what);
}

/* ---- the watch ---- */

static void on_inotify(struct watch *w, uint32_t events)
{
	(void)events;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool seen = false;
	ssize_t n;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->wd == sd.wd && (ev->mask & IN_IGNORED))
				sd.wd = -1; /* state_dir itself is gone */
			seen = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	/* Every removal restarts the wait, so the host acts once it is over. */
	if (seen)
		timer_arm(sd.host->loop, &sd.settle, mono_ns() + SETTLE_NS);
}

void statedir_watch(struct host *h)
{
	sd.host = h;
	sd.settle.fn = restore;
	sd.watch = (struct watch){.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), .fn = on_inotify};
	if (sd.watch.fd >= 0)
		sd.wd = inotify_add_watch(sd.watch.fd, h->cfg.state_dir, WATCHED);
	if (sd.watch.fd < 0 || sd.wd < 0 || loop_watch(h->loop, &sd.watch, EPOLLIN) < 0) {
		host_log(HOST_WARN, "unable to watch state_dir %s: %s; if it is removed while the host runs, the host will not notice",
			 h->cfg.state_dir, strerror(errno));
		if (sd.watch.fd >= 0)
			close(sd.watch.fd);
		sd.watch.fd = sd.wd = -1;
	}
}

bool statedir_repairing(void)
{
	return timer_armed(&sd.settle);
}

void statedir_close(struct host *h)
{
	if (sd.host && h->loop) {
		timer_cancel(h->loop, &sd.settle);
		if (sd.watch.fd >= 0)
			loop_close(h->loop, &sd.watch);
	}
	if (sd.lock_fd >= 0)
		close(sd.lock_fd);
	sd = (struct statedir){.watch.fd = -1, .wd = -1, .lock_fd = -1};
}
