// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * LD_PRELOAD shim: flock() fails with the errno named by
 * KUE_FLOCK_ERRNO (a number), as it does on a kernel built without
 * CONFIG_FILE_LOCKING (ENOSYS) or on a filesystem that refuses locks.
 * The bare machine's kernel has file locking, so this is the only way to
 * reach those branches of the pin-directory lock there.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/file.h>

int flock(int fd, int op)
{
	(void)fd;
	(void)op;
	errno = atoi(getenv("KUE_FLOCK_ERRNO") ? : "38");
	return -1;
}
