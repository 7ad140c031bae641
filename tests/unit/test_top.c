// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The live view's text (top.c) from two snapshots 2 s apart, figures
 * worked out by hand: VM "a" did 20 syncs in the interval (10.0/s) with
 * 40 walks (2.00 per sync), 20 restarts (1.00), 100 frames (5.00), 80
 * leaves (4.00), 0 walk clears and 80 clear_parents clears (4.00), 40
 * pages unsynced (20.0/s) and 80 synced (40.0/s); "b" is new (everything
 * since its start: 5 syncs, 15 restarts, 3.00 per sync); "c" did nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include "duration_hist.h"
#include "test.h"
#include "top.h"


static void set(struct top_vm *v, const char *name, __u32 pid, __u64 ok,
		__u64 done, __u64 enospc, __u64 frames, __u64 leaves,
		__u64 cp, __u64 unsynced, __u64 synced)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->pid = pid;
	v->st.sync_calls[SYNC_OK] = ok;
	v->st.walks[CTX_SYNC][WALK_DONE] = done;
	v->st.walks[CTX_SYNC][WALK_ENOSPC] = enospc;
	v->st.restarts = enospc;
	v->st.frames[CTX_SYNC] = frames;
	v->st.leaves[CTX_SYNC] = leaves;
	v->st.clears[CTX_SYNC][SITE_WALK] = 5;
	v->st.clears[CTX_SYNC][SITE_CLEAR_PARENTS] = cp;
	v->st.pages_unsynced = unsynced;
	v->st.pages_synced = synced;
	/* zap walks are not a sync's: they must not move the per-sync figures */
	v->st.frames[CTX_ZAP] = frames * 3;
}

static const char *line(const char *fmt, ...)
{
	static char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

UNIT_SUITE(top)
{
	struct top_vm p[2], c[3];
	struct top_snap prev = { .vms = p, .nr_vms = 2 };
	struct top_snap cur = { .vms = c, .nr_vms = 3 };
	enum top_sort sort;
	char buf[4096], small[16];
	const char *a_row, *b_row, *c_row;
	size_t need;
	__u64 calls;

	set(&p[0], "a", 10, 10, 10, 20, 100, 50, 45, 50, 50);
	set(&p[1], "c", 30, 7, 7, 0, 7, 7, 7, 7, 7);
	set(&c[0], "c", 30, 7, 7, 0, 7, 7, 7, 7, 7);
	set(&c[1], "a", 10, 30, 30, 40, 200, 130, 125, 90, 130);
	set(&c[2], "b", 20, 5, 5, 15, 20, 5, 0, 5, 5);
	c[1].has_kvm = true;
	c[1].kvm.val[KVM_STAT_MMU_UNSYNC] = 7;
	prev.hists.sync_duration[10] = 5;
	cur.hists.sync_duration[10] = 24;
	cur.hists.sync_duration[20] = 1;
	cur.hists.sync_duration_sum_ns = 20000;
	cur.hists.pvec_depth[CTX_SYNC][16] = 20;
	cur.hists.pvec_depth[CTX_SYNC][4] = 20;

	need = top_render(&prev, &cur, 2.0, TOP_SORT_SYNCS, 0, buf,
			  sizeof(buf));
	CHECK_INT(need, strlen(buf));
	a_row = strstr(buf, "\na ");
	b_row = strstr(buf, "\nb ");
	c_row = strstr(buf, "\nc ");
	CHECK(a_row && b_row && c_row && a_row < b_row && b_row < c_row);
	CHECK_LINE(buf, line("%-16s %7u %8.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.1f %8.1f %8llu",
			     "a", 10, 10.0, 2.0, 1.0, 5.0, 4.0, 0.0, 4.0, 20.0,
			     40.0, 7ULL));
	CHECK_LINE(buf, line("%-16s %7u %8.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.1f %8.1f %8s",
			     "b", 20, 2.5, 4.0, 3.0, 4.0, 1.0, 1.0, 0.0, 2.5,
			     2.5, "-"));
	/* no sync in the interval: nothing to divide by */
	CHECK_LINE(buf, line("%-16s %7u %8.1f %8s %8s %8s %8s %8s %8s %8.1f %8.1f %8s",
			     "c", 30, 0.0, "-", "-", "-", "-", "-", "-", 0.0,
			     0.0, "-"));
	/* 19 of 20 syncs < 1024 ns, the 20th < 2^20 ns: p99 is the latter */
	CHECK_LINE(buf, "sync duration: mean 1.00 us, p99 < 1048.58 us (20 syncs)");
	CHECK_LINE(buf, "pvec->nr at walk exit (nr:walks): sync 4:20 16:20 | zap -");

	/* sorted by restarts per sync: b (3.00), a (1.00), c (-) */
	top_render(&prev, &cur, 2.0, TOP_SORT_RESTARTS, 0, buf, sizeof(buf));
	a_row = strstr(buf, "\na ");
	b_row = strstr(buf, "\nb ");
	c_row = strstr(buf, "\nc ");
	CHECK(a_row && b_row && c_row && b_row < a_row && a_row < c_row);
	/* two rows only, and say how many are not shown */
	top_render(&prev, &cur, 2.0, TOP_SORT_PID, 2, buf, sizeof(buf));
	CHECK(strstr(buf, "\na ") && strstr(buf, "\nb "));
	CHECK(!strstr(buf, "\nc "));
	CHECK_LINE(buf, "(1 more VMs)");
	/* snprintf-style: cut, terminated, and the length it needs */
	CHECK_INT(top_render(&prev, &cur, 2.0, TOP_SORT_SYNCS, 0, small,
			     sizeof(small)), need);
	CHECK_INT(strlen(small), sizeof(small) - 1);

	/* the last duration slot has no upper bound */
	memset(cur.hists.sync_duration, 0, sizeof(cur.hists.sync_duration));
	cur.hists.sync_duration[DURATION_SLOTS - 1] = 1;
	CHECK_INT(duration_quantile_slot(cur.hists.sync_duration, NULL, 99,
					 &calls), DURATION_SLOTS - 1);
	CHECK_INT(calls, 1);
	CHECK(isinf(duration_slot_below_us(DURATION_SLOTS - 1)));
	CHECK(duration_slot_below_us(0) == 0.001);
	memset(cur.hists.sync_duration, 0, sizeof(cur.hists.sync_duration));
	CHECK_INT(duration_quantile_slot(cur.hists.sync_duration, NULL, 99,
					 &calls), -1);

	CHECK_INT(top_sort_parse("restarts", &sort), 0);
	CHECK_INT(sort, TOP_SORT_RESTARTS);
	CHECK_INT(top_sort_parse("bogus", &sort), -EINVAL);
	CHECK_INT(top_sort_key('n', &sort), 0);
	CHECK_INT(sort, TOP_SORT_NAME);
}
