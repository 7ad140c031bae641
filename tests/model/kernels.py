"""The kernels the model predicts for, and where their code differs.

The model (shadow.py, kvm_shapes.py) is transcribed from Debian 12's 6.1.
Debian 13 ships 6.12, sid 7.2 and trixie-backports 7.3 (the newest Debian
ships, the lab's newest kernel pair); tests/model/kernel_source.sh fetches
all four sources.  Read side by side, the walk (mmu_sync_children,
__mmu_unsync_walk, mmu_pages_add/first/next, mmu_pages_clear_parents,
clear_unsync_child_bit, mmu_zap_unsync_children, struct kvm_mmu_pages,
struct mmu_page_path) is the same code in all of them; what differs is listed
in DIFFERENCES, each with the lines it comes from in each kernel, and the
model follows each kernel where its state can tell them apart (Kernel
fields).  None of them changes a figure the agent reports for the lab's
shapes; test_model_kernels.py proves that on the model and checks every
line cited here against the fetched sources.
"""

import hashlib
import os
import re
from collections import namedtuple

Kernel = namedtuple("Kernel", [
    "release",      # "6.1", "6.12", "7.2", "7.3"
    "suite",        # Debian suite that ships it (kernel_source.sh -s)
    "package",      # the source package the line numbers below are from
    # kvm_sync_page's body: "page" = FNAME(sync_page), which returns -1
    # at the first gPTE it cannot read; "spte" = __kvm_sync_page, which
    # syncs every present entry with kvm_sync_spte and returns -1 after
    # the loop if any of them failed (DIFFERENCES "sync").
    "sync_page",
    # FNAME(fetch) resets write_flooding_count of the direct sps below the
    # guest's leaf level too (DIFFERENCES "fetch-flood").
    "fetch_clears_direct_flood",
    # mmu_try_to_unsync_pages returns 0 at once for a gfn that a 2 MiB
    # page may map (DIFFERENCES "unsync-lpage").
    "unsync_lpage_shortcut",
    # mmu_shrink_scan exists (DIFFERENCES "shrinker"; not modelled).
    "shrinker",
    # Anonymous mmaps of a 2 MiB multiple are 2 MiB aligned (mm/mmap.c,
    # DIFFERENCES "thp-align"; not modelled).
    "thp_aligned_anon",
])

KERNELS = {
    "6.1": Kernel("6.1", "bookworm", "linux-source-6.1 6.1.192-3",
                  sync_page="page", fetch_clears_direct_flood=True,
                  unsync_lpage_shortcut=False, shrinker=True,
                  thp_aligned_anon=False),
    "6.12": Kernel("6.12", "trixie", "linux-source-6.12 6.12.117-1",
                   sync_page="spte", fetch_clears_direct_flood=False,
                   unsync_lpage_shortcut=False, shrinker=True,
                   thp_aligned_anon=True),
    "7.2": Kernel("7.2", "sid", "linux-source-7.2 7.2.13-1",
                  sync_page="spte", fetch_clears_direct_flood=False,
                  unsync_lpage_shortcut=True, shrinker=False,
                  thp_aligned_anon=True),
    # The newest Debian ships (trixie-backports), the lab's newest pair
    # (tests/kernel/newest).
    "7.3": Kernel("7.3", "trixie-backports", "linux-source-7.3 7.3.4-1~bpo13+1",
                  sync_page="spte", fetch_clears_direct_flood=False,
                  unsync_lpage_shortcut=True, shrinker=False,
                  thp_aligned_anon=True),
}
RELEASES = tuple(KERNELS)
DEFAULT = "6.1"
# The releases the lab's patch series is rebased onto (tests/kernel/
# patches/, patches-7.3/): the patched model follows these.  The series'
# code is the same in both (tests/kernel/README.md, "The rebase onto 7.3").
PATCHED_RELEASES = ("6.1", "7.3")


def get(release=None):
    """The Kernel for a release ("6.1", "6.12", "7.2", "7.3"; None: 6.1)."""
    if release is None:
        return KERNELS[DEFAULT]
    if isinstance(release, Kernel):
        return release
    try:
        return KERNELS[release]
    except KeyError:
        raise ValueError("kernel release must be one of %s" % ", ".join(RELEASES))


MMU = "arch/x86/kvm/mmu/mmu.c"
TMPL = "arch/x86/kvm/mmu/paging_tmpl.h"
INTERNAL = "arch/x86/kvm/mmu/mmu_internal.h"
X86 = "arch/x86/kvm/x86.c"

