/*
 * child.c - the worker process between fork() and exit.
 *
 * Before any plugin code runs, the process is in its instance's cgroup (when
 * there are cgroups), gets a session of its own (so also its own process
 * group, which it can never leave for the host's or another worker's), the
 * default signal dispositions and an empty mask, stdin on /dev/null,
 * stdout/stderr on the host's log pipe, only its own descriptors, the
 * configured environment, identity, limits and working directory, and a
 * parent-death signal. A failure at any step reaches the host as an END frame
 * with the reason, so a worker that died before loading always says why.
 * A command worker's process (the command key) goes through the same
 * set-up and then execs its program instead of loading a plugin.
 *
 * The host is single-threaded, so after fork() this process may use libc
 * freely; it never returns into host code.
 */
#define _GNU_SOURCE
#include "worker/child.h"
#include "worker/loader.h"
#include "worker/probe.h"
#include "worker/runtime.h"
#include "worker/slot.h"
#include "common/command.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Descriptors in a worker: 0-2 stdio, 3.. the listen sockets (the systemd
 * LISTEN_FDS convention), then the runtime channel, then the runtime's eventfd. */
#define FIRST_LISTEN_FD 3

struct setup {
	const struct child_spec *spec;
	ward_ctx ctx;
	uintptr_t own_slot_page;
};

static noreturn void fail_setup(struct setup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static noreturn void fail_setup(struct setup *s, const char *fmt, ...)
{
	char msg[FRAME_TEXT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->spec->probe)
		probe_send_failure(s->ctx.frame_fd, msg);
	else
		runtime_send_end(&s->ctx, REASON_LOAD_FAILED, 1, "%s", msg);
	_exit(1);
}

/* The signals not at their default disposition in the forking process, as
 * child_note_signals() found them; unknown: every signal is reset. */
static sigset_t not_default;
static bool not_default_known;

void child_note_signals(void)
{
	sigemptyset(&not_default);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&not_default, sig);
	}
	not_default_known = true;
}

void child_reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (!not_default_known || sigismember(&not_default, sig))
			sigaction(sig, &dfl, NULL); /* fails harmlessly for KILL, STOP and libc's own */
}

/* Puts the worker's descriptors at their fixed numbers and closes every
 * other one, so nothing of the host's leaks into plugin code. */
static void wire_descriptors(struct setup *s, int *listen_fds)
{
	const struct child_spec *spec = s->spec;
	int frame_target = FIRST_LISTEN_FD + spec->nlisten;
	int high = frame_target + 1; /* above every target, so no source is overwritten */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* A probe's output is not its verdict: constructors' chatter goes nowhere. */
	int out = spec->out_fd >= 0 ? fcntl(spec->out_fd, F_DUPFD, high) : null;
	int frame = fcntl(spec->frame_fd, F_DUPFD_CLOEXEC, high);
	if (frame < 0 || out < 0 || null < 0)
		fail_setup(s, "unable to prepare descriptors: %s", strerror(errno));
	s->ctx.frame_fd = frame;
	int moved[spec->nlisten > 0 ? spec->nlisten : 1];
	for (int i = 0; i < spec->nlisten; i++)
		if ((moved[i] = fcntl(spec->listen_fds[i], F_DUPFD_CLOEXEC, high)) < 0)
			fail_setup(s, "unable to prepare listen sockets: %s", strerror(errno));
	if (dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    dup3(frame, frame_target, O_CLOEXEC) < 0)
		fail_setup(s, "unable to wire stdin/stdout/stderr: %s", strerror(errno));
	s->ctx.frame_fd = frame_target;
	/* Sockets without close-on-exec: programs written for systemd socket
	 * activation may exec and expect them. */
	for (int i = 0; i < spec->nlisten; i++) {
		if (dup2(moved[i], FIRST_LISTEN_FD + i) < 0)
			fail_setup(s, "unable to hand over listen socket %d: %s", i, strerror(errno));
		listen_fds[i] = FIRST_LISTEN_FD + i;
	}
	if (close_range((unsigned)frame_target + 1, ~0U, 0) < 0)
		fail_setup(s, "unable to close inherited descriptors: %s", strerror(errno));
}

static void set_env_or_fail(struct setup *s, const char *name, const char *value)
{
	if (setenv(name, value, 1) < 0)
		fail_setup(s, "unable to set environment variable %s: %s", name, strerror(errno));
}

