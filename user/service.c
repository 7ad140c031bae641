// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Socket activation and readiness notification (see service.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include "service.h"

void service_refuse_listen_fd(int fd)
{
	/*
	 * Not listening any more, for systemd too (the fd is shared): it sees
	 * POLLHUP and fails the socket unit rather than start the service
	 * again on the next connection, only for it to be refused again.
	 */
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0)
		shutdown(fd, SHUT_RDWR);
	close(fd);
}

static void refuse_all(int n)
{
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++)
		service_refuse_listen_fd(fd);
}

int service_listen_fd(char *err, size_t errlen)
{
	int n, fd = SD_LISTEN_FDS_START, flags;

	n = sd_listen_fds(1);
	if (n < 0) {
		snprintf(err, errlen, "socket activation: bad LISTEN_FDS: %s",
			 strerror(-n));
		return n;
	}
	if (n == 0)
		return -1;
	if (n > 1) {
		snprintf(err, errlen,
			 "socket activation: %d sockets passed, want one (one ListenStream= in the .socket unit: an empty ListenStream= first drops the one before)",
			 n);
		refuse_all(n);
		return -EINVAL;
	}
	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
	    (sd_is_socket(fd, AF_INET, 0, -1) <= 0 &&
	     sd_is_socket(fd, AF_INET6, 0, -1) <= 0)) {
		snprintf(err, errlen,
			 "socket activation: fd %d is not a listening TCP socket (ListenStream=PORT, Accept=no)",
			 fd);
		refuse_all(n);
		return -EINVAL;
	}
	/* ours from now on: not inherited, and libmicrohttpd polls it */
	flags = fcntl(fd, F_GETFD);
	if (flags >= 0)
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return fd;
}

static void notify(const char *what, const char *status)
{
	if (status)
		sd_notifyf(0, "%s%sSTATUS=%s", what, what[0] ? "\n" : "",
			   status);
	else
		sd_notify(0, what);
}

void service_ready(const char *status)
{
	notify("READY=1", status);
}

void service_status(const char *status)
{
	notify("", status);
}

void service_stopping(void)
{
	notify("STOPPING=1", NULL);
}
