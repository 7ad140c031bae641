// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The rendered page, line by line, and promtool's opinion of it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* mkstemp, popen */
#endif
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "expected.h"
#include "metrics.h"
#include "test.h"

/* Every family of the public contract, in page order. */
static const char *const families[] = {
	"kvm_unsync_sync_calls_total", "kvm_unsync_walks_total",
	"kvm_unsync_walk_frames_total", "kvm_unsync_restarts_total",
	"kvm_unsync_walk_leaves_total", "kvm_unsync_bitmap_clears_total",
	"kvm_unsync_pages_unsynced_total", "kvm_unsync_pages_synced_total",
	"kvm_unsync_pvec_depth", "kvm_unsync_sync_duration_seconds",
	"kvm_unsync_probe_attached", "kvm_unsync_ringbuf_dropped_total",
	"kvm_unsync_task_state_full_total", "kvm_unsync_stack_overflow_total",
	"kvm_unsync_orphan_exits_total", "kvm_unsync_ringbuf_events_total",
	"kvm_unsync_build_info", "kvm_unsync_kernel_info",
	"kvm_unsync_bitmap_clears_source", "kvm_unsync_vms",
	"kvm_unsync_scrape_errors_total",
};
#define NR_FAMILIES (sizeof(families) / sizeof(families[0]))

static const char *const weird_name = "we\"ird\\vm\nx";

static void fake_info(struct agent_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version = "1.2.3";
	snprintf(info->kernel_release, sizeof(info->kernel_release),
		 "6.1.0-18-amd64");
	info->variant = "stock";
	info->probes[0] = (struct probe_status){ "mmu_sync_children",
						 "fentry", true, "" };
	info->probes[1] = (struct probe_status){ "__mmu_unsync_walk",
						 "kprobe", true, "" };
	info->probes[2] = (struct probe_status){ "kvm_mmu_sync_page",
						 "none", false, "no BTF" };
	/* listed twice by mistake: must not become a duplicate series */
	info->probes[3] = info->probes[1];
	info->nr_probes = 4;
	info->clears_source[SITE_WALK] = "hook";
	info->clears_source[SITE_CLEAR_PARENTS] = "hook";
}

static void fake_snapshot(struct snapshot *s)
{
	struct vm_guests ga = { 0 }, gb = { 0 };
	struct vm_stats *a = &ga.guest[GUEST_L1], *b = &gb.guest[GUEST_L1];
	struct vm_stats *n = &ga.guest[GUEST_L2];
	struct hists *h = &s->hists;

	snapshot_init(s);
	a->sync_calls[SYNC_OK] = 5;
	a->sync_calls[SYNC_EINTR] = 2;
	a->walks[CTX_SYNC][WALK_DONE] = 7;
	a->walks[CTX_SYNC][WALK_ENOSPC] = 1;
	a->walks[CTX_ZAP][WALK_DONE] = 3;
	a->frames[CTX_SYNC] = 20;
	a->frames[CTX_ZAP] = 9;
	a->restarts = 1;
	a->leaves[CTX_SYNC] = 30;
	a->leaves[CTX_ZAP] = 4;
	a->clears[CTX_SYNC][SITE_WALK] = 11;
	a->clears[CTX_SYNC][SITE_CLEAR_PARENTS] = 2;
	a->clears[CTX_ZAP][SITE_WALK] = 5;
	a->pages_unsynced = 40;
	a->pages_synced = 38;
	b->sync_calls[SYNC_OTHER] = 3;
	/* 1234 has a nested guest too; 99 has none: no guest="l2" */
	n->sync_calls[SYNC_OK] = 10;
	n->walks[CTX_SYNC][WALK_DONE] = 10;
	n->walks[CTX_SYNC][WALK_ENOSPC] = 10;
	n->frames[CTX_SYNC] = 30;
	n->restarts = 10;
	n->leaves[CTX_SYNC] = 130;
	n->pages_unsynced = 130;
	n->pages_synced = 130;
	snapshot_add_vm(s, 1234, &ga);
	snapshot_add_vm(s, 99, &gb);
	snapshot_sort_dedup(s);

	h->pvec_depth[CTX_SYNC][0] = 1;
	h->pvec_depth[CTX_SYNC][1] = 2;
	h->pvec_depth[CTX_SYNC][16] = 4;
	h->pvec_depth_sum[CTX_SYNC] = 0 * 1 + 1 * 2 + 16 * 4;
	h->sync_duration[0] = 1;
	h->sync_duration[1] = 2;
	h->sync_duration[10] = 3;
	h->sync_duration[DURATION_SLOTS - 1] = 4;
	h->sync_duration_sum_ns = 123456789;
	s->self.ringbuf_dropped = 8;
	s->self.orphan_exits = 1;
}

