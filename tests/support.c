/*
 * support.c - see support.h. Every wait is bounded; the host under test gets
 * PR_SET_PDEATHSIG so a test process that dies takes its host (and so, by
 * ward's own guarantee, every worker) with it.
 */
#define _GNU_SOURCE
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct wt wt;

/* Strings handed to a test are freed at teardown, so tests stay leak-free
 * under LeakSanitizer without freeing each one. */
static char **owned;
static size_t nowned;

static char *own(char *s)
{
	if (!s)
		return NULL;
	char **grown = realloc(owned, (nowned + 1) * sizeof(*owned));
	cr_assert(grown);
	owned = grown;
	owned[nowned++] = s;
	return s;
}

char *wt_keep(char *s)
{
	return own(s);
}

static void free_owned(void)
{
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	owned = NULL;
	nowned = 0;
}

void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert(f, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

void wt_setup(struct wt *t, const char *ini)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/ward-test-XXXXXX");
	cr_assert(mkdtemp(t->dir), "mkdtemp: %s", strerror(errno));
	snprintf(t->conf, sizeof(t->conf), "%s/conf", t->dir);
	snprintf(t->state, sizeof(t->state), "%s/state", t->dir);
	snprintf(t->errfile, sizeof(t->errfile), "%s/host.err", t->dir);
	cr_assert(mkdir(t->conf, 0755) == 0);
	char *text;
	cr_assert(asprintf(&text, "[ward]\nplugin_dir = %s\nstate_dir = %s\nautoload = no\n\n%s\n",
			   FIXTURE_DIR, t->state, ini) > 0);
	char path[1024];
	snprintf(path, sizeof(path), "%s/ward.ini", t->conf);
	write_file(path, text);
	free(text);
}

void wt_write_conf(struct wt *t, const char *file, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", t->conf, file);
	write_file(path, text);
}

/* out_fd >= 0: the host's stdout (and stderr too when err_too), else the errfile. */
static void launch(struct wt *t, int out_fd, bool err_too)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(t->errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (out_fd >= 0 && err_too)
			dup2(out_fd, 2);
		execl(WARD_BIN, "ward", "run", "-c", t->conf, (char *)NULL);
		_exit(127);
	}
	t->pid = pid;
}

void wt_launch(struct wt *t)
{
	launch(t, -1, false);
}

