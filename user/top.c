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
#include "families.h"
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

/*
 * The columns, as data: each sums the interval's cells of one family of
 * families.c, named by its metric name, where each label given has the
 * value given (a label not given: all its values).  So a column reads the
 * figure the page publishes under that name, and `grep -rn` of a metric
 * name finds the live view's use of it too.
 */
enum col_kind {
	COL_SYNCS,	/* the interval's syncs per second, and the divisor */
	COL_PER_SYNC,	/* per mmu_sync_children call of the interval */
	COL_PER_SEC,	/* per second */
	COL_NOW,	/* KVM's gauge as read now, not a difference */
};

struct col_where {
	const char *label, *value;
};

struct top_col {
	const char *head;
	const char *family;
	enum col_kind kind;
	struct col_where where[2];
	char key;	/* the sort key (sort_keys) that orders by it, or 0 */
};

/* the walk figures of the sync context: the zap walks are not a sync's */
#define SYNC_CTX	{ "context", "sync" }

#define COL(h, f, k)	.head = h, .family = f, .kind = k

static const struct top_col cols[] = {
	{ COL("SYNCS/s", "kvm_unsync_sync_calls_total", COL_SYNCS), .key = 's' },
	{ COL("WALKS", "kvm_unsync_walks_total", COL_PER_SYNC),
	  .where = { SYNC_CTX } },
	{ COL("RESTARTS", "kvm_unsync_restarts_total", COL_PER_SYNC),
	  .key = 'r' },
	{ COL("FRAMES", "kvm_unsync_walk_frames_total", COL_PER_SYNC),
	  .where = { SYNC_CTX } },
	{ COL("LEAVES", "kvm_unsync_walk_leaves_total", COL_PER_SYNC),
	  .where = { SYNC_CTX } },
	{ COL("CLR-WALK", "kvm_unsync_bitmap_clears_total", COL_PER_SYNC),
	  .where = { SYNC_CTX, { "site", "walk" } } },
	{ COL("CLR-PAR", "kvm_unsync_bitmap_clears_total", COL_PER_SYNC),
	  .where = { SYNC_CTX, { "site", "clear_parents" } } },
	{ COL("UNSYNC/s", "kvm_unsync_pages_unsynced_total", COL_PER_SEC) },
	{ COL("SYNCED/s", "kvm_unsync_pages_synced_total", COL_PER_SEC),
	  .key = 'p' },
	{ COL("KVM-UNS", "kvm_unsync_kvm_mmu_unsync", COL_NOW) },
};
#define NR_COLS	(sizeof(cols) / sizeof(cols[0]))

/*
 * A column resolved against the table: the family's source, the offset of
 * its first __u64 and which of its cells (row-major, dims[0] outer) it
 * sums.  Filled once; a column that names no family or label value, or
 * more cells than MAX_CELLS, is a bug the unit test catches (its cells
 * would all show "-").
 */
#define MAX_CELLS	16

struct col_cells {
	bool ok;
	enum family_source src;
	size_t off;
	int nr;
	int cell[MAX_CELLS];
};

static const struct family *family_named(const char *name)
{
	size_t i;

	for (i = 0; i < nr_agent_families; i++)
		if (!strcmp(agent_families[i].name, name))
			return &agent_families[i];
	for (i = 0; i < nr_kvm_families; i++)
		if (!strcmp(kvm_families[i].name, name))
			return &kvm_families[i];
	return NULL;
}

/* the value index each dim must have (-1: any); false if one is unknown */
static bool want_values(const struct family *f, const struct top_col *c,
			int want[2])
{
	const struct col_where *w;
	int d, k;

	want[0] = want[1] = -1;
	for (w = c->where; w < c->where + 2 && w->label; w++) {
		for (d = 0; d < 2; d++)
			if (f->dims[d].label && !strcmp(f->dims[d].label, w->label))
				break;
		if (d == 2)
			return false;
		for (k = 0; k < f->dims[d].nr; k++)
			if (!strcmp(f->dims[d].values[k], w->value))
				break;
		if (k == f->dims[d].nr)
			return false;
		want[d] = k;
	}
	return true;
}

static void resolve(const struct top_col *c, struct col_cells *out)
{
	const struct family *f = family_named(c->family);
	int want[2], n0, n1, i, j;

	memset(out, 0, sizeof(*out));
	if (!f || (f->src != FROM_VM && f->src != FROM_KVM) ||
	    !want_values(f, c, want))
		return;
	n0 = family_dim_nr(&f->dims[0]);
	n1 = family_dim_nr(&f->dims[1]);
	for (i = 0; i < n0; i++) {
		for (j = 0; j < n1; j++) {
			if ((want[0] >= 0 && want[0] != i) ||
			    (want[1] >= 0 && want[1] != j))
				continue;
			if (out->nr == MAX_CELLS)
				return;	/* not a partial sum: "-" */
			out->cell[out->nr++] = i * n1 + j;
		}
	}
	out->src = f->src;
	out->off = f->off;
	out->ok = true;
}

static const struct col_cells *cells(void)
{
	static struct col_cells cc[NR_COLS];
	static bool done;
	size_t i;

	if (!done) {
		for (i = 0; i < NR_COLS; i++)
			resolve(&cols[i], &cc[i]);
		done = true;
	}
	return cc;
}

