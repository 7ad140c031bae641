// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Two records compared.  The report is the one `make compare` makes in the
 * lab, for records taken anywhere: every figure of the two runs side by
 * side, B - A and B / A; then the figures not zero on both sides per sync
 * and per page synced (kvm_mmu_sync_page: the work the walk is there to
 * do, so the figure does not depend on how a workload splits it into
 * syncs).  record_read.c parses and checks the files.
 *
 * The per-VM rows are the families table's (families.c), a row for each
 * cell of each family the record holds, named by its record key.
 *
 * VMs are matched by name (the vm label): pids differ from run to run.
 * Several VMMs of one name in a record are summed.  A VM in one record only
 * shows "-" on the other side.  The totals of all VMs follow, unless the
 * records hold one VM name between them: they would repeat its tables.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "compare.h"
#include "duration_hist.h"
#include "record.h"
#include "record_read.h"

#define MAX_FIGS	64

struct fig {
	char label[48];
	__u64 val;
	bool rate;	/* a count: also shown per sync and per page */
};

static int add(struct fig *f, int n, bool rate, __u64 val, const char *fmt,
	       ...)
{
	va_list ap;

	if (n >= MAX_FIGS)
		return n;	/* test_every_counter_once fails if rows are lost */
	va_start(ap, fmt);
	vsnprintf(f[n].label, sizeof(f[n].label), fmt, ap);
	va_end(ap);
	f[n].val = val;
	f[n].rate = rate;
	return n + 1;
}

static bool by_context(const struct family *f)
{
	return f->src == FROM_VM && f->key && f->dims[0].label &&
	       !strcmp(f->dims[0].label, "context");
}

/* " in walk": a dim's value in a row label, after its word if it has one */
static void dim_text(char *buf, size_t len, const struct family_dim *d, int i)
{
	if (!d->label)
		buf[0] = '\0';
	else
		snprintf(buf, len, " %s%s%s", d->word ? d->word : "",
			 d->word ? " " : "", d->values[i]);
}

/*
 * The rows of family f, the record's key with spaces for a label: every
 * cell, or with ctx >= 0 the cells of that context, after its name
 * ("sync walks done", "restarts", "sync calls ok").
 */
static int family_rows(const struct family *f, const struct vm_stats *s,
		       int ctx, struct fig *out, int n)
{
	const __u64 *vals = (const __u64 *)((const char *)s + f->off);
	const struct family_dim *d0 = &f->dims[0], *d1 = &f->dims[1];
	int n0 = family_dim_nr(d0), n1 = family_dim_nr(d1), i, j;
	char key[48], t0[48], t1[48], *c;

	snprintf(key, sizeof(key), "%s", f->key);
	for (c = key; *c; c++)
		if (*c == '_')
			*c = ' ';
	for (i = 0; i < n0; i++) {
		if (ctx >= 0 && i != ctx)
			continue;
		dim_text(t0, sizeof(t0), d0, i);
		for (j = 0; j < n1; j++) {
			dim_text(t1, sizeof(t1), d1, j);
			if (ctx >= 0)
				n = add(out, n, true, vals[i * n1 + j],
					"%s %s%s", d0->values[i], key, t1);
			else
				n = add(out, n, true, vals[i * n1 + j],
					"%s%s%s", key, t0, t1);
		}
	}
	return n;
}

/*
 * The figures of one VM (or a total), in the order of make compare: the
 * per-VM families of the table in its order, those by context grouped
 * context by context where the first of them stands; then KVM's.
 */
