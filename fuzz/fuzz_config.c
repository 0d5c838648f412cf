/*
 * fuzz_config.c - libFuzzer target for the configuration layer: the input
 * becomes the *.ini files of a configuration directory (a form feed, \f,
 * starts the next file: 00.ini, 10.ini, 20.ini, 30.ini, so merging across
 * files is fuzzed too), which config_load reads, exactly as `ward check -c
 * DIR` would. The directory also has a plugins/ directory with a few empty
 * *.so files, so autoload and plugin lookups find something.
 *
 * Properties checked beyond "no crash, no leak, no sanitizer report":
 *   - config_load returns -1 exactly when it reports errors;
 *   - every error and warning is one line;
 *   - loading the same directory twice gives equal workers (no hidden state).
 */
#define _GNU_SOURCE
#include "config/config.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 4

static char root[256];
static char conf[512];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void cleanup(void)
{
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void touch(const char *dir, const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Under $TMPDIR: fuzz/run points it into build-fuzz/, so a run that
	 * crashed (and skipped the atexit clean-up) leaves nothing in /tmp. */
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/ward-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(root))
		abort();
	atexit(cleanup);
	snprintf(conf, sizeof(conf), "%s/conf", root);
	char plugins[600];
	snprintf(plugins, sizeof(plugins), "%s/plugins", conf);
	if (mkdir(conf, 0755) < 0 || mkdir(plugins, 0755) < 0)
		abort();
	static const char *const stems[] = {"ticker.so", "flaky.so", "w.so", "a.so", "b.so"};
	for (size_t i = 0; i < sizeof(stems) / sizeof(*stems); i++)
		touch(plugins, stems[i]);
	return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", conf, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n <= 0)
			abort();
		data += n;
		len -= (size_t)n;
	}
	close(fd);
}

static void check_lines(const struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		if (strchr(sv->v[i], '\n')) {
			fprintf(stderr, "fuzz_config: a message spans lines: %s\n", sv->v[i]);
			abort();
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[MAX_FILES] = {"00.ini", "10.ini", "20.ini", "30.ini"};
	for (int i = 0; i < MAX_FILES; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", conf, names[i]);
		unlink(path);
	}
	int files = 0;
	size_t start = 0;
	for (size_t i = 0; i <= size && files < MAX_FILES; i++) {
		if (i == size || (data[i] == '\f' && files < MAX_FILES - 1)) {
			write_file(names[files++], data + start, i - start);
			start = i + 1;
		}
	}

	struct config a, b;
	int ra = config_load(conf, &a);
	int rb = config_load(conf, &b);
	if ((ra < 0) != (a.errors.n > 0) || ra != rb || a.nworkers != b.nworkers) {
		fprintf(stderr, "fuzz_config: inconsistent results (%d/%zu errors, then %d; %zu vs %zu workers)\n", ra,
			a.errors.n, rb, a.nworkers, b.nworkers);
		abort();
	}
	check_lines(&a.errors);
	check_lines(&a.warnings);
	for (size_t i = 0; i < a.nworkers; i++) {
		const struct worker_conf *w = config_find_worker(&b, a.workers[i].name);
		if (!w || !config_worker_equal(&a.workers[i], w)) {
			fprintf(stderr, "fuzz_config: worker %s differs between two loads\n", a.workers[i].name);
			abort();
		}
	}
	config_free(&a);
	config_free(&b);
	return 0;
}
