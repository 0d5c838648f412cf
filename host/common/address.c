/*
 * address.c - ADDR:PORT into a socket address (address.h). Runs wherever
 * the configuration is read (CLI and host), and in the host's HTTP endpoint.
 */
#include "common/address.h"
#include "common/units.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ADDRESS_SYNTAX "expected ADDRESS:PORT with a numeric address (127.0.0.1:9464, [::1]:9464, *:9464 or localhost:9464) and a port from 1 to 65535"

static int parse_port(const char *s, in_port_t *port)
{
	long p;
	if (parse_long(s, &p) < 0 || p < 1 || p > 65535 || s[0] == '+' || s[0] == '-')
		return -1;
	*port = htons((in_port_t)p);
	return 0;
}

/* host (without brackets) and port as an IPv4 socket address. */
static int ipv4(const char *host, in_port_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	if (strcmp(host, "*") == 0)
		host = "0.0.0.0";
	else if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	sin->sin_port = port;
	*len = sizeof(*sin);
	return 0;
}

const char *address_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	const char *colon = strrchr(text, ':');
	char host[64];
	in_port_t port;
	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host) || parse_port(colon + 1, &port) < 0)
		return ADDRESS_SYNTAX;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	size_t n = strlen(host);
	if (host[0] != '[')
		return ipv4(host, port, ss, len) == 0 ? NULL : ADDRESS_SYNTAX;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (n < 3 || host[n - 1] != ']')
		return ADDRESS_SYNTAX;
	host[n - 1] = '\0';
	if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
		return ADDRESS_SYNTAX;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = port;
	*len = sizeof(*sin6);
	return NULL;
}
