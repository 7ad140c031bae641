// SPDX-License-Identifier: GPL-2.0
/*
 * Observe the x86 shadow MMU's unsync walk:
 *   mmu_sync_children() -> mmu_unsync_walk() -> __mmu_unsync_walk() (recursive)
 *   mmu_pages_clear_parents() (stock kernels only)
 *
 * Every function hook exists twice, as fentry/fexit and as kprobe/kretprobe;
 * user space turns on one flavour per function before load.  Both flavours
 * call the same handlers, and the handlers never use fexit's arguments:
 * whatever the exit needs was saved at entry, in per-task state.
 *
 * All of this runs under kvm->mmu_lock held for write, on the vCPU's thread.
 * The hot path is one task-local storage lookup per hook (one per call at
 * mmu_pages_clear_parents, whose entry state is per CPU); per-VM counters
 * are updated once per sync call (or per zap walk), and the ring buffer
 * sees one record per sync call unless frame tracing was asked for.
 *
 * Every per-VM count goes to the guest level (enum guest_level) of the
 * shadow page it starts from: role.guest_mode, read once where a sync or a
 * walk outside one begins, and once per tracepoint hit.  Every page a walk
 * reaches has its root's guest_mode (kvm_mmu_child_role() copies the
 * parent's role, guest_mode included), so the frames need no
 * read of their own.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "unsync.h"

#define ENOSPC	28
#define EINTR	4

char LICENSE[] SEC("license") = "GPL";

/* Set by user space before load. */
const volatile bool trace_frames = false;
/*
 * One record per sync call and zap walk goes up only for --trace: the
 * counters live in the maps, and nobody else reads those records.
 */
const volatile bool trace_syncs = false;
/*
 * Wake the daemon only once this much waits in the ring buffer (a quarter
 * of it); below that it reads what is there at its next poll, at most
 * 100 ms later: one wake-up per batch of records, not one per record.
 */
const volatile __u64 ringbuf_wake_bytes = 0;
/*
 * Stock kernels whose build inlined mmu_pages_clear_parents() (Debian's
 * 6.12 and 7.2 do): count its clears from the page vector instead, see
 * derive_clear_parents_clears().
 */
const volatile bool derive_clear_parents = false;

/*
 * The page vector as a top-level walk left it, read once at its exit for
 * the leaves and derive_clear_parents_clears().  In the task state, not
 * on the BPF stack.
 */
struct pvec_copy {
	u64 raw[2 * PVEC_NR_MAX + 1];	/* kretprobe: the vector as read */
	u64 sp[PVEC_NR_MAX];
	u32 uc[PVEC_NR_MAX];		/* unsync_children, counted down */
	u8 level[PVEC_NR_MAX];
	u8 canon[PVEC_NR_MAX];		/* first entry with the same sp */
	u32 nr;				/* pvec->nr */
	u32 leaves;			/* entries that are unsync pages */
	/*
	 * derive_clear_parents_clears()'s parents (entry index + 1; 0 is
	 * NULL): here, not on the stack, where the 6.1 verifier would
	 * track every combination of their values.
	 */
	u32 parent[PARENTS_MAX];
};

struct walk_frame {
	u64 sp;
	u32 uc_entry;		/* sp->unsync_children at entry */
	u32 level;
};

/* Accumulated over one sync call, or over one walk outside a sync. */
struct walk_acc {
	u32 walks;
	u32 restarts;		/* top-level walks that returned -ENOSPC */
	u32 frames;
	u32 leaves;
	u32 clears_walk;
	u32 clears_parents;
	u32 max_nr;
	u32 root_level;
	u32 guest;		/* enum guest_level of the root */
	u32 pages_synced;	/* kvm_mmu_sync_page hits inside the sync */
};

/*
 * A task's state while it is inside a sync call or a walk.  Per task, not
 * per CPU: the task may reschedule between walks
 * (cond_resched_rwlock_write) and come back on another CPU.  In the task's
 * local storage, found from the task itself (no hash of its id), made at
 * its first hooked call and kept until the task exits: each sync and walk
 * sets what it uses at its entry.
 */
struct task_state {
	u64 sync_start_ns;
	u64 pvec;			/* top-level walk's page vector */
	u32 in_sync;
	u32 can_yield;
	u32 depth;			/* __mmu_unsync_walk frames open */
	u32 walk_ctx;			/* enum walk_ctx of the open walk */
	u32 pad;
	struct walk_frame stack[FRAME_STACK_MAX];
	struct walk_acc sync;		/* the open sync call */
	struct walk_acc zap;		/* the open walk outside a sync */
	struct pvec_copy copy;		/* derive_clear_parents() only */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} task_states SEC(".maps");

/*
 * mmu_pages_clear_parents() runs under mmu_lock held for write, which
 * keeps the task on its CPU from the function's entry to its exit (with
 * preemption off, or migration off on PREEMPT_RT), and it never calls
 * itself: its entry snapshot fits in one slot per CPU, a cheaper lookup
 * than the task's hash entry.  The slot names the thread that filled it;
 * an exit that finds another (a task preempted inside it on PREEMPT_RT,
 * or an entry that never ran) counts an orphan exit and nothing else.
 */
