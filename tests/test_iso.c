/*
 * test_iso.c - isolation between workers and from the host: a worker reads
 * nothing of the host's environment, reaches no progress slot but its own,
 * cannot break another worker's runtime channel; plugins are probed the way
 * workers are started (identity, descriptors, environment), without holding
 * up the host's loop; a stopped spawner does not freeze the host.
 */
#define _GNU_SOURCE
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(iso, .fini = wt_teardown, .timeout = 90);

static __attribute__((unused)) pid_t running_pid(const char *worker)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 0 FROM instances WHERE worker = '%s' AND state != 'running'",
			      worker),
		  "%s never became running; host said:\n%s\nits log:\n%s", worker, wt_host_stderr(&wt), wt_log(&wt, worker));
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM runs WHERE worker = '%s' ORDER BY id DESC LIMIT 1", worker);
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to run a worker as another user");
}

/* ---- item: the host's environment ---- */

#define HOST_SECRET "iso-host-s3cr3t-7d41"

/* iso_memscan counts the copies of its needle followed by '-': the host's
 * variable holds the needle and more, the worker's own key only the needle. */
Test(iso, no_worker_can_read_the_hosts_environment_root_or_nobody)
{
	need_root();
	wt_setup(&wt, "[r]\nplugin = iso_memscan\nneedle = " HOST_SECRET "\n"
		      "[n]\nplugin = iso_memscan\nneedle = " HOST_SECRET "\nuser = nobody\n");
	chmod(wt.dir, 0711); /* mkdtemp made it 0700: let nobody reach its state dir */
	setenv("HOST_SECRET", HOST_SECRET "-value", 1);
	wt_start(&wt);
	unsetenv("HOST_SECRET");
	const char *names[] = {"r", "n"};
	for (int i = 0; i < 2; i++) {
		cr_assert(wt_wait_log(&wt, 10000, names[i], "copies of the needle:"), "%s's log:\n%s", names[i],
			  wt_log(&wt, names[i]));
		cr_expect(wt_wait_log(&wt, 0, names[i], "followed by '-': 0"),
			  "worker %s can read the host's environment:\n%s", names[i], wt_log(&wt, names[i]));
	}
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

Test(iso, a_worker_the_host_forks_itself_cannot_read_the_hosts_environment_either)
{
#ifdef SANITIZED
	/* AddressSanitizer's runtime reads /proc/self/environ into memory of
	 * its own in the host, which a copy of the host inherits. */
	cr_skip_test("the sanitizer runtime keeps its own copy of the host's environment; checked in normal builds");
#endif
	wt_setup(&wt, "[a]\nplugin = idle\n[m]\nplugin = iso_memscan\nneedle = " HOST_SECRET "\nautostart = no\n");
	setenv("HOST_SECRET", HOST_SECRET "-value", 1);
	wt_start(&wt);
	unsetenv("HOST_SECRET");
	running_pid("a");
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0, "the host has no spawner process");
	kill(spawner, SIGKILL);
	cr_assert(wait_pid_gone(spawner, 5000));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start m"), 0, "%s%s", out, err);
	cr_assert(wt_wait_log(&wt, 10000, "m", "copies of the needle:"), "m's log:\n%s", wt_log(&wt, "m"));
	cr_expect(wt_wait_log(&wt, 0, "m", "followed by '-': 0"), "a worker the host forked can read the host's environment:\n%s",
		  wt_log(&wt, "m"));
	cr_expect(strstr(wt_host_stderr(&wt), "the host forks workers itself"), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: progress slots ---- */

/* A grabber as root and one as nobody bump every slot they can reach; the
 * hung worker next to them must still be found hung. */
Test(iso, a_worker_reaches_no_progress_slot_but_its_own)
{
	need_root();
	wt_setup(&wt, "[g]\nplugin = iso_slotgrab\nuser = nobody\n[r]\nplugin = iso_slotgrab\n"
		      "[hung]\nplugin = hang_cycle\nwatchdog = 1s\nautostart = no\nrestart = never\n");
	chmod(wt.dir, 0711);
	wt_start(&wt);
	running_pid("g");
	running_pid("r");
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start hung"), 0, "%s%s", out, err);
	cr_expect(wt_wait_sql(&wt, 15000, "SELECT count(*) FROM runs WHERE worker = 'hung' AND reason = 'hung'"),
		  "the hung worker was kept looking alive; its log:\n%s", wt_log(&wt, "hung"));
	cr_expect(wt_wait_log(&wt, 0, "g", "bytes beyond its own page: 0\n"), "g's log:\n%s", wt_log(&wt, "g"));
	cr_expect(wt_wait_log(&wt, 0, "r", "bytes beyond its own page: 0\n"), "r's log:\n%s", wt_log(&wt, "r"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: the runtime channel ---- */

/* x breaks its channel every way it can; v, of the same user, started after
 * that, still reaches running and every one of its lines is in its log. */
Test(iso, a_worker_that_breaks_its_runtime_channel_breaks_no_one_elses)
{
	wt_setup(&wt, "[x]\nplugin = iso_chanbreak\ninit_timeout = 60s\n"
		      "[v]\nplugin = iso_chatty\nlines = 2000\nautostart = no\ninit_timeout = 10s\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 10000, "x", "chanbreak: "), "x's log:\n%s", wt_log(&wt, "x"));
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "start v"), 0, "%s%s", out, err);
	running_pid("v");
	cr_assert(wt_wait_log(&wt, 10000, "v", "INFO chatty done\n"), "v's log:\n%s", wt_log(&wt, "v"));
	char *log = wt_log(&wt, "v");
	cr_expect_eq(wt_count(log, "INFO chatty line "), 2000, "lines of v were lost:\n%s", wt_log(&wt, "x"));
	cr_expect(strstr(log, "INFO chatty line 1999\n"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* The host's queue of frames is short (net.unix.max_dgram_qlen): senders
 * wait for room, so a fast logger loses nothing and its neighbour, started
 * while it floods, still gets its lines through. */
/* Under AddressSanitizer the test's own polling of a growing log (it reads
 * the whole file each time) takes most of a core: fewer lines there. */
#ifdef __SANITIZE_ADDRESS__
#define FAST_LINES 20000
#else
#define FAST_LINES 100000
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

Test(iso, a_fast_logger_loses_no_line_and_its_neighbour_gets_through)
{
	wt_setup(&wt, "[fast]\nplugin = iso_chatty\nlines = " STR(FAST_LINES) "\ninit_timeout = 60s\n"
		      "[slow]\nplugin = iso_chatty\nlines = 100\ninit_timeout = 60s\n");
	wt_start(&wt);
	cr_assert(wt_wait_log(&wt, 60000, "fast", "INFO chatty done\n"), "fast never finished");
	cr_assert(wt_wait_log(&wt, 10000, "slow", "INFO chatty done\n"), "slow never finished");
	running_pid("fast");
	running_pid("slow");
	cr_expect_eq(wt_count(wt_log(&wt, "fast"), "INFO chatty line "), FAST_LINES);
	cr_expect_eq(wt_count(wt_log(&wt, "slow"), "INFO chatty line "), 100);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: the pid of log lines from a child ---- */

Test(iso, a_log_line_from_a_child_the_plugin_forked_carries_the_childs_pid)
{
	wt_setup(&wt, "[w]\nplugin = spawn_child\n");
	wt_start(&wt);
	pid_t worker = running_pid("w");
	cr_assert(wt_wait_log(&wt, 5000, "w", "INFO child pid "), "w's log:\n%s", wt_log(&wt, "w"));
	int child = atoi(strstr(wt_log(&wt, "w"), "INFO child pid ") + strlen("INFO child pid "));
	cr_assert(child > 0 && child != worker);
	char want[64];
	snprintf(want, sizeof(want), "pid=%d INFO hello from the child\n", child);
	cr_expect(wt_wait_log(&wt, 5000, "w", want), "no line with the child's pid %d:\n%s", child, wt_log(&wt, "w"));
	snprintf(want, sizeof(want), "pid=%d INFO child pid", (int)worker);
	cr_expect(wt_wait_log(&wt, 0, "w", want), "the worker's own line carries another pid:\n%s", wt_log(&wt, "w"));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- item: a stopped spawner does not freeze the host ---- */

/* Runs `ward ARGS` and returns how long it took, in ms; asserts it succeeded. */
static long long timed_cli(const char *args)
{
	char *out, *err;
	long long t0 = now_ms();
	int rc = wt_cli(&wt, &out, &err, args);
	long long took = now_ms() - t0;
	cr_assert(rc == 0 || strncmp(args, "status", 6) == 0, "`ward %s` failed: %s%s", args, out, err);
	return took;
}

Test(iso, a_stopped_spawner_does_not_freeze_the_host_and_starts_go_on_once_it_continues)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[w]\nplugin = idle\nautostart = no\n");
	wt_start(&wt);
	running_pid("a");
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0);
	long long quick = timed_cli("status");
	cr_assert_eq(kill(spawner, SIGSTOP), 0);
	long long start = timed_cli("start w");
	long long status = timed_cli("status");
	/* The spawner's deadline is 10 s: a host waiting for it would take that long. */
	cr_expect(start < 3000 && status < 3000 + 10 * quick, "with the spawner stopped, start took %lld ms and status %lld ms",
		  start, status);
	cr_expect_eq(wt_sql_int(&wt, "SELECT count(*) FROM instances WHERE worker = 'w' AND state = 'starting'"), 1);
	cr_assert_eq(kill(spawner, SIGCONT), 0);
	running_pid("w");
	cr_expect_eq(wt_spawner(wt.pid), spawner, "the spawner was replaced");
	cr_expect(!strstr(wt_host_stderr(&wt), "spawner"), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(iso, a_spawner_stopped_for_good_is_replaced_by_the_host_after_its_deadline, .timeout = 120)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[w]\nplugin = idle\nautostart = no\n");
	wt_start(&wt);
	running_pid("a");
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0);
	cr_assert_eq(kill(spawner, SIGSTOP), 0);
	long long t0 = now_ms();
	timed_cli("start w");
	for (int i = 0; i < 5; i++) { /* the host keeps answering while it waits */
		cr_expect(timed_cli("status") < 3000, "status was slow while the spawner was stopped");
		sleep_ms(500);
	}
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT state = 'running' FROM instances WHERE worker = 'w'"),
		  "w never became running; host said:\n%s", wt_host_stderr(&wt));
	long long waited = now_ms() - t0;
	cr_expect(waited >= 9000, "the host gave up on the spawner after %lld ms", waited);
	cr_expect(strstr(wt_host_stderr(&wt), "the spawner process failed: it did not answer within 10 s; the host forks workers itself"),
		  "%s", wt_host_stderr(&wt));
	cr_expect(wait_pid_gone(spawner, 5000), "the stopped spawner was left behind");
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- items: plugins are probed like workers, without holding up the host ---- */

/* The host's children other than its spawner, into kids (at most max). */
static int host_children(pid_t host, pid_t *kids, int max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)host, (int)host);
	char *list = wt_read_raw(path);
	int n = 0;
	pid_t spawner = wt_spawner(host);
	for (char *p = list, *end; p && n < max; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid != spawner)
			kids[n++] = (pid_t)pid;
	}
	free(list);
	return n;
}

static char *spy_file(void)
{
	char *path;
	cr_assert(asprintf(&path, "%s/spy.txt", wt.dir) > 0);
	wt_keep(path);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fclose(f);
	chmod(path, 0666);
	return path;
}

/* Every line of the spy file: nobody, no descriptor of the host's, nothing of its environment. */
static void expect_spied_like_a_worker(const char *path, int lines)
{
	long long deadline = now_ms() + 10000;
	while (wt_count(wt_read(path), "spy ") < lines && now_ms() < deadline)
		sleep_ms(20);
	char *text = wt_read(path);
	cr_assert_eq(wt_count(text, "spy "), lines, "the constructor did not run %d times:\n%s", lines, text);
	/* 0-2, the verdict pipe and the runtime's eventfd */
	for (const char *l = strstr(text, "spy "); l; l = strstr(l + 1, "spy ")) {
		int uid = -1, euid = -1, fds = -1;
		char secret[8] = "";
		cr_assert(sscanf(l, "spy pid=%*d uid=%d euid=%d fds=%d host_secret=%7[a-z]", &uid, &euid, &fds, secret) == 4, "%s", l);
		cr_expect(uid == 65534 && euid == 65534, "a probe ran as uid %d/%d:\n%s", uid, euid, text);
		cr_expect(fds <= 5, "a probe held %d descriptors:\n%s", fds, text);
		cr_expect_str_eq(secret, "no", "a probe had the host's environment:\n%s", text);
	}
}

Test(iso, plugins_are_probed_as_their_worker_with_nothing_of_the_host)
{
	need_root();
	wt_setup(&wt, "[a]\nplugin = idle\n");
	chmod(wt.dir, 0711);
	char *spy = spy_file(), ini[512];
	snprintf(ini, sizeof(ini), "[spy]\nplugin = iso_ctorspy\nuser = nobody\nautostart = no\nenv.SPY_OUT = %s\n", spy);
	wt_write_conf(&wt, "spy.ini", ini);
	setenv("HOST_SECRET", HOST_SECRET, 1);
	wt_start(&wt);
	running_pid("a");
	expect_spied_like_a_worker(spy, 1); /* at boot */
	char *out, *err;
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s%s", out, err);
	expect_spied_like_a_worker(spy, 2); /* a reload, the host holding its descriptors */
	pid_t spawner = wt_spawner(wt.pid);
	cr_assert(spawner > 0);
	kill(spawner, SIGKILL);
	cr_assert(wait_pid_gone(spawner, 5000));
	cr_assert_eq(wt_cli(&wt, &out, &err, "reload"), 0, "%s%s", out, err);
	expect_spied_like_a_worker(spy, 3); /* forked by the host itself */
	cr_assert_eq(wt_cli(&wt, &out, &err, "check"), 0, "%s%s", out, err);
	unsetenv("HOST_SECRET");
	expect_spied_like_a_worker(spy, 4); /* `ward check` */
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(iso, a_constructor_that_never_returns_is_reported_and_holds_up_no_reload)
{
	wt_setup(&wt, "[a]\nplugin = idle\n");
	wt_start(&wt);
	pid_t a = running_pid("a");
	wt_write_conf(&wt, "spin.ini", "[spin]\nplugin = iso_ctorspin\nautostart = no\n");
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "timeout 30 %s reload -c %s >%s/reload.out 2>&1", WARD_BIN, wt.conf, wt.dir);
	long long t0 = now_ms();
	pid_t reload = fork();
	cr_assert(reload >= 0);
	if (reload == 0)
		_exit(WEXITSTATUS(system(cmd)));
	sleep_ms(500);
	for (int i = 0; i < 3; i++) {
		long long took = timed_cli("status");
		cr_expect(took < 2500, "status took %lld ms while a constructor spun in a probe", took);
		sleep_ms(300);
	}
	int status;
	cr_assert_eq(waitpid(reload, &status, 0), reload);
	long long took = now_ms() - t0;
	char path[512];
	snprintf(path, sizeof(path), "%s/reload.out", wt.dir);
	char *said = wt_read(path);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reload: %s", said);
	cr_expect(took >= 4500, "the probe was not given its 5 s (%lld ms)", took);
	char want[512];
	snprintf(want, sizeof(want), "warning: plugin %s/iso_ctorspin.so (worker spin): load-failed: its constructor did not return within 5 s\n",
		 FIXTURE_DIR);
	cr_expect(strstr(said, want), "the reload did not say it:\n%s", said);
	cr_expect(strstr(said, "added: spin\n"), "%s", said);
	/* The probe was SIGKILLed at its deadline, and the reply can come before
	 * the host has reaped it (a loaded machine): give it a moment to go. */
	pid_t kids[8];
	int n = host_children(wt.pid, kids, 8);
	for (long long until = now_ms() + 2000; n != 1 && now_ms() < until; n = host_children(wt.pid, kids, 8))
		sleep_ms(20);
	cr_expect(n == 1 && kids[0] == a, "%d processes besides the spawner: the probe was left behind", n);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(iso, a_probe_dies_with_the_host)
{
	wt_setup(&wt, "[spin]\nplugin = iso_ctorspin\nautostart = no\n");
	wt_launch(&wt);
	pid_t kids[8];
	int n = 0;
	for (long long deadline = now_ms() + 3000; n == 0 && now_ms() < deadline; sleep_ms(50))
		n = host_children(wt.pid, kids, 8);
	cr_assert(n > 0, "no probe process seen; host said:\n%s", wt_host_stderr(&wt));
	sleep_ms(300); /* inside the constructor by now */
	kill(wt.pid, SIGKILL);
	waitpid(wt.pid, NULL, 0);
	wt.pid = 0;
	for (int i = 0; i < n; i++)
		cr_expect(wait_pid_gone(kids[i], 5000), "process %d survived the host", (int)kids[i]);
}

Test(iso, at_boot_a_constructor_that_never_returns_is_reported_and_the_host_goes_on)
{
	wt_setup(&wt, "[a]\nplugin = idle\n[spin]\nplugin = iso_ctorspin\nautostart = no\n");
	wt_launch(&wt);
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT state = 'running' FROM instances WHERE worker = 'a'"),
		  "a did not start; host said:\n%s", wt_host_stderr(&wt));
	char want[512];
	snprintf(want, sizeof(want), "plugin %s/iso_ctorspin.so (worker spin): load-failed: its constructor did not return within 5 s",
		 FIXTURE_DIR);
	cr_expect(strstr(wt_host_stderr(&wt), want), "%s", wt_host_stderr(&wt));
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}
