// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Growable buffer and Prometheus text-format helpers (see prom_text.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
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

/*
 * The escaped form of v[0..n) at out, which has room for 3 * n bytes (the
 * most: one byte of U+FFFD for each invalid byte); the end of what was
 * written.
 */
static char *escape_label(char *out, const unsigned char *s, size_t n)
{
	size_t k;

	while (n) {
		/* a run of ASCII that needs no escape, in one copy */
		for (k = 0; k < n && s[k] < 0x80 && s[k] != '\\' &&
			    s[k] != '"' && s[k] != '\n'; k++)
			;
		if (k) {
			memcpy(out, s, k);
			out += k;
		} else if (*s == '\\' || *s == '"' || *s == '\n') {
			*out++ = '\\';
			*out++ = *s == '\n' ? 'n' : (char)*s;
			k = 1;
		} else if ((k = utf8_seq_len(s, n))) {
			memcpy(out, s, k);
			out += k;
		} else {
			memcpy(out, "\xef\xbf\xbd", 3);	/* U+FFFD */
			out += 3;
			k = 1;
		}
		s += k;
		n -= k;
	}
	return out;
}

void prom_label_value(struct strbuf *b, const char *v)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");
	size_t n = strlen((const char *)s);
	char *end;

	if (n > SIZE_MAX / 3 || sb_reserve(b, 3 * n))
		return;
	end = escape_label(b->buf + b->len, s, n);
	b->len = (size_t)(end - b->buf);
	b->buf[b->len] = '\0';
}

/*
 * A page of 1,000 VMs on a KVM host is 60,000 samples: each is written
 * through one cursor after one reservation of its largest size, not in a
 * dozen appends that each check for room.
 */
#define SAMPLE_MAX_LABELS	8
#define U64_DIGITS		20

/* n bytes of s at out (s may be NULL when n is 0: no suffix, no prefix) */
static size_t put(char *out, const char *s, size_t n)
{
	if (n)
		memcpy(out, s, n);
	return n;
}

static size_t put_u64(char *out, uint64_t v)
{
	char d[U64_DIGITS];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put(out, d + i, sizeof(d) - i);
}

/* Labels measured once, for the reservation and then the copy. */
struct label_lens {
	const char *val[SAMPLE_MAX_LABELS];
	size_t key[SAMPLE_MAX_LABELS], len[SAMPLE_MAX_LABELS];
};

/*
 * The most bytes k="v",k="v" of labels takes (values escaped at worst 3
 * bytes per byte), their lengths in ll; -EINVAL for more labels than a
 * sample takes (a renderer bug: said, not truncated).
 */
static int labels_measure(const struct prom_label *labels, int nr,
			  struct label_lens *ll, size_t *need)
{
	int i;

	if (nr > SAMPLE_MAX_LABELS)
		return -EINVAL;
	*need = 0;
	for (i = 0; i < nr; i++) {
		ll->val[i] = labels[i].value ? labels[i].value : "";
		ll->key[i] = strlen(labels[i].name);
		ll->len[i] = strlen(ll->val[i]);
		/* 8 labels of 4 * len each cannot wrap need */
		if (ll->len[i] > SIZE_MAX / 64 || ll->key[i] > SIZE_MAX / 64)
			return -ENOMEM;
		*need += ll->key[i] + 3 * ll->len[i] + 4;	/* ,k="v" */
	}
	return 0;
}

/* k="v" of each label, a comma before each but the first unless comma. */
static char *put_labels(char *out, const struct prom_label *labels, int nr,
			const struct label_lens *ll, bool comma)
{
	int i;

	for (i = 0; i < nr; i++) {
		if (i || comma)
			*out++ = ',';
		out += put(out, labels[i].name, ll->key[i]);
		*out++ = '=';
		*out++ = '"';
		out = escape_label(out, (const unsigned char *)ll->val[i],
				   ll->len[i]);
		*out++ = '"';
	}
	return out;
}

/*
 * name suffix {pre, labels} value\n: pre (pre_len bytes, may be 0) is labels
 * already rendered and escaped, for the samples that share them; value is
 * text, or the digits of num when it is NULL.
 */
static void sample(struct strbuf *b, const char *name, const char *suffix,
		   const char *pre, size_t pre_len,
		   const struct prom_label *labels, int nr_labels,
		   const char *value, uint64_t num)
{
	size_t name_len = strlen(name), suffix_len = suffix ? strlen(suffix) : 0;
	size_t value_len = value ? strlen(value) : U64_DIGITS, need;
	struct label_lens ll;
	char *out;
	int err;

	if (nr_labels < 0)
		nr_labels = 0;
	err = labels_measure(labels, nr_labels, &ll, &need);
	if (err) {
		b->err = err;
		return;
	}
	if (sb_reserve(b, need + name_len + suffix_len + pre_len + value_len + 4))
		return;
	out = b->buf + b->len;
	out += put(out, name, name_len);
	out += put(out, suffix, suffix_len);
	if (pre_len || nr_labels) {
		*out++ = '{';
		out += put(out, pre, pre_len);
		out = put_labels(out, labels, nr_labels, &ll, pre_len);
		*out++ = '}';
	}
	*out++ = ' ';
	out += value ? put(out, value, value_len) : put_u64(out, num);
	*out++ = '\n';
	*out = '\0';
	b->len = (size_t)(out - b->buf);
}

void prom_labels_prefix(struct strbuf *b, const struct prom_label *labels,
			int nr_labels)
{
	struct label_lens ll;
	size_t need;
	char *out;
	int err;

	sb_reset(b);
	err = labels_measure(labels, nr_labels, &ll, &need);
	if (err) {
		b->err = err;
		return;
	}
	if (sb_reserve(b, need))
		return;
	out = put_labels(b->buf, labels, nr_labels, &ll, false);
	*out = '\0';
	b->len = (size_t)(out - b->buf);
}

void prom_sample_u64(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     uint64_t value)
{
	sample(b, name, suffix, NULL, 0, labels, nr_labels, NULL, value);
}

void prom_sample_u64_pre(struct strbuf *b, const char *name,
			 const struct strbuf *pre,
			 const struct prom_label *labels, int nr_labels,
			 uint64_t value)
{
	if (pre->err) {
		b->err = pre->err;
		return;
	}
	sample(b, name, NULL, pre->buf, pre->len, labels, nr_labels, NULL,
	       value);
}

void prom_sample_str(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     const char *value)
{
	sample(b, name, suffix, NULL, 0, labels, nr_labels, value, 0);
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
