/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --top: the live view.  top_render() turns two snapshots taken elapsed_s
 * apart into one block of text: a row per VM with rates and per-sync
 * figures over the interval, then the interval's global histograms.  The
 * same block is printed as is by --batch and drawn full-screen by --top.
 *
 * Terminal handling: the screen is this block redrawn whole once per
 * interval, plus one key read for sorting.  ncurses is in Debian 12
 * (libncurses-dev), but a home-and-clear escape (ESC[H ESC[J) and termios
 * non-canonical input do all of that, keep the screen byte for byte what
 * --batch prints (what a tmux capture-pane test compares), and add no
 * library: so plain ANSI.
 */
#ifndef __TOP_H
#define __TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "kvm_stats.h"
#include "vm_names.h"

struct top_vm {
	char name[VM_NAME_MAX];
	__u32 pid;			/* the key rows are matched by */
	struct vm_stats st;		/* summed over CPUs */
	bool has_kvm;
	struct kvm_vm_kstats kvm;
};

struct top_snap {
	const struct top_vm *vms;
	int nr_vms;
	struct hists hists;
};

enum top_sort {
	TOP_SORT_SYNCS,		/* syncs/s, the default */
	TOP_SORT_RESTARTS,	/* restarts per sync */
	TOP_SORT_PAGES,		/* pages synced/s */
	TOP_SORT_NAME,
	TOP_SORT_PID,
	TOP_SORT_NR,
};

/* "syncs", "restarts", "pages", "name", "pid"; -EINVAL if none of them. */
int top_sort_parse(const char *s, enum top_sort *out);
/* The key that selects a sort on the screen: s, r, p, n, i. */
int top_sort_key(int ch, enum top_sort *out);

/*
 * Render cur against prev (NULL: the first screen, everything since
 * start) into buf, snprintf-style: returns the length the whole block
 * needs; buf holds at most len - 1 bytes of it, NUL-terminated.
 * At most max_rows VM rows (0: all), the first by the sort order.
 */
size_t top_render(const struct top_snap *prev, const struct top_snap *cur,
		  double elapsed_s, enum top_sort sort, int max_rows,
		  char *buf, size_t len);

#endif /* __TOP_H */
