// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * compare (compare.c, record_read.c) on hand-written records
 * (tests/unit/records/), and the records record.c writes, read back.
 *
 * stock.json vs patched.json, VM "lab": 10 syncs each; restarts 30 vs 10,
 * so 3.00 vs 1.00 per sync and 0.75 vs 0.25 per page synced (40 each):
 * ratio 0.33.  Frames 120 vs 60: 12.00 vs 6.00 per sync, ratio 0.50.
 * VM "only-a" (1 sync) is in stock.json alone: all VMs then have 11 syncs
 * in A, and restarts per sync 30/11 = 2.73 vs 1.00, ratio 0.37.
 * Mean pvec->nr: (10*4 + 30*16)/40 = 13.00 vs (10*12 + 10*16)/20 = 14.00.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "compare.h"
#include "record.h"
#include "record_read.h"
#include "record_tmp.h"
#include "test.h"


#define REC(f)	"tests/unit/records/" f

/* Run compare; the report in *out, the error output in *err (free both). */
static int run(const char *a, const char *b, char **out, char **err)
{
	size_t no, ne;
	FILE *fo = open_memstream(out, &no), *fe = open_memstream(err, &ne);
	int rc;

	rc = compare_files(a, b, NULL, fo, fe);
	fclose(fo);
	fclose(fe);
	return rc;
}

/* "| label | a | b | d | r |" as compare lays it out. */
static const char *row(const char *label, const char *a, const char *b,
		       const char *d, const char *r)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), "| %-34s | %12s | %12s | %12s | %7s |",
		 label, a, b, d, r);
	return buf;
}

/* A copy of text from the line "from" up to "to" (or the end). */
static char *section(const char *text, const char *from, const char *to)
{
	const char *s = strstr(text, from), *e;

	if (!s)
		return strdup("");
	e = to ? strstr(s + strlen(from), to) : NULL;
	return strndup(s, e ? (size_t)(e - s) : strlen(s));
}

static void test_figures(void)
{
	char *out, *err, *vm, *per_sync, *per_page, *all;

	CHECK_INT(run(REC("stock.json"), REC("patched.json"), &out, &err), 0);
	CHECK_STR(err, "");
	/* the lab VM's counts, its per-sync and per-page tables, all VMs */
	vm = section(out, "\n## vm lab\n", "\nper sync:\n");
	per_sync = section(strstr(out, "\n## vm lab\n") ?: "", "\nper sync:\n",
			   "\nper page synced:\n");
	all = section(out, "\n## all VMs\n", NULL);
	per_page = section(strstr(out, "\n## vm lab\n") ?: "",
			   "\nper page synced:\n", "\n## ");
	CHECK(*vm && *per_sync && *per_page && *all);

	CHECK_LINE(vm, row("restarts", "30", "10", "-20", "0.33"));
	CHECK_LINE(vm, row("sync frames", "120", "60", "-60", "0.50"));
	/* 0 in A, 40 in B: no ratio; 40 to 0: ratio 0 */
	CHECK_LINE(vm, row("sync clears in walk", "0", "40", "+40", "-"));
	CHECK_LINE(vm, row("sync clears in clear_parents", "40", "0", "-40",
			   "0.00"));
	CHECK_LINE(vm, row("zap frames", "0", "0", "+0", "="));
	/* KVM's stats were read in A only */
	CHECK_LINE(vm, row("kvm: mmu_cache_miss", "45", "-", "-", "-"));
	CHECK_LINE(vm, row("kvm: mmu_unsync (at end)", "0", "-", "-", "-"));
	CHECK_LINE(per_sync, row("restarts", "3.00", "1.00", "-2.00", "0.33"));
	CHECK_LINE(per_sync, row("sync frames", "12.00", "6.00", "-6.00",
				 "0.50"));
	CHECK_LINE(per_page, row("restarts", "0.75", "0.25", "-0.50", "0.33"));
	/* a gauge is not divided; a figure zero on both sides is left out */
	CHECK_NO_SUBSTR(per_sync, "mmu_unsync");
	CHECK_NO_SUBSTR(per_sync, "zap frames");
	CHECK_NO_SUBSTR(per_page, "only-a");

	CHECK_LINE(out, "## vm only-a (in A only)");
	CHECK_LINE(all, row("sync calls ok", "11", "10", "-1", "0.91"));
	CHECK_LINE(all, row("restarts", "2.73", "1.00", "-1.73", "0.37"));
	CHECK_LINE(all, row("sync mean pvec->nr", "13.00", "14.00", "+1.00",
			    "1.08"));
	CHECK_LINE(all, row("sync walks with pvec->nr 12", "0", "10", "+10",
			    "-"));
	/* 10 syncs in slot 10 (< 1024 ns, sum 8000) vs slot 9 (sum 4000) */
	CHECK_LINE(all, row("sync duration mean (us)", "0.80", "0.40", "-0.40",
			    "0.50"));
	CHECK_LINE(all, row("sync duration p99 below (us)", "1.02", "0.51",
			    "-0.51", "0.50"));
	CHECK_LINE(out, "B hooks: mmu_sync_children=fentry");
	CHECK_LINE(out, "A: " REC("stock.json")
		   ", kernel 6.1.0-lab (stock), agent 0.1.0, 10.0 s");
	free(vm);
	free(per_sync);
	free(per_page);
	free(all);
	free(out);
	free(err);
}

