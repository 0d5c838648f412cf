/*
 * control.c - the control socket on the host side: accepting clients,
 * reading one request each under a deadline, running it, and writing the
 * reply without ever blocking the loop. At most MAX_CLIENTS at once; more
 * are told so and closed. Host daemon only, called from its loop.
 */
#define _GNU_SOURCE
#include "daemon/control.h"
#include "daemon/dependency.h"
#include "daemon/history.h"
#include "daemon/jobs.h"
#include "daemon/jobsession.h"
#include "daemon/host.h"
#include "daemon/metrics.h"
#include "daemon/reload.h"
#include "daemon/usage.h"
#include "common/util.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 32
#define MAX_ARGS 256
#define REQUEST_TIMEOUT_NS (5 * NS_PER_SEC)
#define RESUME_AFTER_NS (250 * NS_PER_MS)

/* Who the peer is (SO_PEERCRED). */
enum peer { PEER_NONE, PEER_JOBS /* a member of [ward] job_group: `jobs 1` only */, PEER_CONTROL };

struct client {
	struct watch watch;
	enum peer peer;
	char peer_desc[128]; /* for a refusal: "uid 1001" */
	struct timer deadline;
	struct control *ctl;
	struct client *next;
	char request[CONTROL_MAX_REQUEST];
	size_t len;
	char *reply; /* owned, once the request was run */
	size_t reply_len, sent;
	FILE *pending; /* the reply being written while a reload waits for its plugins */
};

struct control {
	struct watch listen;
	struct timer resume;   /* out of descriptors: accept again after a pause */
	bool starved;          /* reported; recovery is reported once too */
	struct host *host;
	char *path;
	struct client *clients;
	int nclients;
};

static struct control *the_control; /* one host, one control socket */

