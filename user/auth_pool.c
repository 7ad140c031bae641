// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Password checks on threads of their own, bounded (see auth_pool.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* explicit_bzero under -std=c11 */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include "auth_pool.h"

#define MAX_RELEASED	4	/* owners being stopped at once */

struct cache_slot {
	uint8_t key[AUTH_KEY_LEN];
	uint64_t used_ns;	/* 0: empty */
};

/*
 * What a worker is busy with, for release() and the address budget.  It
 * checks its own copy of the job's credentials: a release hands the job
 * back at once (job NULL) while the check runs on to its end, which a
 * bcrypt cannot be stopped short of.
 */
struct worker {
	struct auth_pool *pool;
	pthread_t thread;
	const void *owner;	/* NULL: idle */
	struct sockaddr_storage peer;
	struct auth_job *job;	/* NULL once released or answered */
	const void *answering;	/* owner of the job in done(), unlocked */
	char hash[AUTH_HASH_MAX], pass[AUTH_FIELD_MAX];
	uint8_t key[AUTH_KEY_LEN];
	bool known, keyed;
};

struct auth_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;	/* a job queued, or quit */
	pthread_cond_t idle;	/* a worker answered a job */
	struct auth_job *head, *tail;
	unsigned int nr_queued;
	bool quit;
	unsigned int nr_threads;	/* running */
	bool orphaned;		/* freed: the last worker out destroys it */
	struct auth_pool_limits lim;
	auth_check_fn check;
	struct worker workers[AUTH_POOL_MAX_WORKERS];
	const void *released[MAX_RELEASED];
	struct cache_slot *cache;
	uint8_t hmac_key[AUTH_KEY_LEN];
	struct auth_pool_stats stats;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Both from one client address (the port aside); unknown ones match. */
static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return true;
}

/* HMAC-SHA256 of user, password and hash, each with its NUL. */
static int job_key(const struct auth_pool *p, struct auth_job *j)
{
	gnutls_hmac_hd_t h;

	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, p->hmac_key,
			     sizeof(p->hmac_key)))
		return -ENOMEM;
	gnutls_hmac(h, j->user, strlen(j->user) + 1);
	gnutls_hmac(h, j->pass, strlen(j->pass) + 1);
	gnutls_hmac(h, j->hash, strlen(j->hash) + 1);
	gnutls_hmac_deinit(h, j->key);
	return 0;
}

/* Called with p->lock held: is key a remembered success?  Touches it. */
static bool cache_hit(struct auth_pool *p, const uint8_t *key)
{
	unsigned int i;

	for (i = 0; i < p->lim.cache; i++) {
		if (p->cache[i].used_ns &&
		    !memcmp(p->cache[i].key, key, AUTH_KEY_LEN)) {
			p->cache[i].used_ns = now_ns();
			return true;
		}
	}
	return false;
}

/* Called with p->lock held: remember key, in place of the least used. */
static void cache_add(struct auth_pool *p, const uint8_t *key)
{
	struct cache_slot *s = NULL;
	unsigned int i;

	if (!p->lim.cache || cache_hit(p, key))
		return;
	for (i = 0; i < p->lim.cache; i++)
		if (!s || p->cache[i].used_ns < s->used_ns)
			s = &p->cache[i];
	memcpy(s->key, key, AUTH_KEY_LEN);
	s->used_ns = now_ns();
}

/* Called with p->lock held: checks from peer's address queued or running. */
static unsigned int addr_load(const struct auth_pool *p,
			      const struct sockaddr_storage *peer)
{
	const struct auth_job *j;
	unsigned int i, n = 0;

	for (j = p->head; j; j = j->next)
		n += same_addr(&j->peer, peer);
	for (i = 0; i < p->lim.workers; i++)
		n += p->workers[i].owner && same_addr(&p->workers[i].peer, peer);
	return n;
}

/* Called with p->lock held: workers busy with a check. */
static unsigned int nr_busy(const struct auth_pool *p)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->lim.workers; i++)
		n += p->workers[i].owner != NULL;
	return n;
}

static bool is_released(const struct auth_pool *p, const void *owner)
{
	unsigned int i;

	for (i = 0; i < MAX_RELEASED; i++)
		if (p->released[i] == owner)
			return true;
	return false;
}

