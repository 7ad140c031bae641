// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "discover.h"
#include "hooks.h"
#include "probe.skel.h"
#include "unsync.skel.h"

/*
 * Every probe the agent attaches, in the order kvm_unsync_probe_attached
 * lists them: the function hooks (fentry or kprobe, enum hook_id), then
 * the kvmmmu tracepoints.
 */
enum { PROBE_TP_SYNC = NR_HOOKS, PROBE_TP_UNSYNC, NR_PROBES };

static const struct {
	const char *func;
	bool walk;		/* the walk itself: --check needs it */
} probe_defs[NR_PROBES] = {
	[HOOK_SYNC_CHILDREN] = { PROBE_SYNC_CHILDREN, true },
	[HOOK_UNSYNC_WALK] = { PROBE_UNSYNC_WALK, true },
	[HOOK_CLEAR_PARENTS] = { PROBE_CLEAR_PARENTS, false },
	[PROBE_TP_SYNC] = { PROBE_TP_SYNC_PAGE, false },
	[PROBE_TP_UNSYNC] = { PROBE_TP_UNSYNC_PAGE, false },
};

/* The index of s in words[n] (a flag's values, in enum order), or -EINVAL. */
static int parse_word(const char *s, const char *const *words, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, words[i]))
			return i;
	return -EINVAL;
}

int parse_attach_mode(const char *s, enum attach_mode *m)
{
	static const char *const words[] = {
		[ATTACH_AUTO] = "auto",
		[ATTACH_FENTRY] = "fentry",
		[ATTACH_KPROBE] = "kprobe",
	};
	int i = parse_word(s, words, sizeof(words) / sizeof(words[0]));

	if (i < 0)
		return i;
	*m = i;
	return 0;
}

int parse_clear_parents_mode(const char *s, enum clear_parents_mode *m)
{
	static const char *const words[] = {
		[CP_AUTO] = "auto",
		[CP_HOOK] = "hook",
		[CP_DERIVE] = "derive",
	};
	int i = parse_word(s, words, sizeof(words) / sizeof(words[0]));

	if (i < 0)
		return i;
	*m = i;
	return 0;
}

const char *clears_source_name(enum clears_source s)
{
	static const char *const names[] = {
		[SRC_HOOK] = "hook",
		[SRC_DERIVED] = "derived",
		[SRC_ABSENT] = "absent",
		[SRC_MISSING] = "missing",
	};

	return names[s];
}

const char *flavour_name(enum flavour f)
{
	switch (f) {
	case FL_FENTRY:
		return "fentry";
	case FL_KPROBE:
		return "kprobe";
	default:
		return "none";
	}
}

/* libbpf's errno for a kprobe on a kernel without kprobes is ENOENT. */
static const char *attach_error(enum flavour f, int err)
{
	if (f == FL_KPROBE && err == ENOENT &&
	    access("/sys/bus/event_source/devices/kprobe", F_OK) != 0)
		return "kernel has no kprobes (CONFIG_KPROBES off?)";
	return strerror(err);
}

/*
 * A real attach of a do-nothing program is the only honest test: BTF may
 * list a function that ftrace cannot patch, and a kprobe program loads
 * fine on a kernel without CONFIG_KPROBES but never attaches.
 */
static int try_flavour(enum flavour f, const char *func, char *why,
		       size_t whylen)
{
	struct probe_bpf *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	int err;

	obj = probe_bpf__open();
	if (!obj) {
		snprintf(why, whylen, "cannot open probe object: %s",
			 strerror(errno));
		return -errno;
	}
	if (f == FL_FENTRY) {
		prog = obj->progs.probe_fentry;
		bpf_program__set_autoload(obj->progs.probe_kprobe, false);
		err = bpf_program__set_attach_target(prog, 0, func);
		if (err) {
			snprintf(why, whylen, "no BTF target: %s",
				 strerror(-err));
			goto out;
		}
	} else {
		prog = obj->progs.probe_kprobe;
		bpf_program__set_autoload(obj->progs.probe_fentry, false);
	}
	err = probe_bpf__load(obj);
	if (err) {
		snprintf(why, whylen, "load failed: %s", strerror(-err));
		goto out;
	}
	if (f == FL_FENTRY)
		link = bpf_program__attach(prog);
	else
		link = bpf_program__attach_kprobe(prog, false, func);
	if (!link) {
		err = -errno;
		snprintf(why, whylen, "attach failed: %s", attach_error(f, -err));
		goto out;
	}
	bpf_link__destroy(link);
	err = 0;
out:
	probe_bpf__destroy(obj);
	return err;
}