struct clear_parents_slot {
	u32 tid;			/* 0: empty */
	u32 pad;
	u64 parents[PARENTS_MAX];	/* kprobe flavour: for the exit */
	u32 uc[PARENTS_MAX];		/* parents[i]->unsync_children at entry */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct clear_parents_slot);
} clear_parents_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);		/* VMM tgid */
	__type(value, struct vm_guests);	/* see unsync.h: why per VMM */
} vm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct hists);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct self_stats);
} self_stats SEC(".maps");

/*
 * Names of the VMs in vm_stats (unsync.h: struct vm_name), one per entry
 * there and as many.  Allocated per insert rather than 1024 up front: a
 * host has a few VMs, and the daemon deletes a name with its VM.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, u32);		/* VMM tgid */
	__type(value, struct vm_name);
} vm_names SEC(".maps");

/* announce_vm()'s argv copy: more than a BPF stack holds. */
struct vm_argv {
	char args[VM_ARGS_MAX];
	struct vm_name name;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct vm_argv);
} vm_argv_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static const struct vm_guests zero_vm;

static __always_inline struct self_stats *self(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&self_stats, &zero);
}

static __always_inline struct hists *global_hists(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&hists, &zero);
}

static __always_inline u64 submit_flags(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= ringbuf_wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void count_dropped(void)
{
	struct self_stats *ss = self();

	if (ss)
		ss->ringbuf_dropped++;
}

/* Does p, with room bytes of argv left, start with "-name" or "--name"? */
static __always_inline bool is_name_arg(const char *p, u64 room)
{
	u64 d = p[1] == '-';	/* "--name": QEMU takes it as "-name" */

	return p[0] == '-' && d + 5 < room && p[d + 1] == 'n' &&
	       p[d + 2] == 'a' && p[d + 3] == 'm' && p[d + 4] == 'e' &&
	       !p[d + 5];
}

/* name_value_at()'s state, from one byte to the next. */
struct name_scan {
	u32 len;		/* argv bytes in the scratch copy */
	u32 at;			/* the last -name value's start, or VM_ARGS_MAX */
	bool start;		/* this byte starts an argument */
	bool value;		/* ... which is the value of a -name */
};

static long name_scan_byte(u32 i, void *ctx)
{
	struct name_scan *s = ctx;
	struct vm_argv *v;
	u64 k = i;		/* bounded below, in the register used */
	const char *p;
	u32 zero = 0;

	v = bpf_map_lookup_elem(&vm_argv_scratch, &zero);
	if (!v || k >= VM_ARGS_MAX - 8 || k >= s->len)
		return 1;
	p = &v->args[k];
	if (s->start) {
		if (s->value)
			s->at = k;
		/* not argv[0]; p[0..7] is inside v whatever len is */
		s->value = k && is_name_arg(p, s->len - k);
	}
	s->start = !p[0];
	return 0;
}

/*
 * Where the value of the last -name or --name argument starts in the
 * NUL-separated argv of the scratch copy (len bytes), or VM_ARGS_MAX if
 * there is none.  One pass, once per VM; bpf_loop() because a loop the
 * verifier walks byte by byte is too long for it.
 */
static __always_inline u32 name_value_at(u32 len)
{
	struct name_scan s = { .len = len, .at = VM_ARGS_MAX, .start = true };

	bpf_loop(len, name_scan_byte, &s, 0);
	return s.at;
}

/*
 * Once per vm_stats entry: the VMM's name into vm_names, read from its
 * own task and memory while it runs, so that it outlives the process.
 */
static __noinline void announce_vm(u32 tgid)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	unsigned long start, end;
	struct self_stats *ss;
	struct vm_argv *v;
	struct vm_name *n;
	u32 zero = 0, len = 0, at;

	v = bpf_map_lookup_elem(&vm_argv_scratch, &zero);
	if (!v)
		return;
	n = &v->name;
	__builtin_memset(n, 0, sizeof(*n));
	BPF_CORE_READ_STR_INTO(&n->comm, task, group_leader, comm);
	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	if (start && end > start) {
		len = end - start;
		if (len > VM_ARGS_MAX - 1)
			len = VM_ARGS_MAX - 1;
		len &= VM_ARGS_MAX - 1;
		/* Fails (and zeroes) if a page is not resident: /proc then. */
		if (bpf_probe_read_user(v->args, len, (void *)start))
			len = 0;
	}
	v->args[len & (VM_ARGS_MAX - 1)] = 0;	/* a value cut short ends here */
	n->args_len = len;
	at = name_value_at(len);
	if (at < VM_ARGS_MAX)
		bpf_probe_read_kernel_str(n->name_opt, sizeof(n->name_opt),
					  &v->args[at & (VM_ARGS_MAX - 1)]);
	/*
	 * Any entry here is a name whose delete failed when its VM was
	 * reaped (this runs once per new vm_stats entry): the pid's new VM
	 * replaces it.
	 */
	if (bpf_map_update_elem(&vm_names, &tgid, n, BPF_ANY)) {
		ss = self();
		if (ss)
			ss->vm_names_full++;
	}
}