static void test_no_vm(void)
{
	char *out, *err;

	/* a run that saw no VM is a valid record; the other side shows */
	CHECK_INT(run(REC("no_vm.json"), REC("patched.json"), &out, &err), 0);
	CHECK_LINE(out, "## vm lab (in B only)");
	CHECK_LINE(out, row("sync mean pvec->nr", "-", "14.00", "-", "-"));
	free(out);
	free(err);
}

/*
 * Every per-VM counter of the record is one row of compare's table, read
 * from its own field: test_record's record numbers each __u64 of a VM's
 * struct vm_stats in order from 1000, so each of those numbers must stand
 * in exactly one row of the first VM's table (compare walks the families
 * table, record_read.c's and record.c's rows).
 */
static void test_every_counter_once(void)
{
	const char *rec = "tests/unit/expected/record.json";
	size_t k, nr = sizeof(struct vm_stats) / sizeof(__u64);
	char *out, *err, *sec, *end, *p, needle[64];
	int seen;

	CHECK_INT(run(rec, rec, &out, &err), 0);
	sec = out ? strstr(out, "\n## vm ") : NULL;
	end = sec ? strstr(sec, "\nper sync:") : NULL;
	CHECK(sec && end);
	for (k = 0; sec && end && k < nr; k++) {
		snprintf(needle, sizeof(needle), " | %12llu | %12llu | ",
			 1000ULL + k, 1000ULL + k);
		seen = 0;
		for (p = strstr(sec, needle); p && p < end;
		     p = strstr(p + 1, needle))
			seen++;
		CHECK_INT(seen, 1);
	}
	free(out);
	free(err);
}

/* compare fails with exit 2 and one line naming the file and the problem */
static void bad(const char *file, const char *problem)
{
	char *out, *err, want[512];

	CHECK_INT(run(REC("stock.json"), file, &out, &err), 2);
	snprintf(want, sizeof(want), "kvm-unsync-exporter compare: %s: %s",
		 file, problem);
	CHECK_LINE(err, want);
	CHECK(strchr(err, '\n') == err + strlen(err) - 1);
	CHECK_STR(out, "");
	free(out);
	free(err);
}

static void test_bad_files(void)
{
	bad(REC("truncated.json"),
	    "truncated: the JSON ends after 1364 bytes, before the document does");
	bad(REC("version2.json"),
	    "schema version 2, this compare reads version 1: use the agent that wrote it");
	bad(REC("no_version.json"), "missing field schema_version");
	bad(REC("missing_field.json"), "missing field vms[0].counters.restarts");
	bad(REC("not_json.json"), "not JSON: unexpected character at byte 0");
	bad(REC("absent.json"), "cannot open: No such file or directory");
	bad(REC("empty.json"), "empty file: not a record");
	/* what the document is, not "truncated": json-c waits for more
	 * after a number or a literal at the very end */
	bad(REC("null.json"),
	    "not a record (the document is null, not a JSON object)");
	bad(REC("number.json"),
	    "not a record (the document is a number, not a JSON object)");
	bad(REC("blank.json"), "blank file (white space only): not a record");
	/* json-c reads 2^64 as 2^64 - 1: named, not taken */
	bad(REC("big_count.json"),
	    "field vms[0].counters.restarts is 2^64 or more: a count is an unsigned 64-bit integer");
	bad(REC("big_version.json"),
	    "field schema_version is 2^64 or more: a count is an unsigned 64-bit integer");
	bad(REC("big_slot.json"),
	    "field hists.sync_duration_ns.slots[10] is 2^64 or more: a count is an unsigned 64-bit integer");
	/* 2^63 + 2^63: the all-VMs total would wrap to 0 */
	bad(REC("sum_wrap.json"),
	    "vms[1]: its counts and those of the VMs before it sum to 2^64 or more: too big to total");
	bad(REC("dur_nan.json"),
	    "field time.duration_seconds is nan: want a number of seconds, 0 or more");
	bad(REC("dur_inf.json"),
	    "field time.duration_seconds is inf: want a number of seconds, 0 or more");
	bad(REC("dur_neg.json"),
	    "field time.duration_seconds is -0.5: want a number of seconds, 0 or more");
	/* the file's own text in the error: still one line, no escapes */
	bad(REC("control_schema.json"),
	    "not a record (schema \"kvm-unsync-exporter/rec?ord?[2J\", want \"kvm-unsync-exporter/record\")");
}

