/*
 * test_contain.c - every process a worker creates belongs to that worker
 * and to no other (docs/security.md, containment):
 *   - the end of one worker never kills another worker's helpers, nor an
 *     orphan re-parented to a host that is PID 1 (it is only reaped);
 *   - with cgroup v2 each instance runs in a cgroup of its own, created
 *     before it starts and removed after it, and a setsid()'d, double-forked
 *     daemon dies with its worker, with its host even when the host is
 *     SIGKILLed, and at the latest when the next host starts;
 *   - without a writable cgroup v2 the host says so once and contains
 *     workers with their session and process group;
 *   - a worker cannot join the host's process group to hide from its kills,
 *     and the host's stop never waits forever for what SIGKILL cannot end.
 * "Without cgroups" is made by hiding the cgroup2 mount in a private mount
 * namespace of the test process, which the host inherits.
 */
#define _GNU_SOURCE
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void contain_fini(void);
TestSuite(contain, .fini = contain_fini, .timeout = 90);

static char freezer[300]; /* a v1 freezer cgroup this test made */
static pid_t extra[8];    /* processes outside the host this test must end */
static bool pid1_host;    /* wt.pid waits for a host that is PID 1 of its own namespace */
static char own_cgroup[400]; /* a cgroup this test started a host in */

static void contain_fini(void)
{
	if (pid1_host && wt.pid > 0) {
		/* Its history holds pids of its own namespace: none may be killed here. */
		kill(wt.pid, SIGKILL);
		waitpid(wt.pid, NULL, 0);
		wt.pid = 0;
		const char *files[] = {"ward.db", "ward.db-wal", "ward.db-shm"};
		for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
			char path[400];
			snprintf(path, sizeof(path), "%s/%s", wt.state, files[i]);
			unlink(path);
		}
	}
	pid1_host = false;
	for (size_t i = 0; i < sizeof(extra) / sizeof(*extra); i++)
		if (extra[i] > 0) {
			kill(extra[i], SIGKILL);
			waitpid(extra[i], NULL, WNOHANG);
			extra[i] = 0;
		}
	if (freezer[0]) {
		char path[400];
		snprintf(path, sizeof(path), "%s/freezer.state", freezer);
		FILE *f = fopen(path, "w");
		if (f) {
			fputs("THAWED", f);
			fclose(f);
		}
		for (int i = 0; i < 100 && rmdir(freezer) < 0 && errno == EBUSY; i++)
			sleep_ms(20);
		freezer[0] = '\0';
	}
	wt_teardown();
	if (own_cgroup[0]) { /* the host is gone: what it left is empty */
		char path[500];
		snprintf(path, sizeof(path), "%s/supervisor", own_cgroup);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/workers", own_cgroup);
		rmdir(path);
		rmdir(own_cgroup);
		own_cgroup[0] = '\0';
	}
}

/* ---- helpers ---- */

static pid_t running(const char *worker, int instance)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'running' FROM instances WHERE worker = '%s' AND instance = %d",
			      worker, instance),
		  "%s:%d never became running; host said:\n%s", worker, instance, wt_host_stderr(&wt));
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = '%s' AND instance = %d", worker, instance);
}

/* The pids a contain_rogue helper wrote to path (up to max). */
static int read_pids(const char *path, pid_t *pids, int max)
{
	long long deadline = now_ms() + 10000;
	char *s;
	while (!(s = wt_read(path)) && now_ms() < deadline)
		sleep_ms(10);
	cr_assert(s, "the fixture never wrote %s; its log:\n%s", path, wt_log(&wt, "w"));
	int n = 0;
	for (char *p = s, *end; n < max; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		pids[n++] = (pid_t)pid;
	}
	cr_assert(n > 0, "no pid in %s", path);
	return n;
}

/* The cgroup v2 path of pid ("/a/b"), or "" when unknown. */
static const char *cgroup_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	char *s = wt_read(path);
	char *line = s ? strstr(s, "0::") : NULL;
	if (!line)
		return "";
	line += 3;
	line[strcspn(line, "\n")] = '\0';
	return line;
}