static void choose_one(struct hook *h, const struct kernel_view *kv,
		       enum attach_mode mode)
{
	char fwhy[160] = "not allowed by --attach=kprobe";
	char kwhy[200] = "not allowed by --attach=fentry";
	struct func_info fi;

	func_lookup(kv, h->func, &fi);
	if (mode != ATTACH_KPROBE) {
		if (!fi.in_btf)
			snprintf(fwhy, sizeof(fwhy), "not in kernel BTF");
		else if (try_flavour(FL_FENTRY, h->func, fwhy, sizeof(fwhy)) == 0)
			goto fentry;
	}
	if (mode != ATTACH_FENTRY) {
		if (fi.in_kallsyms) {
			/*
			 * Forced: load the real programs even if the test
			 * attach would fail, so the verifier still judges
			 * them and the attach error is the real one.
			 */
			if (mode == ATTACH_KPROBE ||
			    try_flavour(FL_KPROBE, h->func, kwhy, sizeof(kwhy)) == 0)
				goto kprobe;
		} else if (fi.clone[0]) {
			snprintf(kwhy, sizeof(kwhy),
				 "only the clone %s exists: its arguments may be rewritten",
				 fi.clone);
		} else {
			snprintf(kwhy, sizeof(kwhy),
				 "not in kallsyms (inlined or absent)");
		}
	}
	h->flavour = FL_NONE;
	snprintf(h->why, sizeof(h->why), "fentry: %s; kprobe: %s", fwhy, kwhy);
	return;
fentry:
	h->flavour = FL_FENTRY;
	return;
kprobe:
	h->flavour = FL_KPROBE;
}

/*
 * The clear_parents site.  On a stock kernel its clears are derived from
 * the page vector by the walk's exit (derive_clear_parents_clears() in
 * bpf/unsync.bpf.c): exact there, and cheaper than two programs per
 * synced page; that needs the walk hook.  --clear-parents=hook hooks
 * mmu_pages_clear_parents() instead, as does a kernel of another variant
 * that still has it.  On the patched kernel the site does not exist.
 * Anything else cannot be counted, and says so.
 */
static void choose_clear_parents(struct hook_set *hs,
				 enum clear_parents_mode cp,
				 const char *variant)
{
	const struct hook *h = &hs->hooks[HOOK_CLEAR_PARENTS];
	const struct hook *walk = &hs->hooks[HOOK_UNSYNC_WALK];

	if (!strcmp(variant, "patched")) {
		hs->cp_source = SRC_ABSENT;
		snprintf(hs->cp_why, sizeof(hs->cp_why),
			 "the patched walk has no mmu_pages_clear_parents(): it clears every bit itself (site=\"walk\")");
	} else if (h->flavour != FL_NONE) {
		hs->cp_source = SRC_HOOK;
		hs->cp_why[0] = '\0';
	} else if (cp == CP_HOOK) {
		hs->cp_source = SRC_MISSING;
		snprintf(hs->cp_why, sizeof(hs->cp_why),
			 "--clear-parents=hook and mmu_pages_clear_parents() cannot be hooked: %s",
			 h->why);
	} else if (strcmp(variant, "stock")) {
		hs->cp_source = SRC_MISSING;
		snprintf(hs->cp_why, sizeof(hs->cp_why),
			 "mmu_pages_clear_parents() cannot be hooked and the kernel variant is %s: not derivable",
			 variant);
	} else if (walk->flavour == FL_NONE) {
		hs->cp_source = SRC_MISSING;
		snprintf(hs->cp_why, sizeof(hs->cp_why),
			 "mmu_pages_clear_parents() cannot be hooked, and deriving its clears needs __mmu_unsync_walk, which cannot either");
	} else {
		hs->cp_source = SRC_DERIVED;
		snprintf(hs->cp_why, sizeof(hs->cp_why),
			 "counted from the page vector at each walk's exit: mmu_pages_clear_parents() %s",
			 hs->cp_hookable ? "not hooked (a stock kernel: derived unless --clear-parents=hook)" :
			 "cannot be hooked (inlined)");
	}
}

