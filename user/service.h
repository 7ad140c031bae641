/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Running as a systemd service: the listening socket of socket activation
 * and readiness notification, both through libsystemd and both harmless
 * without systemd (no LISTEN_FDS, no NOTIFY_SOCKET: nothing happens).
 */
#ifndef __SERVICE_H
#define __SERVICE_H

#include <stddef.h>

/*
 * The socket systemd passed (LISTEN_FDS/LISTEN_PID): its fd, -1 if none was
 * passed, or -errno with a one-line reason in err (more than one fd, not a
 * listening TCP socket; those passed are then refused as below).  The
 * LISTEN_* variables are removed from the environment either way.
 */
int service_listen_fd(char *err, size_t errlen);
/*
 * Give back a socket systemd passed that the agent will not serve on: shut
 * it down (systemd then fails the socket unit instead of activating the
 * service again on each connection) and close it.
 */
void service_refuse_listen_fd(int fd);

/* READY=1 and STATUS=status: call once serving. */
void service_ready(const char *status);
/* STATUS=status alone. */
void service_status(const char *status);
/* STOPPING=1: call when shutdown begins. */
void service_stopping(void);

#endif /* __SERVICE_H */
