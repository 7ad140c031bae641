// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The HTTP connection guard (user/conn_guard.c) on socket pairs: the
 * guard holds one end, as libmicrohttpd would, and the test reads the
 * other, where a shutdown shows as the end of the stream.  No check
 * depends on how fast the machine is: a deadline that must fire is a few
 * milliseconds and is waited for up to seconds; one that must not is a
 * minute away.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "conn_guard.h"
#include "test.h"

#define MINUTE_MS	60000
#define WAIT_MS		10000	/* for a deadline of a few ms to act */

struct pair {
	int ours, peer;		/* ours: the server's end */
	struct conn_guard_conn *c;
};

static int pair_open(struct pair *p)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	p->ours = sv[0];
	p->peer = sv[1];
	p->c = NULL;
	return 0;
}

/* A TCP connection over loopback from address src: ours is the accepted end. */
static int pair_open_from(struct pair *p, int lfd, const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	p->c = NULL;
	p->ours = -1;
	if (getsockname(lfd, (struct sockaddr *)&a, &len))
		return -1;
	p->peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->peer < 0)
		return -1;
	{
		struct sockaddr_in s = { .sin_family = AF_INET };

		inet_pton(AF_INET, src, &s.sin_addr);
		if (bind(p->peer, (struct sockaddr *)&s, sizeof(s)) ||
		    connect(p->peer, (struct sockaddr *)&a, sizeof(a)))
			goto fail;
	}
	p->ours = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (p->ours >= 0)
		return 0;
fail:
	close(p->peer);
	return -1;
}

static int listener(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pair_close(struct conn_guard *g, struct pair *p)
{
	conn_guard_closed(g, p->c);
	close(p->ours);
	close(p->peer);
}

/* 1: the peer sees the end of the stream within ms; 0: not. */
static int peer_sees_eof(const struct pair *p, int ms)
{
	struct pollfd pfd = { .fd = p->peer, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, ms) != 1)
		return 0;
	return recv(p->peer, &c, 1, MSG_DONTWAIT) == 0;
}

static void test_deadline(void)
{
	struct conn_guard_stats st;
	struct conn_guard *g;
	struct pair a, b;

	/* first request due in 5 ms, the next a minute after an answer */
	g = conn_guard_new(8, 8, 5, MINUTE_MS);
	CHECK(g != NULL);
	if (!g || pair_open(&a) || pair_open(&b))
		return;
	a.c = conn_guard_opened(g, a.ours);
	CHECK(a.c != NULL);
	CHECK(peer_sees_eof(&a, WAIT_MS));
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_deadline, 1);
	CHECK_INT(st.open, 1);		/* until the server closes it */
	pair_close(g, &a);
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.open, 0);
	conn_guard_free(g);

	/* an answer restarts the clock with the next request's deadline */
	g = conn_guard_new(8, 8, MINUTE_MS, 5);
	CHECK(g != NULL);
	if (!g)
		return;
	b.c = conn_guard_opened(g, b.ours);
	conn_guard_request(g, b.c);
	CHECK(!peer_sees_eof(&b, 0));
	conn_guard_answered(g, b.c);
	CHECK(peer_sees_eof(&b, WAIT_MS));
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_deadline, 1);
	CHECK_INT(st.closed_evicted, 0);
	pair_close(g, &b);
	conn_guard_free(g);
}

/*
 * A guard of a minute's deadlines and nr socket pairs it does not know
 * yet, or NULL (a failed check) with nothing left open.
 */
static struct conn_guard *guard_with_pairs(unsigned int soft_limit,
					   unsigned int addr_limit,
					   struct pair *p, int nr)
{
	struct conn_guard *g;
	int i;

	g = conn_guard_new(soft_limit, addr_limit, MINUTE_MS, MINUTE_MS);
	CHECK(g != NULL);
	for (i = 0; g && i < nr; i++) {
		if (!pair_open(&p[i]))
			continue;
		CHECK(!"socketpair");
		while (i--)
			pair_close(g, &p[i]);
		conn_guard_free(g);
		return NULL;
	}
	return g;
}

/* Close the pairs, and check that the guard has forgotten them all. */
static void guard_with_pairs_free(struct conn_guard *g, struct pair *p, int nr)
{
	struct conn_guard_stats st;
	int i;

	for (i = 0; i < nr; i++)
		pair_close(g, &p[i]);
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.open, 0);
	conn_guard_free(g);
}

