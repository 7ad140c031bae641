// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * KVM's per-VM MMU stats from debugfs (see kvm_stats.h for the layout).
 *
 * Read at scrape time, one short open/read/close per file: an open debugfs
 * stat file holds a reference on its struct kvm (kvm_debugfs_open() ->
 * kvm_get_kvm_safe()), so a file kept open would keep a dead VM alive and
 * make the agent the task that finally destroys it.
 *
 * mmu_unsync against the tracepoints (Debian's 6.1, arch/x86/kvm/mmu/mmu.c;
 * the patch series in tests/kernel/patches touches neither function):
 *
 *   kvm_unsync_page():          trace_kvm_mmu_unsync_page(sp);
 *                               ++kvm->stat.mmu_unsync;
 *   kvm_unlink_unsync_page():   trace_kvm_mmu_sync_page(sp);
 *                               --kvm->stat.mmu_unsync;
 *
 * These are the only two writers of stat.mmu_unsync (it is an ICOUNTER, so
 * its debugfs file is 0444 and cannot be cleared), and each sits next to its
 * tracepoint, unconditionally.  Both run with mmu_lock held for write, or
 * (unsync from a TDP fault) under mmu_unsync_pages_lock too, so no update is
 * lost.  kvm_unlink_unsync_page() is called from mmu_sync_children() for
 * each page synced and from __kvm_mmu_prepare_zap_page() for an unsync page
 * zapped.  So, per struct kvm, exactly:
 *
 *   mmu_unsync == count(kvm_mmu_unsync_page) - count(kvm_mmu_sync_page)
 *
 * counted from the VM's creation (stat starts at 0 in kvm_create_vm()).
 * What the agent compares is weaker, because it keys counts by the tgid of
 * the current task, not by struct kvm, and for three reasons it can differ:
 *  - a zap run by another task: the MMU shrinker (mmu_shrink_scan() ->
 *    kvm_mmu_zap_oldest_mmu_pages(), in whatever task is reclaiming), or the
 *    final kvm_put_kvm() in a process that held the VM's fd or a debugfs
 *    file, or the final mmput() of the VMM's memory in another process (a
 *    /proc/PID reader: kvm_mmu_notifier_release() -> kvm_flush_shadow_all()
 *    zaps there): those kvm_mmu_sync_page events land on another tgid;
 *  - the agent attached after the VM's first unsync (not "seen from start");
 *  - the vm_stats map was full (1024 tgids) when the VMM first showed up.
 * A VMM with several VMs is fine: both sides are summed per tgid.  Under
 * those conditions the identity holds exactly; the debugfs read itself is
 * a plain unlocked u64 load (kvm_get_stat_per_vm()), exact once the guest
 * is quiet.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kvm_stats.h"

const struct kvm_stat_desc kvm_stat_descs[KVM_STAT_NR] = {
	[KVM_STAT_MMU_SHADOW_ZAPPED] = { "mmu_shadow_zapped", false,
		"shadow pages zapped (__kvm_mmu_prepare_zap_page)" },
	[KVM_STAT_MMU_PTE_WRITE] = { "mmu_pte_write", false,
		"guest writes to write-protected guest page tables" },
	[KVM_STAT_MMU_PDE_ZAPPED] = { "mmu_pde_zapped", false,
		"non-leaf sptes zapped by a guest page-table write" },
	[KVM_STAT_MMU_FLOODED] = { "mmu_flooded", false,
		"shadow pages zapped because the guest kept writing them" },
	[KVM_STAT_MMU_RECYCLED] = { "mmu_recycled", false,
		"shadow pages zapped to make room (the oldest first)" },
	[KVM_STAT_MMU_CACHE_MISS] = { "mmu_cache_miss", false,
		"shadow pages created because none matched" },
	[KVM_STAT_MMU_UNSYNC] = { "mmu_unsync", true,
		"shadow pages unsync now" },
};

/* "%llu\n" from dirfd/name into *val; -errno on failure. */
static int read_u64(int dirfd, const char *name, __u64 *val)
{
	char buf[32], *end;
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	errno = 0;
	*val = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n'))
		return -EINVAL;
	return 0;
}

