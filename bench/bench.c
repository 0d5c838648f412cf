/*
 * bench.c - measures ward itself, one scenario per command, and prints one
 * markdown table row per figure. A real `ward run` host runs on a throw-away
 * configuration each time; timings come from CLOCK_MONOTONIC stamps written
 * by the stamp plugin and from the host's own history.
 *
 *   bench restart N        crash -> replacement's first cycle, restart_delay = 0
 *   bench boot N           N instances all running their first cycle; RSS of the host and its spawner
 *   bench idle N SECONDS   wakeups per second of the host and its spawner, N idle workers (watchdog on and off)
 *   bench cycle N          cost of an empty cycle in the runtime
 *   bench logs N           N ward_log lines of one worker: its first cycle -> the last line in its log; lines lost
 *   bench scale            boot, stop, `ward status`, host CPU and RSS at 1k, 2k, 5k and 10k instances
 *   bench scrape N         GET /metrics with N workers: a lone scrape, back-to-back ones; idle wakeups with http on
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static pid_t host;

static long long mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void die(const char *what)
{
	fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
	if (host > 0)
		kill(host, SIGKILL);
	exit(1);
}

/* Writes <dir>/conf/ward.ini: the [ward] section plus the given workers. */
static void configure(const char *workers)
{
	snprintf(dir, sizeof(dir), "/tmp/ward-bench-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	char path[256];
	snprintf(path, sizeof(path), "%s/conf", dir);
	if (mkdir(path, 0755) < 0)
		die("mkdir");
	snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("conf");
	fprintf(f, "[ward]\nplugin_dir = %s\nstate_dir = %s/state\nautoload = no\n\n%s", BENCH_PLUGIN_DIR, dir, workers);
	fclose(f);
}

static void start_host(void)
{
	char conf[128], err[128];
	snprintf(conf, sizeof(conf), "%s/conf", dir);
	snprintf(err, sizeof(err), "%s/host.err", dir);
	host = fork();
	if (host < 0)
		die("fork");
	if (host == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(WARD_BIN, "ward", "run", "-c", conf, (char *)NULL);
		_exit(127);
	}
}

static void stop_host(void)
{
	kill(host, SIGTERM);
	for (int i = 0; i < 3000 && waitpid(host, NULL, WNOHANG) == 0; i++)
		nap_ms(10);
	kill(host, SIGKILL);
	waitpid(host, NULL, 0);
	host = 0;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), getenv("BENCH_KEEP") ? "true %s" : "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

/* Reads the "<instance> <ns>" lines added since the last call, into ns[*n..max).
 * Only complete lines count: a line being written is read at the next call. */
static void read_new_stamps(FILE *f, long long *ns, int *n, int max)
{
	char line[64];
	long at = ftell(f);
	while (*n < max && fgets(line, sizeof(line), f)) {
		int inst;
		long long v;
		if (!strchr(line, '\n')) {
			fseek(f, at, SEEK_SET); /* not all there yet */
			break;
		}
		if (sscanf(line, "%d %lld", &inst, &v) == 2)
			ns[(*n)++] = v;
		at = ftell(f);
	}
	clearerr(f);
}

/* Reads the file on from where it left off: a bench that re-read it whole
 * at every poll would cost O(n^2) and take the host's CPU at 10,000. */
static int wait_stamps(const char *path, long long *ns, int want, int timeout_ms)
{
	long long deadline = mono_ns() + (long long)timeout_ms * 1000000;
	int n = 0;
	FILE *f = NULL;
	while (n < want && mono_ns() < deadline) {
		if (!f)
			f = fopen(path, "r");
		if (f)
			read_new_stamps(f, ns, &n, want);
		if (n < want)
			nap_ms(2);
	}
	if (f)
		fclose(f);
	return n;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static long status_field(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t len = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, len) == 0 && line[len] == ':')
			v = atol(line + len + 1);
	fclose(f);
	return v;
}