# The walk and everything between a walk's exit and mmu_pages_clear_parents:
# function -> start line of its definition in mmu.c, per release.  Their
# bodies are compared after NORMALIZE (test_model_kernels.py).
WALK_FUNCTIONS = {
    "mmu_sync_children":        {"6.1": 1980, "6.12": 2068, "7.2": 2218, "7.3": 2222},
    "mmu_unsync_walk":          {"6.1": 1829, "6.12": 1847, "7.2": 1976, "7.3": 1980},
    "__mmu_unsync_walk":        {"6.1": 1788, "6.12": 1806, "7.2": 1935, "7.3": 1939},
    "mmu_pages_add":            {"6.1": 1765, "6.12": 1783, "7.2": 1912, "7.3": 1916},
    "mmu_pages_first":          {"6.1": 1939, "6.12": 2027, "7.2": 2177, "7.3": 2181},
    "mmu_pages_next":           {"6.1": 1918, "6.12": 2006, "7.2": 2156, "7.3": 2160},
    "mmu_pages_clear_parents":  {"6.1": 1963, "6.12": 2051, "7.2": 2201, "7.3": 2205},
    "clear_unsync_child_bit":   {"6.1": 1781, "6.12": 1799, "7.2": 1928, "7.3": 1932},
    "kvm_unlink_unsync_page":   {"6.1": 1840, "6.12": 1858, "7.2": 1987, "7.3": 1991},
    "kvm_sync_page":            {"6.1": 1874, "6.12": 1962, "7.2": 2112, "7.3": 2116},
    "kvm_mmu_remote_flush_or_zap": {"6.1": 1884, "6.12": 1972, "7.2": 2122, "7.3": 2126},
    "kvm_vcpu_write_protect_gfn": {"6.1": 1385, "6.12": 1394, "7.2": 1518, "7.3": 1521},
    "mmu_zap_unsync_children":  {"6.1": 2432, "6.12": 2537, "7.2": 2712, "7.3": 2718},
    "__kvm_mmu_prepare_zap_page": {"6.1": 2456, "6.12": 2561, "7.2": 2736, "7.3": 2742},
    "kvm_mmu_unlink_parents":   {"6.1": 2423, "6.12": 2528, "7.2": 2703, "7.3": 2709},
    "drop_parent_pte":          {"6.1": 1719, "6.12": 1743, "7.2": 1872, "7.3": 1876},
    "kvm_mmu_page_unlink_children": {"6.1": 2410, "6.12": 2515, "7.2": 2690, "7.3": 2696},
    "kvm_mmu_mark_parents_unsync": {"6.1": 1727, "6.12": 1751, "7.2": 1880, "7.3": 1884},
    "mark_unsync":              {"6.1": 1737, "6.12": 1761, "7.2": 1890, "7.3": 1894},
    "kvm_unsync_page":          {"6.1": 2680, "6.12": 2795, "7.2": 2970, "7.3": 2976},
    "kvm_mmu_sync_roots":       {"6.1": 3899, "6.12": 4081, "7.2": 4348, "7.3": 4358},
    "kvm_mmu_zap_oldest_mmu_pages": {"6.1": 2555, "6.12": 2660, "7.2": 2835, "7.3": 2841},
    "make_mmu_pages_available": {"6.1": 2601, "6.12": 2706, "7.2": 2881, "7.3": 2887},
    "detect_write_flooding":    {"6.1": 5443, "6.12": 5913, "7.2": 6372, "7.3": 6353},
}

# Renames and reworded assertions between 6.1 and 7.2 that do the same
# thing: WARN_ON became WARN_ON_ONCE (a warning, no effect on the state);
# to_shadow_page(spte & SPTE_BASE_ADDR_MASK) became spte_to_child_sp(spte)
# and root_to_sp(root) (the same page); functions gained a struct kvm *
# argument for pte_list accounting; sp = ... moved below an early return
# in kvm_mmu_sync_roots (it is only read after it); 6.12 dropped the
# shadow MMU's is_tdp_mmu_enabled() for tdp_mmu_enabled, and the NX huge
# page accounting was renamed.
NORMALIZE = [
    (r"\bWARN_ON_ONCE\(", "WARN_ON("),
    (r"to_shadow_page\((\w+) & SPTE_BASE_ADDR_MASK\)", r"spte_to_child_sp(\1)"),
    (r"\broot &= SPTE_BASE_ADDR_MASK;\s*sp = to_shadow_page\(root\);",
     "sp = spte_to_child_sp(root);"),
    (r"\bto_shadow_page\(root\)", "root_to_sp(root)"),
    (r"\bdrop_parent_pte\(kvm, ", "drop_parent_pte("),
    (r"\bkvm_mmu_unlink_parents\(kvm, ", "kvm_mmu_unlink_parents("),
    (r"\bmmu_page_remove_parent_pte\(kvm, ", "mmu_page_remove_parent_pte("),
    (r"\(struct kvm \*kvm, struct kvm_mmu_page \*sp", "(struct kvm_mmu_page *sp"),
    (r"\bis_tdp_mmu_enabled\(kvm\)", "tdp_mmu_enabled"),
    (r"\blpage_disallowed\b", "nx_huge_page_disallowed"),
    (r"\bunaccount_huge_nx_page\b", "unaccount_nx_huge_page"),
    (r"\bkvm->arch\.n_used_mmu_pages\b", "kvm->stat.mmu_shadow_pages"),
    (r"\bvoid kvm_mmu_zap_all\b", "static void kvm_mmu_zap_all"),
    # 7.3 reads the guest's paging role through mmu->w (the same field).
    (r"->w->cpu_role\b", "->cpu_role"),
]

