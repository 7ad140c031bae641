// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The JSON record, byte for byte: record_write() of a run where every
 * counter has its own value equals tests/unit/expected/record.json, so a
 * change to how the record is built (it is written from the families
 * table) cannot move, rename or drop a field unseen.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* unlink() under -std=c11 */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "collect.h"
#include "record.h"
#include "record_read.h"
#include "expected.h"
#include "record_tmp.h"
#include "test.h"

/* Every __u64 of the struct at p its own value, from base up. */
static void number(void *p, size_t size, __u64 base)
{
	__u64 *v = p;
	size_t i;

	for (i = 0; i < size / sizeof(*v); i++)
		v[i] = base + i;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static void test_every_field(void)
{
	struct agent_info info = { .version = "1.2.3", .variant = "stock",
				   .nr_probes = 2 };
	struct record_vm vm[2] = {
		{ .name = "guest \"a\"", .pid = 4242, .has_kvm = true },
		{ .name = "other", .pid = 0, .has_kvm = false },
	};
	struct record r = { .info = &info, .vms = vm, .nr_vms = 2,
			    .duration_s = 12.25, .maps = "attached",
			    .start = { 1767225600, 123000000 },
			    .end = { 1767225612, 373000000 } };
	char path[] = "/tmp/kue-record-XXXXXX", *doc;

	strcpy(info.kernel_release, "6.1.0-42-amd64");
	info.probes[0] = (struct probe_status){ "mmu_sync_children",
						"fentry", true, "" };
	info.probes[1] = (struct probe_status){ "mmu_pages_clear_parents",
						"none", false, "inlined" };
	info.clears_source[SITE_WALK] = "hook";
	info.clears_source[SITE_CLEAR_PARENTS] = "derived";
	number(&vm[0].stats, sizeof(vm[0].stats), 1000);
	number(&vm[0].kvm, sizeof(vm[0].kvm), 5000);
	number(&vm[1].stats, sizeof(vm[1].stats), 2000);
	number(&r.hists, sizeof(r.hists), 3000);
	number(&r.self, sizeof(r.self), 4000);
	if (!record_tmp_write(path, &r))
		return;
	doc = slurp(path);
	CHECK(doc != NULL);
	if (doc)
		check_expected("record.json", doc);
	free(doc);
	unlink(path);
}

/* The size of a record of nr VMs as large as a VM can be written. */
static long largest_record(int nr)
{
	struct agent_info info = { .version = "1.2.3", .variant = "stock" };
	struct record r = { .info = &info, .nr_vms = nr, .duration_s = 1 };
	struct record_vm *vm = calloc(nr, sizeof(*vm));
	char path[] = "/tmp/kue-record-XXXXXX";
	struct stat st;
	long size = -1;
	int i;

	if (!vm)
		return -1;
	for (i = 0; i < nr; i++) {
		/* a control character is written \u00XX: six bytes each */
		memset(vm[i].name, '\x01', sizeof(vm[i].name) - 1);
		memset(&vm[i].stats, 0xff, sizeof(vm[i].stats));
		memset(&vm[i].kvm, 0xff, sizeof(vm[i].kvm));
		vm[i].pid = 4194304;
		vm[i].has_kvm = true;
	}
	r.vms = vm;
	if (record_tmp_write(path, &r) && !stat(path, &st))
		size = st.st_size;
	unlink(path);
	free(vm);
	return size;
}

/*
 * compare reads records up to RECORD_READ_MAX bytes: as many VMs as the
 * agent's map holds at once, each as large as it can be written, fit.
 */
static void test_largest_record_fits(void)
{
	long one = largest_record(1), two = largest_record(2);

	CHECK(one > 0 && two > one);
	CHECK(one + (two - one) * (COLLECT_MAX_VMS - 1.0) <= RECORD_READ_MAX);
}

UNIT_SUITE(record)
{
	test_every_field();
	test_largest_record_fits();
}
