// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Render a snapshot as Prometheus text, and run one scrape (metrics.h). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

#define M(name)	"kvm_unsync_" name

static const char *const ctx_names[CTX_MAX] = { "sync", "zap" };
static const char *const walk_results[WALK_RESULT_MAX] = { "done", "enospc" };
static const char *const sync_results[SYNC_RESULT_MAX] = {
	"ok", "eintr", "other",
};
static const char *const site_names[SITE_MAX] = { "walk", "clear_parents" };

/* The vm and pid labels of VM i, plus room for two more. */
struct vm_labels {
	struct prom_label l[4];
	char pid[16];
};

static void vm_labels(struct vm_labels *v, const struct snapshot *s,
		      const char *const *names, size_t i)
{
	const char *name = names && names[i] ? names[i] : "unknown";

	if (s->vms[i].tgid)
		snprintf(v->pid, sizeof(v->pid), "%u", s->vms[i].tgid);
	else
		v->pid[0] = '\0';	/* "other": the folded VMs */
	v->l[0] = (struct prom_label){ "vm", name };
	v->l[1] = (struct prom_label){ "pid", v->pid };
}

static size_t nr_vms(const struct snapshot *s)
{
	return s ? s->nr_vms : 0;
}

static void render_sync_calls(struct strbuf *b, const struct snapshot *s,
			      const char *const *names)
{
	const char *n = M("sync_calls_total");
	struct vm_labels v;
	size_t i;
	int r;

	prom_family(b, n, "counter",
		    "mmu_sync_children calls, by result (other: neither 0 "
		    "nor -EINTR, never expected).");
	for (i = 0; i < nr_vms(s); i++) {
		const struct vm_stats *st = &s->vms[i].stats;

		vm_labels(&v, s, names, i);
		for (r = 0; r < SYNC_RESULT_MAX; r++) {
			if (r == SYNC_OTHER && !st->sync_calls[r])
				continue;
			v.l[2] = (struct prom_label){ "result", sync_results[r] };
			prom_sample_u64(b, n, NULL, v.l, 3, st->sync_calls[r]);
		}
	}
}

/*
 * A per-VM counter with a value per walk context and per second label:
 * field_off is a __u64 [CTX_MAX][nr] array in struct vm_stats, whose
 * second index is named label, with values vals.
 */
static void render_per_ctx_by(struct strbuf *b, const struct snapshot *s,
			      const char *const *names, const char *n,
			      const char *help, size_t field_off,
			      const char *label, const char *const *vals,
			      int nr)
{
	struct vm_labels v;
	const __u64 *a;
	size_t i;
	int c, k;

	prom_family(b, n, "counter", help);
	for (i = 0; i < nr_vms(s); i++) {
		vm_labels(&v, s, names, i);
		a = (const __u64 *)((const char *)&s->vms[i].stats + field_off);
		for (c = 0; c < CTX_MAX; c++) {
			v.l[2] = (struct prom_label){ "context", ctx_names[c] };
			for (k = 0; k < nr; k++) {
				v.l[3] = (struct prom_label){ label, vals[k] };
				prom_sample_u64(b, n, NULL, v.l, 4,
						a[c * nr + k]);
			}
		}
	}
}

/* A per-VM counter with one value per walk context. */
static void render_per_ctx(struct strbuf *b, const struct snapshot *s,
			   const char *const *names, const char *n,
			   const char *help, size_t field_off)
{
	struct vm_labels v;
	const __u64 *vals;
	size_t i;
	int c;

	prom_family(b, n, "counter", help);
	for (i = 0; i < nr_vms(s); i++) {
		vm_labels(&v, s, names, i);
		vals = (const __u64 *)((const char *)&s->vms[i].stats +
				       field_off);
		for (c = 0; c < CTX_MAX; c++) {
			v.l[2] = (struct prom_label){ "context", ctx_names[c] };
			prom_sample_u64(b, n, NULL, v.l, 3, vals[c]);
		}
	}
}

/* A per-VM counter with one value. */
static void render_per_vm(struct strbuf *b, const struct snapshot *s,
			  const char *const *names, const char *n,
			  const char *help, size_t field_off)
{
	struct vm_labels v;
	const __u64 *val;
	size_t i;

	prom_family(b, n, "counter", help);
	for (i = 0; i < nr_vms(s); i++) {
		vm_labels(&v, s, names, i);
		val = (const __u64 *)((const char *)&s->vms[i].stats +
				      field_off);
		prom_sample_u64(b, n, NULL, v.l, 2, *val);
	}
}

