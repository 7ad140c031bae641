// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the parsers that read process-controlled bytes:
 * /proc/PID/cmdline (any process can put anything in its argv), comm and
 * stat, and the label escaping those names go through.
 *
 *   make unit-fuzz                  build build/unit/fuzz-vm-names (clang)
 *   build/unit/fuzz-vm-names -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "prom_text.h"
#include "vm_names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[VM_NAME_MAX], small[4];
	unsigned long long start;
	struct strbuf b;
	size_t n;

	n = vm_name_from_cmdline((const char *)data, size, name, sizeof(name));
	if (n != strlen(name) || n >= sizeof(name))
		abort();
	n = vm_name_from_cmdline((const char *)data, size, small,
				 sizeof(small));
	if (n != strlen(small) || n >= sizeof(small))
		abort();
	n = vm_name_from_comm((const char *)data, size, name, sizeof(name));
	if (n != strlen(name))
		abort();
	proc_parse_starttime((const char *)data, size, &start);

	/*
	 * Whatever the name, its label text is well-formed: every '\\'
	 * starts one of the three escapes, no raw quote or newline.
	 */
	sb_init(&b);
	prom_label_value(&b, name);
	for (n = 0; n < b.len; n++) {
		if (b.buf[n] == '"' || b.buf[n] == '\n')
			abort();
		if (b.buf[n] == '\\') {
			if (n + 1 == b.len || !strchr("\\\"n", b.buf[n + 1]))
				abort();
			n++;
		}
	}
	sb_free(&b);
	return 0;
}
