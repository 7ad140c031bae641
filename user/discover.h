/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What the running kernel has: BTF, KVM, the walk's functions and types. */
#ifndef __DISCOVER_H
#define __DISCOVER_H

#include <stdbool.h>
#include <stddef.h>

struct btf;

struct kernel_view {
	struct btf *vmlinux;	/* /sys/kernel/btf/vmlinux */
	struct btf *kvm;	/* /sys/kernel/btf/kvm when KVM is a module */
	bool kvm_present;	/* struct kvm_mmu_page in either */
	char release[65];
	char *ksyms;		/* /proc/kallsyms, read once */
};

/* Where a function can be found, and under which symbol. */
struct func_info {
	bool in_btf;		/* FUNC in vmlinux or kvm module BTF */
	bool in_kallsyms;	/* exact name in kallsyms */
	char clone[128];	/* a compiler clone (name.isra.0 ...) if only that */
};

int kernel_view_open(struct kernel_view *kv, char *err, size_t errlen);
void kernel_view_close(struct kernel_view *kv);

void func_lookup(const struct kernel_view *kv, const char *name,
		 struct func_info *fi);
bool kernel_has_type(const struct kernel_view *kv, const char *name);

/* "stock", "patched" or "unknown", with a human reason. */
const char *detect_variant(const struct kernel_view *kv, char *why,
			   size_t whylen);

/* kallsyms text: find `name` (exact) or a clone `name.<suffix>`. Exposed
 * for tests. */
void kallsyms_scan(const char *text, const char *name, bool *exact,
		   char *clone, size_t clonelen);

#endif /* __DISCOVER_H */
