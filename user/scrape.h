/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One scrape, start to end: check the VMs, collect the maps, take the
 * finished series from the VM table (named, --max-vms folded into
 * "other"), render, reap the dead.
 */
#ifndef __SCRAPE_H
#define __SCRAPE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include "kvm_stats.h"
#include "metrics.h"
#include "vm_table.h"

/*
 * KVM's own per-VM stats, read at each scrape (no thread polls them).
 * When they cannot be read (debugfs not mounted, kvm not loaded, hidden by
 * a sandbox) the scrape says so once on log, one line, publishes
 * kvm_unsync_kvm_stats_readable 0 and goes on; it says so again only if
 * the reason changes after they were readable or failed otherwise.
 */
struct scrape_kvm {
	struct kvm_stats_src src;	/* root KVM_STATS_ROOT, proc KVM_STATS_PROC */
	FILE *log;			/* NULL: stderr */
	struct kvm_vm_kstats *buf;	/* grown as needed */
	int cap;
};

/*
 * One scrape, in the order vm_table.h explains: check, read, series,
 * render, reap.  Matches http_render_fn, with a struct scrape_ctx as ctx.
 */
struct scrape_ctx {
	struct collect_src src;		/* collect_src_bpf(), or fakes */
	struct vm_table *vms;		/* required */
	const struct agent_info *info;
	/* bumped by the ring-buffer consumer; read with an atomic load */
	const unsigned long long *ringbuf_events;
	unsigned long long scrape_errors;
	struct snapshot snap;		/* reused between scrapes */
	/*
	 * KVM is not loaded yet, so there are no maps: a scrape publishes
	 * the agent's own metrics only.  The main thread changes this, src
	 * and info under *lock (if set), which every scrape holds.
	 */
	bool waiting;
	pthread_mutex_t *lock;
	/* NULL: KVM's stats are not read and their families not on the page */
	struct scrape_kvm *kvm;
};

/* Free what scrapes allocated (snap, kvm's buffer). */
void scrape_ctx_free(struct scrape_ctx *c);

int metrics_scrape(void *ctx, struct strbuf *out);

#endif /* __SCRAPE_H */