static const char *const kept_env[] = {"PATH", "LANG", "TZ", "HOME"};
static const char *const host_only_env[] = {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
					    "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"};

static bool named_in(const char *entry, const char *const *names, size_t n)
{
	size_t len = strcspn(entry, "=");
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == len && strncmp(entry, names[i], len) == 0)
			return true;
	return false;
}

/* docs/configuration.md, inherit_env: without it, only PATH, LANG, TZ and HOME of the host's
 * variables; with it, all but those meant for the host alone. */
const char **child_inherited_env(const struct worker_conf *w)
{
	size_t n = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	const char **out = xcalloc(n + 1, sizeof(*out));
	n = 0;
	for (char **e = environ; e && *e; e++)
		if (w->inherit_env ? !named_in(*e, host_only_env, ARRAY_SIZE(host_only_env))
				   : named_in(*e, kept_env, ARRAY_SIZE(kept_env)))
			out[n++] = *e;
	return out;
}

/* The exec-time environment strings sit on the initial stack, which a
 * forked process inherits whatever environ says: zero them. (A worker the
 * spawner forked finds none there: the spawner was executed with an empty
 * environment. A process forked from the host finds all of the host's.) */
void child_wipe_initial_environment(void)
{
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	char *p = n > 0 ? (buf[n] = '\0', strrchr(buf, ')')) : NULL;
	unsigned long start = 0, end = 0;
	/* After the command's ')': fields 3 to 49, then env_start and env_end. */
	for (int field = 3; p && field <= 51; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 50)
			start = strtoul(p + 1, NULL, 10);
		if (p && field == 51)
			end = strtoul(p + 1, NULL, 10);
	}
	if (start && end > start)
		explicit_bzero((void *)start, end - start);
}

/* The host's variables the host passed on (never this process's own
 * environment), once the strings inherited on the stack are gone. */
static void start_from_host_env(struct setup *s)
{
	size_t n = 0;
	while (s->spec->base_env && s->spec->base_env[n])
		n++;
	char **base = xcalloc(n + 1, sizeof(*base)); /* copies: the originals may be wiped below */
	for (size_t i = 0; i < n; i++)
		base[i] = xstrdup(s->spec->base_env[i]);
	clearenv();
	if (s->spec->host_config) /* a copy of the host; the spawner's stack holds no environment */
		child_wipe_initial_environment();
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(base[i], '=');
		if (eq) {
			*eq = '\0';
			set_env_or_fail(s, base[i], eq + 1);
		}
		free(base[i]);
	}
	free(base);
}

/* What systemd gives a service, for a command worker: $NOTIFY_SOCKET, and
 * with a watchdog WATCHDOG_USEC and WATCHDOG_PID (this pid, which execve keeps). */
static void set_command_env(struct setup *s)
{
	const struct worker_conf *w = s->spec->conf;
	char num[32];
	if (s->spec->notify_socket)
		set_env_or_fail(s, "NOTIFY_SOCKET", s->spec->notify_socket);
	if (w->watchdog_ms) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)w->watchdog_ms * 1000);
		set_env_or_fail(s, "WATCHDOG_USEC", num);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		set_env_or_fail(s, "WATCHDOG_PID", num);
	}
}

