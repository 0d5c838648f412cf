/*
 * http.c - the HTTP endpoint (http.h): libmicrohttpd in its "external" epoll
 * mode, without a thread of its own. MHD's epoll descriptor is one watch
 * of the host's loop; MHD_run() runs when it is readable, and MHD's next
 * deadline (a connection's idle timeout, or 0 when it has work left over
 * from an edge-triggered read) is one timer of the loop. An idle endpoint
 * with no connection has no deadline at all, so it never wakes the host.
 *
 * Every request is answered in the loop turn that completes it, from what
 * the host already has in memory or in ward.db: nothing here waits on a
 * worker, starts or stops one, or changes anything. The bounds of
 * http_limits keep a slow or hostile client from holding the loop or the
 * host's descriptors. Runs in the host process.
 */
#define _GNU_SOURCE
#include "daemon/http.h"
#include "common/address.h"
#include "common/loop.h"
#include "common/util.h"
#include "daemon/control.h"
#include "daemon/host.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/status_json.h"
#include "daemon/usage.h"
#include "daemon/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The bounds of docs/operator-guide.md's "HTTP endpoint": a client gets
 * HTTP_IDLE_TIMEOUT_S of silence before it is dropped (a slowloris client
 * included); headers and request line share HTTP_MEMORY bytes (more: 431);
 * HTTP_CONNECTIONS descriptors at most, HTTP_CONNECTIONS_PER_IP of them
 * for one address, so one client cannot lock the probes out. */
#define HTTP_IDLE_TIMEOUT_S 5u
#define HTTP_MEMORY (16 * 1024)
#define HTTP_CONNECTIONS 64u
#define HTTP_CONNECTIONS_PER_IP 32u
#define HTTP_BACKLOG 64
#define HTTP_DB_BUSY_MS 50 /* a read of ward.db waits at most this for a lock */

struct http {
	struct host *host;
	struct MHD_Daemon *mhd;
	struct watch watch; /* MHD's epoll descriptor */
	struct timer timer; /* MHD's next deadline */
	bool reread_usage;  /* a scrape served readings older than a second: read them once it is out */
	bool answer_out;    /* a request completed in this MHD_run() */
	struct timer reread; /* the next slice of that reading (due at once: the next loop turn) */
	size_t reread_from;  /* the first worker of the next slice */
};

/* Workers read in one loop turn after a scrape: about 2.5 ms of file
 * reads here with one instance each (a worker's instances are read
 * together), so a probe or a command waits no longer than that. */
#define REREAD_SLICE 64

/* What one path answers: a status and a body written to out. */
struct reply {
	unsigned status;
	const char *type;
};
typedef void (*route_fn)(struct host *h, FILE *out, struct reply *r);

/* ---- the paths ---- */

static void serve_healthz(struct host *h, FILE *out, struct reply *r)
{
	(void)h;
	fputs("ok\n", out); /* answered at all: the loop runs */
	r->status = MHD_HTTP_OK;
}

/* A worker that is not all `running` but serves as it should: the extra
 * instances of a scale-down still stopping, or the one instance a rolling
 * reload is replacing (it keeps all the others running by design). A
 * readiness probe must not take the pod out for the reload meant to keep it
 * serving. */
static bool serving(const struct worker *w)
{
	int running = w->in_state[IS_RUNNING];
	if (w->in_state[IS_FAILED] || w->in_state[IS_BACKOFF] || running == 0)
		return false;
	return running >= w->conf->instances - (w->rolling ? 1 : 0);
}

/* The first worker with an instance still starting, or NULL. */
static const struct worker *first_starting(const struct host *h)
{
	for (size_t i = 0; i < h->nworkers; i++)
		for (int k = 0; k < h->workers[i]->ninst; k++)
			if (h->workers[i]->inst[k]->state == IS_STARTING)
				return h->workers[i];
	return NULL;
}

