/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Keeps slow clients from holding the HTTP server's connection slots.
 *
 * libmicrohttpd (0.9.75, Debian 12) closes a connection only after it has
 * been idle for its timeout: a client that trickles a byte of its request
 * every few seconds (slowloris) keeps its slot for ever, and clients from
 * a handful of addresses fill every slot under the per-address limit.  The
 * guard adds what it lacks, from the server's connection callbacks:
 *
 *  - a deadline per request: a connection must have sent its request and
 *    received the answer within first_ms of opening, and each next request
 *    on a kept-alive connection within next_ms of the last answer; past
 *    it a watchdog thread shuts the socket down (libmicrohttpd then sees
 *    the end of the stream and closes the connection itself);
 *  - eviction: a new connection that takes its client address past
 *    addr_limit, or the count past soft_limit, shuts down a connection
 *    (of that address, or of any): the one that has waited longest among
 *    those that never sent a request, else among those kept alive waiting
 *    for their next one, else the longest-running request.  A newcomer
 *    that sends its request at once is served while the slow ones are
 *    dropped, and a scraper's kept-alive connection outlives idle ones
 *    opened after it from its own address.
 *
 * Only live connections count toward those limits: not those shut down
 * by the guard, nor those whose client has hung up (a kept-alive
 * connection the client closed to open the next one, whose end of stream
 * libmicrohttpd has not read yet).  A scraper that reconnects for each
 * scrape is never refused for the connection it just closed.
 *
 * The socket is only shut down, never closed, and only while it is
 * registered: the server unregisters it (conn_guard_closed) before
 * libmicrohttpd closes the fd, under the same lock, so a number that was
 * reused for another file is never touched.
 */
#ifndef __CONN_GUARD_H
#define __CONN_GUARD_H

#include <stdint.h>

struct conn_guard;
struct conn_guard_conn;

struct conn_guard_stats {
	uint64_t open;			/* registered now */
	uint64_t closed_deadline;	/* shut down by the deadline */
	uint64_t closed_evicted;	/* shut down to make room */
};

/* NULL when out of memory or the watchdog thread cannot start. */
struct conn_guard *conn_guard_new(unsigned int soft_limit,
				  unsigned int addr_limit,
				  unsigned int first_ms, unsigned int next_ms);
/* Stop the watchdog and free.  Connections must all be closed.  NULL ok. */
void conn_guard_free(struct conn_guard *g);

/* A connection opened on socket fd; returns its handle (NULL: untracked). */
struct conn_guard_conn *conn_guard_opened(struct conn_guard *g, int fd);
/* Its request's headers arrived: it is no longer the first to evict. */
void conn_guard_request(struct conn_guard *g, struct conn_guard_conn *c);
/* Its request was answered: the clock starts for the next one. */
void conn_guard_answered(struct conn_guard *g, struct conn_guard_conn *c);
/* It is about to be closed: forget it (frees c).  NULL ok. */
void conn_guard_closed(struct conn_guard *g, struct conn_guard_conn *c);

void conn_guard_get_stats(struct conn_guard *g, struct conn_guard_stats *s);

#endif /* __CONN_GUARD_H */
