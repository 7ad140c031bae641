// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Start-up discovery: which of the walk's functions and types this kernel
 * has.  Inlining decides what can be hooked, and it differs between builds
 * (kernel.md), so nothing here is assumed from a version number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "discover.h"

#define VMLINUX_BTF	"/sys/kernel/btf/vmlinux"
#define KVM_BTF		"/sys/kernel/btf/kvm"

static char *read_text(const char *path)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap), *nbuf;
	FILE *f;
	size_t n;

	if (!buf)
		return NULL;
	f = fopen(path, "r");
	if (!f) {
		free(buf);
		return NULL;
	}
	/* /proc files have no size: grow until EOF. */
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			nbuf = realloc(buf, cap * 2);
			if (!nbuf) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nbuf;
			cap *= 2;
		}
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

int kernel_view_open(struct kernel_view *kv, char *err, size_t errlen)
{
	struct utsname u;

	memset(kv, 0, sizeof(*kv));
	if (uname(&u) == 0)
		snprintf(kv->release, sizeof(kv->release), "%s", u.release);

	if (access(VMLINUX_BTF, R_OK) != 0) {
		snprintf(err, errlen,
			 "kernel BTF not found at %s: the agent needs a kernel built with CONFIG_DEBUG_INFO_BTF=y",
			 VMLINUX_BTF);
		return -ENOENT;
	}
	kv->vmlinux = btf__parse(VMLINUX_BTF, NULL);
	if (!kv->vmlinux) {
		snprintf(err, errlen, "cannot parse %s: %s", VMLINUX_BTF,
			 strerror(errno));
		return -errno;
	}
	/* KVM as a module: its types are split BTF on top of vmlinux. */
	if (access(KVM_BTF, R_OK) == 0)
		kv->kvm = btf__parse_split(KVM_BTF, kv->vmlinux);

	kv->kvm_present = kernel_has_type(kv, "kvm_mmu_page");
	kv->ksyms = read_text("/proc/kallsyms");
	return 0;
}

void kernel_view_close(struct kernel_view *kv)
{
	btf__free(kv->kvm);
	btf__free(kv->vmlinux);
	free(kv->ksyms);
	memset(kv, 0, sizeof(*kv));
}

static bool btf_has(const struct btf *btf, const char *name, int kind)
{
	return btf && btf__find_by_name_kind(btf, name, kind) > 0;
}

bool kernel_has_type(const struct kernel_view *kv, const char *name)
{
	return btf_has(kv->vmlinux, name, BTF_KIND_STRUCT) ||
	       btf_has(kv->kvm, name, BTF_KIND_STRUCT);
}

/*
 * kallsyms lines are "ADDR TYPE NAME[\t[MODULE]]".  A static function the
 * compiler cloned shows up as NAME.isra.0, NAME.constprop.0, ...: its
 * arguments may have been rewritten, so a clone is reported, not used.
 */
void kallsyms_scan(const char *text, const char *name, bool *exact,
		   char *clone, size_t clonelen)
{
	size_t nlen = strlen(name);
	const char *line = text, *sym, *end;
	char type;

	*exact = false;
	if (clonelen)
		clone[0] = '\0';
	while (line && *line) {
		end = strchr(line, '\n');
		sym = strchr(line, ' ');
		if (sym && (!end || sym < end) && sym[1] && sym[2] == ' ') {
			type = sym[1];
			sym += 3;
			if ((type == 't' || type == 'T') &&
			    strncmp(sym, name, nlen) == 0) {
				char c = sym[nlen];

				if (c == '\n' || c == '\t' || c == ' ' || c == '\0') {
					*exact = true;
					return;
				}
				if (c == '.' && clonelen && !clone[0]) {
					size_t l = strcspn(sym, " \t\n");

					snprintf(clone, clonelen, "%.*s", (int)l, sym);
				}
			}
		}
		line = end ? end + 1 : NULL;
	}
}

void func_lookup(const struct kernel_view *kv, const char *name,
		 struct func_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	fi->in_btf = btf_has(kv->vmlinux, name, BTF_KIND_FUNC) ||
		     btf_has(kv->kvm, name, BTF_KIND_FUNC);
	if (kv->ksyms)
		kallsyms_scan(kv->ksyms, name, &fi->in_kallsyms, fi->clone,
			      sizeof(fi->clone));
}

/*
 * The series under review (kernel.md) removes mmu_pages_clear_parents()
 * and struct mmu_page_path, and renames the page vector to
 * struct kvm_mmu_page_vec.  Any of the stock markers means stock.
 */
const char *detect_variant(const struct kernel_view *kv, char *why,
			   size_t whylen)
{
	struct func_info cp;
	bool path, vec;

	func_lookup(kv, "mmu_pages_clear_parents", &cp);
	path = kernel_has_type(kv, "mmu_page_path");
	vec = kernel_has_type(kv, "kvm_mmu_page_vec");

	if (cp.in_btf || cp.in_kallsyms || cp.clone[0] || path) {
		snprintf(why, whylen, "has %s",
			 path ? "struct mmu_page_path" : "mmu_pages_clear_parents()");
		return "stock";
	}
	if (vec) {
		snprintf(why, whylen,
			 "has struct kvm_mmu_page_vec and no mmu_pages_clear_parents()");
		return "patched";
	}
	snprintf(why, whylen,
		 "neither mmu_pages_clear_parents()/struct mmu_page_path nor struct kvm_mmu_page_vec is visible");
	return "unknown";
}
