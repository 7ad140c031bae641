/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * KVM's own per-VM MMU statistics, read from debugfs at scrape time.
 *
 * KVM makes one directory per VM, /sys/kernel/debug/kvm/PID-FD, where PID
 * is task_pid_nr() of the thread that ran KVM_CREATE_VM and FD the VM's file
 * descriptor (virt/kvm/kvm_main.c, kvm_create_vm_debugfs()).  Each stat is a
 * file holding "%llu\n".  The names are those of the binary stats fd, and
 * their kind comes from arch/x86/kvm/x86.c kvm_vm_stats_desc[]:
 * STATS_DESC_COUNTER (KVM_STATS_TYPE_CUMULATIVE) for all but mmu_unsync,
 * which is STATS_DESC_ICOUNTER (KVM_STATS_TYPE_INSTANT): a gauge.
 *
 * The agent's own counters are keyed by the VMM's tgid (the vm_stats map),
 * so KVM's are summed per tgid too: a VMM that owns several VMs gets one
 * sum, and nr_vms says how many directories went into it.
 */
#ifndef __KVM_STATS_H
#define __KVM_STATS_H

#include <stdbool.h>
#include <linux/types.h>

#define KVM_STATS_ROOT	"/sys/kernel/debug/kvm"
#define KVM_STATS_PROC	"/proc"

enum kvm_stat {
	KVM_STAT_MMU_SHADOW_ZAPPED,
	KVM_STAT_MMU_PTE_WRITE,
	KVM_STAT_MMU_PDE_ZAPPED,
	KVM_STAT_MMU_FLOODED,
	KVM_STAT_MMU_RECYCLED,
	KVM_STAT_MMU_CACHE_MISS,
	KVM_STAT_MMU_UNSYNC,
	KVM_STAT_NR,
};

struct kvm_stat_desc {
	const char *name;	/* debugfs file and binary stats name */
	bool gauge;		/* KVM_STATS_TYPE_INSTANT; else CUMULATIVE */
	const char *help;
};

extern const struct kvm_stat_desc kvm_stat_descs[KVM_STAT_NR];

/* KVM's stats of every VM one process owns, summed. */
struct kvm_vm_kstats {
	__u32 pid;		/* tgid of the VMM */
	__u32 nr_vms;		/* PID-FD directories summed here */
	__u64 val[KVM_STAT_NR];
};

/*
 * Where to read: root is KVM_STATS_ROOT in production, a temporary tree in
 * tests; proc (KVM_STATS_PROC, or NULL to skip) maps a directory's PID to
 * its thread group, for a VMM that created its VM from another thread.
 * last_err remembers the last failure so the caller says it once.
 */
struct kvm_stats_src {
	const char *root;
	const char *proc;
	int last_err;
};

/*
 * Read every VM under src->root into out[] (at most max, one per tgid,
 * sorted by pid).  Returns how many, or:
 *   -ENOENT  no KVM directory: debugfs not mounted, or kvm not loaded
 *   -EACCES  the directory is there but cannot be read: a sandbox
 *            (InaccessiblePaths=, dropped CAP_DAC_*), or kernel lockdown
 *   -E2BIG   more processes than max: out[] holds max of them
 * A VM that goes away while it is read is left out, not an error.
 */
int kvm_stats_read(struct kvm_stats_src *src, struct kvm_vm_kstats *out,
		   int max);

/* The entry for pid in out[0..n), or NULL. */
const struct kvm_vm_kstats *kvm_stats_find(const struct kvm_vm_kstats *out,
					   int n, __u32 pid);

/*
 * True the first time err (< 0) is seen after a success or another error,
 * so the caller logs "KVM stats unavailable" once per change, not per
 * scrape.  A success resets it.
 */
bool kvm_stats_should_warn(struct kvm_stats_src *src, int err);

/* One line for an error of kvm_stats_read(), naming the directory. */
const char *kvm_stats_strerror(const struct kvm_stats_src *src, int err,
			       char *buf, size_t len);

#endif /* __KVM_STATS_H */
