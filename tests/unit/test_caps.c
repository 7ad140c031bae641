// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * caps.c: --capabilities.keep parsing, and the per-thread drop itself on a
 * thread of this test (the process keeps its own capabilities: that is the
 * point of dropping per thread).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <linux/capability.h>
#include "caps.h"
#include "test.h"


#define BIT(c)	((caps_mask)1 << (c))

static void test_parse(void)
{
	char err[200];
	caps_mask m;

	CHECK_INT(caps_parse_list("", &m, err, sizeof(err)), 0);
	CHECK_INT(m, 0);
	CHECK_INT(caps_parse_list("CAP_NET_RAW", &m, err, sizeof(err)), 0);
	CHECK_INT(m, BIT(CAP_NET_RAW));
	CHECK_INT(caps_parse_list("cap_bpf,CAP_Sys_Admin", &m, err, sizeof(err)), 0);
	CHECK_INT(m, BIT(CAP_BPF) | BIT(CAP_SYS_ADMIN));

	err[0] = '\0';
	CHECK_INT(caps_parse_list("CAP_BOGUS", &m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown capability 'CAP_BOGUS'") != NULL);
	CHECK(strchr(err, '\n') == NULL);
	CHECK_INT(caps_parse_list("12", &m, err, sizeof(err)), -EINVAL);
	CHECK_INT(caps_parse_list("NET_RAW", &m, err, sizeof(err)), -EINVAL);
	CHECK_INT(caps_parse_list("CAP_NET_RAW,", &m, err, sizeof(err)), -EINVAL);
	CHECK_INT(caps_parse_list(",CAP_NET_RAW", &m, err, sizeof(err)), -EINVAL);
	CHECK_INT(caps_parse_list("CAP_NET_RAW CAP_BPF", &m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "--capabilities.keep") != NULL);
}

static void test_format(void)
{
	char out[128];

	caps_format(0, out, sizeof(out));
	CHECK_STR(out, "none");
	caps_format(BIT(CAP_NET_RAW) | BIT(CAP_BPF), out, sizeof(out));
	CHECK_STR(out, "CAP_NET_RAW,CAP_BPF");
	caps_format(BIT(CAP_NET_RAW) | BIT(CAP_BPF), out, 8);
	CHECK_INT(strlen(out), 7);
}

struct drop_result {
	int ret;
	caps_mask eff_after;
	int nnp;
	char err[200];
};

static void *drop_thread(void *p)
{
	struct drop_result *r = p;

	r->ret = caps_drop_thread(BIT(CAP_NET_RAW), r->err, sizeof(r->err));
	r->eff_after = caps_effective();
	r->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	return NULL;
}

static void test_drop_on_a_thread(void)
{
	struct drop_result r = { .ret = 1 };
	caps_mask before = caps_effective();
	pthread_t t;

	if (!(before & BIT(CAP_SETPCAP)) || !(before & BIT(CAP_NET_RAW))) {
		SKIP("needs CAP_SETPCAP and CAP_NET_RAW (run as root)");
		return;
	}
	if (pthread_create(&t, NULL, drop_thread, &r)) {
		CHECK(!"pthread_create");
		return;
	}
	pthread_join(t, NULL);
	CHECK_INT(r.ret, 0);
	if (r.ret)
		fprintf(stderr, "caps_drop_thread: %s\n", r.err);
	CHECK_INT(r.eff_after, BIT(CAP_NET_RAW));
	CHECK_INT(r.nnp, 1);
	/* the rest of the process is untouched */
	CHECK_INT(caps_effective(), before);
}

UNIT_SUITE(caps)
{
	test_parse();
	test_format();
	test_drop_on_a_thread();
}
