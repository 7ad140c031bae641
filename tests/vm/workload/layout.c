// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's memory at start: code, parameters and the page tables of
 * tests/vm/SHAPES.md.  Accessed and dirty bits are set in advance so that
 * KVM never has to write them back into the guest's tables: the only
 * changes to those tables are the guest's own.
 */
#include <string.h>

#include "kvmwalk.h"

extern const uint8_t guest64_start[], guest64_end[];
extern const uint8_t guest32_start[], guest32_end[];

#define TABLE	(WALK_P | WALK_RW | WALK_A)		/* points to a table */
#define LEAF	(WALK_P | WALK_RW | WALK_A | WALK_D)	/* maps a page */

size_t layout_mem_size(const struct walk_config *cfg)
{
	/* Up to the last PT, rounded to 2 MiB like PD_id's pages. */
	uint64_t end = WALK_PT(cfg->tables);

	return (end + WALK_2MIB - 1) & ~(WALK_2MIB - 1);
}

static void set_entry(uint8_t *mem, uint64_t table, unsigned int idx,
		      uint64_t val)
{
	memcpy(mem + table + idx * 8, &val, sizeof(val));
}

void layout_build(uint8_t *mem, const struct walk_config *cfg)
{
	const uint8_t *code = guest64_start, *code_end = guest64_end;
	struct walk_params p = {
		.magic = WALK_MAGIC,
		.paging = cfg->paging,
		.tables = cfg->tables,
		.dirs = cfg->dirs,
		.rounds = cfg->rounds,
		.sync = cfg->sync,
		.flood_zap = cfg->flood_zap,
		.exit_unsync = cfg->exit_unsync,
		.nested = cfg->nested,
		.time = cfg->time,
	};
	/* An NPT entry needs the user bit: KVM walks it as a user access. */
	uint64_t us = cfg->nested ? WALK_US : 0;	/* shadow too: same script */
	unsigned int i, d, k;

	if (cfg->paging == WALK_PAE) {
		code = guest32_start;
		code_end = guest32_end;
	}
	if (code_end - code > (long)WALK_CODE_MAX)
		die("guest image too large (%ld bytes)", (long)(code_end - code));
	memcpy(mem + WALK_CODE, code, code_end - code);
	memcpy(mem + WALK_PARAMS, &p, sizeof(p));

	/* Tell the data pages apart when reading a memory dump. */
	memset(mem + WALK_DATA0, 0xd0, 4096);
	memset(mem + WALK_DATA_A, 0xda, 4096);
	memset(mem + WALK_DATA_B, 0xdb, 4096);

	if (cfg->paging == WALK_4LEVEL) {
		set_entry(mem, WALK_ROOT, 0, WALK_PDPT0 | TABLE | us);
		set_entry(mem, WALK_PDPT0, 0, WALK_PD_ID | TABLE | us);
		for (d = 0; d < cfg->dirs; d++)
			set_entry(mem, WALK_PDPT0, 1 + d,
				  WALK_PD_T(d) | TABLE | us);
	} else {
		/* PAE PDPTEs have only P: RW, US, A, D are reserved there,
		 * and KVM_SET_SREGS refuses a PDPT with reserved bits. */
		set_entry(mem, WALK_ROOT, 0, WALK_PD_ID | WALK_P);
		for (d = 0; d < cfg->dirs; d++)
			set_entry(mem, WALK_ROOT, 1 + d, WALK_PD_T(d) | WALK_P);
	}

	/* PD_id: the first GiB, 1:1, in 2 MiB pages. */
	for (i = 0; i < 512; i++)
		set_entry(mem, WALK_PD_ID, i,
			  i * WALK_2MIB | LEAF | WALK_PS | us);

	/* PT[k] at PDE k / D of PD_t[k % D]; only its PTE 0 is present. */
	for (k = 0; k < cfg->tables; k++) {
		set_entry(mem, WALK_PD_T(k % cfg->dirs), k / cfg->dirs,
			  WALK_PT(k) | TABLE | us);
		set_entry(mem, WALK_PT(k), 0, WALK_DATA0 | LEAF | us);
	}

	/* --nested: L1's own tables, the first GiB 1:1 in 2 MiB pages. */
	if (cfg->nested == WALK_NESTED_NPT) {
		set_entry(mem, WALK_L1_ROOT, 0, WALK_L1_PDPT | TABLE);
		set_entry(mem, WALK_L1_PDPT, 0, WALK_L1_PD | TABLE);
		for (i = 0; i < 512; i++)
			set_entry(mem, WALK_L1_PD, i,
				  i * WALK_2MIB | LEAF | WALK_PS);
	}
}
