/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * VM lifecycle and the per-VM name cache.
 *
 * A VM is a tgid present in the vm_stats map.  Nothing in the kernel removes
 * a dead VMM's entry, so the daemon does, after publishing its final counts
 * once.  A scrape runs these steps, in this order:
 *
 *   vm_table_check(t)        before reading the maps: mark cached VMs
 *                            whose process is gone as "reap"
 *   collect_from(&snap, ..)  read the maps
 *   vm_table_series(t, &snap, &series, &nr)
 *                            cache names for new tgids, drop tgids no
 *                            longer in the map, fold (--max-vms), and
 *                            hand out the series to publish
 *   render the series
 *   vm_table_reap(t, ...)    once the body is built: delete the "reap"
 *                            tgids from the map and forget them
 *
 * Why check before reading: a VMM's last counts come from its own exit (VM
 * destruction zaps every shadow page).  A process seen gone before the
 * maps are read can add nothing more, so the snapshot holds its final
 * counts and deleting after the render loses nothing.  A tgid seen for the
 * first time already dead may have died after the read, so it is only
 * reaped at the next scrape (it is rendered twice, with the same values).
 *
 * Names are cached per tgid with the process start time; a changed start
 * time (pid reuse) re-reads the name.  The check reads /proc/PID/stat only
 * for a VM whose pidfd says its process exited, or that has no pidfd: on
 * a host of 1,000 VMs those reads were half of a scrape, one poll() now.
 * A short-lived VMM may be gone by its first scrape, so the BPF side keeps
 * each VM's name in the vm_names map (bpf/unsync.h, struct vm_name), read
 * from its task and memory when it made its vm_stats entry: a new tgid is
 * named from there, from /proc only if the map has no entry (full, or the
 * BPF side still writing it: then the map again if /proc says gone) or
 * could not read its argv.  The reap deletes the name with the series.  A
 * pid reused while its entry lives is named from /proc: the map's name is
 * the old VM's.  A zombie still has /proc/PID, so a VMM is reaped once its
 * parent has waited for it.
 *
 * --max-vms bounds the label set on a host with many VMs: once max VMs
 * have their own labels, each new VM is folded, for its whole life, into
 * one "other" series (the sum of every folded VM, live or gone, so it
 * never goes down).  A VM that exits frees its place for the next new
 * one; a folded VM never moves out of "other".
 *
 * KVM's own per-VM stats (kvm_stats.h) are published for the VMs of this
 * table only, under the same names and folded the same way, by
 * vm_table_kvm_series() after vm_table_series().  A VM KVM knows and the
 * agent has not seen yet (no unsync page, sync or walk so far: e.g. a
 * guest on TDP) is left out until it is seen: its vm label comes from
 * here, and --max-vms must decide its place first.  A labelled VM's KVM
 * series exist while KVM has the VM (its debugfs directory goes when the
 * VM is destroyed, maybe before its process exits).  In "other", the
 * counters are the sum of the last values read of every VM ever folded,
 * live or gone, and mmu_unsync (a gauge) that of the folded VMs KVM still
 * has.
 */
#ifndef __VM_TABLE_H
#define __VM_TABLE_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "collect.h"
#include "kvm_stats.h"
#include "vm_names.h"

struct vm_entry {
	__u32 tgid;
	bool reap;			/* gone before this scrape's read */
	bool stale;			/* pid reused: name needs a re-read */
	unsigned long long start_time;	/* 0 if unknown */
	char name[VM_NAME_MAX];
	bool folded;			/* counted in "other" (--max-vms) */
	struct vm_guests last;		/* folded: its counts at the last sync */
	struct kvm_vm_kstats kvm_last;	/* folded: KVM's, at the last read */
	/*
	 * A pidfd of the process named, opened before its /proc reads, or
	 * -1: while it does not poll readable the process has not exited,
	 * so its pid was not reused and its /proc/PID/stat need not be read.
	 */
	int pidfd;
};

/*
 * One series to publish, finished: every output renders these as they
 * are.  name and stats point into the table and the snapshot passed to
 * vm_table_series(): valid until the next vm_table_series() or
 * vm_table_reap() and while that snapshot is unchanged.
 */
struct vm_series {
	const char *name;		/* the vm label; NULL: "unknown" */
	__u32 pid;			/* 0: "other", the folded VMs (pid="") */
	const struct vm_guests *stats;	/* summed over CPUs, per guest level */
};

