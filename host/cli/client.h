/*
 * client.h - the CLI's side of the control socket (control.h has the
 * protocol): one request to the host of a state directory, and its reply.
 * CLI process only.
 */
#ifndef WARD_CLIENT_H
#define WARD_CLIENT_H

#include <stdbool.h>

enum client_result {
	CLIENT_OK,      /* the host answered "ok" */
	CLIENT_REFUSED, /* the host answered "error" */
	CLIENT_NO_HOST, /* nothing listens on the control socket */
	CLIENT_FAILED,  /* the socket could not be used (permission, timeout...); already reported */
};

/* Sends `request` (without newline). The reply's message lines are printed:
 * on stdout after "ok", on stderr after "error", unless quiet. */
enum client_result client_request(const char *state_dir, const char *request, bool quiet);

#endif
