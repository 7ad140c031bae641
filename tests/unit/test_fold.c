// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --max-vms through whole scrapes over fake maps and a fake /proc: which
 * VMs keep their labels, the "other" series (pid="") and its counter that
 * never goes down, kvm_unsync_vms_folded_total; and the scrape before KVM
 * is loaded (no maps: the agent's own metrics only).
 */
#include <errno.h>
#include <stdlib.h>
#include "expected.h"
#include "rig.h"
#include "test.h"

#define ARGV(s)	s, sizeof(s) - 1


/* A live VMM named guest=NAME with n synced pages (on CPU 1). */
static void vm(struct rig *r, __u32 tgid, const char *argv, size_t len,
	       __u64 n)
{
	fake_proc_add(r->proc, tgid, argv, len, "qemu-kvm", tgid * 10);
	rig_set_synced(r, tgid, n);
}

#define OTHER(n) "kvm_unsync_pages_synced_total{vm=\"other\",pid=\"\",guest=\"l1\"} " #n

static void test_fold_beyond_max(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 2)) {
		CHECK(!"rig");
		return;
	}
	vm(&r, 100, ARGV("qemu\0-name\0guest=a\0"), 1);
	vm(&r, 200, ARGV("qemu\0-name\0guest=b\0"), 2);
	vm(&r, 300, ARGV("qemu\0-name\0guest=c\0"), 3);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"b\",pid=\"200\",guest=\"l1\"} 2");
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	CHECK_NO_SUBSTR(t, "vm=\"c\"");
	CHECK_LINE(t, OTHER(3));
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 1");
	CHECK_LINE(t, "kvm_unsync_vms 3");
	/* every family gets the "other" series, with its labels */
	CHECK_LINE(t, "kvm_unsync_walks_total{vm=\"other\",pid=\"\",guest=\"l1\",context=\"zap\",result=\"enospc\"} 0");
	CHECK_LINE(t, "kvm_unsync_restarts_total{vm=\"other\",pid=\"\",guest=\"l1\"} 0");
	check_expected("metrics-folded.prom", t);

	/* a fourth VM folds too; "other" sums both */
	vm(&r, 400, ARGV("qemu\0-name\0guest=d\0"), 4);
	rig_set_synced(&r, 300, 5);
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER(9));
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 2");
	CHECK_LINE(t, "kvm_unsync_vms 4");

	/* a labelled VM exits: published once more, then dropped ... */
	fake_proc_del(r.proc, 100);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 1");
	CHECK(!fake_map_has(&r.vm, 100));
	/* ... and its place goes to the next new VM, not to a folded one */
	vm(&r, 500, ARGV("qemu\0-name\0guest=e\0"), 6);
	t = rig_scrape(&r);
	CHECK_NO_SUBSTR(t, "pid=\"100\"");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"e\",pid=\"500\",guest=\"l1\"} 6");
	CHECK_LINE(t, OTHER(9));
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 2");
	CHECK_LINE(t, "kvm_unsync_vms 4");

	/* a folded VM exits: it leaves the map, its counts stay in "other" */
	fake_proc_del(r.proc, 300);
	rig_set_synced(&r, 300, 7);		/* its teardown, counted once more */
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER(11));
	CHECK(!fake_map_has(&r.vm, 300));
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER(11));
	CHECK_LINE(t, "kvm_unsync_vms 3");
	CHECK_INT(vm_table_size(&r.table), 3);

	/* every folded VM gone: "other" stays, it is a counter */
	fake_proc_del(r.proc, 400);
	rig_scrape(&r);
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER(11));
	CHECK_LINE(t, "kvm_unsync_vms 2");
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 2");
	rig_free(&r);
}

static void test_no_fold_below_max(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 2)) {
		CHECK(!"rig");
		return;
	}
	vm(&r, 100, ARGV("qemu\0-name\0guest=a\0"), 1);
	vm(&r, 200, ARGV("qemu\0-name\0guest=b\0"), 2);
	t = rig_scrape(&r);
	CHECK_NO_SUBSTR(t, "vm=\"other\",pid=\"\"");
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 0");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	rig_free(&r);

	/* no limit at all (the default) */
	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	vm(&r, 100, ARGV("qemu\0-name\0guest=a\0"), 1);
	vm(&r, 200, ARGV("qemu\0-name\0guest=b\0"), 2);
	vm(&r, 300, ARGV("qemu\0-name\0guest=c\0"), 3);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"c\",pid=\"300\",guest=\"l1\"} 3");
	CHECK_NO_SUBSTR(t, "vm=\"other\",pid=\"\"");
	CHECK_LINE(t, "kvm_unsync_vms_folded_total 0");
	rig_free(&r);
}

/* A VM named "other" by its user is not the fold: its pid tells them apart. */
static void test_vm_named_other(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 1)) {
		CHECK(!"rig");
		return;
	}
	vm(&r, 100, ARGV("qemu\0-name\0guest=other\0"), 1);
	vm(&r, 200, ARGV("qemu\0-name\0guest=b\0"), 2);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"other\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, OTHER(2));
	rig_free(&r);
}

/* Before KVM is loaded there are no maps: nothing is read, nothing fails. */
static void test_waiting_for_kvm(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	r.info.nr_probes = 1;
	r.info.probes[0] = (struct probe_status){ .probe = "mmu_sync_children",
						  .mode = "none" };
	r.ctx.waiting = true;
	r.vm.lookup_err = -EBADF;	/* would be a scrape error if read */
	r.vm.next_key_err = -EBADF;
	vm(&r, 100, ARGV("qemu\0-name\0guest=a\0"), 1);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"mmu_sync_children\",mode=\"none\"} 0");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 0");
	CHECK_LINE(t, "kvm_unsync_build_info{version=\"test\"} 1");
	CHECK_LINE(t, "# TYPE kvm_unsync_sync_calls_total counter");
	CHECK_NO_SUBSTR(t, "pid=\"100\"");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_vms ");
	/* attached: the same context now reads the maps */
	r.ctx.waiting = false;
	r.vm.lookup_err = 0;
	r.vm.next_key_err = 0;
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 0");
	rig_free(&r);
}

UNIT_SUITE(fold)
{
	test_fold_beyond_max();
	test_no_fold_below_max();
	test_vm_named_other();
	test_waiting_for_kvm();
}
