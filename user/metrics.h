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

/* Counters the daemon keeps itself (families.h FROM_AGENT, FROM_VMS). */
struct metrics_extra {
	unsigned long long ringbuf_events;	/* ring-buffer records consumed */
	unsigned long long scrape_errors;	/* scrapes whose map read failed */
	unsigned long long vms_folded;		/* --max-vms: VMs put in "other" */
	/*
	 * The snapshot as read, when s is a view of it (--max-vms folds
	 * VMs): kvm_unsync_vms counts its VMs.  NULL: s is the snapshot.
	 */
	const struct snapshot *tracked;
};

/*
 * Append the whole page to b.  s may be NULL when the maps could not be
 * read: the families from the maps are then written with HELP and TYPE
 * only (no samples rather than zeroes, which would look like counter
 * resets).  names[i] names s->vms[i]; names or names[i] may be NULL
 * ("unknown").  A VM with tgid 0 is the "other" series of --max-vms: its
 * pid label is empty.  Returns 0 or -ENOMEM.
 */
int metrics_render(struct strbuf *b, const struct snapshot *s,
		   const char *const *names, const struct agent_info *info,
		   const struct metrics_extra *extra);

/* The HTTP server's own families (http_families), from st. */
void metrics_render_http(struct strbuf *b, const struct conn_guard_stats *st);

#endif /* __METRICS_H */
