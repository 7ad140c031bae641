// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The probe lifecycle (see probes.h): discover -> choose flavours -> open
 * -> configure -> load -> attach -> pin -> connect the scrapes; or wait
 * for KVM and do the same late.  probes_close() undoes whatever was done.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "collect.h"
#include "families.h"
#include "probes.h"
#include "scrape.h"
#include "unsync.skel.h"

#define POLL_MS		100
#define KVM_LOOK_TICKS	10	/* look for KVM every POLL_MS * this */

/*
 * How each site of the bitmap clears is counted: a derived count is not a
 * measured one, and a missing one is not a zero.  --check lists every
 * site on stdout; the start-up log only those not hooked, a missing one
 * as a warning.
 */
static void print_clears_sources(const struct agent_info *info, bool log)
{
	FILE *out = log ? stderr : stdout;
	const char *src, *prefix;
	int i;

	for (i = 0; i < SITE_MAX; i++) {
		src = info->clears_source[i];
		if (!src || (log && !strcmp(src, "hook")))
			continue;
		prefix = !log ? "" : !strcmp(src, "missing") ? "warning: " :
			 "kvm-unsync-exporter: ";
		fprintf(out, "%sbitmap clears, site %s: %s%s%s\n", prefix,
			family_site_names[i], src, info->clears_why[i][0] ? ": " : "",
			info->clears_why[i]);
	}
}

static void print_check(const struct agent_info *info, const char *why)
{
	int i;

	printf("kernel %s, variant %s (%s)\n", info->kernel_release,
	       info->variant, why);
	printf("%-26s %-11s %-9s %s\n", "PROBE", "MODE", "ATTACHED", "REASON");
	for (i = 0; i < info->nr_probes; i++) {
		const struct probe_status *s = &info->probes[i];

		printf("%-26s %-11s %-9s %s\n", s->probe, s->mode,
		       s->attached ? "yes" : "no", s->reason);
	}
	print_clears_sources(info, false);
}

static void warn_missing(const struct probes *p, const struct agent_info *info)
{
	int i;

	for (i = 0; i < info->nr_probes; i++) {
		const struct probe_status *s = &info->probes[i];

		if (!s->attached)
			fprintf(stderr, "warning: %s not attached: %s\n",
				s->probe, s->reason);
	}
	print_clears_sources(info, true);
	if (!hooks_walk_attached(&p->hs))
		fprintf(stderr, "warning: the walk hooks did not attach: serving tracepoint counts only\n");
}

/* discover, choose flavours, open, configure, load, attach: 0 or -1 */
static int load_and_attach(struct probes *p, struct agent_info *info)
{
	const struct probes_config *cfg = p->cfg;
	int e;

	snprintf(info->kernel_release, sizeof(info->kernel_release), "%s",
		 p->kv.release);
	info->variant = detect_variant(&p->kv, p->why, sizeof(p->why));
	if (cfg->verbose)
		fprintf(stderr, "kernel %s: variant %s (%s)\n", p->kv.release,
			info->variant, p->why);

	/* choose flavours: a real attach test per function and flavour */
	hooks_choose(&p->hs, &p->kv, cfg->attach, cfg->clear_parents,
		     info->variant, cfg->verbose);

	/* open and configure */
	p->skel = unsync_bpf__open();
	if (!p->skel) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open BPF object: %s\n",
			strerror(errno));
		return -1;
	}
	p->skel->rodata->trace_frames = cfg->trace_frames;
	p->skel->rodata->trace_syncs = cfg->trace_syncs;
	p->skel->rodata->ringbuf_wake_bytes = cfg->ringbuf_kib * 1024 / 4;
	e = bpf_map__set_max_entries(p->skel->maps.events,
				     cfg->ringbuf_kib * 1024);
	if (!e)
		e = hooks_configure(&p->hs, p->skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot configure BPF object: %s\n",
			strerror(-e));
		return -1;
	}

	/* load */
	e = unsync_bpf__load(p->skel);
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot load BPF programs: %s%s\n",
			strerror(-e), cfg->verbose ? "" : " (run with -v for the verifier log)");
		return -1;
	}

	/* attach */
	hooks_attach(&p->hs, p->skel);
	hooks_report(&p->hs, info);
	return 0;
}

/* pin the maps, open the ring buffer, point src at the maps */
static int pin_and_connect(struct probes *p, struct collect_src *src)
{
	char err[256];
	int e;

	if (pins_add(&p->pins, p->skel->maps.vm_stats, err, sizeof(err)) ||
	    pins_add(&p->pins, p->skel->maps.hists, err, sizeof(err)) ||
	    pins_add(&p->pins, p->skel->maps.self_stats, err, sizeof(err)) ||
	    pins_add(&p->pins, p->skel->maps.vm_names, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	p->pinned = true;
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events),
				 p->cfg->sample, p->cfg->sample_ctx, NULL);
	if (!p->rb) {
		fprintf(stderr, "kvm-unsync-exporter: cannot open ring buffer: %s\n",
			strerror(errno));
		return -1;
	}
	e = collect_src_bpf(src, bpf_map__fd(p->skel->maps.vm_stats),
			    bpf_map__fd(p->skel->maps.hists),
			    bpf_map__fd(p->skel->maps.self_stats));
	if (e) {
		fprintf(stderr, "kvm-unsync-exporter: cannot count CPUs: %s\n",
			strerror(-e));
		return -1;
	}
	map_reader_bpf(&src->vm_names, bpf_map__fd(p->skel->maps.vm_names));
	return 0;
}

/* load_and_attach, say what is missing, pin_and_connect: 0 or -1 */
/*
 * Attached and pinned: the kernel's BTF and kallsyms text (some 14 MB)
 * are not read again until KVM loads anew (attach_late opens them
 * afresh), and loading the programs left as much freed heap behind.  Give
 * both back, or they stay in the agent's RSS for its whole life.
 */
