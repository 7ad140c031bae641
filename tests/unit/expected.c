// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Compare a page with its stored fixture (expected.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "expected.h"
#include "test.h"

/* Run from the repository root (make unit-test does). */
#define EXPECTED_DIR	"tests/unit/expected"

static char *read_all(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "r");
	FILE *m;
	int c;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	if (!m) {
		fclose(f);
		return NULL;
	}
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

static void write_all(const char *path, const char *page)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(page, f) == EOF || fclose(f)) {
		fprintf(stderr, "%s: cannot write\n", path);
		test_failed++;
		return;
	}
	fprintf(stderr, "%s: rewritten\n", path);
}

/* Print the first line where got and want differ. */
static void report_diff(const char *path, const char *got, const char *want)
{
	int line = 1;
	size_t i = 0, g, w;

	while (got[i] && got[i] == want[i]) {
		if (got[i] == '\n')
			line++;
		i++;
	}
	while (i > 0 && got[i - 1] != '\n')
		i--;
	g = strcspn(got + i, "\n");
	w = strcspn(want + i, "\n");
	fprintf(stderr, "%s:%d: page differs\n  got:  %.*s\n  want: %.*s\n",
		path, line, (int)g, got + i, (int)w, want + i);
}

void check_expected(const char *name, const char *page)
{
	char path[256];
	char *want;

	snprintf(path, sizeof(path), "%s/%s", EXPECTED_DIR, name);
	if (!page) {
		CHECK(!"no page rendered");
		return;
	}
	if (getenv("KUE_UPDATE_EXPECTED")) {
		write_all(path, page);
		return;
	}
	want = read_all(path);
	if (!want) {
		test_failed++;
		fprintf(stderr, "%s: missing (KUE_UPDATE_EXPECTED=1 writes it)\n",
			path);
		return;
	}
	if (!strcmp(page, want)) {
		test_passed++;
	} else {
		test_failed++;
		report_diff(path, page, want);
	}
	free(want);
}
