// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Runs every suite; the last line is the summary the build checks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "test.h"

/* suites of the production-operations work: capabilities, --max-vms */
void test_caps(void);
void test_fold(void);

int test_passed, test_failed;

void test_web_config(void);	/* test_web_config.c */
void test_conn_guard(void);	/* test_conn_guard.c */

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

int main(void)
{
	/* the HTTP test writes to sockets that the server may have closed */
	signal(SIGPIPE, SIG_IGN);
	test_prom_text();
	test_vm_names();
	test_collect();
	test_metrics();
	test_vm_table();
	test_http();
	test_web_config();
	test_conn_guard();
	test_caps();
	test_fold();
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}
