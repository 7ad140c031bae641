// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* open_memstream */
#endif
#include <stdio.h>
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
	fake_map_init(&r->names, sizeof(struct vm_name), 1);
	fake_map_reader(&r->names, &r->ctx.src.vm_names);
	vm_table_set_names(&r->table, &r->ctx.src.vm_names);
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
	if (r->kvm.log)
		fclose(r->kvm.log);
	free(r->kvm_log);
	fake_proc_free(r->kvm_root);
	vm_table_free(&r->table);
	fake_map_free(&r->vm);
	fake_map_free(&r->h);
	fake_map_free(&r->self);
	fake_map_free(&r->names);
	fake_proc_free(r->proc);
	pthread_mutex_destroy(&r->lock);
}

void rig_set_name(struct rig *r, __u32 tgid, const char *comm,
		  const char *opt, bool argv_read)
{
	struct vm_name *n = fake_map_value(&r->names, tgid, 0);

	if (!n)
		return;
	memset(n, 0, sizeof(*n));
	strncpy(n->comm, comm, sizeof(n->comm));
	strncpy(n->name_opt, opt, sizeof(n->name_opt));
	n->args_len = argv_read ? 64 : 0;
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

void rig_probes(struct rig *r, const char *missing)
{
	static const char *const all[] = {
		PROBE_SYNC_CHILDREN, PROBE_UNSYNC_WALK, PROBE_CLEAR_PARENTS,
		PROBE_TP_SYNC_PAGE, PROBE_TP_UNSYNC_PAGE,
	};
	struct probe_status *p;
	size_t i;

	r->info.nr_probes = 0;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		bool on = !missing || strcmp(all[i], missing);

		p = &r->info.probes[r->info.nr_probes++];
		*p = (struct probe_status){ .probe = all[i], .attached = on };
		p->mode = on ? "fentry" : "none";
		if (i >= 3)
			p->mode = "tracepoint";
		if (!on)
			snprintf(p->reason, sizeof(p->reason), "attach failed");
	}
}

void rig_set_synced(struct rig *r, __u32 tgid, __u64 n)
{
	struct vm_guests *v = fake_map_value(&r->vm, tgid, 1);

	if (v)
		v->guest[GUEST_L1].pages_synced = n;
}

int rig_kvm_init(struct rig *r)
{
	r->kvm_root = fake_proc_new();
	if (!r->kvm_root)
		return -1;
	r->kvm.src.root = r->kvm_root;
	r->kvm.src.proc = r->proc;
	r->kvm.log = open_memstream(&r->kvm_log, &r->kvm_log_len);
	if (!r->kvm.log)
		return -1;
	r->ctx.kvm = &r->kvm;
	return 0;
}

void rig_kvm_vm(struct rig *r, __u32 tgid, int fd, __u64 base)
{
	__u64 val[KVM_STAT_NR];
	char name[32];
	int i;

	for (i = 0; i < KVM_STAT_NR; i++)
		val[i] = base + i;
	snprintf(name, sizeof(name), "%u-%d", tgid, fd);
	CHECK_INT(fake_kvm_vm_add(r->kvm_root, name, val), 0);
}
