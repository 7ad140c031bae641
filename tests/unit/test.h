/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A minimal test harness: CHECK macros count passes and failures; a
 * failure prints file:line and what differed, and the run goes on.
 * main() prints "N passed, N failed" and exits non-zero on any failure.
 */
#ifndef __UNIT_TEST_H
#define __UNIT_TEST_H

#include <stdio.h>
#include <string.h>

extern int test_passed, test_failed;

#define CHECK(cond) do {						\
	if (cond) {							\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n",		\
			__FILE__, __LINE__, #cond);			\
	}								\
} while (0)

#define CHECK_INT(got, want) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ == w_) {							\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "%s:%d: %s == %lld, want %lld\n",	\
			__FILE__, __LINE__, #got, g_, w_);		\
	}								\
} while (0)

#define CHECK_STR(got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	if (g_ && w_ && !strcmp(g_, w_)) {				\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n",	\
			__FILE__, __LINE__, #got, g_ ? g_ : "(null)",	\
			w_ ? w_ : "(null)");				\
	}								\
} while (0)

/* hay contains the whole line "line\n" (not just a prefix of a line). */
#define CHECK_LINE(hay, line) do {					\
	const char *h_ = (hay), *l_ = (line);				\
	if (h_ && test_has_line(h_, l_)) {				\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "%s:%d: missing line: %s\n",		\
			__FILE__, __LINE__, l_);			\
	}								\
} while (0)

#define CHECK_NO_SUBSTR(hay, needle) do {				\
	const char *h_ = (hay), *n_ = (needle);				\
	if (h_ && !strstr(h_, n_)) {					\
		test_passed++;						\
	} else {							\
		test_failed++;						\
		fprintf(stderr, "%s:%d: unexpected: %s\n",		\
			__FILE__, __LINE__, n_);			\
	}								\
} while (0)

/* Print why a test did not run; not a pass, not a failure. */
#define SKIP(why) fprintf(stderr, "%s:%d: skipped: %s\n",		\
			  __FILE__, __LINE__, why)

int test_has_line(const char *text, const char *line);

/*
 * A suite, one per file, registers itself: UNIT_SUITE(name) { ... } is
 * its body, and `unit-tests name` (make unit-test T=name) runs it alone.
 */
struct unit_suite {
	const char *name;
	void (*run)(void);
	struct unit_suite *next;
};

void unit_register(struct unit_suite *s);

#define UNIT_SUITE(name)						\
	static void unit_##name(void);					\
	static struct unit_suite unit_suite_##name = { #name, unit_##name, NULL }; \
	__attribute__((constructor)) static void unit_reg_##name(void)	\
	{								\
		unit_register(&unit_suite_##name);			\
	}								\
	static void unit_##name(void)

#endif /* __UNIT_TEST_H */
