// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * VM lifecycle through whole scrapes (metrics_scrape) over fake maps and a
 * fake /proc: names, pid reuse, a dead VM published once then deleted.
 */
#include <errno.h>
#include <stdlib.h>
#include "fake.h"
#include "metrics.h"
#include "test.h"
#include "vm_table.h"

#define NCPUS	2
#define ARGV(s)	s, sizeof(s) - 1

struct rig {
	char *proc;
	struct fake_map vm, h, self;
	struct vm_table table;
	struct agent_info info;
	unsigned long long events;
	struct scrape_ctx ctx;
	char *page;
};

static int rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->proc = fake_proc_new();
	if (!r->proc || vm_table_init(&r->table, r->proc))
		return -1;
	fake_map_init(&r->vm, sizeof(struct vm_stats), NCPUS);
	fake_map_init(&r->h, sizeof(struct hists), NCPUS);
	fake_map_init(&r->self, sizeof(struct self_stats), NCPUS);
	fake_map_value(&r->h, 0, 0);
	fake_map_value(&r->self, 0, 0);
	fake_map_reader(&r->vm, &r->ctx.src.vm_stats);
	fake_map_reader(&r->h, &r->ctx.src.hists);
	fake_map_reader(&r->self, &r->ctx.src.self_stats);
	r->ctx.src.ncpus = NCPUS;
	r->ctx.vms = &r->table;
	r->ctx.info = &r->info;
	r->ctx.ringbuf_events = &r->events;
	snapshot_init(&r->ctx.snap);
	r->info.version = "test";
	r->info.variant = "stock";
	return 0;
}

static void rig_free(struct rig *r)
{
	free(r->page);
	snapshot_free(&r->ctx.snap);
	vm_table_free(&r->table);
	fake_map_free(&r->vm);
	fake_map_free(&r->h);
	fake_map_free(&r->self);
	fake_proc_free(r->proc);
}

/* One scrape; the page stays in r->page until the next. */
static const char *scrape(struct rig *r)
{
	struct strbuf b;
	size_t len;

	free(r->page);
	sb_init(&b);
	CHECK_INT(metrics_scrape(&r->ctx, &b), 0);
	r->page = sb_steal(&b, &len);
	return r->page ? r->page : "";
}

static void set_synced(struct rig *r, __u32 tgid, __u64 n)
{
	struct vm_stats *v = fake_map_value(&r->vm, tgid, 1);

	if (v)
		v->pages_synced = n;
}

static void test_dead_vm_published_once(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=alpha\0"),
		      "qemu-kvm", 1000);
	fake_proc_add(r.proc, 200, ARGV("qemu\0-name\0guest=beta,,x\0"),
		      "qemu-kvm", 2000);
	set_synced(&r, 100, 1);
	set_synced(&r, 200, 2);

	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"alpha\",pid=\"100\"} 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"beta,x\",pid=\"200\"} 2");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	CHECK_INT(vm_table_size(&r.table), 2);

	/* beta exits; its VM teardown still counted before the next read */
	fake_proc_del(r.proc, 200);
	set_synced(&r, 200, 9);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"beta,x\",pid=\"200\"} 9");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	/* ... and after that page was built, it is gone from map and cache */
	CHECK(!fake_map_has(&r.vm, 200));
	CHECK_INT(r.vm.deletes, 1);
	CHECK_INT(vm_table_size(&r.table), 1);
	CHECK(vm_table_find(&r.table, 200) == NULL);

	t = scrape(&r);
	CHECK_NO_SUBSTR(t, "pid=\"200\"");
	CHECK_LINE(t, "kvm_unsync_vms 1");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"alpha\",pid=\"100\"} 1");
	CHECK_INT(r.vm.deletes, 1);
	rig_free(&r);
}

static void test_dead_on_arrival(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	/* in the map, but its process was never seen alive */
	set_synced(&r, 300, 4);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"300\"} 4");
	/* it may have died after the read: kept for one more scrape */
	CHECK(fake_map_has(&r.vm, 300));
	set_synced(&r, 300, 5);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"300\"} 5");
	CHECK(!fake_map_has(&r.vm, 300));
	t = scrape(&r);
	CHECK_NO_SUBSTR(t, "pid=\"300\"");
	CHECK_LINE(t, "kvm_unsync_vms 0");
	rig_free(&r);
}

