/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The function hooks and tracepoints, the flavour each one gets, and
 * attaching them in an order that never mixes contexts. */
#ifndef __HOOKS_H
#define __HOOKS_H

#include <stdbool.h>
#include "agent_info.h"

struct kernel_view;
struct unsync_bpf;
struct bpf_link;

enum attach_mode { ATTACH_AUTO, ATTACH_FENTRY, ATTACH_KPROBE };
enum flavour { FL_NONE, FL_FENTRY, FL_KPROBE };

/* --clear-parents: how the clear_parents site of the bitmap clears is counted */
enum clear_parents_mode {
	CP_AUTO,	/* derived on a stock kernel, else the hook */
	CP_HOOK,	/* only the hook: missing where it cannot attach */
	CP_DERIVE,	/* derived even where the hook would attach */
};

/*
 * How one site of kvm_unsync_bitmap_clears_total is counted, in
 * agent_info's clears_source[] (its names are the metric's label values).
 */
enum clears_source {
	SRC_HOOK,	/* measured by a probe on the function that clears */
	SRC_DERIVED,	/* computed from the page vector (function inlined) */
	SRC_ABSENT,	/* the kernel has no such site: the count is 0 */
	SRC_MISSING,	/* cannot be counted: the series is left out */
};

enum hook_id {
	HOOK_SYNC_CHILDREN,
	HOOK_UNSYNC_WALK,
	HOOK_CLEAR_PARENTS,
	NR_HOOKS,
};

struct hook {
	const char *func;
	bool walk;		/* the walk itself: --check needs it */
	enum flavour flavour;
	char why[400];		/* why no flavour, or why attach failed */
	struct bpf_link *entry, *exit;
};

struct hook_set {
	struct hook hooks[NR_HOOKS];
	struct bpf_link *tp_sync, *tp_unsync;
	char tp_sync_why[160], tp_unsync_why[160];
	bool tp_btf;		/* tracepoints as tp_btf, else raw_tp */
	bool cp_hookable;	/* mmu_pages_clear_parents() could be hooked */
	enum clears_source cp_source;	/* site="clear_parents" */
	char cp_why[512];
};

int parse_attach_mode(const char *s, enum attach_mode *m);
int parse_clear_parents_mode(const char *s, enum clear_parents_mode *m);
const char *flavour_name(enum flavour f);
const char *clears_source_name(enum clears_source s);

/*
 * Discover, then test a real attach of each allowed flavour; decide how
 * the clear_parents clears are counted on this kernel variant.
 */
void hooks_choose(struct hook_set *hs, const struct kernel_view *kv,
		  enum attach_mode mode, enum clear_parents_mode cp,
		  const char *variant, bool verbose);
/* Turn on the chosen programs and set fentry targets; before load. */
int hooks_configure(struct hook_set *hs, struct unsync_bpf *skel);
/* After load: exits first, then entries, sync before walk (see .c). */
void hooks_attach(struct hook_set *hs, struct unsync_bpf *skel);
void hooks_detach(struct hook_set *hs);

bool hooks_walk_attached(const struct hook_set *hs);
void hooks_report(const struct hook_set *hs, struct agent_info *info);
/* The same list before KVM is loaded: nothing attached yet. */
void hooks_report_waiting(struct agent_info *info);

#endif /* __HOOKS_H */
