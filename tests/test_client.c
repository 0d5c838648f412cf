/*
 * test_client.c - the producers' side of jobs (SPEC §8, docs/jobs.md):
 * libward-client as a user gets it (installed by `cmake --install`, found
 * by pkg-config, linking libc alone) used by a program built out of ward's
 * tree (fixtures/outoftree/producer.c), and `ward enqueue`, both against a
 * real host whose queue `w` the job_cmd fixture serves.
 */
#define _GNU_SOURCE
#include "support.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void no_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
}

TestSuite(client, .init = no_sigpipe, .fini = wt_teardown, .timeout = 180);

#define JOB_WORKER "[w]\nplugin = job_cmd\njob_retry_delay = 0\njob_attempts = 1\n"

/* The host's control socket accepts connections (it comes a moment after
 * the host's row in ward.db). */
static void wait_for_socket(struct wt *t)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char path[400];
	snprintf(path, sizeof(path), "%s/ward.sock", t->state);
	cr_assert(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (long long deadline = now_ms() + 10000;; sleep_ms(20)) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(fd >= 0);
		int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return;
		cr_assert(now_ms() < deadline, "no control socket at %s: %s", sa.sun_path, strerror(errno));
	}
}

static int shell(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int shell(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd;
	cr_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	char *grouped; /* wt_run_with_input's redirections then apply to a whole pipeline */
	cr_assert(asprintf(&grouped, "( %s )", cmd) > 0);
	int rc = wt_run_with_input(grouped, "", out);
	free(grouped);
	free(cmd);
	return rc;
}

/* Installs the build tree into <dir>/prefix; returns the libdir pkg-config
 * gives for ward-client (freed at teardown). */
static char *install_prefix(char **pkg_env)
{
	char *out;
	int rc = shell(&out, "cmake --install %s --prefix %s/prefix", BUILD_DIR, wt.dir);
	cr_assert_eq(rc, 0, "cmake --install failed:\n%s", out);
	cr_assert(asprintf(pkg_env, "PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig", wt.dir) > 0);
	wt_keep(*pkg_env);
	rc = shell(&out, "%s pkg-config --variable=libdir ward-client", *pkg_env);
	cr_assert_eq(rc, 0, "pkg-config does not find ward-client in the install:\n%s", out);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Builds fixtures/outoftree/producer.c against the install, shared (or the
 * static archive): <dir>/producer. */
static void build_producer(const char *pkg_env, const char *libdir, bool static_lib)
{
	const char *san = UNDER_ASAN ? "-fsanitize=address,undefined" : "";
	char *out;
	int rc = static_lib
		? shell(&out, "%s %s -Wall -Wextra -Werror %s %s/tests/fixtures/outoftree/producer.c $(%s pkg-config --cflags ward-client) %s/libward-client.a -o %s/producer",
			pkg_env, CC_BIN, san, SOURCE_DIR, pkg_env, libdir, wt.dir)
		: shell(&out, "%s %s -Wall -Wextra -Werror %s %s/tests/fixtures/outoftree/producer.c $(%s pkg-config --cflags --libs ward-client) -Wl,-rpath,%s -o %s/producer",
			pkg_env, CC_BIN, san, SOURCE_DIR, pkg_env, libdir, wt.dir);
	cr_assert_eq(rc, 0, "the out-of-tree producer does not build:\n%s", out);
}

static int producer(char **out, const char *where)
{
	return shell(out, "timeout 90 %s/producer %s w", wt.dir, where);
}

/* ---- the library, installed ---- */

Test(client, installed_library_needs_libc_alone)
{
	wt_setup(&wt, "");
	char *pkg_env, *libdir = install_prefix(&pkg_env), *out;
	int rc = shell(&out, "readelf -d %s/libward-client.so", libdir);
	cr_assert_eq(rc, 0, "readelf: %s", out);
	int needed = 0, libc = 0;
	for (char *line = strstr(out, "(NEEDED)"); line; line = strstr(line + 1, "(NEEDED)")) {
		char *name = strchr(line, '[');
		cr_assert(name, "%s", out);
		needed++;
		bool is_libc = strncmp(name, "[libc.so.", 9) == 0, is_ld = strncmp(name, "[ld-linux", 9) == 0;
		libc += is_libc;
		bool sanitizer = UNDER_ASAN && (strncmp(name, "[libasan", 8) == 0 || strncmp(name, "[libubsan", 9) == 0 ||
						strncmp(name, "[libgcc_s", 9) == 0 || strncmp(name, "[libm.", 6) == 0);
		cr_assert(is_libc || is_ld || sanitizer, "libward-client.so needs more than libc: %.60s\n%s", name, out);
	}
	cr_assert(needed >= 1 && libc == 1, "%s", out);
	/* and exports the five calls of <ward_client.h> alone */
	rc = shell(&out, "nm -D --defined-only %s/libward-client.so | awk '{print $3}' | grep -v '^_' | sort", libdir);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_str_eq(out, "ward_client_close\nward_client_enqueue\nward_client_error\nward_client_open\nward_client_wait\n");
	/* the .pc says what to link */
	rc = shell(&out, "%s pkg-config --libs ward-client", pkg_env);
	cr_assert(rc == 0 && strstr(out, "-lward-client") && !strstr(out, "-lsqlite3"), "%s", out);
}

Test(client, outoftree_program_enqueues_and_waits)
{
	wt_setup(&wt, JOB_WORKER);
	char *pkg_env, *libdir = install_prefix(&pkg_env), *out;
	build_producer(pkg_env, libdir, false);
	int rc = producer(&out, wt.conf);
	cr_assert_eq(rc, 3, "no host running: open fails (%d)\n%s", rc, out);
	char expect[1200];
	snprintf(expect, sizeof(expect), "open: error: no host is running at %s/ward.sock (connect: ", wt.state);
	cr_assert(strstr(out, expect), "%s", out);

	wt_start(&wt);
	wait_for_socket(&wt);
	rc = producer(&out, wt.conf); /* a configuration directory */
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "echo: done 12 [hello from C]\n"), "%s", out);
	cr_assert(strstr(out, "oversize: error: payload of 1048577 bytes is over the 1 MiB limit"), "%s", out);
	cr_assert(strstr(out, "badkey: error: bad key 'has space'"), "%s", out);
	cr_assert(strstr(out, "enqueue ok: error: no queue 'nope'; queues: w\n"), "%s", out);
	cr_assert(strstr(out, "key: same id\n"), "%s", out);
	cr_assert(strstr(out, "short: 4 "), "%s", out);
	cr_assert(strstr(out, "keyed: done 5 [slept]\n"), "%s", out);
	cr_assert(strstr(out, "fail: 1 ") && strstr(out, " is dead: ") && strstr(out, "asked to fail"), "%s", out);
	cr_assert(strstr(out, "nojob: -1 job 999999: no such job\n"), "%s", out);
	cr_assert(strstr(out, "after: done 13 [still talking]\n"), "the session goes on after refusals:\n%s", out);

	/* the socket path itself, and the static archive */
	build_producer(pkg_env, libdir, true);
	char sock[1200];
	snprintf(sock, sizeof(sock), "%s/ward.sock", wt.state);
	rc = producer(&out, sock);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "echo: done 12 [hello from C]\n") && strstr(out, "after: done 13 [still talking]\n"), "%s", out);
}