static void render_vm_families(struct strbuf *b, const struct snapshot *s,
			       const char *const *names)
{
	render_sync_calls(b, s, names);
	render_per_ctx_by(b, s, names, M("walks_total"),
			  "Top-level mmu_unsync_walk calls, by context (sync: "
			  "inside mmu_sync_children, zap: elsewhere) and result "
			  "(enospc: the page vector filled).",
			  offsetof(struct vm_stats, walks), "result",
			  walk_results, WALK_RESULT_MAX);
	render_per_ctx(b, s, names, M("walk_frames_total"),
		       "__mmu_unsync_walk frames, recursion included.",
		       offsetof(struct vm_stats, frames));
	render_per_vm(b, s, names, M("restarts_total"),
		      "Top-level walks inside a sync that returned -ENOSPC, "
		      "so the sync walked again.",
		      offsetof(struct vm_stats, restarts));
	render_per_ctx(b, s, names, M("walk_leaves_total"),
		       "Unsync pages the walks handed to their caller.",
		       offsetof(struct vm_stats, leaves));
	render_per_ctx_by(b, s, names, M("bitmap_clears_total"),
			  "unsync_child_bitmap bits cleared, by context and by "
			  "site (walk: in __mmu_unsync_walk, clear_parents: in "
			  "mmu_pages_clear_parents).",
			  offsetof(struct vm_stats, clears), "site", site_names,
			  SITE_MAX);
	render_per_vm(b, s, names, M("pages_unsynced_total"),
		      "Shadow pages marked unsync (kvmmmu:kvm_mmu_unsync_page).",
		      offsetof(struct vm_stats, pages_unsynced));
	render_per_vm(b, s, names, M("pages_synced_total"),
		      "Shadow pages synced (kvmmmu:kvm_mmu_sync_page).",
		      offsetof(struct vm_stats, pages_synced));
}

static void render_pvec_depth(struct strbuf *b, const struct snapshot *s)
{
	const char *n = M("pvec_depth");
	struct prom_label l[2];
	char le[16];
	__u64 cum;
	int c, i;

	prom_family(b, n, "histogram",
		    "Page vector fill (pvec->nr, 0 to 16) when a top-level "
		    "walk returns.");
	if (!s)
		return;
	for (c = 0; c < CTX_MAX; c++) {
		l[0] = (struct prom_label){ "context", ctx_names[c] };
		l[1] = (struct prom_label){ "le", le };
		cum = 0;
		for (i = 0; i < PVEC_BUCKETS; i++) {
			cum += s->hists.pvec_depth[c][i];
			snprintf(le, sizeof(le), "%d", i);
			prom_sample_u64(b, n, "_bucket", l, 2, cum);
		}
		snprintf(le, sizeof(le), "+Inf");
		prom_sample_u64(b, n, "_bucket", l, 2, cum);
		prom_sample_u64(b, n, "_sum", l, 1, s->hists.pvec_depth_sum[c]);
		prom_sample_u64(b, n, "_count", l, 1, cum);
	}
}

/*
 * Slot k < DURATION_SLOTS - 1 holds durations d < 2^k ns (collect.h), so it
 * becomes the bucket le = 2^k ns.  Prometheus reads le as "<=": a duration
 * of exactly 2^k ns is counted in the next bucket up, a one-nanosecond
 * approximation at bucket edges that no quantile estimate can see.  The
 * last slot is the clamp for everything longer: it has no finite bound
 * and only counts toward +Inf.
 */
