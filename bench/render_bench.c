// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What one scrape costs in the daemon's own code, without the maps and
 * the network: the page for N VMs (fake snapshot, names like a VMM's)
 * rendered by metrics_render(), then gzip'd as for Prometheus.  Prints
 * the median and minimum of R rounds of each, in milliseconds, and the
 * page's size plain and compressed:
 *
 *   render_bench [N [R]]        (default 1000 VMs, 101 rounds)
 *
 * bench/daemon.py runs it; it links user/ as tests/unit does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "http_gzip.h"
#include "metrics.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void fill(struct snapshot *s, char **names, size_t n)
{
	struct vm_guests g = { 0 };
	struct vm_stats *v = &g.guest[GUEST_L1];
	size_t i;
	__u64 *w;

	snapshot_init(s);
	for (i = 0; i < n; i++) {
		/*
		 * every counter of guest="l1" nonzero and different: digits
		 * to print; no nested guest (l2), as on most hosts
		 */
		for (w = (__u64 *)v; w < (__u64 *)(v + 1); w++)
			*w = 1000003ull * (i + 1) + (__u64)(w - (__u64 *)v);
		snapshot_add_vm(s, (__u32)(100000 + i), &g);
		names[i] = malloc(48);
		snprintf(names[i], 48, "guest-%04zu.example.org", i);
	}
	snapshot_sort_dedup(s);
	for (i = 0; i < DURATION_SLOTS; i++)
		s->hists.sync_duration[i] = i * 12345;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
	int r, rounds = argc > 2 ? atoi(argv[2]) : 101;
	struct metrics_extra x = { .ringbuf_events = 123456 };
	struct agent_info info = { .version = "0.0.0", .variant = "stock" };
	double *t_render, *t_gzip, t;
	struct snapshot s;
	struct strbuf b;
	char **names, *gz;
	size_t plain = 0, gz_len = 0;

	if (rounds < 1)
		rounds = 1;
	names = calloc(n ? n : 1, sizeof(*names));
	t_render = calloc(rounds, sizeof(double));
	t_gzip = calloc(rounds, sizeof(double));
	if (!names || !t_render || !t_gzip)
		return 1;
	snprintf(info.kernel_release, sizeof(info.kernel_release), "6.1.0");
	info.probes[0] = (struct probe_status){ "mmu_sync_children", "fentry",
						 true, "" };
	info.nr_probes = 1;
	fill(&s, names, n);
	sb_init(&b);
	for (r = 0; r < rounds; r++) {
		sb_reset(&b);
		t = now_ms();
		if (metrics_render(&b, &s, (const char *const *)names, &info,
				   &x))
			return 1;
		t_render[r] = now_ms() - t;
		plain = b.len;
		t = now_ms();
		if (gzip_compress(b.buf, b.len, &gz, &gz_len))
			return 1;
		t_gzip[r] = now_ms() - t;
		free(gz);
	}
	qsort(t_render, rounds, sizeof(double), cmp_double);
	qsort(t_gzip, rounds, sizeof(double), cmp_double);
	printf("vms %zu\nrounds %d\nrender_ms_median %.3f\nrender_ms_min %.3f\n"
	       "gzip_ms_median %.3f\ngzip_ms_min %.3f\nbytes_plain %zu\n"
	       "bytes_gzip %zu\n", n, rounds, t_render[rounds / 2],
	       t_render[0], t_gzip[rounds / 2], t_gzip[0], plain, gz_len);
	return 0;
}
