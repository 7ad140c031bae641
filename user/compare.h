/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kvm-unsync-exporter compare A.json B.json [--plot=DIR]: two records
 * (docs/record.md) side by side, VM by VM (matched by name) and in total,
 * as counts, per sync and per page synced, with the difference and ratio.
 */
#ifndef __COMPARE_H
#define __COMPARE_H

#include <stdio.h>

/*
 * argv[0] is "compare".  0 when compared, 2 on a bad file or usage, 1 when
 * the report could not be written (stdout full or closed); stdout is
 * closed after the report, to see a write that failed late.
 */
int compare_main(int argc, char **argv);

/* The same, on two paths, printing to out and errors to err. */
int compare_files(const char *a, const char *b, const char *plot_dir,
		  FILE *out, FILE *err);

#endif /* __COMPARE_H */
