// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Growable buffer and Prometheus text-format helpers (see prom_text.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom_text.h"

#define SB_MIN_CAP	4096

void sb_init(struct strbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void sb_free(struct strbuf *b)
{
	free(b->buf);
	sb_init(b);
}

void sb_reset(struct strbuf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

int sb_error(const struct strbuf *b)
{
	return b->err;
}

/* Make room for n more bytes plus the terminating NUL. */
static int sb_reserve(struct strbuf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX - b->len - 1)
		goto nomem;
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : SB_MIN_CAP;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->buf, cap);
	if (!p)
		goto nomem;
	b->buf = p;
	b->cap = cap;
	return 0;
nomem:
	b->err = -ENOMEM;
	return b->err;
}

void sb_append(struct strbuf *b, const char *s, size_t n)
{
	if (sb_reserve(b, n))
		return;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
}

void sb_puts(struct strbuf *b, const char *s)
{
	sb_append(b, s, strlen(s));
}

void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	size_t room = b->cap > b->len ? b->cap - b->len : 0;
	va_list ap;
	int n;

	if (b->err)
		return;
	/* once straight into the room left, which is nearly always enough */
	va_start(ap, fmt);
	n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < room) {
		b->len += (size_t)n;
		return;
	}
	if (n < 0 || sb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *sb_steal(struct strbuf *b, size_t *len)
{
	char *p = b->buf;

	*len = b->len;
	sb_init(b);
	return p;
}

/*
 * A page of 1,000 VMs is 30,000 samples: the helpers below append runs
 * of bytes and format numbers themselves rather than a byte or a
 * printf() at a time, which made rendering it ten times dearer.
 */

/* The decimal digits of v, as "%" PRIu64 would print them. */
static void sb_u64(struct strbuf *b, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_append(b, d + i, sizeof(d) - i);
}

/* Escape \ and newline: what HELP text needs. */
static void escape_help(struct strbuf *b, const char *s)
{
	size_t run;

	for (; *s; s++) {
		run = strcspn(s, "\\\n");
		sb_append(b, s, run);
		s += run;
		if (*s == '\\')
			sb_puts(b, "\\\\");
		else if (*s == '\n')
			sb_puts(b, "\\n");
		else
			break;
	}
}

void prom_family(struct strbuf *b, const char *name, const char *type,
		 const char *help)
{
	sb_printf(b, "# HELP %s ", name);
	escape_help(b, help);
	sb_printf(b, "\n# TYPE %s %s\n", name, type);
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is
 * not one: overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as Go's utf8.ValidString (what Prometheus uses) says.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0;
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

void prom_label_value(struct strbuf *b, const char *v)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");
	size_t n = strlen((const char *)s), k;

	while (n) {
		/* a run of ASCII that needs no escape, in one append */
		for (k = 0; k < n && s[k] < 0x80 && s[k] != '\\' &&
			    s[k] != '"' && s[k] != '\n'; k++)
			;
		if (k) {
			sb_append(b, (const char *)s, k);
			s += k;
			n -= k;
			continue;
		}
		if (*s == '\\') {
			sb_puts(b, "\\\\");
			k = 1;
		} else if (*s == '"') {
			sb_puts(b, "\\\"");
			k = 1;
		} else if (*s == '\n') {
			sb_puts(b, "\\n");
			k = 1;
		} else if ((k = utf8_seq_len(s, n))) {
			sb_append(b, (const char *)s, k);
		} else {
			sb_puts(b, "\xef\xbf\xbd");	/* U+FFFD */
			k = 1;
		}
		s += k;
		n -= k;
	}
}

static void sample_head(struct strbuf *b, const char *name,
			const char *suffix, const struct prom_label *labels,
			int nr_labels)
{
	int i;

	sb_puts(b, name);
	if (suffix)
		sb_puts(b, suffix);
	if (nr_labels <= 0)
		return;
	sb_append(b, "{", 1);
	for (i = 0; i < nr_labels; i++) {
		if (i)
			sb_append(b, ",", 1);
		sb_puts(b, labels[i].name);
		sb_append(b, "=\"", 2);
		prom_label_value(b, labels[i].value);
		sb_append(b, "\"", 1);
	}
	sb_append(b, "}", 1);
}

void prom_sample_u64(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     uint64_t value)
{
	sample_head(b, name, suffix, labels, nr_labels);
	sb_append(b, " ", 1);
	sb_u64(b, value);
	sb_append(b, "\n", 1);
}

void prom_sample_str(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     const char *value)
{
	sample_head(b, name, suffix, labels, nr_labels);
	sb_append(b, " ", 1);
	sb_puts(b, value);
	sb_append(b, "\n", 1);
}

void prom_fmt_ns_as_seconds(char *out, size_t size, uint64_t ns)
{
	uint64_t sec = ns / 1000000000u;
	uint32_t frac = (uint32_t)(ns % 1000000000u);
	int digits = 9;

	if (!frac) {
		snprintf(out, size, "%" PRIu64, sec);
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(out, size, "%" PRIu64 ".%0*" PRIu32, sec, digits, frac);
}
