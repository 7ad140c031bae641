// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* VM lifecycle and name cache (see vm_table.h for the scrape order). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* POSIX calls (open, strdup) under -std=c11 */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include "vm_table.h"

/* Descriptors left to the rest of the process: half the soft limit. */
static size_t pidfd_budget(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return COLLECT_MAX_VMS;
	return rl.rlim_cur / 2;
}

int vm_table_init(struct vm_table *t, const char *proc_root)
{
	memset(t, 0, sizeof(*t));
	t->proc_root = strdup(proc_root ? proc_root : "/proc");
	if (!t->proc_root)
		return -ENOMEM;
	t->use_pidfds = !strcmp(t->proc_root, "/proc");
	t->max_pidfds = pidfd_budget();
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static void pidfd_drop(struct vm_table *t, struct vm_entry *e)
{
	if (e->pidfd < 0)
		return;
	close(e->pidfd);
	e->pidfd = -1;
	t->nr_pidfds--;
}

/*
 * Before e's /proc reads: a pidfd then refers to the process read, or to
 * one that exited before the read (it polls readable at the next check,
 * which then reads /proc).  No pidfd (none left in the budget, ESRCH, a
 * kernel before 5.3): e is checked in /proc each scrape.
 */
static void pidfd_take(struct vm_table *t, struct vm_entry *e)
{
	pidfd_drop(t, e);
	if (!t->use_pidfds || t->nr_pidfds >= t->max_pidfds)
		return;
	e->pidfd = pidfd_open((pid_t)e->tgid, 0);
	if (e->pidfd >= 0)
		t->nr_pidfds++;
}

static int read_starttime(struct vm_table *t, __u32 tgid,
			  unsigned long long *start)
{
	t->stat_reads++;
	return proc_pid_starttime(t->proc_root, tgid, start);
}

void vm_table_free(struct vm_table *t)
{
	size_t i;

	if (t->proc_root)
		pthread_mutex_destroy(&t->lock);
	for (i = 0; i < t->nr; i++)
		pidfd_drop(t, &t->v[i]);
	free(t->polls);
	free(t->proc_root);
	free(t->v);
	free(t->series);
	free(t->kvm_series);
	memset(t, 0, sizeof(*t));
}

void vm_table_set_max(struct vm_table *t, size_t max_vms)
{
	t->max_vms = max_vms;
}

unsigned long long vm_table_folded_total(const struct vm_table *t)
{
	return t->folded_total;
}

/* a += b for KVM's counters; gauges are not summed over time. */
static void kvm_counters_add(struct kvm_vm_kstats *a,
			     const struct kvm_vm_kstats *b)
{
	int i;

	for (i = 0; i < KVM_STAT_NR; i++)
		if (!kvm_stat_descs[i].gauge)
			a->val[i] += b->val[i];
}

/* A folded VM leaves the table: its last counts stay in "other". */
static void fold_keep(struct vm_table *t, const struct vm_entry *e)
{
	vm_guests_add(&t->fold_base, &e->last);
	kvm_counters_add(&t->kvm_fold_base, &e->kvm_last);
}

size_t vm_table_size(const struct vm_table *t)
{
	return t->nr;
}

static struct vm_entry *find(const struct vm_table *t, __u32 tgid)
{
	size_t lo = 0, hi = t->nr, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (t->v[mid].tgid == tgid)
			return &t->v[mid];
		if (t->v[mid].tgid < tgid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct vm_entry *vm_table_find(const struct vm_table *t, __u32 tgid)
{
	return find(t, tgid);
}

void vm_table_set_names(struct vm_table *t, const struct map_reader *names)
{
	pthread_mutex_lock(&t->lock);
	t->names = names;
	pthread_mutex_unlock(&t->lock);
}

/* tgid's entry in vm_names into kn: false if there is none (or no map). */
static bool names_lookup(struct vm_table *t, __u32 tgid, struct vm_name *kn)
{
	if (!t->names || !t->names->lookup)
		return false;
	return t->names->lookup(t->names, &tgid, kn) == 0;
}

/*
 * Name e: from vm_names if the BPF side read its argv, else from /proc;
 * if /proc has no name either (the process is gone), from the map after
 * all, which may have had no entry at the first look only because the
 * BPF side was writing it (it finishes before the process can exit).
 */
static void name_new(struct vm_table *t, struct vm_entry *e)
{
	struct vm_name kn;
	bool have = names_lookup(t, e->tgid, &kn);

	if (have && kn.args_len &&
	    vm_name_from_kernel(&kn, e->name, sizeof(e->name)) !=
	    VM_NAME_UNKNOWN)
		return;
	if (vm_name_read(t->proc_root, e->tgid, e->name, sizeof(e->name)) !=
	    VM_NAME_UNKNOWN)
		return;
	if ((have || names_lookup(t, e->tgid, &kn)) &&
	    vm_name_from_kernel(&kn, e->name, sizeof(e->name)) ==
	    VM_NAME_UNKNOWN)
		snprintf(e->name, sizeof(e->name), "unknown");
}

/* e's process by /proc: gone (reap), another one now (stale), or the same. */
static void check_proc(struct vm_table *t, struct vm_entry *e)
{
	unsigned long long start;
	int err;

	err = read_starttime(t, e->tgid, &start);
	if (err == -ENOENT) {
		e->reap = true;
	} else if (!err && start != e->start_time) {
		/* another process has this pid now: name it again */
		e->stale = true;
	}
	/* other errors (EACCES...): no news, keep the entry as is */
}

/*
 * The array arr of *cap elements of size bytes with room for n: arr as it
 * is, or grown (never shrunk, so a scrape of as many VMs as the last one
 * allocates nothing); NULL if it cannot grow, arr then left as it was.
 */
static void *reserve(void *arr, size_t *cap, size_t n, size_t size)
{
	void *grown;

	if (n <= *cap)
		return arr;
	if (n > SIZE_MAX / size)
		return NULL;
	grown = realloc(arr, n * size);
	if (grown)
		*cap = n;
	return grown;
}

void vm_table_check(struct vm_table *t)
{
	struct vm_entry *e;
	struct pollfd *polls = NULL;
	size_t i, j = 0, n = 0;

	pthread_mutex_lock(&t->lock);
	if (t->nr_pidfds)
		polls = reserve(t->polls, &t->cap_polls, t->nr_pidfds,
				sizeof(*polls));
	if (polls) {
		t->polls = polls;
		for (i = 0; i < t->nr; i++)
			if (t->v[i].pidfd >= 0)
				t->polls[n++] = (struct pollfd){
					.fd = t->v[i].pidfd, .events = POLLIN,
				};
		/* poll failed: every VM is checked in /proc */
		if (poll(t->polls, n, 0) < 0)
			n = 0;
	}
	for (i = 0; i < t->nr; i++) {
		e = &t->v[i];
		/* the polls are in table order */
		if (j < n && e->pidfd == t->polls[j].fd) {
			if (!t->polls[j++].revents)
				continue;	/* not exited: the same process */
			/*
			 * It exited: gone, a zombie, or its pid reused.  /proc
			 * says which, now and at each scrape until it is gone.
			 */
			pidfd_drop(t, e);
		}
		check_proc(t, e);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Read start time and name of a tgid not cached (or reused). */
static void identify(struct vm_table *t, struct vm_entry *e)
{
	pidfd_take(t, e);
	if (read_starttime(t, e->tgid, &e->start_time))
		e->start_time = 0;
	if (e->stale)	/* the map's name is the old process' */
		vm_name_read(t->proc_root, e->tgid, e->name, sizeof(e->name));
	else
		name_new(t, e);
	e->stale = false;
}

/*
 * VMs the map no longer holds (deleted behind our back, not reaped): a
 * folded one's last counts stay in "other"; their pidfds are closed.
 */
static void forget_vanished(struct vm_table *t, const struct snapshot *s)
{
	size_t i;

	for (i = 0; i < t->nr; i++) {
		if (snapshot_find(s, t->v[i].tgid) >= 0)
			continue;
		if (t->v[i].folded)
			fold_keep(t, &t->v[i]);
		pidfd_drop(t, &t->v[i]);
	}
}

/* The table from s: new tgids named and placed or folded, gone ones dropped. */
static int sync_entries(struct vm_table *t, const struct snapshot *s)
{
	struct vm_entry *nv, *old;
	size_t i, n = s->nr_vms, own = 0;

	nv = calloc(n ? n : 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	/* s->vms is sorted, so the new table is too */
	for (i = 0; i < n; i++) {
		old = find(t, s->vms[i].tgid);
		if (old) {
			nv[i] = *old;
			if (nv[i].stale)
				identify(t, &nv[i]);
			own += !nv[i].folded;
		} else {
			nv[i].tgid = 0;	/* new: placed below */
			nv[i].pidfd = -1;
		}
	}
	/* New VMs, in tgid order, take the places left; the rest fold. */
	for (i = 0; i < n; i++) {
		if (nv[i].tgid)
			continue;
		nv[i].tgid = s->vms[i].tgid;
		identify(t, &nv[i]);
		if (t->max_vms && own >= t->max_vms) {
			nv[i].folded = true;
			t->fold_seen = true;
			t->folded_total++;
		} else {
			own++;
		}
	}
	forget_vanished(t, s);
	t->other = t->fold_base;
	for (i = 0; i < n; i++) {
		if (!nv[i].folded)
			continue;
		nv[i].last = s->vms[i].stats;
		vm_guests_add(&t->other, &nv[i].last);
	}
	free(t->v);
	t->v = nv;
	t->nr = t->cap = n;
	return 0;
}

int vm_table_series(struct vm_table *t, const struct snapshot *s,
		    const struct vm_series **series, size_t *nr)
{
	struct vm_series *room;
	size_t i, n = 0;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	/* the snapshot's VMs and "other" */
	room = reserve(t->series, &t->cap_series, s->nr_vms + 1,
		       sizeof(*room));
	if (room)
		t->series = room;
	else
		err = -ENOMEM;
	if (!err)
		err = sync_entries(t, s);
	if (err) {
		pthread_mutex_unlock(&t->lock);
		return err;
	}
	/* sync_entries() left t->v parallel to s->vms */
	for (i = 0; i < t->nr; i++) {
		if (t->v[i].folded)
			continue;
		t->series[n++] = (struct vm_series){
			.name = t->v[i].name,
			.pid = t->v[i].tgid,
			.stats = &s->vms[i].stats,
		};
	}
	if (t->fold_seen)
		t->series[n++] = (struct vm_series){
			.name = "other",
			.pid = 0,
			.stats = &t->other,
		};
	*series = t->series;
	*nr = n;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static int reserve_kvm_series(struct vm_table *t, size_t n)
{
	struct vm_kvm_series *p;

	if (n <= t->cap_kvm_series)
		return 0;
	p = realloc(t->kvm_series, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	t->kvm_series = p;
	t->cap_kvm_series = n;
	return 0;
}

int vm_table_kvm_series(struct vm_table *t, const struct kvm_vm_kstats *k,
			int nk, const struct vm_kvm_series **series,
			size_t *nr)
{
	const struct kvm_vm_kstats *kv;
	struct vm_entry *e;
	size_t i, n = 0;
	int j = 0, g;

	pthread_mutex_lock(&t->lock);
	if (reserve_kvm_series(t, t->nr + 1)) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	t->kvm_other = t->kvm_fold_base;
	for (i = 0; i < t->nr; i++) {
		e = &t->v[i];
		/* both sorted: t->v by tgid, k by pid */
		while (j < nk && k[j].pid < e->tgid)
			j++;
		kv = j < nk && k[j].pid == e->tgid ? &k[j] : NULL;
		if (!e->folded) {
			if (kv)
				t->kvm_series[n++] = (struct vm_kvm_series){
					.name = e->name, .pid = e->tgid,
					.kvm = kv,
				};
			continue;
		}
		if (kv) {
			e->kvm_last = *kv;
		} else {
			/* KVM has no such VM (any more): nothing is unsync */
			for (g = 0; g < KVM_STAT_NR; g++)
				if (kvm_stat_descs[g].gauge)
					e->kvm_last.val[g] = 0;
		}
		for (g = 0; g < KVM_STAT_NR; g++)
			t->kvm_other.val[g] += e->kvm_last.val[g];
	}
	if (t->fold_seen)
		t->kvm_series[n++] = (struct vm_kvm_series){
			.name = "other", .pid = 0, .kvm = &t->kvm_other,
		};
	*series = t->kvm_series;
	*nr = n;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* The reaped tgid's name: 0 if deleted or not there, else -errno. */
static int names_del(struct vm_table *t, __u32 tgid)
{
	int err;

	if (!t->names || !t->names->del)
		return 0;
	err = t->names->del(t->names, &tgid);
	return err == -ENOENT ? 0 : err;
}

int vm_table_reap(struct vm_table *t, const struct map_reader *vm_stats)
{
	size_t i, kept = 0;
	int err, first_err = 0, deleted = 0;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->nr; i++) {
		if (t->v[i].reap) {
			err = vm_stats->del ?
			      vm_stats->del(vm_stats, &t->v[i].tgid) :
			      -EOPNOTSUPP;
			if (!err || err == -ENOENT) {
				err = names_del(t, t->v[i].tgid);
				if (err && !first_err)
					first_err = err;
				if (t->v[i].folded)
					fold_keep(t, &t->v[i]);
				pidfd_drop(t, &t->v[i]);
				deleted++;
				continue;
			}
			if (!first_err)
				first_err = err;
		}
		t->v[kept++] = t->v[i];
	}
	/* entries moved: the series handed out point at the old places */
	t->nr = kept;
	pthread_mutex_unlock(&t->lock);
	return first_err ? first_err : deleted;
}
