// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Test doubles: in-memory per-CPU map, fake /proc tree (see fake.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* mkdtemp, nftw */
#endif
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fake.h"
#include "kvm_stats.h"

void fake_map_init(struct fake_map *m, size_t value_size, int ncpus)
{
	memset(m, 0, sizeof(*m));
	m->value_size = value_size;
	m->ncpus = ncpus;
}

void fake_map_free(struct fake_map *m)
{
	int i;

	for (i = 0; i < m->nr; i++)
		free(m->vals[i]);
	m->nr = 0;
}

static int find(const struct fake_map *m, __u32 key)
{
	int i;

	for (i = 0; i < m->nr; i++)
		if (m->keys[i] == key)
			return i;
	return -1;
}

int fake_map_has(const struct fake_map *m, __u32 key)
{
	return find(m, key) >= 0;
}

static void remove_at(struct fake_map *m, int i)
{
	free(m->vals[i]);
	memmove(&m->keys[i], &m->keys[i + 1],
		(size_t)(m->nr - i - 1) * sizeof(m->keys[0]));
	memmove(&m->vals[i], &m->vals[i + 1],
		(size_t)(m->nr - i - 1) * sizeof(m->vals[0]));
	m->nr--;
}

void *fake_map_value(struct fake_map *m, __u32 key, int cpu)
{
	size_t stride = percpu_stride(m->value_size);
	int i = find(m, key);

	if (i < 0) {
		if (m->nr == FAKE_MAX_KEYS)
			return NULL;
		i = m->nr++;
		m->keys[i] = key;
		m->vals[i] = calloc((size_t)m->ncpus, stride);
	}
	return m->vals[i] + (size_t)cpu * stride;
}

static int next_key(const struct map_reader *r, const __u32 *key, __u32 *next)
{
	struct fake_map *m = r->priv;
	int i;

	if (m->next_key_err)
		return m->next_key_err;
	i = key ? find(m, *key) : -1;
	i = i < 0 ? 0 : i + 1;	/* a missing key restarts, as in the kernel */
	if (i >= m->nr)
		return -ENOENT;
	*next = m->keys[i];
	return 0;
}

static int lookup(const struct map_reader *r, const __u32 *key, void *values)
{
	struct fake_map *m = r->priv;
	int i = find(m, *key);

	m->lookups++;
	if (m->lookup_err)
		return m->lookup_err;
	if (i >= 0 && m->vanish_key && *key == m->vanish_key) {
		remove_at(m, i);	/* deleted between next_key and lookup */
		return -ENOENT;
	}
	if (i < 0)
		return -ENOENT;
	memcpy(values, m->vals[i],
	       (size_t)m->ncpus * percpu_stride(m->value_size));
	return 0;
}

static int del(const struct map_reader *r, const __u32 *key)
{
	struct fake_map *m = r->priv;
	int i = find(m, *key);

	if (i < 0)
		return -ENOENT;
	remove_at(m, i);
	m->deletes++;
	return 0;
}

void fake_map_reader(struct fake_map *m, struct map_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->next_key = next_key;
	r->lookup = lookup;
	r->del = del;
	r->fd = -1;
	r->priv = m;
}

/* As the kernel's hash map: -ENOENT with the last entries, if any. */
static int lookup_batch(const struct map_reader *r, const __u32 *token,
			__u32 *next, __u32 *keys, void *values, __u32 *count)
{
	struct fake_map *m = r->priv;
	size_t size;
	__u32 i = token ? *token : 0, n = 0, room = *count;

	m->batches++;
	size = (size_t)m->ncpus * percpu_stride(m->value_size);
	*count = 0;
	if (m->batch_err)
		return m->batch_err;
	if (room < m->batch_need)
		return -ENOSPC;
	if (m->batch_max && room > m->batch_max)
		room = m->batch_max;
	for (; i < (__u32)m->nr && n < room; i++, n++) {
		keys[n] = m->keys[i];
		memcpy((unsigned char *)values + n * size, m->vals[i], size);
	}
	*count = n;
	*next = i;
	return i < (__u32)m->nr ? 0 : -ENOENT;
}

void fake_map_batch_reader(struct fake_map *m, struct map_reader *r)
{
	fake_map_reader(m, r);
	r->lookup_batch = lookup_batch;
}

char *fake_proc_new(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/unit-proc.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(path))
		return NULL;
	return strdup(path);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void fake_proc_free(char *root)
{
	if (root)
		nftw(root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(root);
}

static int write_file(const char *dir, const char *name, const char *data,
		      size_t len)
{
	char path[PATH_MAX];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

int fake_proc_add(const char *root, __u32 pid, const char *cmdline,
		  size_t len, const char *comm, unsigned long long start)
{
	char dir[PATH_MAX], stat[512];
	int err;

	snprintf(dir, sizeof(dir), "%s/%u", root, pid);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	/* the real layout: comm in parentheses, starttime is field 22 */
	snprintf(stat, sizeof(stat),
		 "%u (%s) S 1 %u %u 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 "
		 "%llu 1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 "
		 "0 0 17 1 0 0 0 0 0\n", pid, comm ? comm : "", pid, pid,
		 start);
	err = write_file(dir, "cmdline", cmdline ? cmdline : "", len);
	if (!err && comm) {
		char c[64];

		snprintf(c, sizeof(c), "%s\n", comm);
		err = write_file(dir, "comm", c, strlen(c));
	}
	if (!err)
		err = write_file(dir, "stat", stat, strlen(stat));
	return err;
}

void fake_proc_del(const char *root, __u32 pid)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%u", root, pid);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int fake_kvm_vm_add(const char *root, const char *name, const __u64 *val)
{
	char dir[PATH_MAX], text[32];
	int i, err;

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	for (i = 0; i < KVM_STAT_NR; i++) {
		snprintf(text, sizeof(text), "%llu\n",
			 (unsigned long long)val[i]);
		err = write_file(dir, kvm_stat_descs[i].name, text,
				 strlen(text));
		if (err)
			return err;
	}
	/* a vCPU directory, as KVM makes one per vCPU: not a VM */
	snprintf(dir, sizeof(dir), "%s/%s/vcpu0", root, name);
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

void fake_kvm_vm_del(const char *root, const char *name)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%s", root, name);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