static void drop_client(struct client *c)
{
	struct control *ctl = c->ctl;
	loop_close(ctl->host->loop, &c->watch);
	timer_cancel(ctl->host->loop, &c->deadline);
	for (struct client **p = &ctl->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	ctl->nclients--;
	if (c->pending)
		fclose(c->pending);
	free(c->reply);
	free(c);
}

/* ---- commands ---- */

static struct worker *find_worker(struct host *h, const char *name)
{
	for (size_t i = 0; i < h->nworkers; i++)
		if (strcmp(h->workers[i]->conf->name, name) == 0)
			return h->workers[i];
	return NULL;
}

/* Resolves every NAME first: an unknown name means nothing is done. */
static int resolve_names(struct host *h, char **names, int n, struct worker **out, FILE *reply)
{
	int unknown = 0;
	if (n == 0) {
		fprintf(reply, "error\nname at least one worker\n");
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (!(out[i] = find_worker(h, names[i])))
			unknown++;
	if (!unknown)
		return 0;
	fprintf(reply, "error\n");
	for (int i = 0; i < n; i++)
		if (!out[i])
			fprintf(reply, "no worker named '%s' (nothing was done)\n", names[i]);
	return -1;
}

/* A worker whose sockets cannot be bound (tried again now) cannot start:
 * then nothing is done and the reply is an error, so the command fails. */
static int check_startable(struct worker **ws, int n, FILE *reply)
{
	char why[512];
	int refused = 0;
	for (int i = 0; i < n; i++)
		if (listener_bind_now(ws[i], why, sizeof(why)) < 0)
			fprintf(reply, "%s%s: cannot start: %s; the host keeps retrying (nothing was done)\n",
				refused++ ? "" : "error\n", ws[i]->conf->name, why);
	return refused ? -1 : 0;
}

enum start_kind { START_ONLY, RESTART };

static void command_start(struct worker **ws, int n, FILE *reply, enum start_kind kind)
{
	bool restart = kind == RESTART;
	if (check_startable(ws, n, reply) < 0)
		return;
	fprintf(reply, "ok\n");
	for (int i = 0; i < n; i++) {
		struct worker *w = ws[i];
		if (restart)
			worker_stop(w);
		w->stopped_on_request = false; /* its jobs run again (jobs.c) */
		dependency_request_start(w, ACTIVATION_COMMAND);
		fprintf(reply, "%s: %s\n", w->conf->name, restart ? "restarting" : "starting");
	}
}

static void command_stop(struct worker **ws, int n, FILE *reply)
{
	fprintf(reply, "ok\n");
	for (int i = 0; i < n; i++) {
		struct worker *w = ws[i];
		w->pending_start = ACTIVATION_NONE;
		w->stopped_on_request = true; /* waiters for its jobs are told at once (jobs.c) */
		worker_stop(w);
		fprintf(reply, "%s: stopping%s\n", w->conf->name,
			w->nlisteners ? "; its sockets stay open: the next connection starts it again" : "");
	}
}

/* Whether one of the worker's instances has a process now. */
static bool has_a_process(const struct worker *w)
{
	for (int i = 0; i < w->ninst; i++)
		if (w->inst[i]->pid > 0 && !w->inst[i]->reaped)
			return true;
	return false;
}

/* signal SIGNAL NAME...: every named worker must have a process, or nothing is sent. */
static void command_signal(struct host *h, char **words, int n, FILE *reply)
{
	struct worker *ws[MAX_ARGS];
	int sig = n >= 2 ? signal_parse(words[1]) : -1;
	if (sig < 0) {
		fprintf(reply, "error\n%s%s%s: say `signal SIGNAL NAME...`, SIGNAL as USR1, SIGUSR1 or a number\n",
			n >= 2 ? "unknown signal '" : "", n >= 2 ? words[1] : "no signal", n >= 2 ? "'" : "");
		return;
	}
	if (resolve_names(h, words + 2, n - 2, ws, reply) < 0)
		return;
	int idle = 0;
	for (int i = 0; i < n - 2; i++)
		if (!has_a_process(ws[i]))
			fprintf(reply, "%s%s: not running (%s): no process to signal; nothing was sent\n", idle++ ? "" : "error\n",
				ws[i]->conf->name, istate_name(worker_state(ws[i])));
	if (idle)
		return;
	char name[32];
	signal_name(sig, name, sizeof(name));
	fprintf(reply, "ok\n");
	for (int i = 0; i < n - 2; i++) {
		int reached = worker_signal(ws[i], sig);
		history_event(h->history, ws[i]->conf->name, -1, "signal", name);
		fprintf(reply, "%s: %s sent to %d instance%s\n", ws[i]->conf->name, name, reached, reached == 1 ? "" : "s");
	}
}

int control_sync(struct host *h, int64_t *since, const char **why)
{
	for (size_t i = 0; i < h->nworkers; i++)
		worker_record_live(h->workers[i]);
	usage_record_all(h); /* read now: status shows them, and nothing reads them on a timer */
	jobs_record(h);      /* queue figures for status; jobs.db committed for `ward jobs` */
	return history_flush(h->history) < 0 && history_stale(h->history, since, why) ? -1 : 0;
}

static void command_sync(struct host *h, FILE *reply)
{
	int64_t since;
	const char *why;
	if (control_sync(h, &since, &why) < 0) {
		char at[32];
		format_iso_ms(since, at, sizeof(at));
		fprintf(reply, "error\nthe history database has not been written since %s: %s; what status and history show may be stale\n",
			at, why);
	} else {
		fprintf(reply, "ok\n");
	}
}

/* job-retry ID, job-cancel ID (`ward job retry|cancel ID`). */
static void command_job(struct host *h, char **words, int n, FILE *reply)
{
	char *end = NULL;
	errno = 0;
	long long id = n == 2 ? strtoll(words[1], &end, 10) : 0;
	if (n != 2 || errno || !end || *end || id <= 0) {
		fprintf(reply, "error\nsay `%s ID`, ID a job's number\n", words[0]);
		return;
	}
	if (strcmp(words[0], "job-retry") == 0)
		jobs_command_retry(h, (int64_t)id, reply);
	else
		jobs_command_cancel(h, (int64_t)id, reply);
}

/* The words of line, or -1 when there are more than max. */
static int split_words(char *line, char **words, int max)
{
	int n = 0;
	for (char *save, *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		words[n++] = tok;
	}
	return n;
}

static void send_reply(struct client *c);

/* The reload's reply is complete: it goes to the client now. */
static void reload_answered(void *arg)
{
	struct client *c = arg;
	fclose(c->pending);
	c->pending = NULL;
	c->ctl->host->order_dirty = true;
	if (loop_watch(c->ctl->host->loop, &c->watch, EPOLLIN) < 0)
		drop_client(c);
	else
		send_reply(c);
}

/* Runs one request; the reply is written into a memory stream (later, for
 * a reload whose plugins are being probed: c->pending). */
static void run_request(struct client *c)
{
	struct host *h = c->ctl->host;
	FILE *reply = open_memstream(&c->reply, &c->reply_len);
	if (!reply) {
		c->reply = xstrdup("error\nout of memory\n");
		c->reply_len = strlen(c->reply);
		return;
	}
	char *words[MAX_ARGS];
	int n = split_words(c->request, words, MAX_ARGS);
	struct worker *ws[MAX_ARGS];
	if (n < 0) {
		fprintf(reply, "error\ntoo many names in one request (at most %d): nothing was done; send them in several requests\n",
			MAX_ARGS - 1);
	} else if (n == 0) {
		fprintf(reply, "error\nempty request\n");
	} else if (strcmp(words[0], "ping") == 0) {
		fprintf(reply, "ok\npong\n");
	} else if (strcmp(words[0], "sync") == 0) {
		command_sync(h, reply);
	} else if (strcmp(words[0], "metrics") == 0) {
		fprintf(reply, "ok\n");
		metrics_write(h, reply);
	} else if (strcmp(words[0], "start") == 0 || strcmp(words[0], "restart") == 0) {
		if (resolve_names(h, words + 1, n - 1, ws, reply) == 0)
			command_start(ws, n - 1, reply, strcmp(words[0], "restart") == 0 ? RESTART : START_ONLY);
	} else if (strcmp(words[0], "stop") == 0) {
		if (resolve_names(h, words + 1, n - 1, ws, reply) == 0)
			command_stop(ws, n - 1, reply);
	} else if (strcmp(words[0], "signal") == 0) {
		command_signal(h, words, n, reply);
	} else if (strcmp(words[0], "job-retry") == 0 || strcmp(words[0], "job-cancel") == 0) {
		command_job(h, words, n, reply);
	} else if (strcmp(words[0], "reload") == 0) {
		if (reload_begin(h, reply, reload_answered, c) > 0) {
			c->pending = reply;
			loop_unwatch(h->loop, &c->watch); /* nothing to read meanwhile */
			return;
		}
	} else {
		fprintf(reply, "error\nunknown request '%.64s' (expected ping, sync, metrics, start, stop, restart, signal, reload, job-retry or job-cancel)\n",
			words[0]);
	}
	fclose(reply);
	h->order_dirty = true;
}

static void send_reply(struct client *c)
{
	while (c->sent < c->reply_len) {
		ssize_t n = send(c->watch.fd, c->reply + c->sent, c->reply_len - c->sent, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) { /* the rest when the client reads */
			if (loop_modify(c->ctl->host->loop, &c->watch, EPOLLOUT) < 0)
				drop_client(c);
			else
				timer_arm(c->ctl->host->loop, &c->deadline, mono_ns() + REQUEST_TIMEOUT_NS);
			return;
		}
		if (n < 0)
			break; /* the client went away: nothing more to do for it */
		c->sent += (size_t)n;
	}
	drop_client(c);
}

static void reject(struct client *c, const char *msg)
{
	free(c->reply);
	c->reply = xasprintf("error\n%s\n", msg);
	c->reply_len = strlen(c->reply);
	send_reply(c);
}

/* `jobs 1`: the connection becomes a job session (jobsession.c), with the
 * bytes that came after the line. */
static void hand_to_job_session(struct client *c, const char *after)
{
	struct host *h = c->ctl->host;
	int fd = c->watch.fd;
	size_t rest = c->len - (size_t)(after - c->request);
	char *copy = rest ? xmalloc(rest) : NULL;
	if (rest)
		memcpy(copy, after, rest);
	enum peer peer = c->peer;
	char why[300];
	snprintf(why, sizeof(why), "not allowed to queue jobs: %s is not the host's user, root%s%s", c->peer_desc,
		 h->cfg.job_group ? " or a member of job_group " : " (and no [ward] job_group is set)",
		 h->cfg.job_group ? h->cfg.job_group : "");
	loop_unwatch(h->loop, &c->watch);
	c->watch.fd = -1; /* the session owns it now */
	drop_client(c);
	if (peer == PEER_NONE)
		jobsession_refuse(fd, why);
	else
		jobsession_start(h, fd, copy, rest);
	free(copy);
}

static void on_client(struct watch *w, uint32_t events)
{
	struct client *c = container_of(w, struct client, watch);
	if (c->reply) { /* replying: the socket became writable again */
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			send_reply(c);
		return;
	}
	ssize_t n = read(w->fd, c->request + c->len, sizeof(c->request) - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* gone before finishing its request */
		drop_client(c);
		return;
	}
	c->len += (size_t)n;
	char *nl = memchr(c->request, '\n', c->len);
	if (!nl) {
		if (c->len == sizeof(c->request))
			reject(c, "request too long (at most 4096 bytes)");
		return;
	}
	*nl = '\0';
	if (memchr(c->request, '\0', (size_t)(nl - c->request))) {
		reject(c, "malformed request");
		return;
	}
	timer_cancel(c->ctl->host->loop, &c->deadline);
	if (strcmp(c->request, JOBS_PROTOCOL_LINE) == 0) {
		hand_to_job_session(c, nl + 1);
		return;
	}
	if (c->peer != PEER_CONTROL) {
		reject(c, "permission denied: only the host's user and root may control it");
		return;
	}
	run_request(c);
	if (!c->pending)
		send_reply(c);
}

static void on_deadline(struct timer *t)
{
	struct client *c = container_of(t, struct client, deadline);
	if (c->reply)
		drop_client(c); /* a client that does not read its reply */
	else
		reject(c, "request not finished within 5 s");
}

/* Whether uid (whose primary group is gid) is a member of group. */
static bool in_group(uid_t uid, gid_t gid, const char *group)
{
	struct group *g = getgrnam(group);
	if (!g)
		return false;
	if (gid == g->gr_gid)
		return true;
	struct passwd *pw = getpwuid(uid);
	if (!pw)
		return false;
	for (char **m = g->gr_mem; *m; m++)
		if (strcmp(*m, pw->pw_name) == 0)
			return true;
	return false;
}

static enum peer peer_of(const struct host *h, int fd, char *desc, size_t size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	snprintf(desc, size, "the peer (unknown uid)");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return PEER_NONE;
	snprintf(desc, size, "uid %u", (unsigned)cred.uid);
	if (cred.uid == 0 || cred.uid == geteuid())
		return PEER_CONTROL;
	if (h->cfg.job_group && in_group(cred.uid, cred.gid, h->cfg.job_group))
		return PEER_JOBS;
	return PEER_NONE;
}

static void resume_accepting(struct timer *t)
{
	struct control *ctl = container_of(t, struct control, resume);
	if (loop_watch(ctl->host->loop, &ctl->listen, EPOLLIN) < 0)
		timer_arm(ctl->host->loop, t, mono_ns() + RESUME_AFTER_NS);
}

static void on_accept(struct watch *w, uint32_t events)
{
	(void)events;
	struct control *ctl = container_of(w, struct control, listen);
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)) {
			/* The client stays queued and the socket stays readable: stop
			 * watching it for a moment instead of spinning on it. */
			if (!ctl->starved)
				host_log(HOST_ERR, "control socket: unable to accept a client: %s; clients wait until descriptors are free again",
					 strerror(errno));
			ctl->starved = true;
			if (loop_unwatch(ctl->host->loop, w) == 0)
				timer_arm(ctl->host->loop, &ctl->resume, mono_ns() + RESUME_AFTER_NS);
			return;
		}
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				host_log(HOST_WARN, "control socket: unable to accept a client: %s", strerror(errno));
			return;
		}
		if (ctl->starved) {
			host_log(HOST_INFO, "control socket: accepting clients again");
			ctl->starved = false;
		}
		struct client *c = xcalloc(1, sizeof(*c));
		c->ctl = ctl;
		c->watch = (struct watch){.fd = fd, .fn = on_client};
		c->deadline.fn = on_deadline;
		c->next = ctl->clients;
		ctl->clients = c;
		ctl->nclients++;
		if (loop_watch(ctl->host->loop, &c->watch, EPOLLIN) < 0) {
			drop_client(c);
			continue;
		}
		timer_arm(ctl->host->loop, &c->deadline, mono_ns() + REQUEST_TIMEOUT_NS);
		c->peer = peer_of(ctl->host, fd, c->peer_desc, sizeof(c->peer_desc));
		/* With a job_group, anyone else is refused once their request says
		 * what they wanted (`jobs 1` is told about job_group). */
		if (c->peer == PEER_NONE && !ctl->host->cfg.job_group)
			reject(c, "permission denied: only the host's user and root may control it");
		else if (ctl->nclients > MAX_CLIENTS)
			reject(c, "too many clients at once; try again");
	}
}

