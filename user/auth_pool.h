/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Password checks off the HTTP server's thread.
 *
 * A bcrypt check costs a fifth of a second of CPU at cost 12, and anyone
 * who can reach the port can ask for one: run on the thread that serves
 * every connection, a few clients guessing passwords hold back everyone's
 * scrapes.  The pool runs them on a few threads of its own instead, and
 * bounds what a client can make it do:
 *
 *  - a bound on checks queued or running, queue + workers: one past it
 *    is refused at once (AUTH_SUBMIT_BUSY: the server answers 503);
 *  - a per-address budget of checks queued or running
 *    (AUTH_SUBMIT_LIMIT: 429), so one address cannot fill the queue;
 *  - a cache of recent successes, keyed by an HMAC of (user, password,
 *    hash) under a key drawn at start, never the password itself: a
 *    scraper that sends the same credentials every scrape costs one check,
 *    not one per scrape (auth_pool_cached).  A new hash for the user (a
 *    reload) makes a new key, so an old password stops working at once.
 *
 * A job is the caller's; the pool calls its done() once, from a worker
 * or from auth_pool_release(), and never touches it again after that.
 * Nothing here waits for a check to finish: a worker checks its own copy
 * of the credentials, so a job can be answered (REFUSED) while its check
 * runs on.
 */
#ifndef __AUTH_POOL_H
#define __AUTH_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_KEY_LEN	32	/* HMAC-SHA256 */
#define AUTH_FIELD_MAX	256	/* user name or password, bytes with NUL */
#define AUTH_HASH_MAX	64	/* a bcrypt hash is 60 characters */

enum auth_result {
	AUTH_RESULT_OK,		/* known user, right password */
	AUTH_RESULT_DENIED,	/* unknown user, or wrong password */
	AUTH_RESULT_REFUSED,	/* not checked: the server is stopping */
};

struct auth_job {
	/* set by the caller before auth_pool_submit() */
	char user[AUTH_FIELD_MAX];
	char pass[AUTH_FIELD_MAX];	/* wiped once checked */
	char hash[AUTH_HASH_MAX];	/* the user's, or the dummy one */
	bool known;			/* user is configured */
	struct sockaddr_storage peer;	/* family 0: unknown */
	const void *owner;		/* released together (a daemon) */
	void (*done)(struct auth_job *j);
	void *done_ctx;
	/* set by the pool */
	enum auth_result result;
	bool keyed;			/* key was computed */
	uint8_t key[AUTH_KEY_LEN];
	struct auth_job *next;
};

enum auth_submit {
	AUTH_SUBMIT_QUEUED,	/* done() will be called */
	AUTH_SUBMIT_BUSY,	/* no room, or owner released */
	AUTH_SUBMIT_LIMIT,	/* the address's budget is spent */
};

struct auth_pool_limits {
	unsigned int workers;	/* threads, at most AUTH_POOL_MAX_WORKERS */
	unsigned int queue;	/* checks waiting for a worker */
	unsigned int per_addr;	/* checks queued or running, per address */
	unsigned int cache;	/* successes remembered */
};

#define AUTH_POOL_MAX_WORKERS	8

struct auth_pool_stats {
	uint64_t checks;	/* run by a worker */
	uint64_t cache_hits;
	uint64_t refused_busy, refused_limit;
	unsigned int queued, running;	/* now */
};

/* check(hash, password): the password matches; web_bcrypt_check. */
typedef bool (*auth_check_fn)(const char *hash, const char *password);

/* NULL when out of memory or a thread cannot start (errno says which). */
struct auth_pool *auth_pool_new(const struct auth_pool_limits *l,
				auth_check_fn check);
/*
 * Release every job (as auth_pool_release(NULL)) and stop the workers:
 * idle ones are waited for; one in a check is not, and the last such one
 * frees the pool when its check ends.
 */
void auth_pool_free(struct auth_pool *p);

/*
 * j's (user, password, hash) is a recent success: result OK, password
 * wiped, nothing to check.  Computes j's cache key either way.
 */
bool auth_pool_cached(struct auth_pool *p, struct auth_job *j);
/*
 * Queue j for a check, after auth_pool_cached(), or say at once why not
 * (see enum auth_submit; the password is then wiped).
 */
enum auth_submit auth_pool_submit(struct auth_pool *p, struct auth_job *j);
/*
 * Before owner goes away: its jobs, queued or being checked, are done()
 * as REFUSED before this returns (a check under way is not waited for),
 * and later submits for owner are BUSY until auth_pool_forget(owner).
 * NULL: every owner.
 */
void auth_pool_release(struct auth_pool *p, const void *owner);
/* owner is gone: its address may be reused by a new one. */
void auth_pool_forget(struct auth_pool *p, const void *owner);

void auth_pool_get_stats(struct auth_pool *p, struct auth_pool_stats *s);

#endif /* __AUTH_POOL_H */
