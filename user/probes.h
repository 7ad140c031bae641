/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The probe lifecycle, start to end: discover the kernel, load and attach
 * the BPF programs, pin the maps, open the ring buffer, point the scrapes
 * at the maps.  When KVM is not loaded yet the probes wait for it, and
 * attach late, from probes_poll(): that state lives here and nowhere else.
 */
#ifndef __PROBES_H
#define __PROBES_H

#include <stdbool.h>
#include <bpf/libbpf.h>
#include "agent_info.h"
#include "caps.h"
#include "discover.h"
#include "hooks.h"
#include "pins.h"

struct scrape_ctx;
struct unsync_bpf;

struct probes_config {
	enum attach_mode attach;	/* --attach */
	enum clear_parents_mode clear_parents;	/* --clear-parents */
	const char *pin_dir;		/* --pin-dir */
	bool keep_pins;			/* --keep-pins */
	bool check;			/* --check: KVM now or fail, no pins */
	bool trace_syncs;		/* the programs emit a record per sync */
	bool trace_frames;		/* ... and every walk frame */
	unsigned long ringbuf_kib;	/* --ringbuf-kib */
	caps_mask caps_keep;		/* the main thread's, once attached */
	bool verbose;
	/* who consumes the ring buffer's records */
	ring_buffer_sample_fn sample;
	void *sample_ctx;
};

struct probes {
	const struct probes_config *cfg;
	struct kernel_view kv;
	struct hook_set hs;
	struct unsync_bpf *skel;
	struct ring_buffer *rb;
	struct pins pins;	/* locked at open, maps pinned at attach */
	bool pinned;
	bool waiting;		/* KVM not loaded yet: probes_poll watches */
	unsigned int ticks;	/* probes_poll calls while waiting */
	char why[160];		/* how the variant was detected */
	struct agent_info info;	/* what /metrics says about the probes */
	struct scrape_ctx *sctx;
};

#define PROBES_INIT	{ .pins = { .lock_fd = -1 } }

/*
 * Look at the running kernel and, unless --check, lock the pin directory
 * (one agent per directory).  Without KVM, --check fails here; else the
 * probes wait for it.  0, or -1 after one line on stderr.
 */
int probes_open(struct probes *p, const struct probes_config *cfg);

/* --check: load, attach, print what attached and how; the exit code. */
int probes_check(struct probes *p);

/*
 * Attach now, or (KVM not loaded) tell the scrapes to wait.  Either way
 * sctx->info and, once attached, sctx->src are the probes'.  0 or -1.
 */
int probes_start(struct probes *p, struct scrape_ctx *sctx);

bool probes_waiting(const struct probes *p);

/*
 * Once attached the main thread keeps only cfg->caps_keep, for good;
 * while waiting it keeps all, to attach later.  0, or -1 (said why).
 */
int probes_drop_caps(const struct probes *p);

/*
 * The main loop's step, ~100 ms: consume the ring buffer, or, waiting,
 * look for KVM once a second and attach when it is there.  0; 1 when the
 * probes have just attached; -1 on failure (said why).
 */
int probes_poll(struct probes *p);

/* On a clean exit: what the last poll did not see (no wake-up told). */
void probes_drain(struct probes *p);

/* Detach, unpin (unless --keep-pins), free: whatever was done. */
void probes_close(struct probes *p);

#endif /* __PROBES_H */
