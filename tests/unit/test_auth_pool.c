// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The password-check pool (user/auth_pool.c) with a check the test holds
 * until it lets go, so what is queued, running, refused and cached at
 * each step is known, not raced: the queue bound (BUSY), the per-address
 * budget (LIMIT, other addresses unaffected), the cache of successes
 * (and only of successes, of known users, keyed by the hash too), and a
 * release that answers queued and running jobs at once, without waiting
 * for a check, and turns later submits away.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include "auth_pool.h"
#include "test.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned int entered, allowed, done_calls;

/* Right when the password is "right"; waits until the test allows it. */
static bool held_check(const char *hash, const char *password)
{
	(void)hash;
	pthread_mutex_lock(&lock);
	entered++;
	pthread_cond_broadcast(&cond);
	while (!allowed)
		pthread_cond_wait(&cond, &lock);
	allowed--;
	pthread_mutex_unlock(&lock);
	return !strcmp(password, "right");
}

static void on_done(struct auth_job *j)
{
	(void)j;
	pthread_mutex_lock(&lock);
	done_calls++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void wait_for(unsigned int *counter, unsigned int n)
{
	pthread_mutex_lock(&lock);
	while (*counter < n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
}

static void allow(unsigned int n)
{
	pthread_mutex_lock(&lock);
	allowed += n;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static void job_init(struct auth_job *j, const char *user, const char *pass,
		     const char *ip, const void *owner)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&j->peer;

	memset(j, 0, sizeof(*j));
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->pass, sizeof(j->pass), "%s", pass);
	snprintf(j->hash, sizeof(j->hash), "$2b$12$hash-of-%s", user);
	j->known = strcmp(user, "nobody") != 0;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	j->owner = owner;
	j->done = on_done;
}

/* What a submit says, after the cache had its say, as the server does. */
static int submit(struct auth_pool *p, struct auth_job *j)
{
	if (auth_pool_cached(p, j))
		return -1;
	return auth_pool_submit(p, j);
}

static const struct auth_pool_limits lim = {
	.workers = 1, .queue = 3, .per_addr = 2, .cache = 2,
};

static void test_bounds(void)
{
	struct auth_job j[8];
	struct auth_pool *p;
	struct auth_pool_stats st;
	int owner;

	entered = allowed = done_calls = 0;
	p = auth_pool_new(&lim, held_check);
	CHECK(p != NULL);
	if (!p)
		return;
	job_init(&j[0], "alice", "wrong", "10.0.0.1", &owner);
	CHECK_INT(submit(p, &j[0]), AUTH_SUBMIT_QUEUED);
	wait_for(&entered, 1);	/* running, held */
	job_init(&j[1], "alice", "wrong", "10.0.0.1", &owner);
	CHECK_INT(submit(p, &j[1]), AUTH_SUBMIT_QUEUED);
	/* 10.0.0.1 has one running and one queued: its budget is spent */
	job_init(&j[2], "alice", "wrong", "10.0.0.1", &owner);
	CHECK_INT(submit(p, &j[2]), AUTH_SUBMIT_LIMIT);
	CHECK_INT(j[2].pass[0], 0);	/* wiped all the same */
	/* other addresses still get in, up to the queue's bound */
	job_init(&j[3], "alice", "right", "10.0.0.2", &owner);
	CHECK_INT(submit(p, &j[3]), AUTH_SUBMIT_QUEUED);
	job_init(&j[4], "nobody", "right", "10.0.0.3", &owner);
	CHECK_INT(submit(p, &j[4]), AUTH_SUBMIT_QUEUED);
	job_init(&j[5], "alice", "wrong", "10.0.0.4", &owner);
	CHECK_INT(submit(p, &j[5]), AUTH_SUBMIT_BUSY);
	auth_pool_get_stats(p, &st);
	CHECK_INT(st.running, 1);
	CHECK_INT(st.queued, 3);
	CHECK_INT(st.refused_busy, 1);
	CHECK_INT(st.refused_limit, 1);
	allow(4);
	wait_for(&done_calls, 4);
	CHECK_INT(j[0].result, AUTH_RESULT_DENIED);
	CHECK_INT(j[1].result, AUTH_RESULT_DENIED);
	CHECK_INT(j[3].result, AUTH_RESULT_OK);
	CHECK_INT(j[4].result, AUTH_RESULT_DENIED);	/* unknown user */
	CHECK_INT(j[3].pass[0], 0);
	/* alice:right is remembered; nobody:right and wrong ones are not */
	job_init(&j[6], "alice", "right", "10.0.0.9", &owner);
	CHECK_INT(submit(p, &j[6]), -1);
	CHECK_INT(j[6].result, AUTH_RESULT_OK);
	job_init(&j[6], "nobody", "right", "10.0.0.9", &owner);
	CHECK_INT(submit(p, &j[6]), AUTH_SUBMIT_QUEUED);
	allow(1);
	wait_for(&done_calls, 5);
	job_init(&j[7], "alice", "wrong", "10.0.0.9", &owner);
	CHECK_INT(submit(p, &j[7]), AUTH_SUBMIT_QUEUED);
	allow(1);
	wait_for(&done_calls, 6);
	/* a new hash for alice (a reload) is a new key: checked again */
	job_init(&j[6], "alice", "right", "10.0.0.9", &owner);
	j[6].hash[5] = '0';
	CHECK_INT(submit(p, &j[6]), AUTH_SUBMIT_QUEUED);
	allow(1);
	wait_for(&done_calls, 7);
	auth_pool_get_stats(p, &st);
	CHECK_INT(st.checks, 7);
	CHECK_INT(st.cache_hits, 1);
	auth_pool_free(p);
}

static void test_release(void)
{
	struct auth_job j[4];
	struct auth_pool *p;
	int a, b;

	entered = allowed = done_calls = 0;
	p = auth_pool_new(&lim, held_check);
	CHECK(p != NULL);
	if (!p)
		return;
	job_init(&j[0], "alice", "right", "10.0.0.1", &a);
	CHECK_INT(submit(p, &j[0]), AUTH_SUBMIT_QUEUED);
	wait_for(&entered, 1);	/* held in its check */
	job_init(&j[1], "alice", "right", "10.0.0.2", &a);
	CHECK_INT(submit(p, &j[1]), AUTH_SUBMIT_QUEUED);
	job_init(&j[2], "alice", "right", "10.0.0.3", &b);
	CHECK_INT(submit(p, &j[2]), AUTH_SUBMIT_QUEUED);
	/*
	 * a's jobs, the queued one and the one held in its check, are both
	 * answered before release returns: it does not wait for the check
	 */
	auth_pool_release(p, &a);
	CHECK_INT(done_calls, 2);
	CHECK_INT(j[0].result, AUTH_RESULT_REFUSED);
	CHECK_INT(j[1].result, AUTH_RESULT_REFUSED);
	CHECK_INT(j[0].pass[0], 0);
	CHECK_INT(j[1].pass[0], 0);
	job_init(&j[3], "alice", "right", "10.0.0.4", &a);
	CHECK_INT(submit(p, &j[3]), AUTH_SUBMIT_BUSY);
	/* the check goes on: its success is remembered, j[0] untouched */
	allow(1);
	/* b's job was not a's business: it runs */
	wait_for(&entered, 2);
	allow(1);
	wait_for(&done_calls, 3);
	CHECK_INT(j[2].result, AUTH_RESULT_OK);
	CHECK_INT(j[0].result, AUTH_RESULT_REFUSED);
	auth_pool_forget(p, &a);
	job_init(&j[3], "alice", "wrong", "10.0.0.4", &a);
	CHECK_INT(submit(p, &j[3]), AUTH_SUBMIT_QUEUED);
	wait_for(&entered, 3);
	/*
	 * free with a job held in its check and one queued behind it: both
	 * answered at once; the worker frees the pool once let go (ASan
	 * would see a leak or a use after free otherwise)
	 */
	job_init(&j[1], "alice", "y", "10.0.0.2", &b);
	CHECK_INT(submit(p, &j[1]), AUTH_SUBMIT_QUEUED);
	auth_pool_free(p);
	CHECK_INT(done_calls, 5);
	CHECK_INT(j[3].result, AUTH_RESULT_REFUSED);
	CHECK_INT(j[1].result, AUTH_RESULT_REFUSED);
	allow(1);
}

UNIT_SUITE(auth_pool)
{
	test_bounds();
	test_release();
}