/* Where the cgroup2 hierarchy is mounted, or NULL. */
static const char *cgroup2_mount(void)
{
	static char point[300];
	char *s = wt_read("/proc/self/mountinfo");
	for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char root[300];
		if (strstr(line, " - cgroup2 ") && strstr(line, " - cgroup2 ") < strchr(line, '\n') &&
		    sscanf(line, "%*s %*s %*s %299s %299s", root, point) == 2 && strcmp(root, "/") == 0)
			return point;
	}
	return NULL;
}

/* The test needs a writable cgroup v2 hierarchy (the host then uses it). */
static void require_cgroups(void)
{
	const char *mnt = cgroup2_mount();
	char probe[400];
	snprintf(probe, sizeof(probe), "%s%s/ward-probe-%d", mnt ? mnt : "", mnt ? cgroup_of(getpid()) : "", (int)getpid());
	if (!mnt || mkdir(probe, 0755) < 0)
		cr_skip_test("no writable cgroup v2 hierarchy here (%s): the tests ..._without_cgroups cover this machine",
			     mnt ? strerror(errno) : "none mounted");
	rmdir(probe);
}

/* Hides the cgroup2 mount from the test and the hosts it starts. */
static void hide_cgroups(void)
{
	cr_assert(unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
		  "no private mount namespace: %s", strerror(errno));
	for (const char *mnt; (mnt = cgroup2_mount());)
		cr_assert(umount2(mnt, MNT_DETACH) == 0, "umount %s: %s", mnt, strerror(errno));
}

static bool gone(pid_t pid) /* reaped, not merely dead */
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) < 0;
}

static bool wait_reaped(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (!gone(pid) && now_ms() < deadline)
		sleep_ms(10);
	return gone(pid);
}

static void configure(const char *ini_fmt, const char *pidfile)
{
	char ini[2000];
	snprintf(ini, sizeof(ini), ini_fmt, pidfile);
	wt_write_conf(&wt, "w.ini", ini);
}

static void pidfile_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/helper.pids", wt.dir);
}

/* Starts the host with one worker w: contain_rogue starting a helper of
 * `kind` that writes its pids to pidfile (set here). */
static void start_rogue(const char *kind, char *pidfile, size_t size)
{
	require_cgroups();
	wt_setup(&wt, "");
	pidfile_path(pidfile, size);
	char fmt[200];
	snprintf(fmt, sizeof(fmt), "[w]\nplugin = contain_rogue\nhelper = %s\npidfile = %%s\nrestart_delay = 10ms\n", kind);
	configure(fmt, pidfile);
	wt_start(&wt);
}

/* cpu_seconds of instance 0 of worker name in `ward status --json`; -1 for null. */
static double cpu_seconds(const char *name)
{
	char *out, *err, key[64];
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 0, "%s", err);
	snprintf(key, sizeof(key), "{\"name\": \"%s\"", name);
	char *at = strstr(out, key);
	at = at ? strstr(at, "\"cpu_seconds\": ") : NULL;
	cr_assert(at, "no cpu_seconds for %s in:\n%s", name, out);
	at += strlen("\"cpu_seconds\": ");
	return strncmp(at, "null", 4) == 0 ? -1 : strtod(at, NULL);
}

/* A worker b that crashes half a second after it starts, again and again. */
#define CRASHER                                                                                              \
	"[b]\nplugin = crash_later\nafter = 500ms\ninterval = 50ms\nrestart_delay = 10ms\nrestart_delay_max = 10ms\n" \
	"max_restarts = unlimited\nlimit.core = 0\n"

/* ---- item: the end of one worker never touches another's processes ---- */

static void helper_survives_another_workers_crashes(void)
{
	char pidfile[300];
	wt_setup(&wt, "");
	pidfile_path(pidfile, sizeof(pidfile));
	configure("[w]\nplugin = contain_rogue\nhelper = system\npidfile = %s\n" CRASHER, pidfile);
	wt_start(&wt);
	running("w", 0);
	pid_t helper;
	read_pids(pidfile, &helper, 1);
	cr_assert(pid_alive(helper), "w's helper %d is dead already", (int)helper);
	cr_assert(wt_wait_sql(&wt, 15000, "SELECT count(*) >= 5 FROM runs WHERE worker = 'b' AND reason = 'signal'"),
		  "b did not crash five times:\n%s", wt_host_stderr(&wt));
	cr_expect(pid_alive(helper), "w's helper %d (sleep 1001, started by system()) was killed when b crashed", (int)helper);
	/* It is still w's: it ends with w. */
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(wait_pid_gone(helper, 3000), "w's helper %d outlived w's stop", (int)helper);
}

