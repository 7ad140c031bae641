// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Per-CPU summing and map walking of collect.c, against fake maps. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include "collect.h"
#include "fake.h"
#include "test.h"

#define NCPUS	4

static void test_stride_and_sum(void)
{
	/* two __u64 fields per CPU, 3 CPUs, as a kernel buffer holds them */
	__u64 percpu[3][2] = { { 1, 10 }, { 2, 20 }, { UINT64_MAX, 30 } };
	__u64 sum[2];
	unsigned char odd[1 + sizeof(percpu)];

	CHECK_INT(percpu_stride(8), 8);
	CHECK_INT(percpu_stride(12), 16);
	CHECK_INT(percpu_stride(sizeof(struct vm_stats)),
		  sizeof(struct vm_stats));

	percpu_sum_u64(sum, percpu, sizeof(percpu[0]), 3);
	CHECK_INT(sum[0], 2);		/* 1 + 2 + (2^64 - 1) wraps to 2 */
	CHECK_INT(sum[1], 60);
	percpu_sum_u64(sum, percpu, sizeof(percpu[0]), 1);
	CHECK_INT(sum[0], 1);
	CHECK_INT(sum[1], 10);
	/* an unaligned source buffer is fine */
	memcpy(odd + 1, percpu, sizeof(percpu));
	percpu_sum_u64(sum, odd + 1, sizeof(percpu[0]), 3);
	CHECK_INT(sum[1], 60);
}

struct maps {
	struct fake_map vm, h, self;
	struct collect_src src;
};

static void maps_init(struct maps *m)
{
	fake_map_init(&m->vm, sizeof(struct vm_guests), NCPUS);
	fake_map_init(&m->h, sizeof(struct hists), NCPUS);
	fake_map_init(&m->self, sizeof(struct self_stats), NCPUS);
	fake_map_reader(&m->vm, &m->src.vm_stats);
	fake_map_reader(&m->h, &m->src.hists);
	fake_map_reader(&m->self, &m->src.self_stats);
	m->src.ncpus = NCPUS;
	/* the arrays always have their key 0 */
	fake_map_value(&m->h, 0, 0);
	fake_map_value(&m->self, 0, 0);
}

static void maps_free(struct maps *m)
{
	fake_map_free(&m->vm);
	fake_map_free(&m->h);
	fake_map_free(&m->self);
}

/*
 * Spread value over the CPUs: cpu c gets (c + 1) * unit, at guest level
 * l1; l2 gets 7 * unit syncs on cpu 1 only.
 */
static void add_vm(struct maps *m, __u32 tgid, __u64 unit)
{
	struct vm_guests *g;
	struct vm_stats *v;
	int c;

	for (c = 0; c < NCPUS; c++) {
		g = fake_map_value(&m->vm, tgid, c);
		v = &g->guest[GUEST_L1];
		v->sync_calls[SYNC_OK] = (c + 1) * unit;
		v->walks[CTX_ZAP][WALK_ENOSPC] = unit;
		v->pages_synced = c == 2 ? unit : 0;
		g->guest[GUEST_L2].sync_calls[SYNC_OK] = c == 1 ? 7 * unit : 0;
	}
}

static void test_collect_maps(void)
{
	struct snapshot s;
	struct maps m;
	struct hists *h;
	int c;

	maps_init(&m);
	snapshot_init(&s);
	add_vm(&m, 300, 1);
	add_vm(&m, 100, 10);
	add_vm(&m, 200, 100);
	for (c = 0; c < NCPUS; c++) {
		h = fake_map_value(&m.h, 0, c);
		h->pvec_depth[CTX_SYNC][16] = 1;
		h->sync_duration[DURATION_SLOTS - 1] = 2;
		h->sync_duration_sum_ns = 1000;
		((struct self_stats *)fake_map_value(&m.self, 0, c))
			->orphan_exits = c;
	}

	CHECK_INT(collect_from(&s, &m.src), 0);
	CHECK_INT(s.nr_vms, 3);
	/* sorted by tgid whatever the map order */
	CHECK_INT(s.vms[0].tgid, 100);
	CHECK_INT(s.vms[1].tgid, 200);
	CHECK_INT(s.vms[2].tgid, 300);
	/* 1 + 2 + 3 + 4 = 10 units */
	CHECK_INT(s.vms[0].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 100);
	CHECK_INT(s.vms[1].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 1000);
	CHECK_INT(s.vms[2].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 10);
	CHECK_INT(s.vms[1].stats.guest[GUEST_L1].walks[CTX_ZAP][WALK_ENOSPC],
		  400);
	CHECK_INT(s.vms[1].stats.guest[GUEST_L1].pages_synced, 100);
	CHECK_INT(s.vms[1].stats.guest[GUEST_L1].sync_calls[SYNC_EINTR], 0);
	/* the levels are summed over CPUs apart, and only by the helper */
	CHECK_INT(s.vms[1].stats.guest[GUEST_L2].sync_calls[SYNC_OK], 700);
	CHECK_INT(s.vms[1].stats.guest[GUEST_L2].pages_synced, 0);
	{
		struct vm_stats t;

		vm_guests_total(&t, &s.vms[1].stats);
		CHECK_INT(t.sync_calls[SYNC_OK], 1000 + 700);
		CHECK_INT(t.walks[CTX_ZAP][WALK_ENOSPC], 400);
		CHECK_INT(t.pages_synced, 100);
		CHECK(!vm_stats_zero(&t));
		CHECK(vm_stats_zero(&(struct vm_stats){ 0 }));
	}
	CHECK_INT(s.hists.pvec_depth[CTX_SYNC][16], NCPUS);
	CHECK_INT(s.hists.sync_duration[DURATION_SLOTS - 1], 2 * NCPUS);
	CHECK_INT(s.hists.sync_duration_sum_ns, 1000 * NCPUS);
	CHECK_INT(s.self.orphan_exits, 0 + 1 + 2 + 3);
	CHECK_INT(snapshot_find(&s, 200), 1);
	CHECK_INT(snapshot_find(&s, 201), -1);

	/* a second read starts from scratch */
	CHECK_INT(collect_from(&s, &m.src), 0);
	CHECK_INT(s.nr_vms, 3);
	CHECK_INT(s.self.orphan_exits, 6);

	snapshot_free(&s);
	maps_free(&m);
}