/* Copies the pipe into path until every writer closed it; in a child. */
static void copy_pipe(int from, const char *path)
{
	static char buf[65536];
	int to = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	while (to >= 0 && (n = read(from, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write(to, buf, (size_t)n) != n)
			_exit(1);
	}
	_exit(to >= 0 ? 0 : 1);
}

static int start_on_pipe(struct wt *t, bool err_too)
{
	int fds[2];
	cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	launch(t, fds[1], err_too);
	close(fds[1]);
	bool up = wt_wait_sql(t, 10000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '%d'", (int)t->pid);
	cr_assert(up, "the host did not come up; its stderr:\n%s", wt_host_stderr(t));
	return fds[0];
}

int wt_start_stdout_pipe(struct wt *t)
{
	return start_on_pipe(t, false);
}

int wt_start_stdout_stderr_pipe(struct wt *t)
{
	return start_on_pipe(t, true);
}

pid_t wt_start_stdout(struct wt *t, const char *path)
{
	int from = wt_start_stdout_pipe(t);
	pid_t copier = fork();
	cr_assert(copier >= 0);
	if (copier == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		copy_pipe(from, path);
	}
	close(from);
	return copier;
}

void wt_start(struct wt *t)
{
	wt_launch(t);
	/* The host is up once its state database exists and records its pid. */
	bool up = wt_wait_sql(t, 10000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '%d'", (int)t->pid);
	cr_assert(up, "the host did not come up; its stderr:\n%s", wt_host_stderr(t));
}

int wt_connect_control(struct wt *t)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/ward.sock", t->state);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s", strerror(errno));
	return fd;
}

int wt_stop(struct wt *t, int timeout_ms)
{
	if (t->pid <= 0)
		return -1;
	kill(t->pid, SIGTERM);
	long long deadline = now_ms() + timeout_ms;
	int status;
	pid_t r;
	while ((r = waitpid(t->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	if (r == 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, &status, 0);
		t->pid = 0;
		cr_assert_fail("the host did not exit within %d ms of SIGTERM", timeout_ms);
	}
	t->pid = 0;
	t->status = status;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int wt_wait_exit(struct wt *t, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int status;
	pid_t r;
	while ((r = waitpid(t->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	if (r != t->pid)
		return -1;
	t->pid = 0;
	t->status = status;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int remove_dir(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	return 0;
}

/* A host killed with SIGKILL leaves its cgroups behind (emptied: its spawner
 * kills what was in them) for the next host on its state_dir, and no host
 * comes after a test's: remove them. ward names them <the host's
 * cgroup>/ward-<FNV-1a of state_dir, 16 hex digits> (host/daemon/cgroup.c). */
static void remove_host_cgroups(const struct wt *t)
{
	char *info = wt_read_raw("/proc/self/mountinfo"), *own = wt_read_raw("/proc/self/cgroup");
	char *line = info ? strstr(info, " - cgroup2 ") : NULL, *cg = own ? strstr(own, "0::/") : NULL;
	while (line && line > info && line[-1] != '\n')
		line--;
	char root[256], point[256], dir[1024];
	if (line && cg && sscanf(line, "%*s %*s %*s %255s %255s", root, point) == 2 && strcmp(root, "/") == 0) {
		cg += 3;
		cg[strcspn(cg, "\n")] = '\0';
		uint64_t hash = 14695981039346656037ull;
		for (const char *c = t->state; *c; c++)
			hash = (hash ^ (unsigned char)*c) * 1099511628211ull;
		snprintf(dir, sizeof(dir), "%s%s/ward-%016llx", point, strcmp(cg, "/") == 0 ? "" : cg,
			 (unsigned long long)hash);
		/* Their processes may still be dying of the spawner's kill. */
		long long deadline = now_ms() + 3000;
		while (nftw(dir, remove_dir, 16, FTW_DEPTH | FTW_PHYS) == 0 && access(dir, F_OK) == 0 &&
		       now_ms() < deadline)
			sleep_ms(20);
	}
	free(info);
	free(own);
}

/* Kills every process a test may have left: the host, then any worker pid
 * the history knows about. Teardown must never fail a test on its own. */
void wt_teardown(void)
{
	struct wt *t = &wt;
	if (!t->dir[0])
		return;
	if (t->pid > 0) {
		kill(t->pid, SIGKILL);
		waitpid(t->pid, NULL, 0);
		t->pid = 0;
	}
	char path[1024];
	snprintf(path, sizeof(path), "%s/ward.db", t->state);
	sqlite3 *db;
	if (access(path, F_OK) == 0 && sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "SELECT pid FROM runs WHERE ended_at IS NULL", -1, &st, NULL) == SQLITE_OK) {
			while (sqlite3_step(st) == SQLITE_ROW)
				kill(-(pid_t)sqlite3_column_int(st, 0), SIGKILL);
			sqlite3_finalize(st);
		}
		sqlite3_close(db);
	}
	remove_host_cgroups(t);
	if (!getenv("WARD_TEST_KEEP"))
		nftw(t->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	memset(t, 0, sizeof(*t));
	free_owned();
}

static sqlite3 *open_db(struct wt *t, const char *file)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", t->state, file);
	if (access(path, F_OK) < 0)
		return NULL;
	sqlite3 *db;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 2000);
	return db;
}

/* Runs sql; copies column 0 of row 0 into *text (if given) and returns it as an integer. */
static long long query_in(struct wt *t, const char *file, const char *sql, char **text, bool *found)
{
	long long v = 0;
	*found = false;
	if (text)
		*text = NULL;
	sqlite3 *db = open_db(t, file);
	if (!db)
		return 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			*found = true;
			v = sqlite3_column_int64(st, 0);
			if (text && sqlite3_column_text(st, 0))
				*text = strdup((const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static long long query(struct wt *t, const char *sql, char **text, bool *found)
{
	return query_in(t, "ward.db", sql, text, found);
}

long long wt_jobs_sql_int(struct wt *t, const char *sql)
{
	bool found;
	return query_in(t, "jobs.db", sql, NULL, &found);
}

bool wt_wait_sql(struct wt *t, int timeout_ms, const char *fmt, ...)
{
	char *sql;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&sql, fmt, ap) > 0);
	va_end(ap);
	long long deadline = now_ms() + timeout_ms;
	bool ok = false, found;
	do {
		if (query(t, sql, NULL, &found) != 0) {
			ok = true;
			break;
		}
		sleep_ms(20);
	} while (now_ms() < deadline);
	free(sql);
	return ok;
}

long long wt_sql_int(struct wt *t, const char *fmt, ...)
{
	char *sql;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&sql, fmt, ap) > 0);
	va_end(ap);
	bool found;
	long long v = query(t, sql, NULL, &found);
	free(sql);
	return v;
}

char *wt_sql_text(struct wt *t, const char *fmt, ...)
{
	char *sql, *text;
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&sql, fmt, ap) > 0);
	va_end(ap);
	bool found;
	query(t, sql, &text, &found);
	free(sql);
	return own(text);
}

/* A file's contents, owned by the caller. */
char *wt_read_raw(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

char *wt_read(const char *path)
{
	return own(wt_read_raw(path));
}

char *wt_log(struct wt *t, const char *worker)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/logs/%s.log", t->state, worker);
	char *s = wt_read(path);
	return s ? s : own(strdup(""));
}

char *wt_host_stderr(struct wt *t)
{
	char *s = wt_read(t->errfile);
	return s ? s : own(strdup(""));
}

bool wt_wait_log(struct wt *t, int timeout_ms, const char *worker, const char *needle)
{
	long long deadline = now_ms() + timeout_ms;
	char path[1024];
	snprintf(path, sizeof(path), "%s/logs/%s.log", t->state, worker);
	do {
		char *log = wt_read_raw(path);
		bool found = log && strstr(log, needle) != NULL;
		free(log);
		if (found)
			return true;
		sleep_ms(20);
	} while (now_ms() < deadline);
	return false;
}

int wt_cli(struct wt *t, char **out, char **err, const char *args)
{
	char outp[1024], errp[1024], *cmd;
	snprintf(outp, sizeof(outp), "%s/cli.out", t->dir);
	snprintf(errp, sizeof(errp), "%s/cli.err", t->dir);
	cr_assert(asprintf(&cmd, "timeout 20 %s %s -c %s >%s 2>%s", WARD_BIN, args, t->conf, outp, errp) > 0);
	int status = system(cmd);
	free(cmd);
	if (out)
		*out = wt_read(outp);
	if (err)
		*err = wt_read(errp);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool pid_alive(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *s = wt_read_raw(path);
	if (!s)
		return false;
	char *end = strrchr(s, ')');
	bool alive = end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
	free(s);
	return alive;
}

int wt_fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int wt_count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

pid_t wt_spawner(pid_t host)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)host, (int)host);
	char *kids = wt_read_raw(path);
	pid_t found = 0;
	for (char *p = kids, *end; p && !found; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		char *comm = wt_read_raw(path);
		if (comm && strcmp(comm, "ward-spawner\n") == 0)
			found = (pid_t)pid;
		free(comm);
	}
	free(kids);
	return found;
}

