/*
 * test_container.c - the parts of running ward in a container that can run
 * on this machine (docs/containers.md): the host as an unprivileged user,
 * on a read-only root filesystem with state_dir the one writable place, the
 * one clear error when state_dir cannot be written (no volume, a read-only
 * volume, a directory of another user), and the container files
 * (contrib/docker/Dockerfile, contrib/k8s/ward.yaml) agreeing with what
 * ward installs and accepts. As PID 1 of a pid namespace (orphans reaped,
 * SIGTERM exit 0, critical exit 3): tests/test_probes.c.
 */
#define _GNU_SOURCE
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(nonroot, .fini = wt_teardown, .timeout = 90);
TestSuite(readonly_root, .fini = wt_teardown, .timeout = 90);
TestSuite(container_files, .fini = wt_teardown, .timeout = 120);

/* ---- helpers ---- */

/* The user the host runs as here: nobody when the tests run as root (as CI
 * does), else the user running them (still a non-root host end to end). */
static uid_t host_uid(void)
{
	return geteuid() == 0 ? 65534 : geteuid();
}

static gid_t host_gid(void)
{
	return geteuid() == 0 ? 65534 : getegid();
}

/* The command prefix that runs a program as host_uid() ("" when that is us). */
static const char *as_host_user(void)
{
	static char prefix[128];
	if (geteuid() != 0)
		return "";
	snprintf(prefix, sizeof(prefix), "setpriv --reuid=%d --regid=%d --clear-groups ", (int)host_uid(),
		 (int)host_gid());
	return prefix;
}

/* `ward ARGS -c conf` as the host's user; stdout and stderr kept until teardown. */
static int cli_as_host_user(char **out, char **err, const char *args)
{
	char o[400], e[400], *cmd;
	snprintf(o, sizeof(o), "%s/cli.out", wt.dir);
	snprintf(e, sizeof(e), "%s/cli.err", wt.dir);
	cr_assert(asprintf(&cmd, "%stimeout 20 %s %s -c %s >%s 2>%s", as_host_user(), WARD_BIN, args, wt.conf, o, e) >
		  0);
	int status = system(cmd);
	free(cmd);
	*out = wt_read(o);
	*err = wt_read(e);
	cr_assert(*out && *err);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The test's directory open to the host's user, and state_dir made its own
 * (as a volume is, in a container). The fixture plugins stay root's and
 * read-only to others, which strict_permissions accepts. */
static void give_state_dir_to_host_user(void)
{
	cr_assert(chmod(wt.dir, 0755) == 0, "chmod %s: %s", wt.dir, strerror(errno));
	cr_assert(mkdir(wt.state, 0700) == 0, "mkdir %s: %s", wt.state, strerror(errno));
	cr_assert(chown(wt.state, host_uid(), host_gid()) == 0, "chown %s: %s", wt.state, strerror(errno));
}

/* Starts `[prefix...] ward run -c conf` with stdout and stderr in errfile.
 * argv_prefix: the program that runs ward (NULL-terminated; ward's path and
 * arguments are appended). It execs ward in the same process, so wt.pid is
 * the host. */
static void launch_through(const char *const *argv_prefix)
{
	const char *argv[24];
	int n = 0;
	while (argv_prefix[n])
		argv[n] = argv_prefix[n], n++;
	argv[n++] = WARD_BIN;
	argv[n++] = "run";
	argv[n++] = "-c";
	argv[n++] = wt.conf;
	argv[n] = NULL;
	pid_t parent = getpid(), pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(wt.errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	wt.pid = pid;
}

/* ward run as the host's user. setpriv's own --pdeathsig: a change of uid
 * clears the one set before it, and the host must die with the test. */
static void launch_as_host_user(void)
{
	char uid[32], gid[32];
	snprintf(uid, sizeof(uid), "--reuid=%d", (int)host_uid());
	snprintf(gid, sizeof(gid), "--regid=%d", (int)host_gid());
	const char *root[] = {"setpriv", uid, gid, "--clear-groups", "--pdeathsig", "KILL", NULL};
	const char *self[] = {"env", NULL};
	launch_through(geteuid() == 0 ? root : self);
}

static void wait_host_up(void)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) FROM host WHERE key = 'pid' AND value = '%d'", (int)wt.pid),
		  "the host did not come up; its output:\n%s", wt_host_stderr(&wt));
}

