// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * VM lifecycle through whole scrapes (metrics_scrape) over fake maps and a
 * fake /proc: names, pid reuse, a dead VM published once then deleted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* kill, waitid under -std=c11 */
#endif
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include "fake.h"
#include "rig.h"
#include "test.h"

#define ARGV(s)	s, sizeof(s) - 1

static void test_dead_vm_published_once(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=alpha\0"),
		      "qemu-kvm", 1000);
	fake_proc_add(r.proc, 200, ARGV("qemu\0-name\0guest=beta,,x\0"),
		      "qemu-kvm", 2000);
	rig_set_synced(&r, 100, 1);
	rig_set_synced(&r, 200, 2);

	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"alpha\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"beta,x\",pid=\"200\",guest=\"l1\"} 2");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	CHECK_INT(vm_table_size(&r.table), 2);

	/* beta exits; its VM teardown still counted before the next read */
	fake_proc_del(r.proc, 200);
	rig_set_synced(&r, 200, 9);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"beta,x\",pid=\"200\",guest=\"l1\"} 9");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	/* ... and after that page was built, it is gone from map and cache */
	CHECK(!fake_map_has(&r.vm, 200));
	CHECK_INT(r.vm.deletes, 1);
	CHECK_INT(vm_table_size(&r.table), 1);
	CHECK(vm_table_find(&r.table, 200) == NULL);

	t = rig_scrape(&r);
	CHECK_NO_SUBSTR(t, "pid=\"200\"");
	CHECK_LINE(t, "kvm_unsync_vms 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"alpha\",pid=\"100\",guest=\"l1\"} 1");
	CHECK_INT(r.vm.deletes, 1);
	rig_free(&r);
}

static void test_dead_on_arrival(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	/* in the map, but its process was never seen alive */
	rig_set_synced(&r, 300, 4);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"300\",guest=\"l1\"} 4");
	/* it may have died after the read: kept for one more scrape */
	CHECK(fake_map_has(&r.vm, 300));
	rig_set_synced(&r, 300, 5);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"300\",guest=\"l1\"} 5");
	CHECK(!fake_map_has(&r.vm, 300));
	t = rig_scrape(&r);
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	CHECK_LINE(t, "kvm_unsync_vms 0");
	rig_free(&r);
}

static void test_pid_reuse(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=old\0"),
		      "qemu-kvm", 1000);
	rig_set_synced(&r, 100, 1);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"old\",pid=\"100\",guest=\"l1\"} 1");
	/* the name is cached: a changed cmdline alone is not re-read */
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=renamed\0"),
		      "qemu-kvm", 1000);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"old\",pid=\"100\",guest=\"l1\"} 1");
	/* a new process with the same pid: new start time, new name */
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=new\0"),
		      "qemu-kvm", 5000);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"new\",pid=\"100\",guest=\"l1\"} 1");
	CHECK(fake_map_has(&r.vm, 100));
	rig_free(&r);
}

static void test_failed_read_deletes_nothing(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=a\0"), "q", 1);
	rig_set_synced(&r, 100, 3);
	rig_scrape(&r);
	fake_proc_del(r.proc, 100);
	/* the read fails: nothing published, so nothing may be deleted */
	r.vm.lookup_err = -EPERM;
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 1");
	CHECK_NO_SUBSTR(t, "pid=\"100\"");
	CHECK(fake_map_has(&r.vm, 100));
	/* the next good scrape publishes the final count, then deletes */
	r.vm.lookup_err = 0;
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 3");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 1");
	CHECK(!fake_map_has(&r.vm, 100));
	rig_free(&r);
}

static int del_eperm(const struct map_reader *m, const __u32 *key)
{
	(void)m;
	(void)key;
	return -EPERM;
}

static void test_failed_delete_retried(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=a\0"), "q", 1);
	rig_set_synced(&r, 100, 3);
	rig_scrape(&r);
	fake_proc_del(r.proc, 100);
	r.ctx.src.vm_stats.del = del_eperm;
	rig_scrape(&r);
	CHECK(fake_map_has(&r.vm, 100));
	CHECK_INT(r.ctx.scrape_errors, 1);
	CHECK(vm_table_find(&r.table, 100) != NULL);
	fake_map_reader(&r.vm, &r.ctx.src.vm_stats);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\",guest=\"l1\"} 3");
	CHECK(!fake_map_has(&r.vm, 100));
	CHECK_INT(vm_table_size(&r.table), 0);
	rig_free(&r);
}

