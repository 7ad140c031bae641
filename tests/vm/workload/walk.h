/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the kvmwalk VMM and its guest share: the guest-physical layout and
 * the parameter block.  The guest is freestanding and built both as 64-bit
 * and as 32-bit code, so this header includes nothing and the parameter
 * block holds only 64-bit fields (same offsets under -m32 and -m64).
 *
 * The page-table layout itself is tests/vm/SHAPES.md's; the addresses
 * below are only where each table lives.
 */
#ifndef KVMWALK_WALK_H
#define KVMWALK_WALK_H

typedef unsigned long long walk_u64;

/* Guest-physical layout.  Everything below 1 GiB is mapped 1:1 by PD_id. */
#define WALK_PARAMS		0x1000ULL	/* struct walk_params */
#define WALK_STACK_TOP		0x8000ULL	/* grows down to 0x2000 */
/* --nested only: L1's hypervisor pages, all zeroed by the VMM. */
#define WALK_VMCB		0x9000ULL	/* L2's VMCB */
#define WALK_HSAVE		0xa000ULL	/* VM_HSAVE_PA: L1's state across VMRUN */
#define WALK_MSRPM		0xb000ULL	/* 8 KiB, no MSR intercepts */
#define WALK_IOPM		0xd000ULL	/* 12 KiB, no I/O intercepts */
#define WALK_CODE		0x10000ULL	/* guest.ld links the guest here */
#define WALK_CODE_MAX		0xf0000ULL
#define WALK_DATA0		0x100000ULL	/* PTE 0 of every PT[k] maps this */
#define WALK_DATA_A		0x101000ULL	/* PTE 1 maps A in even rounds, */
#define WALK_DATA_B		0x102000ULL	/* B in odd ones */
#define WALK_ROOT		0x200000ULL	/* PML4, or the PAE PDPT (CR3) */
#define WALK_PDPT0		0x201000ULL	/* 4level only */
#define WALK_PD_ID		0x202000ULL
#define WALK_PD_T(d)		(0x203000ULL + (walk_u64)(d) * 0x1000)
#define WALK_PT(k)		(0x400000ULL + (walk_u64)(k) * 0x1000)
/*
 * --nested: the tables above are L1's nested page tables (nCR3 =
 * WALK_ROOT, L2-physical to L1-physical), and L1 itself runs on these:
 * PML4 -> PDPT -> PD mapping the first GiB 1:1 in 2 MiB pages.
 */
#define WALK_L1_ROOT		0x300000ULL
#define WALK_L1_PDPT		0x301000ULL
#define WALK_L1_PD		0x302000ULL

#define WALK_MAX_DIRS_4LEVEL	8
#define WALK_MAX_DIRS_PAE	3
/* L2 runs without paging in 32-bit mode: its addresses stop at 4 GiB. */
#define WALK_MAX_DIRS_NESTED	3
/* PDE 511 of PD_t[0] is the flood-zap target: no table may live there. */
#define WALK_TABLES_PER_DIR	511

#define WALK_GIB		(1ULL << 30)
#define WALK_2MIB		(1ULL << 21)

/* x86 paging-structure entry bits. */
#define WALK_P			0x001ULL
#define WALK_RW			0x002ULL
#define WALK_US			0x004ULL	/* KVM walks an NPT as user accesses */
#define WALK_A			0x020ULL
#define WALK_D			0x040ULL
#define WALK_PS			0x080ULL

/* The guest's last exit to user space: out to this port, 0 = success. */
#define WALK_EXIT_PORT		0xf4
/* --time only: out to this port as the rounds start and after each round,
 * so the VMM can tell its time in KVM_RUN round by round.  An I/O exit
 * touches no page table: the walk is the same with or without it. */
#define WALK_MARK_PORT		0xf5

#define WALK_MAGIC		0x31306b6c61776b76ULL	/* "vkwalk01" */

enum walk_paging { WALK_4LEVEL = 1, WALK_PAE = 2 };
/* --nested: L1 runs an L2 (SHAPES.md).  npt: the tables are L2's nested
 * page tables; shadow (--nested=shadow, an npt=0 host): L2 runs without
 * NPT on the tables L1 itself runs on. */
