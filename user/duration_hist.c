// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Quantiles of the log2 sync duration histogram (duration_hist.h). */
#include <math.h>
#include "duration_hist.h"

static __u64 count(const __u64 *now, const __u64 *before, int k)
{
	if (!before || now[k] < before[k])
		return now[k];
	return now[k] - before[k];
}

int duration_quantile_slot(const __u64 now[DURATION_SLOTS],
			   const __u64 *before, unsigned int pct,
			   __u64 *calls)
{
	__u64 total = 0, seen = 0;
	int k;

	for (k = 0; k < DURATION_SLOTS; k++)
		total += count(now, before, k);
	*calls = total;
	if (!total)
		return -1;
	/* the first slot where at least pct% of the calls are seen */
	for (k = 0; k < DURATION_SLOTS - 1; k++) {
		seen += count(now, before, k);
		if (seen * 100 >= total * pct)
			break;
	}
	return k;
}

double duration_slot_below_us(int slot)
{
	if (slot < 0)
		return 0;	/* no calls: no bound */
	if (slot >= DURATION_SLOTS - 1)
		return INFINITY;
	return (double)(1ULL << slot) / 1000.0;	/* slot <= 38 */
}