/* names[i] (NULL, or a NULL entry: "unknown") names s->vms[i]. */
static char *render_as(const struct snapshot *s, const char *const *names,
		       const char *clear_parents_source)
{
	struct metrics_extra x = { .ringbuf_events = 77, .scrape_errors = 2 };
	struct vm_series series[4];
	struct agent_info info;
	struct strbuf b;
	size_t len, i, nr = 0;

	for (i = 0; s && i < s->nr_vms && nr < 4; i++)
		series[nr++] = (struct vm_series){
			.name = names ? names[i] : NULL,
			.pid = s->vms[i].tgid,
			.stats = &s->vms[i].stats,
		};
	fake_info(&info);
	if (clear_parents_source)
		info.clears_source[SITE_CLEAR_PARENTS] = clear_parents_source;
	sb_init(&b);
	CHECK_INT(metrics_render(&b, s, series, nr, &info, &x), 0);
	return sb_steal(&b, &len);
}

static char *render(const struct snapshot *s, const char *const *names)
{
	return render_as(s, names, NULL);
}

/* Family of a sample line: its name, less a histogram suffix. */
static void sample_family(const char *line, char *fam, size_t size)
{
	static const char *const hist[] = {
		"kvm_unsync_pvec_depth", "kvm_unsync_sync_duration_seconds",
	};
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	size_t n = strcspn(line, "{ "), i, j, h;

	snprintf(fam, size, "%.*s", (int)n, line);
	for (i = 0; i < 2; i++) {
		h = strlen(hist[i]);
		for (j = 0; j < 3; j++) {
			if (n == h + strlen(sfx[j]) &&
			    !strncmp(fam, hist[i], h) &&
			    !strcmp(fam + h, sfx[j]))
				fam[h] = '\0';
		}
	}
}

/*
 * The exposition rules: HELP then TYPE once per family, every sample after
 * its family's TYPE and before the next family starts.
 */
static int check_exposition(const char *text)
{
	char cur[128] = "", fam[160], line[1024], seen[4096] = " ";
	const char *p = text, *nl;
	int ok = 1;

	while (*p) {
		nl = strchr(p, '\n');
		if (!nl)
			return 0;	/* last line must end in a newline */
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		p = nl + 1;
		if (!strncmp(line, "# HELP ", 7)) {
			snprintf(cur, sizeof(cur), "%.*s",
				 (int)strcspn(line + 7, " "), line + 7);
			snprintf(fam, sizeof(fam), " %s ", cur);
			if (strstr(seen, fam)) {
				fprintf(stderr, "family twice: %s\n", cur);
				ok = 0;
			}
			strncat(seen, fam + 1, sizeof(seen) - strlen(seen) - 1);
		} else if (!strncmp(line, "# TYPE ", 7)) {
			snprintf(fam, sizeof(fam), "%.*s",
				 (int)strcspn(line + 7, " "), line + 7);
			if (strcmp(fam, cur)) {
				fprintf(stderr, "TYPE without HELP: %s\n", fam);
				ok = 0;
			}
		} else {
			sample_family(line, fam, sizeof(fam));
			if (strcmp(fam, cur)) {
				fprintf(stderr, "sample outside family: %s\n",
					line);
				ok = 0;
			}
		}
	}
	return ok;
}

static void check_all_families(const char *text)
{
	char want[160];
	size_t i;

	for (i = 0; i < NR_FAMILIES; i++) {
		snprintf(want, sizeof(want), "# TYPE %s ", families[i]);
		CHECK(strstr(text, want) != NULL);
	}
}

static void test_vm_samples(const char *t)
{
	CHECK_LINE(t, "# TYPE kvm_unsync_sync_calls_total counter");
	CHECK_LINE(t, "kvm_unsync_sync_calls_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",result=\"ok\"} 5");
	CHECK_LINE(t, "kvm_unsync_sync_calls_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",result=\"eintr\"} 2");
	/* "other" only where it is not zero */
	CHECK_NO_SUBSTR(t, "pid=\"1234\",guest=\"l1\",result=\"other\"");
	CHECK_LINE(t, "kvm_unsync_sync_calls_total{vm=\"unknown\",pid=\"99\",guest=\"l1\","
		      "result=\"other\"} 3");
	CHECK_LINE(t, "kvm_unsync_walks_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",context=\"sync\",result=\"enospc\"} 1");
	CHECK_LINE(t, "kvm_unsync_walks_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",context=\"zap\",result=\"done\"} 3");
	CHECK_LINE(t, "kvm_unsync_walk_frames_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",context=\"zap\"} 9");
	CHECK_LINE(t, "kvm_unsync_restarts_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\"} 1");
	CHECK_LINE(t, "kvm_unsync_walk_leaves_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",context=\"sync\"} 30");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\",context=\"sync\",site=\"clear_parents\"} 2");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_total{vm=\"unknown\","
		      "pid=\"99\",guest=\"l1\",context=\"zap\",site=\"walk\"} 0");
	CHECK_LINE(t, "kvm_unsync_pages_unsynced_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l1\"} 40");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"unknown\","
		      "pid=\"99\",guest=\"l1\"} 0");
	CHECK_LINE(t, "kvm_unsync_vms 2");
	/* the nested guest's series: every family, its zeroes included */
	CHECK_LINE(t, "kvm_unsync_sync_calls_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l2\",result=\"ok\"} 10");
	CHECK_LINE(t, "kvm_unsync_restarts_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l2\"} 10");
	CHECK_LINE(t, "kvm_unsync_walks_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l2\",context=\"zap\",result=\"done\"} 0");
	CHECK_LINE(t, "kvm_unsync_pages_synced_total{vm=\"we\\\"ird\\\\vm\\nx\","
		      "pid=\"1234\",guest=\"l2\"} 130");
	/* a VM with no count of a nested guest has no l2 series */
	CHECK_NO_SUBSTR(t, "pid=\"99\",guest=\"l2\"");
}