static void test_ringbuf_events(void)
{
	struct rig r;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	r.events = 12345;
	CHECK_LINE(rig_scrape(&r), "kvm_unsync_ringbuf_events_total 12345");
	rig_free(&r);
}

/*
 * A VMM that lives less than a scrape interval: gone from /proc by its
 * first scrape, it is named from vm_names, where the BPF side put what it
 * read at the VM's first event; /proc only where the map has no entry or
 * the BPF side could not read the argv.
 */
static void test_named_from_kernel(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	rig_set_name(&r, 300, "qemu-kvm", "guest=brief,debug-threads=on", true);
	rig_set_synced(&r, 300, 4);
	rig_set_name(&r, 400, "kvmwalk", "", true);	/* no -name */
	rig_set_synced(&r, 400, 5);
	rig_set_synced(&r, 500, 6);			/* no entry, gone */
	/* argv unreadable at the first event: /proc while it lives ... */
	rig_set_name(&r, 600, "qemu-kvm", "", false);
	fake_proc_add(r.proc, 600, ARGV("qemu\0-name\0guest=proc\0"),
		      "qemu-kvm", 6000);
	rig_set_synced(&r, 600, 7);
	/* ... and its comm when it is gone */
	rig_set_name(&r, 700, "qemu-kvm", "", false);
	rig_set_synced(&r, 700, 8);
	/* the map's name is the one the kernel side saw, /proc's is not read */
	rig_set_name(&r, 800, "qemu-kvm", "first", true);
	fake_proc_add(r.proc, 800, ARGV("qemu\0-name\0guest=later\0"),
		      "qemu-kvm", 8000);
	rig_set_synced(&r, 800, 9);

	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"brief\",pid=\"300\",guest=\"l1\"} 4");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"kvmwalk\",pid=\"400\",guest=\"l1\"} 5");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"500\",guest=\"l1\"} 6");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"proc\",pid=\"600\",guest=\"l1\"} 7");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"qemu-kvm\",pid=\"700\",guest=\"l1\"} 8");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"first\",pid=\"800\",guest=\"l1\"} 9");
	rig_free(&r);
}

/* The reaped VM's name goes with its series; a live VM's stays. */
static void test_name_reaped_with_series(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	rig_set_name(&r, 300, "kvmwalk", "guest=brief", true);
	rig_set_synced(&r, 300, 4);
	rig_set_name(&r, 400, "kvmwalk", "guest=stays", true);
	fake_proc_add(r.proc, 400, ARGV("kvmwalk\0"), "kvmwalk", 4000);
	rig_set_synced(&r, 400, 5);
	rig_scrape(&r);		/* 300: first seen dead, kept one more */
	CHECK(fake_map_has(&r.names, 300));
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"brief\",pid=\"300\",guest=\"l1\"} 4");
	CHECK(!fake_map_has(&r.vm, 300));
	CHECK(!fake_map_has(&r.names, 300));
	CHECK(fake_map_has(&r.names, 400));
	CHECK_INT(r.names.deletes, 1);
	CHECK_INT(r.ctx.scrape_errors, 0);

	/* a name already gone is no error; one that cannot go is */
	fake_proc_del(r.proc, 400);
	r.ctx.src.vm_names.del = del_eperm;
	rig_scrape(&r);
	t = rig_scrape(&r);
	CHECK(!fake_map_has(&r.vm, 400));
	CHECK_INT(r.ctx.scrape_errors, 1);
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	rig_free(&r);
}

/* A pid reused while its vm_stats entry lives: the map's name is the old's. */
static void test_reused_pid_not_named_from_map(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	rig_set_name(&r, 100, "kvmwalk", "guest=old", true);
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=old\0"), "q", 1000);
	rig_set_synced(&r, 100, 1);
	rig_scrape(&r);
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=new\0"), "q", 5000);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"new\",pid=\"100\",guest=\"l1\"} 1");
	rig_free(&r);
}

/*
 * The reader looks while the BPF side is still writing the name (no entry
 * yet), then the VMM exits before /proc is read: the map, looked at again,
 * has it by then.
 */
static struct fake_map *late_map;
static int late_lookups;

static int lookup_late(const struct map_reader *m, const __u32 *key,
		       void *values)
{
	struct map_reader real;

	(void)m;
	if (late_lookups++ == 0)
		return -ENOENT;
	fake_map_reader(late_map, &real);
	return real.lookup(&real, key, values);
}