/* The current VMM's counters of one guest level (enum guest_level). */
static __always_inline struct vm_stats *vm_of_current(u32 guest)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct self_stats *ss;
	struct vm_guests *vg;

	if (guest >= GUEST_MAX)
		guest = GUEST_L1;
	vg = bpf_map_lookup_elem(&vm_stats, &tgid);
	if (vg)
		return &vg->guest[guest];
	if (bpf_map_update_elem(&vm_stats, &tgid, &zero_vm, BPF_NOEXIST) == 0)
		announce_vm(tgid);
	vg = bpf_map_lookup_elem(&vm_stats, &tgid);
	if (!vg) {
		/* the map is full: this VM's counts are lost, and said so */
		ss = self();
		if (ss)
			ss->vm_stats_full++;
		return NULL;
	}
	return &vg->guest[guest];
}

static __always_inline struct task_state *task_get(bool create)
{
	struct task_state *ts;
	struct self_stats *ss;

	/* created zeroed; NULL when out of memory (or the storage is busy) */
	ts = bpf_task_storage_get(&task_states, bpf_get_current_task_btf(), 0,
				  create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (!ts && create) {
		ss = self();
		if (ss)
			ss->task_state_full++;
	}
	return ts;
}

static __always_inline void count_orphan(void)
{
	struct self_stats *ss = self();

	if (ss)
		ss->orphan_exits++;
}

/*
 * Reading a shadow page.  `btf` is a constant at every call: true in the
 * fentry/fexit and tp_btf programs, where sp is a BTF pointer the verifier
 * lets the program load from directly (a faulting load reads 0), false in
 * kprobes and raw tracepoints, whose arguments are plain numbers and need
 * bpf_probe_read_kernel().  The branch not taken is compiled out.  Newer
 * verifiers type a BTF argument "trusted or NULL": no arithmetic on it
 * (a bitfield's byte offset) before a NULL check.
 */
static __always_inline u32 sp_level(struct kvm_mmu_page *sp, bool btf)
{
	if (btf && !sp)
		return 0;
	if (btf)
		return BPF_CORE_READ_BITFIELD(sp, role.level);
	return BPF_CORE_READ_BITFIELD_PROBED(sp, role.level);
}

/*
 * enum guest_level of a shadow page: role.guest_mode, a bitfield that sits
 * at bit 17 on 6.1, 6.12 and 7.2 with different bits below it, so read
 * through its CO-RE byte offset and shifts.  A kernel without the bit
 * (none known) has one level.
 */
static __always_inline u32 sp_guest(struct kvm_mmu_page *sp, bool btf)
{
	if (!bpf_core_field_exists(sp->role.guest_mode))
		return GUEST_L1;
	if (btf && !sp)
		return GUEST_L1;
	if (btf)
		return BPF_CORE_READ_BITFIELD(sp, role.guest_mode) ?
		       GUEST_L2 : GUEST_L1;
	return BPF_CORE_READ_BITFIELD_PROBED(sp, role.guest_mode) ?
	       GUEST_L2 : GUEST_L1;
}

static __always_inline u32 sp_uc(struct kvm_mmu_page *sp, bool btf)
{
	if (btf && !sp)
		return 0;
	if (btf)
		return sp->unsync_children;
	return BPF_CORE_READ(sp, unsync_children);
}

static __always_inline u32 sp_unsync_children(u64 sp)
{
	return sp_uc((struct kvm_mmu_page *)sp, false);
}

/*
 * Where the page vector keeps its entries and its count, in whichever
 * shape this kernel has (see vmlinux.h).  All three values are CO-RE
 * constants, so the branches not taken are removed at load time.
 */
struct pvec_layout {
	u32 page_off;
	u32 elem_size;
	u32 nr_off;
};

static __always_inline bool pvec_layout(struct pvec_layout *l)
{
	if (bpf_core_type_exists(struct kvm_mmu_page_vec)) {
		l->page_off = bpf_core_field_offset(struct kvm_mmu_page_vec, page);
		l->elem_size = bpf_core_field_size(struct kvm_mmu_page_vec, page) / PVEC_NR_MAX;
		l->nr_off = bpf_core_field_offset(struct kvm_mmu_page_vec, nr);
		return true;
	}
	if (bpf_core_field_exists(struct kvm_mmu_pages, page)) {
		l->page_off = bpf_core_field_offset(struct kvm_mmu_pages, page);
		l->elem_size = bpf_core_field_size(struct kvm_mmu_pages, page) / PVEC_NR_MAX;
		l->nr_off = bpf_core_field_offset(struct kvm_mmu_pages, nr);
		return true;
	}
	if (bpf_core_field_exists(struct kvm_mmu_pages___bare, page)) {
		l->page_off = bpf_core_field_offset(struct kvm_mmu_pages___bare, page);
		l->elem_size = bpf_core_field_size(struct kvm_mmu_pages___bare, page) / PVEC_NR_MAX;
		l->nr_off = bpf_core_field_offset(struct kvm_mmu_pages___bare, nr);
		return true;
	}
	return false;
}

/*
 * One entry of the page vector the verifier knows as a BTF pointer (the
 * fexit argument): a plain load at the offset pvec_layout() gives for this
 * kernel's shape of the vector (CO-RE cannot scale an array index by the
 * kernel's element size: the layout's constants do).  i must be a
 * constant: a BTF pointer takes no variable offset.  The verifier checks
 * the load against the kernel's type and types the result.
 */
static __always_inline struct kvm_mmu_page *
pvec_sp_btf(void *pvec, const struct pvec_layout *l, u32 i)
{
	return *(struct kvm_mmu_page **)(pvec + l->page_off + i * l->elem_size);
}

static __always_inline u32 pvec_nr_btf(void *pvec, const struct pvec_layout *l)
{
	return *(u32 *)(pvec + l->nr_off);
}

/*
 * What a top-level walk's exit takes from one entry of the vector: its
 * page and level and, for derive_clear_parents_clears(), an upper-level
 * entry's unsync_children.  Returns 1 for an unsync leaf, the pages the
 * caller will sync (or zap), 0 for an upper-level page: the walk adds a
 * child either because it has unsync children (then it is above level 1:
 * only the parents of unsync pages get them) or because it is unsync (then
 * it is at level 1: KVM unsyncs nothing else, mmu_try_to_unsync_pages()
 * WARNs otherwise), and the root has unsync children.  So the level tells
 * the two apart without a read of sp->unsync.
 */
static __always_inline u32 pvec_entry(struct pvec_copy *c, u32 i,
				      struct kvm_mmu_page *sp, bool btf)
{
	u32 lvl = sp ? sp_level(sp, btf) : 0;

	i &= PVEC_NR_MAX - 1;
	c->sp[i] = (u64)sp;
	if (derive_clear_parents) {
		c->level[i] = lvl;
		c->uc[i] = lvl > 1 ? sp_uc(sp, btf) : 0;
	}
	return lvl == 1;
}

/*
 * fexit: the vector read with plain loads, entry by entry, written out
 * sixteen times: each entry's offset must be a constant, and clang does
 * not unroll this loop when asked.
 */
#define PVEC_ENTRY_BTF(i)						\
	do {								\
		if ((i) >= nr)						\
			return;						\
		c->leaves += pvec_entry(c, (i), pvec_sp_btf(pvec, &l, (i)), true); \
	} while (0)

static __always_inline void pvec_read_btf(struct pvec_copy *c, void *pvec)
{
	struct pvec_layout l;
	u32 nr;

	c->nr = c->leaves = 0;
	if (!pvec || !pvec_layout(&l))
		return;
	nr = c->nr = pvec_nr_btf(pvec, &l);
	PVEC_ENTRY_BTF(0);
	PVEC_ENTRY_BTF(1);
	PVEC_ENTRY_BTF(2);
	PVEC_ENTRY_BTF(3);
	PVEC_ENTRY_BTF(4);
	PVEC_ENTRY_BTF(5);
	PVEC_ENTRY_BTF(6);
	PVEC_ENTRY_BTF(7);
	PVEC_ENTRY_BTF(8);
	PVEC_ENTRY_BTF(9);
	PVEC_ENTRY_BTF(10);
	PVEC_ENTRY_BTF(11);
	PVEC_ENTRY_BTF(12);
	PVEC_ENTRY_BTF(13);
	PVEC_ENTRY_BTF(14);
	PVEC_ENTRY_BTF(15);
}

/*
 * kretprobe: the vector's pointers and count in one probe read into the
 * task state, then the pages' fields one probe read each.
 */
static __always_inline void pvec_read(struct pvec_copy *c, u64 pvec)
{
	struct pvec_layout l;
	u32 i, nr, off;
	u64 sp;

	c->nr = c->leaves = 0;
	if (!pvec_layout(&l) || l.nr_off + sizeof(u32) > sizeof(c->raw))
		return;
	if (bpf_probe_read_kernel(c->raw, l.nr_off + sizeof(u32), (void *)pvec))
		return;
	/* l.nr_off is a constant the check above keeps inside c->raw */
	nr = c->nr = *(u32 *)((u8 *)c->raw + l.nr_off);
	for (i = 0; i < PVEC_NR_MAX; i++) {
		if (i >= nr)
			break;
		off = (l.page_off + i * l.elem_size) / sizeof(u64);
		sp = c->raw[off & (PVEC_NR_MAX * 2 - 1)];
		c->leaves += pvec_entry(c, i, (struct kvm_mmu_page *)sp, false);
	}
}

/*
 * The bits mmu_pages_clear_parents() will clear after this walk, counted
 * from the page vector the walk hands its caller (read by pvec_read*()
 * into c), on every stock kernel unless --clear-parents=hook.  Both
 * callers (mmu_sync_children and mmu_zap_unsync_children) run
 * for_each_sp() over every leaf of a batch and call it once per leaf,
 * under the same write lock the walk ran in; syncing, write-protecting or
 * zapping a leaf changes no bitmap of the pages above it.  So the clears
 * follow from the vector alone, entry by entry, as mmu_pages_first(),
 * mmu_pages_next() and mmu_pages_clear_parents() walk it
 * (arch/x86/kvm/mmu/mmu.c):
 *   - entry 0 is the root: parent[level - 2] = root, parent[level - 1] =
 *     NULL (the sentinel);
 *   - an upper-level entry sets parent[level - 2];
 *   - a 4K entry is a leaf: clear one bit in parent[0], and go on to the
 *     next parent up while the page just cleared has no unsync child left.
 * An upper-level page reached through two parents sits in the vector
 * twice; both entries count down one unsync_children (a leaf is never
 * added twice: mmu_pages_add() skips an unsync page already there).  On
 * 6.1, where the function can be hooked, the hooked counts equal the same
 * model the derived ones do (tests/vm/test_kernels_lab.py).
 */
struct derive_walk {
	struct pvec_copy *c;
	u32 cleared;
};

/*
 * Entry i + 1 of the vector (entry 0, the root, is set up by the caller):
 * an upper-level page becomes the parent of its level, a leaf clears up
 * its parents.  A bpf_loop() callback: the verifier checks it once, where
 * it walked the 16 entries times 4 parents of an open-coded loop path by
 * path, past its million-instruction limit on 6.1.
 */
static long derive_entry(u32 i, void *data)
{
	struct derive_walk *d = data;
	struct pvec_copy *c = d->c;
	u32 *parent, j, lvl, p;

	if (!c)
		return 1;
	parent = c->parent;
	i = (i + 1) & (PVEC_NR_MAX - 1);
	lvl = c->level[i];
	if (lvl != 1) {
		if (lvl >= 2 && lvl - 2 < PARENTS_MAX)
			parent[lvl - 2] = i + 1;
		return 0;
	}
	for (j = 0; j < PARENTS_MAX; j++) {
		p = parent[j];
		if (!p)
			break;
		p = c->canon[(p - 1) & (PVEC_NR_MAX - 1)] & (PVEC_NR_MAX - 1);
		d->cleared++;
		if (--c->uc[p])
			break;
	}
	return 0;
}

static __always_inline u32 derive_clear_parents_clears(struct pvec_copy *c,
							u32 nr)
{
	struct derive_walk d = { .c = c };
	u32 i, j, lvl;

	if (nr > PVEC_NR_MAX)
		nr = PVEC_NR_MAX;
	for (i = 0; i < PVEC_NR_MAX; i++) {
		if (i >= nr)
			break;
		c->canon[i] = i;
		if (c->level[i] == 1)
			continue;
		for (j = 0; j < PVEC_NR_MAX; j++) {
			if (j >= i)
				break;
			if (c->level[j] != 1 && c->sp[j] == c->sp[i]) {
				c->canon[i] = c->canon[j];
				break;
			}
		}
	}
	if (!nr)
		return 0;
	__builtin_memset(c->parent, 0, sizeof(c->parent));
	lvl = c->level[0];
	if (lvl < 2 || lvl > PARENTS_MAX)
		return 0;	/* the kernel WARNs: a 4K root has no parents */
	c->parent[lvl - 2] = 1;
	bpf_loop(nr - 1, derive_entry, &d, 0);
	return d.cleared;
}

static __always_inline void flush_acc(struct vm_stats *vs, u32 ctx,
				      const struct walk_acc *a)
{
	if (ctx >= CTX_MAX)
		return;
	vs->walks[ctx][WALK_DONE] += a->walks - a->restarts;
	vs->walks[ctx][WALK_ENOSPC] += a->restarts;
	vs->frames[ctx] += a->frames;
	vs->leaves[ctx] += a->leaves;
	vs->clears[ctx][SITE_WALK] += a->clears_walk;
	vs->clears[ctx][SITE_CLEAR_PARENTS] += a->clears_parents;
	vs->pages_synced += a->pages_synced;
}

static __always_inline void emit_summary(u32 type, s32 result, u64 start,
					 u64 end, u32 can_yield,
					 const struct walk_acc *a)
{
	struct sync_event *e;
	u64 id = bpf_get_current_pid_tgid();

	if (!trace_syncs)
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_dropped();
		return;
	}
	e->hdr.type = type;
	e->hdr.tgid = id >> 32;
	e->tid = (u32)id;
	e->result = result;
	e->start_ns = start;
	e->duration_ns = end - start;
	e->can_yield = can_yield;
	e->root_level = a->root_level;
	e->walks = a->walks;
	e->restarts = a->restarts;
	e->frames = a->frames;
	e->leaves = a->leaves;
	e->clears_walk = a->clears_walk;
	e->clears_parents = a->clears_parents;
	e->max_nr = a->max_nr;
	e->guest = a->guest;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, submit_flags());
}