# Functions of WALK_FUNCTIONS whose normalized bodies still differ from
# 6.1's: (the DIFFERENCES entry that covers it, or None, and the
# substitution that makes 6.1's body the later one).
WALK_DIFFERS = {
    # 6.1's callee FNAME(sync_page) became __kvm_sync_page (DIFFERENCES "sync").
    "kvm_sync_page": ("sync", r"vcpu->arch\.mmu->sync_page\(vcpu, sp\)",
                      "__kvm_sync_page(vcpu, sp)"),
    # 6.12 reads the root's sp after is_unsync_root() instead of before:
    # sp is not used in between.
    "kvm_mmu_sync_roots": (None, r"sp = root_to_sp\(root\); if \(!is_unsync_root\(root\)\) return;",
                           "if (!is_unsync_root(root)) return; sp = root_to_sp(root);"),
}

# From a walk's exit to mmu_pages_clear_parents(), per release: the lines
# of mmu_sync_children and mmu_zap_unsync_children that run in between,
# and why none of them touches unsync_children or unsync_child_bitmap of a
# page above the leaves (README "Kernels").  mmu_lock is held for write
# throughout: the only place it can be dropped is the
# cond_resched_rwlock_write() after a batch's last clear_parents.
CLEAR_PARENTS = {
    "6.1": [
        (MMU, 1990, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 1994, "protected |= kvm_vcpu_write_protect_gfn(vcpu, sp->gfn);"),
        (MMU, 1997, "kvm_mmu_remote_flush_or_zap(vcpu->kvm, &invalid_list, true);"),
        (MMU, 2002, "kvm_unlink_unsync_page(vcpu->kvm, sp);"),
        (MMU, 2003, "flush |= kvm_sync_page(vcpu, sp, &invalid_list) > 0;"),
        (MMU, 2004, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2013, "cond_resched_rwlock_write(&vcpu->kvm->mmu_lock);"),
        (MMU, 2443, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2447, "kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);"),
        (MMU, 2448, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2440, "if (parent->role.level == PG_LEVEL_4K)"),
        (MMU, 2466, "*nr_zapped = mmu_zap_unsync_children(kvm, sp, invalid_list);"),
        (MMU, 2468, "kvm_mmu_unlink_parents(sp);"),
        (MMU, 1723, "mmu_spte_clear_no_track(parent_pte);"),
        (TMPL, 1082, "spte_to_pfn(spte), spte, true, false,"),
    ],
    "6.12": [
        (MMU, 2078, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2082, "protected |= kvm_vcpu_write_protect_gfn(vcpu, sp->gfn);"),
        (MMU, 2085, "kvm_mmu_remote_flush_or_zap(vcpu->kvm, &invalid_list, true);"),
        (MMU, 2090, "kvm_unlink_unsync_page(vcpu->kvm, sp);"),
        (MMU, 2091, "flush |= kvm_sync_page(vcpu, sp, &invalid_list) > 0;"),
        (MMU, 2092, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2101, "cond_resched_rwlock_write(&vcpu->kvm->mmu_lock);"),
        (MMU, 2548, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2552, "kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);"),
        (MMU, 2553, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2545, "if (parent->role.level == PG_LEVEL_4K)"),
        (MMU, 2571, "*nr_zapped = mmu_zap_unsync_children(kvm, sp, invalid_list);"),
        (MMU, 2573, "kvm_mmu_unlink_parents(kvm, sp);"),
        (MMU, 1747, "mmu_spte_clear_no_track(parent_pte);"),
        (TMPL, 990, "spte_to_pfn(spte), spte, true, false,"),
    ],
    "7.2": [
        (MMU, 2228, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2232, "protected |= kvm_vcpu_write_protect_gfn(vcpu, sp->gfn);"),
        (MMU, 2235, "kvm_mmu_remote_flush_or_zap(vcpu->kvm, &invalid_list, true);"),
        (MMU, 2240, "kvm_unlink_unsync_page(vcpu->kvm, sp);"),
        (MMU, 2241, "flush |= kvm_sync_page(vcpu, sp, &invalid_list) > 0;"),
        (MMU, 2242, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2251, "cond_resched_rwlock_write(&vcpu->kvm->mmu_lock);"),
        (MMU, 2723, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2727, "kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);"),
        (MMU, 2728, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2720, "if (parent->role.level == PG_LEVEL_4K)"),
        (MMU, 2746, "*nr_zapped = mmu_zap_unsync_children(kvm, sp, invalid_list);"),
        (MMU, 2748, "kvm_mmu_unlink_parents(kvm, sp);"),
        (MMU, 1876, "mmu_spte_clear_no_track(parent_pte);"),
        (TMPL, 995, "spte_to_pfn(spte), spte, true, true,"),
    ],
    "7.3": [
        (MMU, 2232, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2236, "protected |= kvm_vcpu_write_protect_gfn(vcpu, sp->gfn);"),
        (MMU, 2239, "kvm_mmu_remote_flush_or_zap(vcpu->kvm, &invalid_list, true);"),
        (MMU, 2244, "kvm_unlink_unsync_page(vcpu->kvm, sp);"),
        (MMU, 2245, "flush |= kvm_sync_page(vcpu, sp, &invalid_list) > 0;"),
        (MMU, 2246, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2255, "cond_resched_rwlock_write(&vcpu->kvm->mmu_lock);"),
        (MMU, 2729, "while (mmu_unsync_walk(parent, &pages)) {"),
        (MMU, 2733, "kvm_mmu_prepare_zap_page(kvm, sp, invalid_list);"),
        (MMU, 2734, "mmu_pages_clear_parents(&parents);"),
        (MMU, 2726, "if (parent->role.level == PG_LEVEL_4K)"),
        (MMU, 2752, "*nr_zapped = mmu_zap_unsync_children(kvm, sp, invalid_list);"),
        (MMU, 2754, "kvm_mmu_unlink_parents(kvm, sp);"),
        (MMU, 1880, "mmu_spte_clear_no_track(parent_pte);"),
        (TMPL, 998, "spte_to_pfn(spte), spte, true, true,"),
    ],
}
# The functions that run there (and their callees on a level-1 page), none
# of which names unsync_children, unsync_child_bitmap, mark_unsync or
# clear_unsync_child_bit (as words: __kvm_mmu_prepare_zap_page calls
# mmu_zap_unsync_children, which returns 0 at once for a level-1 page).
BETWEEN = {
    MMU: ["kvm_vcpu_write_protect_gfn", "kvm_mmu_slot_gfn_write_protect",
          "rmap_write_protect", "spte_write_protect",
          "kvm_mmu_remote_flush_or_zap", "kvm_mmu_commit_zap_page",
          "kvm_mmu_free_shadow_page", "kvm_unlink_unsync_page", "kvm_sync_page",
          "__kvm_sync_page", "kvm_sync_spte", "kvm_sync_page_check",
          "kvm_mmu_prepare_zap_page", "__kvm_mmu_prepare_zap_page",
          "kvm_mmu_page_unlink_children", "mmu_page_zap_pte",
          "kvm_mmu_unlink_parents", "drop_parent_pte", "drop_spte",
          "mmu_page_remove_parent_pte", "mmu_spte_clear_no_track"],
    TMPL: ["FNAME(sync_page)", "FNAME(sync_spte)", "FNAME(prefetch_invalid_gpte)"],
}
# Those of BETWEEN a release does not have (the 6.4 rework of the sync).
BETWEEN_ABSENT = {
    "6.1": {"__kvm_sync_page", "kvm_sync_spte", "kvm_sync_page_check",
            "FNAME(sync_spte)"},
    "6.12": {"FNAME(sync_page)"},
    "7.2": {"FNAME(sync_page)"},
    "7.3": {"FNAME(sync_page)"},
}
BETWEEN_WORDS = ("unsync_children", "unsync_child_bitmap", "mark_unsync",
                 "clear_unsync_child_bit", "kvm_mmu_mark_parents_unsync")

