/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The /metrics page: Prometheus text format 0.0.4.  Metric and label names
 * are public API (dashboards and alerts use them); change them only with a
 * deprecation.
 */
#ifndef __METRICS_H
#define __METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include "agent_info.h"
#include "collect.h"
#include "prom_text.h"
#include "vm_table.h"

/* Counters the daemon keeps itself. */
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

/*
 * One scrape, in the order vm_table.h explains: check, read, sync, render,
 * reap.  Matches http_render_fn, with a struct scrape_ctx as ctx.
 */
struct scrape_ctx {
	struct collect_src src;		/* collect_src_bpf(), or fakes */
	struct vm_table *vms;
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
	/* --max-vms: the snapshot with the folded VMs merged into "other" */
	struct snapshot view;
	const char **view_names;
	size_t cap_view_names;
};

/* Free what scrapes allocated (snap, view). */
void scrape_ctx_free(struct scrape_ctx *c);

int metrics_scrape(void *ctx, struct strbuf *out);

#endif /* __METRICS_H */