bool auth_pool_cached(struct auth_pool *p, struct auth_job *j)
{
	bool hit;

	j->keyed = !job_key(p, j);
	if (!j->keyed || !j->known)
		return false;
	pthread_mutex_lock(&p->lock);
	hit = cache_hit(p, j->key);
	p->stats.cache_hits += hit;
	pthread_mutex_unlock(&p->lock);
	if (hit) {
		explicit_bzero(j->pass, sizeof(j->pass));
		j->result = AUTH_RESULT_OK;
	}
	return hit;
}

enum auth_submit auth_pool_submit(struct auth_pool *p, struct auth_job *j)
{
	enum auth_submit r = AUTH_SUBMIT_QUEUED;

	pthread_mutex_lock(&p->lock);
	if (p->quit || is_released(p, j->owner) ||
	    p->nr_queued + nr_busy(p) >= p->lim.queue + p->lim.workers) {
		p->stats.refused_busy++;
		r = AUTH_SUBMIT_BUSY;
	} else if (addr_load(p, &j->peer) >= p->lim.per_addr) {
		p->stats.refused_limit++;
		r = AUTH_SUBMIT_LIMIT;
	} else {
		j->next = NULL;
		if (p->tail)
			p->tail->next = j;
		else
			p->head = j;
		p->tail = j;
		p->nr_queued++;
		pthread_cond_signal(&p->work);
	}
	pthread_mutex_unlock(&p->lock);
	if (r != AUTH_SUBMIT_QUEUED)
		explicit_bzero(j->pass, sizeof(j->pass));
	return r;
}

/* Called with p->lock held: the first queued job, unlinked, or NULL. */
static struct auth_job *dequeue(struct auth_pool *p)
{
	struct auth_job *j = p->head;

	if (!j)
		return NULL;
	p->head = j->next;
	if (!p->head)
		p->tail = NULL;
	p->nr_queued--;
	return j;
}

/* Called with p->lock held: w takes j, with its own copy of what to check. */
static void take_job(struct worker *w, struct auth_job *j)
{
	w->job = j;
	w->owner = j->owner;
	w->peer = j->peer;
	w->known = j->known;
	w->keyed = j->keyed;
	memcpy(w->key, j->key, sizeof(w->key));
	memcpy(w->hash, j->hash, sizeof(w->hash));
	memcpy(w->pass, j->pass, sizeof(w->pass));
	explicit_bzero(j->pass, sizeof(j->pass));
}

/*
 * One check, without the lock, then the answer: done() is called outside
 * the lock, unless a release took the job back meanwhile.
 */