# What differs, per release: [(file, line, text on that line)].  "figures"
# says why no figure of the lab's shapes can change.
Difference = namedtuple("Difference", "key what figures lines")
DIFFERENCES = [
    Difference(
        "sync",
        "kvm_sync_page. 6.1 calls mmu->sync_page = FNAME(sync_page), which "
        "checks the role (WARN_ON_ONCE, -1) and returns -1 at the first "
        "gPTE it cannot read, leaving the later entries as they were. 6.4 "
        "reworked it: __kvm_sync_page checks the role in kvm_sync_page_check, "
        "then calls kvm_sync_spte -> FNAME(sync_spte) for every present "
        "entry; a failed read returns -1 for that entry, 'if (ret < -1)' "
        "does not stop the loop (nothing returns less than -1), "
        "'flush |= ret' makes flush -1, so the remaining entries are still "
        "synced and __kvm_sync_page returns -1 at the end. kvm_sync_page "
        "zaps on ret < 0 in all of them.",
        "A page is zapped in exactly the same cases (role mismatch, or any "
        "gPTE unreadable); which leaf sptes of a page being zapped got "
        "synced first is not counted (the zap drops them all). "
        "kvm_mmu_sync_page fires in kvm_unlink_unsync_page before the sync "
        "in all of them. For the lab's pages neither case happens (A5).",
        {"6.1": [(MMU, 1877, "int ret = vcpu->arch.mmu->sync_page(vcpu, sp);"),
                 (MMU, 1880, "kvm_mmu_prepare_zap_page(vcpu->kvm, sp, invalid_list);"),
                 (TMPL, 994, "static int FNAME(sync_page)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp)"),
                 (TMPL, 1045, "return -1;")],
         "6.12": [(MMU, 1965, "int ret = __kvm_sync_page(vcpu, sp);"),
                  (MMU, 1939, "if (!kvm_sync_page_check(vcpu, sp))"),
                  (MMU, 1945, "if (ret < -1)"),
                  (MMU, 1947, "flush |= ret;"),
                  (TMPL, 928, "static int FNAME(sync_spte)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, int i)"),
                  (TMPL, 948, "return -1;")],
         "7.2": [(MMU, 2115, "int ret = __kvm_sync_page(vcpu, sp);"),
                 (MMU, 2089, "if (!kvm_sync_page_check(vcpu, sp))"),
                 (MMU, 2095, "if (ret < -1)"),
                 (MMU, 2097, "flush |= ret;"),
                 (TMPL, 933, "static int FNAME(sync_spte)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, int i)"),
                 (TMPL, 953, "return -1;")],
         "7.3": [(MMU, 2119, "int ret = __kvm_sync_page(vcpu, sp);"),
                 (MMU, 2093, "if (!kvm_sync_page_check(vcpu, sp))"),
                 (MMU, 2099, "if (ret < -1)"),
                 (MMU, 2101, "flush |= ret;"),
                 (TMPL, 936, "static int FNAME(sync_spte)(struct kvm_vcpu *vcpu, struct kvm_mmu_page *sp, int i)"),
                 (TMPL, 956, "return -1;")]}),
    Difference(
        "fetch-flood",
        "FNAME(fetch) resets write_flooding_count along the faulting "
        "address's shadow path. 6.1 does it in both loops (every sp down to "
        "the leaf, direct ones included); 6.12 and later only in the first "
        "(every sp down to the guest's leaf level, which the first loop "
        "now reaches before its break).",
        "The guest-table sps get the same resets. Direct sps are never "
        "flood-checked: kvm_mmu_track_write/kvm_mmu_pte_write only visit "
        "sps with gptes (for_each_gfn_valid_sp_with_gptes). So PD_t[0] is "
        "zapped at the same (3rd) write in all of them (A10).",
        {"6.1": [(TMPL, 650, "clear_sp_write_flooding_count(it.sptep);"),
                 (TMPL, 694, "for (; shadow_walk_okay(&it); shadow_walk_next(&it)) {"),
                 (TMPL, 695, "clear_sp_write_flooding_count(it.sptep);")],
         "6.12": [(TMPL, 687, "clear_sp_write_flooding_count(it.sptep);"),
                  (TMPL, 688, "if (it.level == gw->level)"),
                  (TMPL, 746, "for (; shadow_walk_okay(&it); shadow_walk_next(&it)) {")],
         "7.2": [(TMPL, 691, "clear_sp_write_flooding_count(it.sptep);"),
                 (TMPL, 692, "if (it.level == gw->level)"),
                 (TMPL, 750, "for (; shadow_walk_okay(&it); shadow_walk_next(&it)) {")],
         "7.3": [(TMPL, 694, "clear_sp_write_flooding_count(it.sptep);"),
                 (TMPL, 695, "if (it.level == gw->level)"),
                 (TMPL, 753, "for (; shadow_walk_okay(&it); shadow_walk_next(&it)) {")]}),
    Difference(
        "sync-callers",
        "Who calls mmu_sync_children: kvm_mmu_load -> kvm_mmu_sync_roots "
        "(A1), KVM_REQ_MMU_SYNC from kvm_invalidate_pcid on a same-value "
        "CR3 load, served at the next entry (A2), and FNAME(fetch) with "
        "can_yield false on a new upper-level sp with unsync children. "
        "6.12 merged fetch's two ifs into one condition (sp != -EEXIST && "
        "unsync_children && mmu_sync_children(...)), and kvm_set_cr3 moved "
        "from x86.c to regs.c unchanged in what it requests.",
        "None: the same calls with the same can_yield in the same order.",
        {"6.1": [(MMU, 5341, "kvm_mmu_sync_roots(vcpu);"),
                 (X86, 1258, "kvm_make_request(KVM_REQ_MMU_SYNC, vcpu);"),
                 (X86, 10675, "if (kvm_check_request(KVM_REQ_MMU_SYNC, vcpu))"),
                 (TMPL, 674, "if (sp->unsync_children &&"),
                 (TMPL, 675, "mmu_sync_children(vcpu, sp, false))")],
         "6.12": [(MMU, 5806, "kvm_mmu_sync_roots(vcpu);"),
                  (X86, 1165, "kvm_make_request(KVM_REQ_MMU_SYNC, vcpu);"),
                  (X86, 10334, "if (kvm_check_request(KVM_REQ_MMU_SYNC, vcpu))"),
                  (TMPL, 712, "if (sp != ERR_PTR(-EEXIST) && sp->unsync_children &&"),
                  (TMPL, 713, "mmu_sync_children(vcpu, sp, false))")],
         "7.2": [(MMU, 6264, "kvm_mmu_sync_roots(vcpu);"),
                 (X86, 1156, "kvm_make_request(KVM_REQ_MMU_SYNC, vcpu);"),
                 (X86, 10718, "if (kvm_check_request(KVM_REQ_MMU_SYNC, vcpu))"),
                 (TMPL, 716, "if (sp != ERR_PTR(-EEXIST) && sp->unsync_children &&"),
                 (TMPL, 717, "mmu_sync_children(vcpu, sp, false))")],
         "7.3": [(MMU, 6245, "kvm_mmu_sync_roots(vcpu);"),
                 (X86, 780, "kvm_make_request(KVM_REQ_MMU_SYNC, vcpu);"),
                 (X86, 8104, "if (kvm_check_request(KVM_REQ_MMU_SYNC, vcpu))"),
                 (TMPL, 719, "if (sp != ERR_PTR(-EEXIST) && sp->unsync_children &&"),
                 (TMPL, 720, "mmu_sync_children(vcpu, sp, false))")]}),
    Difference(
        "unsync-lpage",
        "mmu_try_to_unsync_pages: 7.2 and 7.3 return 0 right after the "
        "write-track check when kvm_gfn_is_lpage_allowed(gfn, 2M): such a "
        "gfn cannot have a shadow page (account_shadowed disallows huge "
        "pages for every shadowed gfn). 6.1 and 6.12 reach the same 0 by "
        "finding no sp in the loop. The argument can_unsync became "
        "synchronizing (= !can_unsync).",
        "Same result for every gfn: a gfn with a level-1 sp is "
        "lpage-disallowed, so it takes the loop in all of them; kvm_unsync_page "
        "(the only place bits get set) runs for the same pages.",
        {"6.1": [(MMU, 2695, "int mmu_try_to_unsync_pages(struct kvm *kvm, const struct kvm_memory_slot *slot,"),
                 (MMU, 2716, "if (!can_unsync)")],
         "6.12": [(MMU, 2810, "int mmu_try_to_unsync_pages(struct kvm *kvm, const struct kvm_memory_slot *slot,"),
                  (MMU, 2831, "if (!can_unsync)")],
         "7.2": [(MMU, 3005, "if (kvm_gfn_is_lpage_allowed(kvm, slot, gfn, PG_LEVEL_2M))"),
                 (MMU, 3015, "if (synchronizing)")],
         "7.3": [(MMU, 3011, "if (kvm_gfn_is_lpage_allowed(kvm, slot, gfn, PG_LEVEL_2M))"),
                 (MMU, 3021, "if (synchronizing)")]}),
    Difference(
        "shrinker",
        "6.13 removed the shrinker-driven reclaim of shadow pages "
        "(mmu_shrink_scan, which zaps the oldest shadow pages of a VM under "
        "host memory pressure). 6.1 and 6.12 have it; 7.2 and 7.3 do not.",
        "Not modelled (it needs host memory pressure, which the lab VM does "
        "not have): a shrinker run would show as kvm_mmu_prepare_zap_page "
        "and zap walks the model does not predict, on 6.1 and 6.12 only.",
        {"6.1": [(MMU, 6578, "mmu_shrink_scan(struct shrinker *shrink, struct shrink_control *sc)")],
         "6.12": [(MMU, 7211, "static unsigned long mmu_shrink_scan(struct shrinker *shrink,")],
         "7.2": [],
         "7.3": []}),
    Difference(
        "budget",
        "The shadow-page budget: 7.2 and 7.3 count used pages in "
        "kvm->stat.mmu_shadow_pages instead of kvm->arch.n_used_mmu_pages "
        "(the per-cpu total went with the shrinker). Same increments "
        "(kvm_account_mmu_page/kvm_unaccount_mmu_page), same limits "
        "(64 pages, 5 free, refill 25; x86.c's /50 rule).",
        "None: the same number of pages is counted against the same limit.",
        {"6.1": [(MMU, 2594, "if (kvm->arch.n_max_mmu_pages > kvm->arch.n_used_mmu_pages)"),
                 (X86, 13025, "nr_mmu_pages = kvm->nr_memslot_pages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO;")],
         "6.12": [(MMU, 2699, "if (kvm->arch.n_max_mmu_pages > kvm->arch.n_used_mmu_pages)"),
                  (X86, 12485, "nr_mmu_pages = kvm->nr_memslot_pages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO;")],
         "7.2": [(MMU, 2874, "if (kvm->arch.n_max_mmu_pages > kvm->stat.mmu_shadow_pages)"),
                 (X86, 12990, "nr_mmu_pages = kvm->nr_memslot_pages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO;")],
         "7.3": [(MMU, 2880, "if (kvm->arch.n_max_mmu_pages > kvm->stat.mmu_shadow_pages)"),
                 (X86, 10375, "nr_mmu_pages = kvm->nr_memslot_pages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO;")]}),
    Difference(
        "write-protected",
        "A write fault on a write-tracked gfn (the guest's upper-level "
        "tables): 6.1's FNAME(page_fault) returns RET_PF_EMULATE; 6.12 and "
        "later return RET_PF_WRITE_PROTECTED, and kvm_mmu_write_protect_fault "
        "unprotects the gfn instead of emulating only when an event awaits "
        "reinjection (shadow paging), else emulates with "
        "EMULTYPE_ALLOW_RETRY_PF as 6.1 did. x86_emulate_instruction then "
        "unprotects and retries only for an instruction that is not "
        "PageTable-flagged (6.1's retry_instruction did the same).",
        "kvmwalk's guest writes its tables with MOV (PageTable-flagged) and "
        "has no event to reinject: every such write is emulated and reaches "
        "kvm_mmu_pte_write/kvm_mmu_track_write in all of them (A9, A10).",
        {"6.1": [(TMPL, 824, "return RET_PF_EMULATE;"),
                 (X86, 8657, "if (x86_page_table_writing_insn(ctxt))")],
         "6.12": [(TMPL, 829, "return RET_PF_WRITE_PROTECTED;"),
                  (MMU, 6117, "(!direct && kvm_event_needs_reinjection(vcpu))) &&"),
                  (X86, 8768, "!x86_page_table_writing_insn(ctxt) &&")],
         "7.2": [(TMPL, 832, "return RET_PF_WRITE_PROTECTED;"),
                 (MMU, 6576, "(!direct && kvm_event_needs_reinjection(vcpu))) &&"),
                 (X86, 9074, "!x86_page_table_writing_insn(ctxt) &&")],
         "7.3": [(TMPL, 835, "return RET_PF_WRITE_PROTECTED;"),
                 (MMU, 6557, "(!direct && kvm_event_needs_reinjection(vcpu))) &&"),
                 (X86, 6449, "!x86_page_table_writing_insn(ctxt) &&")]}),
    Difference(
        "thp-align",
        "mm/mmap.c: in 6.12 and later (not in 6.1) an anonymous mmap without "
        "hint whose length is a multiple of 2 MiB is 2 MiB aligned "
        "(CONFIG_TRANSPARENT_HUGEPAGE=y in Debian's configs, THP mode "
        "Debian's THP mode is 'always'). kvmwalk maps its guest memory that "
        "way (layout_mem_size rounds to 2 MiB), so on 6.12 and later the "
        "memslot is aligned and large pages are no longer disallowed for the "
        "whole slot (A8).",
        "Region 0 (code, params, stack) gets a 2 MiB spte instead of the "
        "direct sp for gfn 0 if the host backs it with a huge page (and the "
        "NX huge page mitigation does not force 4 KiB for the code fetch: "
        "kvm.nx_huge_pages=auto is on only with X86_BUG_ITLB_MULTIHIT, "
        "get_nx_auto_mode, which the lab's AMD CPU model should not have): "
        "the kvm_mmu_get_page and kvm_mmu_prepare_zap_page "
        "of that sp go, no agent figure moves under the budget. Past the "
        "budget (A14, about 50 tables) one shadow page less and fewer "
        "guest faults move every eviction, and the figures change "
        "(--tables 300 --dirs 3 --rounds 2: 44 tables synced instead of "
        "70). Modelled with huge_pages (predict.py --huge-pages); whether "
        "the lab's memory is THP-backed is for the lab to show, so it is "
        "off by default.",
        {"6.1": [],
         "6.12": [("mm/mmap.c", 915, "&& IS_ALIGNED(len, PMD_SIZE)) {")],
         "7.2": [("mm/mmap.c", 847, "&& IS_ALIGNED(len, PMD_SIZE)) {")],
         "7.3": [("mm/mmap.c", 861, "&& IS_ALIGNED(len, PMD_SIZE)) {")]}),
    Difference(
        "struct",
        "struct kvm_mmu_page: 7.2 and 7.3 put unsync_children (with "
        "write_flooding_count) in an anonymous struct in a union with "
        "external_spt (TDX's external page table, TDP MMU only).",
        "None for shadow pages: the union member is only used by TDP MMU "
        "pages. (The agent reads the field by BTF name.)",
        {"6.1": [(INTERNAL, 95, "unsigned int unsync_children;")],
         "6.12": [(INTERNAL, 104, "unsigned int unsync_children;")],
         "7.2": [(INTERNAL, 99, "union {"),
                 (INTERNAL, 102, "unsigned int unsync_children;"),
                 (INTERNAL, 113, "void *external_spt;")],
         "7.3": [(INTERNAL, 99, "union {"),
                 (INTERNAL, 102, "unsigned int unsync_children;"),
                 (INTERNAL, 113, "void *external_spt;")]}),
]


