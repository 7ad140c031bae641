// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include "rig.h"
#include "test.h"

int rig_init(struct rig *r, size_t max_vms)
{
	memset(r, 0, sizeof(*r));
	r->proc = fake_proc_new();
	if (!r->proc || vm_table_init(&r->table, r->proc))
		return -1;
	vm_table_set_max(&r->table, max_vms);
	fake_map_init(&r->vm, sizeof(struct vm_guests), RIG_NCPUS);
	fake_map_init(&r->h, sizeof(struct hists), RIG_NCPUS);
	fake_map_init(&r->self, sizeof(struct self_stats), RIG_NCPUS);
	fake_map_value(&r->h, 0, 0);
	fake_map_value(&r->self, 0, 0);
	fake_map_reader(&r->vm, &r->ctx.src.vm_stats);
	fake_map_reader(&r->h, &r->ctx.src.hists);
	fake_map_reader(&r->self, &r->ctx.src.self_stats);
	r->ctx.src.ncpus = RIG_NCPUS;
	r->ctx.vms = &r->table;
	r->ctx.info = &r->info;
	r->ctx.ringbuf_events = &r->events;
	pthread_mutex_init(&r->lock, NULL);
	r->ctx.lock = &r->lock;
	r->info.version = "test";
	r->info.variant = "stock";
	return 0;
}

void rig_free(struct rig *r)
{
	free(r->page);
	scrape_ctx_free(&r->ctx);
	vm_table_free(&r->table);
	fake_map_free(&r->vm);
	fake_map_free(&r->h);
	fake_map_free(&r->self);
	fake_proc_free(r->proc);
	pthread_mutex_destroy(&r->lock);
}

const char *rig_scrape(struct rig *r)
{
	struct strbuf b;
	size_t len;

	free(r->page);
	sb_init(&b);
	CHECK_INT(metrics_scrape(&r->ctx, &b), 0);
	r->page = sb_steal(&b, &len);
	return r->page ? r->page : "";
}

void rig_set_synced(struct rig *r, __u32 tgid, __u64 n)
{
	struct vm_guests *v = fake_map_value(&r->vm, tgid, 1);

	if (v)
		v->guest[GUEST_L1].pages_synced = n;
}
