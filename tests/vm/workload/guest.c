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

#define LEAF_BITS	(WALK_P | WALK_RW | WALK_A | WALK_D)

/* Write PTE 1 of every PT[k]: the first write to a synced PT unsyncs it.
 * bits: LEAF_BITS, plus the user bit for an NPT entry (--nested). */
static void dirty(ulong tables, ulong round, walk_u64 bits)
{
	walk_u64 data = (round & 1) ? WALK_DATA_B : WALK_DATA_A;
	ulong k;

	for (k = 0; k < tables; k++)
		write_entry((ulong)WALK_PT(k) + 8, data | bits);
}

/* --time: tell the VMM a round starts (the previous one is over).  Only
 * an out: no memory access, no stack. */
static inline void mark_round(void)
{
	if (params->time)
		asm volatile("outl %0, %1"
			     : : "a"(0), "Nd"((unsigned short)WALK_MARK_PORT)
			     : "memory");
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

#ifdef __x86_64__
/*
 * --nested: L1, a hypervisor of one L2 guest.  L2 runs in 32-bit protected
 * mode with paging off, so its addresses are L2-physical and go through
 * L1's NPT (the SHAPES.md tables) alone.  In: esi = N, edi = D.  It reads
 * one byte at VA(k) for every k, then leaves with VMMCALL; it has no
 * stack and touches nothing but its code and those bytes.
 */
asm(".pushsection .text.l2, \"ax\"\n"
    ".code32\n"
    "l2_entry:\n"
    "	xorl %ecx, %ecx\n"
    "1:	cmpl %esi, %ecx\n"
    "	jae 2f\n"
    "	movl %ecx, %eax\n"
    "	xorl %edx, %edx\n"
    "	divl %edi\n"			/* eax = j = k / D, edx = d = k % D */
    "	shll $21, %eax\n"
    "	incl %edx\n"
    "	shll $30, %edx\n"
    "	addl %edx, %eax\n"
    "	movb (%eax), %al\n"
    "	incl %ecx\n"
    "	jmp 1b\n"
    "2:	vmmcall\n"
    "	ud2\n"
    ".code64\n"
    ".popsection");
extern const char l2_entry[];

/* The same in 64-bit mode, for --nested=shadow: L2 runs paged, on L1's
 * own tables (CR3 = WALK_ROOT), so VA(k) goes through PT[k] as for L1. */
asm(".pushsection .text.l2, \"ax\"\n"
    "l2_entry64:\n"
    "	xorl %ecx, %ecx\n"
    "1:	cmpq %rsi, %rcx\n"
    "	jae 2f\n"
    "	movq %rcx, %rax\n"
    "	xorl %edx, %edx\n"
    "	divq %rdi\n"
    "	shlq $21, %rax\n"
    "	incq %rdx\n"
    "	shlq $30, %rdx\n"
    "	addq %rdx, %rax\n"
    "	movb (%rax), %al\n"
    "	incq %rcx\n"
    "	jmp 1b\n"
    "2:	vmmcall\n"
    "	ud2\n"
    ".popsection");
extern const char l2_entry64[];

#define vmcb(off, type) (*(volatile type *)(ulong)(WALK_VMCB + (off)))

static inline walk_u64 rdmsr(unsigned int msr)
{
	unsigned int lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (walk_u64)hi << 32;
}

static inline void wrmsr(unsigned int msr, walk_u64 val)
{
	asm volatile("wrmsr"
		     : : "c"(msr), "a"((unsigned int)val),
		       "d"((unsigned int)(val >> 32)) : "memory");
}

/* A flat 4 GiB segment in the VMCB's format: attrib is the descriptor's
 * type, S, DPL, P (bits 0-7) and AVL, L, D/B, G (bits 8-11). */
static void vmcb_seg(int n, unsigned short sel, unsigned short attrib,
		     unsigned int limit)
{
	vmcb(VMCB_SEG(n), unsigned short) = sel;
	vmcb(VMCB_SEG(n) + 2, unsigned short) = attrib;
	vmcb(VMCB_SEG(n) + 4, unsigned int) = limit;
}

/*
 * EFER.SVME, the host save area, and the VMCB of L2: nested paging at
 * nCR3 = WALK_ROOT, ASID 1, VMRUN and VMMCALL intercepted (KVM refuses a
 * VMRUN without the first and with ASID 0), HLT and SHUTDOWN too so that a
 * broken L2 comes back to L1 instead of hanging.  The VMCB page starts
 * zeroed: everything not set here is 0.
 */
static void nested_setup(int shadow)
{
	int n;

	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	wrmsr(MSR_VM_HSAVE_PA, WALK_HSAVE);

	vmcb(VMCB_INTERCEPT_MISC1, unsigned int) = 1U << 24 | 1U << 31;
	vmcb(VMCB_INTERCEPT_MISC2, unsigned int) = 1U << 0 | 1U << 1;
	vmcb(VMCB_IOPM_BASE, walk_u64) = WALK_IOPM;
	vmcb(VMCB_MSRPM_BASE, walk_u64) = WALK_MSRPM;
	vmcb(VMCB_ASID, unsigned int) = 1;
	if (!shadow) {
		vmcb(VMCB_NESTED_CTL, walk_u64) = 1;
		vmcb(VMCB_NESTED_CR3, walk_u64) = WALK_ROOT;
	}

	for (n = 0; n < 6; n++)		/* es cs ss ds fs gs: data, RW */
		vmcb_seg(n, 0x10, 0xc93, 0xffffffff);
	vmcb_seg(1, 0x08, 0xc9b, 0xffffffff);	/* cs: 32-bit code */
	vmcb_seg(9, 0x18, 0x08b, 0x67);		/* tr: busy 32-bit TSS */
	vmcb(VMCB_CPL, unsigned char) = 0;
	vmcb(VMCB_EFER, walk_u64) = EFER_SVME;	/* checked by VMRUN */
	vmcb(VMCB_CR0, walk_u64) = 0x31;	/* NE ET PE, paging off */
	vmcb(VMCB_DR6, walk_u64) = 0xffff0ff0;
	vmcb(VMCB_DR7, walk_u64) = 0x400;
	vmcb(VMCB_G_PAT, walk_u64) = 0x0007040600070406ULL;	/* reset value */
	if (shadow) {
		/* Long mode on L1's own tables, as L1 runs itself. */
		vmcb_seg(1, 0x08, 0xa9b, 0xffffffff);	/* cs: L=1 */
		vmcb(VMCB_EFER, walk_u64) = EFER_SVME | 0x500;	/* LMA LME */
		vmcb(VMCB_CR0, walk_u64) = 0x80010033;	/* PG WP NE ET MP PE */
		vmcb(VMCB_CR4, walk_u64) = 0x20;	/* PAE */
		vmcb(VMCB_CR3, walk_u64) = WALK_ROOT;
	}
}

/* One VMRUN of L2 from its first instruction; 0 if it left by VMMCALL.
 * VMRUN and #VMEXIT switch only rax, rsp and rip: L2 clobbers ecx, edx. */
static int nested_run(ulong tables, ulong dirs, int shadow)
{
	walk_u64 exit;

	vmcb(VMCB_RIP, walk_u64) = shadow ? (ulong)l2_entry64 : (ulong)l2_entry;
	vmcb(VMCB_RFLAGS, walk_u64) = 0x2;
	asm volatile("clgi\n\tvmrun\n\tstgi"
		     : "+S"(tables), "+D"(dirs)
		     : "a"(WALK_VMCB)
		     : "rbx", "rcx", "rdx", "memory", "cc");
	exit = vmcb(VMCB_EXIT_CODE, unsigned int);
	params->l2_exit = exit;
	return exit == SVM_EXIT_VMMCALL ? 0 : -1;
}

/* SHAPES.md's script with VMRUN in the place of the CR3 reload.  Not
 * inlined: guest_main's other modes must not touch the stack before the
 * script does (tests/model/kvm_shapes.py, A15). */
static __attribute__((noinline)) unsigned int nested_main(ulong tables, ulong dirs, ulong rounds,
				int shadow)
{
	walk_u64 bits = LEAF_BITS | WALK_US;
	ulong k, r;

	nested_setup(shadow);
	params->stage = WALK_STAGE_PRIME;
	/* --nested=shadow: L1 reads VA(k) too, so that KVM shadows the
	 * tables once for L1 and once for L2. */
	if (shadow)
		for (k = 0; k < tables; k++)
			read_byte(test_va(k, dirs));
	if (nested_run(tables, dirs, shadow))
		return WALK_ERR_L2_EXIT;
	params->stage = WALK_STAGE_ROUNDS;
	for (r = 0; r < rounds; r++) {
		mark_round();
		params->round = r;
		dirty(tables, r, bits);
		if (nested_run(tables, dirs, shadow))
			return WALK_ERR_L2_EXIT;
	}
	mark_round();
	if (params->exit_unsync) {
		params->stage = WALK_STAGE_EXIT_UNSYNC;
		dirty(tables, rounds + 1, bits);
	}
	params->stage = WALK_STAGE_DONE;
	return 0;
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
	if (params->sync != WALK_SYNC_CR3 || params->nested)
		return WALK_ERR_MODE;
#else
	if (params->nested)
		return nested_main(tables, dirs, rounds,
				   params->nested == WALK_NESTED_SHADOW);
#endif

	params->stage = WALK_STAGE_PRIME;
	for (k = 0; k < tables; k++)
		read_byte(test_va(k, dirs));

	params->stage = WALK_STAGE_ROUNDS;
	for (r = 0; r < rounds; r++) {
		mark_round();
		params->round = r;
		dirty(tables, r, LEAF_BITS);
#ifdef __x86_64__
		if (params->sync == WALK_SYNC_FAULT) {
			fault_sync(dirs, r);
			continue;
		}
#endif
		reload_cr3();
	}
	mark_round();

	if (params->flood_zap) {
		params->stage = WALK_STAGE_FLOOD_ZAP;
		dirty(tables, rounds, LEAF_BITS);
		/* Three emulated writes in a row, nothing faulting through
		 * PD_t[0] in between: write_flooding_count reaches 3. */
		for (i = 0; i < 3; i++)
			write_entry((ulong)WALK_PD_T(0) + 511 * 8, 0);
		reload_cr3();
	}

	if (params->exit_unsync) {
		params->stage = WALK_STAGE_EXIT_UNSYNC;
		dirty(tables, rounds + 1, LEAF_BITS);
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