/*
 * The tracepoints as BTF tracepoints where the kernel's BTF describes
 * them (the typedef btf_trace_<name> that tp_btf attaches through), else
 * as raw tracepoints.
 */
static bool tp_btf_usable(const struct kernel_view *kv)
{
	static const char *const names[] = {
		"btf_trace_" PROBE_TP_SYNC_PAGE, "btf_trace_" PROBE_TP_UNSYNC_PAGE,
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!(kv->vmlinux && btf__find_by_name_kind(kv->vmlinux, names[i], BTF_KIND_TYPEDEF) > 0) &&
		    !(kv->kvm && btf__find_by_name_kind(kv->kvm, names[i], BTF_KIND_TYPEDEF) > 0))
			return false;
	return true;
}

/*
 * mmu_pages_clear_parents(): tried like any hook, so that --check says
 * whether it could be hooked; on a stock kernel, unless
 * --clear-parents=hook, left unhooked (its clears are derived).
 */
static void choose_clear_parents_hook(struct hook_set *hs,
				      const struct kernel_view *kv,
				      enum attach_mode mode,
				      enum clear_parents_mode cp,
				      const char *variant)
{
	struct hook *h = &hs->hooks[HOOK_CLEAR_PARENTS];

	if (cp == CP_DERIVE) {
		h->flavour = FL_NONE;
		snprintf(h->why, sizeof(h->why),
			 "not hooked: --clear-parents=derive");
		hs->cp_hookable = true;
		return;
	}
	choose_one(h, kv, mode);
	hs->cp_hookable = h->flavour != FL_NONE;
	if (cp == CP_AUTO && !strcmp(variant, "stock") && hs->cp_hookable) {
		h->flavour = FL_NONE;
		snprintf(h->why, sizeof(h->why),
			 "not hooked: its clears are derived from the page vector on a stock kernel (--clear-parents=hook to hook it)");
	}
}

void hooks_choose(struct hook_set *hs, const struct kernel_view *kv,
		  enum attach_mode mode, enum clear_parents_mode cp,
		  const char *variant, bool verbose)
{
	int i;

	memset(hs, 0, sizeof(*hs));
	for (i = 0; i < NR_HOOKS; i++) {
		struct hook *h = &hs->hooks[i];

		h->func = probe_defs[i].func;
		h->walk = probe_defs[i].walk;
		if (i == HOOK_CLEAR_PARENTS)
			choose_clear_parents_hook(hs, kv, mode, cp, variant);
		else
			choose_one(h, kv, mode);
		if (verbose)
			fprintf(stderr, "hook %s: %s%s%s\n", h->func,
				flavour_name(h->flavour),
				h->why[0] ? ": " : "", h->why);
	}
	choose_clear_parents(hs, cp, variant);
	hs->tp_btf = tp_btf_usable(kv);
	if (verbose)
		fprintf(stderr, "tracepoints: %s\n",
			hs->tp_btf ? "tp_btf" : "raw_tp");
}

static void progs_of(struct unsync_bpf *skel, enum hook_id id,
		     enum flavour f, struct bpf_program **entry,
		     struct bpf_program **exit)
{
	struct bpf_program *p[NR_HOOKS][2][2] = {
		[HOOK_SYNC_CHILDREN] = {
			{ skel->progs.fentry_sync_children, skel->progs.fexit_sync_children },
			{ skel->progs.kprobe_sync_children, skel->progs.kretprobe_sync_children },
		},
		[HOOK_UNSYNC_WALK] = {
			{ skel->progs.fentry_unsync_walk, skel->progs.fexit_unsync_walk },
			{ skel->progs.kprobe_unsync_walk, skel->progs.kretprobe_unsync_walk },
		},
		[HOOK_CLEAR_PARENTS] = {
			{ skel->progs.fentry_clear_parents, skel->progs.fexit_clear_parents },
			{ skel->progs.kprobe_clear_parents, skel->progs.kretprobe_clear_parents },
		},
	};
	int k = f == FL_FENTRY ? 0 : 1;

