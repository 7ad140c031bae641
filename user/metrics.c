// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Render the families of families.h as Prometheus text: one function per
 * value source, the table says which family uses which.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "metrics.h"

/* What one page is rendered from. */
struct page_input {
	const struct snapshot *s;	/* NULL: the maps could not be read */
	const struct vm_series *series;
	size_t nr_series;
	const struct agent_info *info;
	struct agent_counters agent;
};

/*
 * Labels of one series: vm, pid and guest, then up to two of the family's
 * dims.  With pre, the first nr are rendered there once (series_prefix())
 * for the many samples of one VM.
 */
struct series_labels {
	struct prom_label l[5];
	int nr;
	char pid[16];
	struct strbuf *pre;
};

/*
 * Every value of the __u64 array at vals, one sample each: the labels in
 * v (the first v->nr of them) then one per dim of f.
 */
static void render_dims(struct strbuf *b, const struct family *f,
			struct series_labels *v, const __u64 *vals,
			unsigned int skip1)
{
	int n0 = family_dim_nr(&f->dims[0]), n1 = family_dim_nr(&f->dims[1]);
	int nr = v->nr, i, j;
	__u64 val;

	for (i = 0; i < n0; i++) {
		if (f->dims[0].label)
			v->l[nr] = (struct prom_label){ f->dims[0].label,
							f->dims[0].values[i] };
		for (j = 0; j < n1; j++) {
			if (f->dims[1].label)
				v->l[nr + 1] = (struct prom_label){
					f->dims[1].label, f->dims[1].values[j] };
			if (skip1 & (1u << j))
				continue;
			memcpy(&val, &vals[i * n1 + j], sizeof(val));
			if ((f->flags & FAMILY_OMIT_ZERO_LAST) && i == n0 - 1 &&
			    !val)
				continue;
			if (v->pre)
				prom_sample_u64_pre(b, f->name, v->pre,
						    v->l + nr,
						    !!f->dims[0].label +
						    !!f->dims[1].label, val);
			else
				prom_sample_u64(b, f->name, NULL, v->l,
						nr + !!f->dims[0].label +
						!!f->dims[1].label, val);
		}
	}
}

/* The values of dims[1] a family leaves out: bit j for value j. */
static unsigned int skipped_values(const struct family *f,
				   const struct agent_info *info)
{
	unsigned int skip = 0;
	int j;

	if (!(f->flags & FAMILY_SITE_SOURCES) || !info)
		return 0;
	for (j = 0; j < SITE_MAX; j++)
		if (info->clears_source[j] &&
		    !strcmp(info->clears_source[j], "missing"))
			skip |= 1u << j;
	return skip;
}

/* The vm and pid labels of one VM's series; pid 0 is "other" (pid=""). */
static void vm_labels(struct series_labels *v, const char *name, __u32 pid)
{
	if (pid)
		snprintf(v->pid, sizeof(v->pid), "%u", pid);
	else
		v->pid[0] = '\0';	/* "other": the folded VMs */
	v->l[0] = (struct prom_label){ "vm", name ? name : "unknown" };
	v->l[1] = (struct prom_label){ "pid", v->pid };
	v->nr = 2;
}

/* Render the labels set so far into v->pre, once for the series' samples. */
static void series_prefix(struct series_labels *v)
{
	prom_labels_prefix(v->pre, v->l, v->nr);
}

/*
 * A per-VM counter: one series per VM, guest level and value of its dims.
 * guest="l2" only once the VM has any count of that level: on a host
 * without nested guests the page has no series more than one level's.
 * Counters never go down (nor does "other"), so a level never vanishes.
 */
static void render_vm(struct strbuf *b, const struct family *f,
		      const struct page_input *in)
{
	unsigned int skip = skipped_values(f, in->info);
	const struct vm_series *vs;
	const struct vm_stats *st;
	struct series_labels v;
	struct strbuf pre;
	size_t i;
	int g;

	sb_init(&pre);
	for (i = 0; in->s && i < in->nr_series; i++) {
		vs = &in->series[i];
		vm_labels(&v, vs->name, vs->pid);
		v.nr = 3;
		v.pre = &pre;
		for (g = 0; g < GUEST_MAX; g++) {
			st = &vs->stats->guest[g];
			if (g != GUEST_L1 && vm_stats_zero(st))
				continue;
			v.l[2] = (struct prom_label){ "guest",
						      family_guest_names[g] };
			series_prefix(&v);
			render_dims(b, f, &v, (const __u64 *)
				    ((const char *)st + f->off), skip);
		}
	}
	sb_free(&pre);
}

/* Counters of a struct at base (NULL: unknown, no sample). */
static void render_fields(struct strbuf *b, const struct family *f,
			  const void *base)
{
	struct series_labels v = { .nr = 0, .pre = NULL };

	if (base)
		render_dims(b, f, &v,
			    (const __u64 *)((const char *)base + f->off), 0);
}