static void test_vanishing_entry(void)
{
	struct snapshot s;
	struct maps m;

	maps_init(&m);
	snapshot_init(&s);
	add_vm(&m, 10, 1);
	add_vm(&m, 20, 1);
	add_vm(&m, 30, 1);
	/*
	 * 20 is deleted between next_key and lookup: skipped, and since the
	 * walk then asks for the key after a missing one, it starts over and
	 * sees 10 again; the duplicate must not show.
	 */
	m.vm.vanish_key = 20;
	CHECK_INT(collect_from(&s, &m.src), 0);
	CHECK_INT(s.nr_vms, 2);
	CHECK_INT(s.vms[0].tgid, 10);
	CHECK_INT(s.vms[1].tgid, 30);
	CHECK_INT(s.vms[0].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 10);
	CHECK(!fake_map_has(&m.vm, 20));

	/* the only entry vanishes: an empty snapshot, not an error */
	fake_map_free(&m.vm);
	add_vm(&m, 40, 1);
	m.vm.vanish_key = 40;
	CHECK_INT(collect_from(&s, &m.src), 0);
	CHECK_INT(s.nr_vms, 0);

	snapshot_free(&s);
	maps_free(&m);
}

static void test_errors(void)
{
	struct snapshot s;
	struct maps m;

	maps_init(&m);
	snapshot_init(&s);
	add_vm(&m, 10, 1);

	m.vm.lookup_err = -EPERM;
	CHECK_INT(collect_from(&s, &m.src), -EPERM);
	m.vm.lookup_err = 0;
	m.vm.next_key_err = -EBADF;
	CHECK_INT(collect_from(&s, &m.src), -EBADF);
	m.vm.next_key_err = 0;
	/* an array without its entry is broken, not "vanished" */
	fake_map_free(&m.self);
	CHECK_INT(collect_from(&s, &m.src), -ENOENT);
	m.src.ncpus = 0;
	CHECK_INT(collect_from(&s, &m.src), -EINVAL);

	snapshot_free(&s);
	maps_free(&m);
}

/* The three VMs of add_vm(m, 300/100/200, ...) as collect_from read them. */
static void check_three(const struct snapshot *s)
{
	CHECK_INT(s->nr_vms, 3);
	CHECK_INT(s->vms[0].tgid, 100);
	CHECK_INT(s->vms[1].tgid, 200);
	CHECK_INT(s->vms[2].tgid, 300);
	/* 1 + 2 + 3 + 4 = 10 units at l1, 7 units at l2 */
	CHECK_INT(s->vms[0].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 100);
	CHECK_INT(s->vms[1].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 1000);
	CHECK_INT(s->vms[2].stats.guest[GUEST_L1].sync_calls[SYNC_OK], 10);
	CHECK_INT(s->vms[1].stats.guest[GUEST_L1].walks[CTX_ZAP][WALK_ENOSPC],
		  400);
	CHECK_INT(s->vms[2].stats.guest[GUEST_L1].pages_synced, 1);
	CHECK_INT(s->vms[0].stats.guest[GUEST_L2].sync_calls[SYNC_OK], 70);
}

