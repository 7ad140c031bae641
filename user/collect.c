// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Read the per-CPU maps into a snapshot (see collect.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "collect.h"

/* percpu_sum_u64() treats every map value as an array of __u64. */
_Static_assert(sizeof(struct vm_stats) % sizeof(__u64) == 0, "vm_stats");
_Static_assert(sizeof(struct vm_guests) == GUEST_MAX * sizeof(struct vm_stats),
	       "vm_guests");
_Static_assert(sizeof(struct hists) % sizeof(__u64) == 0, "hists");
_Static_assert(sizeof(struct self_stats) % sizeof(__u64) == 0, "self_stats");

void snapshot_init(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
}

void snapshot_free(struct snapshot *s)
{
	free(s->vms);
	snapshot_init(s);
}

void snapshot_reset(struct snapshot *s)
{
	s->nr_vms = 0;
	memset(&s->hists, 0, sizeof(s->hists));
	memset(&s->self, 0, sizeof(s->self));
}

int snapshot_add_vm(struct snapshot *s, __u32 tgid,
		    const struct vm_guests *stats)
{
	struct vm_sample *v;
	size_t cap;

	if (s->nr_vms == s->cap_vms) {
		cap = s->cap_vms ? s->cap_vms * 2 : 16;
		v = realloc(s->vms, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->vms = v;
		s->cap_vms = cap;
	}
	v = &s->vms[s->nr_vms++];
	v->tgid = tgid;
	v->stats = *stats;
	return 0;
}

/* a += b over n __u64 counters: counters wrap as in the kernel. */
static void u64s_add(__u64 *a, const __u64 *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		a[i] += b[i];
}

void vm_guests_add(struct vm_guests *a, const struct vm_guests *b)
{
	u64s_add((__u64 *)a, (const __u64 *)b, sizeof(*a) / sizeof(__u64));
}

void vm_guests_total(struct vm_stats *out, const struct vm_guests *g)
{
	int i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < GUEST_MAX; i++)
		u64s_add((__u64 *)out, (const __u64 *)&g->guest[i],
			 sizeof(*out) / sizeof(__u64));
}

bool vm_stats_zero(const struct vm_stats *v)
{
	static const struct vm_stats zero;

	return !memcmp(v, &zero, sizeof(zero));
}

static int cmp_tgid(const void *a, const void *b)
{
	const struct vm_sample *x = a, *y = b;

	return (x->tgid > y->tgid) - (x->tgid < y->tgid);
}

/*
 * A hash map walk can see a key twice: when the key we hold is deleted,
 * get_next_key starts over from the first key.  Sorting also gives the
 * renderer a stable order between scrapes.
 */
void snapshot_sort_dedup(struct snapshot *s)
{
	size_t i, n = 0;

	if (s->nr_vms < 2)
		return;
	qsort(s->vms, s->nr_vms, sizeof(*s->vms), cmp_tgid);
	for (i = 1; i < s->nr_vms; i++) {
		if (s->vms[i].tgid == s->vms[n].tgid)
			s->vms[n] = s->vms[i];
		else
			s->vms[++n] = s->vms[i];
	}
	s->nr_vms = n + 1;
}

long snapshot_find(const struct snapshot *s, __u32 tgid)
{
	size_t lo = 0, hi = s->nr_vms, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->vms[mid].tgid == tgid)
			return (long)mid;
		if (s->vms[mid].tgid < tgid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

size_t percpu_stride(size_t value_size)
{
	return (value_size + 7) & ~(size_t)7;
}

void percpu_sum_u64(void *out, const void *percpu, size_t value_size,
		    int ncpus)
{
	size_t stride = percpu_stride(value_size);
	size_t nfields = value_size / sizeof(__u64), f;
	const unsigned char *cpu = percpu;
	__u64 *sum = out, v;
	int c;

	memset(out, 0, value_size);
	for (c = 0; c < ncpus; c++, cpu += stride) {
		for (f = 0; f < nfields; f++) {
			/* memcpy: the caller's buffer need not be aligned */
			memcpy(&v, cpu + f * sizeof(v), sizeof(v));
			sum[f] += v;
		}
	}
}

/* libbpf >= 1.0 returns -errno directly from the low-level map calls. */
static int bpf_next_key(const struct map_reader *m, const __u32 *key,
			__u32 *next)
{
	return bpf_map_get_next_key(m->fd, key, next);
}

static int bpf_lookup(const struct map_reader *m, const __u32 *key,
		      void *values)
{
	return bpf_map_lookup_elem(m->fd, key, values);
}

static int bpf_del(const struct map_reader *m, const __u32 *key)
{
	return bpf_map_delete_elem(m->fd, key);
}

static int bpf_lookup_batch(const struct map_reader *m, const __u32 *token,
			    __u32 *next, __u32 *keys, void *values,
			    __u32 *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);

	/* a hash map's batch token is a __u32 bucket index */
	return bpf_map_lookup_batch(m->fd, (void *)token, next, keys, values,
				    count, &opts);
}

void map_reader_bpf(struct map_reader *m, int fd)
{
	memset(m, 0, sizeof(*m));
	m->next_key = bpf_next_key;
	m->lookup = bpf_lookup;
	m->del = bpf_del;
	m->lookup_batch = bpf_lookup_batch;
	m->fd = fd;
}

int collect_src_bpf(struct collect_src *src, int vm_stats_fd, int hists_fd,
		    int self_stats_fd)
{
	int ncpus = libbpf_num_possible_cpus();

	if (ncpus <= 0)
		return ncpus < 0 ? ncpus : -EINVAL;
	map_reader_bpf(&src->vm_stats, vm_stats_fd);
	map_reader_bpf(&src->hists, hists_fd);
	map_reader_bpf(&src->self_stats, self_stats_fd);
	src->ncpus = ncpus;
	return 0;
}

