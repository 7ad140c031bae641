// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* log_limit.c: at most LOG_LIMIT_LINES a window, and the count left out. */
#include "log_limit.h"
#include "test.h"

static void test_window(void)
{
	struct log_limit l = { 0 };
	unsigned long dropped;
	int i, ok = 0;

	for (i = 0; i < 100; i++)
		ok += log_limit_allow(&l, 1000, &dropped);
	CHECK_INT(ok, LOG_LIMIT_LINES);
	CHECK_INT(l.suppressed, 100 - LOG_LIMIT_LINES);
	/* still the same window */
	CHECK(!log_limit_allow(&l, 1000 + LOG_LIMIT_WINDOW_S - 1, &dropped));
	CHECK_INT(dropped, 0);
	/* the next one says how many were left out, then logs again */
	CHECK(log_limit_allow(&l, 1000 + LOG_LIMIT_WINDOW_S, &dropped));
	CHECK_INT(dropped, 100 - LOG_LIMIT_LINES + 1);
	CHECK(log_limit_allow(&l, 1000 + LOG_LIMIT_WINDOW_S, &dropped));
	CHECK_INT(dropped, 0);
}

static void test_quiet_source_never_limited(void)
{
	struct log_limit l = { 0 };
	unsigned long dropped;
	int i;

	for (i = 0; i < 1000; i++) {
		CHECK(log_limit_allow(&l, 5000 + i * LOG_LIMIT_WINDOW_S, &dropped));
		CHECK_INT(dropped, 0);
	}
}

static void test_clock_backwards(void)
{
	struct log_limit l = { 0 };
	unsigned long dropped;
	int i;

	for (i = 0; i < LOG_LIMIT_LINES + 3; i++)
		log_limit_allow(&l, 2000, &dropped);
	/* a clock set back starts a new window rather than muting for good */
	CHECK(log_limit_allow(&l, 10, &dropped));
	CHECK_INT(dropped, 3);
}

UNIT_SUITE(log_limit)
{
	test_window();
	test_quiet_source_never_limited();
	test_clock_backwards();
}