static void build_environment(struct setup *s, const struct passwd *pw)
{
	const struct worker_conf *w = s->spec->conf;
	start_from_host_env(s);
	if (!w->inherit_env && !getenv("PATH"))
		set_env_or_fail(s, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (pw)
		set_env_or_fail(s, "HOME", pw->pw_dir);
	for (size_t i = 0; i < w->env.n; i++) {
		char *eq = strchr(w->env.v[i], '=');
		char *name = xstrndup(w->env.v[i], (size_t)(eq - w->env.v[i]));
		set_env_or_fail(s, name, eq + 1);
		free(name);
	}
	char num[16];
	if (s->spec->nlisten > 0) { /* systemd's socket activation convention */
		snprintf(num, sizeof(num), "%d", s->spec->nlisten);
		set_env_or_fail(s, "LISTEN_FDS", num);
		snprintf(num, sizeof(num), "%d", (int)getpid());
		set_env_or_fail(s, "LISTEN_PID", num);
		char *names = xstrdup(w->name);
		for (int i = 1; i < s->spec->nlisten; i++) {
			char *more = xasprintf("%s:%s", names, w->name);
			free(names);
			names = more;
		}
		set_env_or_fail(s, "LISTEN_FDNAMES", names);
		free(names);
	}
	if (w->command)
		set_command_env(s);
	snprintf(num, sizeof(num), "%d", s->spec->instance);
	set_env_or_fail(s, "WARD_NAME", w->name);
	set_env_or_fail(s, "WARD_INSTANCE", num);
	set_env_or_fail(s, "WARD_STATE_DIR", s->spec->state_dir);
}

static void apply_limit(struct setup *s, int resource, const char *key, struct limit_conf lim)
{
	if (!lim.set)
		return;
	rlim_t v = lim.value == UINT64_MAX ? RLIM_INFINITY : (rlim_t)lim.value;
	struct rlimit rl = {v, v};
	if (setrlimit(resource, &rl) < 0)
		fail_setup(s, "unable to apply %s = %llu: %s", key, (unsigned long long)lim.value,
			   strerror(errno));
}

static void apply_limits(struct setup *s)
{
	const struct worker_conf *w = s->spec->conf;
	apply_limit(s, RLIMIT_NOFILE, "limit.nofile", w->limit_nofile);
	apply_limit(s, RLIMIT_AS, "limit.memory", w->limit_memory);
	apply_limit(s, RLIMIT_CPU, "limit.cpu", w->limit_cpu);
	apply_limit(s, RLIMIT_CORE, "limit.core", w->limit_core);
	if (w->nice_set && setpriority(PRIO_PROCESS, 0, (int)w->nice) < 0)
		fail_setup(s, "unable to set nice = %ld: %s", w->nice, strerror(errno));
}

/* Switches to the configured group and user, and proves the switch stuck. */
static void switch_identity(struct setup *s, const struct passwd *pw)
{
	const struct worker_conf *w = s->spec->conf;
	gid_t gid = pw ? pw->pw_gid : getgid();
	if (w->group) {
		struct group *gr = getgrnam(w->group);
		if (!gr)
			fail_setup(s, "unable to find group '%s' (check the group key)", w->group);
		gid = gr->gr_gid;
	}
	if (!w->user && !w->group)
		return;
	uid_t uid = pw ? pw->pw_uid : getuid();
	if (uid == getuid() && gid == getgid() && geteuid() == uid)
		return; /* already who we should be */
	if (geteuid() != 0 && s->spec->probe)
		return; /* `ward check` by a user who cannot switch: plugin code gains nothing running as that user */
	if (geteuid() != 0)
		fail_setup(s, "ward runs as uid %u and cannot switch to %s%s%s: run the host as root or remove user/group",
			   (unsigned)geteuid(), w->user ? "user " : "", w->user ? w->user : "",
			   w->group ? " / group" : "");
	int rc = pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL);
	if (rc < 0 || setgid(gid) < 0 || setuid(uid) < 0)
		fail_setup(s, "unable to switch to uid %u gid %u: %s", (unsigned)uid, (unsigned)gid,
			   strerror(errno));
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid ||
	    (uid != 0 && setuid(0) == 0))
		fail_setup(s, "identity switch to uid %u gid %u did not hold", (unsigned)uid, (unsigned)gid);
}

/* A process the host forked itself starts with a copy of everything the host holds: wipe what other workers were given (environment values and
 * plugin keys, where secrets live). */
static void wipe_config(const struct config *cfg, const struct worker_conf *own)
{
	for (size_t i = 0; i < cfg->nworkers; i++) {
		const struct worker_conf *w = &cfg->workers[i];
		if (w == own)
			continue;
		for (size_t k = 0; k < w->env.n; k++)
			explicit_bzero(w->env.v[k], strlen(w->env.v[k]));
		for (size_t k = 0; k < w->plugin_keys.n; k++)
			explicit_bzero(w->plugin_keys.v[k], strlen(w->plugin_keys.v[k]));
	}
}

static void wipe_other_workers(const struct child_spec *spec)
{
	wipe_config(spec->host_config, spec->conf);
	for (size_t c = 0; c < spec->nold; c++)
		wipe_config(spec->old_configs[c], spec->conf);
}

/* Maps the page that holds our own progress slot. First, while the
 * descriptor it comes from is still open. */