static void render_pvec_depth(struct strbuf *b, const struct family *f,
			      const struct snapshot *s)
{
	struct prom_label l[2];
	char le[16];
	__u64 cum;
	int c, i;

	if (!s)
		return;
	for (c = 0; c < CTX_MAX; c++) {
		l[0] = (struct prom_label){ "context", family_ctx_names[c] };
		l[1] = (struct prom_label){ "le", le };
		cum = 0;
		for (i = 0; i < PVEC_BUCKETS; i++) {
			cum += s->hists.pvec_depth[c][i];
			snprintf(le, sizeof(le), "%d", i);
			prom_sample_u64(b, f->name, "_bucket", l, 2, cum);
		}
		snprintf(le, sizeof(le), "+Inf");
		prom_sample_u64(b, f->name, "_bucket", l, 2, cum);
		prom_sample_u64(b, f->name, "_sum", l, 1,
				s->hists.pvec_depth_sum[c]);
		prom_sample_u64(b, f->name, "_count", l, 1, cum);
	}
}

/*
 * Slot k < DURATION_SLOTS - 1 holds durations below
 * duration_slot_bound_ns(k) (bpf/unsync.h), its bucket's le.  Prometheus
 * reads le as "<=": a duration of exactly 2^k ns is counted in the next
 * bucket up, a one-nanosecond approximation at bucket edges that no
 * quantile estimate can see.  The last slot is the clamp for everything
 * longer: it has no finite bound and only counts toward +Inf.
 */
static void render_sync_duration(struct strbuf *b, const struct family *f,
				 const struct snapshot *s)
{
	struct prom_label l = { "le", NULL };
	char le[32], sum[32];
	__u64 cum = 0;
	int k;

	if (!s)
		return;
	l.value = le;
	for (k = 0; k < DURATION_SLOTS - 1; k++) {
		cum += s->hists.sync_duration[k];
		prom_fmt_ns_as_seconds(le, sizeof(le),
				       duration_slot_bound_ns(k));
		prom_sample_u64(b, f->name, "_bucket", &l, 1, cum);
	}
	cum += s->hists.sync_duration[DURATION_SLOTS - 1];
	prom_sample_u64(b, f->name, "_bucket",
			&(struct prom_label){ "le", "+Inf" }, 1, cum);
	prom_fmt_ns_as_seconds(sum, sizeof(sum), s->hists.sync_duration_sum_ns);
	prom_sample_str(b, f->name, "_sum", NULL, 0, sum);
	prom_sample_u64(b, f->name, "_count", NULL, 0, cum);
}

