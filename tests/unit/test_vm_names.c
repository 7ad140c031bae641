// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* VM naming from QEMU command lines and /proc (vm_names.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* rand_r */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fake.h"
#include "test.h"
#include "vm_names.h"

/* argv literal with embedded NULs: sizeof - 1 drops the final NUL only. */
#define ARGV(s)	s, sizeof(s) - 1

static const char *name_of(const char *argv, size_t len)
{
	static char name[VM_NAME_MAX];

	vm_name_from_cmdline(argv, len, name, sizeof(name));
	return name;
}

static void test_qemu_forms(void)
{
	/* libvirt's form */
	CHECK_STR(name_of(ARGV("qemu-system-x86_64\0-name\0"
			       "guest=web01,debug-threads=on\0-m\0002048\0")),
		  "web01");
	/* the implied first element */
	CHECK_STR(name_of(ARGV("qemu\0-name\0web02\0")), "web02");
	CHECK_STR(name_of(ARGV("qemu\0-name\0web03,process=qemu-web03\0")),
		  "web03");
	/* guest= need not come first */
	CHECK_STR(name_of(ARGV("qemu\0-name\0debug-threads=on,guest=db\0")),
		  "db");
	/* "--name" is "-name" to QEMU */
	CHECK_STR(name_of(ARGV("qemu\0--name\0guest=two-dashes\0")),
		  "two-dashes");
	/* the last argument need not end in NUL */
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=tail")), "tail");
	/* the workload generator of the lab passes the same option */
	CHECK_STR(name_of(ARGV("./kvmwalk\0--tables\0008\0-name\0"
			       "guest=lab-4level\0")), "lab-4level");
}

static void test_qemu_escaping(void)
{
	/* ",," is a literal comma, in the implied and in the named form */
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=a,,b,debug-threads=on\0")),
		  "a,b");
	CHECK_STR(name_of(ARGV("qemu\0-name\0a,,b,,,,c\0")), "a,b,,c");
	CHECK_STR(name_of(ARGV("qemu\0-name\0x,,=y\0")), "x,=y");
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=ends,,\0")), "ends,");
	/* '=' inside a value is just a character */
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=a=b\0")), "a=b");
	/* quotes, backslashes: kept here, escaped by the renderer */
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=q\"b\\s\0")), "q\"b\\s");
}

static void test_qemu_merging(void)
{
	/* -name options merge; the last guest wins */
	CHECK_STR(name_of(ARGV("qemu\0-name\0first\0-name\0guest=second\0")),
		  "second");
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=kept\0"
			       "-name\0debug-threads=on\0")), "kept");
	/* an element without '=' after the first is a flag, not a name */
	CHECK_STR(name_of(ARGV("qemu\0-name\0process=p,notaname\0")), "");
}

static void test_not_names(void)
{
	char name[VM_NAME_MAX] = "junk";

	/* QEMU rejects "-name=x", so that is not QEMU's name */
	CHECK_STR(name_of(ARGV("qemu\0-name=guest=x\0")), "");
	CHECK_STR(name_of(ARGV("qemu\0--name=x\0")), "");
	/* argv[0] is the program, even if it looks like an option */
	CHECK_STR(name_of(ARGV("-name\0guest=argv0\0")), "");
	/* -name as the last argument has no value */
	CHECK_STR(name_of(ARGV("qemu\0-m\0001024\0-name\0")), "");
	CHECK_STR(name_of(ARGV("qemu\0-name")), "");
	/* empty values */
	CHECK_STR(name_of(ARGV("qemu\0-name\0\0")), "");
	CHECK_STR(name_of(ARGV("qemu\0-name\0guest=\0")), "");
	CHECK_STR(name_of(ARGV("qemu\0-name\0,debug-threads=on\0")), "");
	/* similar option names */
	CHECK_STR(name_of(ARGV("qemu\0-names\0x\0-nam\0y\0---name\0z\0")), "");
	/* "-name" inside one argument is not an option */
	CHECK_STR(name_of(ARGV("qemu\0-append\0console=ttyS0 -name x\0")), "");
	CHECK_INT(vm_name_from_cmdline(NULL, 10, name, sizeof(name)), 0);
	CHECK_STR(name, "");
	CHECK_INT(vm_name_from_cmdline("", 0, name, sizeof(name)), 0);
	CHECK_INT(vm_name_from_cmdline("q", 1, NULL, 0), 0);
}

static void test_truncation(void)
{
	char argv[600], small[8];
	size_t n;

	memcpy(argv, "q\0-name\0guest=", 14);
	memset(argv + 14, 'x', 500);
	n = vm_name_from_cmdline(argv, 514, small, sizeof(small));
	CHECK_INT(n, 7);
	CHECK_STR(small, "xxxxxxx");
	CHECK_INT(strlen(name_of(argv, 514)), VM_NAME_MAX - 1);
}

