// SPDX-License-Identifier: GPL-2.0
/*
 * The floors of `make bench`: programs that do nothing.  What a run under
 * them costs over no BPF at all is what any probe on those hooks costs
 * (the trampoline or the kprobe trap, the program call), before any work.
 * bench/floor.c picks the flavour and the hook set:
 *   naive  every hook a straightforward agent needs, whatever the agent
 *          itself hooks: entry and exit of mmu_sync_children,
 *          __mmu_unsync_walk and mmu_pages_clear_parents (where the kernel
 *          has it), and the two kvmmmu tracepoints as raw tracepoints;
 *   agent  the agent's own default hook set: the two functions, and the
 *          tracepoints as BTF tracepoints.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

/*
 * One do-nothing program per hook.  Names under 16 bytes: bpf_stats
 * reports the kernel's copy of the name.
 */
#define NOP(sec, name)			\
SEC(sec)				\
int name(void *ctx)			\
{					\
	return 0;			\
}

NOP("fentry", nop_fe_sync)
NOP("fexit", nop_fx_sync)
NOP("fentry", nop_fe_walk)
NOP("fexit", nop_fx_walk)
NOP("fentry", nop_fe_clear)
NOP("fexit", nop_fx_clear)

NOP("kprobe", nop_kp_sync)
NOP("kretprobe", nop_kr_sync)
NOP("kprobe", nop_kp_walk)
NOP("kretprobe", nop_kr_walk)
NOP("kprobe", nop_kp_clear)
NOP("kretprobe", nop_kr_clear)

NOP("raw_tp/kvm_mmu_sync_page", nop_tp_sync)
NOP("raw_tp/kvm_mmu_unsync_page", nop_tp_unsync)
NOP("tp_btf/kvm_mmu_sync_page", nop_tb_sync)
NOP("tp_btf/kvm_mmu_unsync_page", nop_tb_unsync)
