/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --trace: one line per record, as text or JSON lines.  The records come
 * from events.c, which has checked their type and size.
 */
#ifndef __TRACE_H
#define __TRACE_H

#include <stdbool.h>
#include <stdio.h>

enum trace_mode { TRACE_OFF, TRACE_SYNCS, TRACE_FRAMES };

struct sync_event;
struct frame_event;

struct trace_ctx {
	enum trace_mode mode;
	bool json;
	FILE *out;
};

int parse_trace_mode(const char *s, enum trace_mode *m);
/* An EV_SYNC or EV_ZAP_WALK record: printed unless the mode is off. */
void trace_sync(struct trace_ctx *t, const struct sync_event *e);
/* An EV_FRAME record: printed with --trace=frames only. */
void trace_frame(struct trace_ctx *t, const struct frame_event *e);

#endif /* __TRACE_H */
