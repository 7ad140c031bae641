/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Quantiles of the sync duration histogram (hists.sync_duration, slots as
 * collect.h describes them: slot k < DURATION_SLOTS - 1 holds d < 2^k ns,
 * the last slot has no upper bound).  Shared by compare and the live view.
 */
#ifndef __DURATION_HIST_H
#define __DURATION_HIST_H

#include <linux/types.h>
#include "../bpf/unsync.h"

/*
 * The slot holding the pct-th percentile of now[] - before[] (before may
 * be NULL; a slot smaller than before counts from 0), or -1 if empty.
 * *calls gets the number of calls.
 */
int duration_quantile_slot(const __u64 now[DURATION_SLOTS],
			   const __u64 *before, unsigned int pct,
			   __u64 *calls);

/* The slot's upper bound in microseconds; INFINITY for the last slot,
 * 0 for -1. */
double duration_slot_below_us(int slot);

#endif /* __DURATION_HIST_H */
