/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the agent knows about itself: probes, kernel, version. Filled by
 * probes.c at start-up (or once KVM loads), read by the metrics renderer
 * at each scrape. */
#ifndef __AGENT_INFO_H
#define __AGENT_INFO_H

#include <stdbool.h>
#include <linux/types.h>
#include "../bpf/unsync.h"

#define MAX_PROBES	16

/*
 * The names of the probes the agent attaches: hooks.c's table lists them,
 * families.c says which ones each family's counts come from.
 */
#define PROBE_SYNC_CHILDREN	"mmu_sync_children"
#define PROBE_UNSYNC_WALK	"__mmu_unsync_walk"
#define PROBE_CLEAR_PARENTS	"mmu_pages_clear_parents"
#define PROBE_TP_SYNC_PAGE	"kvm_mmu_sync_page"
#define PROBE_TP_UNSYNC_PAGE	"kvm_mmu_unsync_page"

struct probe_status {
	const char *probe;	/* mmu_sync_children, __mmu_unsync_walk, ... */
	const char *mode;	/* "fentry", "kprobe", "tracepoint", "none" */
	bool attached;
	char reason[400];	/* why it did not attach, or "" */
};

struct agent_info {
	const char *version;
	char kernel_release[65];
	const char *variant;	/* "stock", "patched", "unknown" */
	struct probe_status probes[MAX_PROBES];
	int nr_probes;
	/*
	 * How each site of kvm_unsync_bitmap_clears_total is counted (index:
	 * enum clear_site): "hook", "derived", "absent" or "missing", and why.
	 * NULL: not known (no KVM yet): no series.
	 */
	const char *clears_source[SITE_MAX];
	char clears_why[SITE_MAX][512];
};

#endif /* __AGENT_INFO_H */