static void test_pid_reuse(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=old\0"),
		      "qemu-kvm", 1000);
	set_synced(&r, 100, 1);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"old\",pid=\"100\"} 1");
	/* the name is cached: a changed cmdline alone is not re-read */
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=renamed\0"),
		      "qemu-kvm", 1000);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"old\",pid=\"100\"} 1");
	/* a new process with the same pid: new start time, new name */
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=new\0"),
		      "qemu-kvm", 5000);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"new\",pid=\"100\"} 1");
	CHECK(fake_map_has(&r.vm, 100));
	rig_free(&r);
}

static void test_failed_read_deletes_nothing(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=a\0"), "q", 1);
	set_synced(&r, 100, 3);
	scrape(&r);
	fake_proc_del(r.proc, 100);
	/* the read fails: nothing published, so nothing may be deleted */
	r.vm.lookup_err = -EPERM;
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 1");
	CHECK_NO_SUBSTR(t, "pid=\"100\"");
	CHECK(fake_map_has(&r.vm, 100));
	/* the next good scrape publishes the final count, then deletes */
	r.vm.lookup_err = 0;
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\"} 3");
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

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 100, ARGV("qemu\0-name\0guest=a\0"), "q", 1);
	set_synced(&r, 100, 3);
	scrape(&r);
	fake_proc_del(r.proc, 100);
	r.ctx.src.vm_stats.del = del_eperm;
	scrape(&r);
	CHECK(fake_map_has(&r.vm, 100));
	CHECK_INT(r.ctx.scrape_errors, 1);
	CHECK(vm_table_find(&r.table, 100) != NULL);
	fake_map_reader(&r.vm, &r.ctx.src.vm_stats);
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"a\",pid=\"100\"} 3");
	CHECK(!fake_map_has(&r.vm, 100));
	CHECK_INT(vm_table_size(&r.table), 0);
	rig_free(&r);
}

static void test_ringbuf_events(void)
{
	struct rig r;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	r.events = 12345;
	CHECK_LINE(scrape(&r), "kvm_unsync_ringbuf_events_total 12345");
	rig_free(&r);
}

/*
 * A VMM that lives less than a scrape interval: the ring-buffer consumer
 * notes it while alive, so its first scrape, after its death, still names
 * it; one that was already gone when noted is named by its record's comm.
 */
static void test_noted_before_death(void)
{
	struct rig r;
	const char *t;

	if (rig_init(&r)) {
		CHECK(!"rig");
		return;
	}
	fake_proc_add(r.proc, 300, ARGV("qemu\0-name\0guest=brief\0"),
		      "qemu-kvm", 3000);
	vm_table_note(&r.table, 300, "qemu-kvm", NULL, 0);
	fake_proc_del(r.proc, 300);
	set_synced(&r, 300, 4);
	vm_table_note(&r.table, 400, "kvmwalk", NULL, 0);
	set_synced(&r, 400, 5);
	vm_table_note(&r.table, 500, NULL, NULL, 0);
	/* gone from /proc, but the BPF side read its argv in time */
	vm_table_note(&r.table, 600, "qemu-kvm", ARGV("qemu\0-name\0guest=argv\0"));
	set_synced(&r, 600, 7);
	set_synced(&r, 500, 6);

	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"brief\",pid=\"300\"} 4");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"kvmwalk\",pid=\"400\"} 5");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\",pid=\"500\"} 6");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"argv\",pid=\"600\"} 7");
	/* a second note of a known VM changes nothing */
	vm_table_note(&r.table, 300, "other", ARGV("x\0-name\0y\0"));
	t = scrape(&r);
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"brief\",pid=\"300\"} 4");
	rig_free(&r);
}

void test_vm_table(void)
{
	test_noted_before_death();
	test_dead_vm_published_once();
	test_dead_on_arrival();
	test_pid_reuse();
	test_failed_read_deletes_nothing();
	test_failed_delete_retried();
	test_ringbuf_events();
}