def assumptions(release):
    """The DIFFERENCES, as lines for predict.py --assumptions, with the
    release's source lines."""
    out = []
    for d in DIFFERENCES:
        where = ", ".join("%s:%d" % (f, n) for f, n, _ in d.lines[release]) or "absent"
        out.append("K-%s (%s: %s) %s Figures: %s" % (d.key, release, where, d.what, d.figures))
    return out


# ----------------------------------------------------------------------
# Reading the fetched sources
# ----------------------------------------------------------------------

def cache_dir():
    return os.environ.get("KUE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kvm-unsync-exporter")


def source_dir(release):
    """The tree kernel_source.sh unpacked for release's suite, or None."""
    d = os.path.join(cache_dir(), "source", get(release).suite, "current")
    return d if os.path.exists(os.path.join(d, ".unpacked")) else None


def source_package(tree):
    """'linux-source-6.12 6.12.117-1' for a tree kernel_source.sh unpacked."""
    with open(os.path.join(tree, ".unpacked")) as f:
        return f.read().strip()


def read_lines(tree, path):
    with open(os.path.join(tree, path)) as f:
        return f.read().split("\n")


def function(lines, name):
    """(first line, last line, text) of the definition of C function name
    (1-based lines), or None.  A definition starts at column 0 and its
    body is brace-balanced; prototypes (ending in ';') are skipped."""
    head = re.compile(r"^[A-Za-z_].*[\s*]" + re.escape(name) + r"\(")
    for i, line in enumerate(lines):
        if not head.match(line) or line.rstrip().endswith(";"):
            continue
        j = i
        while "{" not in lines[j] and not lines[j].rstrip().endswith(";"):
            j += 1
        if "{" not in lines[j]:
            continue
        depth = 0
        for k in range(j, len(lines)):
            depth += lines[k].count("{") - lines[k].count("}")
            if depth == 0:
                return i + 1, k + 1, "\n".join(lines[i:k + 1])
    return None


def normalize(text):
    """A function's text without comments and blank-space differences,
    with NORMALIZE applied."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    for pat, rep in NORMALIZE:
        text = re.sub(pat, rep, text)
    return " ".join(text.split())


def body_hash(text):
    return hashlib.sha256(normalize(text).encode()).hexdigest()[:16]