enum walk_nested { WALK_NESTED_OFF = 0, WALK_NESTED_NPT = 1, WALK_NESTED_SHADOW = 2 };
enum walk_sync { WALK_SYNC_CR3 = 1, WALK_SYNC_FAULT = 2 };

/* How far the guest got, for the VMM's error messages. */
enum walk_stage {
	WALK_STAGE_START = 0,
	WALK_STAGE_PRIME,
	WALK_STAGE_ROUNDS,
	WALK_STAGE_FLOOD_ZAP,
	WALK_STAGE_EXIT_UNSYNC,
	WALK_STAGE_DONE,
};

/* Guest exit codes other than 0. */
enum walk_guest_error {
	WALK_ERR_MAGIC = 1,	/* parameter block not where expected */
	WALK_ERR_MODE,		/* knob combination the guest cannot run */
	WALK_ERR_L2_EXIT,	/* L2 left by other than VMMCALL (l2_exit) */
};

/* SVM: the VMCB fields L1 sets (AMD APM vol. 2, appendix B). */
#define VMCB_INTERCEPT_MISC1	0x00c	/* bit 24 HLT, bit 31 SHUTDOWN */
#define VMCB_INTERCEPT_MISC2	0x010	/* bit 0 VMRUN, bit 1 VMMCALL */
#define VMCB_IOPM_BASE		0x040
#define VMCB_MSRPM_BASE		0x048
#define VMCB_ASID		0x058
#define VMCB_EXIT_CODE		0x070
#define VMCB_NESTED_CTL		0x090	/* bit 0 NP_ENABLE */
#define VMCB_NESTED_CR3		0x0b0
#define VMCB_SAVE		0x400	/* the state save area */
#define VMCB_SEG(n)		(VMCB_SAVE + (n) * 16)	/* es cs ss ds fs gs gdtr ldtr idtr tr */
#define VMCB_CPL		(VMCB_SAVE + 0x0cb)
#define VMCB_EFER		(VMCB_SAVE + 0x0d0)
#define VMCB_CR4		(VMCB_SAVE + 0x148)
#define VMCB_CR3		(VMCB_SAVE + 0x150)
#define VMCB_CR0		(VMCB_SAVE + 0x158)
#define VMCB_DR7		(VMCB_SAVE + 0x160)
#define VMCB_DR6		(VMCB_SAVE + 0x168)
#define VMCB_RFLAGS		(VMCB_SAVE + 0x170)
#define VMCB_RIP		(VMCB_SAVE + 0x178)
#define VMCB_RSP		(VMCB_SAVE + 0x1d8)
#define VMCB_RAX		(VMCB_SAVE + 0x1f8)
#define VMCB_G_PAT		(VMCB_SAVE + 0x268)
#define SVM_EXIT_VMMCALL	0x81
#define MSR_EFER		0xc0000080U
#define MSR_VM_HSAVE_PA		0xc0010117U
#define EFER_SVME		0x1000ULL

struct walk_params {
	/* written by the VMM */
	walk_u64 magic;
	walk_u64 paging;	/* enum walk_paging */
	walk_u64 tables;	/* N */
	walk_u64 dirs;		/* D */
	walk_u64 rounds;	/* R */
	walk_u64 sync;		/* enum walk_sync */
	walk_u64 flood_zap;
	walk_u64 exit_unsync;
	walk_u64 nested;	/* enum walk_nested */
	walk_u64 time;		/* --time: out to WALK_MARK_PORT per round */
	/* written by the guest */
	walk_u64 stage;		/* enum walk_stage */
	walk_u64 round;		/* round in progress during WALK_STAGE_ROUNDS */
	walk_u64 l2_exit;	/* --nested: the exit code of the last VMRUN */
};

_Static_assert(sizeof(struct walk_params) == 13 * 8,
	       "walk_params must have the same layout in 32- and 64-bit code");

#endif
