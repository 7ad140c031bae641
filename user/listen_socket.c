// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The one place the agent opens its listening socket (http.h
 * listen_socket_open): for the HTTP server, and early in main while it may
 * still bind a privileged port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>
#include "http.h"

#define LISTEN_BACKLOG	64

int listen_addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* The wildcard IPv4 address, for hosts without IPv6. */
static void any_v4(struct listen_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	int port = listen_addr_port(&a->ss);

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_ANY);
	sin->sin_port = htons(port);
	a->len = sizeof(*sin);
}

int listen_socket_open(struct listen_addr *a, const char **what)
{
	int fd, one = 1, v6only;

	*what = "socket";
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0 && a->dual_stack && errno == EAFNOSUPPORT) {
		any_v4(a);	/* IPv6 disabled on this host */
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
				     SOCK_NONBLOCK, 0);
	}
	if (fd < 0)
		return -errno;
	/* restart without waiting for TIME_WAIT connections to expire */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6) {
		v6only = !a->dual_stack;
		*what = "setsockopt(IPV6_V6ONLY)";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			       sizeof(v6only)))
			goto fail;
	}
	*what = "bind";
	if (bind(fd, (struct sockaddr *)&a->ss, a->len))
		goto fail;
	*what = "listen";
	if (listen(fd, LISTEN_BACKLOG))
		goto fail;
	return fd;
fail:
	one = -errno;
	close(fd);
	return one;
}


int listen_socket_open_flag(struct listen_addr *a, const char *address)
{
	const char *what;
	int fd;

	fd = listen_socket_open(a, &what);
	if (fd < 0)
		fprintf(stderr, "cannot listen on %s \"%s\": %s: %s\n",
			HTTP_FLAG_LISTEN_ADDRESS, address, what, strerror(-fd));
	return fd;
}

/* The first port an unprivileged process may bind (1024 if unreadable). */
static int unprivileged_port_start(void)
{
	int start = 1024;
	FILE *f;

	f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");
	if (f) {
		if (fscanf(f, "%d", &start) != 1)
			start = 1024;
		fclose(f);
	}
	return start;
}

int listen_socket_open_privileged(const char *address)
{
	struct listen_addr a;
	char err[512];
	int port, fd;

	if (http_parse_listen_address(address, &a, err, sizeof(err)))
		return -1;
	port = listen_addr_port(&a.ss);
	if (port == 0 || port >= unprivileged_port_start())
		return -1;
	fd = listen_socket_open_flag(&a, address);
	return fd >= 0 ? fd : -2;
}
