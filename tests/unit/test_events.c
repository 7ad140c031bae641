// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The ring-buffer consumer (events_handle): records checked by size for
 * their type, counted once each, handed to the --trace printer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* open_memstream */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "events.h"
#include "fake.h"
#include "test.h"
#include "trace.h"
#include "../../bpf/unsync.h"

/* Feed one record of len bytes; check it was counted once. */
static void feed(struct events_ctx *ev, void *rec, size_t len)
{
	unsigned long long before = ev->events + ev->malformed;

	CHECK_INT(events_handle(ev, rec, len), 0);
	CHECK_INT(ev->events + ev->malformed, before + 1);
}

/* Room for any record, and more. */
struct big_record {
	struct event_hdr hdr;
	char rest[sizeof(struct sync_event) + sizeof(struct frame_event)];
};

static void test_malformed_sizes(void)
{
	struct events_ctx ev = { 0 };
	struct big_record big = { .hdr = { .type = EV_SYNC, .tgid = 1 } };

	/* shorter than the header */
	feed(&ev, &big, 0);
	feed(&ev, &big, sizeof(struct event_hdr) - 1);
	CHECK_INT(ev.malformed, 2);
	/* one byte short of each type's record */
	big.hdr.type = EV_SYNC;
	feed(&ev, &big, sizeof(struct sync_event) - 1);
	big.hdr.type = EV_ZAP_WALK;
	feed(&ev, &big, sizeof(struct sync_event) - 1);
	big.hdr.type = EV_FRAME;
	feed(&ev, &big, sizeof(struct frame_event) - 1);
	CHECK_INT(ev.malformed, 5);
	CHECK_INT(ev.events, 0);
	/* exactly the size, or longer (a newer BPF side): an event */
	big.hdr.type = EV_FRAME;
	feed(&ev, &big, sizeof(struct frame_event));
	feed(&ev, &big, sizeof(big));
	CHECK_INT(ev.events, 2);
	CHECK_INT(ev.malformed, 5);
}

static void test_unknown_type(void)
{
	struct events_ctx ev = { 0 };
	struct big_record big = { .hdr = { .type = 0, .tgid = 1 } };

	feed(&ev, &big, sizeof(big));
	big.hdr.type = EV_FRAME + 1;	/* 4: once a new VM's argv, now none */
	feed(&ev, &big, sizeof(big));
	CHECK_INT(ev.malformed, 2);
	CHECK_INT(ev.events, 0);
}

/* Every record goes to the printer: a sync's line, a frame's line. */
static void test_records_printed(void)
{
	struct sync_event e = { .hdr = { .type = EV_SYNC, .tgid = 800 },
				.comm = "kvmwalk" };
	struct frame_event f = { .hdr = { .type = EV_FRAME, .tgid = 900 } };
	struct trace_ctx tr = { .mode = TRACE_FRAMES };
	struct events_ctx ev = { .trace = &tr };
	char *out = NULL;
	size_t outlen = 0;

	tr.out = open_memstream(&out, &outlen);
	if (!tr.out) {
		CHECK(!"memstream");
		return;
	}
	feed(&ev, &e, sizeof(e));
	feed(&ev, &f, sizeof(f));
	CHECK_INT(ev.events, 2);
	CHECK_INT(ev.malformed, 0);
	fclose(tr.out);
	/* both printed, one line each */
	CHECK(out && !strncmp(out, "sync     pid=800 ", 17));
	CHECK(out && strstr(out, "\n  frame  pid=900 "));
	free(out);
}

/* The printer sees what its mode asks for; no table, no printer: counted. */
static void test_trace_modes(void)
{
	struct sync_event e = { .hdr = { .type = EV_ZAP_WALK, .tgid = 5 },
				.comm = "q\"\\x" };
	struct frame_event f = { .hdr = { .type = EV_FRAME, .tgid = 5 },
				 .ctx = CTX_ZAP };
	struct trace_ctx tr = { .mode = TRACE_SYNCS, .json = true };
	struct events_ctx ev = { .trace = &tr };
	char *out = NULL;
	size_t outlen = 0;

	tr.out = open_memstream(&out, &outlen);
	if (!tr.out) {
		CHECK(!"memstream");
		return;
	}
	feed(&ev, &e, sizeof(e));
	feed(&ev, &f, sizeof(f));	/* syncs only: not printed */
	tr.mode = TRACE_OFF;
	feed(&ev, &e, sizeof(e));
	fclose(tr.out);
	CHECK_INT(ev.events, 3);
	CHECK(out && !strncmp(out, "{\"type\":\"zap_walk\",\"pid\":5,\"tid\":0,"
			      "\"comm\":\"q???\",", 45));
	CHECK(out && strchr(out, '\n') == out + outlen - 1);
	free(out);

	ev.trace = NULL;
	feed(&ev, &e, sizeof(e));
	feed(&ev, &f, sizeof(f));
	CHECK_INT(ev.events, 5);
}

UNIT_SUITE(events)
{
	test_malformed_sizes();
	test_unknown_type();
	test_records_printed();
	test_trace_modes();
}
