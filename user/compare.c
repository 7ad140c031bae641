// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Two records compared.  The report is the one `make compare` makes in the
 * lab, for records taken anywhere: every figure of the two runs side by
 * side, B - A and B / A; then the figures not zero on both sides per sync and per
 * page synced (kvm_mmu_sync_page: the work the walk is there to do, so the
 * figure does not depend on how a workload splits it into syncs).
 *
 * VMs are matched by name (the vm label): pids differ from run to run.
 * Several VMMs of one name in a record are summed.  A VM in one record only
 * shows "-" on the other side.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "compare.h"
#include "duration_hist.h"
#include "record.h"

struct cvm {
	char name[VM_NAME_MAX];
	struct vm_stats st;
	bool has_kvm;
	__u64 kvm_vms;
	__u64 kvm[KVM_STAT_NR];
};

struct rec {
	const char *path;
	char release[65], variant[16], version[32];
	char hooks[1024];	/* "probe=mode ..." for the header */
	double duration;
	struct cvm *vms;
	int nr_vms;
	struct hists h;
	struct self_stats self;
	char err[512];		/* the first problem found */
};

static bool fail(struct rec *r, const char *fmt, ...)
{
	va_list ap;

	if (r->err[0])
		return false;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return false;
}

/* o[key] of type t, or NULL with "missing field PATH.KEY" recorded. */
static json_object *need(struct rec *r, json_object *o, const char *path,
			 const char *key, json_type t)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v) {
		fail(r, "missing field %s%s%s", path, *path ? "." : "", key);
		return NULL;
	}
	if (!json_object_is_type(v, t) &&
	    !(t == json_type_double && json_object_is_type(v, json_type_int))) {
		fail(r, "field %s%s%s is not a %s", path, *path ? "." : "", key,
		     json_type_to_name(t));
		return NULL;
	}
	return v;
}

static bool get_u64(struct rec *r, json_object *o, const char *path,
		    const char *key, __u64 *val)
{
	json_object *v = need(r, o, path, key, json_type_int);

	if (!v)
		return false;
	if (json_object_get_int64(v) < 0 && json_object_get_uint64(v) == 0)
		return fail(r, "field %s.%s is negative", path, key);
	*val = json_object_get_uint64(v);
	return true;
}

static bool get_str(struct rec *r, json_object *o, const char *path,
		    const char *key, char *buf, size_t len)
{
	json_object *v = need(r, o, path, key, json_type_string);

	if (!v)
		return false;
	snprintf(buf, len, "%s", json_object_get_string(v));
	return true;
}

/* {"names[0]": u64, ...} at o[key] */
static bool get_named(struct rec *r, json_object *o, const char *path,
		      const char *key, const char *const *names, int n,
		      __u64 *out)
{
	json_object *v = need(r, o, path, key, json_type_object);
	char sub[160];
	int i;

	if (!v)
		return false;
	snprintf(sub, sizeof(sub), "%s.%s", path, key);
	for (i = 0; i < n; i++)
		if (!get_u64(r, v, sub, names[i], &out[i]))
			return false;
	return true;
}

/* exactly n u64s at o[key] */
static bool get_array(struct rec *r, json_object *o, const char *path,
		      const char *key, int n, __u64 *out)
{
	json_object *v = need(r, o, path, key, json_type_array), *e;
	int i;

	if (!v)
		return false;
	if ((int)json_object_array_length(v) != n)
		return fail(r, "field %s.%s has %zu entries, want %d", path, key,
			    json_object_array_length(v), n);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_int) ||
		    (json_object_get_int64(e) < 0 &&
		     json_object_get_uint64(e) == 0))
			return fail(r, "field %s.%s[%d] is not a count", path,
				    key, i);
		out[i] = json_object_get_uint64(e);
	}
	return true;
}

static bool get_counters(struct rec *r, json_object *o, const char *path,
			 struct vm_stats *s)
{
	char sub[128];
	json_object *w, *c;
	int x;

