/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Test doubles: a per-CPU map in memory behind struct map_reader, and a
 * fake /proc tree in a temporary directory.
 */
#ifndef __UNIT_FAKE_H
#define __UNIT_FAKE_H

#include <stddef.h>
#include <linux/types.h>
#include "collect.h"

#define FAKE_MAX_KEYS	64

/*
 * Keys in insertion order.  next_key behaves like the kernel's hash map:
 * NULL or a missing key starts over at the first key.
 */
struct fake_map {
	__u32 keys[FAKE_MAX_KEYS];
	unsigned char *vals[FAKE_MAX_KEYS];	/* ncpus * stride bytes */
	int nr;
	size_t value_size;
	int ncpus;
	__u32 vanish_key;	/* lookup of this key deletes it: -ENOENT */
	int lookup_err;		/* if set, every lookup fails with it */
	int next_key_err;	/* if set, next_key fails with it */
	int deletes;		/* successful del calls */
	int lookups;		/* lookup calls */
	/* lookup_batch, with fake_map_batch_reader(): token = key index */
	int batches;		/* lookup_batch calls */
	__u32 batch_max;	/* most entries one call fills (0: *count) */
	__u32 batch_need;	/* -ENOSPC while *count is below it */
	int batch_err;		/* if set, every lookup_batch fails with it */
};

void fake_map_init(struct fake_map *m, size_t value_size, int ncpus);
void fake_map_free(struct fake_map *m);
/* The value of key on cpu (created zeroed on first use). */
void *fake_map_value(struct fake_map *m, __u32 key, int cpu);
int fake_map_has(const struct fake_map *m, __u32 key);
void fake_map_reader(struct fake_map *m, struct map_reader *r);
/* fake_map_reader() with lookup_batch, as the libbpf reader has. */
void fake_map_batch_reader(struct fake_map *m, struct map_reader *r);

/* A temporary directory standing for /proc; NULL on failure. */
char *fake_proc_new(void);
void fake_proc_free(char *root);	/* removes the whole tree */
/* root/PID/{cmdline,comm,stat}; cmdline is len bytes (NULs inside). */
int fake_proc_add(const char *root, __u32 pid, const char *cmdline,
		  size_t len, const char *comm, unsigned long long start);
void fake_proc_del(const char *root, __u32 pid);

/*
 * A VM under a fake /sys/kernel/debug/kvm (a fake_proc_new() directory):
 * root/NAME ("PID-FD") with one file per kvm_stat_descs[] stat holding
 * val[i], and a vcpu0 directory as KVM makes.  0 or -errno.
 */
int fake_kvm_vm_add(const char *root, const char *name, const __u64 *val);
/* Remove root/NAME: KVM destroyed the VM. */
void fake_kvm_vm_del(const char *root, const char *name);

#endif /* __UNIT_FAKE_H */
