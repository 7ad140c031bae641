// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Request deadlines and eviction for the HTTP server (see conn_guard.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include "conn_guard.h"

struct conn_guard_conn {
	struct conn_guard_conn *prev, *next;
	int fd;
	struct sockaddr_storage peer;	/* family 0: unknown */
	bool in_request;	/* headers in, not answered yet */
	bool served;		/* answered a request before */
	bool shut;		/* shut down by us, waiting for its close */
	uint64_t since_ns;	/* opened, or last answered */
	uint64_t deadline_ns;
};

struct conn_guard {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* on CLOCK_MONOTONIC */
	pthread_t thread;
	bool quit;
	struct conn_guard_conn *head;
	unsigned int soft_limit, addr_limit;
	uint64_t first_ns, next_ns;
	struct conn_guard_stats stats;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * SHUT_RDWR wakes libmicrohttpd's poll on the socket: its next read sees
 * the end of the stream and it closes the connection through its own path
 * (callbacks, per-address count, fd), which is why the fd is not closed
 * here.  Called with g->lock held.
 */
static void shut(struct conn_guard_conn *c, uint64_t *counter)
{
	if (c->shut)
		return;
	c->shut = true;
	shutdown(c->fd, SHUT_RDWR);
	(*counter)++;
}

/* Called with g->lock held: the earliest deadline not yet acted on. */
static uint64_t sweep(struct conn_guard *g, uint64_t now)
{
	struct conn_guard_conn *c;
	uint64_t next = UINT64_MAX;

	for (c = g->head; c; c = c->next) {
		if (c->shut)
			continue;
		if (c->deadline_ns <= now)
			shut(c, &g->stats.closed_deadline);
		else if (c->deadline_ns < next)
			next = c->deadline_ns;
	}
	return next;
}

static void *watchdog_main(void *arg)
{
	struct conn_guard *g = arg;
	struct timespec ts;
	uint64_t next;

	prctl(PR_SET_NAME, "kue-http-guard", 0, 0, 0);
	pthread_mutex_lock(&g->lock);
	while (!g->quit) {
		next = sweep(g, now_ns());
		if (next == UINT64_MAX) {
			pthread_cond_wait(&g->cond, &g->lock);
			continue;
		}
		ts.tv_sec = (time_t)(next / 1000000000ull);
		ts.tv_nsec = (long)(next % 1000000000ull);
		pthread_cond_timedwait(&g->cond, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

struct conn_guard *conn_guard_new(unsigned int soft_limit,
				  unsigned int addr_limit,
				  unsigned int first_ms, unsigned int next_ms)
{
	struct conn_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	int e;

	if (!g)
		return NULL;
	g->soft_limit = soft_limit;
	g->addr_limit = addr_limit;
	g->first_ns = first_ms * 1000000ull;
	g->next_ns = next_ms * 1000000ull;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	e = pthread_create(&g->thread, NULL, watchdog_main, g);
	if (e) {
		pthread_cond_destroy(&g->cond);
		pthread_mutex_destroy(&g->lock);
		free(g);
		errno = e;
		return NULL;
	}
	return g;
}

void conn_guard_free(struct conn_guard *g)
{
	struct conn_guard_conn *c, *n;

	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->quit = true;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	for (c = g->head; c; c = n) {	/* none, if the server closed all */
		n = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

/* Both from one client address (the port aside); unknown ones match. */
static bool same_peer(const struct conn_guard_conn *a,
		      const struct conn_guard_conn *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->peer.ss_family != b->peer.ss_family)
		return false;
	switch (a->peer.ss_family) {
	case AF_INET:
		a4 = (const struct sockaddr_in *)&a->peer;
		b4 = (const struct sockaddr_in *)&b->peer;
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	case AF_INET6:
		a6 = (const struct sockaddr_in6 *)&a->peer;
		b6 = (const struct sockaddr_in6 *)&b->peer;
		return !memcmp(&a6->sin6_addr, &b6->sin6_addr,
			       sizeof(a6->sin6_addr));
	default:
		return true;
	}
}

/*
 * The client sent its end of stream (or reset), and nothing is left to
 * read before it: the server will close this connection at its next
 * read.  A peek, so libmicrohttpd's own reads see the same bytes.
 */
static bool hung_up(const struct conn_guard_conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			  errno != EINTR);
}

/*
 * Called with g->lock held: may c take a slot from a newcomer?  Not once
 * shut down, nor, when peek is set, once its client has hung up.
 */
static bool counts(const struct conn_guard_conn *c,
		   const struct conn_guard_conn *like, bool peek)
{
	if (c->shut || (like && !same_peer(c, like)))
		return false;
	return !peek || !hung_up(c);
}

/*
 * Called with g->lock held: are limit or more connections (from like's
 * address, or any if NULL) live?  A syscall per connection only when the
 * plain count says so.
 */
static bool at_limit(const struct conn_guard *g,
		     const struct conn_guard_conn *like, unsigned int limit)
{
	const struct conn_guard_conn *c;
	unsigned int n = 0, peek;

	for (peek = 0; peek < 2; peek++) {
		n = 0;
		for (c = g->head; c; c = c->next)
			n += counts(c, like, peek);
		if (n < limit)
			return false;
	}
	return true;
}

/*
 * Which connection a newcomer drops first, lowest first: one that has
 * never sent a request (an idle or slowloris one), then one kept alive
 * waiting for its next request, then one being answered.  A scraper's
 * kept-alive connection is older than a pile of idle ones opened after
 * it, and must outlive them: its next scrape is on its way.
 */
static int evict_rank(const struct conn_guard_conn *c)
{
	if (c->in_request)
		return 2;
	return c->served;
}

/*
 * Called with g->lock held, the newcomer not yet in the list: the live
 * connection (from like's address, or any if NULL) to drop for it: the
 * lowest evict_rank, and among equals the one waiting or running longest.
 */
static struct conn_guard_conn *victim(struct conn_guard *g,
				      const struct conn_guard_conn *like)
{
	struct conn_guard_conn *c, *best = NULL;

	for (c = g->head; c; c = c->next) {
		if (!counts(c, like, true))
			continue;
		if (!best || evict_rank(c) < evict_rank(best) ||
		    (evict_rank(c) == evict_rank(best) &&
		     c->since_ns < best->since_ns))
			best = c;
	}
	return best;
}

struct conn_guard_conn *conn_guard_opened(struct conn_guard *g, int fd)
{
	struct conn_guard_conn *c, *v;
	socklen_t len;

	if (!g || fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;	/* served, only without a deadline */
	c->fd = fd;
	len = sizeof(c->peer);
	if (getpeername(fd, (struct sockaddr *)&c->peer, &len))
		c->peer.ss_family = 0;
	c->since_ns = now_ns();
	c->deadline_ns = c->since_ns + g->first_ns;
	pthread_mutex_lock(&g->lock);
	v = NULL;
	if (at_limit(g, c, g->addr_limit))
		v = victim(g, c);
	if (!v && at_limit(g, NULL, g->soft_limit))
		v = victim(g, NULL);
	if (v)
		shut(v, &g->stats.closed_evicted);
	c->next = g->head;
	if (g->head)
		g->head->prev = c;
	g->head = c;
	g->stats.open++;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return c;
}

void conn_guard_request(struct conn_guard *g, struct conn_guard_conn *c)
{
	if (!g || !c)
		return;
	pthread_mutex_lock(&g->lock);
	c->in_request = true;
	pthread_mutex_unlock(&g->lock);
}

void conn_guard_answered(struct conn_guard *g, struct conn_guard_conn *c)
{
	if (!g || !c)
		return;
	pthread_mutex_lock(&g->lock);
	c->in_request = false;
	c->served = true;
	c->since_ns = now_ns();
	c->deadline_ns = c->since_ns + g->next_ns;
	pthread_mutex_unlock(&g->lock);
}

void conn_guard_closed(struct conn_guard *g, struct conn_guard_conn *c)
{
	if (!g || !c)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->stats.open--;
	pthread_mutex_unlock(&g->lock);
	free(c);
}

void conn_guard_get_stats(struct conn_guard *g, struct conn_guard_stats *s)
{
	pthread_mutex_lock(&g->lock);
	*s = g->stats;
	pthread_mutex_unlock(&g->lock);
}
