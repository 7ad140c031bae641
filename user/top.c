// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The live view's text (top.h).  Everything on it is a difference of two
 * snapshots, so what it shows is the last interval, like kvm_stat: rates
 * per second, and walk figures per mmu_sync_children call of the interval.
 * A counter smaller than before (its VM was dropped and the pid reused)
 * counts from zero.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* qsort_r */
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "duration_hist.h"
#include "top.h"

static const char *const sort_names[TOP_SORT_NR] = {
	"syncs", "restarts", "pages", "name", "pid",
};
static const char sort_keys[TOP_SORT_NR] = { 's', 'r', 'p', 'n', 'i' };

int top_sort_parse(const char *s, enum top_sort *out)
{
	int i;

	for (i = 0; i < TOP_SORT_NR; i++) {
		if (!strcmp(s, sort_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

int top_sort_key(int ch, enum top_sort *out)
{
	int i;

	for (i = 0; i < TOP_SORT_NR; i++) {
		if (ch == sort_keys[i]) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

struct out {
	char *buf;
	size_t len, need;
};

static void put(struct out *o, const char *fmt, ...)
{
	size_t room = o->need < o->len ? o->len - o->need : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->need += n;
}

static __u64 delta(__u64 now, __u64 before)
{
	return now >= before ? now - before : now;
}

enum { P_WALKS, P_RESTARTS, P_FRAMES, P_LEAVES, P_CLR_WALK, P_CLR_PAR,
       P_NR };

struct row {
	const struct top_vm *vm;
	double syncs_s, pages_s, unsync_s;
	__u64 syncs;
	double per[P_NR];	/* per sync of the interval */
	bool has_per;		/* there was a sync to divide by */
};

static const struct top_vm *find(const struct top_snap *s, __u32 pid)
{
	int i;

	for (i = 0; s && i < s->nr_vms; i++)
		if (s->vms[i].pid == pid)
			return &s->vms[i];
	return NULL;
}

static void fill(struct row *r, const struct top_vm *v,
		 const struct top_vm *p, double dt)
{
	static const struct vm_stats zero;
	const struct vm_stats *a = &v->st, *b = p ? &p->st : &zero;
	__u64 d[P_NR] = { 0 };
	int i, c;

	r->vm = v;
	r->syncs = 0;
	for (i = 0; i < SYNC_RESULT_MAX; i++)
		r->syncs += delta(a->sync_calls[i], b->sync_calls[i]);
	/* walk figures of the sync context: the zap walks are not a sync's */
	c = CTX_SYNC;
	for (i = 0; i < WALK_RESULT_MAX; i++)
		d[P_WALKS] += delta(a->walks[c][i], b->walks[c][i]);
	d[P_RESTARTS] = delta(a->restarts, b->restarts);
	d[P_FRAMES] = delta(a->frames[c], b->frames[c]);
	d[P_LEAVES] = delta(a->leaves[c], b->leaves[c]);
	d[P_CLR_WALK] = delta(a->clears[c][SITE_WALK], b->clears[c][SITE_WALK]);
	d[P_CLR_PAR] = delta(a->clears[c][SITE_CLEAR_PARENTS],
			     b->clears[c][SITE_CLEAR_PARENTS]);
	r->has_per = r->syncs > 0;
	for (i = 0; i < P_NR; i++)
		r->per[i] = r->has_per ? (double)d[i] / r->syncs : 0;
	r->syncs_s = dt > 0 ? r->syncs / dt : 0;
	r->pages_s = dt > 0 ? delta(a->pages_synced, b->pages_synced) / dt : 0;
	r->unsync_s = dt > 0 ?
		delta(a->pages_unsynced, b->pages_unsynced) / dt : 0;
}

static int cmp_num(double a, double b)
{
	return a > b ? -1 : a < b;	/* larger first */
}

static int by_sort(const void *x, const void *y, void *arg)
{
	const struct row *a = x, *b = y;
	enum top_sort s = *(enum top_sort *)arg;
	int r = 0;

	switch (s) {
	case TOP_SORT_SYNCS:
		r = cmp_num(a->syncs_s, b->syncs_s);
		break;
	case TOP_SORT_RESTARTS:
		r = cmp_num(a->per[P_RESTARTS], b->per[P_RESTARTS]);
		break;
	case TOP_SORT_PAGES:
		r = cmp_num(a->pages_s, b->pages_s);
		break;
	case TOP_SORT_NAME:
		r = strcmp(a->vm->name, b->vm->name);
		break;
	default:
		break;
	}
	/* ties, and TOP_SORT_PID: by pid, so rows do not jump around */
	return r ? r : (a->vm->pid > b->vm->pid) - (a->vm->pid < b->vm->pid);
}

static void per_cell(struct out *o, const struct row *r, int i)
{
	if (r->has_per)
		put(o, " %8.2f", r->per[i]);
	else
		put(o, " %8s", "-");
}

static void footer(struct out *o, const struct top_snap *prev,
		   const struct top_snap *cur)
{
	static const struct hists zero;
	const struct hists *a = &cur->hists, *b = prev ? &prev->hists : &zero;
	__u64 calls, seen, n;
	int k, c;

	k = duration_quantile_slot(a->sync_duration, b->sync_duration, 99,
				   &calls);
	if (k >= 0) {
		put(o, "sync duration: mean %.2f us, p99 < %.2f us (%llu syncs)\n",
		    delta(a->sync_duration_sum_ns, b->sync_duration_sum_ns) /
		    1000.0 / calls, duration_slot_below_us(k),
		    (unsigned long long)calls);
	} else {
		put(o, "sync duration: no syncs\n");
	}
	put(o, "pvec->nr at walk exit (nr:walks):");
	for (c = 0; c < CTX_MAX; c++) {
		put(o, " %s", c == CTX_SYNC ? "sync" : "| zap");
		seen = 0;
		for (k = 0; k < PVEC_BUCKETS; k++) {
			n = delta(a->pvec_depth[c][k], b->pvec_depth[c][k]);
			if (n)
				put(o, " %d:%llu", k, (unsigned long long)n);
			seen += n;
		}
		if (!seen)
			put(o, " -");
	}
	put(o, "\n");
}

size_t top_render(const struct top_snap *prev, const struct top_snap *cur,
		  double elapsed_s, enum top_sort sort, int max_rows,
		  char *buf, size_t len)
{
	struct out o = { .buf = buf, .len = len };
	struct row *rows;
	int i, n = cur->nr_vms;

	if (len)
		buf[0] = '\0';
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return 0;
	for (i = 0; i < n; i++)
		fill(&rows[i], &cur->vms[i], find(prev, cur->vms[i].pid),
		     elapsed_s);
	qsort_r(rows, n, sizeof(*rows), by_sort, &sort);
	if (max_rows > 0 && n > max_rows)
		n = max_rows;

	put(&o, "kvm-unsync-exporter: %d VMs, last %.1f s, sorted by %s (keys: s r p n i, q quits); per sync: WALKS..CLR-PAR\n",
	    cur->nr_vms, elapsed_s, sort_names[sort]);
	put(&o, "%-16s %7s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "VM",
	    "PID", "SYNCS/s", "WALKS", "RESTARTS", "FRAMES", "LEAVES",
	    "CLR-WALK", "CLR-PAR", "UNSYNC/s", "SYNCED/s", "KVM-UNS");
	for (i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		int k;

		put(&o, "%-16.16s %7u %8.1f", r->vm->name, r->vm->pid,
		    r->syncs_s);
		for (k = 0; k < P_NR; k++)
			per_cell(&o, r, k);
		put(&o, " %8.1f %8.1f", r->unsync_s, r->pages_s);
		if (r->vm->has_kvm)
			put(&o, " %8llu\n", (unsigned long long)
			    r->vm->kvm.val[KVM_STAT_MMU_UNSYNC]);
		else
			put(&o, " %8s\n", "-");
	}
	if (n < cur->nr_vms)
		put(&o, "(%d more VMs)\n", cur->nr_vms - n);
	footer(&o, prev, cur);
	free(rows);
	return o.need;
}
