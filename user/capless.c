// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include "capless.h"
#include "caps.h"

/*
 * The server's threads are created by a thread of ours that dropped every
 * capability as it started, before the main thread drops its own: so
 * libmicrohttpd's thread, and the one a SIGHUP reload may start, never
 * hold any, whatever the main thread holds (waiting for KVM) or keeps
 * (--capabilities.keep); a thread starts with its creator's capabilities.
 * It blocks the termination signals: they stay with the main thread and
 * interrupt its poll.  run_capless() hands it one call at a time.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, dropped, quit, done;
	int drop_err;
	int (*fn)(void *arg);	/* the call waiting, or NULL */
	void *arg;
	int ret;
} capless = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static void *capless_main(void *unused)
{
	int (*fn)(void *arg);
	char err[256];
	sigset_t set;
	int e, ret;

	(void)unused;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	prctl(PR_SET_NAME, "kue-capless", 0, 0, 0);
	e = caps_drop_thread(0, err, sizeof(err));
	if (e)
		fprintf(stderr, "kvm-unsync-exporter: HTTP thread: %s\n", err);
	pthread_mutex_lock(&capless.lock);
	capless.drop_err = e;
	capless.dropped = true;
	pthread_cond_broadcast(&capless.cond);
	while (!e && !capless.quit) {
		if (capless.fn && !capless.done) {
			fn = capless.fn;
			pthread_mutex_unlock(&capless.lock);
			ret = fn(capless.arg);
			pthread_mutex_lock(&capless.lock);
			capless.ret = ret;
			capless.done = true;
			pthread_cond_broadcast(&capless.cond);
			continue;
		}
		pthread_cond_wait(&capless.cond, &capless.lock);
	}
	pthread_mutex_unlock(&capless.lock);
	return NULL;
}

/* Start it and wait for its drop: 0, or -1 (said why). */
int capless_start(void)
{
	int e;

	e = pthread_create(&capless.thread, NULL, capless_main, NULL);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot start a thread: %s\n",
			strerror(e));
		return -1;
	}
	capless.started = true;
	pthread_mutex_lock(&capless.lock);
	while (!capless.dropped)
		pthread_cond_wait(&capless.cond, &capless.lock);
	e = capless.drop_err;
	pthread_mutex_unlock(&capless.lock);
	return e ? -1 : 0;
}

/* fn(arg) on the capless thread; its result, or -1 if there is none. */
int run_capless(int (*fn)(void *arg), void *arg)
{
	int ret;

	pthread_mutex_lock(&capless.lock);
	if (!capless.started || capless.drop_err) {
		pthread_mutex_unlock(&capless.lock);
		return -1;
	}
	capless.fn = fn;
	capless.arg = arg;
	capless.done = false;
	pthread_cond_broadcast(&capless.cond);
	while (!capless.done)
		pthread_cond_wait(&capless.cond, &capless.lock);
	ret = capless.ret;
	capless.fn = NULL;
	pthread_mutex_unlock(&capless.lock);
	return ret;
}

void capless_stop(void)
{
	if (!capless.started)
		return;
	pthread_mutex_lock(&capless.lock);
	capless.quit = true;
	pthread_cond_broadcast(&capless.cond);
	pthread_mutex_unlock(&capless.lock);
	pthread_join(capless.thread, NULL);
	capless.started = false;
}