static void test_histograms(const char *t)
{
	CHECK_LINE(t, "# TYPE kvm_unsync_pvec_depth histogram");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"sync\",le=\"0\"} 1");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"sync\",le=\"1\"} 3");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"sync\",le=\"15\"} 3");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"sync\",le=\"16\"} 7");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"sync\",le=\"+Inf\"} 7");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_sum{context=\"sync\"} 66");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_count{context=\"sync\"} 7");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"zap\",le=\"+Inf\"} 0");
	CHECK_LINE(t, "kvm_unsync_pvec_depth_count{context=\"zap\"} 0");

	CHECK_LINE(t, "# TYPE kvm_unsync_sync_duration_seconds histogram");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket"
		      "{le=\"0.000000001\"} 1");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket"
		      "{le=\"0.000000002\"} 3");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket"
		      "{le=\"0.000000512\"} 3");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket"
		      "{le=\"0.000001024\"} 6");
	/* the last finite bound is 2^38 ns; the clamp slot is only in +Inf */
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket"
		      "{le=\"274.877906944\"} 6");
	CHECK_NO_SUBSTR(t, "le=\"549.755813888\"");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_bucket{le=\"+Inf\"} 10");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_sum 0.123456789");
	CHECK_LINE(t, "kvm_unsync_sync_duration_seconds_count 10");
}

static void test_agent_samples(const char *t)
{
	const char *p;

	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"mmu_sync_children\","
		      "mode=\"fentry\"} 1");
	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"__mmu_unsync_walk\","
		      "mode=\"kprobe\"} 1");
	CHECK_LINE(t, "kvm_unsync_probe_attached{probe=\"kvm_mmu_sync_page\","
		      "mode=\"none\"} 0");
	/* fake_info lists __mmu_unsync_walk twice: one series only */
	p = strstr(t, "probe=\"__mmu_unsync_walk\"");
	CHECK(p && !strstr(p + 1, "probe=\"__mmu_unsync_walk\""));
	CHECK_LINE(t, "kvm_unsync_ringbuf_dropped_total 8");
	CHECK_LINE(t, "kvm_unsync_task_state_full_total 0");
	CHECK_LINE(t, "kvm_unsync_stack_overflow_total 0");
	CHECK_LINE(t, "kvm_unsync_orphan_exits_total 1");
	CHECK_LINE(t, "kvm_unsync_ringbuf_events_total 77");
	CHECK_LINE(t, "kvm_unsync_build_info{version=\"1.2.3\"} 1");
	CHECK_LINE(t, "kvm_unsync_kernel_info{release=\"6.1.0-18-amd64\","
		      "variant=\"stock\"} 1");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 2");
}

/* Bucket counts never decrease, and +Inf equals _count, everywhere. */
static int check_cumulative(const char *text, const char *family)
{
	unsigned long long prev = 0, v, inf = 0;
	char line[1024], name[160];
	const char *p = text, *nl;
	int ok = 1, buckets = 0;

	for (; (nl = strchr(p, '\n')); p = nl + 1) {
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if (line[0] == '#' || strncmp(line, family, strlen(family)))
			continue;
		snprintf(name, sizeof(name), "%.*s",
			 (int)strcspn(line, "{ "), line);
		v = strtoull(strrchr(line, ' ') + 1, NULL, 10);
		if (!strcmp(name + strlen(family), "_bucket")) {
			if (buckets++ && v < prev)
				ok = 0;
			prev = v;
			if (strstr(line, "le=\"+Inf\""))
				inf = v;
		} else if (!strcmp(name + strlen(family), "_count")) {
			ok &= buckets > 0 && v == inf;
			buckets = 0;
		}
	}
	return ok;
}

