// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The VMs a --record run has seen (live_seen.h). */
#include <stdlib.h>
#include <string.h>
#include "live_seen.h"

struct seen_vm *seen_find(struct seen_vms *s, __u32 pid)
{
	struct seen_vm *n;
	int i;

	for (i = 0; i < s->nr; i++)
		if (s->v[i].rv.pid == pid)
			return &s->v[i];
	if (s->nr == s->cap) {
		n = realloc(s->v, (s->cap * 2 + 16) * sizeof(*n));
		if (!n)
			return NULL;
		s->v = n;
		s->cap = s->cap * 2 + 16;
	}
	n = &s->v[s->nr++];
	memset(n, 0, sizeof(*n));
	n->rv.pid = pid;
	return n;
}

void seen_update(struct seen_vm *sv, const struct top_vm *row, bool first)
{
	if (first)
		sv->base = row->st;
	sv->last = row->st;
	memcpy(sv->rv.name, row->name, sizeof(sv->rv.name));
	/*
	 * KVM's stats as last read while the VM lived: a VMM that destroyed
	 * its VM but is still in the maps keeps them.  They are its figures
	 * at the end: kvm_destroy_vm() removes the debugfs directory before
	 * it zaps a page.
	 */
	if (row->has_kvm) {
		sv->rv.has_kvm = true;
		sv->rv.kvm = row->kvm;
	}
}

void seen_free(struct seen_vms *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