static void map_own_slot(struct setup *s)
{
	if (s->spec->slot_fd < 0)
		return; /* a probe has none */
	s->ctx.slot = slot_map(s->spec->slot_fd);
	if (!s->ctx.slot)
		fail_setup(s, "unable to map the progress slot: %s", strerror(errno));
	s->own_slot_page = (uintptr_t)s->ctx.slot & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
}

/* Up to 256 shared mappings other than our own slot's page, read from
 * /proc/self/maps into lo/hi; -1 when the file cannot be read. */
static int list_foreign_shared(uintptr_t own, uintptr_t *lo, uintptr_t *hi)
{
	FILE *maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return -1;
	int n = 0;
	char line[512], perms[8];
	while (n < 256 && fgets(line, sizeof(line), maps))
		if (sscanf(line, "%lx-%lx %7s", &lo[n], &hi[n], perms) == 3 && perms[3] == 's' && lo[n] != own)
			n++;
	fclose(maps);
	return n;
}

/* A process the host forked itself has the host's shared memory mapped
 * (every worker's progress slot, a page each; SQLite's WAL index): unmap all
 * of it but our own slot's page, so plugin code cannot write into another
 * worker's slot or the host's database index. */
static void unmap_host_memory(struct setup *s)
{
	uintptr_t lo[256], hi[256];
	int n;
	do {
		if ((n = list_foreign_shared(s->own_slot_page, lo, hi)) < 0)
			fail_setup(s, "unable to read /proc/self/maps: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			if (munmap((void *)lo[i], hi[i] - lo[i]) < 0)
				fail_setup(s, "unable to unmap the host's shared memory: %s", strerror(errno));
	} while (n == 256); /* a full list: there may be more */
}

static void tie_to_host(struct setup *s)
{
	/* Set after the identity switch: changing credentials clears it. */
	if (prctl(PR_SET_PDEATHSIG, HOST_DEATH_SIGNAL) < 0)
		fail_setup(s, "unable to set the parent-death signal: %s", strerror(errno));
	if (getppid() != s->spec->host_pid)
		_exit(1); /* the host died before we could tie ourselves to it */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail_setup(s, "unable to set no_new_privs: %s", strerror(errno));
}

/* A process plugin code forks from the worker's main thread dies the moment
 * the worker does (a crash included), without waiting for the host to reap
 * the worker and kill its group: a host killed in between can no longer
 * leave it behind. Only the main thread's forks: the kernel ties the signal
 * to the forking thread, which for other threads may end long before the
 * worker. (posix_spawn() and system() children bypass fork handlers: the
 * host's group kill covers them.) */
static pid_t worker_pid;
static __thread bool forking_from_main;

static void before_fork(void)
{
	forking_from_main = gettid() == worker_pid;
}

static void in_forked_child(void)
{
	if (!forking_from_main)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != worker_pid)
		raise(SIGKILL); /* the worker is already gone, or we cannot be tied to it */
}

static void tie_children_to_worker(struct setup *s)
{
	worker_pid = getpid();
	int rc = pthread_atfork(before_fork, NULL, in_forked_child);
	if (rc != 0)
		fail_setup(s, "unable to register fork handlers: %s", strerror(rc));
}

/* Into the instance's cgroup before anything else, so that all it starts
 * starts there too. The spawner usually cloned it there already. */