bool wait_pid_gone(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (pid_alive(pid)) {
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
	return true;
}

int wt_ward_in(const char *cwd, char **out, char **err, const char *args)
{
	char o[64], e[64], *cmd;
	snprintf(o, sizeof(o), "/tmp/ward-cli-%d.out", (int)getpid()); /* tests may run in parallel */
	snprintf(e, sizeof(e), "/tmp/ward-cli-%d.err", (int)getpid());
	cr_assert(asprintf(&cmd, "cd '%s' && timeout 60 %s %s >%s 2>%s", cwd ? cwd : ".", WARD_BIN, args, o, e) > 0);
	int status = system(cmd);
	free(cmd);
	*out = wt_read(o);
	*err = wt_read(e);
	cr_assert(*out && *err, "could not run ward %s", args);
	unlink(o);
	unlink(e);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int wt_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		  getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	return ntohs(sa.sin_port);
}

char *wt_metrics(struct wt *t)
{
	char *out, *err;
	cr_assert_eq(wt_cli(t, &out, &err, "metrics"), 0, "ward metrics failed: %s", err);
	return out;
}

double wt_metric(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (strncmp(line, series, n) == 0 && line[n] == ' ')
			return strtod(line + n + 1, NULL);
	return -1;
}

int wt_curl(int port, const char *args, const char *path, char **body)
{
	char out[400], cmd[1200];
	snprintf(out, sizeof(out), "%s/curl.body", wt.dir);
	snprintf(cmd, sizeof(cmd), "curl -s -m 10 -o %s -w '%%{http_code}' %s 'http://127.0.0.1:%d%s'", out, args, port,
		 path);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	int code = 0;
	if (fscanf(p, "%d", &code) != 1)
		code = 0;
	pclose(p);
	if (body)
		*body = wt_read(out);
	return code;
}

int wt_http_code(int port, const char *path)
{
	return wt_curl(port, "", path, NULL);
}

int wt_run_with_input(const char *cmd, const char *text, char **out)
{
	char in[400], res[400], line[1400];
	snprintf(in, sizeof(in), "%s/input.txt", wt.dir);
	snprintf(res, sizeof(res), "%s/output.txt", wt.dir);
	FILE *f = fopen(in, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	snprintf(line, sizeof(line), "%s < %s > %s 2>&1", cmd, in, res);
	int st = system(line);
	*out = wt_read(res);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void wt_promtool_accepts(const char *text)
{
	char *said;
	int rc = wt_run_with_input("promtool check metrics", text, &said);
	cr_assert_neq(rc, 127, "promtool is not installed (Debian package prometheus; setup.sh installs it)");
	cr_expect_eq(rc, 0, "promtool check metrics failed (%d):\n%s\non:\n%s", rc, said, text);
	cr_expect(!said || !*said, "promtool has complaints:\n%s\non:\n%s", said, text);
}