	if (!get_named(r, o, path, "sync_calls", record_sync_names,
		       SYNC_RESULT_MAX, s->sync_calls) ||
	    !get_named(r, o, path, "frames", record_ctx_names, CTX_MAX,
		       s->frames) ||
	    !get_named(r, o, path, "leaves", record_ctx_names, CTX_MAX,
		       s->leaves) ||
	    !get_u64(r, o, path, "restarts", &s->restarts) ||
	    !get_u64(r, o, path, "pages_unsynced", &s->pages_unsynced) ||
	    !get_u64(r, o, path, "pages_synced", &s->pages_synced))
		return false;
	w = need(r, o, path, "walks", json_type_object);
	c = need(r, o, path, "clears", json_type_object);
	if (!w || !c)
		return false;
	for (x = 0; x < CTX_MAX; x++) {
		snprintf(sub, sizeof(sub), "%s.walks", path);
		if (!get_named(r, w, sub, record_ctx_names[x],
			       record_walk_names, WALK_RESULT_MAX, s->walks[x]))
			return false;
		snprintf(sub, sizeof(sub), "%s.clears", path);
		if (!get_named(r, c, sub, record_ctx_names[x],
			       record_site_names, SITE_MAX, s->clears[x]))
			return false;
	}
	return true;
}

static bool get_vm(struct rec *r, json_object *o, int i, struct cvm *v)
{
	json_object *c, *k;
	char path[48], sub[64];
	int s;

	snprintf(path, sizeof(path), "vms[%d]", i);
	if (!json_object_is_type(o, json_type_object))
		return fail(r, "field %s is not an object", path);
	if (!get_str(r, o, path, "name", v->name, sizeof(v->name)))
		return false;
	c = need(r, o, path, "counters", json_type_object);
	snprintf(sub, sizeof(sub), "%s.counters", path);
	if (!c || !get_counters(r, c, sub, &v->st))
		return false;
	if (!json_object_object_get_ex(o, "kvm", &k))
		return fail(r, "missing field %s.kvm", path);
	if (!k)
		return true;	/* null: KVM's stats were not read */
	if (!json_object_is_type(k, json_type_object))
		return fail(r, "field %s.kvm is not an object", path);
	snprintf(sub, sizeof(sub), "%s.kvm", path);
	if (!get_u64(r, k, sub, "vms", &v->kvm_vms))
		return false;
	for (s = 0; s < KVM_STAT_NR; s++)
		if (!get_u64(r, k, sub, kvm_stat_descs[s].name, &v->kvm[s]))
			return false;
	v->has_kvm = true;
	return true;
}

/* hooks[]: probe=mode, or probe=none when it did not attach */
static bool get_hooks(struct rec *r, json_object *d)
{
	json_object *a = need(r, d, "", "hooks", json_type_array), *h, *v;
	char path[32], probe[64], mode[16];
	size_t i, off = 0;

	if (!a)
		return false;
	for (i = 0; i < json_object_array_length(a); i++) {
		h = json_object_array_get_idx(a, i);
		snprintf(path, sizeof(path), "hooks[%zu]", i);
		if (!json_object_is_type(h, json_type_object))
			return fail(r, "field %s is not an object", path);
		if (!get_str(r, h, path, "probe", probe, sizeof(probe)) ||
		    !get_str(r, h, path, "mode", mode, sizeof(mode)) ||
		    !(v = need(r, h, path, "attached", json_type_boolean)))
			return false;
		if (off < sizeof(r->hooks))
			off += snprintf(r->hooks + off, sizeof(r->hooks) - off,
					"%s%s=%s", off ? " " : "", probe,
					json_object_get_boolean(v) ? mode : "none");
	}
	return true;
}