static void test_evict(void)
{
	struct conn_guard_stats st;
	struct pair p[5];
	struct conn_guard *g;

	g = guard_with_pairs(2, 8, p, 5);
	if (!g)
		return;
	/* p0 is being answered, p1 waits for its request */
	p[0].c = conn_guard_opened(g, p[0].ours);
	conn_guard_request(g, p[0].c);
	p[1].c = conn_guard_opened(g, p[1].ours);
	/* a third: p1 goes, though p0 is older, as it is in a request */
	p[2].c = conn_guard_opened(g, p[2].ours);
	CHECK(peer_sees_eof(&p[1], 0));
	CHECK(!peer_sees_eof(&p[0], 0));
	CHECK(!peer_sees_eof(&p[2], 0));
	/* p1, shut down but not closed yet, does not count: p2 goes */
	p[3].c = conn_guard_opened(g, p[3].ours);
	CHECK(peer_sees_eof(&p[2], 0));
	CHECK(!peer_sees_eof(&p[0], 0));
	/* p0 answered, so waiting, and now the longest waiting one */
	conn_guard_answered(g, p[0].c);
	conn_guard_closed(g, p[1].c);
	p[1].c = NULL;
	p[4].c = conn_guard_opened(g, p[4].ours);
	CHECK(!peer_sees_eof(&p[0], 0));	/* p3 waited longer */
	CHECK(peer_sees_eof(&p[3], 0));
	CHECK(!peer_sees_eof(&p[4], 0));
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_evicted, 3);
	CHECK_INT(st.closed_deadline, 0);
	CHECK_INT(st.open, 4);
	guard_with_pairs_free(g, p, 5);
}

/*
 * Two live connections per address at most: a third from 127.0.0.2 drops
 * 127.0.0.2's longest-waiting one, never 127.0.0.3's older one; one whose
 * client hung up (a kept-alive connection closed to open the next) counts
 * for nothing and is not the one dropped.
 */
static void test_per_address(void)
{
	static const char *const src[] = {
		"127.0.0.3", "127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.2",
	};
	struct conn_guard_stats st;
	struct pair p[5];
	struct conn_guard *g;
	int i, n = 0, lfd = listener();

	g = conn_guard_new(8, 2, MINUTE_MS, MINUTE_MS);
	CHECK(g != NULL && lfd >= 0);
	if (!g || lfd < 0)
		goto free;
	for (i = 0; i < 5; i++, n++)
		if (pair_open_from(&p[i], lfd, src[i]))
			break;
	if (n < 5) {
		SKIP("cannot connect from 127.0.0.2 and 127.0.0.3");
		goto out;
	}
	p[0].c = conn_guard_opened(g, p[0].ours);	/* .3, the oldest */
	p[1].c = conn_guard_opened(g, p[1].ours);
	p[2].c = conn_guard_opened(g, p[2].ours);
	conn_guard_request(g, p[1].c);
	conn_guard_answered(g, p[1].c);		/* kept alive, waiting */
	/* p1's client closes it for a new one: no slot of .2's is taken */
	close(p[1].peer);
	p[1].peer = -1;
	p[3].c = conn_guard_opened(g, p[3].ours);
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_evicted, 0);
	/* now .2 has p2 and p3 live: p4 drops p2, its longest waiting */
	p[4].c = conn_guard_opened(g, p[4].ours);
	CHECK(peer_sees_eof(&p[2], 0));
	CHECK(!peer_sees_eof(&p[0], 0));
	CHECK(!peer_sees_eof(&p[3], 0));
	CHECK(!peer_sees_eof(&p[4], 0));
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_evicted, 1);
	CHECK_INT(st.open, 5);
out:
	for (i = 0; i < n; i++) {
		conn_guard_closed(g, p[i].c);
		close(p[i].ours);
		if (p[i].peer >= 0)
			close(p[i].peer);
	}
free:
	if (lfd >= 0)
		close(lfd);
	conn_guard_free(g);
}

/*
 * A scraper's kept-alive connection, older than the idle ones opened
 * after it, outlives them: a newcomer drops the oldest connection that
 * never sent a request, and the kept-alive one only when no such is left.
 */
static void test_keep_alive_outlives_idle(void)
{
	struct conn_guard_stats st;
	struct pair p[5];
	struct conn_guard *g;

	g = guard_with_pairs(8, 3, p, 5);
	if (!g)
		return;
	p[0].c = conn_guard_opened(g, p[0].ours);	/* the scraper */
	conn_guard_request(g, p[0].c);
	conn_guard_answered(g, p[0].c);
	p[1].c = conn_guard_opened(g, p[1].ours);	/* idle ones */
	p[2].c = conn_guard_opened(g, p[2].ours);
	p[3].c = conn_guard_opened(g, p[3].ours);
	CHECK(peer_sees_eof(&p[1], 0));
	CHECK(!peer_sees_eof(&p[0], 0));
	CHECK(!peer_sees_eof(&p[2], 0));
	CHECK(!peer_sees_eof(&p[3], 0));
	/* p2 and p3 in requests: now the kept-alive one goes */
	conn_guard_request(g, p[2].c);
	conn_guard_request(g, p[3].c);
	p[4].c = conn_guard_opened(g, p[4].ours);
	CHECK(peer_sees_eof(&p[0], 0));
	CHECK(!peer_sees_eof(&p[2], 0));
	CHECK(!peer_sees_eof(&p[3], 0));
	conn_guard_get_stats(g, &st);
	CHECK_INT(st.closed_evicted, 2);
	guard_with_pairs_free(g, p, 5);
}

UNIT_SUITE(conn_guard)
{
	test_keep_alive_outlives_idle();
	test_deadline();
	test_evict();
	test_per_address();
}
