/*
 * main.c - the `ward` command line: parses arguments and hands each command
 * to the subsystem that owns it. Exit status: 0 success, 1 failure, 2 bad usage.
 * The CLI and the host daemon (`ward run`) start here; the spawner, which
 * the host executes again as ward, never reaches main() (a constructor in
 * spawner/spawner.c serves it).
 */
#define _GNU_SOURCE
#include "cli/client.h"
#include "config/config.h"
#include "daemon/run.h"
#include "daemon/probe.h"
#include "cli/report.h"
#include "cli/jobs_report.h"
#include "cli/enqueue.h"
#include "daemon/jobstore.h"
#include "cli/test_report.h"
#include "cli/test_run.h"
#include "cli/logview.h"
#include "common/reason.h"
#include "common/units.h"
#include "common/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <ward.h>

#ifndef WARD_VERSION
#define WARD_VERSION "0.1.0"
#endif
#define DEFAULT_CONFIG_DIR "/etc/ward/conf.d"
#define PROBE_TIMEOUT_MS 5000

static const char usage[] =
	"usage: ward COMMAND [options]\n"
	"\n"
	"  run [-c DIR]                        run the host in the foreground (SIGTERM/SIGINT stop it)\n"
	"  check [-c DIR]                      validate the configuration and every plugin; start nothing\n"
	"  check --keys                        every ward key: type, default and meaning\n"
	"  status [NAME] [--json] [-c DIR]     every worker: state, pids, uptime, restarts, cycles,\n"
	"                                      memory, CPU, last exit; exit 0: all healthy, 3: one is\n"
	"                                      not, 1: no host running\n"
	"  history [NAME] [-n N] [--json] [--log] [-c DIR]\n"
	"                                      past runs and how they ended (the last N, default 20);\n"
	"                                      --log: under each failed run, the last 20 lines its\n"
	"                                      process wrote\n"
	"  logs [NAME...] [-n N] [-f] [-c DIR] show or follow workers' logs; several, or none named\n"
	"                                      (every worker), merged in time order, N lines in all\n"
	"  start|stop|restart NAME... [-c DIR] act on workers of the running host\n"
	"  signal SIGNAL NAME... [-c DIR]      send SIGNAL (USR1, SIGUSR1 or a number) to every process\n"
	"                                      of the named workers\n"
	"  metrics [-c DIR]                    the running host's metrics in the Prometheus text format\n"
	"  reload [-c DIR]                     re-read the configuration: start added workers, stop\n"
	"                                      removed ones, restart changed ones, leave the rest alone\n"
	"  enqueue QUEUE [PAYLOAD|-] [--key KEY] [--delay DUR] [--wait [DUR]] [--json] [-c DIR]\n"
	"                                      queue a job; print its id once it is stored (--json:\n"
	"                                      {\"id\": N}); no PAYLOAD or -: standard input (at most\n"
	"                                      1 MiB); --key: not twice while one with KEY is queued or\n"
	"                                      running; --delay: run no sooner; --wait [DUR]: wait (no\n"
	"                                      limit, or DUR) and print its result; exit 0 done, 1\n"
	"                                      failed or dead, 4 still unfinished\n"
	"  jobs [QUEUE] [--state STATE] [-n N] [--json] [-c DIR]\n"
	"                                      jobs, newest first (default 20), with state, attempts\n"
	"                                      and last error; STATE: queued, running, done, dead,\n"
	"                                      cancelled\n"
	"  job ID [--json] [-c DIR]            one job with every attempt (process, times, how it\n"
	"                                      ended; a failed attempt's last log lines)\n"
	"  job retry|cancel ID [-c DIR]        queue a dead job again; cancel a queued one\n"
	"  test PLUGIN.so [key=value...] [--cycles N] [--timeout DUR] [--json] [--in-process]\n"
	"       [--job PAYLOAD]... [--jobs FILE]\n"
	"                                      run one plugin as the host would and report each phase;\n"
	"                                      --job hands .job PAYLOAD (repeatable), --jobs one job per\n"
	"                                      line of FILE (- for stdin), one by one, then stops it;\n"
	"                                      after --cycles N it is stopped with SIGTERM as the host\n"
	"                                      stops it; after --timeout (default 30s) too, and killed\n"
	"                                      " TEST_STOP_GRACE_TEXT " later if it is still there\n"
	"  test --describe PLUGIN.so           the plugin's name, version, ABI and options\n"
	"  version                             ward's version and plugin ABI version\n"
	"\n"
	"DIR defaults to $WARD_CONFIG_DIR, else " DEFAULT_CONFIG_DIR ". See docs/ for the guides.\n";

