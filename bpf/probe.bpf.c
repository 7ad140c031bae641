// SPDX-License-Identifier: GPL-2.0
/*
 * Do-nothing programs for the start-up attach test: user space points one
 * of them at a kernel function, loads it and attaches it for real, which is
 * the only honest answer to "can this flavour hook that function here?".
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("fentry")
int probe_fentry(void *ctx)
{
	return 0;
}

SEC("kprobe")
int probe_kprobe(void *ctx)
{
	return 0;
}
