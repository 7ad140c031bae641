// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Whole scrapes with one probe not attached: the families it counts have
 * no per-VM series (not zeroes: "no walks" would be a lie), the others
 * keep theirs, and kvm_unsync_probe_attached says which probe is missing.
 */
#include <stdlib.h>
#include "rig.h"
#include "test.h"

#define ARGV(s)	s, sizeof(s) - 1

/* VM a (tgid 100): one sync with one walk, one page synced and unsynced. */
static int rig_with_vm(struct rig *r, const char *missing)
{
	struct vm_guests *v;

	if (rig_init(r, 0))
		return -1;
	rig_probes(r, missing);
	fake_proc_add(r->proc, 100, ARGV("qemu\0-name\0guest=a\0"), "qemu-kvm",
		      1000);
	v = fake_map_value(&r->vm, 100, 0);
	if (!v)
		return -1;
	v->guest[GUEST_L1].sync_calls[SYNC_OK] = 1;
	v->guest[GUEST_L1].walks[CTX_SYNC][WALK_DONE] = 1;
	v->guest[GUEST_L1].frames[CTX_SYNC] = 2;
	v->guest[GUEST_L1].pages_unsynced = 1;
	v->guest[GUEST_L1].pages_synced = 1;
	return 0;
}

#define A	"{vm=\"a\",pid=\"100\",guest=\"l1\""

static void test_all_attached(void)
{
	struct rig r;
	const char *t;

	if (rig_with_vm(&r, NULL)) {
		CHECK(!"rig");
		return;
	}
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_sync_calls_total" A ",result=\"ok\"} 1");
	CHECK_LINE(t, "kvm_unsync_walks_total" A ",context=\"sync\",result=\"done\"} 1");
	CHECK_LINE(t, "kvm_unsync_walk_frames_total" A ",context=\"sync\"} 2");
	CHECK_LINE(t, "kvm_unsync_restarts_total" A "} 0");
	CHECK_LINE(t, "kvm_unsync_walk_leaves_total" A ",context=\"zap\"} 0");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_total" A ",context=\"zap\",site=\"walk\"} 0");
	CHECK_LINE(t, "kvm_unsync_pages_unsynced_total" A "} 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total" A "} 1");
	rig_free(&r);
}

static void test_walk_hook_missing(void)
{
	struct rig r;
	const char *t;

	if (rig_with_vm(&r, "__mmu_unsync_walk")) {
		CHECK(!"rig");
		return;
	}
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"__mmu_unsync_walk\","
		      "mode=\"none\"} 0");
	CHECK_LINE(t, "# TYPE kvm_unsync_walks_total counter");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_walks_total{");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_walk_frames_total{");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_restarts_total{");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_walk_leaves_total{");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_bitmap_clears_total{");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_pvec_depth_bucket{");
	CHECK_LINE(t, "kvm_unsync_sync_calls_total" A ",result=\"ok\"} 1");
	CHECK_LINE(t, "kvm_unsync_pages_unsynced_total" A "} 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total" A "} 1");
	CHECK_LINE(t, "kvm_unsync_vms 1");
	rig_free(&r);
}

static void test_tracepoint_missing(void)
{
	struct rig r;
	const char *t;

	if (rig_with_vm(&r, "kvm_mmu_sync_page")) {
		CHECK(!"rig");
		return;
	}
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"kvm_mmu_sync_page\","
		      "mode=\"tracepoint\"} 0");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_pages_synced_total{");
	CHECK_LINE(t, "kvm_unsync_pages_unsynced_total" A "} 1");
	CHECK_LINE(t, "kvm_unsync_walks_total" A ",context=\"sync\",result=\"done\"} 1");
	rig_free(&r);
}

UNIT_SUITE(probe_missing)
{
	test_all_attached();
	test_walk_hook_missing();
	test_tracepoint_missing();
}
