// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Buffer growth, escaping and number formatting of prom_text.c. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include "prom_text.h"
#include "test.h"

static void test_growth(void)
{
	struct strbuf b;
	size_t len;
	char *p;
	int i;

	sb_init(&b);
	for (i = 0; i < 10000; i++)
		sb_printf(&b, "line %05d\n", i);
	CHECK_INT(b.len, 10000 * 11);
	CHECK_INT(sb_error(&b), 0);
	CHECK(!strncmp(b.buf + 9999 * 11, "line 09999\n", 11));
	CHECK_INT(b.buf[b.len], '\0');
	sb_reset(&b);
	CHECK_INT(b.len, 0);
	sb_puts(&b, "x");
	p = sb_steal(&b, &len);
	CHECK_STR(p, "x");
	CHECK_INT(len, 1);
	CHECK(b.buf == NULL && b.len == 0);
	free(p);
	sb_free(&b);
}

static const char *label(struct strbuf *b, const char *v)
{
	sb_reset(b);
	prom_label_value(b, v);
	return b->buf ? b->buf : "";
}

static void test_label_escaping(void)
{
	struct strbuf b;

	sb_init(&b);
	CHECK_STR(label(&b, "plain-vm_1"), "plain-vm_1");
	CHECK_STR(label(&b, "a\\b"), "a\\\\b");
	CHECK_STR(label(&b, "say \"hi\""), "say \\\"hi\\\"");
	CHECK_STR(label(&b, "two\nlines"), "two\\nlines");
	CHECK_STR(label(&b, ""), "");
	CHECK_STR(label(&b, NULL), "");
	/* valid UTF-8 is kept as is; tabs need no escaping */
	CHECK_STR(label(&b, "caf\xc3\xa9\tvm \xf0\x9f\x90\xa7"),
		  "caf\xc3\xa9\tvm \xf0\x9f\x90\xa7");
	/* invalid bytes become U+FFFD, one per byte */
	CHECK_STR(label(&b, "a\xff" "b"), "a\xef\xbf\xbd" "b");
	CHECK_STR(label(&b, "\xc3"), "\xef\xbf\xbd");		/* truncated */
	CHECK_STR(label(&b, "\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_STR(label(&b, "\xed\xa0\x80"),		/* surrogate */
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	CHECK_STR(label(&b, "\xf4\x90\x80\x80"),	/* > U+10FFFF */
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	sb_free(&b);
}

static void test_family_and_samples(void)
{
	struct prom_label l[2] = { { "vm", "a\"b" }, { "pid", "7" } };
	struct strbuf b;

	sb_init(&b);
	prom_family(&b, "m_total", "counter", "Back\\slash and\nnewline.");
	prom_sample_u64(&b, "m_total", NULL, l, 2, UINT64_MAX);
	prom_sample_u64(&b, "h", "_count", NULL, 0, 0);
	prom_sample_str(&b, "h", "_sum", NULL, 0, "0.5");
	CHECK_STR(b.buf,
		  "# HELP m_total Back\\\\slash and\\nnewline.\n"
		  "# TYPE m_total counter\n"
		  "m_total{vm=\"a\\\"b\",pid=\"7\"} 18446744073709551615\n"
		  "h_count 0\n"
		  "h_sum 0.5\n");
	sb_free(&b);
}

/*
 * A sample through a prefix rendered once reads as the one rendered from
 * all its labels; label values at their largest escaped size (3 bytes of
 * U+FFFD per invalid byte) fit exactly, whatever room the buffer had.
 */
static void test_prefix_and_worst_case(void)
{
	struct prom_label l[3] = { { "vm", "q\"\n" }, { "pid", "" },
				   { "site", "walk" } };
	struct prom_label many[9];
	char bad[301], want[1024], fill[4095], *tail;
	struct strbuf a, b, pre;
	int i;

	sb_init(&a);
	sb_init(&b);
	sb_init(&pre);
	prom_sample_u64(&a, "m_total", NULL, l, 3, 42);
	prom_labels_prefix(&pre, l, 2);
	prom_sample_u64_pre(&b, "m_total", &pre, l + 2, 1, 42);
	CHECK_STR(b.buf, a.buf);
	CHECK_STR(b.buf, "m_total{vm=\"q\\\"\\n\",pid=\"\",site=\"walk\"} 42\n");
	sb_reset(&b);
	prom_sample_u64_pre(&b, "m", &pre, NULL, 0, 0);
	CHECK_STR(b.buf, "m{vm=\"q\\\"\\n\",pid=\"\"} 0\n");

	memset(bad, 0xff, 300);
	bad[300] = '\0';
	l[0].value = bad;
	for (i = 0; i < 300; i++)
		memcpy(want + 4 + 3 * i, "\xef\xbf\xbd", 3);
	memcpy(want, "m{v=", 4);
	memset(fill, 'x', sizeof(fill));
	for (i = 0; i < 1000; i++) {	/* every room left before the sample */
		sb_free(&a);
		sb_init(&a);
		sb_append(&a, fill, sizeof(fill) - (size_t)i);
		prom_sample_u64(&a, "m", NULL,
				&(struct prom_label){ "v", bad }, 1, 1);
		CHECK_INT(a.len, sizeof(fill) - (size_t)i + 4 + 1 + 900 + 5);
		CHECK(a.cap > a.len);
		tail = a.buf + sizeof(fill) - i;
		CHECK(!memcmp(tail, "m{v=\"", 5));
		CHECK(!memcmp(tail + 5, want + 4, 900));
		CHECK_STR(tail + 905, "\"} 1\n");
	}

	/* more labels than a sample takes: an error, no partial line */
	for (i = 0; i < 9; i++)
		many[i] = (struct prom_label){ "k", "v" };
	sb_reset(&b);
	prom_sample_u64(&b, "m", NULL, many, 9, 1);
	CHECK_INT(sb_error(&b), -EINVAL);
	CHECK_INT(b.len, 0);
	sb_free(&a);
	sb_free(&b);
	sb_free(&pre);
}

static const char *secs(uint64_t ns)
{
	static char buf[32];

	prom_fmt_ns_as_seconds(buf, sizeof(buf), ns);
	return buf;
}

static void test_seconds(void)
{
	CHECK_STR(secs(0), "0");
	CHECK_STR(secs(1), "0.000000001");
	CHECK_STR(secs(1024), "0.000001024");
	CHECK_STR(secs(1000000000), "1");
	CHECK_STR(secs(1500000000), "1.5");
	CHECK_STR(secs(1ULL << 38), "274.877906944");
	CHECK_STR(secs(UINT64_MAX), "18446744073.709551615");
}

UNIT_SUITE(prom_text)
{
	test_growth();
	test_label_escaping();
	test_family_and_samples();
	test_prefix_and_worst_case();
	test_seconds();
}
