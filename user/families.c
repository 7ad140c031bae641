// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The table of every published figure (families.h). */
#include <stddef.h>
#include <linux/types.h>
#include "../bpf/unsync.h"
#include "agent_info.h"
#include "conn_guard.h"
#include "families.h"
#include "kvm_stats.h"

const char *const family_ctx_names[CTX_MAX] = { "sync", "zap" };
const char *const family_walk_names[WALK_RESULT_MAX] = { "done", "enospc" };
const char *const family_sync_names[SYNC_RESULT_MAX] = {
	"ok", "eintr", "other",
};
const char *const family_site_names[SITE_MAX] = { "walk", "clear_parents" };
const char *const family_guest_names[GUEST_MAX] = { "l1", "l2" };
static const char *const closed_reasons[] = { "deadline", "evicted" };

#define CONTEXT		{ "context", family_ctx_names, CTX_MAX }
/* mmu_sync_children's exit counts the calls and flushes its walks' restarts */
#define NEEDS_SYNC	.needs = { PROBE_SYNC_CHILDREN }
/*
 * The walk's hook counts, the sync's says which context: without it every
 * walk would be counted as a zap walk.
 */
#define NEEDS_WALK	.needs = { PROBE_SYNC_CHILDREN, PROBE_UNSYNC_WALK }
#define VM(field)	\
	.src = FROM_VM, .off = offsetof(struct vm_stats, field)
#define SELF(field)	\
	.src = FROM_SELF, .off = offsetof(struct self_stats, field)
#define AGENT(field)	\
	.src = FROM_AGENT, .off = offsetof(struct agent_counters, field)
#define HTTP(field)	\
	.src = FROM_HTTP, .off = offsetof(struct conn_guard_stats, field)
#define KVM(stat)	\
	.src = FROM_KVM, .off = offsetof(struct kvm_vm_kstats, val[stat])

