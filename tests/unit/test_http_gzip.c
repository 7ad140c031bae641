// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Accept-Encoding weights, and gzip bodies that inflate to the page. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "http_gzip.h"
#include "test.h"

/* Whether one header line with this value gets gzip. */
static int gzip_for(const char *value)
{
	struct accept_encoding ae = ACCEPT_ENCODING_INIT;

	accept_encoding_add(&ae, value);
	return accept_encoding_gzip(&ae);
}

static void test_accept_encoding(void)
{
	static const char *const yes[] = {
		"gzip", "GZip", "x-gzip", "gzip, deflate, br", "deflate, gzip",
		"gzip;q=1", "gzip;q=1.0", "gzip;q=1.000", "gzip; q=0.5",
		"gzip ;q=0.001", "gzip;Q=0.5", "*", "*;q=0.1", "br;q=1.0, *",
		"gzip;q=0.5, identity;q=0.5", "identity;q=0, gzip",
		"gzip;q=0, gzip", "gzip;q=0.5, *;q=0",
		" gzip ,identity;q=0.2", "gzip;q=0.8;level=9",
	};
	static const char *const no[] = {
		"", "identity", "deflate, br", "gzip;q=0", "gzip;q=0.0",
		"gzip; q=0.000", "x-gzip;q=0", "*;q=0", "gzip;q=0, *",
		"identity;q=1, gzip;q=0.5", "gzips", "gzip2", "xgzip",
		"gzip;q=2", "gzip;q=1.5", "gzip;q=1.001", "gzip;q=0.1234",
		"gzip;q=", "gzip;q=.5", "gzip;q=abc", "gzip;q=0.5x",
		"gzip x", "gzip;q=-1", "deflate;q=1, gzip;q=junk",
	};
	struct accept_encoding ae = ACCEPT_ENCODING_INIT;
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!gzip_for(yes[i]))
			fprintf(stderr, "no gzip for \"%s\"\n", yes[i]);
		CHECK(gzip_for(yes[i]));
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (gzip_for(no[i]))
			fprintf(stderr, "gzip for \"%s\"\n", no[i]);
		CHECK(!gzip_for(no[i]));
	}
	/* no header at all: the plain page */
	CHECK(!accept_encoding_gzip(&ae));
	accept_encoding_add(&ae, NULL);
	CHECK(!accept_encoding_gzip(&ae));
	/* two header lines are one list */
	accept_encoding_add(&ae, "deflate");
	CHECK(!accept_encoding_gzip(&ae));
	accept_encoding_add(&ae, "gzip;q=0.3");
	CHECK(accept_encoding_gzip(&ae));
	accept_encoding_add(&ae, "identity;q=0.9");
	CHECK(!accept_encoding_gzip(&ae));
}

/* out inflated as gzip; NULL on any error. */
static char *gunzip(const char *in, size_t len, size_t *out_len)
{
	z_stream zs = { 0 };
	size_t cap = 1 << 20;
	char *out = malloc(cap);
	int ret;

	if (!out || inflateInit2(&zs, 15 + 16) != Z_OK) {
		free(out);
		return NULL;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = (uInt)cap;
	ret = inflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	inflateEnd(&zs);
	if (ret != Z_STREAM_END) {
		free(out);
		return NULL;
	}
	return out;
}

static void round_trip(const char *page, size_t len)
{
	char *gz = NULL, *back;
	size_t gz_len = 0, back_len = 0;

	CHECK_INT(gzip_compress(page, len, &gz, &gz_len), 0);
	if (!gz)
		return;
	/* a gzip member (RFC 1952), not a zlib stream */
	CHECK(gz_len >= 18);
	CHECK_INT((unsigned char)gz[0], 0x1f);
	CHECK_INT((unsigned char)gz[1], 0x8b);
	back = gunzip(gz, gz_len, &back_len);
	CHECK(back != NULL);
	CHECK_INT(back_len, len);
	CHECK(back && !memcmp(back, page, len));
	free(back);
	free(gz);
}

static void test_round_trip(void)
{
	size_t n = 0, cap = 512 * 1024;
	char *page = malloc(cap);
	int i;

	round_trip("", 0);
	round_trip("t_total 1\n", 10);
	if (!page)
		return;
	/* a page like 1,000 VMs': repetitive, hundreds of KiB */
	for (i = 0; n + 128 < cap; i++)
		n += (size_t)snprintf(page + n, cap - n,
				      "kvm_unsync_sync_calls_total{vm=\"vm%d\","
				      "pid=\"%d\"} %d\n", i, 1000 + i, i * 7);
	round_trip(page, n);
	free(page);
}

UNIT_SUITE(http_gzip)
{
	test_accept_encoding();
	test_round_trip();
}
