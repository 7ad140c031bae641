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
#include "metrics.h"
#include "vm_table.h"

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
};

/* Free what scrapes allocated (snap). */
void scrape_ctx_free(struct scrape_ctx *c);

int metrics_scrape(void *ctx, struct strbuf *out);

#endif /* __SCRAPE_H */
