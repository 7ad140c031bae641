/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The developer's modes: --top (the live view, full screen), --batch (one
 * plain block per interval) and --record=FILE (a record of the run at
 * exit).  None of them serves HTTP: they are run by a person at a
 * terminal or by a script, beside or instead of the daemon.
 *
 * Where the counts come from: if an agent holds the lock of --pin-dir,
 * its pinned maps, opened read-only (no second attach; the daemon keeps
 * reaping dead VMs, the view only reads); else this process attaches
 * itself, exactly as the daemon would, and unpins at exit.
 */
#ifndef __LIVE_H
#define __LIVE_H

#include <stdbool.h>
#include "top.h"

struct probes_config;

struct live_config {
	bool top;			/* --top */
	bool batch;			/* --batch */
	const char *record;		/* --record=FILE, or NULL */
	double interval_s;		/* --interval */
	unsigned long iterations;	/* --iterations, 0: no end */
	double duration_s;		/* --duration, 0: until a signal */
	enum top_sort sort;		/* --sort */
	unsigned long max_vms;		/* --max-vms */
};

/* True if any of --top, --batch, --record was given. */
bool live_wanted(const struct live_config *cfg);

/*
 * Run until q, a signal, --iterations or --duration; write the record if
 * asked.  The exit code: 0, 2 when the --record target cannot be written
 * (found at start, before any probe loads), or 1, each error one line on
 * stderr.
 */
int live_run(const struct live_config *cfg, const struct probes_config *pcfg);

#endif /* __LIVE_H */