static void render_sync_duration(struct strbuf *b, const struct snapshot *s)
{
	const char *n = M("sync_duration_seconds");
	struct prom_label l = { "le", NULL };
	char le[32], sum[32];
	__u64 cum = 0;
	int k;

	prom_family(b, n, "histogram",
		    "mmu_sync_children call duration (log2 buckets; le is "
		    "exclusive to the nanosecond).");
	if (!s)
		return;
	l.value = le;
	for (k = 0; k < DURATION_SLOTS - 1; k++) {
		cum += s->hists.sync_duration[k];
		prom_fmt_ns_as_seconds(le, sizeof(le), 1ULL << k);
		prom_sample_u64(b, n, "_bucket", &l, 1, cum);
	}
	cum += s->hists.sync_duration[DURATION_SLOTS - 1];
	prom_sample_u64(b, n, "_bucket",
			&(struct prom_label){ "le", "+Inf" }, 1, cum);
	prom_fmt_ns_as_seconds(sum, sizeof(sum), s->hists.sync_duration_sum_ns);
	prom_sample_str(b, n, "_sum", NULL, 0, sum);
	prom_sample_u64(b, n, "_count", NULL, 0, cum);
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

static void render_probes(struct strbuf *b, const struct agent_info *info)
{
	const char *n = M("probe_attached");
	const struct probe_status *p;
	struct prom_label l[2];
	int i;

	prom_family(b, n, "gauge",
		    "1 if the probe is attached, 0 if not; mode is how "
		    "(fentry, kprobe, tracepoint, none).");
	for (i = 0; info && i < info->nr_probes && i < MAX_PROBES; i++) {
		if (probe_seen(info, i))
			continue;
		p = &info->probes[i];
		l[0] = (struct prom_label){ "probe", p->probe };
		l[1] = (struct prom_label){ "mode", p->mode };
		prom_sample_u64(b, n, NULL, l, 2, p->attached ? 1 : 0);
	}
}

/* A counter without labels; no sample when the value is unknown. */
static void render_counter(struct strbuf *b, const char *n, const char *help,
			   const __u64 *val)
{
	prom_family(b, n, "counter", help);
	if (val)
		prom_sample_u64(b, n, NULL, NULL, 0, *val);
}

static void render_self(struct strbuf *b, const struct snapshot *s,
			const struct metrics_extra *x)
{
	__u64 events = x ? x->ringbuf_events : 0;

	render_counter(b, M("ringbuf_dropped_total"),
		       "Events lost because the ring buffer was full.",
		       s ? &s->self.ringbuf_dropped : NULL);
	render_counter(b, M("task_state_full_total"),
		       "Walks not traced: no room left for the task's walk "
		       "state.",
		       s ? &s->self.task_state_full : NULL);
	render_counter(b, M("stack_overflow_total"),
		       "Walk frames not traced: recursion deeper than the "
		       "frame stack.",
		       s ? &s->self.stack_overflow : NULL);
	render_counter(b, M("orphan_exits_total"),
		       "Function exits seen without their entry (probe "
		       "attached mid-call).",
		       s ? &s->self.orphan_exits : NULL);
	render_counter(b, M("ringbuf_events_total"),
		       "Ring-buffer events consumed by the daemon.", &events);
}

static void render_info(struct strbuf *b, const struct agent_info *info)
{
	char release[sizeof(info->kernel_release) + 1];
	struct prom_label l[2];

	prom_family(b, M("build_info"), "gauge",
		    "Agent version; the value is always 1.");
	if (info) {
		l[0] = (struct prom_label){ "version", info->version };
		prom_sample_u64(b, M("build_info"), NULL, l, 1, 1);
	}
	prom_family(b, M("kernel_info"), "gauge",
		    "Running kernel release and KVM MMU variant; the value "
		    "is always 1.");
	if (info) {
		/* the array may be full, with no NUL */
		memcpy(release, info->kernel_release, sizeof(release) - 1);
		release[sizeof(release) - 1] = '\0';
		l[0] = (struct prom_label){ "release", release };
		l[1] = (struct prom_label){ "variant", info->variant };
		prom_sample_u64(b, M("kernel_info"), NULL, l, 2, 1);
	}
}

int metrics_render(struct strbuf *b, const struct snapshot *s,
		   const char *const *names, const struct agent_info *info,
		   const struct metrics_extra *x)
{
	__u64 errors = x ? x->scrape_errors : 0;

	render_vm_families(b, s, names);
	render_pvec_depth(b, s);
	render_sync_duration(b, s);
	render_probes(b, info);
	render_self(b, s, x);
	render_info(b, info);
	prom_family(b, M("vms"), "gauge",
		    "VMs tracked: tgids in the vm_stats map.");
	if (x && x->tracked)
		prom_sample_u64(b, M("vms"), NULL, NULL, 0, x->tracked->nr_vms);
	else if (s)
		prom_sample_u64(b, M("vms"), NULL, NULL, 0, s->nr_vms);
	render_counter(b, M("vms_folded_total"),
		       "VMs counted in vm=\"other\" rather than under their "
		       "own labels (--max-vms).",
		       &(const __u64){ x ? x->vms_folded : 0 });
	render_counter(b, M("scrape_errors_total"),
		       "Scrapes in which reading or cleaning up the BPF maps "
		       "failed.", &errors);
	return sb_error(b);
}

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
