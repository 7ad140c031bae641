// SPDX-License-Identifier: GPL-2.0
/*
 * floor: attach do-nothing programs (bench/floor.bpf.c) on the unsync
 * walk's hooks, in one flavour, and stay attached until SIGTERM or SIGINT.
 * A benchmark runs its workload under it to learn what hooking those
 * places costs before any work is done in them.
 *
 *   floor --attach=fentry|kprobe [--hooks=naive|agent]
 *
 * --hooks=naive (the default), the naive floor: every hook a
 *   straightforward agent needs, whatever the agent itself hooks: entry
 *   and exit of mmu_sync_children, __mmu_unsync_walk and
 *   mmu_pages_clear_parents (the last only where the kernel has it as a
 *   symbol: 6.12 and newer builds inline it), and the kvm_mmu_sync_page
 *   and kvm_mmu_unsync_page tracepoints as raw tracepoints (raw_tp/).
 * --hooks=agent: the agent's own default hooks: entry and exit of
 *   mmu_sync_children and __mmu_unsync_walk, and the two tracepoints as
 *   BTF tracepoints (tp_btf/).
 * --attach=fentry puts an fentry and an fexit program on each function,
 * kprobe a kprobe and a kretprobe.
 *
 * Prints one line once every program is attached, e.g.
 *   floor: attached 10 programs (fentry, naive): mmu_sync_children ...
 * and exits 0 on the signal; exits 1 with one line on stderr if anything
 * fails to load or attach, 2 on bad usage.  Program names (for bpf_stats):
 * nop_{fe,fx,kp,kr}_{sync,walk,clear}, nop_tp_{sync,unsync} (raw_tp),
 * nop_tb_{sync,unsync} (tp_btf).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

#define MAX_LINKS	16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One hooked function: its entry and exit programs in each flavour. */
struct target {
	const char *func;
	struct bpf_program *fentry, *fexit, *kprobe, *kretprobe;
	bool on;
};

static int usage(void)
{
	fprintf(stderr, "usage: floor --attach=fentry|kprobe [--hooks=naive|agent]\n");
	return 2;
}

/* Is NAME a symbol in /proc/kallsyms (not a .part/.isra clone)? */
static bool in_kallsyms(const char *name)
{
	char line[512], sym[256];
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %255s", sym) == 1 &&
			!strcmp(sym, name);
	fclose(f);
	return found;
}

static void set_targets(struct floor_bpf *skel, struct target t[3], bool naive)
{
	t[0] = (struct target) { "mmu_sync_children",
		skel->progs.nop_fe_sync, skel->progs.nop_fx_sync,
		skel->progs.nop_kp_sync, skel->progs.nop_kr_sync, true };
	t[1] = (struct target) { "__mmu_unsync_walk",
		skel->progs.nop_fe_walk, skel->progs.nop_fx_walk,
		skel->progs.nop_kp_walk, skel->progs.nop_kr_walk, true };
	t[2] = (struct target) { "mmu_pages_clear_parents",
		skel->progs.nop_fe_clear, skel->progs.nop_fx_clear,
		skel->progs.nop_kp_clear, skel->progs.nop_kr_clear,
		naive && in_kallsyms("mmu_pages_clear_parents") };
}

/* Load only the programs asked for, each fentry aimed at its function. */
static int choose(struct floor_bpf *skel, struct target t[3], bool fentry,
		  bool naive)
{
	int i;

	for (i = 0; i < 3; i++) {
		bpf_program__set_autoload(t[i].fentry, t[i].on && fentry);
		bpf_program__set_autoload(t[i].fexit, t[i].on && fentry);
		bpf_program__set_autoload(t[i].kprobe, t[i].on && !fentry);
		bpf_program__set_autoload(t[i].kretprobe, t[i].on && !fentry);
		if (!(t[i].on && fentry))
			continue;
		if (bpf_program__set_attach_target(t[i].fentry, 0, t[i].func) ||
		    bpf_program__set_attach_target(t[i].fexit, 0, t[i].func)) {
			fprintf(stderr, "floor: no attach target %s\n", t[i].func);
			return -1;
		}
	}
	bpf_program__set_autoload(skel->progs.nop_tp_sync, naive);
	bpf_program__set_autoload(skel->progs.nop_tp_unsync, naive);
	bpf_program__set_autoload(skel->progs.nop_tb_sync, !naive);
	bpf_program__set_autoload(skel->progs.nop_tb_unsync, !naive);
	return 0;
}

/* Attach everything loaded; the links go to links[], their count to *n. */
static int attach(struct floor_bpf *skel, struct target t[3], bool fentry,
		  bool naive, struct bpf_link **links, int *n)
{
	struct bpf_program *tp[2] = {
		naive ? skel->progs.nop_tp_sync : skel->progs.nop_tb_sync,
		naive ? skel->progs.nop_tp_unsync : skel->progs.nop_tb_unsync,
	};
	int i;

	for (i = 0; i < 3; i++) {
		if (!t[i].on)
			continue;
		links[(*n)++] = fentry ? bpf_program__attach(t[i].fentry) :
			bpf_program__attach_kprobe(t[i].kprobe, false, t[i].func);
		if (!links[*n - 1])
			goto fail;
		links[(*n)++] = fentry ? bpf_program__attach(t[i].fexit) :
			bpf_program__attach_kprobe(t[i].kretprobe, true, t[i].func);
		if (!links[*n - 1])
			goto fail;
	}
	for (i = 0; i < 2; i++) {
		links[(*n)++] = bpf_program__attach(tp[i]);
		if (!links[*n - 1]) {
			fprintf(stderr, "floor: cannot attach %s: %s\n",
				bpf_program__name(tp[i]), strerror(errno));
			return -1;
		}
	}
	return 0;
fail:
	fprintf(stderr, "floor: cannot attach to %s: %s\n", t[i].func,
		strerror(errno));
	return -1;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_LINKS] = { 0 };
	bool fentry = false, kprobe = false, naive = true;
	struct floor_bpf *skel;
	struct target t[3];
	int i, n = 0, err = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--attach=fentry"))
			fentry = true;
		else if (!strcmp(argv[i], "--attach=kprobe"))
			kprobe = true;
		else if (!strcmp(argv[i], "--hooks=naive"))
			naive = true;
		else if (!strcmp(argv[i], "--hooks=agent"))
			naive = false;
		else
			return usage();
	}
	if (fentry == kprobe)
		return usage();

	skel = floor_bpf__open();
	if (!skel) {
		fprintf(stderr, "floor: cannot open the BPF object: %s\n",
			strerror(errno));
		return 1;
	}
	set_targets(skel, t, naive);
	if (choose(skel, t, fentry, naive))
		goto out;
	if (floor_bpf__load(skel)) {
		fprintf(stderr, "floor: cannot load the BPF object: %s\n",
			strerror(errno));
		goto out;
	}
	if (attach(skel, t, fentry, naive, links, &n))
		goto out;

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("floor: attached %d programs (%s, %s):", n,
	       fentry ? "fentry" : "kprobe", naive ? "naive" : "agent");
	for (i = 0; i < 3; i++)
		if (t[i].on)
			printf(" %s", t[i].func);
	printf(" kvm_mmu_sync_page kvm_mmu_unsync_page\n");
	fflush(stdout);
	while (!stop)
		pause();
	err = 0;
out:
	for (i = 0; i < n; i++)
		bpf_link__destroy(links[i]);
	floor_bpf__destroy(skel);
	return err;
}
