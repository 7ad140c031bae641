/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a record back (docs/record.md): parse with json-c and check
 * every field compare uses, so a bad file is one line naming the problem
 * ("truncated", "schema version 2", "missing field vms[0].counters.restarts")
 * instead of a report made of zeros.
 */
#ifndef __RECORD_READ_H
#define __RECORD_READ_H

#include <stdbool.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "kvm_stats.h"
#include "vm_names.h"

/*
 * The largest file taken for a record.  The largest the agent writes is
 * 65,536 VMs (--max-vms) with 127-byte names and every count at 2^64 - 1:
 * test_record checks that it fits.
 */
#define RECORD_READ_MAX		(256 << 20)

struct record_doc_vm {
	char name[VM_NAME_MAX];
	struct vm_stats st;
	bool has_kvm;			/* "kvm" was an object, not null */
	__u64 kvm_vms;
	__u64 kvm[KVM_STAT_NR];
};

struct record_doc {
	const char *path;
	char release[65], variant[16], version[32];
	char hooks[1024];		/* "probe=mode ...", none if not attached */
	double duration;
	struct record_doc_vm *vms;
	int nr_vms;
	struct hists h;
	struct self_stats self;
	char err[512];			/* the first problem found */
};

/* Parse and check path into *r (zeroed by the caller); false with r->err. */
bool record_read(struct record_doc *r, const char *path);
void record_doc_free(struct record_doc *r);

#endif /* __RECORD_READ_H */