static int figures(const struct record_doc_vm *v, bool kvm, struct fig *f)
{
	const struct family *fam;
	bool grouped = false;
	size_t k, g;
	int n = 0, c, i;

	for (k = 0; k < nr_agent_families; k++) {
		fam = &agent_families[k];
		if (fam->src != FROM_VM || !fam->key)
			continue;
		if (!by_context(fam)) {
			n = family_rows(fam, &v->st, -1, f, n);
			continue;
		}
		if (grouped)
			continue;
		grouped = true;
		for (c = 0; c < fam->dims[0].nr; c++)
			for (g = k; g < nr_agent_families; g++)
				if (by_context(&agent_families[g]))
					n = family_rows(&agent_families[g],
							&v->st, c, f, n);
	}
	if (!kvm)
		return n;
	n = add(f, n, false, v->kvm_vms, "kvm: VMs");
	for (i = 0; i < KVM_STAT_NR; i++)
		n = add(f, n, !kvm_stat_descs[i].gauge, v->kvm[i], "kvm: %s%s",
			kvm_stat_descs[i].name,
			kvm_stat_descs[i].gauge ? " (at end)" : "");
	return n;
}

static __u64 syncs(const struct record_doc_vm *v)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < SYNC_RESULT_MAX; i++)
		n += v->st.sync_calls[i];
	return n;
}

/* Room for any figure: a ratio of u64s has 23 characters at most. */
#define FIG_LEN		48

/* v to two decimals, in e-notation when that would not fit: never cut. */
static void fmt_real(char *buf, double v, bool sign)
{
	if (snprintf(buf, FIG_LEN, sign ? "%+.2f" : "%.2f", v) >= FIG_LEN)
		snprintf(buf, FIG_LEN, sign ? "%+.6e" : "%.6e", v);
}

static void fmt_ratio(char *buf, double a, double b)
{
	if (a == 0)
		snprintf(buf, FIG_LEN, "%s", b == 0 ? "=" : "-");
	else
		fmt_real(buf, b / a, false);
}

static void header(FILE *o)
{
	fprintf(o, "| %-34s | %12s | %12s | %12s | %7s |\n", "figure", "A",
		"B", "B-A", "B/A");
	fprintf(o, "| %.34s | %.12s | %.12s | %.12s | %.7s |\n",
		"----------------------------------", "------------",
		"------------", "------------", "-------");
}

static void row_count(FILE *o, const char *label, const __u64 *a,
		      const __u64 *b)
{
	char sa[FIG_LEN] = "-", sb[FIG_LEN] = "-", sd[FIG_LEN] = "-";
	char sr[FIG_LEN] = "-";

	if (a)
		snprintf(sa, sizeof(sa), "%llu", (unsigned long long)*a);
	if (b)
		snprintf(sb, sizeof(sb), "%llu", (unsigned long long)*b);
	if (a && b) {
		/* sign and magnitude: a u64 difference does not fit an s64 */
		snprintf(sd, sizeof(sd), "%c%llu", *b >= *a ? '+' : '-',
			 (unsigned long long)(*b >= *a ? *b - *a : *a - *b));
		fmt_ratio(sr, *a, *b);
	}
	fprintf(o, "| %-34s | %12s | %12s | %12s | %7s |\n", label, sa, sb,
		sd, sr);
}

/* a, b: values or NULL (absent, or nothing to divide by) */
static void row_real(FILE *o, const char *label, const double *a,
		     const double *b)
{
	char sa[FIG_LEN] = "-", sb[FIG_LEN] = "-", sd[FIG_LEN] = "-";
	char sr[FIG_LEN] = "-";

	if (a)
		fmt_real(sa, *a, false);
	if (b)
		fmt_real(sb, *b, false);
	if (a && b) {
		fmt_real(sd, *b - *a, true);
		fmt_ratio(sr, *a, *b);
	}
	fprintf(o, "| %-34s | %12s | %12s | %12s | %7s |\n", label, sa, sb,
		sd, sr);
}

