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
 * Where the record goes, decided when the run starts so that a target
 * that cannot be written fails then, not after --duration.  A new file or
 * a regular one is replaced atomically: a temporary file in the same
 * directory, fsync, rename.  Anything else (a device such as /dev/null, a
 * FIFO, a symlink such as /dev/stdout) is never replaced: it is opened at
 * start, without O_CREAT or O_TRUNC, and the record written through it (a
 * regular file reached through a symlink is cut first); a directory or a
 * block device is refused.
 */
struct record_target {
	const char *path;
	int fd;			/* written through: the target; -1: replaced */
	bool cut;		/* a regular file written through: truncate */
};

/* Check and open path: 0, or -errno with a one-line reason in err. */
int record_target_open(struct record_target *t, const char *path,
		       char *err, size_t errlen);
/* True when t is written through rather than replaced. */
bool record_target_through(const struct record_target *t);
/* Write r to t: 0, or -errno with a one-line reason in err. */
int record_target_write(struct record_target *t, const struct record *r,
			char *err, size_t errlen);
void record_target_close(struct record_target *t);

/* The three above at once, for a path checked only as it is written. */
int record_write(const char *path, const struct record *r,
		 char *err, size_t errlen);

#endif /* __RECORD_H */