/* Why the host is not ready, into out; false when it is. */
static bool not_ready(const struct host *h, FILE *out)
{
	if (h->shutting_down) {
		fputs("not ready: the host is stopping\n", out);
		return true;
	}
	if (!h->boot_over) {
		const struct worker *w = first_starting(h);
		if (w)
			fprintf(out, "not ready: booting: worker %s is starting\n", w->conf->name);
		else
			fputs(h->nworkers ? "not ready: booting\n" : "not ready: booting: the plugins are being checked\n", out);
		return true;
	}
	for (size_t i = 0; i < h->nworkers; i++) {
		const struct worker *w = h->workers[i];
		enum istate s = worker_state(w);
		if (w->conf->critical && s != IS_RUNNING && !serving(w)) {
			fprintf(out, "not ready: critical worker %s is %s\n", w->conf->name, istate_name(s));
			return true;
		}
	}
	return false;
}

static void serve_readyz(struct host *h, FILE *out, struct reply *r)
{
	if (not_ready(h, out)) {
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return;
	}
	fputs("ready\n", out);
	r->status = MHD_HTTP_OK;
}

/* The JSON of `ward status --json`: ward.db brought up to date as `ward
 * status` has it done (control_sync), then read by the same code. */
static void serve_status(struct host *h, FILE *out, struct reply *r)
{
	int64_t since;
	const char *why;
	control_sync(h, &since, &why); /* stale or not, what ward.db has is the answer, as for `ward status` */
	char *path = xasprintf("%s/ward.db", h->cfg.state_dir);
	sqlite3 *db = NULL;
	r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
	r->type = "text/plain; charset=utf-8";
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(out, "unable to open %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
	} else {
		sqlite3_busy_timeout(db, HTTP_DB_BUSY_MS);
		long start = ftell(out);
		if (status_json_write(db, NULL, out) >= 0) {
			r->status = MHD_HTTP_OK;
			r->type = "application/json";
		} else {
			fseek(out, start, SEEK_SET);
			fprintf(out, "unable to read %s: %s\n", path, sqlite3_errmsg(db));
		}
	}
	sqlite3_close(db);
	free(path);
}

static void serve_metrics(struct host *h, FILE *out, struct reply *r)
{
	if (metrics_write_for_scrape(h, out))
		h->http->reread_usage = true;
	r->status = MHD_HTTP_OK;
	r->type = METRICS_CONTENT_TYPE;
}

static const struct route {
	const char *path;
	route_fn fn;
} routes[] = {
	{"/metrics", serve_metrics},
	{"/healthz", serve_healthz},
	{"/readyz", serve_readyz},
	{"/status", serve_status},
};

/* ---- requests ---- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *body, size_t len,
				 const char *type, const char *allow)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO; /* out of memory: MHD closes the connection */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result rc = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result send_static(struct MHD_Connection *c, unsigned status, const char *text, const char *allow)
{
	return send_text(c, status, xstrdup(text), strlen(text), "text/plain; charset=utf-8", allow);
}

static const struct route *find_route(const char *url)
{
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (strcmp(routes[i].path, url) == 0)
			return &routes[i];
	return NULL;
}

/* MHD's access handler: every request is answered at its first call, when
 * its headers are in (a body, if any, is never read). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
	struct http *http = cls;
	const struct route *route = find_route(url);
	if (!route)
		return send_static(c, MHD_HTTP_NOT_FOUND, "not found: the paths are /metrics, /healthz, /readyz and /status\n",
				   NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: the endpoint is read-only (GET, HEAD)\n",
				   "GET, HEAD");
	char *body = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&body, &len);
	if (!out)
		return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	struct reply r = {.status = MHD_HTTP_OK, .type = "text/plain; charset=utf-8"};
	route->fn(http->host, out, &r);
	if (fclose(out) != 0) {
		free(body);
		return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	}
	return send_text(c, r.status, body, len, r.type, NULL);
}

/* MHD's completion callback: the answer is out (or the client gone). */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)c, (void)con_cls, (void)toe;
	struct http *http = cls;
	http->answer_out = true;
}

static void reread_slice(struct timer *t)
{
	struct http *http = container_of(t, struct http, reread);
	if (!usage_sample_slice(http->host, &http->reread_from, REREAD_SLICE))
		timer_arm(http->host->loop, t, mono_ns()); /* the rest after the loop's other work */
}

