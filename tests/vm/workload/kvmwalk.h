/* SPDX-License-Identifier: GPL-2.0 */
/* kvmwalk's VMM side: the knobs, and the pieces kvmwalk.c puts together. */
#ifndef KVMWALK_H
#define KVMWALK_H

#include <stddef.h>
#include <stdint.h>

#include "walk.h"

/* The knobs of tests/vm/SHAPES.md, checked. */
struct walk_config {
	enum walk_paging paging;
	unsigned int tables;
	unsigned int dirs;
	unsigned int rounds;
	enum walk_sync sync;
	int flood_zap;
	int exit_unsync;
	int nested;		/* enum walk_nested */
	int stats;		/* print KVM's VM stats before closing */
	int hold;		/* stop (SIGSTOP) before closing, until SIGCONT */
	int time;		/* time KVM_RUN per round (struct vm_times) */
};

/* --time: the VMM's own time in KVM_RUN, CLOCK_MONOTONIC around each
 * ioctl, cut into rounds at the guest's WALK_MARK_PORT exits. */
struct vm_times {
	uint64_t run_ns;	/* every KVM_RUN so far */
	uint64_t mark_ns;	/* run_ns at the last mark */
	uint64_t prime_ns;	/* before the first mark: set-up and prime */
	uint64_t *round_ns;	/* one per round, between two marks */
	unsigned int rounds;	/* round_ns entries */
	unsigned int marks;	/* marks seen */
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	size_t mem_size;
	struct vm_times *times;	/* NULL unless --time */
};

/* kvmwalk.c */
__attribute__((noreturn, format(printf, 1, 2)))
void die(const char *fmt, ...);

/* layout.c: guest memory contents */
size_t layout_mem_size(const struct walk_config *cfg);
void layout_build(uint8_t *mem, const struct walk_config *cfg);

/* vm.c: KVM plumbing; every failure dies with a one-line reason */
void vm_create(struct vm *vm, size_t mem_size, int need_svm);
void vm_enter_paged(struct vm *vm, enum walk_paging paging, uint64_t cr3);
uint32_t vm_run(struct vm *vm);
void vm_print_stats(struct vm *vm);
void vm_print_times(struct vm *vm);
void vm_destroy(struct vm *vm);

#endif
