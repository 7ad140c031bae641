// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * KVM's own per-VM stats on the page (kvm_unsync_kvm_*), through whole
 * scrapes over fake maps, a fake /proc and a fake debugfs: the families
 * table against kvm_stat_descs[], the VMs they are published for (the
 * agent's table only), --max-vms folding into "other", and the one-time
 * warning when debugfs cannot be read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expected.h"
#include "rig.h"
#include "test.h"

#define ARGV(s)	s, sizeof(s) - 1

static void vm(struct rig *r, __u32 tgid, const char *argv, size_t len,
	       __u64 synced)
{
	fake_proc_add(r->proc, tgid, argv, len, "qemu-kvm", tgid * 10);
	rig_set_synced(r, tgid, synced);
}

/* A rig reading a fake debugfs, with VMs a (100) and b (200). */
static int kvm_rig(struct rig *r, size_t max_vms)
{
	if (rig_init(r, max_vms) || rig_kvm_init(r)) {
		CHECK(!"rig");
		return -1;
	}
	vm(r, 100, ARGV("qemu\0-name\0guest=a\0"), 1);
	vm(r, 200, ARGV("qemu\0-name\0guest=b\0"), 2);
	return 0;
}

/* Lines the scrapes logged so far. */
static int log_lines(struct rig *r)
{
	int n = 0;
	size_t i;

	fflush(r->kvm.log);
	for (i = 0; i < r->kvm_log_len; i++)
		n += r->kvm_log[i] == '\n';
	return n;
}

/* One row per stat, in kvm_stat_descs[] order, named and typed from it. */
static void test_table_matches_descs(void)
{
	char want[128];
	size_t i, j;

	CHECK_INT(nr_kvm_families, KVM_STAT_NR + 1);
	for (i = 0; i < KVM_STAT_NR; i++) {
		const struct family *f = &kvm_families[i];
		const struct kvm_stat_desc *d = &kvm_stat_descs[i];

		snprintf(want, sizeof(want), "kvm_unsync_kvm_%s%s", d->name,
			 d->gauge ? "" : "_total");
		CHECK_STR(f->name, want);
		CHECK_STR(f->type, d->gauge ? "gauge" : "counter");
		CHECK_INT(f->src, FROM_KVM);
		CHECK_INT(f->off, offsetof(struct kvm_vm_kstats, val) +
				  i * sizeof(__u64));
	}
	CHECK_STR(kvm_families[KVM_STAT_NR].name,
		  "kvm_unsync_kvm_stats_readable");
	CHECK_INT(kvm_families[KVM_STAT_NR].src, FROM_KVM_READABLE);
	/* their own rows: no name shared with another table */
	for (i = 0; i < nr_kvm_families; i++) {
		for (j = 0; j < nr_agent_families; j++)
			CHECK(strcmp(kvm_families[i].name,
				     agent_families[j].name));
		for (j = 0; j < nr_http_families; j++)
			CHECK(strcmp(kvm_families[i].name,
				     http_families[j].name));
	}
}

/*
 * Per VM of the agent's table, summed over the VMM's VMs; a VM only KVM
 * knows is left out, one the agent knows and KVM not has no KVM series.
 */
static void test_page(void)
{
	struct rig r;
	const char *t;

	if (kvm_rig(&r, 0))
		return;
	rig_kvm_vm(&r, 100, 10, 10);	/* two VMs of one VMM: summed */
	rig_kvm_vm(&r, 100, 11, 20);
	rig_kvm_vm(&r, 300, 12, 100);	/* the agent has not seen it */
	t = rig_scrape(&r);
	CHECK_LINE(t, "# TYPE kvm_unsync_kvm_mmu_shadow_zapped_total counter");
	CHECK_LINE(t, "# TYPE kvm_unsync_kvm_mmu_unsync gauge");
	/* stat i holds base + i: (10 + i) + (20 + i) */
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_shadow_zapped_total{vm=\"a\",pid=\"100\"} 30");
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_flooded_total{vm=\"a\",pid=\"100\"} 36");
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_cache_miss_total{vm=\"a\",pid=\"100\"} 40");
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_unsync{vm=\"a\",pid=\"100\"} 42");
	CHECK_LINE(t, "kvm_unsync_kvm_stats_readable 1");
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	CHECK_NO_SUBSTR(t, "kvm_unsync_kvm_mmu_unsync{vm=\"b\"");
	/* the agent's own series are as before */
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"b\",pid=\"200\",guest=\"l1\"} 2");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 0");
	CHECK_INT(log_lines(&r), 0);
	check_expected("metrics-kvm.prom", t);

	/* KVM destroys a's VMs, its process lives on: its KVM series go */
	fake_kvm_vm_del(r.kvm_root, "100-10");
	fake_kvm_vm_del(r.kvm_root, "100-11");
	t = rig_scrape(&r);
	CHECK_NO_SUBSTR(t, "kvm_unsync_kvm_mmu_unsync{");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_kvm_stats_readable 1");
	rig_free(&r);
}

