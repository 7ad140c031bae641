// SPDX-License-Identifier: GPL-2.0
/*
 * floor: attach bench/floor.bpf.c's do-nothing programs where the agent
 * hooks the walk, in one flavour, and stay attached until SIGTERM or
 * SIGINT.  `make bench` measures the workload under it to learn what
 * hooking those functions costs before any work is done in them.
 *
 *   floor --attach=fentry|kprobe [--clear-parents=hook|none]
 *
 * fentry puts an fentry and an fexit program on each function, kprobe a
 * kprobe and a kretprobe; both add the two kvmmmu raw tracepoints, as the
 * agent does.  --clear-parents=none leaves mmu_pages_clear_parents alone,
 * as the agent does with --clear-parents=derive.  Prints "floor: attached
 * N programs" once every program is attached; exits 1 if any fails.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "floor.skel.h"

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
};

static int usage(void)
{
	fprintf(stderr, "usage: floor --attach=fentry|kprobe [--clear-parents=hook|none]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[16] = { 0 };
	bool fentry = false, kprobe = false, clear_parents = true;
	struct floor_bpf *skel;
	struct target t[3];
	int i, n = 0, nr_targets, err = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--attach=fentry"))
			fentry = true;
		else if (!strcmp(argv[i], "--attach=kprobe"))
			kprobe = true;
		else if (!strcmp(argv[i], "--clear-parents=hook"))
			clear_parents = true;
		else if (!strcmp(argv[i], "--clear-parents=none"))
			clear_parents = false;
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
	t[0] = (struct target) { "mmu_sync_children",
		skel->progs.nop_fe_sync, skel->progs.nop_fx_sync,
		skel->progs.nop_kp_sync, skel->progs.nop_kr_sync };
	t[1] = (struct target) { "__mmu_unsync_walk",
		skel->progs.nop_fe_walk, skel->progs.nop_fx_walk,
		skel->progs.nop_kp_walk, skel->progs.nop_kr_walk };
	t[2] = (struct target) { "mmu_pages_clear_parents",
		skel->progs.nop_fe_clear, skel->progs.nop_fx_clear,
		skel->progs.nop_kp_clear, skel->progs.nop_kr_clear };
	nr_targets = clear_parents ? 3 : 2;

	/* Load only the flavour asked for, each fentry aimed at its function. */
	for (i = 0; i < 3; i++) {
		bool on = i < nr_targets;

		bpf_program__set_autoload(t[i].fentry, on && fentry);
		bpf_program__set_autoload(t[i].fexit, on && fentry);
		bpf_program__set_autoload(t[i].kprobe, on && kprobe);
		bpf_program__set_autoload(t[i].kretprobe, on && kprobe);
		if (!(on && fentry))
			continue;
		if (bpf_program__set_attach_target(t[i].fentry, 0, t[i].func) ||
		    bpf_program__set_attach_target(t[i].fexit, 0, t[i].func)) {
			fprintf(stderr, "floor: no attach target %s\n", t[i].func);
			goto out;
		}
	}
	if (floor_bpf__load(skel)) {
		fprintf(stderr, "floor: cannot load the BPF object: %s\n",
			strerror(errno));
		goto out;
	}

	for (i = 0; i < nr_targets; i++) {
		struct bpf_link *in, *ret;

		if (fentry) {
			in = bpf_program__attach(t[i].fentry);
			ret = in ? bpf_program__attach(t[i].fexit) : NULL;
		} else {
			in = bpf_program__attach_kprobe(t[i].kprobe, false,
							t[i].func);
			ret = in ? bpf_program__attach_kprobe(t[i].kretprobe,
							      true, t[i].func) :
				   NULL;
		}
		links[n++] = in;
		links[n++] = ret;
		if (!in || !ret) {
			fprintf(stderr, "floor: cannot attach to %s: %s\n",
				t[i].func, strerror(errno));
			goto out;
		}
	}
	links[n] = bpf_program__attach(skel->progs.nop_tp_sync);
	if (links[n++])
		links[n] = bpf_program__attach(skel->progs.nop_tp_unsync);
	if (!links[n++]) {
		fprintf(stderr, "floor: cannot attach the kvmmmu tracepoints: %s\n",
			strerror(errno));
		goto out;
	}

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("floor: attached %d programs (%s)\n", n,
	       fentry ? "fentry" : "kprobe");
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
