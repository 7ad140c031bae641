// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Request deadlines and eviction for the HTTP server (see conn_guard.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include "conn_guard.h"

struct conn_guard_conn {
	struct conn_guard_conn *prev, *next;
	int fd;
	bool in_request;	/* headers in, not answered yet */
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
	unsigned int soft_limit;
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
				  unsigned int first_ms, unsigned int next_ms)
{
	struct conn_guard *g = calloc(1, sizeof(*g));
	pthread_condattr_t ca;
	int e;

	if (!g)
		return NULL;
	g->soft_limit = soft_limit;
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

/* Called with g->lock held: connections not shut down yet. */
static unsigned int live(const struct conn_guard *g)
{
	const struct conn_guard_conn *c;
	unsigned int n = 0;

	for (c = g->head; c; c = c->next)
		n += !c->shut;
	return n;
}

/*
 * Called with g->lock held, c not yet in the list: the connection to drop
 * for a newcomer.  One waiting for its request beats one being answered;
 * among equals, the one waiting or running longest.
 */
static struct conn_guard_conn *victim(struct conn_guard *g)
{
	struct conn_guard_conn *c, *best = NULL;

	for (c = g->head; c; c = c->next) {
		if (c->shut)
			continue;
		if (!best || (best->in_request && !c->in_request) ||
		    (best->in_request == c->in_request &&
		     c->since_ns < best->since_ns))
			best = c;
	}
	return best;
}

struct conn_guard_conn *conn_guard_opened(struct conn_guard *g, int fd)
{
	struct conn_guard_conn *c, *v;

	if (!g || fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;	/* served, only without a deadline */
	c->fd = fd;
	c->since_ns = now_ns();
	c->deadline_ns = c->since_ns + g->first_ns;
	pthread_mutex_lock(&g->lock);
	if (live(g) >= g->soft_limit) {
		v = victim(g);
		if (v)
			shut(v, &g->stats.closed_evicted);
	}
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
