// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for --web.config.file's parser (YAML from the operator,
 * but re-read on SIGHUP from a file anyone with write access can change)
 * and for the Authorization header parser (bytes from any client).
 *
 *   make unit-fuzz                  build build/unit/fuzz-web-config (clang)
 *   build/unit/fuzz-web-config tests/unit/fuzz/corpus/web_config \
 *       -max_total_time=60
 *
 * The seed corpus holds valid files and near misses, empty and cut-short
 * files, deep nesting and thousands of keys (refused fast).  Parsing reads no
 * file, so the fuzzer touches nothing on disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "web_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_config c;
	char err[256], prio[128], user[64], pass[64], *hdr;
	size_t i;

	if (!web_config_parse((const char *)data, size, "fuzz.yml", "/d", &c,
			      err, sizeof(err))) {
		/* a file that turns nothing on is refused (fails closed) */
		if (err[0] || (!c.tls && !c.nr_users))
			abort();
		if (c.tls && ((!c.cert_file && !c.cert_pem) ||
			      (!c.key_file && !c.key_pem) ||
			      c.min_version > c.max_version))
			abort();
		if (web_config_priorities(&c, prio, sizeof(prio)))
			abort();
		for (i = 0; i < c.nr_users; i++)
			if (strlen(c.users[i].hash) != 60 ||
			    strchr(c.users[i].name, ':'))
				abort();
		if (!web_config_same_tls(&c, &c))
			abort();
	} else {
		/* one line, no newline, and the config left empty */
		if (!err[0] || strchr(err, '\n') || c.users || c.cert_file)
			abort();
	}
	web_config_free(&c);

	/* the same bytes as an Authorization header value */
	hdr = malloc(size + 1);
	if (!hdr)
		return 0;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	if (!web_parse_basic_auth(hdr, user, sizeof(user), pass,
				  sizeof(pass))) {
		if (strlen(user) >= sizeof(user) || strchr(user, ':'))
			abort();
	}
	free(hdr);
	return 0;
}