/*
 * Only a regular file of a record's size is read: /dev/zero would never
 * end, a FIFO with no writer would wait for one, a huge file would take
 * the memory.  Each is one line at once.
 */
static void test_special_files(void)
{
	char dir[] = "/tmp/kue-cmp-XXXXXX", fifo[64], huge[64], want[128];
	int fd;

	bad("/dev/zero", "a character device, not a regular file: not a record");
	bad("/dev/null", "a character device, not a regular file: not a record");
	bad("/tmp", "a directory, not a regular file: not a record");
	if (!mkdtemp(dir)) {
		SKIP("cannot make a temporary directory");
		return;
	}
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	if (!mkfifo(fifo, 0600))
		bad(fifo, "a FIFO, not a regular file: not a record");
	else
		SKIP("mkfifo failed");
	/* sparse: past the bound by one byte, and nothing read */
	snprintf(huge, sizeof(huge), "%s/huge.json", dir);
	fd = open(huge, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd >= 0 && !ftruncate(fd, RECORD_READ_MAX + 1)) {
		snprintf(want, sizeof(want),
			 "%d bytes, more than a record can be (%d MiB): not a record",
			 RECORD_READ_MAX + 1, RECORD_READ_MAX >> 20);
		bad(huge, want);
	} else {
		SKIP("cannot make a sparse file");
	}
	if (fd >= 0)
		close(fd);
	unlink(huge);
	unlink(fifo);
	rmdir(dir);
}

/*
 * Counts near 2^64: B - A as sign and magnitude (as a signed 64-bit
 * number, 2^64 - 1 - 1 printed -2), the ratio whole (it was cut to 15
 * characters).  u64_b.json's kernel release is a string of 23 digits:
 * strings are not numbers to check.
 */
static void test_u64_extremes(void)
{
	char *out, *err;

	CHECK_INT(run(REC("u64_a.json"), REC("u64_b.json"), &out, &err), 0);
	CHECK_STR(err, "");
	CHECK_LINE(out, row("restarts", "1", "18446744073709551615",
			    "+18446744073709551614", "18446744073709551616.00"));
	CHECK_LINE(out, "B: " REC("u64_b.json")
		   ", kernel 99999999999999999999999 (stock), agent 0.1.0, 10.0 s");
	free(out);
	free(err);
	CHECK_INT(run(REC("u64_b.json"), REC("u64_a.json"), &out, &err), 0);
	CHECK_LINE(out, row("restarts", "18446744073709551615", "1",
			    "-18446744073709551614", "0.00"));
	free(out);
	free(err);
}

/* A report that cannot be written is an error, not exit 0. */
static void test_write_error(void)
{
	FILE *full = fopen("/dev/full", "w"), *fe;
	char *err;
	size_t ne;

	if (!full) {
		SKIP("no /dev/full");
		return;
	}
	fe = open_memstream(&err, &ne);
	CHECK_INT(compare_files(REC("stock.json"), REC("patched.json"), NULL,
				full, fe), 1);
	fclose(fe);
	CHECK_STR(err, "kvm-unsync-exporter compare: cannot write the report: No space left on device\n");
	fclose(full);
	free(err);
}