/* a or b may be NULL: the VM is in one record only. */
static void vm_tables(FILE *o, const char *title, const struct record_doc_vm *a,
		      const struct record_doc_vm *b)
{
	bool kvm = (a && a->has_kvm) || (b && b->has_kvm);
	struct fig fa[MAX_FIGS], fb[MAX_FIGS];
	const char *per[2] = { "per sync", "per page synced" };
	int n, i, k;

	n = figures(a ? a : b, kvm, fa);
	figures(b ? b : a, kvm, fb);
	fprintf(o, "\n## %s%s\n\n", title,
		!a ? " (in B only)" : !b ? " (in A only)" : "");
	header(o);
	for (i = 0; i < n; i++) {
		bool ka = a && (a->has_kvm || strncmp(fa[i].label, "kvm:", 4));
		bool kb = b && (b->has_kvm || strncmp(fb[i].label, "kvm:", 4));

		row_count(o, fa[i].label, ka ? &fa[i].val : NULL,
			  kb ? &fb[i].val : NULL);
	}
	for (k = 0; k < 2; k++) {
		double da = a ? (k ? a->st.pages_synced : syncs(a)) : 0;
		double db = b ? (k ? b->st.pages_synced : syncs(b)) : 0;

		fprintf(o, "\n%s:\n\n", per[k]);
		header(o);
		for (i = 0; i < n; i++) {
			bool ka = a && da && (a->has_kvm ||
					      strncmp(fa[i].label, "kvm:", 4));
			bool kb = b && db && (b->has_kvm ||
					      strncmp(fb[i].label, "kvm:", 4));
			double va = ka ? fa[i].val / da : 0;
			double vb = kb ? fb[i].val / db : 0;

			/* the counts table has every figure; here, only
			 * those with something to divide */
			if (!fa[i].rate || (!va && !vb))
				continue;
			row_real(o, fa[i].label, ka ? &va : NULL,
				 kb ? &vb : NULL);
		}
	}
}

/* Sum the nr VMs at vm[]. */
static void sum_vms(const struct record_doc_vm *const *vm, int nr,
		    struct record_doc_vm *out)
{
	__u64 *d, *s;
	size_t j;
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < nr; i++) {
		const struct record_doc_vm *v = vm[i];

		d = (__u64 *)&out->st;
		s = (__u64 *)&v->st;
		for (j = 0; j < sizeof(v->st) / sizeof(__u64); j++)
			d[j] += s[j];
		if (v->has_kvm) {
			out->has_kvm = true;
			out->kvm_vms += v->kvm_vms;
			for (j = 0; j < KVM_STAT_NR; j++)
				out->kvm[j] += v->kvm[j];
		}
	}
}

static void global_tables(FILE *o, const struct record_doc *a, const struct record_doc *b)
{
	const struct record_doc *r[2] = { a, b };
	double v[2], *p[2];
	char label[48];
	int c, nr, i;

	fprintf(o, "\n## global\n\n");
	header(o);
	for (c = 0; c < CTX_MAX; c++) {
		for (nr = 0; nr < PVEC_BUCKETS; nr++) {
			if (!a->h.pvec_depth[c][nr] && !b->h.pvec_depth[c][nr])
				continue;
			snprintf(label, sizeof(label), "%s walks with pvec->nr %d",
				 family_ctx_names[c], nr);
			row_count(o, label, &a->h.pvec_depth[c][nr],
				  &b->h.pvec_depth[c][nr]);
		}
		for (i = 0; i < 2; i++) {
			__u64 walks = 0;

			for (nr = 0; nr < PVEC_BUCKETS; nr++)
				walks += r[i]->h.pvec_depth[c][nr];
			v[i] = walks ? (double)r[i]->h.pvec_depth_sum[c] / walks : 0;
			p[i] = walks ? &v[i] : NULL;
		}
		snprintf(label, sizeof(label), "%s mean pvec->nr",
			 family_ctx_names[c]);
		row_real(o, label, p[0], p[1]);
	}
	for (i = 0; i < 2; i++) {
		__u64 calls = 0;

		for (nr = 0; nr < DURATION_SLOTS; nr++)
			calls += r[i]->h.sync_duration[nr];
		v[i] = calls ? r[i]->h.sync_duration_sum_ns / 1000.0 / calls : 0;
		p[i] = calls ? &v[i] : NULL;
	}
	row_real(o, "sync duration mean (us)", p[0], p[1]);
	for (i = 0; i < 2; i++) {
		__u64 calls;
		int k = duration_quantile_slot(r[i]->h.sync_duration, NULL, 99,
					       &calls);

		v[i] = k >= 0 ? duration_slot_below_us(k) : 0;
		p[i] = k >= 0 ? &v[i] : NULL;
	}
	row_real(o, "sync duration p99 below (us)", p[0], p[1]);
	row_count(o, "ringbuf dropped", &a->self.ringbuf_dropped,
		  &b->self.ringbuf_dropped);
	row_count(o, "task state full", &a->self.task_state_full,
		  &b->self.task_state_full);
	row_count(o, "stack overflow", &a->self.stack_overflow,
		  &b->self.stack_overflow);
	row_count(o, "orphan exits", &a->self.orphan_exits,
		  &b->self.orphan_exits);
	row_count(o, "per-VM map full", &a->self.vm_stats_full,
		  &b->self.vm_stats_full);
	row_real(o, "run duration (s)", &a->duration, &b->duration);
}