static void test_name_written_while_looked_at(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r, 0)) {
		CHECK(!"rig");
		return;
	}
	late_map = &r.names;
	late_lookups = 0;
	r.ctx.src.vm_names.lookup = lookup_late;
	rig_set_name(&r, 300, "kvmwalk", "guest=late", true);
	rig_set_synced(&r, 300, 4);
	t = rig_scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"late\",pid=\"300\",guest=\"l1\"} 4");
	CHECK_INT(late_lookups, 2);
	rig_free(&r);
}

/*
 * The VMs tgids[i], pages_synced = synced[i], restarts = 10 * synced[i]
 * (guest level l1), and 100 * synced[i] pages synced at level l2.
 */
static void snap_of(struct snapshot *s, const __u32 *tgids,
		    const __u64 *synced, size_t n)
{
	struct vm_guests v = { 0 };
	size_t i;

	snapshot_reset(s);
	for (i = 0; i < n; i++) {
		v.guest[GUEST_L1].pages_synced = synced[i];
		v.guest[GUEST_L1].restarts = 10 * synced[i];
		v.guest[GUEST_L2].pages_synced = 100 * synced[i];
		CHECK_INT(snapshot_add_vm(s, tgids[i], &v), 0);
	}
	snapshot_sort_dedup(s);
}

/* The series as handed out: named, in tgid order, "other" last. */
static void test_series(void)
{
	static const __u32 tgids[] = { 300, 100, 200 };
	static const __u64 synced[] = { 3, 1, 2 };
	const struct vm_series *vs = NULL;
	struct vm_table t;
	struct snapshot s;
	size_t nr = 99;
	char *proc = fake_proc_new();

	if (!proc || vm_table_init(&t, proc)) {
		CHECK(!"table");
		return;
	}
	snapshot_init(&s);
	fake_proc_add(proc, 100, ARGV("qemu\0-name\0guest=a\0"), "q", 1);
	fake_proc_add(proc, 200, ARGV("qemu\0-name\0b\0"), "q", 2);
	/* 300: not in /proc at all */

	/* no limit: every VM, its own name, pid and counters */
	snap_of(&s, tgids, synced, 3);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(nr, 3);
	if (nr == 3) {
		CHECK_STR(vs[0].name, "a");
		CHECK_INT(vs[0].pid, 100);
		CHECK_INT(vs[0].stats->guest[GUEST_L1].pages_synced, 1);
		CHECK_STR(vs[1].name, "b");
		CHECK_INT(vs[1].pid, 200);
		CHECK_INT(vs[1].stats->guest[GUEST_L1].pages_synced, 2);
		CHECK_STR(vs[2].name, "unknown");
		CHECK_INT(vs[2].pid, 300);
		CHECK_INT(vs[2].stats->guest[GUEST_L1].pages_synced, 3);
		CHECK_INT(vs[2].stats->guest[GUEST_L1].restarts, 30);
	}
	CHECK_INT(vm_table_folded_total(&t), 0);
	vm_table_free(&t);

	/* --max-vms=1: a keeps its labels, b and 300 are merged into "other" */
	if (vm_table_init(&t, proc)) {
		CHECK(!"table");
		return;
	}
	vm_table_set_max(&t, 1);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(nr, 2);
	if (nr == 2) {
		CHECK_STR(vs[0].name, "a");
		CHECK_INT(vs[0].pid, 100);
		CHECK_INT(vs[0].stats->guest[GUEST_L1].pages_synced, 1);
		CHECK_STR(vs[1].name, "other");
		CHECK_INT(vs[1].pid, 0);
		CHECK_INT(vs[1].stats->guest[GUEST_L1].pages_synced, 2 + 3);
		CHECK_INT(vs[1].stats->guest[GUEST_L1].restarts, 20 + 30);
		/* each guest level folds on its own */
		CHECK_INT(vs[1].stats->guest[GUEST_L2].pages_synced,
			  200 + 300);
	}
	CHECK_INT(vm_table_folded_total(&t), 2);

	/* a folded VM leaves the map: "other" keeps its last counts */
	snap_of(&s, tgids + 1, synced + 1, 2);	/* 100, 200 */
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(nr, 2);
	if (nr == 2) {
		CHECK_INT(vs[0].pid, 100);
		CHECK_STR(vs[1].name, "other");
		CHECK_INT(vs[1].stats->guest[GUEST_L1].pages_synced, 2 + 3);
	}
	/* no VM left: "other" stays, it is a counter */
	snapshot_reset(&s);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(nr, 1);
	if (nr == 1) {
		CHECK_INT(vs[0].pid, 0);
		CHECK_INT(vs[0].stats->guest[GUEST_L1].pages_synced, 2 + 3);
	}
	vm_table_free(&t);
	snapshot_free(&s);
	fake_proc_free(proc);
}

