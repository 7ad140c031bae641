/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs (unsync.bpf.c) and the daemon (user/).
 *
 * Every struct here is also the BTF type of a pinned map value, so field
 * names are public: `bpftool map dump pinned` prints them.  Only plain
 * fixed-size integer types, so both sides agree on the layout.
 */
#ifndef __KVM_UNSYNC_H
#define __KVM_UNSYNC_H

#define PVEC_NR_MAX	16	/* KVM_PAGE_ARRAY_NR */
#define PVEC_BUCKETS	(PVEC_NR_MAX + 1)	/* pvec->nr 0..16 */
#define DURATION_SLOTS	40	/* log2(ns) buckets: 1ns .. ~550s */
#define FRAME_STACK_MAX	8	/* __mmu_unsync_walk recursion: <= 5 levels */
#define PARENTS_MAX	5	/* PT64_ROOT_MAX_LEVEL */
#define TASK_COMM_LEN	16
#define VM_ARGS_MAX	4096	/* bytes of a new VMM's argv looked at */
#define VM_NAME_OPT_MAX	256	/* bytes kept of its -name value */

/* Where a top-level walk ran: inside mmu_sync_children, or not (zap). */
enum walk_ctx {
	CTX_SYNC = 0,
	CTX_ZAP = 1,
	CTX_MAX,
};

enum walk_result {
	WALK_DONE = 0,		/* returned >= 0 */
	WALK_ENOSPC = 1,	/* returned -ENOSPC: the vector filled */
	WALK_RESULT_MAX,
};

enum sync_result {
	SYNC_OK = 0,		/* returned 0 */
	SYNC_EINTR = 1,		/* returned -EINTR (can_yield == false) */
	SYNC_OTHER = 2,		/* anything else: never expected */
	SYNC_RESULT_MAX,
};

/*
 * Whose page tables a shadow page shadows: its role.guest_mode.  A VM can
 * have both (npt=0: its own tables and its nested guest's); with
 * npt=1/ept=1 the shadow MMU serves nothing but a nested guest, so every
 * count is GUEST_L2's.
 */
enum guest_level {
	GUEST_L1 = 0,		/* guest_mode 0: the VM's own page tables */
	GUEST_L2 = 1,		/* guest_mode 1: its nested guest's (L1's
				 * NPT/EPT, or L2's own tables with npt=0) */
	GUEST_MAX,
};

/* Who cleared a bit of unsync_child_bitmap. */
enum clear_site {
	SITE_WALK = 0,		/* inside __mmu_unsync_walk */
	SITE_CLEAR_PARENTS = 1,	/* inside mmu_pages_clear_parents (stock) */
	SITE_MAX,
};

/*
 * The duration histogram's bucket rule, written once for both sides: the
 * BPF programs fill slot duration_slot(d) for a duration of d ns, user
 * space publishes slot k < DURATION_SLOTS - 1 as the bucket
 * le = duration_slot_bound_ns(k).
 *   slot 0                      d == 0
 *   slot k, 1 <= k <= 38        2^(k-1) <= d < 2^k
 *   slot 39 (DURATION_SLOTS-1)  d >= 2^38 (~275 s): the clamp, no upper bound
 * A bounded loop rather than a clz builtin, so the verifier of every kernel
 * the agent supports takes it.
 */
static inline __attribute__((always_inline)) __u32 duration_slot(__u64 d)
{
	__u32 slot = 0;

	while (d && slot < DURATION_SLOTS - 1) {
		d >>= 1;
		slot++;
	}
	return slot;
}

/* Every duration in slot k < DURATION_SLOTS - 1 is below this. */
static inline __attribute__((always_inline)) __u64
duration_slot_bound_ns(__u32 k)
{
	return 1ULL << k;
}

/*
 * The counters of one VM's shadow pages of one guest level (enum
 * guest_level): a sync, a walk outside one and a tracepoint hit are
 * counted under the role.guest_mode of the page they start from.
 */
struct vm_stats {
	__u64 sync_calls[SYNC_RESULT_MAX];
	__u64 walks[CTX_MAX][WALK_RESULT_MAX];	/* top-level walks */
	__u64 frames[CTX_MAX];			/* every __mmu_unsync_walk frame */
	__u64 restarts;				/* top-level -ENOSPC in a sync */
	__u64 leaves[CTX_MAX];			/* unsync pages handed to the caller */
	__u64 clears[CTX_MAX][SITE_MAX];	/* unsync_child_bitmap bits cleared */
	__u64 pages_unsynced;			/* kvmmmu:kvm_mmu_unsync_page */
	__u64 pages_synced;			/* kvmmmu:kvm_mmu_sync_page */
};