#define OTHER(fam, n) "kvm_unsync_kvm_" fam "{vm=\"other\",pid=\"\"} " #n

/* --max-vms folds KVM's figures as it folds the agent's. */
static void test_fold(void)
{
	struct rig r;
	const char *t;

	if (kvm_rig(&r, 1))
		return;
	vm(&r, 300, ARGV("qemu\0-name\0guest=c\0"), 3);
	rig_kvm_vm(&r, 100, 1, 1);
	rig_kvm_vm(&r, 200, 1, 10);
	rig_kvm_vm(&r, 300, 1, 100);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_shadow_zapped_total{vm=\"a\",pid=\"100\"} 1");
	CHECK_NO_SUBSTR(t, "pid=\"200\"");
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 110));
	CHECK_LINE(t, OTHER("mmu_unsync", 122));
	check_expected("metrics-kvm-folded.prom", t);

	/* b's VM is destroyed, b lives on: its counts stay, nothing unsync */
	fake_kvm_vm_del(r.kvm_root, "200-1");
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 110));
	CHECK_LINE(t, OTHER("mmu_unsync", 106));

	/* b exits and is reaped: "other" never goes down */
	fake_proc_del(r.proc, 200);
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 110));
	t = rig_scrape(&r);
	CHECK(!fake_map_has(&r.vm, 200));
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 110));
	CHECK_LINE(t, OTHER("mmu_unsync", 106));

	/* c counts on */
	rig_kvm_vm(&r, 300, 1, 200);
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 210));
	CHECK_LINE(t, OTHER("mmu_recycled_total", 218));
	CHECK_LINE(t, OTHER("mmu_unsync", 206));
	/* a folded VM exits while KVM still has its VM (its fd held
	 * elsewhere): it leaves the table and keeps its last counts */
	fake_proc_del(r.proc, 300);
	rig_scrape(&r);
	t = rig_scrape(&r);
	CHECK_LINE(t, OTHER("mmu_shadow_zapped_total", 210));
	CHECK_LINE(t, OTHER("mmu_unsync", 0));
	rig_free(&r);
}

/* No debugfs: one line in the log, the gauge at 0, the page goes on. */
static void test_unreadable_said_once(void)
{
	struct rig r;
	const char *t;

	if (kvm_rig(&r, 0))
		return;
	rig_kvm_vm(&r, 100, 1, 1);

	/* before KVM is loaded nothing is read, nothing is said */
	r.ctx.waiting = true;
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_kvm_stats_readable 0");
	CHECK_INT(log_lines(&r), 0);
	r.ctx.waiting = false;

	r.kvm.src.root = "/nonexistent/kvm";
	t = rig_scrape(&r);
	rig_scrape(&r);
	t = rig_scrape(&r);
	CHECK_INT(log_lines(&r), 1);
	CHECK(strstr(r.kvm_log, "warning: KVM stats: no /nonexistent/kvm (debugfs not mounted") == r.kvm_log);
	CHECK_LINE(t, "kvm_unsync_kvm_stats_readable 0");
	CHECK_LINE(t, "# TYPE kvm_unsync_kvm_mmu_unsync gauge");
	CHECK_NO_SUBSTR(t, "kvm_unsync_kvm_mmu_unsync{");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 0");
	check_expected("metrics-kvm-unreadable.prom", t);

	/* mounted again: read, nothing to say */
	r.kvm.src.root = r.kvm_root;
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_kvm_stats_readable 1");
	CHECK_LINE(t, "kvm_unsync_kvm_mmu_unsync{vm=\"a\",pid=\"100\"} 7");
	CHECK_INT(log_lines(&r), 1);
	/* gone again after it was back: said once more */
	r.kvm.src.root = "/nonexistent/kvm";
	rig_scrape(&r);
	rig_scrape(&r);
	CHECK_INT(log_lines(&r), 2);
	rig_free(&r);
}

UNIT_SUITE(kvm_metrics)
{
	test_table_matches_descs();
	test_page();
	test_fold();
	test_unreadable_said_once();
}
