/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A record written to a new temporary file, for the tests that read one. */
#ifndef __RECORD_TMP_H
#define __RECORD_TMP_H

#include <stdbool.h>
#include "record.h"

/*
 * Write r to a new file named from the mkstemp template path (rewritten
 * in place).  False if it could not: the test is skipped (no temporary
 * file) or has failed (record_write), and says which.
 */
bool record_tmp_write(char *path, const struct record *r);

#endif /* __RECORD_TMP_H */
