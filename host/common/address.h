/*
 * address.h - the syntax of an ADDR:PORT to listen on, as `[ward] http`
 * takes it: one parser, so `ward check` refuses exactly what the host could
 * not bind. Numeric addresses only (a name would be resolved differently
 * at check time and at boot). Used by the configuration reader (CLI and
 * host) and by the host's HTTP endpoint (daemon/http.c).
 */
#ifndef WARD_ADDRESS_H
#define WARD_ADDRESS_H

#include <sys/socket.h>

/* "127.0.0.1:9464", "[::1]:9464", "*:9464" (every IPv4 address, as
 * 0.0.0.0) or "localhost:9464" (127.0.0.1); the port 1..65535. Fills ss and
 * len; NULL, or the reason the text is not such an address. */
const char *address_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len);

#endif