Test(contain, a_workers_helper_survives_the_crashes_of_another_worker)
{
	helper_survives_another_workers_crashes();
}

Test(contain, a_workers_helper_survives_the_crashes_of_another_worker_without_cgroups)
{
	hide_cgroups();
	helper_survives_another_workers_crashes();
}

/* The host as PID 1 of a PID namespace of its own, as in a container (with
 * its own /proc). t->pid is the process waiting for it outside; returns the
 * host's pid as this test sees it. */
static pid_t start_as_pid1(struct wt *t)
{
	int p[2];
	cr_assert(pipe(p) == 0);
	pid_t outside = fork();
	cr_assert(outside >= 0);
	if (outside == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(126);
		pid_t host = fork();
		if (host == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			int fd = open(t->errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (mount("proc", "/proc", "proc", 0, NULL) < 0 || fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
				_exit(126);
			execl(WARD_BIN, "ward", "run", "-c", t->conf, (char *)NULL);
			_exit(127);
		}
		if (write(p[1], &host, sizeof(host)) != sizeof(host))
			_exit(126);
		int status;
		while (waitpid(host, &status, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	close(p[1]);
	pid_t host = 0;
	cr_assert(read(p[0], &host, sizeof(host)) == sizeof(host), "no PID namespace here");
	close(p[0]);
	t->pid = outside;
	cr_assert(wt_wait_sql(t, 10000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '1'"),
		  "the host did not come up as PID 1:\n%s", wt_host_stderr(t));
	return host;
}

/* A process of the host's PID namespace whose parent exits: re-parented to
 * the host, and no worker's. Returns its pid as this test sees it. */
static pid_t make_orphan_under(pid_t host)
{
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%d/ns/pid", (int)host);
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "%s: %s", ns, strerror(errno));
	pid_t entering = fork();
	if (entering == 0) {
		if (setns(fd, CLONE_NEWPID) < 0)
			_exit(126);
		pid_t parent = fork(); /* inside the namespace */
		if (parent == 0) {
			if (fork() == 0) {
				execlp("sleep", "sleep", "1003", (char *)NULL);
				_exit(127);
			}
			_exit(0); /* its child is orphaned inside the namespace: the host is its reaper */
		}
		_exit(parent > 0 && waitpid(parent, NULL, 0) == parent ? 0 : 126);
	}
	close(fd);
	int status;
	cr_assert(waitpid(entering, &status, 0) == entering && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Find it among the host's children. */
	long long deadline = now_ms() + 5000;
	do {
		char path[80];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)host, (int)host);
		char *kids = wt_read(path);
		for (char *p = kids, *end; p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
			char *cmd = wt_read(path);
			if (cmd && strcmp(cmd, "sleep") == 0 && strcmp(cmd + 6, "1003") == 0)
				return (pid_t)pid;
		}
		sleep_ms(20);
	} while (now_ms() < deadline);
	cr_assert_fail("the orphan was not re-parented to the host");
	return 0;
}

Test(contain, an_orphan_re_parented_to_a_pid_1_host_is_left_alone_and_reaped)
{
	wt_setup(&wt, "[w]\nplugin = idle\n" CRASHER);
	pid1_host = true;
	pid_t host = start_as_pid1(&wt);
	pid_t orphan = make_orphan_under(host);
	cr_assert(wt_wait_sql(&wt, 15000, "SELECT count(*) >= 5 FROM runs WHERE worker = 'b' AND reason = 'signal'"),
		  "b did not crash five times:\n%s", wt_host_stderr(&wt));
	cr_expect(pid_alive(orphan), "an orphan re-parented to the host was killed when b crashed");
	kill(orphan, SIGKILL);
	cr_expect(wait_reaped(orphan, 3000), "the host did not reap the orphan once it died");
	kill(host, SIGTERM);
	int status = 0;
	long long deadline = now_ms() + 10000;
	pid_t r;
	while ((r = waitpid(wt.pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
		sleep_ms(10);
	cr_assert_eq(r, wt.pid, "the host did not stop");
	wt.pid = 0;
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the host ended with status %d", status);
}

/* ---- item: exact containment with cgroup v2 ---- */

Test(contain, each_instance_runs_in_a_cgroup_of_its_own_removed_when_the_host_stops)
{
	require_cgroups();
	char pidfile[300];
	wt_setup(&wt, "");
	pidfile_path(pidfile, sizeof(pidfile));
	configure("[w]\nplugin = contain_rogue\nhelper = system\npidfile = %s\n"
		  "[two]\nplugin = idle\ninstances = 2\nrestart_delay = 10ms\n", pidfile);
	wt_start(&wt);
	pid_t w = running("w", 0), t0 = running("two", 0), t1 = running("two", 1), helper;
	read_pids(pidfile, &helper, 1);

	/* <the host's cgroup>/ward-<16 hex digits>/<name>.worker/<instance> */
	const char *own = cgroup_of(getpid()), *cg = cgroup_of(t0);
	char base[300];
	snprintf(base, sizeof(base), "%s/ward-", strcmp(own, "/") == 0 ? "" : own);
	cr_assert(strncmp(cg, base, strlen(base)) == 0 && strlen(cg) > strlen(base) + 16,
		  "instance two:0 is in cgroup %s, not below %s...", cg, base);
	snprintf(base, sizeof(base), "%.*s", (int)(strlen(base) + 16), cg);
	char want[400];
	snprintf(want, sizeof(want), "%s/two.worker/0", base);
	cr_expect_str_eq(cg, want);
	snprintf(want, sizeof(want), "%s/two.worker/1", base);
	cr_expect_str_eq(cgroup_of(t1), want);
	snprintf(want, sizeof(want), "%s/w.worker/0", base);
	cr_expect_str_eq(cgroup_of(w), want);
	cr_expect_str_eq(cgroup_of(helper), want, "the helper system() started is not in its worker's cgroup");
	char line[400];
	snprintf(line, sizeof(line), "each worker instance runs in a cgroup of its own below %s%s", cgroup2_mount(), base);
	cr_expect_eq(wt_count(wt_host_stderr(&wt), line), 1, "the host did not say where, once:\n%s", wt_host_stderr(&wt));

	/* A restart runs in the same cgroup, which the last run left empty. */
	kill(t0, SIGKILL);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker = 'two' AND instance = 0"));
	pid_t again = running("two", 0);
	snprintf(want, sizeof(want), "%s/two.worker/0", base);
	cr_expect_str_eq(cgroup_of(again), want);

	char dir[600];
	snprintf(dir, sizeof(dir), "%s%s", cgroup2_mount(), base);
	struct stat st;
	cr_expect(stat(dir, &st) == 0, "%s does not exist while the host runs", dir);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(stat(dir, &st) < 0 && errno == ENOENT, "%s is left after the host's stop", dir);
}

/* Starts the host alone in a new cgroup, as systemd does with Delegate=yes:
 * the cgroup's directory into own (removed at the end of the test). */
static void start_alone_in_a_cgroup(struct wt *t, char *own, size_t size)
{
	const char *mine = cgroup_of(getpid());
	snprintf(own, size, "%s%s/ward-test-own-%d", cgroup2_mount(), strcmp(mine, "/") == 0 ? "" : mine, (int)getpid());
	cr_assert(mkdir(own, 0755) == 0, "%s: %s", own, strerror(errno));
	snprintf(own_cgroup, sizeof(own_cgroup), "%s", own);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		char procs[500];
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", own);
		FILE *f = fopen(procs, "w");
		int fd = open(t->errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (!f || fputs("0", f) < 0 || fclose(f) != 0 || fd < 0 || dup2(fd, 2) < 0 || dup2(fd, 1) < 0)
			_exit(126);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(WARD_BIN, "ward", "run", "-c", t->conf, (char *)NULL);
		_exit(127);
	}
	t->pid = pid;
	cr_assert(wt_wait_sql(t, 10000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '%d'", (int)pid),
		  "the host did not come up:\n%s", wt_host_stderr(t));
}

Test(contain, a_host_alone_in_its_cgroup_moves_into_supervisor_and_puts_its_workers_beside_it)
{
	require_cgroups();
	wt_setup(&wt, "[w]\nplugin = idle\n");
	char own[400], want[500];
	start_alone_in_a_cgroup(&wt, own, sizeof(own));
	pid_t w = running("w", 0);
	const char *base = own + strlen(cgroup2_mount());
	snprintf(want, sizeof(want), "%s/supervisor", base);
	cr_expect_str_eq(cgroup_of(wt.pid), want, "the host is in %s, not %s", cgroup_of(wt.pid), want);
	cr_expect_str_eq(cgroup_of(wt_spawner(wt.pid)), want, "the spawner did not move into supervisor");
	snprintf(want, sizeof(want), "%s/workers/w.worker/0", base);
	cr_expect_str_eq(cgroup_of(w), want);
	snprintf(want, sizeof(want), "each worker instance runs in a cgroup of its own below %s/workers", own);
	cr_expect(strstr(wt_host_stderr(&wt), want), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	snprintf(want, sizeof(want), "%s/workers", own);
	struct stat st;
	cr_expect(stat(want, &st) < 0 && errno == ENOENT, "%s is left after the host's stop", want);
}

Test(contain, a_setsid_child_and_its_own_child_die_with_their_worker)
{
	char pidfile[300];
	start_rogue("deep", pidfile, sizeof(pidfile));
	pid_t w = running("w", 0), kids[2];
	cr_assert_eq(read_pids(pidfile, kids, 2), 2);
	cr_assert(pid_alive(kids[0]) && pid_alive(kids[1]));
	unlink(pidfile);
	kill(w, SIGKILL);
	cr_expect(wait_pid_gone(kids[0], 3000), "the worker's setsid() child %d outlived it", (int)kids[0]);
	cr_expect(wait_pid_gone(kids[1], 3000), "the child %d of the worker's setsid() child outlived the worker",
		  (int)kids[1]);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w'"));
	running("w", 0);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(contain, a_worker_the_host_forks_itself_moves_into_its_cgroup_first)
{
	require_cgroups();
	wt_setup(&wt, "[w]\nplugin = idle\nrestart_delay = 10ms\n");
	wt_start(&wt);
	pid_t w = running("w", 0);
	char want[400];
	snprintf(want, sizeof(want), "%s", cgroup_of(w));
	cr_assert(strstr(want, "/w.worker/0"), "w is in cgroup %s", want);
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0);
	kill(spawner, SIGKILL);
	cr_assert(wait_pid_gone(spawner, 3000));
	kill(w, SIGKILL); /* its restart is forked by the host */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w'"));
	pid_t again = running("w", 0);
	cr_assert(strstr(wt_host_stderr(&wt), "the host forks workers itself"), "%s", wt_host_stderr(&wt));
	cr_expect_str_eq(cgroup_of(again), want);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(contain, without_cgroups_the_host_says_so_once_and_each_worker_has_a_session_of_its_own)
{
	hide_cgroups();
	wt_setup(&wt, "[w]\nplugin = idle\ninstances = 2\n");
	wt_start(&wt);
	pid_t w0 = running("w", 0), w1 = running("w", 1);
	char *err = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(err, "cgroups: "), 1, "not said exactly once:\n%s", err);
	cr_expect(strstr(err, "cgroups: no cgroup v2 hierarchy holding the host's cgroup / is mounted; worker processes are"
			      " contained by their session and process group only"),
		  "%s", err);
	cr_expect_str_eq(cgroup_of(w0), cgroup_of(wt.pid), "a worker changed cgroup without cgroups");
	cr_expect_eq(getsid(w0), w0, "worker 0 is not the leader of a session of its own");
	cr_expect_eq(getsid(w1), w1, "worker 1 is not the leader of a session of its own");
	cr_expect_eq(getpgid(w0), w0);
	/* Without cgroups the CPU time is read from /proc: the worker's session and process group. */
	cr_expect(cpu_seconds("w") >= 0, "cpu_seconds without cgroups is null");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(contain, status_shows_the_cpu_time_of_each_instances_cgroup)
{
	require_cgroups();
	wt_setup(&wt, "[spin]\nplugin = busy\n[rest]\nplugin = idle\n");
	wt_start(&wt);
	running("spin", 0);
	running("rest", 0);
	long long t0 = now_ms();
	sleep_ms(1500);
	double spin = cpu_seconds("spin"), rest = cpu_seconds("rest");
	double wall = (double)(now_ms() - t0) / 1000 + 1;
	cr_expect(spin > 0.05 && spin <= wall, "a worker spinning for 1.5 s shows cpu_seconds %.3f", spin);
	cr_expect(rest >= 0 && rest * 10 < spin, "an idle worker shows cpu_seconds %.3f beside %.3f", rest, spin);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* An instance's cgroup outlives its runs (a restart reuses it, empty), and
 * its cpu.stat counts on: each run's CPU time must count from its start. */
Test(contain, a_restarted_instance_shows_the_cpu_time_of_its_own_run_only)
{
	require_cgroups();
	wt_setup(&wt, "[spin]\nplugin = busy\nrestart_delay = 10ms\n");
	wt_start(&wt);
	pid_t first = running("spin", 0);
	sleep_ms(3000);
	double before = cpu_seconds("spin");
	cr_assert_gt(before, 0.3, "a worker spinning for 3 s shows cpu_seconds %.3f", before);
	kill(first, SIGKILL);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker = 'spin'"));
	pid_t again = running("spin", 0);
	cr_assert_neq(again, first);
	double after = -1;
	for (long long deadline = now_ms() + 5000; after < 0 && now_ms() < deadline; sleep_ms(50))
		after = cpu_seconds("spin");
	cr_expect(after >= 0 && after < before,
		  "the new run shows cpu_seconds %.3f, the run before it %.3f after 3 s: the old run's time is counted again",
		  after, before);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* A run whose processes outlived it ends with cgroup.kill. Linux kills
 * whatever is cloned into a cgroup after that, so such a cgroup must be
 * made anew: every later run must start and run, not die as it is born. */
Test(contain, runs_after_a_cgroup_kill_start_and_run)
{
	char pidfile[300];
	start_rogue("system", pidfile, sizeof(pidfile));
	for (int run = 1; run <= 2; run++) {
		pid_t w = running("w", 0), helper;
		read_pids(pidfile, &helper, 1); /* it outlives w: the host kills w's cgroup */
		unlink(pidfile); /* the next run's helper writes it again */
		kill(w, SIGKILL);
		cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = %d FROM runs WHERE worker = 'w'", run + 1),
			  "w was not restarted:\n%s", wt_host_stderr(&wt));
		cr_expect(wait_pid_gone(helper, 5000), "the helper of run %d outlived its cgroup's kill", run);
	}
	pid_t helper;
	running("w", 0);
	read_pids(pidfile, &helper, 1); /* the third run got as far as starting its helper */
	sleep_ms(300);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'load-failed'"), 0,
		     "a run after the cgroup kill died as it started:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 3, "runs:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: a worker cannot make itself unkillable ---- */

#define ROGUE_AS_NOBODY "[w]\nplugin = contain_rogue\nuser = nobody\njoin_host_group = yes\n"

static void the_watchdog_kills_a_worker_that_tried_the_hosts_group(void)
{
	wt_setup(&wt, ROGUE_AS_NOBODY "hang = yes\nwatchdog = 300ms\nrestart_delay = 10ms\nstop_timeout = 300ms\n");
	chmod(wt.dir, 0711); /* mkdtemp made it 0700: let nobody reach its state dir below */
	wt_start(&wt);
	pid_t w = running("w", 0);
	cr_expect(wt_wait_log(&wt, 5000, "w", "cannot join the host's process group: Operation not permitted"),
		  "the worker joined the host's process group:\n%s", wt_log(&wt, "w"));
	cr_expect_neq(getpgid(w), getpgid(wt.pid));
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'hung'"),
		  "the watchdog never fired:\n%s", wt_log(&wt, "w"));
	cr_expect(wait_pid_gone(w, 3000), "the hung worker %d outlived the watchdog's kill", (int)w);
	running("w", 0); /* restarted */
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(contain, the_watchdog_kills_a_worker_that_tried_to_join_the_hosts_process_group)
{
	the_watchdog_kills_a_worker_that_tried_the_hosts_group();
}

Test(contain, the_watchdog_kills_a_worker_that_tried_to_join_the_hosts_process_group_without_cgroups)
{
	hide_cgroups();
	the_watchdog_kills_a_worker_that_tried_the_hosts_group();
}

static void the_hosts_stop_ends_a_worker_in_its_group_ignoring_sigterm(void)
{
	wt_setup(&wt, ROGUE_AS_NOBODY "block_sigterm = yes\nstop_timeout = 300ms\n");
	chmod(wt.dir, 0711);
	wt_start(&wt);
	pid_t w = running("w", 0);
	cr_assert(wt_wait_log(&wt, 5000, "w", "the host's process group"));
	long long t0 = now_ms();
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(now_ms() - t0 < 5000, "the stop took %lld ms", now_ms() - t0);
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'w'"), "stop-timeout");
	cr_expect(wait_pid_gone(w, 2000), "the worker %d outlived the host's stop", (int)w);
}

Test(contain, the_hosts_stop_ends_a_worker_that_tried_to_join_its_group_and_ignores_sigterm)
{
	the_hosts_stop_ends_a_worker_in_its_group_ignoring_sigterm();
}

Test(contain, the_hosts_stop_ends_a_worker_that_tried_to_join_its_group_and_ignores_sigterm_without_cgroups)
{
	hide_cgroups();
	the_hosts_stop_ends_a_worker_in_its_group_ignoring_sigterm();
}

/* Freezes pid in a cgroup v1 freezer: SIGKILL cannot end it until thawed. */
static void freeze(pid_t pid)
{
	struct stat st;
	if (stat("/sys/fs/cgroup/freezer/cgroup.procs", &st) < 0)
		cr_skip_test("no cgroup v1 freezer here: no way to make a process that SIGKILL cannot end");
	snprintf(freezer, sizeof(freezer), "/sys/fs/cgroup/freezer/ward-test-%d", (int)getpid());
	cr_assert(mkdir(freezer, 0755) == 0 || errno == EEXIST, "%s: %s", freezer, strerror(errno));
	char path[400];
	snprintf(path, sizeof(path), "%s/cgroup.procs", freezer);
	FILE *f = fopen(path, "w");
	cr_assert(f && fprintf(f, "%d", (int)pid) > 0 && fclose(f) == 0, "cannot move %d into %s", (int)pid, freezer);
	snprintf(path, sizeof(path), "%s/freezer.state", freezer);
	f = fopen(path, "w");
	cr_assert(f && fputs("FROZEN", f) >= 0 && fclose(f) == 0);
}

static void thaw(void)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/freezer.state", freezer);
	FILE *f = fopen(path, "w");
	cr_assert(f && fputs("THAWED", f) >= 0 && fclose(f) == 0);
}

Test(contain, the_hosts_stop_never_waits_forever_for_a_process_sigkill_cannot_end)
{
	wt_setup(&wt, "[w]\nplugin = ignore_stop\nstop_timeout = 300ms\n[other]\nplugin = idle\n");
	wt_start(&wt);
	pid_t w = running("w", 0), other = running("other", 0);
	freeze(w);
	long long t0 = now_ms();
	int rc = wt_stop(&wt, 30000);
	long long took = now_ms() - t0;
	cr_expect_eq(rc, 0);
	cr_expect(took < 20000, "the stop took %lld ms", took);
	cr_expect(took >= 5000, "the host gave up on the process before it had 5 s to die (%lld ms)", took);
	char line[128];
	snprintf(line, sizeof(line), "[w:0] could not kill pid %d: still alive 5 s after SIGKILL", (int)w);
	cr_expect(strstr(wt_host_stderr(&wt), line), "the host did not name the process it could not kill:\n%s",
		  wt_host_stderr(&wt));
	char *msg = wt_sql_text(&wt, "SELECT message FROM runs WHERE worker = 'w'");
	cr_expect(msg && strstr(msg, "left behind"), "history says: %s", msg ? msg : "(null)");
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'other'"), "stopped");
	cr_expect(!pid_alive(other));
	cr_expect(pid_alive(w), "the frozen process died before it was thawed");
	thaw();
	cr_expect(wait_pid_gone(w, 3000), "the process did not die of its pending SIGKILL once thawed");
}

Test(contain, a_run_is_over_only_once_the_last_process_of_its_cgroup_is_gone)
{
	char pidfile[300];
	start_rogue("system", pidfile, sizeof(pidfile));
	pid_t w = running("w", 0), helper;
	read_pids(pidfile, &helper, 1);
	freeze(helper); /* SIGKILL cannot end it until it is thawed */
	kill(w, SIGKILL);
	sleep_ms(2000);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w'"), 1,
		     "w restarted while a process of its last run was still in its cgroup");
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND ended_at IS NULL"), 1,
		     "the run ended while a process of it was still in its cgroup");
	/* That process cannot be killed: after 5 s the run counts as over anyway. */
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM runs WHERE worker = 'w'"), "w was never restarted:\n%s",
		  wt_host_stderr(&wt));
	char line[200];
	snprintf(line, sizeof(line), "[w:0] 1 process of its cgroup (pid %d first) still alive 5 s after SIGKILL", (int)helper);
	cr_expect(strstr(wt_host_stderr(&wt), line), "%s", wt_host_stderr(&wt));
	cr_expect_str_eq(wt_sql_text(&wt, "SELECT reason FROM runs WHERE worker = 'w' ORDER BY id LIMIT 1"), "signal");
	/* The new run starts beside it, in the cgroup that was killed: it runs
	 * (Linux kills what is cloned into a killed cgroup: it joins instead). */
	running("w", 0);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE worker = 'w' AND reason = 'load-failed'"), 0,
		     "the run started beside the leftover died as it started:\n%s", wt_host_stderr(&wt));
	thaw();
	cr_expect(wait_pid_gone(helper, 3000), "the helper did not die of its pending SIGKILL once thawed");
	running("w", 0);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: nothing of a worker survives a SIGKILLed host ---- */

#define DAEMON_BLOCKING_DEATH "[w]\nplugin = contain_rogue\nhelper = daemon\npidfile = %s\nblock_host_death = yes\n"

Test(contain, a_sigkilled_host_takes_a_worker_blocking_its_death_signal_and_a_setsid_daemon_down)
{
	require_cgroups();
	char pidfile[300];
	wt_setup(&wt, "");
	pidfile_path(pidfile, sizeof(pidfile));
	configure(DAEMON_BLOCKING_DEATH, pidfile);
	wt_start(&wt);
	pid_t w = running("w", 0), daemon;
	read_pids(pidfile, &daemon, 1);
	cr_assert(pid_alive(daemon));
	kill(wt.pid, SIGKILL);
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	cr_expect(wait_pid_gone(w, 3000), "the worker that blocks the host-death signal survived its host");
	cr_expect(wait_pid_gone(daemon, 3000), "the worker's setsid() daemon survived the host");
}

Test(contain, a_new_host_kills_what_a_killed_host_left_in_its_cgroups_before_it_starts_anything)
{
	require_cgroups();
	char pidfile[300];
	wt_setup(&wt, "");
	pidfile_path(pidfile, sizeof(pidfile));
	configure(DAEMON_BLOCKING_DEATH, pidfile);
	wt_start(&wt);
	pid_t w = running("w", 0), daemon;
	read_pids(pidfile, &daemon, 1);
	/* The spawner, which would kill them when the host dies, cannot run. */
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0);
	extra[0] = spawner;
	kill(spawner, SIGSTOP);
	kill(wt.pid, SIGKILL);
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	sleep_ms(300);
	cr_assert(pid_alive(w) && pid_alive(daemon), "nothing was left behind: the test cannot check the next host");
	unlink(pidfile);

	wt_start(&wt);
	cr_expect(wait_pid_gone(w, 3000), "the new host left the old worker %d alive", (int)w);
	cr_expect(wait_pid_gone(daemon, 3000), "the new host left the old worker's daemon %d alive", (int)daemon);
	cr_expect(strstr(wt_host_stderr(&wt), "a previous host left 2 processes in "), "%s", wt_host_stderr(&wt));
	/* The new worker started after that: its own daemon is a new one. */
	pid_t fresh;
	read_pids(pidfile, &fresh, 1);
	cr_expect_neq(fresh, daemon);
	cr_expect(pid_alive(fresh));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
	cr_expect(wait_pid_gone(fresh, 3000));
}