/*
 * The VMs of a record by name, so that matching 40,000 VMs with another
 * record's is a sort and a merge, not a search per VM: vm[] is the
 * record's VMs sorted by name (record order within a name), g[] a group
 * per name, in name order.
 */
struct vm_group {
	const struct record_doc_vm *const *vm;	/* the VMs of this name */
	int nr;
	int first;			/* the record index of the first */
	const struct vm_group *other;	/* the same name in the other record */
};

struct vm_groups {
	const struct record_doc_vm **vm;
	struct vm_group *g;
	int nr;
};

static int by_name(const void *x, const void *y)
{
	const struct record_doc_vm *a = *(const struct record_doc_vm *const *)x;
	const struct record_doc_vm *b = *(const struct record_doc_vm *const *)y;
	int c = strcmp(a->name, b->name);

	return c ? c : (a > b) - (a < b);
}

static int by_first(const void *x, const void *y)
{
	const struct vm_group *a = *(const struct vm_group *const *)x;
	const struct vm_group *b = *(const struct vm_group *const *)y;

	return (a->first > b->first) - (a->first < b->first);
}

static int group_vms(const struct record_doc *r, struct vm_groups *gs)
{
	struct vm_group *g = NULL;
	int i;

	gs->nr = 0;
	gs->vm = calloc(r->nr_vms ? r->nr_vms : 1, sizeof(*gs->vm));
	gs->g = calloc(r->nr_vms ? r->nr_vms : 1, sizeof(*gs->g));
	if (!gs->vm || !gs->g)
		return -ENOMEM;
	for (i = 0; i < r->nr_vms; i++)
		gs->vm[i] = &r->vms[i];
	qsort(gs->vm, r->nr_vms, sizeof(*gs->vm), by_name);
	for (i = 0; i < r->nr_vms; i++) {
		if (g && !strcmp(g->vm[0]->name, gs->vm[i]->name)) {
			g->nr++;
			continue;
		}
		g = &gs->g[gs->nr++];
		*g = (struct vm_group){ .vm = &gs->vm[i], .nr = 1,
					.first = gs->vm[i] - r->vms };
	}
	return 0;
}

/* Pair the groups of one name: a merge of the two name orders. */
static void pair_groups(struct vm_groups *a, struct vm_groups *b)
{
	int i = 0, j = 0, c;

	while (i < a->nr && j < b->nr) {
		c = strcmp(a->g[i].vm[0]->name, b->g[j].vm[0]->name);
		if (!c) {
			a->g[i].other = &b->g[j];
			b->g[j].other = &a->g[i];
		}
		i += c <= 0;
		j += c >= 0;
	}
}

/*
 * The names in report order, into order[] (a->nr + b->nr long): A's in
 * A's order, then B's that A lacks in B's order.  How many.
 */
static int name_order(const struct vm_groups *a, const struct vm_groups *b,
		      const struct vm_group **order)
{
	int i, n = 0;

	for (i = 0; i < a->nr; i++)
		order[n++] = &a->g[i];
	qsort(order, n, sizeof(*order), by_first);
	for (i = 0; i < b->nr; i++)
		if (!b->g[i].other)
			order[n++] = &b->g[i];
	qsort(order + a->nr, n - a->nr, sizeof(*order), by_first);
	return n;
}