/*
 * With a batch reader vm_stats is read in batches, not key by key; a
 * batch smaller than the map takes several calls, a bucket larger than the
 * batch grows it, and a reader whose batches fail falls back to keys.
 */
static void test_batch_read(void)
{
	struct snapshot s;
	struct maps m;

	maps_init(&m);
	snapshot_init(&s);
	fake_map_batch_reader(&m.vm, &m.src.vm_stats);
	add_vm(&m, 300, 1);
	add_vm(&m, 100, 10);
	add_vm(&m, 200, 100);

	/* 2 entries per call: 300 and 100, then 200 with the end */
	m.vm.batch_max = 2;
	CHECK_INT(collect_from(&s, &m.src), 0);
	check_three(&s);
	CHECK_INT(m.vm.batches, 2);
	CHECK_INT(m.vm.lookups, 0);

	/*
	 * 64 KiB of 4 CPUs' values is 56 entries: -ENOSPC below 200, so
	 * 56, 112 and 224, which fills all three.
	 */
	m.vm.batches = 0;
	m.vm.batch_max = 0;
	m.vm.batch_need = 200;
	CHECK_INT(collect_from(&s, &m.src), 0);
	check_three(&s);
	CHECK_INT(m.vm.batches, 3);
	CHECK_INT(m.vm.lookups, 0);

	/*
	 * a bucket larger than any batch: 56 doubled up to 3,584, then 4,096,
	 * the most, then key by key
	 */
	m.vm.batches = 0;
	m.vm.batch_need = 100000;
	CHECK_INT(collect_from(&s, &m.src), 0);
	check_three(&s);
	CHECK_INT(m.vm.batches, 8);
	CHECK_INT(m.vm.lookups, 3);

	/* a kernel that has no batch calls for this map: key by key */
	m.vm.batches = 0;
	m.vm.lookups = 0;
	m.vm.batch_need = 0;
	m.vm.batch_err = -EINVAL;
	CHECK_INT(collect_from(&s, &m.src), 0);
	check_three(&s);
	CHECK_INT(m.vm.batches, 1);
	CHECK_INT(m.vm.lookups, 3);

	/* an empty map: one call, no VM */
	m.vm.batch_err = 0;
	m.vm.batches = 0;
	fake_map_free(&m.vm);
	CHECK_INT(collect_from(&s, &m.src), 0);
	CHECK_INT(s.nr_vms, 0);
	CHECK_INT(m.vm.batches, 1);

	snapshot_free(&s);
	maps_free(&m);
}

/* A map whose walk never ends: the next key is always the same. */
static int stuck_next_key(const struct map_reader *r, const __u32 *key,
			  __u32 *next)
{
	(void)r;
	(void)key;
	*next = 7;
	return 0;
}

static void test_walk_bound(void)
{
	struct snapshot s;
	struct maps m;

	maps_init(&m);
	snapshot_init(&s);
	add_vm(&m, 7, 1);
	m.src.vm_stats.next_key = stuck_next_key;
	CHECK_INT(collect_from(&s, &m.src), -E2BIG);
	snapshot_free(&s);
	maps_free(&m);
}

static void test_snapshot_growth(void)
{
	struct vm_guests v = { .guest[GUEST_L1] = { .restarts = 1 } };
	struct snapshot s;
	__u32 i;
	int ok = 1;

	snapshot_init(&s);
	for (i = 1000; i > 0; i--)
		ok &= snapshot_add_vm(&s, i % 500, &v) == 0;
	CHECK(ok);
	snapshot_sort_dedup(&s);
	CHECK_INT(s.nr_vms, 500);
	CHECK_INT(s.vms[0].tgid, 0);
	CHECK_INT(s.vms[499].tgid, 499);
	snapshot_free(&s);
}

/* The bucket rule of bpf/unsync.h, at its edges. */
static void test_duration_slots(void)
{
	__u32 k;

	CHECK_INT(duration_slot(0), 0);
	CHECK_INT(duration_slot(1), 1);
	CHECK_INT(duration_slot(2), 2);
	CHECK_INT(duration_slot(3), 2);
	CHECK_INT(duration_slot(1ULL << 38), DURATION_SLOTS - 1);
	CHECK_INT(duration_slot(~0ULL), DURATION_SLOTS - 1);
	/* each finite bucket's bound is the first duration past its slot */
	for (k = 0; k < DURATION_SLOTS - 1; k++) {
		CHECK_INT(duration_slot(duration_slot_bound_ns(k) - 1), k);
		CHECK_INT(duration_slot(duration_slot_bound_ns(k)), k + 1);
	}
}

UNIT_SUITE(collect)
{
	test_duration_slots();
	test_stride_and_sum();
	test_collect_maps();
	test_vanishing_entry();
	test_errors();
	test_walk_bound();
	test_batch_read();
	test_snapshot_growth();
}