static bool get_doc(struct rec *r, json_object *d)
{
	json_object *o, *h, *dur, *vms;
	char schema[64];
	__u64 ver;
	int i;

	if (!json_object_is_type(d, json_type_object))
		return fail(r, "not a record (the document is not a JSON object)");
	if (!get_str(r, d, "", "schema", schema, sizeof(schema)))
		return false;
	if (strcmp(schema, RECORD_SCHEMA))
		return fail(r, "not a record (schema \"%s\", want \"%s\")",
			    schema, RECORD_SCHEMA);
	if (!get_u64(r, d, "", "schema_version", &ver))
		return false;
	if (ver != RECORD_SCHEMA_VERSION)
		return fail(r, "schema version %llu, this compare reads version %d: use the agent that wrote it",
			    (unsigned long long)ver, RECORD_SCHEMA_VERSION);
	if (!(o = need(r, d, "", "agent", json_type_object)) ||
	    !get_str(r, o, "agent", "version", r->version, sizeof(r->version)) ||
	    !(o = need(r, d, "", "kernel", json_type_object)) ||
	    !get_str(r, o, "kernel", "release", r->release, sizeof(r->release)) ||
	    !get_str(r, o, "kernel", "variant", r->variant, sizeof(r->variant)) ||
	    !(o = need(r, d, "", "time", json_type_object)) ||
	    !(dur = need(r, o, "time", "duration_seconds", json_type_double)))
		return false;
	r->duration = json_object_get_double(dur);
	if (!get_hooks(r, d))
		return false;
	if (!(o = need(r, d, "", "self", json_type_object)) ||
	    !get_u64(r, o, "self", "ringbuf_dropped", &r->self.ringbuf_dropped) ||
	    !get_u64(r, o, "self", "task_state_full", &r->self.task_state_full) ||
	    !get_u64(r, o, "self", "stack_overflow", &r->self.stack_overflow) ||
	    !get_u64(r, o, "self", "orphan_exits", &r->self.orphan_exits))
		return false;
	if (!(h = need(r, d, "", "hists", json_type_object)) ||
	    !get_named(r, h, "hists", "pvec_depth_sum", record_ctx_names,
		       CTX_MAX, r->h.pvec_depth_sum) ||
	    !(o = need(r, h, "hists", "pvec_depth", json_type_object)) ||
	    !get_array(r, o, "hists.pvec_depth", "sync", PVEC_BUCKETS,
		       r->h.pvec_depth[CTX_SYNC]) ||
	    !get_array(r, o, "hists.pvec_depth", "zap", PVEC_BUCKETS,
		       r->h.pvec_depth[CTX_ZAP]) ||
	    !(o = need(r, h, "hists", "sync_duration_ns", json_type_object)) ||
	    !get_array(r, o, "hists.sync_duration_ns", "slots", DURATION_SLOTS,
		       r->h.sync_duration) ||
	    !get_u64(r, o, "hists.sync_duration_ns", "sum_ns",
		     &r->h.sync_duration_sum_ns))
		return false;
	if (!(vms = need(r, d, "", "vms", json_type_array)))
		return false;
	r->nr_vms = json_object_array_length(vms);
	r->vms = calloc(r->nr_vms ? r->nr_vms : 1, sizeof(*r->vms));
	if (!r->vms)
		return fail(r, "out of memory");
	for (i = 0; i < r->nr_vms; i++)
		if (!get_vm(r, json_object_array_get_idx(vms, i), i,
			    &r->vms[i]))
			return false;
	return true;
}

/* Parse and check one file; false with r->err set. */
static bool load(struct rec *r, const char *path)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	json_object *doc = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f, *m;
	bool ok;

	r->path = path;
	f = fopen(path, "re");
	if (!f)
		return fail(r, "cannot open: %s", strerror(errno));
	m = open_memstream(&text, &len);
	if (m) {
		char buf[65536];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, m);
		fclose(m);
	}
	ok = !ferror(f);
	fclose(f);
	if (!m || !ok) {
		free(text);
		return fail(r, "cannot read: %s", strerror(errno));
	}
	if (!len) {
		free(text);
		return fail(r, "empty file: not a record");
	}
	tok = json_tokener_new();
	if (!tok) {
		free(text);
		return fail(r, "out of memory");
	}
	doc = json_tokener_parse_ex(tok, text, len);
	jerr = json_tokener_get_error(tok);
	if (!doc && jerr == json_tokener_continue)
		fail(r, "truncated: the JSON ends after %zu bytes, before the document does", len);
	else if (!doc)
		fail(r, "not JSON: %s at byte %zu", json_tokener_error_desc(jerr),
		     json_tokener_get_parse_end(tok));
	else if (json_tokener_get_parse_end(tok) < len &&
		 strspn(text + json_tokener_get_parse_end(tok), " \t\r\n") !=
		 len - json_tokener_get_parse_end(tok))
		fail(r, "not JSON: text after the document at byte %zu",
		     json_tokener_get_parse_end(tok));
	else
		get_doc(r, doc);
	json_object_put(doc);
	json_tokener_free(tok);
	free(text);
	return !r->err[0];
}