	*entry = p[id][k][0];
	*exit = p[id][k][1];
}

int hooks_configure(struct hook_set *hs, struct unsync_bpf *skel)
{
	struct bpf_program *entry, *exit;
	enum flavour f;
	int i, err;

	skel->rodata->derive_clear_parents = hs->cp_source == SRC_DERIVED;
	bpf_program__set_autoload(skel->progs.tpb_sync_page, hs->tp_btf);
	bpf_program__set_autoload(skel->progs.tpb_unsync_page, hs->tp_btf);
	bpf_program__set_autoload(skel->progs.tp_sync_page, !hs->tp_btf);
	bpf_program__set_autoload(skel->progs.tp_unsync_page, !hs->tp_btf);
	for (i = 0; i < NR_HOOKS; i++) {
		struct hook *h = &hs->hooks[i];

		for (f = FL_FENTRY; f <= FL_KPROBE; f++) {
			progs_of(skel, i, f, &entry, &exit);
			bpf_program__set_autoload(entry, h->flavour == f);
			bpf_program__set_autoload(exit, h->flavour == f);
		}
		if (h->flavour != FL_FENTRY)
			continue;
		progs_of(skel, i, FL_FENTRY, &entry, &exit);
		err = bpf_program__set_attach_target(entry, 0, h->func);
		if (!err)
			err = bpf_program__set_attach_target(exit, 0, h->func);
		if (err)
			return err;
	}
	return 0;
}

static struct bpf_link *attach_prog(struct bpf_program *prog, enum flavour f,
				    bool ret, const char *func)
{
	if (f == FL_FENTRY)
		return bpf_program__attach(prog);
	return bpf_program__attach_kprobe(prog, ret, func);
}


/* Attach one half of a hook; an entry without its exit is useless. */
static void attach_half(struct hook *h, struct unsync_bpf *skel,
			enum hook_id id, bool exit_half)
{
	struct bpf_program *entry, *exit;
	struct bpf_link *link;

	if (h->flavour == FL_NONE)
		return;
	progs_of(skel, id, h->flavour, &entry, &exit);
	link = attach_prog(exit_half ? exit : entry, h->flavour, exit_half,
			   h->func);
	if (link) {
		*(exit_half ? &h->exit : &h->entry) = link;
		return;
	}
	snprintf(h->why, sizeof(h->why), "%s %s attach failed: %s",
		 flavour_name(h->flavour), exit_half ? "exit" : "entry",
		 attach_error(h->flavour, errno));
	/* An exit without its entry only makes orphans: drop it. */
	bpf_link__destroy(h->exit);
	h->exit = NULL;
	h->flavour = FL_NONE;
}

/*
 * Exits go first: an exit whose entry was missed is counted as an orphan
 * and changes nothing.  Then mmu_sync_children's entry before the walk's,
 * so that a walk is never seen without the sync it runs in and counted as
 * a zap walk.  (A sync already running when its entry attaches is the one
 * exception, for the instant of start-up.)
 */
void hooks_attach(struct hook_set *hs, struct unsync_bpf *skel)
{
	static const enum hook_id order[] = {
		HOOK_SYNC_CHILDREN, HOOK_CLEAR_PARENTS, HOOK_UNSYNC_WALK,
	};
	const char *kind = hs->tp_btf ? "BTF" : "raw";
	unsigned int i;

	hs->tp_sync = bpf_program__attach(hs->tp_btf ? skel->progs.tpb_sync_page :
					  skel->progs.tp_sync_page);
	if (!hs->tp_sync)
		snprintf(hs->tp_sync_why, sizeof(hs->tp_sync_why),
			 "%s tracepoint attach failed: %s", kind, strerror(errno));
	hs->tp_unsync = bpf_program__attach(hs->tp_btf ? skel->progs.tpb_unsync_page :
					    skel->progs.tp_unsync_page);
	if (!hs->tp_unsync)
		snprintf(hs->tp_unsync_why, sizeof(hs->tp_unsync_why),
			 "%s tracepoint attach failed: %s", kind, strerror(errno));

	for (i = 0; i < NR_HOOKS; i++)
		attach_half(&hs->hooks[i], skel, i, true);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		attach_half(&hs->hooks[order[i]], skel, order[i], false);

	/* What was chosen before load may not have attached. */
	if ((hs->cp_source == SRC_HOOK &&
	     hs->hooks[HOOK_CLEAR_PARENTS].flavour == FL_NONE) ||
	    (hs->cp_source == SRC_DERIVED &&
	     hs->hooks[HOOK_UNSYNC_WALK].flavour == FL_NONE)) {
		const struct hook *h = &hs->hooks[hs->cp_source == SRC_HOOK ?
			HOOK_CLEAR_PARENTS : HOOK_UNSYNC_WALK];

		hs->cp_source = SRC_MISSING;
		snprintf(hs->cp_why, sizeof(hs->cp_why), "%s: %s", h->func,
			 h->why);
	}
}