/* [ward] job_group: its members may connect to queue jobs (SPEC §10). */
static void open_to_job_group(const char *path, const char *group)
{
	struct group *g = getgrnam(group);
	if (!g || chown(path, (uid_t)-1, g->gr_gid) < 0 || chmod(path, 0660) < 0)
		host_log(HOST_WARN, "control socket %s: unable to open it to job_group %s: %s; only the host's user and root can queue jobs",
			 path, group, g ? strerror(errno) : "no such group");
}

int control_open(struct host *h)
{
	struct control *ctl = xcalloc(1, sizeof(*ctl));
	ctl->host = h;
	ctl->path = xasprintf("%s/ward.sock", h->cfg.state_dir);
	ctl->listen = (struct watch){.fd = -1, .fn = on_accept};
	ctl->resume.fn = resume_accepting;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(ctl->path) >= sizeof(sa.sun_path)) {
		host_log(HOST_ERR, "control socket path %s is too long: use a shorter state_dir", ctl->path);
		goto fail;
	}
	memcpy(sa.sun_path, ctl->path, strlen(ctl->path) + 1);
	unlink(ctl->path); /* the host holds ward.lock: a socket file here is a dead host's */
	ctl->listen.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* 0600 from the first instant, not after a chmod; 0660 for job_group's
	 * members, once the file is theirs (below) */
	mode_t old = umask(0177);
	int rc = ctl->listen.fd < 0 ? -1 : bind(ctl->listen.fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc == 0 && h->cfg.job_group)
		open_to_job_group(ctl->path, h->cfg.job_group);
	if (rc < 0 || listen(ctl->listen.fd, 64) < 0 || loop_watch(h->loop, &ctl->listen, EPOLLIN) < 0) {
		host_log(HOST_ERR, "unable to open the control socket %s: %s; `ward start/stop/reload` will not reach this host",
			 ctl->path, strerror(errno));
		goto fail;
	}
	the_control = ctl;
	return 0;
fail:
	if (ctl->listen.fd >= 0)
		close(ctl->listen.fd);
	free(ctl->path);
	free(ctl);
	return -1;
}

void control_close(struct host *h)
{
	struct control *ctl = the_control;
	if (!ctl)
		return;
	while (ctl->clients)
		drop_client(ctl->clients);
	jobsession_close_all(h);
	timer_cancel(h->loop, &ctl->resume);
	loop_close(h->loop, &ctl->listen);
	unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	the_control = NULL;
}