/* The readings a scrape served are taken again once its answer is out and
 * its connection closed (MHD closes them at the end of MHD_run(): a client
 * reading to the end waits for the close), for the next scrape: the files
 * cost the host the same loop time, but no scrape waits for them, and in
 * slices nothing else waits long either. */
static void reread_after_scrape(struct http *http)
{
	if (!http->answer_out || !http->reread_usage)
		return;
	http->answer_out = false;
	http->reread_usage = false;
	if (timer_armed(&http->reread))
		return; /* under way: it goes on from where it is */
	http->reread_from = 0;
	timer_arm(http->host->loop, &http->reread, mono_ns());
}

/* ---- the loop's side ---- */

/* MHD's next deadline becomes the timer's; none, no timer. */
static void rearm(struct http *http)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (MHD_get_timeout(http->mhd, &ms) == MHD_YES)
		timer_arm(http->host->loop, &http->timer, mono_ns() + (int64_t)ms * NS_PER_MS);
	else
		timer_cancel(http->host->loop, &http->timer);
}

static void run_mhd(struct http *http)
{
	http->answer_out = false;
	if (MHD_run(http->mhd) != MHD_YES)
		host_log(HOST_WARN, "http %s: libmicrohttpd failed to serve its connections", http->host->cfg.http);
	reread_after_scrape(http);
	rearm(http);
}

static void on_ready(struct watch *w, uint32_t events)
{
	(void)events;
	run_mhd(container_of(w, struct http, watch));
}

static void on_deadline(struct timer *t)
{
	run_mhd(container_of(t, struct http, timer));
}

/* A non-blocking listening socket on address, or -1 (errno set). */
static int listen_on(const char *address)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (address_parse(address, &ss, &len)) { /* checked by config_load: not reached */
		errno = EINVAL;
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* MHD on the listening socket fd (which it then owns), in external epoll mode. */
static struct MHD_Daemon *start_mhd(struct http *http, int fd)
{
	return MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_request, http,
				MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_TIMEOUT, HTTP_IDLE_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
				MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTIONS,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_CONNECTIONS_PER_IP,
				MHD_OPTION_STRICT_FOR_CLIENT, 1, /* HTTP/1.1 without Host:, bad header lines: 400 */
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
				MHD_OPTION_END);
}

int http_open(struct host *h)
{
	if (!h->cfg.http)
		return 0;
	int fd = listen_on(h->cfg.http);
	if (fd < 0) {
		host_log(HOST_ERR, "http: unable to listen on %s: %s; the host does not start (free the address, or set [ward] http to another)",
			 h->cfg.http, strerror(errno));
		return -1;
	}
	struct http *http = xcalloc(1, sizeof(*http));
	http->host = h;
	http->timer.fn = on_deadline;
	http->reread.fn = reread_slice;
	http->mhd = start_mhd(http, fd);
	const union MHD_DaemonInfo *info = http->mhd ? MHD_get_daemon_info(http->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	http->watch = (struct watch){.fd = info ? info->epoll_fd : -1, .fn = on_ready};
	h->http = http;
	if (!http->mhd)
		close(fd);
	if (!info || loop_watch(h->loop, &http->watch, EPOLLIN) < 0) {
		host_log(HOST_ERR, "http: unable to serve %s: %s; the host does not start", h->cfg.http, strerror(errno));
		http_close(h);
		return -1;
	}
	host_log(HOST_INFO, "http: serving /metrics, /healthz, /readyz and /status on %s", h->cfg.http);
	return 0;
}

void http_close(struct host *h)
{
	struct http *http = h->http;
	if (!http)
		return;
	if (http->watch.fd >= 0)
		loop_unwatch(h->loop, &http->watch); /* MHD closes its own descriptor */
	timer_cancel(h->loop, &http->timer);
	timer_cancel(h->loop, &http->reread);
	if (http->mhd)
		MHD_stop_daemon(http->mhd);
	free(http);
	h->http = NULL;
}