static void release_start_up_memory(struct probes *p)
{
	kernel_view_close(&p->kv);
	malloc_trim(0);
}

static int attach(struct probes *p, struct agent_info *info,
		  struct collect_src *src)
{
	if (load_and_attach(p, info))
		return -1;
	warn_missing(p, info);
	if (pin_and_connect(p, src))
		return -1;
	release_start_up_memory(p);
	return 0;
}

int probes_open(struct probes *p, const struct probes_config *cfg)
{
	char err[256];

	p->cfg = cfg;
	p->info.version = KUE_VERSION;
	if (kernel_view_open(&p->kv, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	if (!p->kv.kvm_present) {
		if (cfg->check) {
			fprintf(stderr, "kvm-unsync-exporter: KVM is not loaded (no struct kvm_mmu_page in kernel BTF): load it first, e.g. modprobe kvm_intel or modprobe kvm_amd\n");
			return -1;
		}
		p->waiting = true;
	}
	if (!cfg->check && pins_open(&p->pins, cfg->pin_dir, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	return 0;
}

int probes_check(struct probes *p)
{
	if (load_and_attach(p, &p->info))
		return 1;
	print_check(&p->info, p->why);
	return hooks_walk_attached(&p->hs) ? 0 : 1;
}

int probes_start(struct probes *p, struct scrape_ctx *sctx)
{
	p->sctx = sctx;
	sctx->info = &p->info;
	if (p->waiting) {
		/* what /metrics says before KVM is loaded: nothing attached */
		snprintf(p->info.kernel_release,
			 sizeof(p->info.kernel_release), "%s", p->kv.release);
		p->info.variant = "unknown";
		hooks_report_waiting(&p->info);
		sctx->waiting = true;
		return 0;
	}
	return attach(p, &p->info, &sctx->src);
}

bool probes_waiting(const struct probes *p)
{
	return p->waiting;
}

int probes_drop_caps(const struct probes *p)
{
	char err[256], keep[256];

	if (p->waiting)
		return 0;
	if (caps_drop_thread(p->cfg->caps_keep, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	if (p->cfg->verbose) {
		caps_format(p->cfg->caps_keep, keep, sizeof(keep));
		fprintf(stderr, "capabilities dropped; kept: %s\n", keep);
	}
	return 0;
}

/*
 * KVM as a module: its BTF shows up in /sys/kernel/btf when it loads;
 * attach only once the module is live (fentry refuses a module still
 * running its init).
 */
static bool kvm_module_live(void)
{
	char state[16] = "";
	FILE *f;

	if (access("/sys/kernel/btf/kvm", R_OK))
		return false;
	f = fopen("/sys/module/kvm/initstate", "r");
	if (!f)
		return false;
	if (!fgets(state, sizeof(state), f))
		state[0] = '\0';
	fclose(f);
	return !strncmp(state, "live", 4);
}

/*
 * KVM was loaded after start-up: discover, load, attach and pin now, then
 * switch the scrapes over under their lock.  0; 1 if KVM is not there
 * after all (keep waiting); -1 on failure (said why).
 */
static int attach_late(struct probes *p)
{
	struct agent_info fresh = { .version = p->info.version };
	struct scrape_ctx *sctx = p->sctx;
	struct collect_src src;
	char err[256];
	int e;

	kernel_view_close(&p->kv);
	if (kernel_view_open(&p->kv, err, sizeof(err))) {
		fprintf(stderr, "kvm-unsync-exporter: %s\n", err);
		return -1;
	}
	if (!p->kv.kvm_present)
		return 1;	/* not yet after all: keep waiting */
	fprintf(stderr, "kvm-unsync-exporter: KVM loaded: attaching\n");
	if (attach(p, &fresh, &src))
		return -1;
	/* no scrape sees the maps before the main thread dropped it all */
	pthread_mutex_lock(sctx->lock);
	p->info = fresh;
	sctx->src = src;
	sctx->waiting = false;
	p->waiting = false;
	e = probes_drop_caps(p);
	pthread_mutex_unlock(sctx->lock);
	if (e)
		return -1;
	fprintf(stderr, "kvm-unsync-exporter: probes attached, maps pinned in %s\n",
		p->cfg->pin_dir);
	return 0;
}

int probes_poll(struct probes *p)
{
	int e;

	if (p->waiting) {
		/* every second: has KVM been loaded? */
		if (p->ticks++ % KVM_LOOK_TICKS == 0 && kvm_module_live()) {
			e = attach_late(p);
			if (e <= 0)
				return e < 0 ? -1 : 1;
		}
		usleep(POLL_MS * 1000);	/* a signal cuts it short */
		return 0;
	}
	/*
	 * The BPF side wakes us only when the ring fills up (see
	 * ringbuf_wake_bytes): a poll that times out still reads what is
	 * there.
	 */
	e = ring_buffer__poll(p->rb, POLL_MS);
	if (e == 0)
		e = ring_buffer__consume(p->rb);
	if (e < 0 && e != -EINTR) {
		fprintf(stderr, "kvm-unsync-exporter: ring buffer poll: %s\n",
			strerror(-e));
		return -1;
	}
	return 0;
}

void probes_drain(struct probes *p)
{
	if (p->rb)
		ring_buffer__consume(p->rb);
}

void probes_close(struct probes *p)
{
	ring_buffer__free(p->rb);
	hooks_detach(&p->hs);
	if (p->pinned || p->pins.lock_fd >= 0)
		pins_close(&p->pins, p->cfg->keep_pins);
	unsync_bpf__destroy(p->skel);
	kernel_view_close(&p->kv);
}