const struct family agent_families[] = {
	/* per VM, from the vm_stats map */
	{ .name = "kvm_unsync_sync_calls_total", .type = "counter",
	  .help = "mmu_sync_children calls, by result (other: neither 0 nor -EINTR, "
	  "never expected).",
	  VM(sync_calls), .dims = { { "result", family_sync_names, SYNC_RESULT_MAX } },
	  .flags = FAMILY_OMIT_ZERO_LAST, NEEDS_SYNC,
	  .key = "sync_calls" },
	{ .name = "kvm_unsync_walks_total", .type = "counter",
	  .help = "Top-level mmu_unsync_walk calls, by context (sync: inside "
	  "mmu_sync_children, zap: elsewhere) and result (enospc: the page "
	  "vector filled).",
	  VM(walks),
	  .dims = { CONTEXT, { "result", family_walk_names, WALK_RESULT_MAX } },
	  NEEDS_WALK,
	  .key = "walks" },
	{ .name = "kvm_unsync_walk_frames_total", .type = "counter",
	  .help = "__mmu_unsync_walk frames, recursion included.",
	  VM(frames), .dims = { CONTEXT }, NEEDS_WALK,
	  .key = "frames" },
	{ .name = "kvm_unsync_restarts_total", .type = "counter",
	  .help = "Top-level walks inside a sync that returned -ENOSPC, so the sync "
	  "walked again.",
	  VM(restarts), NEEDS_WALK,
	  .key = "restarts" },
	{ .name = "kvm_unsync_walk_leaves_total", .type = "counter",
	  .help = "Unsync pages the walks handed to their caller.",
	  VM(leaves), .dims = { CONTEXT }, NEEDS_WALK,
	  .key = "leaves" },
	{ .name = "kvm_unsync_bitmap_clears_total", .type = "counter",
	  .help = "unsync_child_bitmap bits cleared, by context and by site (walk: in "
	  "__mmu_unsync_walk, clear_parents: in mmu_pages_clear_parents).",
	  VM(clears),
	  .dims = { CONTEXT, { "site", family_site_names, SITE_MAX, "in" } },
	  .flags = FAMILY_SITE_SOURCES, NEEDS_WALK,
	  .key = "clears" },
	{ .name = "kvm_unsync_pages_unsynced_total", .type = "counter",
	  .help = "Shadow pages marked unsync (kvmmmu:kvm_mmu_unsync_page).",
	  VM(pages_unsynced), .needs = { PROBE_TP_UNSYNC_PAGE },
	  .key = "pages_unsynced" },
	{ .name = "kvm_unsync_pages_synced_total", .type = "counter",
	  .help = "Shadow pages synced (kvmmmu:kvm_mmu_sync_page).",
	  VM(pages_synced), .needs = { PROBE_TP_SYNC_PAGE },
	  .key = "pages_synced" },

	/* global histograms, from the hists map */
	{ .name = "kvm_unsync_pvec_depth", .type = "histogram",
	  .help = "Page vector fill (pvec->nr, 0 to 16) when a top-level walk "
	  "returns.",
	  .src = FROM_PVEC_HIST, .dims = { CONTEXT }, NEEDS_WALK },
	{ .name = "kvm_unsync_sync_duration_seconds", .type = "histogram",
	  .help = "mmu_sync_children call duration (log2 buckets; le is exclusive to "
	  "the nanosecond).",
	  .src = FROM_DURATION_HIST, NEEDS_SYNC },

	/* the agent's own health */
	{ .name = "kvm_unsync_probe_attached", .type = "gauge",
	  .help = "1 if the probe is attached, 0 if not; mode is how (fentry, kprobe, "
	  "tracepoint, none).",
	  .src = FROM_PROBES },
	{ .name = "kvm_unsync_ringbuf_dropped_total", .type = "counter",
	  .help = "Events lost because the ring buffer was full.",
	  SELF(ringbuf_dropped),
	  .key = "ringbuf_dropped" },
	{ .name = "kvm_unsync_task_state_full_total", .type = "counter",
	  .help = "Walks not traced: no room left for the task's walk state.",
	  SELF(task_state_full),
	  .key = "task_state_full" },
	{ .name = "kvm_unsync_stack_overflow_total", .type = "counter",
	  .help = "Walk frames not traced: recursion deeper than the frame stack.",
	  SELF(stack_overflow),
	  .key = "stack_overflow" },
	{ .name = "kvm_unsync_orphan_exits_total", .type = "counter",
	  .help = "Function exits seen without their entry (probe attached mid-call).",
	  SELF(orphan_exits),
	  .key = "orphan_exits" },
	{ .name = "kvm_unsync_vm_stats_full_total", .type = "counter",
	  .help = "Per-VM counts lost because the vm_stats map was full (more VMMs "
	  "than it holds): each is one sync, zap walk or tracepoint hit.",
	  SELF(vm_stats_full),
	  .key = "vm_stats_full" },
	{ .name = "kvm_unsync_vm_names_full_total", .type = "counter",
	  .help = "New VMs whose name the vm_names map could not keep (full, or "
	  "out of memory): each is named from /proc while it lives.",
	  SELF(vm_names_full) },
	{ .name = "kvm_unsync_ringbuf_events_total", .type = "counter",
	  .help = "Ring-buffer events consumed by the daemon (only --trace sends any).",
	  AGENT(ringbuf_events) },
	{ .name = "kvm_unsync_build_info", .type = "gauge",
	  .help = "Agent version; the value is always 1.",
	  .src = FROM_BUILD_INFO },
	{ .name = "kvm_unsync_kernel_info", .type = "gauge",
	  .help = "Running kernel release and KVM MMU variant; the value is always 1.",
	  .src = FROM_KERNEL_INFO },
	{ .name = "kvm_unsync_bitmap_clears_source", .type = "gauge",
	  .help = "How each site of kvm_unsync_bitmap_clears_total is counted: hook (a "
	  "probe on the function that clears), derived (computed from the page "
	  "vector: a stock kernel, unless --clear-parents=hook), absent (the kernel has "
	  "no such site: its count is 0), missing (not counted: the site's series "
	  "are left out); the value is always 1.",
	  .src = FROM_CLEARS_SOURCE },
	{ .name = "kvm_unsync_vms", .type = "gauge",
	  .help = "VMs tracked: tgids in the vm_stats map.",
	  .src = FROM_VMS },
	{ .name = "kvm_unsync_vms_folded_total", .type = "counter",
	  .help = "VMs counted in vm=\"other\" rather than under their own labels "
	  "(--max-vms).",
	  AGENT(vms_folded) },
	{ .name = "kvm_unsync_scrape_errors_total", .type = "counter",
	  .help = "Scrapes in which reading or cleaning up the BPF maps failed.",
	  AGENT(scrape_errors) },
};
const size_t nr_agent_families =
	sizeof(agent_families) / sizeof(agent_families[0]);

