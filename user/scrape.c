// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* One scrape, in order (scrape.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include "scrape.h"

/* More VMMs than this under debugfs is not a host, it is a bug. */
#define KVM_STATS_CAP_MAX	65536

void scrape_ctx_free(struct scrape_ctx *c)
{
	snapshot_free(&c->snap);
	if (c->kvm) {
		free(c->kvm->buf);
		c->kvm->buf = NULL;
		c->kvm->cap = 0;
	}
}

/* KVM's stats into k->buf, growing it as needed: how many, or -errno. */
static int kvm_read(struct scrape_kvm *k)
{
	struct kvm_vm_kstats *p;
	int n, cap;

	for (;;) {
		if (k->cap) {
			n = kvm_stats_read(&k->src, k->buf, k->cap);
			if (n != -E2BIG || k->cap >= KVM_STATS_CAP_MAX)
				return n;
		}
		cap = k->cap ? k->cap * 2 : 64;
		p = realloc(k->buf, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		k->buf = p;
		k->cap = cap;
	}
}

/*
 * After vm_table_series(): KVM's series for the table's VMs.  true if
 * KVM's stats were read; a failure is logged once (scrape.h) and is not a
 * scrape error: the maps were read.
 */
static bool kvm_series(struct scrape_ctx *c, const struct vm_kvm_series **ks,
		       size_t *nr)
{
	struct scrape_kvm *k = c->kvm;
	char why[320];
	int n;

	n = kvm_read(k);
	if (kvm_stats_should_warn(&k->src, n))
		fprintf(k->log ? k->log : stderr, "warning: %s\n",
			kvm_stats_strerror(&k->src, n, why, sizeof(why)));
	if (n == -E2BIG)	/* KVM_STATS_CAP_MAX of them: publish those */
		n = k->cap;
	if (n < 0)
		return false;
	if (vm_table_kvm_series(c->vms, k->buf, n, ks, nr)) {
		c->scrape_errors++;
		return false;
	}
	return true;
}

static int scrape_locked(struct scrape_ctx *c, struct strbuf *out)
{
	const struct snapshot *s = &c->snap;
	const struct vm_series *series = NULL;
	const struct vm_kvm_series *kseries = NULL;
	struct metrics_extra x = { 0 };
	size_t nr_series = 0, nr_kseries = 0;
	bool kvm_ok = false;
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
	/* only for the table's VMs: after the series, and with the maps */
	if (s && c->kvm)
		kvm_ok = kvm_series(c, &kseries, &nr_kseries);
render:
	x.scrape_errors = c->scrape_errors;
	x.vms_folded = vm_table_folded_total(c->vms);
	if (c->ringbuf_events)
		x.ringbuf_events = __atomic_load_n(c->ringbuf_events,
						   __ATOMIC_RELAXED);
	if (metrics_render(out, s, series, nr_series, c->info, &x))
		return sb_error(out);
	if (c->kvm)
		metrics_render_kvm(out, kseries, nr_kseries, kvm_ok);
	if (sb_error(out))
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
