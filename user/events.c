// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Ring-buffer records: checked, counted, dispatched (events.h). */
#include <stdint.h>
#include <string.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "events.h"
#include "trace.h"
#include "vm_table.h"

/* The smallest valid record of each type; SIZE_MAX for unknown types. */
static size_t record_size(__u32 type)
{
	switch (type) {
	case EV_SYNC:
	case EV_ZAP_WALK:
		return sizeof(struct sync_event);
	case EV_FRAME:
		return sizeof(struct frame_event);
	case EV_VM_NEW:
		return sizeof(struct vm_new_event);
	default:
		return SIZE_MAX;
	}
}

static void vm_new(struct events_ctx *ev, const struct vm_new_event *v)
{
	char comm[TASK_COMM_LEN + 1] = "";

	if (!ev->vms)
		return;
	memcpy(comm, v->comm, TASK_COMM_LEN);
	vm_table_note(ev->vms, v->hdr.tgid, comm, v->args,
		      v->args_len < VM_ARGS_MAX ? v->args_len : VM_ARGS_MAX);
}

/* No EV_VM_NEW for this VM (dropped, or attached after it started). */
static void vm_seen(struct events_ctx *ev, __u32 tgid, const char *rec_comm)
{
	char comm[TASK_COMM_LEN + 1] = "";

	if (!ev->vms)
		return;
	if (rec_comm)
		memcpy(comm, rec_comm, TASK_COMM_LEN);
	vm_table_note(ev->vms, tgid, comm, NULL, 0);
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
	switch (hdr.type) {
	case EV_VM_NEW:
		vm_new(ev, data);
		break;
	case EV_SYNC:
	case EV_ZAP_WALK:
		vm_seen(ev, hdr.tgid, ((const struct sync_event *)data)->comm);
		if (ev->trace)
			trace_sync(ev->trace, data);
		break;
	case EV_FRAME:
		vm_seen(ev, hdr.tgid, NULL);
		if (ev->trace)
			trace_frame(ev->trace, data);
		break;
	}
	return 0;
}
