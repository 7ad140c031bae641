/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Content negotiation for gzip, and the compression itself.  Prometheus
 * sends "Accept-Encoding: gzip" with every scrape; a page of 1,000 VMs is
 * over a megabyte of text that compresses to a tenth of that.
 */
#ifndef __HTTP_GZIP_H
#define __HTTP_GZIP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * What the Accept-Encoding header lines said, fed one line at a time:
 * each weight in thousandths (q=0.5 is 500), -1 when not named.
 */
struct accept_encoding {
	int gzip;	/* "gzip" or its alias "x-gzip" */
	int identity;
	int any;	/* "*" */
};

#define ACCEPT_ENCODING_INIT { .gzip = -1, .identity = -1, .any = -1 }

/* Add one Accept-Encoding header value (a comma-separated list). */
void accept_encoding_add(struct accept_encoding *ae, const char *value);
/*
 * Answer with gzip: it has a weight above 0, named or through "*", and
 * identity was not named with a higher one.
 */
bool accept_encoding_gzip(const struct accept_encoding *ae);

/*
 * in[0..len) as one gzip member (RFC 1952) in a malloc'd buffer: 0 with
 * *out and *out_len set, or -ENOMEM / -EIO with nothing to free.
 */
int gzip_compress(const char *in, size_t len, char **out, size_t *out_len);

#endif /* __HTTP_GZIP_H */
