// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for --web.listen-address parsing,
 * http_parse_listen_address() in user/listen_address.c.
 *
 * The parser resolves host names with getaddrinfo(); a fuzzer must not
 * send thousands of random names to DNS.  This file defines getaddrinfo()
 * itself, which the executable's own definition makes win over libc's:
 * it answers numeric hosts through libc (AI_NUMERICHOST, no lookup) and
 * "fuzz.invalid" with a fixed address, and fails every other name.
 *
 * Checked: 0 or -EINVAL only; on success a family, length and port that
 * agree; on failure a NUL-terminated one-line message naming the flag.
 *
 *   tests/fuzz/run.sh listen_address
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
		      struct addrinfo **);

int getaddrinfo(const char *node, const char *service,
		const struct addrinfo *hints, struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo h = { 0 };

	if (!real)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (!real)
		abort();
	if (hints)
		h = *hints;
	if (node && !strcmp(node, "fuzz.invalid"))
		return real("192.0.2.1", service, &h, res);
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct listen_addr a;
	char s[600], err[512];
	int r, port;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';

	r = http_parse_listen_address(s, &a, err, sizeof(err));
	if (r == -EINVAL) {
		if (!memchr(err, '\0', sizeof(err)) ||
		    !strstr(err, "--web.listen-address") ||
		    strchr(err, '\n'))
			abort();
		return 0;
	}
	if (r != 0)
		abort();
	if (a.ss.ss_family == AF_INET6) {
		if (a.len != sizeof(struct sockaddr_in6))
			abort();
		port = ntohs(((struct sockaddr_in6 *)&a.ss)->sin6_port);
	} else if (a.ss.ss_family == AF_INET) {
		if (a.len != sizeof(struct sockaddr_in) || a.dual_stack)
			abort();
		port = ntohs(((struct sockaddr_in *)&a.ss)->sin_port);
	} else {
		abort();
	}
	/* The port is the decimal digits after the last ':' of the input. */
	if (port != atoi(strrchr(s, ':') + 1))
		abort();
	return 0;
}