/* `ward status` (as the host's user) exits 0 with n workers running. */
static void wait_all_running(int n)
{
	char *out = NULL, *err = NULL;
	bool up = false;
	for (long long deadline = now_ms() + 10000; !up && now_ms() < deadline; sleep_ms(50))
		up = cli_as_host_user(&out, &err, "status") == 0 && wt_count(out, " running ") >= n;
	cr_assert(up, "`ward status` as uid %d did not show %d workers running (exit 0):\n%s%s\nhost:\n%s",
		  (int)host_uid(), n, out, err, wt_host_stderr(&wt));
}

/* The real uid of a process, from /proc/PID/status; -1 if it is gone. */
static long proc_uid(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *st = wt_read(path), *line = st ? strstr(st, "\nUid:") : NULL;
	return line ? strtol(line + 5, NULL, 10) : -1;
}

static void expect_private_to_host_user(const char *name)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", wt.state, name);
	struct stat st;
	cr_assert(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
	cr_expect_eq(st.st_mode & 07777, 0600, "%s has mode %04o, not 0600", name, (unsigned)(st.st_mode & 07777));
	cr_expect_eq(st.st_uid, host_uid(), "%s is owned by uid %d, not the host's %d", name, (int)st.st_uid,
		     (int)host_uid());
}

/* ---- the host as an unprivileged user ---- */

