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

#define WALK_MAX_DIRS_4LEVEL	8
#define WALK_MAX_DIRS_PAE	3
/* PDE 511 of PD_t[0] is the flood-zap target: no table may live there. */
#define WALK_TABLES_PER_DIR	511

#define WALK_GIB		(1ULL << 30)
#define WALK_2MIB		(1ULL << 21)

/* x86 paging-structure entry bits. */
#define WALK_P			0x001ULL
#define WALK_RW			0x002ULL
#define WALK_A			0x020ULL
#define WALK_D			0x040ULL
#define WALK_PS			0x080ULL

/* The guest's only exit to user space: out to this port, 0 = success. */
#define WALK_EXIT_PORT		0xf4

#define WALK_MAGIC		0x31306b6c61776b76ULL	/* "vkwalk01" */

enum walk_paging { WALK_4LEVEL = 1, WALK_PAE = 2 };
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
};

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
	/* written by the guest */
	walk_u64 stage;		/* enum walk_stage */
	walk_u64 round;		/* round in progress during WALK_STAGE_ROUNDS */
};

_Static_assert(sizeof(struct walk_params) == 10 * 8,
	       "walk_params must have the same layout in 32- and 64-bit code");

#endif
