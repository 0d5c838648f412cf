/*
 * wordcount - a job worker: each job's payload names a file, and the job's
 * result is what `wc` would print for it: "LINES WORDS BYTES". It has .job
 * and no .cycle, so it does nothing until ward hands it a job; conf.d runs it
 * on demand (autostart = no: the first job queued for it starts it).
 *
 *     ward enqueue wordcount /etc/services --wait
 *
 * Counting a file twice gives the same answer, so a job that runs again
 * (jobs are delivered at least once: see docs/plugin-guide.md, "Jobs") does
 * no harm. A job that fails (a missing file) is retried by ward as the
 * worker's job_attempts and job_retry_delay say, then marked dead.
 */
#include <ward.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct counts {
	unsigned long long lines, words, bytes;
	int in_word;
};

static void count_block(struct counts *c, const unsigned char *p, size_t n)
{
	c->bytes += n;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n')
			c->lines++;
		if (isspace(p[i])) {
			c->in_word = 0;
		} else if (!c->in_word) {
			c->in_word = 1;
			c->words++;
		}
	}
}

static int wordcount_job(ward_ctx *ctx, void *state, ward_job *job)
{
	(void)state;
	size_t len;
	const char *payload = ward_job_payload(job, &len);
	char path[PATH_MAX];
	if (len == 0 || len >= sizeof(path) || memchr(payload, '\0', len)) {
		ward_log(ctx, WARD_LOG_ERROR, "job %lld: the payload must be a file's path (got %zu bytes)",
			 (long long)ward_job_id(job), len);
		return WARD_ERROR;
	}
	memcpy(path, payload, len);
	path[len] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ward_log(ctx, WARD_LOG_ERROR, "unable to open %s: %s", path, strerror(errno));
		return WARD_ERROR;
	}
	struct counts c = {0};
	unsigned char buf[64 * 1024];
	ssize_t n;
	unsigned blocks = 0;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ward_log(ctx, WARD_LOG_ERROR, "unable to read %s: %s", path, strerror(errno));
			close(fd);
			return WARD_ERROR;
		}
		count_block(&c, buf, (size_t)n);
		if (++blocks % 16 == 0)
			ward_heartbeat(ctx); /* a big file: still making progress, not hung */
	}
	close(fd);
	char result[96];
	int rlen = snprintf(result, sizeof(result), "%llu %llu %llu", c.lines, c.words, c.bytes);
	ward_log(ctx, WARD_LOG_INFO, "%s: %s (attempt %d)", path, result, ward_job_attempt(job));
	ward_count(ctx, "files_counted_total", 1);
	return ward_job_result(ctx, job, result, (size_t)rlen) == 0 ? WARD_OK : WARD_ERROR;
}

WARD_PLUGIN(.name = "wordcount", .version = "1.0.0",
	    .description = "counts the lines, words and bytes of the file each job names",
	    .job = wordcount_job);
