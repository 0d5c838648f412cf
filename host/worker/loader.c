/*
 * loader.c - dlopen plus the ABI checks of docs/plugin-guide.md ("ABI
 * rules"), run where loader.h says (never in the host daemon), in the order PostgreSQL's
 * PG_MODULE_MAGIC taught: read abi_version and struct_size first, and touch
 * nothing else of a descriptor built for another ABI.
 */
#define _GNU_SOURCE
#include "worker/loader.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The smallest descriptor ABI 1 accepts: everything up to and including shutdown. */
#define MIN_STRUCT_SIZE (offsetof(struct ward_plugin, shutdown) + sizeof(void (*)(void)))

static int refuse(struct exit_info *why, enum reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct exit_info *why, enum reason reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	why->reason = reason;
	vsnprintf(why->message, sizeof(why->message), fmt, ap);
	va_end(ap);
	return -1;
}

int loader_open(const char *path, struct ward_plugin *plugin, struct exit_info *why)
{
	memset(plugin, 0, sizeof(*plugin));
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return refuse(why, REASON_LOAD_FAILED, "unable to load plugin: %s", dlerror());
	const struct ward_plugin *desc = dlsym(handle, "ward_plugin");
	if (!desc)
		return refuse(why, REASON_LOAD_FAILED,
			      "%s exports no 'ward_plugin' descriptor: is it a ward plugin? (define one with WARD_PLUGIN)",
			      path);
	uint32_t abi = desc->abi_version, size = desc->struct_size;
	if (abi != WARD_ABI_VERSION)
		return refuse(why, REASON_ABI_MISMATCH,
			      "plugin built for ward ABI %u, this ward runs ABI %d: rebuild it against this ward's <ward.h>",
			      abi, WARD_ABI_VERSION);
	if (size > sizeof(struct ward_plugin))
		return refuse(why, REASON_ABI_MISMATCH,
			      "plugin built with a newer <ward.h> (descriptor of %u bytes, this ward knows %zu): rebuild it against this ward's header, or upgrade ward",
			      size, sizeof(struct ward_plugin));
	if (size < MIN_STRUCT_SIZE)
		return refuse(why, REASON_ABI_MISMATCH,
			      "plugin descriptor is %u bytes, smaller than any ABI %d descriptor (%zu): it was not made with WARD_PLUGIN",
			      size, WARD_ABI_VERSION, (size_t)MIN_STRUCT_SIZE);
	memcpy(plugin, desc, size);
	if (!plugin->cycle && !plugin->job)
		return refuse(why, REASON_LOAD_FAILED,
			      "plugin '%s' has neither a cycle nor a job function: set .cycle (work it finds itself) "
			      "or .job (work queued for it), or both, in WARD_PLUGIN",
			      plugin->name ? plugin->name : "?");
	/* The handle stays open for the life of the process, by design. */
	return 0;
}
