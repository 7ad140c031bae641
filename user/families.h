/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every figure the agent publishes, described once, as data: its full
 * name, type, help, labels and where its value comes from.  Outputs (the
 * Prometheus page in metrics.c today) are renderers that walk this table
 * over a snapshot; a new figure, label or source is an edit of
 * families.c, not of every output.
 *
 * Metric and label names are public API (dashboards and alerts use them);
 * change them only with a deprecation.  `grep -rn NAME user/` finds the
 * one line where a figure is born.
 */
#ifndef __FAMILIES_H
#define __FAMILIES_H

#include <stddef.h>

/* Where a family's values come from, and so how a renderer reads them. */
enum family_source {
	FROM_VM,		/* struct vm_stats at off: per VM and guest */
	FROM_PVEC_HIST,		/* struct hists pvec_depth, per context */
	FROM_DURATION_HIST,	/* struct hists sync_duration, log2 ns slots */
	FROM_PROBES,		/* struct agent_info probes[] */
	FROM_SELF,		/* struct self_stats at off (BPF side) */
	FROM_AGENT,		/* struct agent_counters at off (the daemon) */
	FROM_BUILD_INFO,	/* struct agent_info version */
	FROM_KERNEL_INFO,	/* struct agent_info kernel_release, variant */
	FROM_CLEARS_SOURCE,	/* struct agent_info clears_source[] */
	FROM_VMS,		/* VMs in the vm_stats map */
	FROM_HTTP,		/* struct conn_guard_stats at off */
	FROM_KVM,		/* struct kvm_vm_kstats at off: KVM's, per VM */
	FROM_KVM_READABLE,	/* whether KVM's stats could be read */
};

/*
 * A label whose values index an array of counters: the value of label
 * values[k] is the k-th __u64 (row-major when a family has two).
 */
struct family_dim {
	const char *label;
	const char *const *values;
	int nr;
	/* compare's row labels: the word before a value ("clears in walk") */
	const char *word;
};

/* How many values a dim spans: 1 for an unused dim (a NULL label). */
static inline int family_dim_nr(const struct family_dim *d)
{
	return d->label ? d->nr : 1;
}

/* The last value of dims[0] is left out while it is zero (never expected). */
#define FAMILY_OMIT_ZERO_LAST	(1u << 0)
/*
 * dims[1] is the clear site: a site agent_info says is "missing" has no
 * series at all, rather than a 0 nobody counted.
 */
#define FAMILY_SITE_SOURCES	(1u << 1)

/* The most probes one family's counts come from. */
#define FAMILY_MAX_NEEDS	2

struct family {
	const char *name;	/* full metric name, as published */
	const char *type;	/* "counter", "gauge", "histogram" */
	const char *help;
	enum family_source src;
	size_t off;		/* FROM_VM, _SELF, _AGENT, _HTTP, _KVM: first __u64 */
	/* after vm, pid and guest for FROM_VM; unused: a NULL label */
	struct family_dim dims[2];
	unsigned int flags;
	/*
	 * The probes (agent_info.h names) that make its counts: while one is
	 * not attached the family has no samples, rather than a 0 nobody
	 * counted.  Unused: NULL.
	 */
	const char *needs[FAMILY_MAX_NEEDS];
	/*
	 * Its key in the JSON record (docs/record.md), for the FROM_VM and
	 * FROM_SELF families record.c writes from this table; NULL: not in
	 * the record.
	 */
	const char *key;
};

/* The daemon's own counters, kept outside the BPF maps. */
struct agent_counters {
	unsigned long long ringbuf_events;	/* ring-buffer records consumed */
	unsigned long long vms_folded;		/* --max-vms: VMs put in "other" */
	unsigned long long scrape_errors;	/* scrapes whose map read failed */
};

/*
 * Label values of the enums of bpf/unsync.h (walk_ctx, walk_result,
 * sync_result, clear_site, guest_level), and the keys of the JSON record.
 */
extern const char *const family_ctx_names[];
extern const char *const family_walk_names[];
extern const char *const family_sync_names[];
extern const char *const family_site_names[];
/*
 * The guest label of every FROM_VM family: "l1" always, "l2" only once
 * the VM has any count of that level (metrics.c), so a host without
 * nested guests publishes no more series than one label's worth.
 */
extern const char *const family_guest_names[];

/* The /metrics page from the maps and the agent, in page order. */
extern const struct family agent_families[];
extern const size_t nr_agent_families;

/* The HTTP server's own families, after the page's. */
extern const struct family http_families[];
extern const size_t nr_http_families;

/*
 * KVM's own per-VM statistics (kvm_stats.h), after the page's and before
 * the HTTP server's, when the agent reads them.  Their own rows: KVM counts per VM, not per
 * guest level, so they take vm and pid only, never the labels the agent's
 * per-VM families may grow.
 */
extern const struct family kvm_families[];
extern const size_t nr_kvm_families;

#endif /* __FAMILIES_H */
