/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --record=FILE: everything the agent counted in one run, as one JSON
 * document in the versioned schema of docs/record.md.  The caller fills
 * struct record from its last snapshot; record_write() knows nothing of
 * maps or threads.
 */
#ifndef __RECORD_H
#define __RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "agent_info.h"
#include "families.h"
#include "kvm_stats.h"
#include "vm_names.h"

#define RECORD_SCHEMA		"kvm-unsync-exporter/record"
#define RECORD_SCHEMA_VERSION	1


struct record_vm {
	char name[VM_NAME_MAX];		/* as in the vm label */
	__u32 pid;			/* 0 for the folded "other" */
	struct vm_stats stats;		/* summed over CPUs */
	bool has_kvm;			/* kvm below was read */
	struct kvm_vm_kstats kvm;
};

struct record {
	const struct agent_info *info;	/* version, kernel, hooks */
	struct timespec start, end;	/* CLOCK_REALTIME */
	double duration_s;		/* CLOCK_MONOTONIC, immune to clock steps */
	const struct record_vm *vms;
	int nr_vms;
	struct hists hists;		/* summed over CPUs */
	struct self_stats self;
	const char *kvm_stats_root;	/* where KVM's stats were read */
	int kvm_stats_err;		/* 0, or kvm_stats_read()'s error */
	/*
	 * Whose maps were read: "attached" (this run's own probes) or
	 * "pinned" (a running agent's, read-only; its hooks are not known
	 * here); NULL leaves "maps" out.
	 */
	const char *maps;
	const char *pin_dir;
};

/*
 * Write r to path atomically: a temporary file in the same directory,
 * fsync, rename.  0, or -errno with a one-line reason in err.
 */
int record_write(const char *path, const struct record *r,
		 char *err, size_t errlen);

#endif /* __RECORD_H */
