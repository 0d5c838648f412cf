/*
 * test_metrics.c - `ward metrics` (docs/metrics.md) as a Prometheus user
 * meets it: the text passes Prometheus's own `promtool check metrics` with
 * every family of SPEC §7, and the figures say what happened: restarts and
 * exits by reason grow after kills, a failed worker's state sample is 1,
 * memory is about the worker's real resident memory (with cgroups and
 * without), CPU seconds grow for a busy worker and never go back when its
 * process ends; and `ward status` shows memory and CPU (rss_bytes and
 * cpu_seconds in --json, read with python3's json module).
 */
#define _GNU_SOURCE
#include "support.h"
#include "daemon/host.h"
#include "daemon/metrics.h"
#include "daemon/worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(metrics, .fini = wt_teardown, .timeout = 90);

/* ---- helpers ---- */

static pid_t running(const char *worker)
{
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'running' FROM instances WHERE worker = '%s' AND instance = 0",
			      worker),
		  "%s never became running; host said:\n%s", worker, wt_host_stderr(&wt));
	return (pid_t)wt_sql_int(&wt, "SELECT pid FROM instances WHERE worker = '%s' AND instance = 0", worker);
}



static double worker_sample(const char *text, const char *family, const char *worker)
{
	char series[200];
	snprintf(series, sizeof(series), "%s{worker=\"%s\"}", family, worker);
	return wt_metric(text, series);
}



static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert(strlen(path) < sizeof(sa.sun_path), "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s", path,
		  strerror(errno));
	return fd;
}

/* Hides the cgroup2 mount from the test and the hosts it starts (a private mount namespace). */
static void hide_cgroups(void)
{
	cr_assert(unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
		  "no private mount namespace: %s", strerror(errno));
	for (;;) {
		char *s = wt_read("/proc/self/mountinfo"), point[300] = "";
		for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
			char *end = strchr(line, '\n'), *type = strstr(line, " - cgroup2 ");
			if (type && (!end || type < end) && sscanf(line, "%*s %*s %*s %*s %299s", point) == 1)
				break;
			point[0] = '\0';
		}
		if (!point[0])
			return;
		cr_assert(umount2(point, MNT_DETACH) == 0, "umount %s: %s", point, strerror(errno));
	}
}

/* VmRSS of pid, in bytes; 0 when unknown. */
static long long vm_rss(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *s = wt_read(path), *at = s ? strstr(s, "VmRSS:") : NULL;
	return at ? atoll(at + 6) * 1024 : 0;
}

/* ---- the text as Prometheus reads it ---- */

static const char *const families[] = {
	"ward_build_info", "ward_worker_state", "ward_worker_ready", "ward_worker_restarts_total",
	"ward_worker_exits_total", "ward_worker_cycles_total", "ward_worker_last_exit_timestamp_seconds",
	"ward_worker_memory_bytes", "ward_worker_cpu_seconds_total", "ward_socket_connections_total",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
	"process_start_time_seconds",
};
static const char *const job_families[] = {"ward_jobs", "ward_jobs_oldest_queued_seconds", "ward_jobs_finished_total"};