/* ---- the report ---- */

#define MAX_FIGS	48

struct fig {
	char label[48];
	__u64 val;
	bool rate;	/* a count: also shown per sync and per page */
};

static int add(struct fig *f, int n, bool rate, __u64 val, const char *fmt,
	       ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f[n].label, sizeof(f[n].label), fmt, ap);
	va_end(ap);
	f[n].val = val;
	f[n].rate = rate;
	return n + 1;
}

/* The figures of one VM (or a total), in the order of make compare. */
static int figures(const struct cvm *v, bool kvm, struct fig *f)
{
	const struct vm_stats *s = &v->st;
	int n = 0, c, i;

	for (i = 0; i < SYNC_RESULT_MAX; i++)
		n = add(f, n, true, s->sync_calls[i], "sync calls %s",
			record_sync_names[i]);
	for (c = 0; c < CTX_MAX; c++) {
		const char *x = record_ctx_names[c];

		n = add(f, n, true, s->walks[c][WALK_DONE], "%s walks done", x);
		n = add(f, n, true, s->walks[c][WALK_ENOSPC], "%s walks enospc", x);
		n = add(f, n, true, s->frames[c], "%s frames", x);
		n = add(f, n, true, s->leaves[c], "%s leaves", x);
		n = add(f, n, true, s->clears[c][SITE_WALK], "%s clears in walk", x);
		n = add(f, n, true, s->clears[c][SITE_CLEAR_PARENTS],
			"%s clears in clear_parents", x);
	}
	n = add(f, n, true, s->restarts, "restarts");
	n = add(f, n, true, s->pages_unsynced, "pages unsynced");
	n = add(f, n, true, s->pages_synced, "pages synced");
	if (!kvm)
		return n;
	n = add(f, n, false, v->kvm_vms, "kvm: VMs");
	for (i = 0; i < KVM_STAT_NR; i++)
		n = add(f, n, !kvm_stat_descs[i].gauge, v->kvm[i], "kvm: %s%s",
			kvm_stat_descs[i].name,
			kvm_stat_descs[i].gauge ? " (at end)" : "");
	return n;
}

static __u64 syncs(const struct cvm *v)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < SYNC_RESULT_MAX; i++)
		n += v->st.sync_calls[i];
	return n;
}

static void fmt_ratio(char *buf, size_t len, double a, double b)
{
	if (a == 0)
		snprintf(buf, len, "%s", b == 0 ? "=" : "-");
	else
		snprintf(buf, len, "%.2f", b / a);
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
	char sa[24] = "-", sb[24] = "-", sd[24] = "-", sr[16] = "-";

	if (a)
		snprintf(sa, sizeof(sa), "%llu", (unsigned long long)*a);
	if (b)
		snprintf(sb, sizeof(sb), "%llu", (unsigned long long)*b);
	if (a && b) {
		snprintf(sd, sizeof(sd), "%+lld", (long long)(*b - *a));
		fmt_ratio(sr, sizeof(sr), *a, *b);
	}
	fprintf(o, "| %-34s | %12s | %12s | %12s | %7s |\n", label, sa, sb,
		sd, sr);
}

