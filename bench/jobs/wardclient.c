/*
 * wardclient.c - ward's producer through libward-client (<ward_client.h>)
 * for the jobs benchmark (bench/jobs/run.sh), next to wardjobs.c, which
 * speaks the protocol itself with many enqueues in flight. The library is
 * blocking, one request at a time: each ward_client_enqueue waits for its
 * job to be durable, so this measures what one simple producer gets.
 *
 *   wardclient enqueue SOCK QUEUE N             N enqueues one after the other
 *   wardclient latency SOCK QUEUE COUNT GAP_MS  enqueue + wait: enqueue called -> .job called
 *
 * One line of key=value pairs on stdout (times in ms).
 */
#define _GNU_SOURCE
#include <ward_client.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static ward_client *open_or_die(const char *sock)
{
	ward_client *c = ward_client_open(sock);
	if (!c) {
		fprintf(stderr, "wardclient: %s\n", ward_client_error(NULL));
		exit(1);
	}
	return c;
}

static int enqueue_many(const char *sock, const char *queue, long n)
{
	ward_client *c = open_or_die(sock);
	int64_t t0 = mono_ns();
	for (long i = 0; i < n; i++)
		if (ward_client_enqueue(c, queue, "x", 1, NULL, 0) < 0) {
			fprintf(stderr, "wardclient: enqueue %ld: %s\n", i, ward_client_error(c));
			return 1;
		}
	double s = (double)(mono_ns() - t0) / 1e9;
	printf("jobs=%ld enqueue_ms=%.1f enqueue_per_s=%.0f\n", n, s * 1e3, (double)n / s);
	ward_client_close(c);
	return 0;
}

static int latency(const char *sock, const char *queue, long count, long gap_ms)
{
	ward_client *c = open_or_die(sock);
	int64_t *lat = malloc((size_t)count * sizeof(*lat));
	if (!lat)
		return 1;
	for (long i = 0; i < count; i++) {
		struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
		nanosleep(&gap, NULL);
		int64_t t0 = mono_ns();
		int64_t id = ward_client_enqueue(c, queue, "x", 1, NULL, 0);
		void *result = NULL;
		size_t len = 0;
		if (id < 0 || ward_client_wait(c, id, 10000, &result, &len) != 0) {
			fprintf(stderr, "wardclient: job %ld: %s\n", i, ward_client_error(c));
			return 1;
		}
		char text[32] = "";
		memcpy(text, result, len < sizeof(text) - 1 ? len : sizeof(text) - 1);
		free(result);
		lat[i] = strtoll(text, NULL, 10) - t0;
	}
	qsort(lat, (size_t)count, sizeof(*lat), cmp_i64);
	printf("samples=%ld median_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", count, (double)lat[count / 2] / 1e6,
	       (double)lat[(long)(0.99 * (double)(count - 1) + 0.5)] / 1e6, (double)lat[count - 1] / 1e6);
	ward_client_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "enqueue") == 0 && atol(argv[4]) > 0)
		return enqueue_many(argv[2], argv[3], atol(argv[4]));
	if (argc == 6 && strcmp(argv[1], "latency") == 0 && atol(argv[4]) > 0 && atol(argv[5]) >= 0)
		return latency(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	fprintf(stderr, "usage: wardclient enqueue SOCK QUEUE N\n"
			"       wardclient latency SOCK QUEUE COUNT GAP_MS\n");
	return 2;
}