Test(nonroot, a_host_run_by_an_unprivileged_user_runs_its_workers_as_that_user_and_keeps_its_files_private)
{
	wt_setup(&wt, "[w]\nplugin = idle\ninstances = 2\n[t]\nplugin = logs_ticker\n");
	give_state_dir_to_host_user();
	launch_as_host_user();
	wait_host_up();
	wait_all_running(2);
	cr_expect_eq(proc_uid(wt.pid), (long)host_uid(), "the host itself runs as uid %ld", proc_uid(wt.pid));
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM runs WHERE ended_at IS NULL"), 3);
	for (int i = 0; i < 3; i++) {
		pid_t pid = (pid_t)wt_sql_int(&wt,
					      "SELECT pid FROM runs WHERE ended_at IS NULL ORDER BY worker, instance LIMIT 1 OFFSET %d",
					      i);
		cr_assert(pid > 0, "run %d of 3 is not in the history", i + 1);
		cr_expect_eq(proc_uid(pid), (long)host_uid(), "worker pid %d runs as uid %ld, not %d", (int)pid,
			     proc_uid(pid), (int)host_uid());
	}
	cr_expect(wt_wait_log(&wt, 5000, "t", "tick 3"), "the worker's log under state_dir:\n%s", wt_log(&wt, "t"));
	expect_private_to_host_user("ward.db");
	expect_private_to_host_user("ward.sock");
	expect_private_to_host_user("ward.lock");
	char path[600];
	struct stat st;
	snprintf(path, sizeof(path), "%s/logs/t.log", wt.state);
	cr_assert(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	cr_expect_eq(st.st_uid, host_uid(), "the worker's log is owned by uid %d", (int)st.st_uid);
	/* The control socket answers that user: a restart goes through. */
	char *out, *err;
	cr_expect_eq(cli_as_host_user(&out, &err, "restart t"), 0, "%s%s", out, err);
	cr_expect(wt_wait_sql(&wt, 5000, "SELECT count(*) FROM runs WHERE worker = 't' AND reason = 'stopped'"));
	wait_all_running(2);
	int rc = wt_stop(&wt, 10000);
	cr_expect_eq(rc, 0, "SIGTERM: exit 0, not %d:\n%s", rc, wt_host_stderr(&wt));
	cr_expect(strstr(wt_host_stderr(&wt), "every worker has stopped; host exiting"), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_count(wt_host_stderr(&wt), "error:"), 0, "%s", wt_host_stderr(&wt));
}

Test(nonroot, a_state_dir_the_host_user_cannot_write_is_one_clear_error_and_exit_1)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	/* The test user's, and read-only to everyone: to nobody (when the
	 * tests run as root) as a root-owned volume is; to its owner else. */
	cr_assert(chmod(wt.dir, 0755) == 0);
	cr_assert(mkdir(wt.state, 0555) == 0);
	launch_as_host_user();
	int rc = wt_wait_exit(&wt, 10000);
	cr_assert_neq(rc, -1, "the host neither started nor exited:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 1, "exit %d, not 1:\n%s", rc, wt_host_stderr(&wt));
	char want[600];
	snprintf(want, sizeof(want), "error: unable to write in state_dir %s: Permission denied; ward keeps", wt.state);
	char *err = wt_host_stderr(&wt);
	cr_expect(strstr(err, want), "want '%s' in:\n%s", want, err);
	snprintf(want, sizeof(want), "make it writable by this host's user (uid %d)", (int)host_uid());
	cr_expect(strstr(err, want), "want '%s' in:\n%s", want, err);
	cr_expect_eq(wt_count(err, "\n"), 1, "one line, not:\n%s", err);
}

/* ---- a read-only root filesystem ---- */

/* Run in a mount namespace of the host's own before ward: bind state_dir
 * ($1, unless it is "-") on itself, make every other mount read-only (but
 * /proc and /dev, as a container runtime leaves them), check that it took,
 * then exec ward ($2...). */
static const char READONLY_ROOT[] =
	"set -e\n"
	"[ \"$1\" = - ] || mount --bind \"$1\" \"$1\"\n"
	"awk '{print $5, $6}' /proc/self/mountinfo | while read -r target opts; do\n"
	"  case \"$target\" in /proc|/proc/*|/dev|/dev/*|\"$1\") continue;; esac\n"
	"  case \",$opts,\" in *,ro,*) continue;; esac\n"
	"  mount -o remount,bind,ro \"$target\"\n"
	"done\n"
	"for d in / /tmp /sys/fs/cgroup \"$(dirname \"$2\")\" \"$5\"; do\n"
	"  if touch \"$d/.ward-rw-probe\" 2>/dev/null; then\n"
	"    rm -f \"$d/.ward-rw-probe\"; echo \"readonly-root: $d is still writable\"; exit 97\n"
	"  fi\n"
	"done\n"
	"if [ \"$1\" != - ] && ! touch \"$1/.ward-rw-probe\"; then echo \"readonly-root: $1 is not writable\"; exit 96; fi\n"
	"[ \"$1\" = - ] || rm -f \"$1/.ward-rw-probe\"\n"
	"shift\n"
	"exec \"$@\"\n";

/* ward run on a read-only root, with `writable` (or "-": nothing) the one
 * place it may write. Unprivileged, a user namespace makes the mounts ours. */
static void launch_on_readonly_root(const char *writable)
{
	const char *root[] = {"unshare", "--mount", "sh", "-c", READONLY_ROOT, "readonly-root", writable, NULL};
	const char *self[] = {"unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READONLY_ROOT,
			      "readonly-root", writable, NULL};
	launch_through(geteuid() == 0 ? root : self);
}



/* Whether a line of the host's stdout (wt.errfile holds stdout and stderr
 * here) holds both a and b, within timeout_ms. */
static bool stdout_has_line(int timeout_ms, const char *a, const char *b)
{
	for (long long deadline = now_ms() + timeout_ms; now_ms() < deadline; sleep_ms(50)) {
		char *text = wt_read_raw(wt.errfile);
		bool found = false;
		for (char *line = text ? strtok(text, "\n") : NULL; line && !found; line = strtok(NULL, "\n"))
			found = strstr(line, a) && strstr(line, b);
		free(text);
		if (found)
			return true;
	}
	return false;
}

Test(readonly_root, with_only_state_dir_writable_the_host_boots_logs_records_and_serves_its_probes)
{
	int port = wt_free_port();
	wt_setup(&wt, "[w]\nplugin = idle\n[t]\nplugin = logs_ticker\n"
		      "[crashy]\nplugin = crash_after\ncycles = 3\ninterval = 10ms\nrestart_delay = 1s\nlimit.core = 0\n");
	char http[64];
	/* As in a container: the workers' lines on the host's stdout, no log file. */
	snprintf(http, sizeof(http), "[ward]\nhttp = 127.0.0.1:%d\nlog_output = stdout\n", port);
	wt_write_conf(&wt, "zz.ini", http);
	cr_assert(mkdir(wt.state, 0700) == 0);
	launch_on_readonly_root(wt.state);
	wait_host_up();
	char *out, *err;
	bool up = false;
	for (long long deadline = now_ms() + 10000; !up && now_ms() < deadline; sleep_ms(50))
		up = wt_cli(&wt, &out, &err, "status w") == 0 && wt_cli(&wt, &out, &err, "status t") == 0;
	cr_assert(up, "the workers did not come up on a read-only root:\n%s%s\nhost:\n%s", out, err,
		  wt_host_stderr(&wt));
	/* Logs, history and probes: state_dir and memory are all they need. */
	cr_expect(stdout_has_line(5000, "[t:0]", "tick 3"), "the worker's line is not on the host's stdout:\n%s",
		  wt_host_stderr(&wt));
	cr_expect(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 1 FROM runs WHERE worker = 'crashy' AND reason = 'signal'"),
		  "crashes are recorded:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_cli(&wt, &out, &err, "history crashy"), 0, "%s", err);
	cr_expect(strstr(out, "signal SIGSEGV"), "%s", out);
	cr_expect_eq(wt_http_code(port, "/healthz"), 200);
	cr_expect_eq(wt_http_code(port, "/readyz"), 200);
	char log[400];
	snprintf(log, sizeof(log), "%s/logs/t.log", wt.state);
	cr_expect(access(log, F_OK) != 0, "log_output = stdout wrote %s", log);
	cr_assert_eq(wt_cli(&wt, NULL, &err, "stop crashy"), 0, "%s", err);
	int rc = wt_stop(&wt, 10000);
	cr_expect_eq(rc, 0, "exit %d:\n%s", rc, wt_host_stderr(&wt));
	/* Nothing it needed was outside state_dir: no write failed. Its one
	 * warning besides the crashes is that cgroups cannot be used (as in a
	 * container: /sys is read-only). */
	char *host = wt_host_stderr(&wt);
	cr_expect_eq(wt_count(host, "error:"), 0, "%s", host);
	cr_expect_eq(wt_count(host, "warning:"),
		     wt_count(host, "warning: cgroups:") + wt_count(host, "warning: [crashy:0] exited: signal SIGSEGV"),
		     "%s", host);
	cr_expect_eq(wt_count(host, "warning: cgroups:"), 1, "%s", host);
	cr_expect(strstr(host, "every worker has stopped; host exiting"), "%s", host);
}

Test(readonly_root, without_a_volume_at_state_dir_the_host_says_so_once_and_exits_1)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	launch_on_readonly_root("-"); /* state_dir does not exist, and cannot be created */
	int rc = wt_wait_exit(&wt, 10000);
	cr_assert_neq(rc, -1, "the host neither started nor exited:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 1, "exit %d:\n%s", rc, wt_host_stderr(&wt));
	char *err = wt_host_stderr(&wt), want[600];
	snprintf(want, sizeof(want), "error: unable to create state_dir %s: Read-only file system; ward keeps its lock",
		 wt.state);
	cr_expect(strstr(err, want), "want '%s' in:\n%s", want, err);
	cr_expect(strstr(err, "(in a container: a volume)"), "%s", err);
	cr_expect_eq(wt_count(err, "\n"), 1, "one line, not:\n%s", err);
}

Test(readonly_root, a_read_only_state_dir_is_one_clear_error_and_exit_1)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	cr_assert(mkdir(wt.state, 0700) == 0);
	/* state_dir exists, but on the read-only root too (a volume mounted read-only) */
	char elsewhere[300];
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", wt.dir);
	cr_assert(mkdir(elsewhere, 0700) == 0);
	launch_on_readonly_root(elsewhere);
	int rc = wt_wait_exit(&wt, 10000);
	cr_assert_neq(rc, -1, "the host neither started nor exited:\n%s", wt_host_stderr(&wt));
	cr_expect_eq(rc, 1, "exit %d:\n%s", rc, wt_host_stderr(&wt));
	char *err = wt_host_stderr(&wt), want[600];
	snprintf(want, sizeof(want), "error: unable to write in state_dir %s: Read-only file system; ward keeps", wt.state);
	cr_expect(strstr(err, want), "want '%s' in:\n%s", want, err);
	cr_expect_eq(wt_count(err, "\n"), 1, "one line, not:\n%s", err);
	char db[400];
	snprintf(db, sizeof(db), "%s/ward.db", wt.state);
	cr_expect_eq(access(db, F_OK), -1, "nothing was written");
}

/* ---- contrib/docker/Dockerfile and contrib/k8s/ward.yaml ---- */

/* Runs a shell command with its output in `out` (kept until teardown): its exit code. */
static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...)
{
	char *cmd, *full, path[400];
	va_list ap;
	va_start(ap, fmt);
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/sh.out", wt.dir);
	cr_assert(asprintf(&full, "(%s) >%s 2>&1", cmd, path) > 0);
	int status = system(full);
	free(cmd);
	free(full);
	*out = wt_read(path);
	cr_assert(*out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Where the image has its plugins (contrib/docker/ward.ini's plugin_dir;
 * container_files.py checks that the Dockerfile installs them there). */
#define IMAGE_PLUGIN_DIR "/usr/lib/ward/plugins"

/* The shared libraries the runtime stage has: libc6's and libgnutls30's
 * (with what it depends on); under ASan also the sanitizers' runtimes. */
static bool runtime_has(const char *lib)
{
	static const char *const have[] = {"linux-vdso", "ld-linux-x86-64", "libc", "libm", "libgnutls", "libp11-kit",
					   "libidn2", "libunistring", "libtasn1", "libnettle", "libhogweed", "libgmp",
					   "libffi", "libasan", "libubsan", "libstdc++", "libgcc_s", NULL};
	for (int i = 0; have[i]; i++)
		if (strncmp(lib, have[i], strlen(have[i])) == 0 && lib[strlen(have[i])] == '.')
			return true;
	return false;
}

Test(container_files, the_dockerfile_and_the_kubernetes_manifest_agree_with_each_other_and_with_ward)
{
	wt_setup(&wt, "");
	char *out;
	char files[300];
	snprintf(files, sizeof(files), "%s/files", wt.dir);
	cr_assert(mkdir(files, 0755) == 0);
	int rc = sh(&out, "python3 %s/tests/container_files.py %s %s", SOURCE_DIR, SOURCE_DIR, files);
	cr_assert_eq(rc, 0, "tests/container_files.py (exit %d):\n%s", rc, out);

	/* The build stage's install step, as the Dockerfile runs it. */
	char build[300], dest[300];
	snprintf(build, sizeof(build), "%s", PLUGIN_DIR);
	*strrchr(build, '/') = '\0'; /* PLUGIN_DIR is <build>/plugins */
	snprintf(dest, sizeof(dest), "%s/out", wt.dir);
	rc = sh(&out, "DESTDIR=%s cmake --install %s --prefix /usr", dest, build);
	cr_assert_eq(rc, 0, "cmake --install (exit %d):\n%s", rc, out);
	char ward[400];
	snprintf(ward, sizeof(ward), "%s/usr/bin/ward", dest);
	cr_expect_eq(sh(&out, "%s version", ward), 0, "%s", out);
	cr_expect(strstr(out, "ABI"), "%s", out);
	rc = sh(&out, "ldd %s", ward);
	cr_assert_eq(rc, 0, "%s", out);
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char lib[256];
		if (sscanf(line, " %255s", lib) != 1)
			continue;
		char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
		cr_expect(runtime_has(base), "the installed ward needs %s, which the image's runtime stage does not install "
					     "(contrib/docker/Dockerfile)", base);
	}

	/* What the image and the ConfigMap configure is valid for that ward,
	 * with its plugins where the image has them (below DESTDIR here). */
	const char *confs[] = {"image", "configmap"};
	for (int i = 0; i < 2; i++) {
		char dir[400], text[1200];
		snprintf(dir, sizeof(dir), "%s/%s", files, confs[i]);
		snprintf(text, sizeof(text), "[ward]\nplugin_dir = %s%s\nstate_dir = %s/state-%s\n", dest, IMAGE_PLUGIN_DIR,
			 wt.dir, confs[i]);
		char over[500];
		snprintf(over, sizeof(over), "%s/zz-test.ini", dir);
		FILE *f = fopen(over, "w");
		cr_assert(f);
		fputs(text, f);
		fclose(f);
		rc = sh(&out, "%s check -c %s", ward, dir);
		cr_expect_eq(rc, 0, "ward check of the %s's configuration (exit %d):\n%s", confs[i], rc, out);
		char want[500];
		snprintf(want, sizeof(want), "%s%s/ticker.so", dest, IMAGE_PLUGIN_DIR);
		cr_expect(strstr(out, "configuration is valid: 1 worker") && strstr(out, want), "%s:\n%s", confs[i], out);
	}
}
