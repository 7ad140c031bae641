// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The --trace printer (trace.c): a sync and a zap-walk record, as text and
 * as JSON lines, carry every field and the guest level by its label value.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* open_memstream */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "test.h"
#include "trace.h"

/* What trace_sync() prints for e. */
static char *printed(const struct sync_event *e, bool json)
{
	struct trace_ctx t = { .mode = TRACE_SYNCS, .json = json };
	char *buf = NULL;
	size_t len = 0;

	t.out = open_memstream(&buf, &len);
	if (!t.out)
		return NULL;
	trace_sync(&t, e);
	fclose(t.out);
	return buf;
}

static void test_guest_printed(void)
{
	struct sync_event e = {
		.hdr = { .type = EV_SYNC, .tgid = 42 }, .tid = 43,
		.duration_ns = 1500, .can_yield = 1, .root_level = 4,
		.walks = 2, .restarts = 1, .frames = 6, .leaves = 14,
		.clears_parents = 16, .max_nr = 16, .guest = GUEST_L2,
		.comm = "qemu",
	};
	char *s;

	s = printed(&e, true);
	CHECK_STR(s, "{\"type\":\"sync\",\"pid\":42,\"tid\":43,\"comm\":\"qemu\","
		  "\"result\":0,\"duration_ns\":1500,\"can_yield\":1,"
		  "\"root_level\":4,\"walks\":2,\"restarts\":1,\"frames\":6,"
		  "\"leaves\":14,\"clears_walk\":0,\"clears_parents\":16,"
		  "\"max_nr\":16,\"guest\":\"l2\"}\n");
	free(s);

	e.hdr.type = EV_ZAP_WALK;
	e.guest = GUEST_L1;
	s = printed(&e, false);
	CHECK_STR(s, "zap_walk pid=42 tid=43 comm=qemu result=0 dur=1.500us "
		  "can_yield=1 root_level=4 walks=2 restarts=1 frames=6 "
		  "leaves=14 clears_walk=0 clears_parents=16 max_nr=16 "
		  "guest=l1\n");
	free(s);

	/* a level the daemon does not know is shown as such, not as l1 */
	e.guest = GUEST_MAX;
	s = printed(&e, false);
	CHECK(s && strstr(s, " guest=?\n"));
	free(s);
}

UNIT_SUITE(trace)
{
	test_guest_printed();
}
