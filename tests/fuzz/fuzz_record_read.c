// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for reading a record back, record_read() in
 * user/record_read.c: what `kvm-unsync-exporter compare A.json B.json`
 * does with a file a user hands it.
 *
 * record_read() takes a path, so each input is written to a memfd and
 * read through /proc/self/fd.  Checked: false exactly when an error was
 * recorded, and that error one line (compare prints it after the path);
 * true with every VM readable.
 *
 *   tests/fuzz/run.sh record_read
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memfd_create */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "record_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_doc r;
	char path[64];
	ssize_t n;
	size_t off = 0;
	bool ok;
	int fd, i;

	fd = memfd_create("record", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	while (off < size) {
		n = write(fd, data + off, size - off);
		if (n <= 0)
			abort();
		off += n;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&r, 0, sizeof(r));
	ok = record_read(&r, path);
	if (ok != !r.err[0])
		abort();
	if (memchr(r.err, '\0', sizeof(r.err)) == NULL || strchr(r.err, '\n'))
		abort();
	if (ok) {
		if (r.nr_vms < 0 || (r.nr_vms && !r.vms))
			abort();
		for (i = 0; i < r.nr_vms; i++)
			if (!memchr(r.vms[i].name, '\0', sizeof(r.vms[i].name)))
				abort();
	}
	record_doc_free(&r);
	close(fd);
	return 0;
}
