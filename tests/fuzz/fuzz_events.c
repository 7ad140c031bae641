// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the ring-buffer record parser, events_handle(): the
 * records come from the kernel, but the parser must survive any bytes (a
 * BPF object of another version, a short or unknown record).
 *
 * Input: one control byte, then the record as the ring buffer hands it
 * over.  The control byte picks the trace mode (off, syncs, frames) and
 * text or JSON.
 *
 * Checked beyond "no crash, no sanitizer report":
 *   - every record is counted exactly once, as an event or as malformed;
 *   - what is printed is whole lines; in JSON mode each line is one
 *     object with no control bytes (comm is cleaned).
 *
 *   tests/fuzz/run.sh events         build and fuzz for KUE_FUZZ_TIME s
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* open_memstream */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include "events.h"
#include "trace.h"
#include "unsync.h"

static void check_output(const char *out, size_t len, int json)
{
	size_t i, start = 0;

	if (len && out[len - 1] != '\n')
		abort();
	for (i = 0; i < len; i++) {
		if (out[i] != '\n')
			continue;
		if (json && (out[start] != '{' || i < start + 2 ||
			     out[i - 1] != '}'))
			abort();
		start = i + 1;
	}
	if (!json)
		return;
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\n')
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct trace_ctx t = { 0 };
	struct events_ctx ev = { .trace = &t };
	unsigned long long before;
	uint64_t *rec;
	char *out = NULL;
	size_t outlen = 0;
	uint8_t ctl;

	if (size < 1)
		return 0;
	ctl = data[0];
	data++;
	size--;

	t.mode = ctl % 3 == 0 ? TRACE_OFF : ctl % 3 == 1 ? TRACE_SYNCS :
		 TRACE_FRAMES;
	t.json = ctl & 0x4;
	t.out = open_memstream(&out, &outlen);
	if (!t.out)
		abort();

	/* The ring buffer hands records over 8-byte aligned. */
	rec = malloc(size ? (size + 7) & ~(size_t)7 : 8);
	if (!rec)
		abort();
	if (size)
		memcpy(rec, data, size);

	before = ev.events + ev.malformed;
	if (events_handle(&ev, rec, size) != 0)
		abort();
	if (ev.events + ev.malformed != before + 1)
		abort();

	fclose(t.out);
	check_output(out, outlen, t.json);
	free(out);
	free(rec);
	return 0;
}