/* A child that waits to be killed; 0 if fork failed. */
static pid_t sleeper(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid > 0 ? pid : 0;
}

/*
 * Over the real /proc, with real processes: the check reads /proc/PID/stat
 * only for a VM whose pidfd polled readable (its process exited), or that
 * has none (beyond the budget); a zombie is read at each check until its
 * parent has waited for it, then reaped.
 */
static void test_pidfd_check(void)
{
	pid_t kids[3] = { sleeper(), sleeper(), sleeper() };
	const struct vm_series *vs;
	struct fake_map m;
	struct map_reader del;
	struct vm_table t;
	struct snapshot s;
	__u32 tgids[3];
	__u64 synced[3] = { 1, 2, 3 };
	unsigned long long reads;
	siginfo_t info;
	size_t nr;
	int i;

	if (!kids[0] || !kids[1] || !kids[2] || vm_table_init(&t, "/proc")) {
		CHECK(!"fork or table");
		goto out_kids;
	}
	fake_map_init(&m, sizeof(struct vm_guests), 1);
	fake_map_reader(&m, &del);
	snapshot_init(&s);
	for (i = 0; i < 3; i++) {
		tgids[i] = (__u32)kids[i];
		fake_map_value(&m, tgids[i], 0);
	}
	snap_of(&s, tgids, synced, 3);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(nr, 3);
	CHECK(t.use_pidfds);
	CHECK_INT(t.nr_pidfds, 3);
	reads = t.stat_reads;		/* naming each read its stat once */
	CHECK_INT(reads, 3);

	/* all alive: one poll, no /proc read */
	vm_table_check(&t);
	vm_table_check(&t);
	CHECK_INT(t.stat_reads, reads);
	CHECK_INT(vm_table_reap(&t, &del), 0);

	/* one exits and is waited for: one read, and it is reaped */
	kill(kids[1], SIGKILL);
	waitpid(kids[1], NULL, 0);
	vm_table_check(&t);
	CHECK_INT(t.stat_reads, reads + 1);
	CHECK_INT(vm_table_reap(&t, &del), 1);
	CHECK_INT(vm_table_size(&t), 2);
	CHECK_INT(t.nr_pidfds, 2);
	CHECK(!fake_map_has(&m, (__u32)kids[1]));
	kids[1] = 0;

	/* a zombie: read at each check, kept, reaped once waited for */
	kill(kids[0], SIGKILL);
	while (waitid(P_PID, (id_t)kids[0], &info, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
	vm_table_check(&t);
	vm_table_check(&t);
	CHECK_INT(t.stat_reads, reads + 3);
	CHECK_INT(vm_table_reap(&t, &del), 0);
	CHECK_INT(t.nr_pidfds, 1);
	waitpid(kids[0], NULL, 0);
	vm_table_check(&t);
	CHECK_INT(vm_table_reap(&t, &del), 1);
	kids[0] = 0;
	vm_table_free(&t);

	/* a budget of one pidfd: the other VMs are read at each check */
	kids[0] = sleeper();
	kids[1] = sleeper();
	if (!kids[0] || !kids[1] || vm_table_init(&t, "/proc")) {
		CHECK(!"fork or table");
		goto out;
	}
	t.max_pidfds = 1;
	for (i = 0; i < 3; i++)
		tgids[i] = (__u32)kids[i];
	snap_of(&s, tgids, synced, 3);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(t.nr_pidfds, 1);
	reads = t.stat_reads;
	vm_table_check(&t);
	CHECK_INT(t.stat_reads, reads + 2);
	/* VMs the map no longer holds are forgotten, their pidfds closed */
	snapshot_reset(&s);
	CHECK_INT(vm_table_series(&t, &s, &vs, &nr), 0);
	CHECK_INT(t.nr_pidfds, 0);
	vm_table_free(&t);
out:
	snapshot_free(&s);
	fake_map_free(&m);
out_kids:
	for (i = 0; i < 3; i++) {
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
	}
}

UNIT_SUITE(vm_table)
{
	test_pidfd_check();
	test_series();
	test_named_from_kernel();
	test_name_reaped_with_series();
	test_reused_pid_not_named_from_map();
	test_name_written_while_looked_at();
	test_dead_vm_published_once();
	test_dead_on_arrival();
	test_pid_reuse();
	test_failed_read_deletes_nothing();
	test_failed_delete_retried();
	test_ringbuf_events();
}