/* Random and mutated argv buffers: must never crash, always terminate. */
static void test_fuzz(void)
{
	static const char seeds[] = "q\0-name\0guest=a,,b,x=y\0--name\0,,,=\0";
	char buf[256], name[VM_NAME_MAX];
	unsigned int seed = 12345;
	int i, ok = 1;
	size_t len, j, n;

	for (i = 0; i < 20000; i++) {
		len = (size_t)(rand_r(&seed) % sizeof(buf));
		for (j = 0; j < len; j++) {
			if (rand_r(&seed) % 3)
				buf[j] = seeds[(size_t)rand_r(&seed) %
					       (sizeof(seeds) - 1)];
			else
				buf[j] = (char)rand_r(&seed);
		}
		n = vm_name_from_cmdline(buf, len, name, sizeof(name));
		if (n != strlen(name) || n >= sizeof(name))
			ok = 0;
	}
	CHECK(ok);
}

static void test_comm(void)
{
	char name[VM_NAME_MAX];

	CHECK_INT(vm_name_from_comm("qemu-kvm\n", 9, name, sizeof(name)), 8);
	CHECK_STR(name, "qemu-kvm");
	CHECK_INT(vm_name_from_comm("nonl", 4, name, sizeof(name)), 4);
	CHECK_STR(name, "nonl");
	CHECK_INT(vm_name_from_comm("\n", 1, name, sizeof(name)), 0);
	CHECK_INT(vm_name_from_comm(NULL, 0, name, sizeof(name)), 0);
}

static void test_starttime(void)
{
	static const char line[] =
		"42 (we ird) comm)) R 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 "
		"20 0 1 0 987654321 1 1 18446744073709551615\n";
	unsigned long long st = 0;

	CHECK_INT(proc_parse_starttime(line, sizeof(line) - 1, &st), 0);
	CHECK_INT(st, 987654321);
	CHECK(proc_parse_starttime("42 (x) R 1 2", 12, &st) < 0);
	CHECK(proc_parse_starttime("no paren", 8, &st) < 0);
	CHECK(proc_parse_starttime("", 0, &st) < 0);
}

static void test_proc_reader(void)
{
	char *root = fake_proc_new(), name[VM_NAME_MAX];
	unsigned long long st = 0;

	CHECK(root != NULL);
	if (!root)
		return;
	CHECK_INT(fake_proc_add(root, 100, ARGV("qemu\0-name\0guest=vm1\0"),
				"qemu-kvm", 5000), 0);
	CHECK_INT(fake_proc_add(root, 200, ARGV("qemu\0-m\0001\0"),
				"CPU 0/KVM", 6000), 0);
	CHECK_INT(fake_proc_add(root, 300, "", 0, NULL, 7000), 0);

	CHECK_INT(vm_name_read(root, 100, name, sizeof(name)), VM_NAME_QEMU);
	CHECK_STR(name, "vm1");
	CHECK_INT(vm_name_read(root, 200, name, sizeof(name)), VM_NAME_COMM);
	CHECK_STR(name, "CPU 0/KVM");
	CHECK_INT(vm_name_read(root, 300, name, sizeof(name)),
		  VM_NAME_UNKNOWN);
	CHECK_STR(name, "unknown");
	CHECK_INT(vm_name_read(root, 999, name, sizeof(name)),
		  VM_NAME_UNKNOWN);
	CHECK_STR(name, "unknown");

	CHECK_INT(proc_pid_starttime(root, 100, &st), 0);
	CHECK_INT(st, 5000);
	CHECK_INT(proc_pid_starttime(root, 999, &st), -ENOENT);
	fake_proc_free(root);
}

/* What the BPF side kept (struct vm_name): its -name value, else comm. */
static void test_from_kernel(void)
{
	struct vm_name kn;
	char name[VM_NAME_MAX];

	memset(&kn, 0, sizeof(kn));
	memcpy(kn.comm, "qemu-system-x86", 15);
	snprintf(kn.name_opt, sizeof(kn.name_opt), "guest=a,,b,debug-threads=on");
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_QEMU);
	CHECK_STR(name, "a,b");
	snprintf(kn.name_opt, sizeof(kn.name_opt), "plain,process=x");
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_QEMU);
	CHECK_STR(name, "plain");
	/* no guest in it (a flag, or guest=""): the comm */
	snprintf(kn.name_opt, sizeof(kn.name_opt), "process=x");
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_COMM);
	CHECK_STR(name, "qemu-system-x86");
	snprintf(kn.name_opt, sizeof(kn.name_opt), "guest=");
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_COMM);
	/* fields filled to the last byte, no NUL: read to their end only */
	memset(kn.comm, 'c', sizeof(kn.comm));
	memset(kn.name_opt, 'n', sizeof(kn.name_opt));
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_QEMU);
	CHECK_INT(strlen(name), VM_NAME_MAX - 1);
	memset(kn.name_opt, 0, sizeof(kn.name_opt));
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_COMM);
	CHECK_INT(strlen(name), TASK_COMM_LEN);
	memset(&kn, 0, sizeof(kn));
	CHECK_INT(vm_name_from_kernel(&kn, name, sizeof(name)), VM_NAME_UNKNOWN);
	CHECK_STR(name, "");
}

UNIT_SUITE(vm_names)
{
	test_qemu_forms();
	test_qemu_escaping();
	test_qemu_merging();
	test_not_names();
	test_truncation();
	test_fuzz();
	test_comm();
	test_from_kernel();
	test_starttime();
	test_proc_reader();
}
