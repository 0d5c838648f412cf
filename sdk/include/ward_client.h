/*
 * ward_client.h - queue jobs on a running ward host from a C program, and
 * wait for their results. Library libward-client (pkg-config ward-client):
 *
 *     cc prog.c $(pkg-config --cflags --libs ward-client)
 *
 * It links nothing but libc. It speaks the job protocol of docs/jobs.md
 * over one connection to the host's control socket, <state_dir>/ward.sock,
 * with blocking I/O: every call returns when the host has answered.
 *
 *     ward_client *c = ward_client_open("/etc/ward/conf.d");
 *     if (!c) { fprintf(stderr, "%s\n", ward_client_error(NULL)); exit(1); }
 *     int64_t id = ward_client_enqueue(c, "thumbs", "cat.jpg", 7, NULL, 0);
 *     if (id < 0) { fprintf(stderr, "%s\n", ward_client_error(c)); ... }
 *     void *result; size_t len;
 *     switch (ward_client_wait(c, id, 30000, &result, &len)) {
 *     case 0: fwrite(result, 1, len, stdout); free(result); break;  // done
 *     case 1: fprintf(stderr, "job failed: %s\n", ward_client_error(c)); break;
 *     case 4: fprintf(stderr, "not finished after 30 s\n"); break;
 *     default: fprintf(stderr, "%s\n", ward_client_error(c)); break; // -1
 *     }
 *     ward_client_close(c);
 *
 * Threads: a ward_client is one connection and must be used by one thread at
 * a time; give each thread its own (they are cheap). Different clients may
 * be used at the same time from different threads. The library never
 * raises SIGPIPE, and retries calls interrupted by a signal (EINTR).
 *
 * Limits: payloads and results are bytes, at most 1 MiB (1048576) each.
 * Queue names and keys are 1 to 255 printable ASCII characters without
 * spaces. Both are checked before anything is sent.
 */
#ifndef WARD_CLIENT_H
#define WARD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The most bytes a payload or a result may have. */
#define WARD_CLIENT_DATA_MAX 1048576

/* One connection to a host (opaque). */
typedef struct ward_client ward_client;

/*
 * Connects to the host. `where` is either a configuration directory (the
 * one given to `ward run -c DIR`: its *.ini files are read in name order for
 * `[ward] state_dir`, the last one wins; the default is `state`, and a
 * relative state_dir is taken from DIR), or the path of the control socket
 * itself. Returns NULL with errno set on failure (ENOENT or ECONNREFUSED: no
 * host is running; EACCES: not allowed to queue jobs; EPROTO: the host does
 * not speak the job protocol); ward_client_error(NULL) then says why, in
 * words ("no host is running at PATH (connect: ...)").
 */
ward_client *ward_client_open(const char *where); /* a config dir or the control socket path; NULL + errno on failure */

/*
 * Queues a job of `len` bytes of `payload` on `queue`, to run no sooner than
 * `delay_ms` from now. With a `key`, a queued or running job of the same
 * queue and key is not queued twice: its id is returned instead. Returns
 * once the job is stored durably in the host's jobs.db: the job's id (> 0),
 * or -1 (ward_client_error() says why: an unknown queue names the queues
 * that exist; a payload over 1 MiB; the connection lost). After a success,
 * ward_client_error() is "" or the host's note on why the job will not run
 * soon (e.g. its worker is failed).
 */
int64_t ward_client_enqueue(ward_client *c, const char *queue, const void *payload, size_t len,
			    const char *key /* or NULL */, uint64_t delay_ms); /* id > 0, or -1 */

/*
 * Waits up to `timeout_ms` (0: just look; UINT64_MAX: no limit) for job
 * `id` to finish. Returns
 *   0  done: *result is its result, malloc'd (caller frees; NULL when it
 *      is empty), *len its length;
 *   1  failed: dead (every attempt failed), cancelled, or its queue's
 *      workers are failed or stopped with `ward stop` and so will not run
 *      it; ward_client_error() gives the state and the last error;
 *   4  still unfinished when the timeout passed;
 *  -1  error (no such job, the connection lost...): ward_client_error().
 * *result and *len are set only for 0.
 */
int ward_client_wait(ward_client *c, int64_t id, uint64_t timeout_ms, void **result, size_t *len);
    /* 0 done (*result malloc'd, caller frees), 1 failed/dead/cancelled or its worker will not come, 4 unfinished, -1 error */

/*
 * Why the last call on c failed, or the job's last error after a wait that
 * returned 1; with c NULL, why the last ward_client_open() of this thread
 * failed. Never NULL; valid until the next call on c (or the next open).
 */
const char *ward_client_error(ward_client *c); /* why the last call failed, or the job's last error */

/* Closes the connection and frees c (NULL is fine). Jobs already queued stay queued. */
void ward_client_close(ward_client *c);

#ifdef __cplusplus
}
#endif

#endif