static void test_full_page(void)
{
	const char *names[2] = { NULL, weird_name };	/* 99, 1234 */
	struct snapshot s;
	char *t;

	fake_snapshot(&s);
	t = render(&s, names);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(check_exposition(t));
	check_all_families(t);
	test_vm_samples(t);
	test_histograms(t);
	test_agent_samples(t);
	CHECK(check_cumulative(t, "kvm_unsync_pvec_depth"));
	CHECK(check_cumulative(t, "kvm_unsync_sync_duration_seconds"));
	check_expected("metrics-full.prom", t);
	free(t);
	snapshot_free(&s);
}

/*
 * A derived count is published with its source; a missing one is not
 * published as a 0: the site's series go, the source says why.
 */
static void test_clears_sources(void)
{
	const char *names[2] = { "b", "a" };
	struct snapshot s;
	char *t;

	fake_snapshot(&s);
	t = render_as(&s, names, "derived");
	CHECK(check_exposition(t));
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_source{site=\"walk\","
		      "source=\"hook\"} 1");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_source{site=\"clear_parents\","
		      "source=\"derived\"} 1");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_total{vm=\"a\",pid=\"1234\",guest=\"l1\","
		      "context=\"sync\",site=\"clear_parents\"} 2");
	free(t);

	t = render_as(&s, names, "missing");
	CHECK(check_exposition(t));
	check_all_families(t);
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_source{site=\"clear_parents\","
		      "source=\"missing\"} 1");
	CHECK_LINE(t, "kvm_unsync_bitmap_clears_total{vm=\"a\",pid=\"1234\",guest=\"l1\","
		      "context=\"sync\",site=\"walk\"} 11");
	CHECK_NO_SUBSTR(t, "site=\"clear_parents\"} 0");
	CHECK_NO_SUBSTR(t, "site=\"clear_parents\"} 2");
	free(t);
	snapshot_free(&s);
}

static void test_no_vms(void)
{
	struct snapshot s;
	char *t;

	snapshot_init(&s);
	t = render(&s, NULL);
	CHECK(check_exposition(t));
	check_all_families(t);
	CHECK_LINE(t, "kvm_unsync_vms 0");
	CHECK_NO_SUBSTR(t, "pid=");
	/* histograms still have their buckets, all zero */
	CHECK_LINE(t, "kvm_unsync_pvec_depth_bucket{context=\"zap\",le=\"+Inf\"} 0");
	free(t);

	/* maps unreadable: families announced, no made-up zeroes */
	t = render(NULL, NULL);
	CHECK(check_exposition(t));
	check_all_families(t);
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_vms ");
	CHECK_NO_SUBSTR(t, "_bucket");
	CHECK_NO_SUBSTR(t, "\nkvm_unsync_orphan_exits_total ");
	CHECK_LINE(t, "kvm_unsync_scrape_errors_total 2");
	CHECK_LINE(t, "kvm_unsync_ringbuf_events_total 77");
	check_expected("metrics-no-maps.prom", t);
	free(t);
	snapshot_free(&s);
}

static int have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

/* Run promtool check metrics on text; its output (if any) into out. */
static int promtool_check(const char *text, char *out, size_t size)
{
	char in_path[] = "/tmp/unit-metrics.XXXXXX", cmd[256];
	FILE *f;
	size_t n;
	int fd, st;

	fd = mkstemp(in_path);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		unlink(in_path);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1",
		 in_path);
	f = popen(cmd, "r");
	if (!f) {
		unlink(in_path);
		return -1;
	}
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	st = pclose(f);
	unlink(in_path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_promtool(void)
{
	const char *names[2] = { NULL, weird_name };
	char out[4096];
	struct snapshot s;
	char *t;

	if (!have_promtool()) {
		SKIP("promtool not in PATH (Debian: apt install prometheus)");
		return;
	}
	fake_snapshot(&s);
	t = render(&s, names);
	CHECK_INT(promtool_check(t, out, sizeof(out)), 0);
	CHECK_STR(out, "");
	free(t);

	snapshot_reset(&s);
	t = render(&s, NULL);
	CHECK_INT(promtool_check(t, out, sizeof(out)), 0);
	CHECK_STR(out, "");
	free(t);

	t = render(NULL, NULL);
	CHECK_INT(promtool_check(t, out, sizeof(out)), 0);
	CHECK_STR(out, "");
	free(t);

	/* process names are bytes: invalid UTF-8 must not break the page */
	snapshot_free(&s);
	fake_snapshot(&s);
	names[1] = "bad\xff\xc3(\"\\\n";
	t = render(&s, names);
	CHECK_INT(promtool_check(t, out, sizeof(out)), 0);
	CHECK_STR(out, "");
	free(t);
	snapshot_free(&s);
}

UNIT_SUITE(metrics)
{
	test_full_page();
	test_no_vms();
	test_clears_sources();
	test_promtool();
}