Test(metrics, promtool_accepts_every_family_with_a_crashing_an_idle_and_a_failed_worker)
{
	char sock[400], ini[1200];
	wt_setup(&wt, "");
	snprintf(sock, sizeof(sock), "%s/lazy.sock", wt.dir);
	snprintf(ini, sizeof(ini),
		 "[crashy]\nplugin = crash_after\ncycles = 1\nrestart_delay = 50ms\nmax_restarts = unlimited\nlimit.core = 0\n"
		 "[idle]\nplugin = idle\n"
		 "[broken]\nplugin = init_fail\nmax_restarts = 0\n"
		 "[lazy]\nplugin = idle\nautostart = no\nlisten = unix:%s\n", sock);
	wt_write_conf(&wt, "workers.ini", ini);
	wt_start(&wt);
	running("idle");
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = 'broken'"));
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) >= 2 FROM runs WHERE worker = 'crashy' AND reason = 'signal'"));
	int c = connect_unix(sock); /* starts lazy: the host saw one connection */
	running("lazy");
	close(c);
	char *text = wt_metrics(&wt);
	wt_promtool_accepts(text);
	for (size_t i = 0; i < ARRAY_LEN(families); i++) {
		char help[200], type[200], first[200];
		snprintf(help, sizeof(help), "# HELP %s ", families[i]);
		snprintf(type, sizeof(type), "# TYPE %s ", families[i]);
		snprintf(first, sizeof(first), "\n%s", families[i]);
		cr_expect(strstr(text, help) && strstr(text, type), "%s has no HELP or TYPE:\n%s", families[i], text);
		cr_expect(strstr(text, first), "%s has no sample:\n%s", families[i], text);
	}
	for (size_t i = 0; i < ARRAY_LEN(job_families); i++) {
		char type[200];
		snprintf(type, sizeof(type), "# TYPE %s ", job_families[i]);
		cr_expect(strstr(text, type), "%s is not declared:\n%s", job_families[i], text);
	}
	cr_expect(strstr(text, "# TYPE ward_worker_exits_total counter\n"), "%s", text);
	cr_expect(strstr(text, "# TYPE ward_worker_state gauge\n"), "%s", text);
	cr_expect(strstr(text, "ward_build_info{version=\"" WARD_VERSION "\",abi=\"1\"} 1\n"), "%s", text);
	cr_expect_eq(worker_sample(text, "ward_socket_connections_total", "lazy"), 1, "%s", text);
	cr_expect_eq(worker_sample(text, "ward_socket_connections_total", "idle"), -1,
		     "a worker without sockets has a connections sample:\n%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(metrics, restarts_and_signal_exits_grow_after_kills)
{
	wt_setup(&wt, "[w]\nplugin = idle\nrestart_delay = 10ms\nlimit.core = 0\n");
	wt_start(&wt);
	char *text = wt_metrics(&wt);
	cr_expect_eq(worker_sample(text, "ward_worker_restarts_total", "w"), 0, "%s", text);
	cr_expect_eq(wt_metric(text, "ward_worker_exits_total{worker=\"w\",reason=\"signal\"}"), 0, "%s", text);
	cr_expect_eq(worker_sample(text, "ward_worker_last_exit_timestamp_seconds", "w"), -1,
		     "a last exit before any process ended:\n%s", text);
	for (int k = 1; k <= 3; k++) {
		pid_t pid = running("w");
		cr_assert_eq(kill(pid, SIGKILL), 0);
		cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = %d FROM runs WHERE worker = 'w' AND ended_at IS NOT NULL", k));
		running("w");
		text = wt_metrics(&wt);
		cr_expect_eq(worker_sample(text, "ward_worker_restarts_total", "w"), k, "after %d kills:\n%s", k, text);
		cr_expect_eq(wt_metric(text, "ward_worker_exits_total{worker=\"w\",reason=\"signal\"}"), k, "after %d kills:\n%s",
			     k, text);
	}
	double at = worker_sample(text, "ward_worker_last_exit_timestamp_seconds", "w");
	double now = (double)time(NULL);
	cr_expect(at > now - 30 && at <= now + 1, "last exit at %.3f, now %.0f", at, now);
	cr_expect_eq(wt_metric(text, "ward_worker_state{worker=\"w\",state=\"running\"}"), 1, "%s", text);
	cr_expect_eq(worker_sample(text, "ward_worker_ready", "w"), 1, "%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(metrics, a_failed_workers_state_sample_is_1_and_the_others_0)
{
	wt_setup(&wt, "[f]\nplugin = init_fail\nmax_restarts = 1\nrestart_delay = 10ms\n");
	wt_start(&wt);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = 'f'"));
	char *text = wt_metrics(&wt);
	static const char *const states[] = {"stopped", "starting", "running", "stopping", "backoff", "failed", "done"};
	for (size_t i = 0; i < ARRAY_LEN(states); i++) {
		char series[200];
		snprintf(series, sizeof(series), "ward_worker_state{worker=\"f\",state=\"%s\"}", states[i]);
		cr_expect_eq(wt_metric(text, series), strcmp(states[i], "failed") == 0, "%s:\n%s", series, text);
	}
	cr_expect_eq(worker_sample(text, "ward_worker_ready", "f"), 0, "%s", text);
	cr_expect_eq(wt_metric(text, "ward_worker_exits_total{worker=\"f\",reason=\"init-failed\"}"), 2, "%s", text);
	cr_expect_eq(worker_sample(text, "ward_worker_memory_bytes", "f"), 0, "a failed worker holds memory:\n%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- memory and CPU ---- */

#define MIB (1024.0 * 1024.0)

static void memory_is_about_the_real_rss(void)
{
	wt_setup(&wt, "[hog]\nplugin = metrics_hog\nmem = 64\n[family]\nplugin = metrics_hog\nmem = 16\nchild_mem = 48\n"
		      "[idle]\nplugin = idle\n");
	wt_start(&wt);
	pid_t hog = running("hog");
	running("family");
	running("idle");
	/* The child of family touches its memory a moment after init returned. */
	char *text = wt_metrics(&wt);
	for (long long end = now_ms() + 5000;
	     worker_sample(text, "ward_worker_memory_bytes", "family") < 64 * MIB && now_ms() < end; text = wt_metrics(&wt))
		sleep_ms(50);
	double mem = worker_sample(text, "ward_worker_memory_bytes", "hog");
	double real = (double)vm_rss(hog);
	cr_expect(mem >= 64 * MIB && mem < 64 * MIB + 48 * MIB, "hog holds 64 MiB, metrics say %.1f MiB", mem / MIB);
	cr_expect(mem > real * 0.8 && mem < real * 1.25 + 8 * MIB, "hog's VmRSS is %.1f MiB, metrics say %.1f MiB",
		  real / MIB, mem / MIB);
	double fam = worker_sample(text, "ward_worker_memory_bytes", "family");
	cr_expect(fam >= 64 * MIB && fam < 64 * MIB + 48 * MIB,
		  "family's two processes hold 16 + 48 MiB, metrics say %.1f MiB", fam / MIB);
	double idle = worker_sample(text, "ward_worker_memory_bytes", "idle");
	cr_expect(idle > 0 && idle < 32 * MIB, "an idle worker: %.1f MiB", idle / MIB);
	wt_promtool_accepts(text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(metrics, memory_is_the_workers_real_resident_memory)
{
	memory_is_about_the_real_rss();
}

Test(metrics, memory_without_cgroups_sums_the_workers_processes)
{
	hide_cgroups();
	memory_is_about_the_real_rss();
	cr_expect(strstr(wt_host_stderr(&wt), "cgroups: "), "the host used cgroups:\n%s", wt_host_stderr(&wt));
}

static void cpu_grows_for_a_busy_worker(void)
{
	wt_setup(&wt, "[spin]\nplugin = metrics_hog\nspin = yes\nrestart_delay = 10ms\nlimit.core = 0\n[rest]\nplugin = idle\n");
	wt_start(&wt);
	pid_t spin = running("spin");
	running("rest");
	char *text = wt_metrics(&wt);
	double spin0 = worker_sample(text, "ward_worker_cpu_seconds_total", "spin");
	double rest0 = worker_sample(text, "ward_worker_cpu_seconds_total", "rest");
	long long t0 = now_ms();
	sleep_ms(1000);
	text = wt_metrics(&wt);
	double wall = (double)(now_ms() - t0) / 1000;
	double spin1 = worker_sample(text, "ward_worker_cpu_seconds_total", "spin");
	double rest1 = worker_sample(text, "ward_worker_cpu_seconds_total", "rest");
	cr_expect(spin1 - spin0 > 0.3 && spin1 - spin0 <= wall + 0.2,
		  "a worker spinning for %.2f s used %.3f s of CPU by the metrics", wall, spin1 - spin0);
	cr_expect(rest1 >= rest0 && rest1 - rest0 < 0.1, "an idle worker used %.3f s of CPU", rest1 - rest0);
	/* The counter keeps what an ended process used. */
	cr_assert_eq(kill(spin, SIGKILL), 0);
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 1 FROM runs WHERE worker = 'spin' AND ended_at IS NOT NULL"));
	text = wt_metrics(&wt);
	double spin2 = worker_sample(text, "ward_worker_cpu_seconds_total", "spin");
	cr_expect(spin2 >= spin1, "cpu_seconds_total went back from %.3f to %.3f when the process ended", spin1, spin2);
	cr_expect(worker_sample(text, "ward_worker_cycles_total", "spin") > 0, "%s", text);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(metrics, cpu_seconds_grow_for_a_busy_worker)
{
	cpu_grows_for_a_busy_worker();
}

Test(metrics, cpu_seconds_without_cgroups_grow_for_a_busy_worker)
{
	hide_cgroups();
	cpu_grows_for_a_busy_worker();
}

/* ---- the command, the host, and status ---- */

Test(metrics, without_a_host_metrics_says_so)
{
	wt_setup(&wt, "[w]\nplugin = idle\n");
	char *out, *err;
	cr_expect_eq(wt_cli(&wt, &out, &err, "metrics"), 1);
	cr_expect(strstr(err, "no host is running"), "%s", err);
	cr_expect_eq(wt_cli(&wt, &out, &err, "metrics --help"), 0);
	cr_expect(strstr(out, "metrics [-c DIR]"), "%s", out);
}

/* Context switches of pid so far (each a wakeup, or a preemption). */
static long long switches(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *s = wt_read(path), *v = s ? strstr(s, "voluntary_ctxt_switches:") : NULL,
	     *nv = s ? strstr(s, "nonvoluntary_ctxt_switches:") : NULL;
	cr_assert(v && nv);
	return atoll(v + strlen("voluntary_ctxt_switches:")) + atoll(nv + strlen("nonvoluntary_ctxt_switches:"));
}

Test(metrics, a_scrape_leaves_an_idle_host_asleep)
{
	wt_setup(&wt, "[w]\nplugin = idle\nwatchdog = 0\ninterval = 1h\n");
	wt_start(&wt);
	running("w");
	wt_metrics(&wt);
	sleep_ms(300);
	long long before = switches(wt.pid);
	sleep_ms(2000);
	long long after = switches(wt.pid);
	cr_expect_eq(after - before, 0, "an idle host woke %lld times in 2 s after a scrape", after - before);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

Test(metrics, status_shows_memory_and_cpu_of_each_instance)
{
	wt_setup(&wt, "[hog]\nplugin = metrics_hog\nmem = 32\ninstances = 2\n[f]\nplugin = init_fail\nmax_restarts = 0\n");
	wt_start(&wt);
	running("hog");
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT count(*) = 2 FROM instances WHERE worker = 'hog' AND state = 'running'"));
	cr_assert(wt_wait_sql(&wt, 10000, "SELECT state = 'failed' FROM workers WHERE name = 'f'"));
	char *out, *err, *said;
	cr_assert_eq(wt_cli(&wt, &out, &err, "status --json"), 3, "f has failed: %s", err); /* main's probe exit codes */
	int rc = wt_run_with_input(
		"python3 -c 'import json, sys\n"
		"ws = {w[\"name\"]: w for w in json.load(sys.stdin)}\n"
		"for i in ws[\"hog\"][\"instances\"]:\n"
		"    assert isinstance(i[\"rss_bytes\"], int) and i[\"rss_bytes\"] >= 32 << 20, i\n"
		"    assert isinstance(i[\"cpu_seconds\"], (int, float)) and i[\"cpu_seconds\"] >= 0, i\n"
		"for i in ws[\"f\"][\"instances\"]:\n"
		"    assert i[\"rss_bytes\"] is None and i[\"cpu_seconds\"] is None, i\n"
		"print(\"ok\")'",
		out, &said);
	cr_expect_eq(rc, 0, "python3 says:\n%s\nof:\n%s", said, out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "status"), 3, "%s", err); /* f has failed */
	cr_expect(strstr(out, " MEM ") && strstr(out, " CPU "), "no MEM and CPU columns:\n%s", out);
	cr_expect(strstr(out, "M  "), "hog's memory is not shown in MiB:\n%s", out);
	cr_assert_eq(wt_cli(&wt, &out, &err, "status hog"), 0, "%s", err);
	cr_expect_eq(wt_count(out, "  mem "), 2, "one mem figure per instance:\n%s", out);
	cr_expect_eq(wt_stop(&wt, 10000), 0);
}

/* ---- the text itself: label values are escaped ---- */

Test(metrics, label_values_are_escaped_as_the_text_format_says)
{
	struct host h = {0};
	struct worker_conf conf = {.name = "a\"b\\c\nd"};
	struct worker w = {.host = &h, .conf = &conf};
	w.in_state[IS_STOPPED] = 0;
	struct worker *ws[] = {&w};
	h.workers = ws;
	h.nworkers = 1;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert(f);
	metrics_write(&h, f);
	fclose(f);
	wt_keep(text);
	cr_expect(strstr(text, "ward_worker_ready{worker=\"a\\\"b\\\\c\\nd\"} "), "%s", text);
	wt_setup(&wt, "");
	wt_promtool_accepts(text);
}