Test(client, config_directory_lookup_and_open_errors)
{
	wt_setup(&wt, "");
	char *pkg_env, *libdir = install_prefix(&pkg_env), *out;
	build_producer(pkg_env, libdir, true);
	/* *.ini in name order, the last state_dir wins, relative to the
	 * directory; other sections, comments and other files do not count */
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/other", wt.dir);
	cr_assert(mkdir(dir, 0755) == 0);
	struct { const char *name, *text; } files[] = {
		{"a.ini", "[ward]\nstate_dir = /nonexistent/first\n"},
		{"b.ini", "; a comment\n[ward]\n  state_dir = here ; where the host keeps its state\n"},
		{"c.ini", "[worker]\nstate_dir = /not/this\n[ward]\n# state_dir = /nor/this\n"},
		{"d.conf", "[ward]\nstate_dir = /not/a/ini/file\n"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
		FILE *f = fopen(path, "w");
		cr_assert(f);
		fputs(files[i].text, f);
		fclose(f);
	}
	int rc = producer(&out, dir);
	char expect[1200];
	snprintf(expect, sizeof(expect), "open: error: no host is running at %s/here/ward.sock (connect: No such file or directory)\n", dir);
	cr_assert(rc == 3 && strcmp(out, expect) == 0, "%d: %s", rc, out);
	/* no state_dir anywhere: state */
	for (const char *name = "a.ini"; name; name = name[0] == 'a' ? "b.ini" : NULL) {
		snprintf(expect, sizeof(expect), "%s/%s", dir, name);
		cr_assert(unlink(expect) == 0);
	}
	rc = producer(&out, dir);
	snprintf(expect, sizeof(expect), "open: error: no host is running at %s/state/ward.sock (connect: ", dir);
	cr_assert(rc == 3 && strstr(out, expect), "%d: %s", rc, out);
	/* a socket path nothing listens on */
	rc = producer(&out, "/nonexistent/ward.sock");
	cr_assert(rc == 3 && strstr(out, "open: error: no host is running at /nonexistent/ward.sock (connect: No such file"), "%s", out);
	/* something that is not ward */
	rc = shell(&out, "python3 -c 'import socket,os\n"
			 "s=socket.socket(socket.AF_UNIX); s.bind(\"%s/fake.sock\"); s.listen(1)\n"
			 "if os.fork()==0:\n c,_=s.accept(); c.recv(100); c.sendall(b\"HTTP/1.0 400 nope\\n\"); c.close(); os._exit(0)\n"
			 "' && timeout 20 %s/producer %s/fake.sock w; wait",
		   wt.dir, wt.dir, wt.dir);
	cr_assert(strstr(out, "fake.sock does not speak ward's job protocol (it answered 'HTTP/1.0 400 nope')"), "%d %s", rc, out);
}

/* ---- ward enqueue ---- */

Test(client, ward_enqueue_prints_the_id_and_waits_for_the_result)
{
	wt_setup(&wt, JOB_WORKER);
	char *out, *err;
	int rc = wt_cli(&wt, &out, &err, "enqueue w ok");
	cr_assert_eq(rc, 1, "no host: %d %s", rc, err);
	cr_assert(strstr(err, "ward: no host is running for ") && strstr(err, "ward.sock); start one with `ward run -c "), "%s", err);
	cr_assert_str_empty(out);

	wt_start(&wt);
	wait_for_socket(&wt);
	rc = wt_cli(&wt, &out, &err, "enqueue w 'echo one'");
	long long id = atoll(out);
	cr_assert(rc == 0 && id > 0, "%d %s %s", rc, out, err);
	char line[64];
	snprintf(line, sizeof(line), "%lld\n", id);
	cr_assert_str_eq(out, line, "the id alone on a line");
	cr_assert_str_empty(err);

	rc = wt_cli(&wt, &out, &err, "enqueue w ok --json");
	long long id2;
	cr_assert(rc == 0 && sscanf(out, "{\"id\": %lld}\n", &id2) == 1 && id2 == id + 1, "%d %s %s", rc, out, err);

	/* --wait: the result's bytes alone on stdout, exit 0 */
	rc = wt_cli(&wt, &out, &err, "enqueue w 'echo two words' --wait");
	cr_assert(rc == 0 && strcmp(out, "two words") == 0, "%d [%s] %s", rc, out, err);
	/* the payload from standard input, a wait with a limit */
	char path[600];
	snprintf(path, sizeof(path), "%s/payload", wt.dir);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs("echo from stdin", f);
	fclose(f);
	char args[800];
	snprintf(args, sizeof(args), "enqueue w --wait 20s < %s", path);
	rc = wt_cli(&wt, &out, &err, args);
	cr_assert(rc == 0 && strcmp(out, "from stdin") == 0, "%d [%s] %s", rc, out, err);
	snprintf(args, sizeof(args), "enqueue w - --json --wait=20s < %s", path);
	rc = wt_cli(&wt, &out, &err, args);
	cr_assert(rc == 0 && strstr(out, "\"state\": \"done\", \"result\": \"from stdin\", \"error\": null}"), "%d [%s] %s", rc, out, err);
	/* python3 reads the JSON */
	char *py;
	rc = wt_run_with_input("python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"result\"], d[\"id\"] > 0)'", out, &py);
	cr_assert(rc == 0 && strcmp(py, "from stdin True\n") == 0, "%s", py);

	/* a key: the same id while the first is queued or running */
	rc = wt_cli(&wt, &out, &err, "enqueue w 'sleep 1500' --key k-1");
	long long k1 = atoll(out);
	cr_assert(rc == 0 && k1 > 0, "%s", err);
	rc = wt_cli(&wt, &out, &err, "enqueue w 'sleep 1500' --key k-1");
	cr_assert(rc == 0 && atoll(out) == k1, "%s %s", out, err);
	/* still unfinished when the wait ends: 4 */
	long long t0 = now_ms();
	rc = wt_cli(&wt, &out, &err, "enqueue w 'sleep 3000' --wait 200ms");
	cr_assert_eq(rc, 4, "%d %s %s", rc, out, err);
	cr_assert(now_ms() - t0 < 2900, "--wait 200ms waited %lld ms", now_ms() - t0);
	cr_assert(strstr(err, "is not finished after 200ms"), "%s", err);
	cr_assert_str_empty(out);
	/* dead: 1, its error on stderr */
	rc = wt_cli(&wt, &out, &err, "enqueue w fail --wait");
	cr_assert(rc == 1 && strstr(err, "is dead: ") && strstr(err, "asked to fail"), "%d %s", rc, err);
	cr_assert_str_empty(out);
	/* a delay: not run before it */
	t0 = now_ms();
	rc = wt_cli(&wt, &out, &err, "enqueue w 'echo late' --delay 1s --wait 20s");
	cr_assert(rc == 0 && strcmp(out, "late") == 0, "%d %s %s", rc, out, err);
	cr_assert(now_ms() - t0 >= 1000, "a job delayed 1s ran after %lld ms", now_ms() - t0);
}

Test(client, ward_enqueue_refusals)
{
	wt_setup(&wt, JOB_WORKER "\n[broken]\nplugin = job_cmd\nfail_init = yes\nmax_restarts = 0\n");
	wt_start(&wt);
	wait_for_socket(&wt);
	char *out, *err, args[800], path[600];
	/* over 1 MiB on stdin: refused before anything is sent */
	snprintf(path, sizeof(path), "%s/big", wt.dir);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	for (int i = 0; i < 1024 * 1024 + 1; i++)
		fputc('x', f);
	fclose(f);
	snprintf(args, sizeof(args), "enqueue w < %s", path);
	int rc = wt_cli(&wt, &out, &err, args);
	cr_assert(rc == 1 && strstr(err, "ward: the payload is over the 1 MiB limit (1048576 bytes)"), "%d %s", rc, err);
	cr_assert_str_empty(out);
	/* exactly 1 MiB is a payload */
	cr_assert(truncate(path, 1024 * 1024) == 0);
	rc = wt_cli(&wt, &out, &err, args);
	cr_assert(rc == 0 && atoll(out) > 0, "1 MiB exactly: %d %s %s", rc, out, err);
	/* bad usage: 2 */
	rc = wt_cli(&wt, &out, &err, "enqueue w ok --key 'a b'");
	cr_assert(rc == 2 && strstr(err, "bad --key 'a b'"), "%d %s", rc, err);
	rc = wt_cli(&wt, &out, &err, "enqueue");
	cr_assert(rc == 2 && strstr(err, "enqueue needs a QUEUE"), "%d %s", rc, err);
	rc = wt_cli(&wt, &out, &err, "enqueue w ok --delay soon");
	cr_assert(rc == 2 && strstr(err, "--delay wants a duration"), "%d %s", rc, err);
	rc = wt_cli(&wt, &out, &err, "enqueue w ok extra");
	cr_assert(rc == 2 && strstr(err, "unexpected argument 'extra'"), "%d %s", rc, err);
	rc = wt_cli(&wt, &out, &err, "enqueue --help");
	cr_assert(rc == 0 && strstr(out, "enqueue QUEUE [PAYLOAD|-]") && strstr(out, "4 still unfinished"), "%d %s", rc, out);
	rc = wt_cli(&wt, &out, &err, "help");
	cr_assert(rc == 0 && strstr(out, "  enqueue QUEUE"), "%s", out);
	/* an unknown queue: the host names the queues */
	rc = wt_cli(&wt, &out, &err, "enqueue nope ok");
	cr_assert(rc == 1 && strstr(err, "ward: no queue 'nope'; queues: broken, w"), "%d %s", rc, err);
	/* a worker that will not come: stored, said, and a waiter told at once */
	cr_assert(wt_wait_sql(&wt, 20000, "SELECT count(*) FROM workers WHERE name = 'broken' AND state = 'failed'"),
		  "broken never failed:\n%s", wt_host_stderr(&wt));
	long long t0 = now_ms();
	rc = wt_cli(&wt, &out, &err, "enqueue broken ok --wait 30s");
	cr_assert_eq(rc, 1, "%d %s %s", rc, out, err);
	cr_assert(now_ms() - t0 < 10000, "told after %lld ms", now_ms() - t0);
	cr_assert(strstr(err, "waits for a worker that will not come (failed)"), "%s", err);
	cr_assert(strstr(err, " is queued, but worker broken is failed (init-failed"), "the enqueue says so: %s", err);
}
