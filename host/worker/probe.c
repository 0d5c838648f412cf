/*
 * probe.c - the probe process's side of a probe (see daemon/probe.h for the
 * host's): runs after fork, once worker/child.c prepared the process like
 * the first worker of the plugin; loads the plugin and sends the verdict
 * and the declared options back on a pipe. The only probe code that ever
 * maps plugin code.
 */
#define _GNU_SOURCE
#include "worker/probe.h"
#include "worker/loader.h"
#include "common/optwire.h"
#include "common/util.h"

#include <stdio.h>
#include <unistd.h>

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

void probe_send_failure(int fd, const char *message)
{
	struct probe_result r = {.why.reason = REASON_LOAD_FAILED};
	copy_str(r.why.message, sizeof(r.why.message), message);
	if (write_all(fd, &r, sizeof(r)) < 0)
		_exit(1);
}

noreturn void probe_report(int fd, const char *plugin)
{
	struct probe_result r = {0};
	struct ward_plugin p;
	FILE *out = fdopen(fd, "w");
	if (!out)
		_exit(1);
	if (loader_open(plugin, &p, &r.why) == 0) {
		r.ok = true;
		copy_str(r.name, sizeof(r.name), p.name);
		copy_str(r.version, sizeof(r.version), p.version);
		copy_str(r.description, sizeof(r.description), p.description);
		r.has_job = p.job != NULL;
		r.has_cycle = p.cycle != NULL;
	}
	fwrite(&r, sizeof(r), 1, out);
	if (r.ok)
		options_write(p.options, out);
	_exit(fclose(out) == 0 ? 0 : 1);
}