/*
 * Value of the pinned per-CPU hash "vm_stats", keyed by the VMM's tgid:
 * one struct vm_stats per guest level.  Keyed by the VMM, not by (VMM,
 * level), so that a VM is one map entry: its name (vm_names), its
 * --max-vms place and its series stay per VMM.  User space sums the per-CPU
 * copies.
 */
struct vm_guests {
	struct vm_stats guest[GUEST_MAX];
};

/* Global histograms: value of the pinned per-CPU array "hists" (1 entry). */
struct hists {
	__u64 pvec_depth[CTX_MAX][PVEC_BUCKETS];	/* pvec->nr at top-level exit */
	__u64 pvec_depth_sum[CTX_MAX];
	__u64 sync_duration[DURATION_SLOTS];	/* slot k: duration < 2^k ns */
	__u64 sync_duration_sum_ns;
};

/* The agent's own health: value of the pinned per-CPU array "self_stats". */
struct self_stats {
	__u64 ringbuf_dropped;	/* bpf_ringbuf_reserve() failed */
	__u64 task_state_full;	/* no task-local state could be made */
	__u64 stack_overflow;	/* recursion deeper than FRAME_STACK_MAX */
	__u64 orphan_exits;	/* exit seen without its entry (attached mid-call) */
	__u64 vm_stats_full;	/* counts of a VM lost: no room in vm_stats */
	__u64 vm_names_full;	/* a new VM's name not kept: no room in vm_names */
};

/*
 * Value of the pinned hash "vm_names", keyed by the VMM's tgid: what the
 * VMM was called when it made its vm_stats entry, read from its own task
 * and memory there and then.  Written once per vm_stats entry, on the path
 * that creates it, and deleted with it when the daemon reaps the VM's
 * series, so a reader that looks after the VMM exited still names it.
 * Strings, NUL-padded, so that bpftool prints them as such.
 */
struct vm_name {
	__u32 args_len;		/* argv bytes looked at; 0: argv unreadable */
	__u32 pad;
	char comm[TASK_COMM_LEN];	/* the process' name (its leader's comm) */
	/*
	 * The value of its last -name or --name argument, as QEMU takes it
	 * ("guest=NAME,debug-threads=on"; user space parses it, vm_names.h),
	 * cut at VM_NAME_OPT_MAX - 1 bytes; "" if there is none in the first
	 * VM_ARGS_MAX bytes of argv.
	 */
	char name_opt[VM_NAME_OPT_MAX];
};

enum event_type {
	EV_SYNC = 1,		/* one per mmu_sync_children call */
	EV_ZAP_WALK = 2,	/* one per top-level walk outside a sync */
	EV_FRAME = 3,		/* one per frame, only with --trace=frames */
};

/*
 * Every ring-buffer record starts with this header: the consumer reads it
 * first, then the record its type names.
 */
struct event_hdr {
	__u32 type;		/* enum event_type */
	__u32 tgid;		/* the VMM the record is about */
};

/* Ring-buffer record: one per mmu_sync_children call or zap walk. */
struct sync_event {
	struct event_hdr hdr;	/* EV_SYNC or EV_ZAP_WALK */
	__u32 tid;
	__s32 result;		/* sync: 0 / -EINTR; zap walk: walk's return */
	__u64 start_ns;
	__u64 duration_ns;
	__u32 can_yield;
	__u32 root_level;	/* role.level of the sync's (or walk's) root */
	__u32 walks;		/* top-level walks */
	__u32 restarts;		/* top-level walks that returned -ENOSPC */
	__u32 frames;
	__u32 leaves;
	__u32 clears_walk;
	__u32 clears_parents;
	__u32 max_nr;		/* deepest pvec->nr at a top-level exit */
	__u32 guest;		/* enum guest_level of the root */
	char comm[TASK_COMM_LEN];
};

/* Ring-buffer record for one __mmu_unsync_walk frame (--trace=frames). */
struct frame_event {
	struct event_hdr hdr;	/* EV_FRAME */
	__u32 tid;
	__u32 ctx;		/* enum walk_ctx */
	__u32 depth;		/* 0 = top-level */
	__u32 level;		/* sp->role.level */
	__s32 ret;
	__u32 cleared;		/* bits this frame cleared in sp's bitmap */
	__u32 nr;		/* pvec->nr at exit */
	__u32 pad;
	__u64 ts_ns;
};

#endif /* __KVM_UNSYNC_H */