/* One table set per name, and the totals; -ENOMEM, or 0. */
static int vm_reports(FILE *o, const struct record_doc *a,
		      const struct record_doc *b)
{
	struct vm_groups ga = { 0 }, gb = { 0 };
	const struct vm_group **order = NULL, *g, *in_a, *in_b;
	struct record_doc_vm va, vb;
	char title[VM_NAME_MAX + 8];
	int i, names = 0, ret = -ENOMEM;

	if (group_vms(a, &ga) || group_vms(b, &gb) ||
	    !(order = calloc(ga.nr + gb.nr + 1, sizeof(*order))))
		goto out;
	pair_groups(&ga, &gb);
	names = name_order(&ga, &gb, order);
	for (i = 0; i < names && !ferror(o); i++) {
		g = order[i];
		in_a = i < ga.nr ? g : NULL;
		in_b = i < ga.nr ? g->other : g;
		if (in_a)
			sum_vms(in_a->vm, in_a->nr, &va);
		if (in_b)
			sum_vms(in_b->vm, in_b->nr, &vb);
		snprintf(title, sizeof(title), "vm %s", g->vm[0]->name);
		vm_tables(o, title, in_a ? &va : NULL, in_b ? &vb : NULL);
	}
	/* one VM name in both records (make compare: a record per shape):
	 * the totals are its tables again */
	if (names == 1) {
		fprintf(o, "\n(all VMs: the one above)\n");
	} else {
		sum_vms(ga.vm, a->nr_vms, &va);
		sum_vms(gb.vm, b->nr_vms, &vb);
		vm_tables(o, "all VMs", &va, &vb);
	}
	ret = 0;
out:
	free(order);
	free(ga.vm);
	free(ga.g);
	free(gb.vm);
	free(gb.g);
	return ret;
}

static int report(FILE *o, const struct record_doc *a, const struct record_doc *b)
{
	fprintf(o, "# %s vs %s\n\n", a->path, b->path);
	fprintf(o, "A: %s, kernel %s (%s), agent %s, %.1f s\n", a->path,
		a->release, a->variant, a->version, a->duration);
	fprintf(o, "B: %s, kernel %s (%s), agent %s, %.1f s\n", b->path,
		b->release, b->variant, b->version, b->duration);
	fprintf(o, "A hooks: %s\nB hooks: %s\n", a->hooks, b->hooks);
	if (vm_reports(o, a, b))
		return -ENOMEM;
	global_tables(o, a, b);
	return 0;
}

/* ---- --plot=DIR: the two PNGs make compare draws, with gnuplot ---- */

static int plot_one(const char *dir, const char *name, const char *title,
		    const char *xlabel, const __u64 *a, const __u64 *b,
		    int n, FILE *err)
{
	char path[4096];
	FILE *f, *g;
	int i;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "we");
	if (!f) {
		fprintf(err, "kvm-unsync-exporter compare: --plot: cannot write %s: %s\n",
			path, strerror(errno));
		return 2;
	}
	for (i = 0; i < n; i++)
		fprintf(f, "%d %llu %llu\n", i, (unsigned long long)a[i],
			(unsigned long long)b[i]);
	if (ferror(f) | fclose(f)) {
		fprintf(err, "kvm-unsync-exporter compare: --plot: cannot write %s\n",
			path);
		return 2;
	}
	g = popen("gnuplot 2>&1", "w");
	if (!g)
		goto fail;
	fprintf(g, "set terminal pngcairo size 640,360 noenhanced\n"
		"set output '%s/%s.png'\n"
		"set title '%s'\nset xlabel '%s'\nset ylabel 'count'\n"
		"set style data histograms\n"
		"set style histogram clustered gap 1\n"
		"set style fill solid 0.8 border -1\nset yrange [0:*]\n"
		"set key top center\nset offsets 0, 0, graph 0.15, 0\n"
		"plot '%s' using 2:xtic(1) title 'A', '' using 3 title 'B'\n",
		dir, name, title, xlabel, path);
	if (pclose(g) == 0)
		return 0;
