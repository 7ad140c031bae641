/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Prometheus output: text format 0.0.4, the families of families.h
 * rendered over a snapshot.
 */
#ifndef __METRICS_H
#define __METRICS_H

#include <stdbool.h>
#include "agent_info.h"
#include "collect.h"
#include "conn_guard.h"
#include "families.h"
#include "prom_text.h"
#include "vm_table.h"

/* Counters the daemon keeps itself (families.h FROM_AGENT, FROM_VMS). */
struct metrics_extra {
	unsigned long long ringbuf_events;	/* ring-buffer records consumed */
	unsigned long long scrape_errors;	/* scrapes whose map read failed */
	unsigned long long vms_folded;		/* --max-vms: VMs put in "other" */
};

/*
 * Append the whole page to b.  s is the snapshot as read (histograms,
 * the agent's BPF-side counters, kvm_unsync_vms); it may be NULL when the
 * maps could not be read: the families from the maps are then written
 * with HELP and TYPE only (no samples rather than zeroes, which would look
 * like counter resets).  The per-VM families have one sample set per
 * series (vm_table_series(), in that order).  Returns 0 or -ENOMEM.
 */
int metrics_render(struct strbuf *b, const struct snapshot *s,
		   const struct vm_series *series, size_t nr_series,
		   const struct agent_info *info,
		   const struct metrics_extra *extra);

/* The HTTP server's own families (http_families), from st. */
void metrics_render_http(struct strbuf *b, const struct conn_guard_stats *st);

/*
 * KVM's per-VM families (kvm_families), one sample set per series
 * (vm_table_kvm_series()), and kvm_unsync_kvm_stats_readable.  readable
 * false: KVM's stats could not be read, so the families are written with
 * HELP and TYPE only and the gauge says 0.
 */
void metrics_render_kvm(struct strbuf *b, const struct vm_kvm_series *series,
			size_t nr_series, bool readable);

#endif /* __METRICS_H */
