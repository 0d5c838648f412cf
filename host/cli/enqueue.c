/*
 * enqueue.c - `ward enqueue QUEUE [PAYLOAD|-] [--key KEY] [--delay DUR]
 * [--wait [DUR]] [--json]`: queues one job through libward-client
 * (<ward_client.h>, the same library producers link), and with --wait
 * prints its result. CLI process only.
 */
#define _GNU_SOURCE
#include "cli/enqueue.h"
#include "common/json.h"
#include "common/units.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ward_client.h>

struct enqueue_args {
	const char *queue, *payload, *key;
	uint64_t delay_ms, wait_ms;
	bool wait, json;
};

static int enqueue_usage(const char *fmt, const char *what)
{
	fprintf(stderr, "ward: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\nusage: ward enqueue QUEUE [PAYLOAD|-] [--key KEY] [--delay DUR] [--wait [DUR]] [--json] [-c DIR]"
			"\n(`ward enqueue --help` says more)\n");
	return 2;
}

/* 0, or 2 for bad usage (said). */
static int parse_enqueue_args(int argc, char **argv, struct enqueue_args *a, const char **dir)
{
	int words = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--json") == 0) {
			a->json = true;
		} else if ((strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) && i + 1 < argc) {
			*dir = argv[++i];
		} else if (strcmp(arg, "--key") == 0 && i + 1 < argc) {
			a->key = argv[++i];
		} else if (strcmp(arg, "--delay") == 0 && i + 1 < argc) {
			if (parse_duration_ms(argv[++i], &a->delay_ms) < 0)
				return enqueue_usage("--delay wants a duration such as 500ms, 30s or 2h, not '%s'", argv[i]);
		} else if (strncmp(arg, "--wait=", 7) == 0) {
			a->wait = true;
			if (parse_duration_ms(arg + 7, &a->wait_ms) < 0)
				return enqueue_usage("--wait wants a duration such as 500ms, 30s or 2h, not '%s'", arg + 7);
		} else if (strcmp(arg, "--wait") == 0) {
			a->wait = true;
			a->wait_ms = UINT64_MAX; /* no limit */
			if (i + 1 < argc && parse_duration_ms(argv[i + 1], &a->wait_ms) == 0) /* --wait DUR */
				i++;
		} else if (arg[0] == '-' && arg[1]) {
			return enqueue_usage("unknown option '%s'", arg);
		} else if (words == 0) {
			a->queue = arg;
			words++;
		} else if (words == 1) {
			a->payload = arg;
			words++;
		} else {
			return enqueue_usage("unexpected argument '%s' (a payload with spaces needs quotes)", arg);
		}
	}
	if (!a->queue)
		return enqueue_usage("%s", "enqueue needs a QUEUE (the queue of a worker whose plugin takes jobs)");
	return 0;
}

/* Whether s is 1 to 255 printable ASCII characters without spaces: what
 * the protocol takes for a queue or a key. */
static bool protocol_name(const char *s)
{
	size_t n = strlen(s);
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return n >= 1 && n <= 255;
}

/* Standard input into *buf, up to one byte past the limit so that an
 * oversized payload is told apart from one of exactly 1 MiB. */