static void run_check(struct auth_pool *p, struct worker *w)
{
	bool ok = p->check(w->hash, w->pass) && w->known;
	struct auth_job *j;

	explicit_bzero(w->pass, sizeof(w->pass));
	pthread_mutex_lock(&p->lock);
	p->stats.checks++;
	if (ok && w->keyed)
		cache_add(p, w->key);
	j = w->job;
	w->job = NULL;
	/* free before the client can hear back, so its next one fits */
	w->answering = j ? w->owner : NULL;
	w->owner = NULL;
	pthread_mutex_unlock(&p->lock);
	if (!j)
		return;
	j->result = ok ? AUTH_RESULT_OK : AUTH_RESULT_DENIED;
	j->done(j);	/* j may be freed from here on */
	pthread_mutex_lock(&p->lock);
	w->answering = NULL;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

static void pool_destroy(struct auth_pool *p);

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct auth_pool *p = w->pool;
	struct auth_job *j;
	bool last;

	prctl(PR_SET_NAME, "kue-http-auth", 0, 0, 0);
	pthread_mutex_lock(&p->lock);
	while (!p->quit) {
		j = dequeue(p);
		if (!j) {
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		take_job(w, j);
		pthread_mutex_unlock(&p->lock);
		run_check(p, w);
		pthread_mutex_lock(&p->lock);
	}
	p->nr_threads--;
	pthread_cond_broadcast(&p->idle);
	last = !p->nr_threads && p->orphaned;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_destroy(p);
	return NULL;
}

/*
 * Called with p->lock held: take back the jobs of owner (all if NULL)
 * that workers are checking, onto *taken; true if one of them is still
 * being answered (its done() running).
 */
static bool take_running(struct auth_pool *p, const void *owner,
			 struct auth_job **taken)
{
	struct worker *w;
	bool answering = false;
	unsigned int i;

	for (i = 0; i < p->lim.workers; i++) {
		w = &p->workers[i];
		if (w->answering && (!owner || w->answering == owner))
			answering = true;
		if (!w->owner || (owner && w->owner != owner))
			continue;
		if (w->job) {
			w->job->next = *taken;
			*taken = w->job;
			w->job = NULL;
		}
	}
	return answering;
}

/* Called with p->lock held: unlink owner's queued jobs (all if NULL). */
static struct auth_job *take_queued(struct auth_pool *p, const void *owner)
{
	struct auth_job **pp = &p->head, *j, *taken = NULL;

	p->tail = NULL;
	while ((j = *pp)) {
		if (owner && j->owner != owner) {
			p->tail = j;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		p->nr_queued--;
		j->next = taken;
		taken = j;
	}
	return taken;
}

static void mark_released(struct auth_pool *p, const void *owner)
{
	unsigned int i;

	if (!owner || is_released(p, owner))
		return;
	for (i = 0; i < MAX_RELEASED; i++) {
		if (!p->released[i]) {
			p->released[i] = owner;
			return;
		}
	}
}

static void refuse_all(struct auth_job *j)
{
	struct auth_job *next;

	for (; j; j = next) {
		next = j->next;
		explicit_bzero(j->pass, sizeof(j->pass));
		j->result = AUTH_RESULT_REFUSED;
		j->done(j);
	}
}

/*
 * Queued and running jobs alike are answered REFUSED at once: a check
 * already running goes on, its result only for the cache.  Waits only for
 * a done() in progress, never for a check.
 */
void auth_pool_release(struct auth_pool *p, const void *owner)
{
	struct auth_job *taken;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	mark_released(p, owner);
	taken = take_queued(p, owner);
	while (take_running(p, owner, &taken))
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	refuse_all(taken);
}

void auth_pool_forget(struct auth_pool *p, const void *owner)
{
	unsigned int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < MAX_RELEASED; i++)
		if (p->released[i] == owner)
			p->released[i] = NULL;
	pthread_mutex_unlock(&p->lock);
}

static void pool_destroy(struct auth_pool *p)
{
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	if (p->cache)
		explicit_bzero(p->cache, p->lim.cache * sizeof(*p->cache));
	free(p->cache);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

/*
 * The workers are detached: idle ones are waited for as they exit, but
 * one in the middle of a check is left to finish it (a fraction of a
 * second) and, the last one out, to free the pool, so stopping never
 * waits for a bcrypt.
 */
void auth_pool_free(struct auth_pool *p)
{
	bool last;

	if (!p)
		return;
	auth_pool_release(p, NULL);
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->work);
	while (p->nr_threads > nr_busy(p))
		pthread_cond_wait(&p->idle, &p->lock);
	last = !p->nr_threads;
	p->orphaned = !last;
	pthread_mutex_unlock(&p->lock);
	if (last)
		pool_destroy(p);
}

static int start_workers(struct auth_pool *p)
{
	pthread_attr_t attr;
	unsigned int i;
	int e = 0;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < p->lim.workers && !e; i++) {
		p->workers[i].pool = p;
		pthread_mutex_lock(&p->lock);
		e = pthread_create(&p->workers[i].thread, &attr, worker_main,
				   &p->workers[i]);
		p->nr_threads += !e;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_attr_destroy(&attr);
	return -e;
}

struct auth_pool *auth_pool_new(const struct auth_pool_limits *l,
				auth_check_fn check)
{
	struct auth_pool *p = calloc(1, sizeof(*p));
	int err;

	if (!p || !l->workers || l->workers > AUTH_POOL_MAX_WORKERS) {
		errno = p ? EINVAL : ENOMEM;
		free(p);
		return NULL;
	}
	p->lim = *l;
	p->check = check;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->cache = calloc(l->cache ? l->cache : 1, sizeof(*p->cache));
	err = p->cache ? 0 : -ENOMEM;
	if (!err && gnutls_rnd(GNUTLS_RND_KEY, p->hmac_key,
			       sizeof(p->hmac_key)))
		err = -EIO;
	if (err) {
		pool_destroy(p);
		errno = -err;
		return NULL;
	}
	err = start_workers(p);
	if (err) {
		auth_pool_free(p);
		errno = -err;
		return NULL;
	}
	return p;
}

void auth_pool_get_stats(struct auth_pool *p, struct auth_pool_stats *s)
{
	pthread_mutex_lock(&p->lock);
	*s = p->stats;
	s->queued = p->nr_queued;
	s->running = nr_busy(p);
	pthread_mutex_unlock(&p->lock);
}