struct args {
	const char *config_dir;
	const char *name;
	bool json, follow, keys, log;
	long lines;
};

/* Whether the usage line `line` (its text after the two-space indent)
 * describes cmd: its first word is cmd, or an alternation naming it
 * ("start|stop|restart"). */
static bool usage_line_is(const char *line, const char *cmd)
{
	size_t word = strcspn(line, " \n");
	for (const char *alt = line; alt < line + word;) {
		size_t len = strcspn(alt, "| \n");
		if (len == strlen(cmd) && strncmp(alt, cmd, len) == 0)
			return true;
		alt += len + (alt[len] == '|');
	}
	return false;
}

/* `ward CMD --help`: the usage lines of cmd alone, cut out of the one usage
 * text so that the two cannot disagree. False if cmd has none. */
static bool print_command_help(const char *cmd)
{
	bool found = false, in_cmd = false;
	for (const char *line = usage; *line;) {
		size_t len = strcspn(line, "\n") + 1;
		bool entry = strncmp(line, "  ", 2) == 0 && line[2] != ' ';
		bool continued = strncmp(line, "   ", 3) == 0;
		if (entry)
			in_cmd = usage_line_is(line + 2, cmd);
		else if (!continued)
			in_cmd = false;
		if (in_cmd) {
			if (!found)
				fputs("usage:\n", stdout);
			fwrite(line, 1, len, stdout);
			found = true;
		}
		line += len;
	}
	if (found)
		printf("\nDIR defaults to $WARD_CONFIG_DIR, else " DEFAULT_CONFIG_DIR ". `ward --help` lists every command.\n");
	return found;
}

/* Whether argv asks for help anywhere: `ward status -c DIR --help` too. */
static bool asks_for_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static int bad_usage(const char *fmt, const char *what)
{
	fprintf(stderr, "ward: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n\n%s", usage);
	return 2;
}

