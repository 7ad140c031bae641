// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Accept-Encoding and gzip bodies (see http_gzip.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libdeflate.h>
#include "http_gzip.h"

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_ows(const char *p)
{
	while (is_ows(*p))
		p++;
	return p;
}

/*
 * A qvalue (RFC 9110 12.4.2) in s[0..n): "0" or "1", optionally with a dot
 * and up to three digits, never above 1.  Thousandths, or -1 if malformed.
 */
static int parse_qvalue(const char *s, size_t n)
{
	int q, scale = 100;
	size_t i;

	if (!n || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		q += (s[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/*
 * The weight of one list element's parameters, p[0..n) after the coding:
 * 1000 without "q=", -1 when a parameter is malformed (the element is then
 * ignored, as if the client had not sent it).
 */
static int element_weight(const char *p, size_t n)
{
	const char *end = p + n, *v, *semi;
	int q = 1000;

	while (p < end) {
		p = skip_ows(p);
		if (p == end)
			break;
		if (*p != ';')
			return -1;
		p = skip_ows(p + 1);
		semi = memchr(p, ';', (size_t)(end - p));
		if (!semi)
			semi = end;
		v = semi;
		while (v > p && is_ows(v[-1]))
			v--;
		if (v - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			q = parse_qvalue(p + 2, (size_t)(v - p - 2));
			if (q < 0)
				return -1;
		}
		p = semi;
	}
	return q;
}

static bool coding_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(p, name, n);
}

/* One element "coding[;q=x]" of p[0..n). */
static void add_element(struct accept_encoding *ae, const char *p, size_t n)
{
	const char *end = p + n, *c;
	int *slot, q;
	size_t len;

	p = skip_ows(p);
	for (c = p; c < end && *c != ';' && !is_ows(*c); c++)
		;
	len = (size_t)(c - p);
	if (coding_is(p, len, "gzip") || coding_is(p, len, "x-gzip"))
		slot = &ae->gzip;
	else if (coding_is(p, len, "identity"))
		slot = &ae->identity;
	else if (coding_is(p, len, "*"))
		slot = &ae->any;
	else
		return;
	q = element_weight(c, (size_t)(end - c));
	/* named twice: the higher weight, so "gzip, gzip;q=0" still works */
	if (q > *slot)
		*slot = q;
}

void accept_encoding_add(struct accept_encoding *ae, const char *value)
{
	const char *comma;

	if (!value)
		return;
	for (;;) {
		comma = strchr(value, ',');
		add_element(ae, value, comma ? (size_t)(comma - value) :
			    strlen(value));
		if (!comma)
			return;
		value = comma + 1;
	}
}

/*
 * Identity not named has no weight of its own here: RFC 9110 leaves it
 * acceptable but unranked, and "Accept-Encoding: gzip;q=0.5" asks for gzip.
 */
bool accept_encoding_gzip(const struct accept_encoding *ae)
{
	int q = ae->gzip >= 0 ? ae->gzip : ae->any;

	return q > 0 && q >= ae->identity;
}

/*
 * libdeflate rather than zlib: the page is compressed whole, in one call,
 * which is what libdeflate does best; at its level 1 it takes a KVM
 * host's page of 1,000 VMs in about two thirds of zlib's level-1 time, to
 * a body about a tenth smaller (bench/daemon.md).  Level 1: the page is
 * repetitive text, and higher levels cost far more CPU on the scrape's
 * path for a few percent.
 */
int gzip_compress(const char *in, size_t len, char **out, size_t *out_len)
{
	struct libdeflate_compressor *c;
	size_t bound, n;
	char *buf, *shrunk;

	c = libdeflate_alloc_compressor(1);
	if (!c)
		return -ENOMEM;
	bound = libdeflate_gzip_compress_bound(c, len);
	buf = malloc(bound);
	if (!buf) {
		libdeflate_free_compressor(c);
		return -ENOMEM;
	}
	n = libdeflate_gzip_compress(c, in, len, buf, bound);
	libdeflate_free_compressor(c);
	if (!n) {	/* cannot happen with the bound's room: say so anyway */
		free(buf);
		return -EIO;
	}
	/* the bound is the page's size and more: give the rest back */
	shrunk = realloc(buf, n);
	*out = shrunk ? shrunk : buf;
	*out_len = n;
	return 0;
}