/* The thread group of pid, from proc/PID/status; pid itself if unknown. */
static __u32 tgid_of(const char *proc, __u32 pid)
{
	char path[64], line[128];
	unsigned int tgid;
	FILE *f;

	if (!proc)
		return pid;
	snprintf(path, sizeof(path), "%s/%u/status", proc, pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Tgid: %u", &tgid) == 1) {
			fclose(f);
			return tgid;
		}
	}
	fclose(f);
	return pid;
}

/* A VM directory's name, "PID-FD", and nothing else (the root also holds
 * host-wide stat files and, on some kernels, other directories). */
static bool vm_dir_pid(const char *name, __u32 *pid)
{
	unsigned int p, fd;
	int len = 0;

	if (sscanf(name, "%u-%u%n", &p, &fd, &len) != 2 || name[len])
		return false;
	*pid = p;
	return true;
}

/* One VM's stats; 1 if read, 0 if it went away, -errno if unreadable. */
static int read_vm(int rootfd, const char *name, __u64 val[KVM_STAT_NR])
{
	int dirfd, i, err;

	dirfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	for (i = 0; i < KVM_STAT_NR; i++) {
		val[i] = 0;
		err = read_u64(dirfd, kvm_stat_descs[i].name, &val[i]);
		if (err == -ENOENT && faccessat(dirfd, ".", F_OK, 0)) {
			close(dirfd);	/* the VM was destroyed meanwhile */
			return 0;
		}
		/* a stat this kernel does not have stays 0 */
		if (err && err != -ENOENT) {
			close(dirfd);
			return err;
		}
	}
	close(dirfd);
	return 1;
}

static int by_pid(const void *a, const void *b)
{
	const struct kvm_vm_kstats *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int access_err(int err)
{
	if (err == -ENOENT || err == -ENOTDIR)
		return -ENOENT;
	if (err == -EACCES || err == -EPERM)
		return -EACCES;
	return err;
}

int kvm_stats_read(struct kvm_stats_src *src, struct kvm_vm_kstats *out,
		   int max)
{
	__u64 val[KVM_STAT_NR];
	struct kvm_vm_kstats *e;
	struct dirent *de;
	int n = 0, i, r, ret = 0;
	bool cut = false;
	DIR *dir;
	__u32 pid;

	dir = opendir(src->root);
	if (!dir)
		return access_err(-errno);
	while ((de = readdir(dir))) {
		if (!vm_dir_pid(de->d_name, &pid))
			continue;
		r = read_vm(dirfd(dir), de->d_name, val);
		if (r < 0) {
			ret = access_err(r);
			break;
		}
		if (!r)
			continue;
		pid = tgid_of(src->proc, pid);
		e = (struct kvm_vm_kstats *)kvm_stats_find(out, n, pid);
		if (!e) {
			if (n == max) {
				cut = true;
				continue;
			}
			e = &out[n++];
			memset(e, 0, sizeof(*e));
			e->pid = pid;
		}
		e->nr_vms++;
		for (i = 0; i < KVM_STAT_NR; i++)
			e->val[i] += val[i];
	}
	closedir(dir);
	if (ret)
		return ret;
	qsort(out, n, sizeof(*out), by_pid);
	return cut ? -E2BIG : n;
}

const struct kvm_vm_kstats *kvm_stats_find(const struct kvm_vm_kstats *out,
					   int n, __u32 pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (out[i].pid == pid)
			return &out[i];
	return NULL;
}

bool kvm_stats_should_warn(struct kvm_stats_src *src, int err)
{
	bool warn;

	if (err >= 0) {
		src->last_err = 0;
		return false;
	}
	warn = err != src->last_err;
	src->last_err = err;
	return warn;
}

const char *kvm_stats_strerror(const struct kvm_stats_src *src, int err,
			       char *buf, size_t len)
{
	switch (err) {
	case -ENOENT:
		snprintf(buf, len, "KVM stats: no %s (debugfs not mounted, or kvm not loaded): kvm_unsync_kvm_* not exported",
			 src->root);
		break;
	case -EACCES:
		snprintf(buf, len, "KVM stats: %s cannot be read (hidden by the service's sandbox, or kernel lockdown): kvm_unsync_kvm_* not exported",
			 src->root);
		break;
	case -E2BIG:
		snprintf(buf, len, "KVM stats: more VMMs under %s than the agent keeps",
			 src->root);
		break;
	default:
		snprintf(buf, len, "KVM stats: cannot read %s: %s", src->root,
			 strerror(-err));
	}
	return buf;
}