const struct family http_families[] = {
	{ .name = "kvm_unsync_http_connections", .type = "gauge",
	  .help = "HTTP connections open, this one included.",
	  HTTP(open) },
	{ .name = "kvm_unsync_http_connections_closed_total", .type = "counter",
	  .help = "HTTP connections the server shut down: deadline = a request not "
	  "received and answered in time (slow client), evicted = dropped to "
	  "make room for a new one.",
	  HTTP(closed_deadline), .dims = { { "reason", closed_reasons, 2 } } },
};
const size_t nr_http_families =
	sizeof(http_families) / sizeof(http_families[0]);

/* closed_total's reason dim reads the two counters as one array */
_Static_assert(offsetof(struct conn_guard_stats, closed_evicted) ==
	       offsetof(struct conn_guard_stats, closed_deadline) +
	       sizeof(__u64), "closed_deadline, closed_evicted adjacent");

/*
 * Names are kvm_stat_descs[]'s with the prefix, _total on the cumulative
 * ones; their kind is KVM's (arch/x86/kvm/x86.c kvm_vm_stats_desc[]).  A
 * unit test holds the two tables together.
 */
const struct family kvm_families[] = {
	{ .name = "kvm_unsync_kvm_mmu_shadow_zapped_total", .type = "counter",
	  .help = "KVM's mmu_shadow_zapped: shadow pages zapped "
	  "(__kvm_mmu_prepare_zap_page).",
	  KVM(KVM_STAT_MMU_SHADOW_ZAPPED) },
	{ .name = "kvm_unsync_kvm_mmu_pte_write_total", .type = "counter",
	  .help = "KVM's mmu_pte_write: guest writes to write-protected guest page "
	  "tables.",
	  KVM(KVM_STAT_MMU_PTE_WRITE) },
	{ .name = "kvm_unsync_kvm_mmu_pde_zapped_total", .type = "counter",
	  .help = "KVM's mmu_pde_zapped: non-leaf sptes zapped by a guest "
	  "page-table write.",
	  KVM(KVM_STAT_MMU_PDE_ZAPPED) },
	{ .name = "kvm_unsync_kvm_mmu_flooded_total", .type = "counter",
	  .help = "KVM's mmu_flooded: shadow pages zapped because the guest kept "
	  "writing them.",
	  KVM(KVM_STAT_MMU_FLOODED) },
	{ .name = "kvm_unsync_kvm_mmu_recycled_total", .type = "counter",
	  .help = "KVM's mmu_recycled: shadow pages zapped to make room (the oldest "
	  "first).",
	  KVM(KVM_STAT_MMU_RECYCLED) },
	{ .name = "kvm_unsync_kvm_mmu_cache_miss_total", .type = "counter",
	  .help = "KVM's mmu_cache_miss: shadow pages created because none "
	  "matched.",
	  KVM(KVM_STAT_MMU_CACHE_MISS) },
	{ .name = "kvm_unsync_kvm_mmu_unsync", .type = "gauge",
	  .help = "KVM's mmu_unsync: shadow pages unsync now.",
	  KVM(KVM_STAT_MMU_UNSYNC) },
	{ .name = "kvm_unsync_kvm_stats_readable", .type = "gauge",
	  .help = "1 if KVM's per-VM stats (debugfs, /sys/kernel/debug/kvm) were "
	  "read at this scrape, 0 if not: debugfs not mounted, kvm not loaded, "
	  "hidden by a sandbox (the log says which), or the agent's own maps "
	  "could not be read.",
	  .src = FROM_KVM_READABLE },
};
const size_t nr_kvm_families =
	sizeof(kvm_families) / sizeof(kvm_families[0]);