/* The host's child named ward-spawner, or 0. */
static pid_t spawner_pid(void)
{
	char path[64], comm[32];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)host, (int)host);
	FILE *f = fopen(path, "r");
	int pid, found = 0;
	while (f && !found && fscanf(f, "%d", &pid) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		FILE *c = fopen(path, "r");
		if (c && fgets(comm, sizeof(comm), c) && strcmp(comm, "ward-spawner\n") == 0)
			found = pid;
		if (c)
			fclose(c);
	}
	if (f)
		fclose(f);
	return found;
}

static int bench_restart(int n)
{
	char workers[512], out[128];
	configure("");
	snprintf(out, sizeof(out), "%s/stamps", dir);
	snprintf(workers, sizeof(workers),
		 "[crash]\nplugin = stamp\nout = %s\nthen = crash\nrestart_delay = 0\nmax_restarts = unlimited\nlimit.core = 0\n", out);
	char path[128];
	snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
	FILE *f = fopen(path, "a");
	fputs(workers, f);
	fclose(f);
	start_host();
	long long *ns = calloc((size_t)n + 1, sizeof(*ns));
	int got = wait_stamps(out, ns, n + 1, 60000);
	stop_host();
	if (got < n + 1) {
		fprintf(stderr, "bench: only %d restarts seen\n", got - 1);
		return 1;
	}
	for (int i = 0; i < n; i++)
		ns[i] = ns[i + 1] - ns[i];
	qsort(ns, (size_t)n, sizeof(*ns), cmp_ll);
	printf("| restart latency (SIGSEGV -> first cycle of the replacement, restart_delay = 0, %d restarts) | median %.2f ms, p90 %.2f ms |\n",
	       n, ns[n / 2] / 1e6, ns[n * 9 / 10] / 1e6);
	free(ns);
	return 0;
}

/* What one boot of n instances measured. */
struct boot_figures {
	double boot_ms, stop_ms, status_ms, host_cpu_ms;
	long rss_kib, spawner_rss_kib;
};

/* The host's user + system CPU time so far, from /proc/<pid>/stat. */
static double cpu_ms(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	char *p = strrchr(buf, ')'); /* the name may hold spaces */
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (ut + st) * 1000.0 / sysconf(_SC_CLK_TCK);
}

/* `ward status` against the running host, output discarded: its wall time. */
static double status_ms(void)
{
	char conf[128];
	snprintf(conf, sizeof(conf), "%s/conf", dir);
	long long t0 = mono_ns();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(WARD_BIN, "ward", "status", "-c", conf, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3))
		fprintf(stderr, "bench: `ward status` failed (wait status %d)\n", status);
	return (mono_ns() - t0) / 1e6;
}

/* n stamp instances, 1,000 per worker; -1 when not all started. */
static int boot_and_stop(int n, struct boot_figures *fig)
{
	char out[128];
	configure("");
	snprintf(out, sizeof(out), "%s/stamps", dir);
	char path[128];
	snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
	FILE *f = fopen(path, "a");
	if (!f)
		die("conf");
	for (int left = n, k = 0; left > 0; k++) {
		int here = left > 1000 ? 1000 : left;
		fprintf(f, "[boot%d]\nplugin = stamp\nout = %s\ninstances = %d\ninterval = 1h\n", k, out, here);
		left -= here;
	}
	fclose(f);
	long long t0 = mono_ns();
	start_host();
	long long *ns = calloc((size_t)n, sizeof(*ns));
	int got = wait_stamps(out, ns, n, 60000);
	long long last = 0;
	for (int i = 0; i < got; i++)
		if (ns[i] > last)
			last = ns[i];
	free(ns);
	fig->host_cpu_ms = cpu_ms(host);
	nap_ms(200);
	pid_t spawner = spawner_pid();
	fig->rss_kib = status_field(host, "VmRSS");
	fig->spawner_rss_kib = spawner ? status_field(spawner, "VmRSS") : 0;
	double st[3];
	for (int i = 0; i < 3; i++)
		st[i] = status_ms();
	fig->status_ms = st[0] < st[1] ? (st[0] < st[2] ? st[0] : st[2]) : (st[1] < st[2] ? st[1] : st[2]);
	long long t1 = mono_ns();
	stop_host();
	fig->stop_ms = (mono_ns() - t1) / 1e6;
	fig->boot_ms = (last - t0) / 1e6;
	if (got < n) {
		fprintf(stderr, "bench: only %d of %d instances started\n", got, n);
		return -1;
	}
	return 0;
}

