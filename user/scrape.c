// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One scrape, in order (scrape.h). */
#include <stdbool.h>
#include <stddef.h>
#include "scrape.h"

void scrape_ctx_free(struct scrape_ctx *c)
{
	snapshot_free(&c->snap);
}

static int scrape_locked(struct scrape_ctx *c, struct strbuf *out)
{
	const struct snapshot *s = &c->snap;
	const struct vm_series *series = NULL;
	struct metrics_extra x = { 0 };
	size_t nr_series = 0;
	int err;

	if (c->waiting) {
		/* no maps yet: the agent's own metrics, no error */
		s = NULL;
		goto render;
	}
	vm_table_check(c->vms);
	err = collect_from(&c->snap, &c->src);
	if (!err)
		err = vm_table_series(c->vms, &c->snap, &series, &nr_series);
	if (err) {
		c->scrape_errors++;
		s = NULL;
	}
render:
	x.scrape_errors = c->scrape_errors;
	x.vms_folded = vm_table_folded_total(c->vms);
	if (c->ringbuf_events)
		x.ringbuf_events = __atomic_load_n(c->ringbuf_events,
						   __ATOMIC_RELAXED);
	if (metrics_render(out, s, series, nr_series, c->info, &x))
		return sb_error(out);
	/* the body is built: dead VMs have been published, forget them */
	if (s && vm_table_reap(c->vms, &c->src.vm_stats) < 0)
		c->scrape_errors++;
	return 0;
}

int metrics_scrape(void *ctx, struct strbuf *out)
{
	struct scrape_ctx *c = ctx;
	int err;

	if (c->lock)
		pthread_mutex_lock(c->lock);
	err = scrape_locked(c, out);
	if (c->lock)
		pthread_mutex_unlock(c->lock);
	return err;
}
