/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel types the agent reads, and nothing else.
 *
 * Not a full `bpftool btf dump` of one kernel: every type here is marked
 * preserve_access_index, so clang records each field access as a CO-RE
 * relocation and libbpf fixes the offsets up against the running kernel's
 * BTF (vmlinux, or the kvm module's BTF when KVM is a module).  Only the
 * fields named here are relied upon; a reader can see at a glance what the
 * agent depends on.  Field order and sizes here need not match any kernel.
 *
 * Checked against Debian 12's 6.1 (KVM as a module) and a 6.18 build (KVM
 * built in, unsync_children inside an anonymous union: CO-RE finds fields
 * through anonymous members by name).
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __s8 s8;
typedef __u16 u16;
typedef __s16 s16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
typedef _Bool bool;
enum { false = 0, true = 1 };

#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)

/* x86-64 register frame, for kprobe argument access (bpf_tracing.h). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/*
 * arch/x86/include/asm/kvm_host.h: low 4 bits of the role are the level;
 * guest_mode (bit 17 on 6.1, 6.12 and 7.2, whose bits below it differ) is
 * set on shadow pages of a nested guest's tables.
 */
union kvm_mmu_page_role {
	u32 word;
	struct {
		unsigned int level:4;
		unsigned int :13;
		unsigned int guest_mode:1;
	};
};

/* arch/x86/kvm/mmu/mmu_internal.h */
struct kvm_mmu_page {
	bool unsync;
	union kvm_mmu_page_role role;
	u64 gfn;
	unsigned int unsync_children;
};

/*
 * The walk's page vector ("pvec"), in its three shapes:
 *  - stock: struct kvm_mmu_pages { struct mmu_page_and_offset page[16]; nr; }
 *    (the element may lose its idx member part-way through the series);
 *  - part-way: struct kvm_mmu_pages with bare pointers;
 *  - end of the series: struct kvm_mmu_page_vec with bare pointers.
 * In every shape the element starts with the page pointer.
 */
struct mmu_page_and_offset {
	struct kvm_mmu_page *sp;
};

struct kvm_mmu_pages {
	struct mmu_page_and_offset page[16];
	unsigned int nr;
};

struct kvm_mmu_pages___bare {
	struct kvm_mmu_page *page[16];
	unsigned int nr;
};

struct kvm_mmu_page_vec {
	struct kvm_mmu_page *page[16];
	unsigned int nr;
};

/* mmu.c (stock only): the parents mmu_pages_clear_parents() walks up. */
struct mmu_page_path {
	struct kvm_mmu_page *parent[5];
};

struct kvm_vcpu;

/* For a new VMM's argv: include/linux/sched.h, mm_types.h */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
};

struct task_struct {
	struct mm_struct *mm;
	struct task_struct *group_leader;	/* the process, for its comm */
	char comm[16];				/* TASK_COMM_LEN */
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