static int bench_boot(int n)
{
	struct boot_figures fig;
	if (boot_and_stop(n, &fig) < 0)
		return 1;
	printf("| boot %d workers (exec of `ward run` -> every first cycle) | %.0f ms, host RSS %.1f MiB + spawner %.1f MiB |\n",
	       n, fig.boot_ms, fig.rss_kib / 1024.0, fig.spawner_rss_kib / 1024.0);
	printf("| stop %d cooperative workers (SIGTERM to the host -> host exited) | %.0f ms |\n", n, fig.stop_ms);
	return 0;
}

/* Boot, status and stop at 1k, 2k, 5k and 10k instances in one run, each
 * also as a multiple of the 1k figure (linear: 2, 5, 10). */
static int bench_scale(void)
{
	static const int sizes[] = {1000, 2000, 5000, 10000};
	struct boot_figures base = {0};
	printf("| instances | boot | stop | `ward status` | host CPU during boot | host RSS |\n|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct boot_figures f;
		if (boot_and_stop(sizes[i], &f) < 0)
			return 1;
		if (i == 0)
			base = f;
		printf("| %d | %.0f ms (x%.1f) | %.0f ms (x%.1f) | %.0f ms | %.0f ms (x%.1f) | %.1f MiB |\n", sizes[i],
		       f.boot_ms, f.boot_ms / base.boot_ms, f.stop_ms, f.stop_ms / base.stop_ms, f.status_ms,
		       f.host_cpu_ms, f.host_cpu_ms / base.host_cpu_ms, f.rss_kib / 1024.0);
		fflush(stdout);
	}
	return 0;
}

/* Of the host and its spawner: every supervisor-side process. */
static long ctx_switches(void)
{
	long n = 0;
	pid_t side[2] = {host, spawner_pid()};
	for (int i = 0; i < 2; i++)
		if (side[i] > 0)
			n += status_field(side[i], "voluntary_ctxt_switches") +
			     status_field(side[i], "nonvoluntary_ctxt_switches");
	return n;
}

static int bench_idle(int n, int seconds)
{
	for (int watchdog = 1; watchdog >= 0; watchdog--) {
		char out[128], path[128];
		configure("");
		snprintf(out, sizeof(out), "%s/stamps", dir);
		snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
		FILE *f = fopen(path, "a");
		fprintf(f, "[idle]\nplugin = stamp\nout = %s\ninstances = %d\ninterval = 1h\nwatchdog = %s\n", out, n,
			watchdog ? "60s" : "0");
		fclose(f);
		start_host();
		long long *ns = calloc((size_t)n, sizeof(*ns));
		int got = wait_stamps(out, ns, n, 60000);
		free(ns);
		nap_ms(1500); /* let the boot's history batch settle */
		long c0 = ctx_switches();
		nap_ms(seconds * 1000);
		long c1 = ctx_switches();
		stop_host();
		if (got < n)
			return 1;
		printf("| idle: %d workers, watchdog %s, %d s | %.2f wakeups/s (host and spawner) |\n", n, watchdog ? "60s" : "off",
		       seconds, (double)(c1 - c0) / seconds);
	}
	return 0;
}