fail:
	fprintf(err, "kvm-unsync-exporter compare: --plot: gnuplot failed (apt-get install gnuplot-nox)\n");
	return 2;
}

static int plots(const char *dir, const struct record_doc *a, const struct record_doc *b,
		 FILE *err)
{
	__u64 da[PVEC_BUCKETS], db[PVEC_BUCKETS];
	int i;

	for (i = 0; i < PVEC_BUCKETS; i++) {
		da[i] = a->h.pvec_depth[CTX_SYNC][i] + a->h.pvec_depth[CTX_ZAP][i];
		db[i] = b->h.pvec_depth[CTX_SYNC][i] + b->h.pvec_depth[CTX_ZAP][i];
	}
	return plot_one(dir, "pvec-depth",
			"pvec->nr when a top-level walk returns", "pvec->nr",
			da, db, PVEC_BUCKETS, err) ?:
	       plot_one(dir, "sync-duration",
			"mmu_sync_children duration", "log2(ns) slot",
			a->h.sync_duration, b->h.sync_duration, DURATION_SLOTS,
			err);
}

/*
 * Did the report reach out, every write of it (a full disk, a closed
 * pipe)?  0, or 1 with one line: a report lost must not exit 0.
 */
static int write_check(FILE *out, FILE *err)
{
	int e = fflush(out) ? errno : ferror(out) ? EIO : 0;

	if (!e)
		return 0;
	fprintf(err, "kvm-unsync-exporter compare: cannot write the report: %s\n",
		strerror(e));
	return 1;
}

int compare_files(const char *a, const char *b, const char *plot_dir,
		  FILE *out, FILE *err)
{
	struct record_doc ra = { 0 }, rb = { 0 };
	int ret = 0;

	if (!record_read(&ra, a)) {
		fprintf(err, "kvm-unsync-exporter compare: %s: %s\n", a, ra.err);
		ret = 2;
	} else if (!record_read(&rb, b)) {
		fprintf(err, "kvm-unsync-exporter compare: %s: %s\n", b, rb.err);
		ret = 2;
	} else if (report(out, &ra, &rb)) {
		fprintf(err, "kvm-unsync-exporter compare: out of memory\n");
		ret = 1;
	} else {
		ret = write_check(out, err);
		if (!ret && plot_dir)
			ret = plots(plot_dir, &ra, &rb, err);
	}
	record_doc_free(&ra);
	record_doc_free(&rb);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvm-unsync-exporter compare A.json B.json [--plot=DIR]\n"
		"  A.json, B.json  records written by --record=FILE (docs/record.md)\n"
		"  --plot=DIR      also draw DIR/pvec-depth.png and DIR/sync-duration.png (gnuplot)\n");
}

int compare_main(int argc, char **argv)
{
	const char *files[2], *plot = NULL;
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "--plot=", 7) && argv[i][7]) {
			plot = argv[i] + 7;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "kvm-unsync-exporter compare: unknown option %s\n",
				argv[i]);
			usage(stderr);
			return 2;
		} else if (n < 2) {
			files[n++] = argv[i];
		} else {
			n++;
		}
	}
	if (n != 2) {
		fprintf(stderr, "kvm-unsync-exporter compare: want two records, got %d\n",
			n);
		usage(stderr);
		return 2;
	}
	/* gnuplot is given DIR inside '...': a quote or a newline would end it */
	if (plot && strpbrk(plot, "'\n")) {
		fprintf(stderr, "kvm-unsync-exporter compare: --plot: the directory's name may not hold ' or a newline (gnuplot quotes it): choose another\n");
		return 2;
	}
	n = compare_files(files[0], files[1], plot, stdout, stderr);
	/* what fflush did not see, close does (a file on NFS, say) */
	if (fclose(stdout) && !n) {
		fprintf(stderr, "kvm-unsync-exporter compare: cannot write the report: %s\n",
			strerror(errno));
		n = 1;
	}
	return n;
}