static __always_inline void emit_frame(u32 ctx, u32 depth, u32 level, s32 ret,
				       u32 cleared, u32 nr)
{
	struct frame_event *e;
	u64 id = bpf_get_current_pid_tgid();

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_dropped();
		return;
	}
	e->hdr.type = EV_FRAME;
	e->hdr.tgid = id >> 32;
	e->tid = (u32)id;
	e->ctx = ctx;
	e->depth = depth;
	e->level = level;
	e->ret = ret;
	e->cleared = cleared;
	e->nr = nr;
	e->pad = 0;
	e->ts_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, submit_flags());
}

/* ---- mmu_sync_children(vcpu, parent, can_yield) ---- */

static __always_inline int on_sync_enter(struct kvm_mmu_page *parent,
					 bool can_yield, bool btf)
{
	struct task_state *ts = task_get(true);

	if (!ts)
		return 0;
	__builtin_memset(&ts->sync, 0, sizeof(ts->sync));
	ts->in_sync = 1;
	ts->can_yield = can_yield;
	ts->sync.root_level = sp_level(parent, btf);
	ts->sync.guest = sp_guest(parent, btf);
	ts->sync_start_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_sync_exit(s32 ret)
{
	struct task_state *ts = task_get(false);
	struct vm_stats *vs;
	struct hists *h;
	u64 now = bpf_ktime_get_ns(), d;
	u32 res;

	if (!ts || !ts->in_sync) {
		count_orphan();
		return 0;
	}
	ts->in_sync = 0;
	res = ret == 0 ? SYNC_OK : ret == -EINTR ? SYNC_EINTR : SYNC_OTHER;
	vs = vm_of_current(ts->sync.guest);
	if (vs) {
		vs->sync_calls[res]++;
		vs->restarts += ts->sync.restarts;
		flush_acc(vs, CTX_SYNC, &ts->sync);
	}
	d = now - ts->sync_start_ns;
	h = global_hists();
	if (h) {
		h->sync_duration[duration_slot(d)]++;
		h->sync_duration_sum_ns += d;
	}
	emit_summary(EV_SYNC, ret, ts->sync_start_ns, now, ts->can_yield,
		     &ts->sync);
	return 0;
}

/* ---- __mmu_unsync_walk(sp, pvec), recursive ---- */

static __always_inline int on_walk_enter(struct kvm_mmu_page *sp, void *pvec,
					 bool btf)
{
	struct task_state *ts = task_get(true);
	struct walk_frame *f;
	u32 d;

	if (!ts)
		return 0;
	d = ts->depth++;
	if (d >= FRAME_STACK_MAX) {
		struct self_stats *ss = self();

		if (ss)
			ss->stack_overflow++;
		return 0;
	}
	if (d == 0) {
		ts->pvec = (u64)pvec;
		ts->walk_ctx = ts->in_sync ? CTX_SYNC : CTX_ZAP;
		if (ts->walk_ctx == CTX_ZAP) {
			__builtin_memset(&ts->zap, 0, sizeof(ts->zap));
			ts->zap.root_level = sp_level(sp, btf);
			ts->zap.guest = sp_guest(sp, btf);
			ts->sync_start_ns = bpf_ktime_get_ns();
		}
	}
	f = &ts->stack[d];
	f->sp = (u64)sp;
	f->uc_entry = sp_uc(sp, btf);
	/* only a frame record says it */
	if (trace_frames)
		f->level = sp_level(sp, btf);
	return 0;
}

/* A top-level walk ended: nr is pvec->nr, leaves its unsync pages. */
static __always_inline void top_walk_exit(struct task_state *ts,
					  struct walk_acc *a, s32 ret,
					  u32 nr, u32 leaves)
{
	struct hists *h;
	u32 ctx = ts->walk_ctx, derived = 0, slot;
	struct vm_stats *vs;

	a->walks++;
	if (ret == -ENOSPC)
		a->restarts++;
	a->leaves += leaves;
	/* 0: the caller's loop ends, no batch, no clear_parents */
	if (derive_clear_parents && ret)
		derived = derive_clear_parents_clears(&ts->copy, nr);
	if (nr > a->max_nr)
		a->max_nr = nr;
	/*
	 * The bucket, nr clamped to PVEC_NR_MAX.  6.1's verifier follows the
	 * clamp's branch that cannot be taken when it already knows nr >= 16
	 * (after derive_clear_parents_clears()'s loops), with a range whose
	 * minimum is above its maximum, and rejects the index.  The mask
	 * after the barrier (which the compiler cannot see through) makes
	 * that range valid again and changes no real value.
	 */
	slot = nr < PVEC_NR_MAX ? nr : PVEC_NR_MAX;
	barrier_var(slot);
	slot &= 0x1f;
	h = global_hists();
	if (h && ctx < CTX_MAX && slot < PVEC_BUCKETS) {
		h->pvec_depth[ctx][slot]++;
		h->pvec_depth_sum[ctx] += nr;
	}
	if (ctx != CTX_ZAP) {
		a->clears_parents += derived;
		return;
	}
	vs = vm_of_current(a->guest);
	/*
	 * As with the hook: a zap walk's clear_parents clears come after its
	 * record, so they go to the VM's counter alone.
	 */
	if (vs) {
		flush_acc(vs, CTX_ZAP, a);
		vs->clears[CTX_ZAP][SITE_CLEAR_PARENTS] += derived;
	}
	emit_summary(EV_ZAP_WALK, ret, ts->sync_start_ns, bpf_ktime_get_ns(),
		     0, a);
}

/*
 * sp and pvec are the fexit's BTF pointers (btf), or NULL (kretprobe: the
 * entry's, saved in the task state, are read with probe reads).
 */
static __always_inline int on_walk_exit(s32 ret, struct kvm_mmu_page *sp,
					void *pvec, bool btf)
{
	struct task_state *ts = task_get(false);
	struct walk_acc *a;
	struct walk_frame *f;
	u32 d, cleared, uc, nr = 0, leaves = 0;

	if (!ts || !ts->depth) {
		count_orphan();
		return 0;
	}
	d = --ts->depth;
	if (d >= FRAME_STACK_MAX)
		return 0;
	/*
	 * clang bounds a copy of d and indexes with another: the barrier
	 * keeps the mask, which the verifier then sees on the index.
	 */
	barrier_var(d);
	d &= FRAME_STACK_MAX - 1;
	a = ts->walk_ctx == CTX_ZAP ? &ts->zap : &ts->sync;
	f = &ts->stack[d];
	/* mmu_lock is held for write: only this frame changed sp's count. */
	uc = btf ? sp_uc(sp, true) : sp_unsync_children(f->sp);
	cleared = f->uc_entry - uc;
	a->frames++;
	a->clears_walk += cleared;
	if (trace_frames || d == 0) {
		if (btf)
			pvec_read_btf(&ts->copy, pvec);
		else
			pvec_read(&ts->copy, ts->pvec);
		/*
		 * Read back from the task state, not from the registers the
		 * reads left them in: the verifier then sees one unknown nr
		 * here, not one exact value per entry the read stopped at.
		 */
		barrier();
		nr = ts->copy.nr;
		leaves = ts->copy.leaves;
	}
	if (trace_frames)
		emit_frame(ts->walk_ctx, d, f->level, ret, cleared, nr);
	if (d == 0)
		top_walk_exit(ts, a, ret, nr, leaves);
	return 0;
}

/* ---- mmu_pages_clear_parents(parents), stock kernels ---- */

/* This CPU's slot, filled in by the current thread. */
static __always_inline struct clear_parents_slot *clear_parents_enter(void)
{
	struct clear_parents_slot *s;
	u32 zero = 0;

	s = bpf_map_lookup_elem(&clear_parents_slots, &zero);
	if (s)
		s->tid = (u32)bpf_get_current_pid_tgid();
	return s;
}

/* This CPU's slot if the current thread filled it, emptied; else NULL. */
static __always_inline struct clear_parents_slot *clear_parents_exit(void)
{
	struct clear_parents_slot *s;
	u32 zero = 0;

	s = bpf_map_lookup_elem(&clear_parents_slots, &zero);
	if (!s || s->tid != (u32)bpf_get_current_pid_tgid()) {
		count_orphan();
		return NULL;
	}
	s->tid = 0;
	return s;
}

/* One call's clears: to the open sync call, else to the VM (a zap). */
static __always_inline void clear_parents_count(u32 cleared)
{
	struct task_state *ts = task_get(false);
	struct vm_stats *vs;

	if (!ts)
		return;	/* nor was the walk it follows: task_state_full */
	if (ts->in_sync) {
		ts->sync.clears_parents += cleared;
		return;
	}
	/*
	 * mmu_zap_unsync_children(): after its walk, outside a sync.  The
	 * parents are pages that walk reached, so at its root's guest level,
	 * still in the task's state: no read of their own.
	 */
	vs = vm_of_current(ts->zap.guest);
	if (vs)
		vs->clears[CTX_ZAP][SITE_CLEAR_PARENTS] += cleared;
}

/*
 * fentry/fexit: parents and the pages in it are BTF pointers, read with
 * plain loads (the verifier makes them fault-safe) rather than a
 * bpf_probe_read_kernel() call each.  The kernel does not change parents
 * during the call, so the exit reads the same pointers again.  Like the
 * kernel's loop, stop at the first NULL: it is the sentinel above the
 * root, and the slots past it are uninitialised stack.
 */
static __always_inline int on_clear_parents_enter_btf(struct mmu_page_path *parents)
{
	struct clear_parents_slot *s = clear_parents_enter();
	struct kvm_mmu_page *sp;
	int i;

	if (!s)
		return 0;
#pragma unroll
	for (i = 0; i < PARENTS_MAX; i++) {
		sp = parents->parent[i];
		if (!sp)
			break;
		s->uc[i] = sp->unsync_children;
	}
	return 0;
}

static __always_inline int on_clear_parents_exit_btf(struct mmu_page_path *parents)
{
	struct clear_parents_slot *s = clear_parents_exit();
	struct kvm_mmu_page *sp;
	u32 cleared = 0;
	int i;

	if (!s)
		return 0;
#pragma unroll
	for (i = 0; i < PARENTS_MAX; i++) {
		sp = parents->parent[i];
		if (!sp)
			break;
		cleared += s->uc[i] - sp->unsync_children;
	}
	clear_parents_count(cleared);
	return 0;
}

/* kprobe/kretprobe: probe reads, and the pointers saved for the exit. */
static __always_inline int on_clear_parents_enter(struct mmu_page_path *parents)
{
	struct clear_parents_slot *s = clear_parents_enter();
	u64 p;
	int i;

	if (!s)
		return 0;
	for (i = 0; i < PARENTS_MAX; i++) {
		p = (u64)BPF_CORE_READ(parents, parent[i]);
		s->parents[i] = p;
		if (!p)
			break;
		s->uc[i] = sp_unsync_children(p);
	}
	return 0;
}

static __always_inline int on_clear_parents_exit(void)
{
	struct clear_parents_slot *s = clear_parents_exit();
	u32 cleared = 0;
	int i;

	if (!s)
		return 0;
	for (i = 0; i < PARENTS_MAX; i++) {
		if (!s->parents[i])
			break;
		cleared += s->uc[i] - sp_unsync_children(s->parents[i]);
	}
	clear_parents_count(cleared);
	return 0;
}

/*
 * ---- stable tracepoints ----
 * BTF tracepoints (tp_btf) where the kernel's BTF describes them: sp is a
 * BTF pointer, read with plain loads.  Raw tracepoints elsewhere (user
 * space loads one pair or the other): sp is read with probe reads.  Both
 * are attached by name, with no tracefs mount and no argument copy.
 *
 * kvm_mmu_sync_page fires for pages a sync syncs or zaps, all of them
 * below its root, so at its guest level: inside a sync the hit is only
 * counted in the task's state, and reaches the VM's counters with the
 * sync's other figures at its exit.  Outside one (a zap, a kernel without
 * the sync hook) it goes to the VM at once.
 */
static __always_inline int on_page_synced(struct kvm_mmu_page *sp, bool btf)
{
	struct task_state *ts = task_get(false);
	struct vm_stats *vs;

	if (ts && ts->in_sync) {
		ts->sync.pages_synced++;
		return 0;
	}
	vs = vm_of_current(sp_guest(sp, btf));
	if (vs)
		vs->pages_synced++;
	return 0;
}

/* A page goes unsync at a guest's write, outside any walk: to the VM. */
static __always_inline int on_page_unsynced(struct kvm_mmu_page *sp, bool btf)
{
	struct vm_stats *vs = vm_of_current(sp_guest(sp, btf));

	if (vs)
		vs->pages_unsynced++;
	return 0;
}

/* TP_PROTO(struct kvm_mmu_page *sp), both */
SEC("tp_btf/kvm_mmu_sync_page")
int BPF_PROG(tpb_sync_page, struct kvm_mmu_page *sp)
{
	return on_page_synced(sp, true);
}

SEC("tp_btf/kvm_mmu_unsync_page")
int BPF_PROG(tpb_unsync_page, struct kvm_mmu_page *sp)
{
	return on_page_unsynced(sp, true);
}

SEC("raw_tp/kvm_mmu_sync_page")
int tp_sync_page(struct bpf_raw_tracepoint_args *ctx)
{
	return on_page_synced((void *)ctx->args[0], false);
}

SEC("raw_tp/kvm_mmu_unsync_page")
int tp_unsync_page(struct bpf_raw_tracepoint_args *ctx)
{
	return on_page_unsynced((void *)ctx->args[0], false);
}

/* ---- fentry/fexit flavour: attach targets set by user space ---- */

SEC("fentry")
int BPF_PROG(fentry_sync_children, struct kvm_vcpu *vcpu,
	     struct kvm_mmu_page *parent, bool can_yield)
{
	return on_sync_enter(parent, can_yield, true);
}

SEC("fexit")
int BPF_PROG(fexit_sync_children, struct kvm_vcpu *vcpu,
	     struct kvm_mmu_page *parent, bool can_yield, int ret)
{
	return on_sync_exit(ret);
}

SEC("fentry")
int BPF_PROG(fentry_unsync_walk, struct kvm_mmu_page *sp, void *pvec)
{
	return on_walk_enter(sp, pvec, true);
}

SEC("fexit")
int BPF_PROG(fexit_unsync_walk, struct kvm_mmu_page *sp, void *pvec, int ret)
{
	return on_walk_exit(ret, sp, pvec, true);
}

SEC("fentry")
int BPF_PROG(fentry_clear_parents, struct mmu_page_path *parents)
{
	return on_clear_parents_enter_btf(parents);
}

SEC("fexit")
int BPF_PROG(fexit_clear_parents, struct mmu_page_path *parents)
{
	return on_clear_parents_exit_btf(parents);
}

/* ---- kprobe/kretprobe flavour: attached by user space by symbol ---- */

SEC("kprobe")
int BPF_KPROBE(kprobe_sync_children, struct kvm_vcpu *vcpu,
	       struct kvm_mmu_page *parent, bool can_yield)
{
	return on_sync_enter(parent, can_yield, false);
}

SEC("kretprobe")
int BPF_KRETPROBE(kretprobe_sync_children, int ret)
{
	return on_sync_exit(ret);
}

SEC("kprobe")
int BPF_KPROBE(kprobe_unsync_walk, struct kvm_mmu_page *sp, void *pvec)
{
	return on_walk_enter(sp, pvec, false);
}

SEC("kretprobe")
int BPF_KRETPROBE(kretprobe_unsync_walk, int ret)
{
	return on_walk_exit(ret, NULL, NULL, false);
}

SEC("kprobe")
int BPF_KPROBE(kprobe_clear_parents, struct mmu_page_path *parents)
{
	return on_clear_parents_enter(parents);
}

SEC("kretprobe")
int BPF_KRETPROBE(kretprobe_clear_parents)
{
	return on_clear_parents_exit();
}