static int bench_cycle(long n)
{
	char workers[256];
	snprintf(workers, sizeof(workers), "[count]\nplugin = counter\ncycles = %ld\nwatchdog = 0\n", n);
	configure(workers);
	start_host();
	char db[128];
	snprintf(db, sizeof(db), "%s/state/ward.db", dir);
	long long ran_ms = -1;
	for (int i = 0; i < 6000 && ran_ms < 0; i++) {
		nap_ms(20);
		sqlite3 *h;
		if (access(db, F_OK) < 0 || sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
			continue;
		sqlite3_busy_timeout(h, 1000);
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(h, "SELECT ended_at - ready_at FROM runs WHERE reason = 'done'", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				ran_ms = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		sqlite3_close(h);
	}
	stop_host();
	if (ran_ms <= 0) {
		fprintf(stderr, "bench: the counter never finished\n");
		return 1;
	}
	printf("| empty cycle (%ld cycles in one worker) | %.2f ns/cycle, %.1f M cycles/s |\n", n, ran_ms * 1e6 / n,
	       n / (ran_ms * 1e3));
	return 0;
}

/* How many lines the stamp plugin logged are in path. */
static long count_lines(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	long got = 0;
	while (f && fgets(line, sizeof(line), f))
		got += strstr(line, "benchline ") != NULL;
	if (f)
		fclose(f);
	return got;
}

/* Whether the last 4 KiB of path hold needle: cheap enough to poll. */
static int tail_has(const char *path, const char *needle)
{
	char buf[4097];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	off_t end = lseek(fd, 0, SEEK_END);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, end > 4096 ? end - 4096 : 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, needle) != NULL;
}

static int bench_logs(long n)
{
	char workers[512], out[128], log[128];
	snprintf(out, sizeof(out), "/tmp/ward-bench-stamps-%d", (int)getpid());
	unlink(out);
	snprintf(workers, sizeof(workers), "[w0]\nplugin = stamp\nout = %s\nthen = ward-log\nlines = %ld\ninterval = 1h\n", out, n);
	configure(workers);
	char path[128];
	snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
	FILE *f = fopen(path, "a");
	if (!f)
		die("conf");
	fputs("[ward]\nlog_max_size = 0\n", f); /* no rotation: every line stays in one file */
	fclose(f);
	snprintf(log, sizeof(log), "%s/state/logs/w0.log", dir);
	start_host();
	char want[32];
	snprintf(want, sizeof(want), "benchline %07ld ", n - 1);
	long long t0;
	int last = 0;
	if (wait_stamps(out, &t0, 1, 60000) == 1)
		for (long long deadline = mono_ns() + 120 * 1000000000LL; !last && mono_ns() < deadline;) {
			nap_ms(2);
			last = tail_has(log, want);
		}
	long long t1 = mono_ns();
	long got = count_lines(log);
	stop_host();
	unlink(out);
	if (!last) {
		fprintf(stderr, "bench: the last line never reached the log (%ld of %ld)\n", got, n);
		return 1;
	}
	printf("| logs: one worker sends %ld ward_log lines of 100 bytes: its first cycle -> the last line in its log | %.0f ms (%.2f M lines/s), %ld lost |\n",
	       n, (t1 - t0) / 1e6, n / ((t1 - t0) / 1e3), n - got);
	return 0;
}

/* A port nobody listens on now (the kernel's choice for a bound socket). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		die("free port");
	close(fd);
	return ntohs(a.sin_port);
}

/* One GET /metrics on a fresh connection, read to its end: its wall time in
 * ms, or -1. *bytes: the size of the answer. */
static double scrape_ms(int port, long *bytes)
{
	long long t0 = mono_ns();
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -1;
	}
	static char buf[1 << 16];
	long n = 0;
	for (ssize_t r; (r = read(fd, buf, sizeof(buf))) != 0; n += r > 0 ? r : 0)
		if (r < 0 && errno != EINTR) {
			close(fd);
			return -1;
		}
	close(fd);
	*bytes = n;
	return (mono_ns() - t0) / 1e6;
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++) /* insertion sort: a handful of figures */
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

