/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Ring-buffer consumer: counts records and, with --trace, prints them. */
#ifndef __TRACE_H
#define __TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum trace_mode { TRACE_OFF, TRACE_SYNCS, TRACE_FRAMES };

struct vm_table;

struct trace_ctx {
	enum trace_mode mode;
	bool json;
	FILE *out;
	struct vm_table *vms;		/* names new VMs early; may be NULL */
	unsigned long long events;	/* read with __atomic_load_n */
	unsigned long long malformed;	/* records of an unknown size/type */
};

int parse_trace_mode(const char *s, enum trace_mode *m);
/* ring_buffer_sample_fn */
int trace_handle(void *ctx, void *data, size_t len);

#endif /* __TRACE_H */
