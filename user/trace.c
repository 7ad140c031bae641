// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The --trace printer (trace.h). */
#include <errno.h>
#include <string.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "families.h"
#include "trace.h"

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

static const char *guest_name(__u32 guest)
{
	return guest < GUEST_MAX ? family_guest_names[guest] : "?";
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
			"\"clears_parents\":%u,\"max_nr\":%u,\"guest\":\"%s\"}\n",
			kind, e->hdr.tgid, e->tid, comm, e->result,
			(unsigned long long)e->duration_ns, e->can_yield,
			e->root_level, e->walks, e->restarts, e->frames,
			e->leaves, e->clears_walk, e->clears_parents, e->max_nr,
			guest_name(e->guest));
		return;
	}
	fprintf(t->out,
		"%-8s pid=%u tid=%u comm=%s result=%d dur=%.3fus can_yield=%u root_level=%u "
		"walks=%u restarts=%u frames=%u leaves=%u clears_walk=%u clears_parents=%u max_nr=%u guest=%s\n",
		kind, e->hdr.tgid, e->tid, comm, e->result, e->duration_ns / 1e3,
		e->can_yield, e->root_level, e->walks, e->restarts, e->frames,
		e->leaves, e->clears_walk, e->clears_parents, e->max_nr,
		guest_name(e->guest));
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

void trace_sync(struct trace_ctx *t, const struct sync_event *e)
{
	if (t->mode == TRACE_OFF)
		return;
	print_summary(t, e);
	fflush(t->out);
}

void trace_frame(struct trace_ctx *t, const struct frame_event *e)
{
	if (t->mode != TRACE_FRAMES)
		return;
	print_frame(t, e);
	fflush(t->out);
}
