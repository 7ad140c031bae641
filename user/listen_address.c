// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Parsing of --web.listen-address (http.h http_parse_listen_address).
 * Apart from the server so that a bad flag is refused, with its one-line
 * message, before anything is bound, and so the parser can be fuzzed
 * without starting a daemon (tests/fuzz/fuzz_listen_address.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* getaddrinfo under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "http.h"

#define FLAG_ADDR	HTTP_FLAG_LISTEN_ADDRESS

/* The address is quoted in the message: a newline in it cannot split it. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* Decimal 0-65535, digits only: no sign, no spaces, no hex. */
static int parse_port(const char *s, int *port)
{
	long v = 0;
	int n;

	for (n = 0; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (s[n] - '0');
	}
	if (!n || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

static int resolve(const char *host, bool v6_only, int port,
		   struct listen_addr *out)
{
	struct addrinfo hints = { 0 }, *res;
	int err;

	hints.ai_family = v6_only ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | (v6_only ? AI_NUMERICHOST : 0);
	err = getaddrinfo(host, NULL, &hints, &res);
	if (err)
		return err;
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	if (res->ai_family == AF_INET6)
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

static void any_dual_stack(struct listen_addr *out, int port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = in6addr_any;
	sin6->sin6_port = htons(port);
	out->len = sizeof(*sin6);
	out->dual_stack = 1;
}

int http_parse_listen_address(const char *s, struct listen_addr *out,
			      char *err, size_t err_size)
{
	const char *why = NULL, *port_s;
	char host[256];
	bool bracket = false;
	size_t hlen;
	int port, gai;

	memset(out, 0, sizeof(*out));
	if (!s || !*s) {
		why = "empty";
		goto bad;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close == s + 1 || close[1] != ':') {
			why = "want [IPv6 address]:port";
			goto bad;
		}
		hlen = (size_t)(close - s - 1);
		s++;
		port_s = close + 2;
		bracket = true;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon) {
			why = "missing :port";
			goto bad;
		}
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen)) {
			why = "IPv6 addresses need brackets, as in [::1]:port";
			goto bad;
		}
		port_s = colon + 1;
	}
	if (hlen >= sizeof(host)) {
		why = "host name too long";
		goto bad;
	}
	if (parse_port(port_s, &port)) {
		why = "port must be a number from 0 to 65535";
		goto bad;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (!hlen) {
		any_dual_stack(out, port);
		return 0;
	}
	gai = resolve(host, bracket, port, out);
	if (!gai)
		return 0;
	why = gai_strerror(gai);
bad:
	snprintf(err, err_size, "invalid %s \"%s%s\": %s", FLAG_ADDR,
		 bracket ? "[" : "", s ? s : "", why);
	one_line(err);
	return -EINVAL;
}
