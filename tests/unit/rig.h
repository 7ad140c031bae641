/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Whole scrapes (metrics_scrape) over fake maps and a fake /proc, for the
 * tests of the VM lifecycle and of --max-vms.
 */
#ifndef __RIG_H
#define __RIG_H

#include <pthread.h>
#include <stdbool.h>
#include "fake.h"
#include "scrape.h"
#include "vm_table.h"

#define RIG_NCPUS	2

struct rig {
	char *proc;
	struct fake_map vm, h, self;
	struct fake_map names;		/* vm_names: one struct vm_name a key */
	struct vm_table table;
	struct agent_info info;
	unsigned long long events;
	struct scrape_ctx ctx;
	pthread_mutex_t lock;
	char *page;
	/* rig_kvm_init(): KVM's stats from a fake debugfs at kvm_root */
	struct scrape_kvm kvm;
	char *kvm_root;
	char *kvm_log;		/* what the scrapes logged (kvm.log) */
	size_t kvm_log_len;
};

/* max_vms: as --max-vms, 0 for no limit.  0, or -1 if out of memory. */
int rig_init(struct rig *r, size_t max_vms);
void rig_free(struct rig *r);
/* One scrape; the page stays in r->page until the next. */
const char *rig_scrape(struct rig *r);
/*
 * List every probe the agent attaches (agent_info.h) as attached, as
 * hooks_report() would, but for missing (NULL: none), listed as not.
 */
void rig_probes(struct rig *r, const char *missing);
/*
 * The BPF side's name of tgid in vm_names: comm, the value of its -name
 * argument (opt, "" for none) and whether its argv could be read.
 */
void rig_set_name(struct rig *r, __u32 tgid, const char *comm,
		  const char *opt, bool argv_read);
/* Set a VM's kvm_unsync_pages_synced_total (on CPU 1). */
void rig_set_synced(struct rig *r, __u32 tgid, __u64 n);

/*
 * Read KVM's stats at each scrape, from a fake debugfs (r->kvm_root, made
 * here), and log into r->kvm_log.  0, or -1.
 */
int rig_kvm_init(struct rig *r);
/* VM "TGID-FD" under the fake debugfs, every stat i at base + i. */
void rig_kvm_vm(struct rig *r, __u32 tgid, int fd, __u64 base);

#endif /* __RIG_H */