/*
 * nr VMs named vm00000...: restarts i + 1 times mul; B (rev) lists them
 * in the reverse order and adds "only-b".
 */
static bool write_many(char *path, int nr, bool rev)
{
	struct agent_info info = { .version = "1", .variant = "stock" };
	struct record r = { .info = &info, .duration_s = 1 };
	struct record_vm *vm = calloc(nr + 1, sizeof(*vm));
	int i, k;
	bool ok;

	if (!vm)
		return false;
	for (i = 0; i < nr; i++) {
		k = rev ? nr - 1 - i : i;
		snprintf(vm[i].name, sizeof(vm[i].name), "vm%05d", k);
		vm[i].stats.restarts = (k + 1ULL) * (rev ? 2 : 1);
	}
	if (rev)
		snprintf(vm[nr++].name, sizeof(vm[0].name), "only-b");
	r.vms = vm;
	r.nr_vms = nr;
	ok = record_tmp_write(path, &r);
	free(vm);
	return ok;
}

/* Many VMs matched by name: each once, in A's order, B's own last. */
static void test_many_vms_matched(void)
{
	char a[] = "/tmp/kue-many-a-XXXXXX", b[] = "/tmp/kue-many-b-XXXXXX";
	char *out = NULL, *err = NULL, *sec;
	const char *p;
	int heads = 0;

	if (!write_many(a, 300, false) || !write_many(b, 300, true))
		goto out;
	CHECK_INT(run(a, b, &out, &err), 0);
	for (p = strstr(out, "\n## vm "); p; p = strstr(p + 1, "\n## vm "))
		heads++;
	CHECK_INT(heads, 301);
	CHECK(strstr(out, "\n## vm vm00000\n") ==
	      strstr(out, "\n## vm "));
	CHECK(strstr(out, "\n## vm vm00299\n") <
	      strstr(out, "\n## vm only-b (in B only)\n"));
	sec = section(out, "\n## vm vm00123\n", "\nper sync:");
	CHECK_LINE(sec, row("restarts", "124", "248", "+124", "2.00"));
	free(sec);
out:
	free(out);
	free(err);
	unlink(a);
	unlink(b);
}

/*
 * strcmp() calls made from the daemon's objects: the unit binary is
 * linked with --wrap=strcmp (unit.mk), so a count of comparisons stands
 * in for time, the same on a loaded machine as on an idle one.
 */
int __real_strcmp(const char *a, const char *b);
static unsigned long strcmp_calls;

int __wrap_strcmp(const char *a, const char *b)
{
	strcmp_calls++;
	return __real_strcmp(a, b);
}

/* strcmp() calls of a compare of two records of nr VMs; 0 if not run. */
static unsigned long compare_cmps(int nr)
{
	char a[] = "/tmp/kue-many-a-XXXXXX", b[] = "/tmp/kue-many-b-XXXXXX";
	FILE *null = fopen("/dev/null", "w");
	unsigned long cmps = 0;

	if (null && write_many(a, nr, false) && write_many(b, nr, true)) {
		strcmp_calls = 0;
		CHECK_INT(compare_files(a, b, NULL, null, stderr), 0);
		cmps = strcmp_calls;
	}
	if (null)
		fclose(null);
	unlink(a);
	unlink(b);
	return cmps;
}

/*
 * VMs matched by a sort and a merge: eight times the VMs, about eight
 * times the comparisons (times log 8000 / log 5000, a little more).
 * Matched by a search per VM, as compare once did, it was 64 times.
 */
static void test_many_vms_linear(void)
{
	unsigned long small = compare_cmps(5000), big = compare_cmps(40000);

	CHECK(small > 0);
	if (big >= 12 * small)
		fprintf(stderr, "compare: %lu name comparisons for 5,000 VMs, %lu for 40,000\n",
			small, big);
	CHECK(big < 12 * small);
}

/* A VM name with a newline and a terminal escape cannot forge a report line. */
static void test_control_name(void)
{
	char *out, *err;

	CHECK_INT(run(REC("control_name.json"), REC("stock.json"), &out, &err),
		  0);
	CHECK_LINE(out, "## vm lab?## vm fake?[2J (in A only)");
	CHECK(!test_has_line(out, "## vm fake"));
	CHECK(!strchr(out, '\x1b'));
	free(out);
	free(err);
}

