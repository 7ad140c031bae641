// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The VMs a --record run has seen (live_seen.c): the base is the first
 * read, the counts follow every read, and KVM's stats stay as last read
 * while the VM lived once a read finds none (its VM destroyed, the VMM
 * still in the maps) -- the record then keeps them (docs/record.md).
 */
#include <string.h>
#include "live_seen.h"
#include "test.h"

static void row(struct top_vm *r, __u32 pid, __u64 unsynced, bool kvm,
		__u64 mmu_unsync)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "vm%u", pid);
	r->pid = pid;
	r->st.pages_unsynced = unsynced;
	r->has_kvm = kvm;
	r->kvm.nr_vms = kvm;
	r->kvm.val[KVM_STAT_MMU_UNSYNC] = mmu_unsync;
	r->kvm.val[KVM_STAT_MMU_FLOODED] = mmu_unsync * 2;
}

UNIT_SUITE(live_seen)
{
	struct seen_vms s = { 0 };
	struct seen_vm *a, *b;
	struct top_vm r;
	int i;

	/* first read: a (KVM's stats there), b (none: it never had a VM) */
	a = seen_find(&s, 10);
	row(&r, 10, 5, true, 3);
	seen_update(a, &r, true);
	b = seen_find(&s, 20);
	row(&r, 20, 1, false, 0);
	seen_update(b, &r, true);
	CHECK_INT(s.nr, 2);
	CHECK_STR(s.v[0].rv.name, "vm10");
	CHECK_INT(s.v[0].base.pages_unsynced, 5);
	CHECK(!s.v[1].rv.has_kvm);

	/* a while it lives: counts and KVM's stats follow; the base stays */
	a = seen_find(&s, 10);
	CHECK(a == &s.v[0]);
	row(&r, 10, 25, true, 20);
	seen_update(a, &r, false);
	CHECK_INT(a->base.pages_unsynced, 5);
	CHECK_INT(a->last.pages_unsynced, 25);
	CHECK(a->rv.has_kvm);
	CHECK_INT(a->rv.kvm.val[KVM_STAT_MMU_UNSYNC], 20);

	/* a's VM destroyed, the VMM still in the maps: the last read kept */
	row(&r, 10, 45, false, 0);
	seen_update(seen_find(&s, 10), &r, false);
	a = &s.v[0];
	CHECK_INT(a->last.pages_unsynced, 45);
	CHECK(a->rv.has_kvm);
	CHECK_INT(a->rv.kvm.nr_vms, 1);
	CHECK_INT(a->rv.kvm.val[KVM_STAT_MMU_UNSYNC], 20);
	CHECK_INT(a->rv.kvm.val[KVM_STAT_MMU_FLOODED], 40);
	CHECK(!s.v[1].rv.has_kvm);

	/* many VMs: the array grows, each found again by pid */
	for (i = 0; i < 100; i++)
		CHECK(seen_find(&s, 1000 + i) != NULL);
	CHECK_INT(s.nr, 102);
	CHECK(seen_find(&s, 1050) == &s.v[52]);
	CHECK_INT(s.v[0].rv.kvm.val[KVM_STAT_MMU_UNSYNC], 20);
	seen_free(&s);
	CHECK_INT(s.nr, 0);
}