/*
 * A batch is at most BATCH_BYTES of per-CPU values: 113 VMs on 2 CPUs, one
 * on a host with more than 227.  -ENOSPC (a hash bucket fuller than the
 * batch) grows it up to BATCH_MAX entries.
 */
#define BATCH_BYTES	(64 * 1024)
#define BATCH_MAX	4096u

static int collect_vms_batch(struct snapshot *s, const struct map_reader *m,
			     int ncpus)
{
	size_t entry = (size_t)ncpus * percpu_stride(sizeof(struct vm_guests));
	__u32 want = BATCH_BYTES / entry, n, i, token, next, *keys = NULL;
	unsigned char *vals = NULL;
	const __u32 *in = NULL;
	struct vm_guests sum;
	size_t calls = 0;
	int err;

	want = want ? (want < BATCH_MAX ? want : BATCH_MAX) : 1;
	for (;;) {
		if (!keys) {
			keys = calloc(want, sizeof(*keys));
			vals = calloc(want, entry);
			if (!keys || !vals) {
				err = -ENOMEM;
				break;
			}
		}
		n = want;
		err = m->lookup_batch(m, in, &next, keys, vals, &n);
		if (err == -ENOSPC && want < BATCH_MAX) {
			want = want * 2 < BATCH_MAX ? want * 2 : BATCH_MAX;
			free(keys);
			free(vals);
			keys = NULL;
			vals = NULL;
			continue;
		}
		if (err && err != -ENOENT)
			break;
		for (i = 0; i < n && i < want; i++) {
			percpu_sum_u64(&sum, vals + i * entry, sizeof(sum), ncpus);
			if (snapshot_add_vm(s, keys[i], &sum)) {
				err = -ENOMEM;
				goto out;
			}
		}
		if (err == -ENOENT) {
			err = 0;	/* the end of the map */
			break;
		}
		/* a map never holds more: do not let a bad token spin */
		if (s->nr_vms > COLLECT_MAX_VMS || ++calls > COLLECT_MAX_VMS) {
			err = -E2BIG;
			break;
		}
		token = next;
		in = &token;
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int collect_vms_by_key(struct snapshot *s, const struct map_reader *m,
			      int ncpus, void *buf)
{
	__u32 key = 0, next;
	const __u32 *prev = NULL;
	struct vm_guests sum;
	size_t seen = 0;
	int err;

	for (;;) {
		err = m->next_key(m, prev, &next);
		if (err == -ENOENT)
			return 0;	/* end of the map */
		if (err)
			return err;
		/* deletions restart the walk; do not let that spin */
		if (++seen > COLLECT_MAX_VMS)
			return -E2BIG;
		key = next;
		prev = &key;
		err = m->lookup(m, &key, buf);
		if (err == -ENOENT)
			continue;	/* deleted since next_key: skip */
		if (err)
			return err;
		percpu_sum_u64(&sum, buf, sizeof(sum), ncpus);
		err = snapshot_add_vm(s, key, &sum);
		if (err)
			return err;
	}
}

static int collect_vms(struct snapshot *s, const struct map_reader *m,
		       int ncpus, void *buf)
{
	int err = -EOPNOTSUPP;

	if (m->lookup_batch) {
		err = collect_vms_batch(s, m, ncpus);
		if (err && err != -ENOMEM && err != -E2BIG) {
			/*
			 * No batch reads of this map (a kernel before 5.6,
			 * or one that refuses them): key by key, from the
			 * start.
			 */
			s->nr_vms = 0;
			err = -EOPNOTSUPP;
		}
	}
	if (err == -EOPNOTSUPP)
		err = collect_vms_by_key(s, m, ncpus, buf);
	if (err)
		return err;
	snapshot_sort_dedup(s);
	return 0;
}

/* A one-entry per-CPU array: key 0, summed into out. */
static int collect_array(void *out, size_t value_size,
			 const struct map_reader *m, int ncpus, void *buf)
{
	__u32 key = 0;
	int err;

	err = m->lookup(m, &key, buf);
	if (err)
		return err;
	percpu_sum_u64(out, buf, value_size, ncpus);
	return 0;
}

static size_t max_value_size(void)
{
	size_t n = sizeof(struct vm_guests);

	if (sizeof(struct hists) > n)
		n = sizeof(struct hists);
	if (sizeof(struct self_stats) > n)
		n = sizeof(struct self_stats);
	return n;
}

int collect_from(struct snapshot *s, const struct collect_src *src)
{
	void *buf;
	int err;

	snapshot_reset(s);
	if (src->ncpus <= 0)
		return -EINVAL;
	buf = calloc((size_t)src->ncpus, percpu_stride(max_value_size()));
	if (!buf)
		return -ENOMEM;
	err = collect_vms(s, &src->vm_stats, src->ncpus, buf);
	if (!err)
		err = collect_array(&s->hists, sizeof(s->hists), &src->hists,
				    src->ncpus, buf);
	if (!err)
		err = collect_array(&s->self, sizeof(s->self),
				    &src->self_stats, src->ncpus, buf);
	free(buf);
	return err;
}

int collect_snapshot(struct snapshot *s, int vm_stats_fd, int hists_fd,
		     int self_stats_fd)
{
	struct collect_src src;
	int err;

	err = collect_src_bpf(&src, vm_stats_fd, hists_fd, self_stats_fd);
	if (err)
		return err;
	return collect_from(s, &src);
}