/* KVM's stats of one VM to publish, as struct vm_series. */
struct vm_kvm_series {
	const char *name;		/* the vm label; NULL: "unknown" */
	__u32 pid;			/* 0: "other" (pid="") */
	const struct kvm_vm_kstats *kvm;
};

struct vm_table {
	pthread_mutex_t lock;		/* taken by every call below */
	char *proc_root;
	/* vm_names, or NULL: names from /proc only (vm_table_set_names()) */
	const struct map_reader *names;
	struct vm_entry *v;		/* sorted by tgid */
	size_t nr, cap;
	struct vm_series *series;	/* handed out by vm_table_series() */
	size_t cap_series;
	/* --max-vms */
	size_t max_vms;			/* 0: no limit */
	bool fold_seen;			/* a VM was folded at least once */
	unsigned long long folded_total;	/* VMs folded so far */
	struct vm_guests fold_base;	/* final counts of folded VMs gone */
	struct vm_guests other;		/* fold_base + live folded VMs */
	/* KVM's stats: the same, counters only in the base */
	struct kvm_vm_kstats kvm_fold_base, kvm_other;
	struct vm_kvm_series *kvm_series;
	size_t cap_kvm_series;
	/*
	 * pidfds, only for the real /proc (a fake root's pids are not the
	 * host's), at most max_pidfds of them: half of the open-file limit
	 * at init, so a host of many VMs never starves the HTTP server of
	 * descriptors; VMs beyond it are checked in /proc each scrape.
	 */
	bool use_pidfds;
	size_t nr_pidfds, max_pidfds;
	struct pollfd *polls;
	size_t cap_polls;
	unsigned long long stat_reads;	/* /proc/PID/stat reads so far */
};

int vm_table_init(struct vm_table *t, const char *proc_root);
void vm_table_free(struct vm_table *t);

/*
 * Where new VMs' names are: the vm_names map (a struct vm_name per tgid),
 * which vm_table_reap() also deletes from.  names must outlive t; a
 * reader with no lookup (yet) is as none.  Read-only beside an agent: the
 * reap is the daemon's.
 */
void vm_table_set_names(struct vm_table *t, const struct map_reader *names);

/* Step 1, before reading the maps. */
void vm_table_check(struct vm_table *t);
/*
 * Step 2, after a successful read of s: bring the table up to date with
 * s and set *series to the series to publish, *nr to their number.  They
 * are s's VMs in tgid order, those folded by --max-vms left out, then,
 * once any VM was ever folded, "other" (pid 0): the sum over every VM
 * ever folded, live or gone.  0, or -ENOMEM (*series, *nr untouched).
 */
int vm_table_series(struct vm_table *t, const struct snapshot *s,
		    const struct vm_series **series, size_t *nr);

/*
 * Step 2b, after vm_table_series() and kvm_stats_read() (k[0..nk), sorted
 * by pid): KVM's stats as series, for the table's VMs only, in tgid
 * order, those folded left out, then "other" once any VM was ever folded.
 * 0, or -ENOMEM.  Valid as vm_table_series()'s, and while k is unchanged.
 */
int vm_table_kvm_series(struct vm_table *t, const struct kvm_vm_kstats *k,
			int nk, const struct vm_kvm_series **series,
			size_t *nr);

/*
 * Step 3, after the response body is built: delete every "reap" tgid with
 * del (ENOENT counts as deleted), and its name from vm_names, and forget
 * it.  A tgid whose vm_stats delete failed stays marked and is tried again
 * next scrape; a name whose delete failed is replaced by the BPF side when
 * the pid's next VM shows up.  Returns how many were deleted, or the first
 * -errno.  The series handed out are void after it.
 */
int vm_table_reap(struct vm_table *t, const struct map_reader *vm_stats);

/* --max-vms: 0 for no limit; call before the first vm_table_series(). */
void vm_table_set_max(struct vm_table *t, size_t max_vms);
/* How many VMs were folded into "other" since start. */
unsigned long long vm_table_folded_total(const struct vm_table *t);

/* Number of cached VMs; the entry for tgid, or NULL (tests, debugging). */
size_t vm_table_size(const struct vm_table *t);
const struct vm_entry *vm_table_find(const struct vm_table *t, __u32 tgid);

#endif /* __VM_TABLE_H */
