/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Stored expected pages: a rendered page must equal, byte for byte, the
 * file tests/unit/expected/NAME, as node_exporter's end-to-end test
 * compares its output with a stored fixture.  The fixtures are the
 * contract a refactoring keeps; rewrite them only for a deliberate change
 * of the page, with
 *
 *   KUE_UPDATE_EXPECTED=1 make unit-test
 *
 * and review the diff.
 */
#ifndef __UNIT_EXPECTED_H
#define __UNIT_EXPECTED_H

/* One CHECK: page equals the stored file (the first differing line on failure). */
void check_expected(const char *name, const char *page);

#endif /* __UNIT_EXPECTED_H */