static bool same_str(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* One duplicate series makes Prometheus reject the whole scrape. */
static bool probe_seen(const struct agent_info *info, int i)
{
	const struct probe_status *p = &info->probes[i];
	int j;

	for (j = 0; j < i; j++)
		if (same_str(info->probes[j].probe, p->probe) &&
		    same_str(info->probes[j].mode, p->mode))
			return true;
	return false;
}

static void render_probes(struct strbuf *b, const struct family *f,
			  const struct agent_info *info)
{
	const struct probe_status *p;
	struct prom_label l[2];
	int i;

	for (i = 0; info && i < info->nr_probes && i < MAX_PROBES; i++) {
		if (probe_seen(info, i))
			continue;
		p = &info->probes[i];
		l[0] = (struct prom_label){ "probe", p->probe };
		l[1] = (struct prom_label){ "mode", p->mode };
		prom_sample_u64(b, f->name, NULL, l, 2, p->attached ? 1 : 0);
	}
}

static void render_build_info(struct strbuf *b, const struct family *f,
			      const struct agent_info *info)
{
	struct prom_label l = { "version", NULL };

	if (!info)
		return;
	l.value = info->version;
	prom_sample_u64(b, f->name, NULL, &l, 1, 1);
}

static void render_kernel_info(struct strbuf *b, const struct family *f,
			       const struct agent_info *info)
{
	char release[sizeof(info->kernel_release) + 1];
	struct prom_label l[2];

	if (!info)
		return;
	/* the array may be full, with no NUL */
	memcpy(release, info->kernel_release, sizeof(release) - 1);
	release[sizeof(release) - 1] = '\0';
	l[0] = (struct prom_label){ "release", release };
	l[1] = (struct prom_label){ "variant", info->variant };
	prom_sample_u64(b, f->name, NULL, l, 2, 1);
}

static void render_clears_source(struct strbuf *b, const struct family *f,
				 const struct agent_info *info)
{
	struct prom_label l[2];
	int j;

	for (j = 0; info && j < SITE_MAX; j++) {
		if (!info->clears_source[j])
			continue;
		l[0] = (struct prom_label){ "site", family_site_names[j] };
		l[1] = (struct prom_label){ "source", info->clears_source[j] };
		prom_sample_u64(b, f->name, NULL, l, 2, 1);
	}
}

static void render_vms(struct strbuf *b, const struct family *f,
		       const struct page_input *in)
{
	/* every tgid in the map, the folded ones included */
	if (in->s)
		prom_sample_u64(b, f->name, NULL, NULL, 0, in->s->nr_vms);
}

/* info lists probe and no listing of it is attached (see probe_seen()). */
static bool probe_missing(const struct agent_info *info, const char *probe)
{
	bool listed = false;
	int i;

	for (i = 0; info && i < info->nr_probes && i < MAX_PROBES; i++) {
		if (!same_str(info->probes[i].probe, probe))
			continue;
		if (info->probes[i].attached)
			return false;
		listed = true;
	}
	return listed;
}

/*
 * A family whose counts need a probe that is not attached has no samples:
 * its zeroes would read as "nothing happened" when nothing was counted.
 * kvm_unsync_probe_attached says which probe, and why in the log.  A
 * probe info does not list is not known to be missing (the agent lists
 * every probe, attached or not: hooks_report()).
 */
static bool family_counted(const struct family *f,
			   const struct agent_info *info)
{
	int k;

	for (k = 0; k < FAMILY_MAX_NEEDS && f->needs[k]; k++)
		if (probe_missing(info, f->needs[k]))
			return false;
	return true;
}

/*
 * One family: HELP and TYPE, then its samples from where the table says.
 * HELP and TYPE stay when there are none, as when the maps cannot be read:
 * the text format allows a family with no samples (promtool checks it),
 * and the page lists the same families whatever attached.
 */
static void render_family(struct strbuf *b, const struct family *f,
			  const struct page_input *in)
{
	prom_family(b, f->name, f->type, f->help);
	if (!family_counted(f, in->info))
		return;
	switch (f->src) {
	case FROM_VM:
		render_vm(b, f, in);
		break;
	case FROM_PVEC_HIST:
		render_pvec_depth(b, f, in->s);
		break;
	case FROM_DURATION_HIST:
		render_sync_duration(b, f, in->s);
		break;
	case FROM_PROBES:
		render_probes(b, f, in->info);
		break;
	case FROM_SELF:
		render_fields(b, f, in->s ? &in->s->self : NULL);
		break;
	case FROM_AGENT:
		render_fields(b, f, &in->agent);
		break;
	case FROM_BUILD_INFO:
		render_build_info(b, f, in->info);
		break;
	case FROM_KERNEL_INFO:
		render_kernel_info(b, f, in->info);
		break;
	case FROM_CLEARS_SOURCE:
		render_clears_source(b, f, in->info);
		break;
	case FROM_VMS:
		render_vms(b, f, in);
		break;
	case FROM_HTTP:
	case FROM_KVM:
	case FROM_KVM_READABLE:
		break;	/* metrics_render_http(), metrics_render_kvm() */
	}
}

int metrics_render(struct strbuf *b, const struct snapshot *s,
		   const struct vm_series *series, size_t nr_series,
		   const struct agent_info *info,
		   const struct metrics_extra *x)
{
	struct page_input in = { .s = s, .series = series,
				 .nr_series = nr_series, .info = info };
	size_t i;

	if (x) {
		in.agent.ringbuf_events = x->ringbuf_events;
		in.agent.vms_folded = x->vms_folded;
		in.agent.scrape_errors = x->scrape_errors;
	}
	for (i = 0; i < nr_agent_families; i++)
		render_family(b, &agent_families[i], &in);
	return sb_error(b);
}

void metrics_render_http(struct strbuf *b, const struct conn_guard_stats *st)
{
	size_t i;

	for (i = 0; i < nr_http_families; i++) {
		prom_family(b, http_families[i].name, http_families[i].type,
			    http_families[i].help);
		render_fields(b, &http_families[i], st);
	}
}

void metrics_render_kvm(struct strbuf *b, const struct vm_kvm_series *series,
			size_t nr_series, bool readable)
{
	const struct family *f;
	struct series_labels v;
	struct strbuf pre;
	size_t i, j;

	sb_init(&pre);
	for (i = 0; i < nr_kvm_families; i++) {
		f = &kvm_families[i];
		prom_family(b, f->name, f->type, f->help);
		if (f->src == FROM_KVM_READABLE) {
			prom_sample_u64(b, f->name, NULL, NULL, 0, readable);
			continue;
		}
		for (j = 0; readable && j < nr_series; j++) {
			vm_labels(&v, series[j].name, series[j].pid);
			v.pre = &pre;
			series_prefix(&v);
			render_dims(b, f, &v, (const __u64 *)
				    ((const char *)series[j].kvm + f->off), 0);
		}
	}
	sb_free(&pre);
}