/* a, b: values or NULL (absent, or nothing to divide by) */
static void row_real(FILE *o, const char *label, const double *a,
		     const double *b)
{
	char sa[24] = "-", sb[24] = "-", sd[24] = "-", sr[16] = "-";

	if (a)
		snprintf(sa, sizeof(sa), "%.2f", *a);
	if (b)
		snprintf(sb, sizeof(sb), "%.2f", *b);
	if (a && b) {
		snprintf(sd, sizeof(sd), "%+.2f", *b - *a);
		fmt_ratio(sr, sizeof(sr), *a, *b);
	}
	fprintf(o, "| %-34s | %12s | %12s | %12s | %7s |\n", label, sa, sb,
		sd, sr);
}

/* a or b may be NULL: the VM is in one record only. */
static void vm_tables(FILE *o, const char *title, const struct cvm *a,
		      const struct cvm *b)
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

/* Sum the VMs of r named name (every VM when name is NULL). */
static bool sum_vms(const struct rec *r, const char *name, struct cvm *out)
{
	__u64 *d, *s;
	bool found = false;
	size_t j;
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < r->nr_vms; i++) {
		const struct cvm *v = &r->vms[i];

		if (name && strcmp(v->name, name))
			continue;
		found = true;
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
	return found;
}

static void global_tables(FILE *o, const struct rec *a, const struct rec *b)
{
	const struct rec *r[2] = { a, b };
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
				 record_ctx_names[c], nr);
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
			 record_ctx_names[c]);
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
	row_real(o, "run duration (s)", &a->duration, &b->duration);
}

static void report(FILE *o, const struct rec *a, const struct rec *b)
{
	struct cvm va, vb;
	int i;

	fprintf(o, "# %s vs %s\n\n", a->path, b->path);
	fprintf(o, "A: %s, kernel %s (%s), agent %s, %.1f s\n", a->path,
		a->release, a->variant, a->version, a->duration);
	fprintf(o, "B: %s, kernel %s (%s), agent %s, %.1f s\n", b->path,
		b->release, b->variant, b->version, b->duration);
	fprintf(o, "A hooks: %s\nB hooks: %s\n", a->hooks, b->hooks);
	/* A's VMs in A's order, then B's that A lacks; each name once */
	for (i = 0; i < a->nr_vms + b->nr_vms; i++) {
		const struct rec *r = i < a->nr_vms ? a : b;
		const char *name = r->vms[i < a->nr_vms ? i : i - a->nr_vms].name;
		const struct cvm *seen = r->vms;
		bool dup = false, ha, hb;
		char title[VM_NAME_MAX + 8];
		int j, end = i < a->nr_vms ? i : i - a->nr_vms;

		for (j = 0; j < end; j++)
			dup |= !strcmp(seen[j].name, name);
		if (dup || (r == b && sum_vms(a, name, &va)))
			continue;
		ha = sum_vms(a, name, &va);
		hb = sum_vms(b, name, &vb);
		snprintf(title, sizeof(title), "vm %s", name);
		vm_tables(o, title, ha ? &va : NULL, hb ? &vb : NULL);
	}
	sum_vms(a, NULL, &va);
	sum_vms(b, NULL, &vb);
	vm_tables(o, "all VMs", &va, &vb);
	global_tables(o, a, b);
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
	fclose(f);
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

static int plots(const char *dir, const struct rec *a, const struct rec *b,
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

int compare_files(const char *a, const char *b, const char *plot_dir,
		  FILE *out, FILE *err)
{
	struct rec ra = { 0 }, rb = { 0 };
	int ret = 0;

	if (!load(&ra, a)) {
		fprintf(err, "kvm-unsync-exporter compare: %s: %s\n", a, ra.err);
		ret = 2;
	} else if (!load(&rb, b)) {
		fprintf(err, "kvm-unsync-exporter compare: %s: %s\n", b, rb.err);
		ret = 2;
	} else {
		report(out, &ra, &rb);
		if (plot_dir)
			ret = plots(plot_dir, &ra, &rb, err);
	}
	free(ra.vms);
	free(rb.vms);
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
	return compare_files(files[0], files[1], plot, stdout, stderr);
}
