/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ring-buffer consumer: every record the BPF side sends comes here
 * first.  events_handle() reads struct event_hdr (bpf/unsync.h), checks
 * the record is long enough for its type, counts it, and hands EV_SYNC,
 * EV_ZAP_WALK and EV_FRAME to the --trace printer (trace.c).  Only --trace
 * makes records: counts are in the maps, and VM names in vm_names.
 *
 * The counters are the scrape's kvm_unsync_ringbuf_events_total: every
 * record is counted once, as an event or as malformed.
 */
#ifndef __EVENTS_H
#define __EVENTS_H

#include <stddef.h>

struct trace_ctx;

struct events_ctx {
	struct trace_ctx *trace;	/* --trace printer; may be NULL */
	/* bumped here, read elsewhere with __atomic_load_n */
	unsigned long long events;	/* records of a known type and size */
	unsigned long long malformed;	/* too short, or of an unknown type */
};

/* ring_buffer_sample_fn, with a struct events_ctx as ctx; always 0. */
int events_handle(void *ctx, void *data, size_t len);

#endif /* __EVENTS_H */