struct row {
	const struct top_vm *vm;
	double val[NR_COLS];
	__u64 now[NR_COLS];	/* COL_NOW: printed exactly */
	bool has[NR_COLS];	/* false: shown as "-" (no sync, no KVM stats) */
};

static const struct top_vm *find(const struct top_snap *s, __u32 pid)
{
	int i;

	for (i = 0; s && i < s->nr_vms; i++)
		if (s->vms[i].pid == pid)
			return &s->vms[i];
	return NULL;
}

static const __u64 *base_of(const struct col_cells *cc, const struct top_vm *v)
{
	const char *b = cc->src == FROM_KVM ? (const char *)&v->kvm :
		(const char *)&v->st;

	return (const __u64 *)(b + cc->off);
}

/* the column's sum over the interval (COL_NOW: as read now) */
static __u64 col_sum(const struct col_cells *cc, enum col_kind kind,
		     const struct top_vm *v, const struct top_vm *p)
{
	static const struct top_vm zero;
	const __u64 *a = base_of(cc, v), *b = base_of(cc, p ? p : &zero);
	__u64 sum = 0;
	int i;

	for (i = 0; i < cc->nr; i++)
		sum += kind == COL_NOW ? a[cc->cell[i]] :
			delta(a[cc->cell[i]], b[cc->cell[i]]);
	return sum;
}

static void fill(struct row *r, const struct top_vm *v,
		 const struct top_vm *p, double dt)
{
	const struct col_cells *cc = cells();
	__u64 syncs = 0, sum;
	size_t i;

	for (i = 0; i < NR_COLS; i++)
		if (cols[i].kind == COL_SYNCS && cc[i].ok)
			syncs = col_sum(&cc[i], COL_SYNCS, v, p);
	r->vm = v;
	for (i = 0; i < NR_COLS; i++) {
		sum = cc[i].ok ? col_sum(&cc[i], cols[i].kind, v, p) : 0;
		r->has[i] = cc[i].ok;
		switch (cols[i].kind) {
		case COL_SYNCS:
		case COL_PER_SEC:
			r->val[i] = dt > 0 ? sum / dt : 0;
			break;
		case COL_PER_SYNC:
			r->has[i] = r->has[i] && syncs > 0;
			r->val[i] = r->has[i] ? (double)sum / syncs : 0;
			break;
		case COL_NOW:
			r->has[i] = r->has[i] && v->has_kvm;
			r->val[i] = sum;
			r->now[i] = sum;
			break;
		}
	}
}

static int cmp_num(double a, double b)
{
	return a > b ? -1 : a < b;	/* larger first */
}

struct order {
	enum top_sort sort;
	int col;		/* the column it orders by, -1: name or pid */
};

static int by_sort(const void *x, const void *y, void *arg)
{
	const struct row *a = x, *b = y;
	const struct order *s = arg;
	int r = 0;

	if (s->col >= 0)
		r = cmp_num(a->val[s->col], b->val[s->col]);
	else if (s->sort == TOP_SORT_NAME)
		r = strcmp(a->vm->name, b->vm->name);
	/* ties, and TOP_SORT_PID: by pid, so rows do not jump around */
	return r ? r : (a->vm->pid > b->vm->pid) - (a->vm->pid < b->vm->pid);
}

static void cell(struct out *o, const struct row *r, size_t i)
{
	if (!r->has[i])
		put(o, " %8s", "-");
	else if (cols[i].kind == COL_PER_SYNC)
		put(o, " %8.2f", r->val[i]);
	else if (cols[i].kind == COL_NOW)
		put(o, " %8llu", (unsigned long long)r->now[i]);
	else
		put(o, " %8.1f", r->val[i]);
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
	struct order ord;
	size_t c;

	if (len)
		buf[0] = '\0';
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows)
		return 0;
	for (i = 0; i < n; i++)
		fill(&rows[i], &cur->vms[i], find(prev, cur->vms[i].pid),
		     elapsed_s);
	for (c = 0; c < NR_COLS && cols[c].key != sort_keys[sort]; c++)
		;
	ord.sort = sort;
	ord.col = c < NR_COLS ? (int)c : -1;
	qsort_r(rows, n, sizeof(*rows), by_sort, &ord);
	if (max_rows > 0 && n > max_rows)
		n = max_rows;

	put(&o, "kvm-unsync-exporter: %d VMs, last %.1f s, sorted by %s (keys: s r p n i, q quits); per sync: WALKS..CLR-PAR\n",
	    cur->nr_vms, elapsed_s, sort_names[sort]);
	put(&o, "%-16s %7s", "VM", "PID");
	for (c = 0; c < NR_COLS; c++)
		put(&o, " %8s", cols[c].head);
	put(&o, "\n");
	for (i = 0; i < n; i++) {
		put(&o, "%-16.16s %7u", rows[i].vm->name, rows[i].vm->pid);
		for (c = 0; c < NR_COLS; c++)
			cell(&o, &rows[i], c);
		put(&o, "\n");
	}
	if (n < cur->nr_vms)
		put(&o, "(%d more VMs)\n", cur->nr_vms - n);
	footer(&o, prev, cur);
	free(rows);
	return o.need;
}
