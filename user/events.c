// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Ring-buffer records: checked, counted, dispatched (events.h). */
#include <stdint.h>
#include <string.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "events.h"
#include "trace.h"

/* The smallest valid record of each type; SIZE_MAX for unknown types. */
static size_t record_size(__u32 type)
{
	switch (type) {
	case EV_SYNC:
	case EV_ZAP_WALK:
		return sizeof(struct sync_event);
	case EV_FRAME:
		return sizeof(struct frame_event);
	default:
		return SIZE_MAX;
	}
}

int events_handle(void *ctx, void *data, size_t len)
{
	struct events_ctx *ev = ctx;
	struct event_hdr hdr;

	if (len < sizeof(hdr)) {
		__atomic_add_fetch(&ev->malformed, 1, __ATOMIC_RELAXED);
		return 0;
	}
	memcpy(&hdr, data, sizeof(hdr));
	if (len < record_size(hdr.type)) {
		__atomic_add_fetch(&ev->malformed, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_add_fetch(&ev->events, 1, __ATOMIC_RELAXED);
	if (!ev->trace)
		return 0;
	switch (hdr.type) {
	case EV_SYNC:
	case EV_ZAP_WALK:
		trace_sync(ev->trace, data);
		break;
	case EV_FRAME:
		trace_frame(ev->trace, data);
		break;
	}
	return 0;
}