/* record.c's document is what compare reads: write, read back, compare. */
static void test_round_trip(void)
{
	struct agent_info info = { .version = "9.9.9", .variant = "patched",
				   .nr_probes = 1 };
	struct record_vm vm = { .name = "rt\"q", .pid = 7, .has_kvm = true };
	struct record r = { .info = &info, .vms = &vm, .nr_vms = 1,
			    .duration_s = 2.5 };
	char path[] = "/tmp/kue-record-XXXXXX", err[256], *out, *eout;

	strcpy(info.kernel_release, "6.1.0-rt");
	info.probes[0] = (struct probe_status){ "mmu_sync_children",
						"kprobe", true, "" };
	vm.stats.sync_calls[SYNC_OK] = 4;
	vm.stats.restarts = 6;
	vm.stats.pages_synced = 12;
	vm.stats.walks[CTX_ZAP][WALK_ENOSPC] = 3;
	vm.kvm.nr_vms = 2;
	vm.kvm.val[KVM_STAT_MMU_FLOODED] = 5;
	r.hists.pvec_depth[CTX_SYNC][PVEC_NR_MAX] = 6;
	r.hists.pvec_depth_sum[CTX_SYNC] = 96;
	r.hists.sync_duration[DURATION_SLOTS - 1] = 1;
	r.hists.sync_duration_sum_ns = 18446744073709551615ULL; /* u64 max */
	if (!record_tmp_write(path, &r))
		return;
	CHECK_INT(access(path, R_OK), 0);
	CHECK_INT(run(path, path, &out, &eout), 0);
	CHECK_STR(eout, "");
	CHECK_LINE(out, "## vm rt\"q");
	/* one VM: no totals repeating it */
	CHECK_LINE(out, "(all VMs: the one above)");
	CHECK_NO_SUBSTR(out, "## all VMs");
	CHECK_LINE(out, "A hooks: mmu_sync_children=kprobe");
	CHECK_LINE(out, row("restarts", "6", "6", "+0", "1.00"));
	CHECK_LINE(out, row("zap walks enospc", "3", "3", "+0", "1.00"));
	CHECK_LINE(out, row("kvm: mmu_flooded", "5", "5", "+0", "1.00"));
	CHECK_LINE(out, row("kvm: VMs", "2", "2", "+0", "1.00"));
	CHECK_LINE(out, row("restarts", "1.50", "1.50", "+0.00", "1.00"));
	CHECK_LINE(out, row("sync mean pvec->nr", "16.00", "16.00", "+0.00",
			    "1.00"));
	free(out);
	free(eout);
	/* a directory that does not exist: an error, no file left behind */
	CHECK(record_write("/nonexistent/dir/r.json", &r, err, sizeof(err)) < 0);
	CHECK(strstr(err, "/nonexistent/dir/r.json") != NULL);
	unlink(path);
}

/* a --plot name gnuplot's quoting cannot hold: refused, nothing run */
static void test_plot_dir_quote(void)
{
	char *argv[] = { "compare", REC("stock.json"), REC("stock.json"),
			 "--plot=/tmp/it's", NULL };

	CHECK_INT(compare_main(4, argv), 2);
}

static void test_plot(void)
{
	char dir[] = "/tmp/kue-plot-XXXXXX", png[64], cmd[96];
	FILE *null = fopen("/dev/null", "w");

	if (access("/usr/bin/gnuplot", X_OK)) {
		SKIP("no gnuplot (apt-get install gnuplot-nox): --plot not tested");
		return;
	}
	if (!null || !mkdtemp(dir)) {
		SKIP("cannot make a temporary directory");
		return;
	}
	CHECK_INT(compare_files(REC("stock.json"), REC("patched.json"), dir,
				null, stderr), 0);
	snprintf(png, sizeof(png), "%s/pvec-depth.png", dir);
	CHECK_INT(access(png, R_OK), 0);
	snprintf(png, sizeof(png), "%s/sync-duration.png", dir);
	CHECK_INT(access(png, R_OK), 0);
	fclose(null);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_INT(system(cmd), 0);
}

UNIT_SUITE(compare)
{
	test_figures();
	test_no_vm();
	test_every_counter_once();
	test_bad_files();
	test_special_files();
	test_u64_extremes();
	test_write_error();
	test_many_vms_matched();
	test_many_vms_linear();
	test_control_name();
	test_round_trip();
	test_plot_dir_quote();
	test_plot();
}
