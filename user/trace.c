// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <linux/types.h>
#include "trace.h"
#include "unsync.h"
#include "vm_table.h"

int parse_trace_mode(const char *s, enum trace_mode *m)
{
	if (!s || !strcmp(s, "syncs"))
		*m = TRACE_SYNCS;
	else if (!strcmp(s, "frames"))
		*m = TRACE_FRAMES;
	else
		return -EINVAL;
	return 0;
}

static const char *ctx_name(__u32 ctx)
{
	return ctx == CTX_SYNC ? "sync" : ctx == CTX_ZAP ? "zap" : "?";
}

/* comm comes from the kernel: keep it printable and JSON-safe. */
static void clean_comm(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i + 1 < outlen && i < TASK_COMM_LEN && in[i]; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '"' &&
			  in[i] != '\\') ? in[i] : '?';
	out[i] = '\0';
}

static void print_summary(struct trace_ctx *t, const struct sync_event *e)
{
	const char *kind = e->hdr.type == EV_SYNC ? "sync" : "zap_walk";
	char comm[TASK_COMM_LEN + 1];

	clean_comm(e->comm, comm, sizeof(comm));
	if (t->json) {
		fprintf(t->out,
			"{\"type\":\"%s\",\"pid\":%u,\"tid\":%u,\"comm\":\"%s\",\"result\":%d,"
			"\"duration_ns\":%llu,\"can_yield\":%u,\"root_level\":%u,\"walks\":%u,"
			"\"restarts\":%u,\"frames\":%u,\"leaves\":%u,\"clears_walk\":%u,"
			"\"clears_parents\":%u,\"max_nr\":%u}\n",
			kind, e->hdr.tgid, e->tid, comm, e->result,
			(unsigned long long)e->duration_ns, e->can_yield,
			e->root_level, e->walks, e->restarts, e->frames,
			e->leaves, e->clears_walk, e->clears_parents, e->max_nr);
		return;
	}
	fprintf(t->out,
		"%-8s pid=%u tid=%u comm=%s result=%d dur=%.3fus can_yield=%u root_level=%u "
		"walks=%u restarts=%u frames=%u leaves=%u clears_walk=%u clears_parents=%u max_nr=%u\n",
		kind, e->hdr.tgid, e->tid, comm, e->result, e->duration_ns / 1e3,
		e->can_yield, e->root_level, e->walks, e->restarts, e->frames,
		e->leaves, e->clears_walk, e->clears_parents, e->max_nr);
}

static void print_frame(struct trace_ctx *t, const struct frame_event *e)
{
	if (t->json) {
		fprintf(t->out,
			"{\"type\":\"frame\",\"pid\":%u,\"tid\":%u,\"context\":\"%s\",\"depth\":%u,"
			"\"level\":%u,\"ret\":%d,\"cleared\":%u,\"nr\":%u}\n",
			e->hdr.tgid, e->tid, ctx_name(e->ctx), e->depth, e->level,
			e->ret, e->cleared, e->nr);
		return;
	}
	fprintf(t->out, "  frame  pid=%u tid=%u context=%s depth=%u level=%u ret=%d cleared=%u nr=%u\n",
		e->hdr.tgid, e->tid, ctx_name(e->ctx), e->depth, e->level, e->ret,
		e->cleared, e->nr);
}

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

int trace_handle(void *ctx, void *data, size_t len)
{
	struct trace_ctx *t = ctx;
	struct event_hdr hdr;
	__u32 type;

	if (len < sizeof(hdr)) {
		__atomic_add_fetch(&t->malformed, 1, __ATOMIC_RELAXED);
		return 0;
	}
	memcpy(&hdr, data, sizeof(hdr));
	type = hdr.type;
	if (len < record_size(type)) {
		__atomic_add_fetch(&t->malformed, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_add_fetch(&t->events, 1, __ATOMIC_RELAXED);
	if (type == EV_VM_NEW) {
		const struct vm_new_event *v = data;
		char comm[TASK_COMM_LEN + 1] = "";

		memcpy(comm, v->comm, TASK_COMM_LEN);
		if (t->vms)
			vm_table_note(t->vms, hdr.tgid, comm, v->args,
				      v->args_len < VM_ARGS_MAX ? v->args_len : VM_ARGS_MAX);
		return 0;
	}
	if (t->vms) {
		/* No EV_VM_NEW (dropped, or attached after the VM started). */
		char comm[TASK_COMM_LEN + 1] = "";

		if (type != EV_FRAME)
			memcpy(comm, ((const struct sync_event *)data)->comm,
			       TASK_COMM_LEN);
		vm_table_note(t->vms, hdr.tgid, comm, NULL, 0);
	}
	if (t->mode == TRACE_OFF)
		return 0;
	if (type == EV_FRAME) {
		if (t->mode == TRACE_FRAMES)
			print_frame(t, data);
	} else {
		print_summary(t, data);
	}
	fflush(t->out);
	return 0;
}