void hooks_detach(struct hook_set *hs)
{
	int i;

	/* Entries first: the mirror image of hooks_attach(). */
	for (i = NR_HOOKS - 1; i >= 0; i--) {
		bpf_link__destroy(hs->hooks[i].entry);
		hs->hooks[i].entry = NULL;
	}
	for (i = 0; i < NR_HOOKS; i++) {
		bpf_link__destroy(hs->hooks[i].exit);
		hs->hooks[i].exit = NULL;
	}
	bpf_link__destroy(hs->tp_sync);
	bpf_link__destroy(hs->tp_unsync);
	hs->tp_sync = hs->tp_unsync = NULL;
}

bool hooks_walk_attached(const struct hook_set *hs)
{
	int i;

	for (i = 0; i < NR_HOOKS; i++)
		if (hs->hooks[i].walk && hs->hooks[i].flavour == FL_NONE)
			return false;
	return true;
}

void hooks_report(const struct hook_set *hs, struct agent_info *info)
{
	const struct hook *walk;
	struct probe_status *p;
	int i;

	info->nr_probes = 0;
	for (i = 0; i < NR_HOOKS; i++) {
		const struct hook *h = &hs->hooks[i];

		p = &info->probes[info->nr_probes++];
		p->probe = h->func;
		p->mode = flavour_name(h->flavour);
		p->attached = h->flavour != FL_NONE;
		snprintf(p->reason, sizeof(p->reason), "%s", h->why);
	}
	p = &info->probes[info->nr_probes++];
	p->probe = probe_defs[PROBE_TP_SYNC].func;
	p->mode = "tracepoint";
	p->attached = hs->tp_sync != NULL;
	snprintf(p->reason, sizeof(p->reason), "%s", hs->tp_sync ? "" : hs->tp_sync_why);
	p = &info->probes[info->nr_probes++];
	p->probe = probe_defs[PROBE_TP_UNSYNC].func;
	p->mode = "tracepoint";
	p->attached = hs->tp_unsync != NULL;
	snprintf(p->reason, sizeof(p->reason), "%s", hs->tp_unsync ? "" : hs->tp_unsync_why);

	walk = &hs->hooks[HOOK_UNSYNC_WALK];
	info->clears_source[SITE_WALK] = clears_source_name(
		walk->flavour != FL_NONE ? SRC_HOOK : SRC_MISSING);
	snprintf(info->clears_why[SITE_WALK], sizeof(info->clears_why[0]),
		 "%s", walk->flavour != FL_NONE ? "" : walk->why);
	info->clears_source[SITE_CLEAR_PARENTS] = clears_source_name(hs->cp_source);
	snprintf(info->clears_why[SITE_CLEAR_PARENTS],
		 sizeof(info->clears_why[0]), "%s", hs->cp_why);
}

void hooks_report_waiting(struct agent_info *info)
{
	struct probe_status *p;
	int i;

	info->nr_probes = 0;
	for (i = 0; i < NR_PROBES; i++) {
		p = &info->probes[info->nr_probes++];
		p->probe = probe_defs[i].func;
		p->mode = i < NR_HOOKS ? "none" : "tracepoint";
		p->attached = false;
		snprintf(p->reason, sizeof(p->reason), "KVM not loaded yet");
	}
}
