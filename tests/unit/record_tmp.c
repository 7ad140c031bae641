// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* record_tmp.h */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* mkstemp() under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "record_tmp.h"
#include "test.h"

bool record_tmp_write(char *path, const struct record *r)
{
	char err[256];
	int fd;

	fd = mkstemp(path);
	if (fd < 0) {
		SKIP("mkstemp failed");
		return false;
	}
	close(fd);
	if (record_write(path, r, err, sizeof(err))) {
		test_failed++;
		fprintf(stderr, "%s:%d: record_write: %s\n", __FILE__,
			__LINE__, err);
		unlink(path);
		return false;
	}
	return true;
}