/* n workers of one instance each, `http` on: the first scrape (every
 * instance's memory and CPU read before the answer), a series of scrapes
 * more than a second apart, as a Prometheus server makes them (each served
 * from the readings taken right after the one before: usage.h), scrapes
 * right after one of those (readings younger than a second), and the
 * wakeups of an idle host with the endpoint on. */
static int bench_scrape(int n)
{
	enum { RUNS = 7 };
	char out[128], path[128];
	int port = free_port();
	configure("");
	snprintf(out, sizeof(out), "%s/stamps", dir);
	snprintf(path, sizeof(path), "%s/conf/ward.ini", dir);
	FILE *f = fopen(path, "w");
	if (!f)
		die("conf");
	fprintf(f, "[ward]\nplugin_dir = %s\nstate_dir = %s/state\nautoload = no\nhttp = 127.0.0.1:%d\n\n", BENCH_PLUGIN_DIR, dir, port);
	for (int i = 0; i < n; i++)
		fprintf(f, "[w%d]\nplugin = stamp\nout = %s\ninterval = 1h\n", i, out);
	fclose(f);
	start_host();
	long long *ns = calloc((size_t)n, sizeof(*ns));
	int got = wait_stamps(out, ns, n, 60000);
	free(ns);
	if (got < n) {
		fprintf(stderr, "bench: only %d of %d workers started\n", got, n);
		stop_host();
		return 1;
	}
	double lone[RUNS], back[RUNS];
	long bytes = 0;
	double first = scrape_ms(port, &bytes);
	for (int i = 0; i < RUNS; i++) {
		nap_ms(1100);
		lone[i] = scrape_ms(port, &bytes);
		back[i] = scrape_ms(port, &bytes);
	}
	nap_ms(1500);
	long c0 = ctx_switches();
	nap_ms(10000);
	long c1 = ctx_switches();
	stop_host();
	for (int i = 0; i < RUNS; i++)
		if (first < 0 || lone[i] < 0 || back[i] < 0) {
			fprintf(stderr, "bench: a scrape failed\n");
			return 1;
		}
	printf("| GET /metrics, %d workers (%ld bytes): the first scrape, every instance's memory and CPU read before the answer | %.1f ms |\n",
	       n, bytes, first);
	printf("| GET /metrics, %d workers: a scrape 1.1 s after the last, served from the readings taken after it | %.1f ms |\n", n,
	       median(lone, RUNS));
	printf("| GET /metrics, %d workers: a scrape within a second of the last one | %.1f ms |\n", n, median(back, RUNS));
	printf("| idle: %d workers, http on, 10 s | %.2f wakeups/s (host and spawner) |\n", n, (c1 - c0) / 10.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "restart") == 0)
		return bench_restart(argc > 2 ? atoi(argv[2]) : 200);
	if (argc >= 2 && strcmp(argv[1], "boot") == 0)
		return bench_boot(argc > 2 ? atoi(argv[2]) : 1000);
	if (argc >= 2 && strcmp(argv[1], "idle") == 0)
		return bench_idle(argc > 2 ? atoi(argv[2]) : 100, argc > 3 ? atoi(argv[3]) : 10);
	if (argc >= 2 && strcmp(argv[1], "cycle") == 0)
		return bench_cycle(argc > 2 ? atol(argv[2]) : 500000000L);
	if (argc >= 2 && strcmp(argv[1], "logs") == 0)
		return bench_logs(argc > 2 ? atol(argv[2]) : 1000000L);
	if (argc >= 2 && strcmp(argv[1], "scale") == 0)
		return bench_scale();
	if (argc >= 2 && strcmp(argv[1], "scrape") == 0)
		return bench_scrape(argc > 2 ? atoi(argv[2]) : 1000);
	fprintf(stderr, "usage: bench restart [N] | boot [N] | idle [N] [SECONDS] | cycle [N] | logs [N] | scale | scrape [N]\n");
	return 2;
}
