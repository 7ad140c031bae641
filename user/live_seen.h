/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The VMs a --record run has seen (live.c): each VM's counts at the first
 * and the last read, and KVM's stats as last read while the VM lived, kept
 * after the VM leaves the maps or KVM's debugfs.
 */
#ifndef __LIVE_SEEN_H
#define __LIVE_SEEN_H

#include <stdbool.h>
#include "record.h"
#include "top.h"

struct seen_vm {
	struct record_vm rv;		/* name, pid, KVM's stats */
	struct vm_stats base, last;	/* counts at the first and last read */
};

struct seen_vms {
	struct seen_vm *v;
	int nr, cap;
};

/* The VM of pid, added (zeroed) if not seen before; NULL: out of memory. */
struct seen_vm *seen_find(struct seen_vms *s, __u32 pid);

/* Bring sv up to date with a read of its row; first: the run's first read. */
void seen_update(struct seen_vm *sv, const struct top_vm *row, bool first);

void seen_free(struct seen_vms *s);

#endif /* __LIVE_SEEN_H */
