/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Read the pinned per-CPU maps into a plain snapshot, summing the per-CPU
 * copies.
 *
 * The map access is behind struct map_reader so that everything but the
 * three libbpf calls (bpf_map_get_next_key, bpf_map_lookup_elem,
 * bpf_map_delete_elem) runs in unit tests against plain arrays.
 *
 * Map layout assumed (bpf/unsync.h):
 *   vm_stats:   BPF_MAP_TYPE_PERCPU_HASH,  key __u32 tgid, value struct vm_guests
 *   hists:      BPF_MAP_TYPE_PERCPU_ARRAY, key __u32 0,    value struct hists
 *   self_stats: BPF_MAP_TYPE_PERCPU_ARRAY, key __u32 0,    value struct self_stats
 *   vm_names:   BPF_MAP_TYPE_HASH,         key __u32 tgid, value struct vm_name
 *
 * The duration histogram's slots (struct hists.sync_duration) follow
 * duration_slot() in bpf/unsync.h, the one statement of the bucket rule.
 */
#ifndef __COLLECT_H
#define __COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "../bpf/unsync.h"

/* Largest number of vm_stats keys one scrape will walk (loop guard). */
#define COLLECT_MAX_VMS	65536

struct vm_sample {
	__u32 tgid;
	struct vm_guests stats;	/* summed over CPUs, per guest level */
};

struct snapshot {
	struct vm_sample *vms;	/* sorted by tgid, no duplicates */
	size_t nr_vms;
	size_t cap_vms;
	struct hists hists;		/* summed over CPUs */
	struct self_stats self;		/* summed over CPUs */
};

void snapshot_init(struct snapshot *s);
void snapshot_free(struct snapshot *s);
/* Forget the VMs and zero the sums; keep the memory. */
void snapshot_reset(struct snapshot *s);
/* Append one VM (no sorting, no dedup: collect_from does both). */
int snapshot_add_vm(struct snapshot *s, __u32 tgid,
		    const struct vm_guests *stats);
/* Sort by tgid; of two samples of one tgid (same scrape) keep one. */
void snapshot_sort_dedup(struct snapshot *s);
/* Index of tgid in s->vms, or -1. */
long snapshot_find(const struct snapshot *s, __u32 tgid);

/*
 * One map, seen through the calls collect needs.  Each returns 0 or a
 * negative errno; -ENOENT means "no next key" for next_key and "entry
 * gone" for lookup and del.  lookup fills ncpus values, each rounded up
 * to 8 bytes, as the kernel hands out per-CPU values.
 */
struct map_reader {
	int (*next_key)(const struct map_reader *m, const __u32 *key,
			__u32 *next);
	int (*lookup)(const struct map_reader *m, const __u32 *key,
		      void *values);
	int (*del)(const struct map_reader *m, const __u32 *key);
	/*
	 * Optional (NULL: walk with next_key and lookup): up to *count keys
	 * and their per-CPU values after *token (first: NULL), as
	 * BPF_MAP_LOOKUP_BATCH.  Sets *count to what it filled and *next to
	 * the token of the rest; -ENOENT once no entry is left (the *count
	 * filled are valid), -ENOSPC if one hash bucket holds more than
	 * *count entries (none filled).
	 */
	int (*lookup_batch)(const struct map_reader *m, const __u32 *token,
			    __u32 *next, __u32 *keys, void *values,
			    __u32 *count);
	int fd;		/* used by the libbpf implementation */
	void *priv;	/* used by other implementations (tests) */
};

/* The libbpf implementation: bpf_map_* calls on fd. */
void map_reader_bpf(struct map_reader *m, int fd);

struct collect_src {
	struct map_reader vm_stats;
	struct map_reader hists;
	struct map_reader self_stats;
	/*
	 * vm_names (struct vm_name per tgid): not read by collect_from() but
	 * by the VM table, for a VM it has not named yet (vm_table.h).  No
	 * lookup (zeroed): there is none, VMs are named from /proc.
	 */
	struct map_reader vm_names;
	int ncpus;	/* libbpf_num_possible_cpus() */
};

/* Fill src with libbpf readers; -errno if the CPU count is unknown. */
int collect_src_bpf(struct collect_src *src, int vm_stats_fd, int hists_fd,
		    int self_stats_fd);

/* a += b, counter by counter (both levels). */
void vm_guests_add(struct vm_guests *a, const struct vm_guests *b);
/*
 * A VM's counts summed over its guest levels, for the outputs that have no
 * guest dimension (the JSON record, the live view, compare).
 */
void vm_guests_total(struct vm_stats *out, const struct vm_guests *g);
/* True if no counter of v is nonzero. */
bool vm_stats_zero(const struct vm_stats *v);

/* Per-CPU value stride: the kernel rounds each CPU's copy up to 8 bytes. */
size_t percpu_stride(size_t value_size);
/*
 * Sum ncpus per-CPU copies of a struct made only of __u64 fields (all of
 * unsync.h's map values are) field by field into out (value_size bytes).
 * Counters wrap modulo 2^64, as they do in the kernel.
 */
void percpu_sum_u64(void *out, const void *percpu, size_t value_size,
		    int ncpus);

/*
 * Walk vm_stats and read both arrays into s (reset first).  vm_stats is
 * read a batch of entries per call where the reader can (one bpf() call
 * per key costs a scrape of 1,000 VMs more than its render), else key by
 * key; an entry deleted between next_key and lookup is skipped.  Returns 0 or
 * -errno; on error s holds whatever was read and must not be rendered as
 * complete.
 */
int collect_from(struct snapshot *s, const struct collect_src *src);

/* collect_src_bpf() + collect_from(): the daemon's entry point. */
int collect_snapshot(struct snapshot *s, int vm_stats_fd, int hists_fd,
		     int self_stats_fd);

#endif /* __COLLECT_H */
