// SPDX-License-Identifier: GPL-2.0
/*
 * The kvmwalk guest: the script of tests/vm/SHAPES.md, run on page tables
 * the VMM built.  Freestanding, linked flat at WALK_CODE, built twice: as
 * 64-bit code for 4level paging and as 32-bit code for PAE.
 *
 * Every memory access here is deliberate: KVM's shadow MMU reacts to each
 * guest page-table read, write and TLB flush, and the model predicts the
 * unsync walk from exactly this sequence.  Do not add accesses (not even
 * checks that read through PTE 1) without changing SHAPES.md.
 */
#include "walk.h"

/* Addresses and indexes fit a long in both builds; walk_u64 arithmetic
 * would pull in libgcc's 64-bit division in the 32-bit one. */
typedef unsigned long ulong;

#define params ((volatile struct walk_params *)(ulong)WALK_PARAMS)

static inline void read_byte(ulong va)
{
	(void)*(volatile unsigned char *)va;
}

/*
 * Store a paging-structure entry with a single write.  In 32-bit code a
 * 64-bit store is two 4-byte stores, and when the table is write-tracked
 * (an upper-level table) each is an emulated write that counts toward
 * KVM's write-flooding detection.  Every entry written here has a zero
 * high half, before and after, so the low half is enough.
 */
static inline void write_entry(ulong addr, walk_u64 val)
{
#ifdef __x86_64__
	*(volatile walk_u64 *)addr = val;
#else
	*(volatile unsigned int *)addr = (unsigned int)val;
#endif
}

/* mov cr3, cr3: KVM_REQ_MMU_SYNC, a sync from the root(s). */
static inline void reload_cr3(void)
{
	ulong cr3;

	asm volatile("mov %%cr3, %0\n\tmov %0, %%cr3" : "=r"(cr3) : : "memory");
}

static ulong test_va(ulong k, ulong dirs)
{
	ulong d = k % dirs, j = k / dirs;

	return (1 + d) * (ulong)WALK_GIB + j * (ulong)WALK_2MIB;
}

/* Write PTE 1 of every PT[k]: the first write to a synced PT unsyncs it. */
static void dirty(ulong tables, ulong round)
{
	walk_u64 data = (round & 1) ? WALK_DATA_B : WALK_DATA_A;
	ulong k;

	for (k = 0; k < tables; k++)
		write_entry((ulong)WALK_PT(k) + 8,
			    data | WALK_P | WALK_RW | WALK_A | WALK_D);
}

#ifdef __x86_64__
/*
 * Link PD_t[0] through a fresh PDPT0 entry and touch it: the page fault
 * finds PD_t[0]'s shadow page with unsync children and syncs it right
 * there, from FNAME(fetch), with can_yield = false.
 */
static void fault_sync(ulong dirs, ulong round)
{
	ulong alias = 1 + dirs + round;

	write_entry((ulong)WALK_PDPT0 + alias * 8,
		    WALK_PD_T(0) | WALK_P | WALK_RW | WALK_A);
	read_byte(alias * (ulong)WALK_GIB);
}
#endif

static unsigned int guest_main(void)
{
	ulong tables = params->tables, dirs = params->dirs;
	ulong rounds = params->rounds, k, r;
	int i;

	if (params->magic != WALK_MAGIC)
		return WALK_ERR_MAGIC;
#ifndef __x86_64__
	if (params->sync != WALK_SYNC_CR3)
		return WALK_ERR_MODE;
#endif

	params->stage = WALK_STAGE_PRIME;
	for (k = 0; k < tables; k++)
		read_byte(test_va(k, dirs));

	params->stage = WALK_STAGE_ROUNDS;
	for (r = 0; r < rounds; r++) {
		params->round = r;
		dirty(tables, r);
#ifdef __x86_64__
		if (params->sync == WALK_SYNC_FAULT) {
			fault_sync(dirs, r);
			continue;
		}
#endif
		reload_cr3();
	}

	if (params->flood_zap) {
		params->stage = WALK_STAGE_FLOOD_ZAP;
		dirty(tables, rounds);
		/* Three emulated writes in a row, nothing faulting through
		 * PD_t[0] in between: write_flooding_count reaches 3. */
		for (i = 0; i < 3; i++)
			write_entry((ulong)WALK_PD_T(0) + 511 * 8, 0);
		reload_cr3();
	}

	if (params->exit_unsync) {
		params->stage = WALK_STAGE_EXIT_UNSYNC;
		dirty(tables, rounds + 1);
	}

	params->stage = WALK_STAGE_DONE;
	return 0;
}

/* Entry point (guest.ld puts .text.entry first, at WALK_CODE).  The VMM
 * set the stack; there is no IDT, so any exception is a triple fault. */
__attribute__((section(".text.entry"), noreturn, used))
void _start(void)
{
	unsigned int status = guest_main();

	for (;;)
		asm volatile("outl %0, %1\n\thlt"
			     : : "a"(status), "Nd"((unsigned short)WALK_EXIT_PORT));
}
