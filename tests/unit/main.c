// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Runs the suites that registered themselves (UNIT_SUITE in test.h): all of
 * them, or those named on the command line, as the BPF selftests' -t does:
 *
 *   unit-tests                  every suite, in link order
 *   unit-tests metrics,fold     two of them
 *   unit-tests -l               list the names
 *
 * The last line is the summary the build checks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "test.h"

int test_passed, test_failed;

static struct unit_suite *suites, **suites_tail = &suites;

void unit_register(struct unit_suite *s)
{
	*suites_tail = s;
	suites_tail = &s->next;
}

int test_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

/* name is one of the comma-separated names in list. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

/* Every name in list names a suite; else say which does not. */
static bool all_known(const char *list)
{
	const struct unit_suite *s;
	const char *p = list;
	bool ok = true;

	while (*p) {
		size_t len = strcspn(p, ",");

		for (s = suites; s; s = s->next)
			if (strlen(s->name) == len && !strncmp(p, s->name, len))
				break;
		if (!s && len) {
			fprintf(stderr, "no suite named \"%.*s\" (-l lists them)\n",
				(int)len, p);
			ok = false;
		}
		p += len;
		p += *p == ',';
	}
	return ok;
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 && argv[1][0] ? argv[1] : NULL;
	const struct unit_suite *s;

	if (only && !strcmp(only, "-l")) {
		for (s = suites; s; s = s->next)
			printf("%s\n", s->name);
		return 0;
	}
	if (only && !all_known(only))
		return 2;
	/* the HTTP test writes to sockets that the server may have closed */
	signal(SIGPIPE, SIG_IGN);
	for (s = suites; s; s = s->next)
		if (!only || listed(only, s->name))
			s->run();
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}
