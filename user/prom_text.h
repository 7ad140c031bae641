/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A growable text buffer and the pieces of the Prometheus text format
 * (version 0.0.4) that the renderer needs: HELP/TYPE lines, escaped label
 * values, samples.
 *
 * Errors are sticky: after an allocation failure every append is a no-op
 * and sb_error() returns -ENOMEM, so a renderer can write a whole page and
 * check once at the end instead of after every line.
 */
#ifndef __PROM_TEXT_H
#define __PROM_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf;	/* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	int err;	/* 0, -ENOMEM, or -EINVAL: more labels than a sample takes */
};

void sb_init(struct strbuf *b);
void sb_free(struct strbuf *b);
/* Empty the buffer but keep its memory for the next page. */
void sb_reset(struct strbuf *b);
int sb_error(const struct strbuf *b);
void sb_append(struct strbuf *b, const char *s, size_t n);
void sb_puts(struct strbuf *b, const char *s);
void sb_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Hand the heap buffer (malloc'd, free() it) to the caller; b is emptied. */
char *sb_steal(struct strbuf *b, size_t *len);

struct prom_label {
	const char *name;
	const char *value;	/* NULL is rendered as "" */
};

/* "# HELP name help\n# TYPE name type\n", help escaped. */
void prom_family(struct strbuf *b, const char *name, const char *type,
		 const char *help);
/*
 * A label value, without quotes: \ " and newline escaped, and bytes that are
 * not valid UTF-8 replaced by U+FFFD, because Prometheus rejects the whole
 * scrape on a single invalid label value and process names are arbitrary
 * bytes.
 */
void prom_label_value(struct strbuf *b, const char *v);
/* name{labels} value\n -- suffix ("_bucket", "_sum", ...) may be NULL. */
void prom_sample_u64(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     uint64_t value);
/*
 * The labels shared by many samples (a VM's vm, pid and guest), rendered
 * and escaped once into pre: k="v",k="v" with no braces.
 */
void prom_labels_prefix(struct strbuf *pre, const struct prom_label *labels,
			int nr_labels);
/* name{pre,labels} value\n: a sample whose first labels are in pre. */
void prom_sample_u64_pre(struct strbuf *b, const char *name,
			 const struct strbuf *pre,
			 const struct prom_label *labels, int nr_labels,
			 uint64_t value);
/* Same, value given as text (for seconds rendered exactly, "+Inf"...). */
void prom_sample_str(struct strbuf *b, const char *name, const char *suffix,
		     const struct prom_label *labels, int nr_labels,
		     const char *value);
/*
 * Nanoseconds as an exact decimal number of seconds ("0.000000001",
 * "274.877906944"): no floating point, so the text is the same on every
 * libc and le="..." values never differ by a rounding ulp between scrapes.
 */
void prom_fmt_ns_as_seconds(char *out, size_t size, uint64_t ns);

#endif /* __PROM_TEXT_H */