static void join_cgroup(struct setup *s)
{
	if (s->spec->cgroup_fd < 0 || s->spec->in_cgroup)
		return;
	int fd = openat(s->spec->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		fail_setup(s, "unable to enter its cgroup: %s", strerror(errno));
	close(fd);
}

static void prepare_process(struct setup *s, int *listen_fds)
{
	const struct child_spec *spec = s->spec;
	const struct worker_conf *w = spec->conf;
	join_cgroup(s);
	/* A session of its own: plugin code cannot then join the host's process
	 * group (setpgid works only within a session) and hide from its kills. */
	if (setsid() < 0)
		fail_setup(s, "unable to create a session: %s", strerror(errno));
	map_own_slot(s);
	child_reset_signals();
	wire_descriptors(s, listen_fds);
	struct passwd *pw = NULL;
	if (w->user) {
		pw = getpwnam(w->user);
		if (!pw)
			fail_setup(s, "unable to find user '%s' (check the user key)", w->user);
	}
	build_environment(s, pw);
	apply_limits(s);
	switch_identity(s, pw);
	tie_to_host(s);
	tie_children_to_worker(s);
	if (spec->host_config) {
		wipe_other_workers(spec);
		unmap_host_memory(s);
	}
	/* A probe may run before the worker's directories exist (a reload, `ward
	 * check`): it works in "/". */
	const char *dir = spec->probe ? "/" : w->workdir ? w->workdir : spec->state_dir;
	if (chdir(dir) < 0)
		fail_setup(s, "unable to enter working directory %s: %s", dir, strerror(errno));
	if (!w->command && runtime_install_signals() < 0) /* a program keeps the default dispositions */
		fail_setup(s, "unable to install the stop handler: %s", strerror(errno));
	/* Line-buffered stdout: a printf line survives a crash right after it. */
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* What to do about an execve failure, after its errno and path. */
static const char *exec_hint(int err, const char *path)
{
	struct stat st;
	switch (err) {
	case ENOENT:
		return stat(path, &st) == 0 ? "a script whose interpreter (its #! line) is missing?"
					    : "check the command key, or install the program";
	case EACCES: return "not executable by the worker's user, or a directory on the way is not searchable: chmod it";
	case ENOEXEC: return "not a program this system runs: a script needs a #! line";
	case EISDIR: return "a directory: name the program itself";
	default: return "check the command key";
	}
}

/* A command worker: the program in place of this process, with its
 * descriptors, environment and identity as set up. With ready = start the
 * host is told "ready" just before execve (the program was found
 * executable); if execve fails after all, the END frame says why. */
static noreturn void exec_command(struct setup *s)
{
	const struct worker_conf *w = s->spec->conf;
	struct strv argv = {0};
	const char *why = command_split(w->command, &argv);
	if (why)
		fail_setup(s, "unable to split the command %s: %s", w->command, why);
	strv_push(&argv, NULL);
	const char *path = w->plugin; /* the program, found on PATH by the configuration */
	if (access(path, X_OK) < 0) {
		int err = errno; /* exec_hint may change errno */
		fail_setup(s, "unable to execute %s: %s (%s)", path, strerror(err), exec_hint(err, path));
	}
	/* The host's view of the process from now on: a signal ends a "cycle", not a load. */
	atomic_store(&s->ctx.slot->phase, PHASE_CYCLE);
	if (w->ready == READY_START)
		runtime_send_ready(&s->ctx);
	fflush(stdout);
	execv(path, argv.v);
	int err = errno;
	atomic_store(&s->ctx.slot->phase, PHASE_LOAD);
	fail_setup(s, "unable to execute %s: %s (%s)", path, strerror(err), exec_hint(err, path));
}

noreturn void child_main(const struct child_spec *spec)
{
	struct setup s = {.spec = spec};
	const struct worker_conf *w = spec->conf;
	s.ctx = (ward_ctx){
		.name = w->name,
		.instance = spec->instance,
		.state_dir = spec->state_dir,
		.conf = w->plugin_keys.v,
		.nconf = w->plugin_keys.n,
		.frame_fd = spec->frame_fd,
		.last_exit = spec->last_exit,
		.restarts = spec->restarts,
	};
	int listen_fds[spec->nlisten > 0 ? spec->nlisten : 1];
	s.ctx.listen_fds = listen_fds;
	s.ctx.nlisten = spec->nlisten;
	prepare_process(&s, listen_fds);
	if (spec->probe)
		probe_report(s.ctx.frame_fd, w->plugin);
	if (w->command)
		exec_command(&s);

	atomic_store(&s.ctx.slot->phase, PHASE_LOAD);
	struct ward_plugin plugin;
	struct exit_info end = {0};
	int64_t t0 = mono_ns();
	if (loader_open(w->plugin, &plugin, &end) < 0) {
		runtime_send_end(&s.ctx, end.reason, 1, "%s", end.message);
		_exit(1);
	}
	if (spec->test && spec->test->report) {
		char who[256];
		snprintf(who, sizeof(who), "%s %s", plugin.name ? plugin.name : "?", plugin.version ? plugin.version : "?");
		runtime_report_phase(&s.ctx, PHASE_LOAD, mono_ns() - t0, who);
	}
	s.ctx.options = plugin.options;
	runtime_run(&s.ctx, &plugin, w->interval_ms, spec->test, &end);
	fflush(stdout);
	fflush(stderr);
	runtime_send_end(&s.ctx, end.reason, end.code, "%s", end.message);
	exit(end.code);
}