/* Options shared by every command; returns 0, or 2 for bad usage. */
static int parse_args(int argc, char **argv, struct args *a, bool takes_name)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
		{"follow", no_argument, NULL, 'f'},      {"lines", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},        {"keys", no_argument, NULL, 'k'},
		{"log", no_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	*a = (struct args){.lines = -1};
	a->config_dir = getenv("WARD_CONFIG_DIR") ? getenv("WARD_CONFIG_DIR") : DEFAULT_CONFIG_DIR;
	optind = 1;
	int c;
	while ((c = getopt_long(argc, argv, "c:n:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config_dir = optarg; break;
		case 'j': a->json = true; break;
		case 'k': a->keys = true; break;
		case 'l': a->log = true; break;
		case 'f': a->follow = true; break;
		case 'n':
			if (parse_long(optarg, &a->lines) < 0 || a->lines < 0)
				return bad_usage("-n wants a number of lines, not '%s'", optarg);
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default: return bad_usage("%s", "unknown option");
		}
	}
	if (optind < argc) {
		if (!takes_name)
			return bad_usage("unexpected argument '%s'", argv[optind]);
		a->name = argv[optind++];
	}
	if (optind < argc)
		return bad_usage("unexpected argument '%s'", argv[optind]);
	return 0;
}

/* Host settings are needed even when worker sections have errors. */
static int load_for_client(const char *dir, struct config *cfg)
{
	config_load(dir, cfg);
	if (!cfg->state_dir) {
		for (size_t i = 0; i < cfg->errors.n; i++)
			fprintf(stderr, "ward: error: %s\n", cfg->errors.v[i]);
		return -1;
	}
	return 0;
}

static int cmd_check(const struct args *a)
{
	if (a->keys) {
		config_print_keys(stdout);
		return 0;
	}
	struct config cfg;
	config_load(a->config_dir, &cfg);
	struct strv load_errors = {0};
	probe_check_config(&cfg, &load_errors);
	size_t errors = cfg.errors.n + load_errors.n;
	for (size_t i = 0; i < cfg.warnings.n; i++)
		fprintf(stderr, "ward: warning: %s\n", cfg.warnings.v[i]);
	for (size_t i = 0; i < cfg.errors.n; i++)
		fprintf(stderr, "ward: error: %s\n", cfg.errors.v[i]);
	for (size_t i = 0; i < load_errors.n; i++)
		fprintf(stderr, "ward: error: %s\n", load_errors.v[i]);
	strv_free(&load_errors);
	if (errors) {
		fprintf(stderr, "ward: %zu error%s in %s\n", errors, errors == 1 ? "" : "s", a->config_dir);
		config_free(&cfg);
		return 1;
	}
	printf("%s: configuration is valid: %zu worker%s\n", cfg.dir, cfg.nworkers, cfg.nworkers == 1 ? "" : "s");
	for (size_t i = 0; i < cfg.nworkers; i++)
		printf("  %-20s %s (%d instance%s%s)\n", cfg.workers[i].name, cfg.workers[i].plugin,
		       cfg.workers[i].instances, cfg.workers[i].instances == 1 ? "" : "s",
		       cfg.workers[i].autostart ? "" : ", not autostarted");
	config_free(&cfg);
	return 0;
}

static int cmd_report(const struct args *a, bool history)
{
	struct config cfg;
	if (load_for_client(a->config_dir, &cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	/* A running host brings its history up to date first: status is live,
	 * and history lists a run that ended a moment ago (the host writes runs
	 * in batches). When it cannot, its answer (on stderr) says since when
	 * what is shown may be stale. */
	client_request(cfg.state_dir, "sync", false);
	struct report_opts o = {.state_dir = cfg.state_dir, .config_dir = a->config_dir, .log_dir = cfg.log_dir,
				.name = a->name,
				.json = a->json, .limit = a->lines, .log = a->log};
	int rc = history ? report_history(&o) : report_status(&o);
	config_free(&cfg);
	return rc;
}

/* start/stop/restart NAME... and reload: one request to the running host. */
static int cmd_control(const char *verb, int argc, char **argv, const struct args *a)
{
	struct config cfg;
	if (load_for_client(a->config_dir, &cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	char *request = xstrdup(verb);
	for (int i = 0; i < argc; i++) {
		char *more = xasprintf("%s %s", request, argv[i]);
		free(request);
		request = more;
	}
	enum client_result r = client_request(cfg.state_dir, request, false);
	if (r == CLIENT_NO_HOST)
		fprintf(stderr, "ward: no host is running for %s (nothing listens on %s/ward.sock); start one with `ward run -c %s`\n",
			a->config_dir, cfg.state_dir, a->config_dir);
	free(request);
	config_free(&cfg);
	return r == CLIENT_OK ? 0 : 1;
}

/* Splits "ward VERB NAME... [-c DIR] [-n N]" into names and options. */
static int parse_names(int argc, char **argv, struct args *a, char **names, int *nnames)
{
	*nnames = 0;
	char *opts[argc + 1];
	int nopts = 0;
	opts[nopts++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-n") == 0 ||
		    strcmp(argv[i], "--lines") == 0) {
			opts[nopts++] = argv[i];
			if (i + 1 < argc)
				opts[nopts++] = argv[++i];
		} else if (argv[i][0] == '-') {
			opts[nopts++] = argv[i];
		} else {
			names[(*nnames)++] = argv[i];
		}
	}
	opts[nopts] = NULL;
	int rc = parse_args(nopts, opts, a, false);
	if (rc == 0 && a->log)
		return bad_usage("%s", "--log is an option of history only (ward history NAME --log)");
	return rc;
}

/* --jobs FILE: one payload a line (blank lines skipped), added to *jobs;
 * the lines are kept in *lines. 0, or -1 (said). */
static int read_job_lines(const char *path, struct test_job_input **jobs, size_t *njobs, struct strv *lines)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!f) {
		fprintf(stderr, "ward: --jobs %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0)
			continue;
		strv_push(lines, xstrdup(line));
		*jobs = xrealloc(*jobs, (*njobs + 1) * sizeof(**jobs));
		(*jobs)[(*njobs)++] = (struct test_job_input){NULL, (size_t)n};
	}
	free(line);
	bool failed = ferror(f);
	if (f != stdin)
		fclose(f);
	if (failed) {
		fprintf(stderr, "ward: --jobs %s: unable to read it\n", path);
		return -1;
	}
	return 0;
}

/* ward test PLUGIN.so [key=value...] [--cycles N] [--timeout DUR] [--json] [--in-process] [--describe]
 *           [--job PAYLOAD]... [--jobs FILE] */
static int cmd_test(int argc, char **argv)
{
	struct tester_options o = {.timeout_ms = 30000};
	char **keys = xcalloc((size_t)argc + 1, sizeof(char *));
	bool json = false, describe = false;
	long n;
	/* Payloads point into argv or into lines: set once all are read (lines may grow). */
	struct test_job_input *jobs = NULL;
	size_t njobs = 0;
	struct strv lines = {0};
	int rc;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--job") == 0 && i + 1 < argc) {
			const char *payload = argv[++i];
			jobs = xrealloc(jobs, (njobs + 1) * sizeof(*jobs));
			jobs[njobs++] = (struct test_job_input){payload, strlen(payload)};
		} else if (strcmp(arg, "--jobs") == 0 && i + 1 < argc) {
			if (read_job_lines(argv[++i], &jobs, &njobs, &lines) < 0) {
				rc = 2;
				goto out;
			}
		} else if (strcmp(arg, "--json") == 0) { /* --help was answered by main() */
			json = true;
		} else if (strcmp(arg, "--in-process") == 0) {
			o.in_process = true;
		} else if (strcmp(arg, "--describe") == 0) {
			describe = true;
		} else if (strcmp(arg, "--cycles") == 0 && i + 1 < argc) {
			if (parse_long(argv[++i], &n) < 0 || n <= 0)
				return bad_usage("--cycles wants a positive number, not '%s'", argv[i]);
			o.cycles = (uint64_t)n;
		} else if (strcmp(arg, "--timeout") == 0 && i + 1 < argc) {
			if (parse_duration_ms(argv[++i], &o.timeout_ms) < 0 || o.timeout_ms == 0)
				return bad_usage("--timeout wants a duration such as 10s, not '%s'", argv[i]);
		} else if (arg[0] == '-') {
			return bad_usage("unknown option '%s' for test", arg);
		} else if (!o.plugin) {
			o.plugin = arg;
		} else if (strchr(arg, '=')) {
			keys[o.nkeys++] = argv[i];
		} else {
			return bad_usage("'%s' is not key=value", arg);
		}
	}
	if (!o.plugin) {
		rc = bad_usage("%s", "test needs a PLUGIN.so");
		goto out;
	}
	o.keys = keys;
	if (describe) {
		rc = tester_describe(o.plugin, PROBE_TIMEOUT_MS, stdout) == 0 ? 0 : 1;
		goto out;
	}
	for (size_t i = 0, line = 0; i < njobs; i++)
		if (!jobs[i].data)
			jobs[i].data = lines.v[line++];
	o.jobs = jobs;
	o.njobs = njobs;
	struct test_result r;
	rc = tester_run(&o, &r);
	if (rc == 0)
		tester_print(&o, &r, stdout, json);
	rc = rc == 0 && r.ok ? 0 : 1;
	test_result_free(&r);
out:
	free(keys);
	free(jobs);
	strv_free(&lines);
	return rc;
}

/* ward jobs [QUEUE] [--state STATE] [-n N] [--json] [-c DIR] and
 * ward job ID [--json] | ward job retry|cancel ID: the job database read
 * after a `sync` (the host's last batch committed), or one request. */
static int cmd_jobs(int argc, char **argv, bool one)
{
	const char *dir = getenv("WARD_CONFIG_DIR") ? getenv("WARD_CONFIG_DIR") : DEFAULT_CONFIG_DIR;
	struct jobs_report_opts o = {.limit = 20};
	const char *words[3];
	int nwords = 0;
	long n;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--json") == 0) {
			o.json = true;
		} else if ((strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) && i + 1 < argc) {
			dir = argv[++i];
		} else if (!one && (strcmp(arg, "-n") == 0 || strcmp(arg, "--lines") == 0) && i + 1 < argc) {
			if (parse_long(argv[++i], &n) < 0 || n <= 0)
				return bad_usage("-n wants a positive number of jobs, not '%s'", argv[i]);
			o.limit = n;
		} else if (!one && strcmp(arg, "--state") == 0 && i + 1 < argc) {
			o.state = argv[++i];
			if (job_state_parse(o.state) < 0)
				return bad_usage("--state wants queued, running, done, dead or cancelled, not '%s'", o.state);
		} else if (arg[0] == '-') {
			return bad_usage("unknown option '%s'", arg);
		} else if (nwords < 3) {
			words[nwords++] = arg;
		} else {
			return bad_usage("unexpected argument '%s'", arg);
		}
	}
	bool verb = one && nwords == 2 && (strcmp(words[0], "retry") == 0 || strcmp(words[0], "cancel") == 0);
	const char *id_word = verb ? words[1] : one && nwords == 1 ? words[0] : NULL;
	long id = 0;
	if (one && (!id_word || parse_long(id_word, &id) < 0 || id <= 0))
		return bad_usage("%s", "say `ward job ID`, `ward job retry ID` or `ward job cancel ID`, ID a job's number");
	if (!one && nwords > 1)
		return bad_usage("unexpected argument '%s'", words[1]);
	struct config cfg;
	if (load_for_client(dir, &cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	int rc;
	if (verb) {
		char *request = xasprintf("job-%s %ld", words[0], id);
		enum client_result r = client_request(cfg.state_dir, request, false);
		if (r == CLIENT_NO_HOST)
			fprintf(stderr, "ward: no host is running for %s (nothing listens on %s/ward.sock); start one with `ward run -c %s`\n",
				dir, cfg.state_dir, dir);
		free(request);
		rc = r == CLIENT_OK ? 0 : 1;
	} else {
		client_request(cfg.state_dir, "sync", true); /* quiet: no host running is fine, the file is read */
		o.state_dir = cfg.state_dir;
		o.queue = one ? NULL : nwords ? words[0] : NULL;
		rc = one ? report_job(&o, id) : report_jobs(&o);
	}
	config_free(&cfg);
	return rc;
}

/* The state directory of dir, for ward enqueue. */
static int state_dir_for_enqueue(const char *dir, char **state_dir)
{
	struct config cfg;
	int rc = load_for_client(dir, &cfg);
	if (rc == 0)
		*state_dir = xstrdup(cfg.state_dir);
	config_free(&cfg);
	return rc;
}

/* ward logs [NAME...]: one log as it is; several, or none named (every
 * configured worker), merged in time order. */
static int cmd_logs(int argc, char **argv)
{
	struct args a;
	char *names[argc + 1];
	int nnames, rc = parse_names(argc, argv, &a, names, &nnames);
	if (rc)
		return rc;
	struct config cfg;
	if (load_for_client(a.config_dir, &cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	long lines = a.lines < 0 ? 20 : a.lines;
	if (cfg.log_output == LOG_OUTPUT_STDOUT) /* the files hold at most what was written before */
		fprintf(stderr, "ward: log_output = stdout: worker lines go to the host's stdout, not to %s\n", cfg.log_dir);
	const char **all = xcalloc(cfg.nworkers + 1, sizeof(*all));
	size_t n = (size_t)nnames;
	for (size_t i = 0; i < n; i++)
		all[i] = names[i];
	for (size_t i = 0; nnames == 0 && i < cfg.nworkers; i++)
		all[n++] = cfg.workers[i].name;
	if (nnames == 1)
		rc = logview_show(cfg.log_dir, all[0], lines, a.follow);
	else if (n == 0)
		rc = (fprintf(stderr, "ward: %s configures no worker: no log to show\n", a.config_dir), 1);
	else
		rc = logview_show_merged(cfg.log_dir, all, n, lines, a.follow, nnames ? MERGED_NAMED : MERGED_ALL);
	free(all);
	config_free(&cfg);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return bad_usage("%s", "a command is needed");
	const char *cmd = argv[1];
	struct args a;
	bool named = strcmp(cmd, "status") == 0 || strcmp(cmd, "history") == 0;
	if (asks_for_help(argc - 2, argv + 2) && print_command_help(cmd))
		return 0;
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("ward %s (plugin ABI %d)\n", WARD_VERSION, WARD_ABI_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		if (argc > 2 && print_command_help(argv[2])) /* ward help status */
			return 0;
		fputs(usage, stdout);
		return 0;
	}

	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0 ||
	    strcmp(cmd, "reload") == 0) {
		char *names[argc];
		int nnames, rc = parse_names(argc - 1, argv + 1, &a, names, &nnames);
		if (rc)
			return rc;
		if (strcmp(cmd, "reload") == 0 ? nnames != 0 : nnames == 0)
			return bad_usage(strcmp(cmd, "reload") == 0 ? "%s takes no worker names" : "%s needs at least one worker NAME", cmd);
		return cmd_control(cmd, nnames, names, &a);
	}
	if (strcmp(cmd, "signal") == 0) {
		char *words[argc];
		int nwords, rc = parse_names(argc - 1, argv + 1, &a, words, &nwords);
		if (rc)
			return rc;
		if (nwords < 2)
			return bad_usage("%s", "signal needs a SIGNAL and at least one worker NAME");
		if (signal_parse(words[0]) < 0)
			return bad_usage("unknown signal '%s' (say USR1, SIGUSR1 or a number)", words[0]);
		return cmd_control(cmd, nwords, words, &a);
	}
	if (strcmp(cmd, "test") == 0)
		return cmd_test(argc - 2, argv + 2);
	if (strcmp(cmd, "logs") == 0)
		return cmd_logs(argc - 1, argv + 1);
	if (strcmp(cmd, "enqueue") == 0)
		return cmd_enqueue(argc - 2, argv + 2,
				   getenv("WARD_CONFIG_DIR") ? getenv("WARD_CONFIG_DIR") : DEFAULT_CONFIG_DIR,
				   state_dir_for_enqueue);
	if (strcmp(cmd, "jobs") == 0 || strcmp(cmd, "job") == 0)
		return cmd_jobs(argc - 2, argv + 2, strcmp(cmd, "job") == 0);
	int rc = parse_args(argc - 1, argv + 1, &a, named);
	if (rc)
		return rc;
	if (a.log && strcmp(cmd, "history") != 0)
		return bad_usage("%s", "--log is an option of history only (ward history NAME --log)");
	if (strcmp(cmd, "run") == 0)
		return host_run(a.config_dir);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(&a);
	if (strcmp(cmd, "status") == 0)
		return cmd_report(&a, false);
	if (strcmp(cmd, "history") == 0)
		return cmd_report(&a, true);
	if (strcmp(cmd, "metrics") == 0)
		return cmd_control("metrics", 0, NULL, &a);
	return bad_usage("unknown command '%s'", cmd);
}