static int read_stdin_payload(char **buf, size_t *len)
{
	size_t cap = WARD_CLIENT_DATA_MAX + 1, n = 0;
	char *b = xmalloc(cap);
	while (n < cap) {
		ssize_t r = read(STDIN_FILENO, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "ward: cannot read the payload from standard input: %s\n", strerror(errno));
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = b;
	*len = n;
	return 0;
}

static void print_id(const struct enqueue_args *a, int64_t id, FILE *f)
{
	if (a->json)
		fprintf(f, "{\"id\": %" PRId64 "}\n", id);
	else
		fprintf(f, "%" PRId64 "\n", id);
}

/* --wait: the outcome of job id. Text: the result's bytes on stdout, as
 * they are; the job's error on stderr. --json: one object. */
static int wait_for(ward_client *c, const struct enqueue_args *a, int64_t id)
{
	void *result = NULL;
	size_t len = 0;
	int rc = ward_client_wait(c, id, a->wait_ms, &result, &len);
	const char *state = rc == 0 ? "done" : rc == 1 ? "failed" : rc == 4 ? "unfinished" : NULL;
	if (rc < 0) {
		fprintf(stderr, "ward: waiting for job %" PRId64 ": %s\n", id, ward_client_error(c));
		return 1;
	}
	if (a->json) {
		printf("{\"id\": %" PRId64 ", \"state\": \"%s\", \"result\": ", id, state);
		if (rc == 0) {
			char *esc = xmalloc(JSON_ESCAPED_MAX(len) + 1);
			size_t n = json_escape(esc, result ? result : "", len);
			printf("\"%.*s\"", (int)n, esc);
			free(esc);
		} else {
			fputs("null", stdout);
		}
		fputs(", \"error\": ", stdout);
		json_string(stdout, rc == 0 ? NULL : ward_client_error(c));
		fputs("}\n", stdout);
	} else if (rc == 0) {
		if (len && fwrite(result, 1, len, stdout) != len)
			rc = -1;
	} else if (rc == 1) {
		fprintf(stderr, "ward: %s\n", ward_client_error(c));
	} else {
		char took[32];
		format_duration_ms(a->wait_ms, took, sizeof(took));
		fprintf(stderr, "ward: job %" PRId64 " is not finished after %s; `ward job %" PRId64 "` shows it\n", id,
			took, id);
	}
	free(result);
	if (fflush(stdout) != 0 || rc < 0) {
		fprintf(stderr, "ward: cannot write the result: %s\n", strerror(errno));
		return 1;
	}
	return rc == 0 ? 0 : rc == 1 ? 1 : 4;
}

int cmd_enqueue(int argc, char **argv, const char *config_dir, enqueue_state_dir_fn state_dir_of)
{
	struct enqueue_args a = {0};
	const char *dir = config_dir;
	int rc = parse_enqueue_args(argc, argv, &a, &dir);
	if (rc)
		return rc;
	if (!protocol_name(a.queue))
		return enqueue_usage("bad queue name '%s': 1 to 255 printable ASCII characters without spaces", a.queue);
	if (a.key && (!protocol_name(a.key) || strcmp(a.key, "-") == 0))
		return enqueue_usage("bad --key '%s': 1 to 255 printable ASCII characters without spaces, not '-'", a.key);
	char *input = NULL;
	size_t len;
	if (!a.payload || strcmp(a.payload, "-") == 0) {
		if (read_stdin_payload(&input, &len) < 0)
			return 1;
	} else {
		len = strlen(a.payload);
	}
	if (len > WARD_CLIENT_DATA_MAX) {
		fprintf(stderr, "ward: the payload is over the 1 MiB limit (%d bytes): a job's payload and result are at most that\n",
			WARD_CLIENT_DATA_MAX);
		free(input);
		return 1;
	}
	char *state_dir = NULL;
	if (state_dir_of(dir, &state_dir) < 0) {
		free(input);
		return 1;
	}
	char *sock = xasprintf("%s/ward.sock", state_dir);
	ward_client *c = ward_client_open(sock);
	if (!c) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			fprintf(stderr, "ward: no host is running for %s (nothing listens on %s); start one with `ward run -c %s`\n",
				dir, sock, dir);
		else
			fprintf(stderr, "ward: %s\n", ward_client_error(NULL));
		rc = 1;
		goto out;
	}
	int64_t id = ward_client_enqueue(c, a.queue, input ? input : a.payload, len, a.key, a.delay_ms);
	if (id < 0) {
		fprintf(stderr, "ward: %s\n", ward_client_error(c));
		rc = 1;
		goto out;
	}
	if (*ward_client_error(c)) /* stored, but the host says why it will not run soon */
		fprintf(stderr, "ward: job %" PRId64 " is queued, but %s\n", id, ward_client_error(c));
	if (!a.wait) {
		print_id(&a, id, stdout);
		rc = fflush(stdout) == 0 ? 0 : 1;
	} else {
		if (!a.json) /* stdout is the result's alone */
			fprintf(stderr, "ward: job %" PRId64 " queued, waiting for it\n", id);
		rc = wait_for(c, &a, id);
	}
out:
	ward_client_close(c);
	free(sock);
	free(state_dir);
	free(input);
	return rc;
}
