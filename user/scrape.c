// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One scrape, in order (scrape.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include "scrape.h"

void scrape_ctx_free(struct scrape_ctx *c)
{
	snapshot_free(&c->snap);
	snapshot_free(&c->view);
	free(c->view_names);
	c->view_names = NULL;
	c->cap_view_names = 0;
}

/*
 * --max-vms: c->view holds the VMs with their own labels, then "other"
 * (tgid 0) with the sum of the folded ones.  Returns 0, 1 when nothing was
 * ever folded (render s as it is), or -ENOMEM.
 */
static int fold_view(struct scrape_ctx *c, const struct snapshot *s,
		     const char *const *names)
{
	const bool *folded = vm_table_folded(c->vms);
	struct vm_stats other;
	const char **p;
	size_t i, n = 0;

	if (!folded || !vm_table_other(c->vms, &other))
		return 1;
	if (c->cap_view_names < s->nr_vms + 1) {
		p = realloc(c->view_names, (s->nr_vms + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->view_names = p;
		c->cap_view_names = s->nr_vms + 1;
	}
	snapshot_reset(&c->view);
	for (i = 0; i < s->nr_vms; i++) {
		if (folded[i])
			continue;
		if (snapshot_add_vm(&c->view, s->vms[i].tgid, &s->vms[i].stats))
			return -ENOMEM;
		c->view_names[n++] = names ? names[i] : NULL;
	}
	if (snapshot_add_vm(&c->view, 0, &other))
		return -ENOMEM;
	c->view_names[n] = "other";
	c->view.hists = s->hists;
	c->view.self = s->self;
	return 0;
}

static int scrape_locked(struct scrape_ctx *c, struct strbuf *out)
{
	const struct snapshot *s = &c->snap;
	const char *const *names = NULL;
	struct metrics_extra x = { 0 };
	int err;

	if (c->waiting) {
		/* no maps yet: the agent's own metrics, no error */
		s = NULL;
		goto render;
	}
	if (c->vms)
		vm_table_check(c->vms);
	err = collect_from(&c->snap, &c->src);
	if (!err && c->vms)
		err = vm_table_sync(c->vms, &c->snap);
	if (err) {
		c->scrape_errors++;
		s = NULL;
	} else if (c->vms) {
		names = vm_table_names(c->vms);
		err = fold_view(c, s, names);
		if (err < 0)
			return err;
		if (!err) {
			x.tracked = s;
			s = &c->view;
			names = (const char *const *)c->view_names;
		}
	}
render:
	x.scrape_errors = c->scrape_errors;
	if (c->vms)
		x.vms_folded = vm_table_folded_total(c->vms);
	if (c->ringbuf_events)
		x.ringbuf_events = __atomic_load_n(c->ringbuf_events,
						   __ATOMIC_RELAXED);
	if (metrics_render(out, s, names, c->info, &x))
		return sb_error(out);
	/* the body is built: dead VMs have been published, forget them */
	if (s && c->vms && vm_table_reap(c->vms, &c->src.vm_stats) < 0)
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
