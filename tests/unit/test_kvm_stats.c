// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* KVM's debugfs stats (kvm_stats.c) on a fake /sys/kernel/debug/kvm. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fake.h"
#include "kvm_stats.h"
#include "test.h"


static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* root/NAME with every stat, stat i holding base + i. */
static void add_vm(const char *root, const char *name, unsigned base)
{
	__u64 val[KVM_STAT_NR];
	int i;

	for (i = 0; i < KVM_STAT_NR; i++)
		val[i] = base + i;
	CHECK_INT(fake_kvm_vm_add(root, name, val), 0);
}

static void test_kinds(void)
{
	int i, gauges = 0;

	/* arch/x86/kvm/x86.c: only mmu_unsync is STATS_DESC_ICOUNTER */
	for (i = 0; i < KVM_STAT_NR; i++)
		gauges += kvm_stat_descs[i].gauge;
	CHECK_INT(gauges, 1);
	CHECK(kvm_stat_descs[KVM_STAT_MMU_UNSYNC].gauge);
	CHECK_STR(kvm_stat_descs[KVM_STAT_MMU_UNSYNC].name, "mmu_unsync");
	CHECK_STR(kvm_stat_descs[KVM_STAT_MMU_FLOODED].name, "mmu_flooded");
}

static void test_read(void)
{
	char root[] = "/tmp/kue-kvmstats-XXXXXX";
	struct kvm_vm_kstats out[8];
	struct kvm_stats_src src = { .root = root };
	const struct kvm_vm_kstats *e;
	char path[600];
	int n;

	if (!mkdtemp(root)) {
		SKIP("mkdtemp failed");
		return;
	}
	/* host-wide files at the root are not VMs */
	put(root, "mmu_unsync", "999\n");
	add_vm(root, "300-12", 100);
	add_vm(root, "200-10", 10);
	add_vm(root, "200-11", 20);	/* a second VM of the same VMM */
	mkdir(strcat(strcpy(path, root), "/200-x"), 0755);	/* not PID-FD */
	mkdir(strcat(strcpy(path, root), "/12-3-4"), 0755);

	n = kvm_stats_read(&src, out, 8);
	CHECK_INT(n, 2);
	CHECK_INT(out[0].pid, 200);	/* sorted by pid */
	CHECK_INT(out[0].nr_vms, 2);
	/* summed: (10 + i) + (20 + i) */
	CHECK_INT(out[0].val[KVM_STAT_MMU_SHADOW_ZAPPED], 30);
	CHECK_INT(out[0].val[KVM_STAT_MMU_UNSYNC], 30 + 2 * KVM_STAT_MMU_UNSYNC);
	e = kvm_stats_find(out, n, 300);
	CHECK(e != NULL);
	if (e) {
		CHECK_INT(e->nr_vms, 1);
		CHECK_INT(e->val[KVM_STAT_MMU_CACHE_MISS],
			  100 + KVM_STAT_MMU_CACHE_MISS);
	}
	CHECK(kvm_stats_find(out, n, 999) == NULL);

	/* more VMMs than room: say so */
	CHECK_INT(kvm_stats_read(&src, out, 1), -E2BIG);

	/* a stat file this kernel lacks counts 0, the rest is read */
	snprintf(path, sizeof(path), "%s/300-12/mmu_pte_write", root);
	unlink(path);
	n = kvm_stats_read(&src, out, 8);
	CHECK_INT(n, 2);
	e = kvm_stats_find(out, n, 300);
	if (e)
		CHECK_INT(e->val[KVM_STAT_MMU_PTE_WRITE], 0);

	/* garbage in a stat file is an error, not a number */
	snprintf(path, sizeof(path), "%s/300-12", root);
	put(path, "mmu_flooded", "12abc\n");
	CHECK_INT(kvm_stats_read(&src, out, 8), -EINVAL);
	put(path, "mmu_flooded", "7\n");

	/* hidden: a mode-000 directory, unless we can read it anyway */
	chmod(root, 0);
	if (access(root, R_OK) == 0) {
		SKIP("running with CAP_DAC_OVERRIDE: a mode-000 directory stays readable");
	} else {
		CHECK_INT(kvm_stats_read(&src, out, 8), -EACCES);
	}
	chmod(root, 0700);
	fake_proc_free(strdup(root));
}

static void test_tgid(void)
{
	char root[] = "/tmp/kue-kvmstats-XXXXXX";
	char proc[] = "/tmp/kue-kvmproc-XXXXXX";
	struct kvm_stats_src src = { .root = root, .proc = proc };
	struct kvm_vm_kstats out[4];
	char dir[600];

	if (!mkdtemp(root) || !mkdtemp(proc)) {
		SKIP("mkdtemp failed");
		return;
	}
	/* VM created by thread 501 of process 500 */
	add_vm(root, "501-9", 1);
	snprintf(dir, sizeof(dir), "%s/501", proc);
	mkdir(dir, 0755);
	put(dir, "status", "Name:\tqemu\nTgid:\t500\nPid:\t501\n");
	CHECK_INT(kvm_stats_read(&src, out, 4), 1);
	CHECK_INT(out[0].pid, 500);
	/* without /proc the directory's number is all there is */
	src.proc = NULL;
	CHECK_INT(kvm_stats_read(&src, out, 4), 1);
	CHECK_INT(out[0].pid, 501);
	fake_proc_free(strdup(root));
	fake_proc_free(strdup(proc));
}

static void test_missing_and_warn_once(void)
{
	struct kvm_stats_src src = { .root = "/nonexistent/kvm" };
	struct kvm_vm_kstats out[1];
	char buf[256];
	int err;

	err = kvm_stats_read(&src, out, 1);
	CHECK_INT(err, -ENOENT);
	CHECK(kvm_stats_should_warn(&src, err));
	CHECK(!kvm_stats_should_warn(&src, err));	/* said once */
	CHECK(kvm_stats_should_warn(&src, -EACCES));	/* a new problem */
	CHECK(!kvm_stats_should_warn(&src, 0));
	CHECK(kvm_stats_should_warn(&src, -ENOENT));	/* back again */
	kvm_stats_strerror(&src, -ENOENT, buf, sizeof(buf));
	CHECK(strstr(buf, "/nonexistent/kvm") != NULL);
	CHECK(strstr(buf, "debugfs not mounted") != NULL);
	kvm_stats_strerror(&src, -EACCES, buf, sizeof(buf));
	CHECK(strstr(buf, "sandbox") != NULL);
}

UNIT_SUITE(kvm_stats)
{
	test_kinds();
	test_read();
	test_tgid();
	test_missing_and_warn_once();
}
