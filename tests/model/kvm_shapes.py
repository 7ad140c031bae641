"""Translate a SHAPES.md workload into the KVM events it causes on 6.1.

shadow.py models the walk itself; this module models *what KVM does* while
the kvmwalk guest runs: which shadow pages are created (and in which order,
which fixes the VM-destruction zap order), which go unsync, which syncs run
with which roots, what write flooding zaps, and what VM destruction does.

Every fact about KVM used here is written as an ASSUMPTION (A1, A2, ...)
with the 6.1 source lines it rests on (paths relative to the kernel tree).
The list is also in ASSUMPTIONS below so predict.py can print it.
"""

from collections import namedtuple

import kernels
from shadow import Kvm, Recorder, Role, Spte, PG_LEVEL_4K

GiB = 1 << 30
MiB2 = 1 << 21

Shape = namedtuple("Shape", "paging tables dirs rounds sync flood_zap exit_unsync")


def make_shape(paging="4level", tables=8, dirs=1, rounds=1, sync="cr3",
               flood_zap=False, exit_unsync=False):
    s = Shape(paging, tables, dirs, rounds, sync, flood_zap, exit_unsync)
    validate(s)
    return s


def validate(s):
    if s.paging not in ("4level", "pae"):
        raise ValueError("paging must be 4level or pae")
    if s.sync not in ("cr3", "fault"):
        raise ValueError("sync must be cr3 or fault")
    if s.sync == "fault" and s.paging != "4level":
        raise ValueError("--sync fault is 4level only (SHAPES.md)")
    maxd = 8 if s.paging == "4level" else 3
    if not 1 <= s.dirs <= maxd:
        raise ValueError("dirs must be 1..%d for %s" % (maxd, s.paging))
    if s.rounds < 0:
        raise ValueError("rounds must be >= 0")
    if not 1 <= s.tables <= 511 * s.dirs:
        raise ValueError("tables must be 1..%d with dirs %d (PDE 511 of PD_t[0] "
                         "is the flood target)" % (511 * s.dirs, s.dirs))
    if s.sync == "fault" and 1 + s.dirs + s.rounds > 512:
        raise ValueError("too many rounds for the PDPT0 alias entries")


ASSUMPTIONS = [
    "A1 One kvm_mmu_load with the final paging mode: the guest's paging "
    "(CR0/CR4/EFER/CR3) is in place at the first KVM_RUN that runs with "
    "paging on, and no later event unloads the MMU (no KVM_SET_SREGS after "
    "the first run, CR3 always reloaded with the same value). kvm_mmu_load "
    "(mmu/mmu.c:5324) calls kvm_mmu_sync_roots (mmu.c:5341). A load while "
    "paging is off has a direct root and kvm_mmu_sync_roots returns early "
    "(mmu.c:3904). 4level: is_unsync_root is false at load -> no call; "
    "PAE: one mmu_sync_children per valid PAE root, with nothing to walk.",
    "A2 'mov cr3, cr3' with the same value: kvm_set_cr3 (x86.c:1277) -> "
    "kvm_invalidate_pcid (x86.c:1234), CR4.PCIDE=0 so the active PCID is 0 "
    "-> KVM_REQ_MMU_SYNC -> kvm_mmu_sync_roots at the next entry "
    "(x86.c:10675). PAE: load_pdptrs (x86.c:871) reads identical PDPTEs, "
    "so no kvm_mmu_free_roots, only KVM_REQ_LOAD_MMU_PGD (no sync).",
    "A3 kvm_mmu_sync_roots (mmu.c:3899): 4level calls mmu_sync_children(root, "
    "true) only if is_unsync_root (root unsync or unsync_children); PAE calls "
    "mmu_sync_children(pae_root[i], true) on every valid PAE root, i.e. "
    "1 + D calls (PD_id and PD_t[0..D-1]) per sync, even without unsync "
    "children (those calls do no __mmu_unsync_walk: mmu_unsync_walk returns "
    "0 first, mmu.c:1833).",
    "A4 A guest write to a PTE of a synced level-1 table always faults (the "
    "gfn was write-protected when the sp was created, account_shadowed "
    "mmu.c:821, or synced, mmu_sync_children mmu.c:1994) and is not "
    "emulated (level-1 gfns are not write-tracked, mmu.c:815): "
    "make_spte -> mmu_try_to_unsync_pages (mmu.c:2695) -> kvm_unsync_page: "
    "one kvm_mmu_unsync_page per synced->unsync transition; writes to an "
    "unsync table do not fault. The guest has no other access to the PT "
    "pages (no INVLPG, SHAPES.md).",
    "A5 FNAME(sync_page) (mmu/paging_tmpl.h:994) succeeds for these pages "
    "(only a role mismatch or a failed guest read returns -1), so "
    "mmu_sync_children never zaps a page it syncs.",
    "A6 need_resched()/rwlock_needbreak() stay false inside mmu_sync_children "
    "(mmu.c:2006): no -EINTR, no KVM_REQ_MMU_SYNC re-request. This is a "
    "timing assumption; a -EINTR would show as sync_calls.eintr and a repeat "
    "of the fault.",
    "A7 All guest paging-structure entries carry the same permission bits "
    "(the PDPT0 alias entries of --sync fault equal PDPT0[1]), so the "
    "shadow role (role.access, kvm_mmu_child_role mmu.c:2192) of PD_t[0] "
    "reached through an alias equals the original: kvm_mmu_find_shadow_page "
    "(mmu.c:2038) finds the existing sp instead of creating a second one.",
    "A8 Guest large (2 MiB) pages under PD_id are shadowed by direct "
    "level-1 sps (FNAME(fetch) second loop, paging_tmpl.h:689), never by "
    "2 MiB sptes: kvmwalk's guest memory is a plain anonymous mmap, which "
    "6.1 does not align to 2 MiB, and a memslot whose userspace address is "
    "not congruent to its base gfn mod 2 MiB has every large page "
    "disallowed (kvm_alloc_memslot_metadata, x86.c:12821); the regions "
    "holding page tables are lpage-disallowed anyway (account_shadowed). "
    "Debian's THP mode ('always') therefore does not matter. If mmap "
    "happened to return a 2 MiB-aligned address (about 1 in 512 with "
    "ASLR), region 0 (code, params, stack) could get a 2 MiB spte and one "
    "direct sp less: that changes only the budget regime (A14). Direct "
    "sps never go unsync (paging_tmpl.h:1019) and zapping one never walks "
    "(mmu_zap_unsync_children returns 0 at level 1, mmu.c:2440), but they "
    "count against the budget and sit in active_mmu_pages, so the model "
    "creates them. Lab check: direct sps for gfn 0 and gfn 0x400 appear "
    "in every kernel trace.",
    "A9 Writes to upper-level guest tables (PDPT0 alias entries, PD_t[0] "
    "PDE 511) are emulated: the gfn is write-tracked (account_shadowed "
    "mmu.c:816); a present fault goes page_fault_handle_page_track -> "
    "RET_PF_EMULATE (paging_tmpl.h:822), a not-present one gets a "
    "write-protected spte and RET_PF_EMULATE from mmu_set_spte. The guest "
    "uses MOV (PageTable-flagged, emulate.c:4482/4650), so retry_instruction "
    "(x86.c:8657) does not unprotect the page, and each write reaches "
    "kvm_mmu_pte_write (mmu.c:5515) as one aligned 4- or 8-byte write.",
    "A10 Write flooding (detect_write_flooding mmu.c:5443): the count of an "
    "upper-level sp is reset by kvm_mmu_find_shadow_page (mmu.c:2100), by "
    "FNAME(fetch) for every sp on a faulting address's shadow path "
    "(paging_tmpl.h:650,695) and by shadow_page_table_clear_flood for a "
    "present write-protect fault (mmu.c:4105). The emulated writes to "
    "PD_t[0] fault on its identity-mapped address, whose shadow path "
    "(PML4, PDPT0, PD_id) does not contain PD_t[0], and the guest does "
    "nothing else in between, so PD_t[0] is zapped at exactly the 3rd "
    "write. (Writes to PDPT0 in --sync fault reset PDPT0's own count on "
    "the same path first, so PDPT0 never floods.) If a guest wrote with a "
    "non-PageTable instruction, retry_instruction would unprotect (zap) "
    "PD_t[0] at the first write instead: same figures.",
    "A11 PAE: PD_t[0] is a PAE root (root_count 1), so its flood zap "
    "list_del()s it and requests KVM_REQ_MMU_FREE_OBSOLETE_ROOTS "
    "(mmu.c:2517); at the next entry kvm_mmu_free_obsolete_roots frees all "
    "PAE roots (is_obsolete_root is true for the pae_root page, "
    "mmu.c:5386), the zapped root is prepare-zapped again (no walk: its "
    "unsync_children is 0), and kvm_mmu_reload -> kvm_mmu_load re-creates "
    "PD_t[0] (new empty sp) and calls kvm_mmu_sync_roots: 1 + D more syncs, "
    "which sync the other directories' tables before the guest's own "
    "'mov cr3, cr3' runs.",
    "A12 VM destruction: the VMM exits; exit_mmap's mmu notifier release "
    "(kvm_main.c:906) or mmu_notifier_unregister in kvm_destroy_vm "
    "(kvm_main.c:1322) calls kvm_mmu_zap_all (mmu.c:6527) BEFORE the vCPUs "
    "are destroyed (kvm_arch_destroy_vm, kvm_main.c:1336). zap_all visits "
    "active_mmu_pages from the head, i.e. newest first (list_add, "
    "mmu.c:2144): every test page table is newer than its directory, so "
    "the tables are zapped first (one kvm_mmu_sync_page per unsync table, "
    "no walk, since mmu_zap_unsync_children returns 0 at level 1), their "
    "parent sptes are dropped without clearing bitmap bits, and each "
    "upper-level sp that still has unsync_children then does one zap walk "
    "that clears its stale bits (one frame, pvec nr 1, no leaves). No zap "
    "unstable -> no restart. (Past the budget, A14, a directory re-created "
    "after eviction can be newer than the tables it re-links: its zap walk "
    "then zaps them and zap_all restarts from the head; the model runs "
    "kvm_mmu_zap_all literally, so this is covered.) Roots zapped there still have root_count; "
    "kvm_mmu_unload at vCPU destruction prepare-zaps them again with "
    "unsync_children == 0: no walk.",
    "A13 The memslots are not deleted before the VM is destroyed (a memslot "
    "delete would run kvm_mmu_zap_all_fast, which zaps in the opposite "
    "order); munmap of guest memory only drops leaf sptes (rmaps), never "
    "a non-leaf link, so it does not change the walk.",
    "A14 Shadow-page budget: kvmwalk has one memslot of "
    "round_up(0x400000 + N * 4 KiB, 2 MiB) bytes (tests/vm/workload/"
    "layout.c; SHAPES.md gives the addresses, not the size), so "
    "n_max_mmu_pages = max(pages / 50, 64) (x86.c:13021), i.e. 64 for "
    "N <= 2048. Every shadow page counts, direct ones included. A shadow "
    "page fault that is not a page-track (emulated) write first calls "
    "make_mmu_pages_available (paging_tmpl.h:870): with fewer than 5 pages "
    "left, kvm_mmu_zap_oldest_mmu_pages(25 - avail) (mmu.c:2554) zaps from "
    "the oldest end of active_mmu_pages, skipping roots: PDPT0, PD_id, the "
    "direct sps and the oldest directories and tables go, with zap walks "
    "over their unsync children. Zapped tables are not re-created (the "
    "guest never reads VA(k) again), so later rounds sync fewer tables. "
    "On SVM no private memslot is added; on VMX KVM_SET_TSS_ADDR adds 3 "
    "pages, which only matters at the /50 boundary.",
    "A15 The guest's own accesses besides the script (from the kvmwalk "
    "guest's code, tests/vm/workload/guest.c as compiled): one code page "
    "(gfn 0x10), the parameter page (gfn 1: read at start, 'stage' written "
    "at each phase, 'round' written and 'sync' read every round), and the "
    "stack page (gfn 7: the 32-bit guest spills to it from its first "
    "instruction and reads it back each round; the 64-bit guest only in "
    "the calls of the flood and exit steps). Each guest access is "
    "preceded by its instruction fetch. These only matter once the budget "
    "is exceeded (A14): they decide which fault triggers an eviction and "
    "the order in which evicted pages are re-created.",
    "A16 Leaf sptes and prefetch: a fault maps the faulting gfn writable "
    "unless mmu_try_to_unsync_pages refuses (write-tracked gfn, or "
    "prefetch of a synced table); a write fault on a tracked gfn is "
    "emulated. A present write fault on a tracked gfn takes the page-track "
    "path (paging_tmpl.h:822) without make_mmu_pages_available. After a "
    "fault into a direct sp, __direct_pte_prefetch maps the non-present "
    "sptes of the faulting gfn's 8-aligned block whose host pages are "
    "present and writable (gfn_to_page_many_atomic stops at the first "
    "missing one): the pages the VMM wrote (params, code, data, page "
    "tables) and those KVM faulted in for writing. A gfn whose table sp "
    "was evicted is thus mapped writable and the guest's later writes to "
    "it do not fault.",
]


# ----------------------------------------------------------------------
# Guest (SHAPES.md layout, addresses of tests/vm/workload/walk.h)
# ----------------------------------------------------------------------

PARAMS_GFN = 0x1
STACK_GFN = 0x7
CODE_GFN = 0x10
CODE_VA = CODE_GFN << 12
DATA0_GFN = 0x100
DATA_A_GFN = 0x101
DATA_B_GFN = 0x102
ROOT_GFN = 0x200        # PML4, or the PAE PDPT
PDPT0_GFN = 0x201
PD_ID_GFN = 0x202


def pd_t_gfn(d):
    return 0x203 + d


def pt_gfn(k):
    return 0x400 + k


def memslot_pages(tables):
    """layout.c: memory up to the last PT, rounded up to 2 MiB (A14)."""
    end = 0x400000 + tables * 0x1000
    return ((end + MiB2 - 1) & ~(MiB2 - 1)) >> 12


class GEntry:
    __slots__ = ("gfn", "large")

    def __init__(self, gfn, large=False):
        self.gfn = gfn
        self.large = large


class Guest:
    """The guest-physical memory kvmwalk builds: page tables and which
    host pages exist (written by the VMM)."""

    def __init__(self, shape):
        self.s = shape
        N, D = shape.tables, shape.dirs
        self.mem = {}                   # table gfn -> {index: GEntry}
        if shape.paging == "4level":
            self.mem[ROOT_GFN] = {0: GEntry(PDPT0_GFN)}
            self.mem[PDPT0_GFN] = {0: GEntry(PD_ID_GFN)}
            for d in range(D):
                self.mem[PDPT0_GFN][1 + d] = GEntry(pd_t_gfn(d))
            self.pdptes = None
        else:
            self.pdptes = {0: GEntry(PD_ID_GFN)}
            for d in range(D):
                self.pdptes[1 + d] = GEntry(pd_t_gfn(d))
        self.mem[PD_ID_GFN] = {i: GEntry(i * 512, large=True) for i in range(512)}
        for d in range(D):
            self.mem[pd_t_gfn(d)] = {}
        for k in range(N):
            d, j = k % D, k // D
            self.mem[pd_t_gfn(d)][j] = GEntry(pt_gfn(k))
            self.mem[pt_gfn(k)] = {0: GEntry(DATA0_GFN)}
        self.npages = memslot_pages(N)
        # Host pages present and writable: what the VMM wrote (layout.c).
        self.host_pages = {PARAMS_GFN, CODE_GFN, DATA0_GFN, DATA_A_GFN,
                           DATA_B_GFN, ROOT_GFN, PD_ID_GFN}
        if shape.paging == "4level":
            self.host_pages.add(PDPT0_GFN)
        for d in range(min(N, D)):
            self.host_pages.add(pd_t_gfn(d))
        for k in range(N):
            self.host_pages.add(pt_gfn(k))

    def va(self, k):
        D = self.s.dirs
        d, j = k % D, k // D
        return (1 + d) * GiB + j * MiB2

    def walk(self, va):
        """Guest page walk: (tables, leaf_level, gfn) with tables[L] = gfn
        of the table consulted at level L."""
        tables = {}
        if self.s.paging == "4level":
            level, table = 4, ROOT_GFN
        else:
            e = self.pdptes.get((va >> 30) & 3)
            if e is None:
                raise RuntimeError("PAE: not-present PDPTE for %#x" % va)
            level, table = 2, e.gfn
        while True:
            tables[level] = table
            idx = (va >> (12 + 9 * (level - 1))) & 511
            e = self.mem.get(table, {}).get(idx)
            if e is None:
                raise RuntimeError("guest #PF at %#x level %d" % (va, level))
            if level == 1:
                return tables, 1, e.gfn
            if e.large:
                return tables, level, e.gfn + ((va >> 12) & ((1 << (9 * (level - 1))) - 1))
            table = e.gfn
            level -= 1


def sp_name(gfn, role):
    if role.direct:
        return "direct(%#x)" % gfn
    if gfn == ROOT_GFN and role.level == 4:
        return "PML4"
    if gfn == PDPT0_GFN and role.level == 3:
        return "PDPT0"
    if gfn == PD_ID_GFN:
        return "PD_id"
    if 0x203 <= gfn < 0x20b:
        return "PD_t[%d]" % (gfn - 0x203)
    if gfn >= 0x400:
        return "PT[%d]" % (gfn - 0x400)
    return None


RETRY = "retry"
EMULATE = "emulate"
FIXED = "fixed"


# ----------------------------------------------------------------------
# The vCPU side of the MMU (roots, requests, faults)
# ----------------------------------------------------------------------

class Vcpu:
    def __init__(self, kvm, guest):
        self.kvm = kvm
        self.g = guest
        self.pae = guest.s.paging == "pae"
        self.root = None                 # 4level root sp (mmu->root.hpa)
        self.pae_root = [None] * 4       # PAE roots (mmu->pae_root[i])
        self.root_valid = False
        self.req_mmu_sync = False
        self.huge_pages = False          # Run(huge_pages=...)

    def role(self, level, direct=False):
        """The shadow-page role this vCPU's MMU gives a page (nested.py
        adds role.guest_mode)."""
        return Role(level, direct=direct)

    # -- roots (mmu.c:3438-3560, 3690-3770, 5324) --------------------------
    def get_sp(self, gfn, role):
        return self.kvm.get_shadow_page(self, gfn, role, name=sp_name(gfn, role))

    def mmu_alloc_root(self, gfn, level):
        sp = self.get_sp(gfn, self.role(level))
        sp.root_count += 1
        return sp

    def kvm_mmu_load(self):
        self.kvm.make_mmu_pages_available()        # mmu_alloc_shadow_roots
        if self.pae:
            for i in range(4):
                e = self.g.pdptes.get(i)
                self.pae_root[i] = self.mmu_alloc_root(e.gfn, 2) if e else None
        else:
            self.root = self.mmu_alloc_root(ROOT_GFN, 4)
        self.root_valid = True
        self.kvm_mmu_sync_roots()

    def kvm_mmu_reload(self):
        if not self.root_valid:
            self.kvm_mmu_load()

    def mmu_free_root_page(self, sp, invalid_list):
        sp.root_count -= 1
        if not sp.root_count and sp.invalid:
            self.kvm.kvm_mmu_prepare_zap_page(sp, invalid_list)

    def kvm_mmu_free_roots(self):
        if not self.root_valid:
            return
        invalid_list = []
        if self.pae:
            for i in range(4):
                if self.pae_root[i] is not None:
                    self.mmu_free_root_page(self.pae_root[i], invalid_list)
                    self.pae_root[i] = None
        else:
            self.mmu_free_root_page(self.root, invalid_list)
            self.root = None
        self.root_valid = False
        self.kvm.kvm_mmu_commit_zap_page(invalid_list)

    def kvm_mmu_free_obsolete_roots(self):
        if not self.root_valid:
            return
        if self.pae or self.root.invalid:     # is_obsolete_root, mmu.c:5368
            self.kvm_mmu_free_roots()

    def kvm_mmu_sync_roots(self):
        kvm = self.kvm
        kvm.rec.hits["kvm_mmu_sync_roots"] += 1
        if not self.root_valid:
            return
        if not self.pae:
            sp = self.root
            if not (sp.unsync or sp.unsync_children):     # is_unsync_root
                return
            kvm.mmu_sync_children(self, sp, True)
            return
        for sp in self.pae_root:
            if sp is not None:
                kvm.mmu_sync_children(self, sp, True)

    # -- vcpu_enter_guest request handling (x86.c:10650-10804) ----------------
    def enter_guest(self):
        kvm = self.kvm
        if kvm.request_free_obsolete_roots:
            kvm.request_free_obsolete_roots = False
            self.kvm_mmu_free_obsolete_roots()
        if self.req_mmu_sync or kvm.request_mmu_sync:
            self.req_mmu_sync = kvm.request_mmu_sync = False
            self.kvm_mmu_sync_roots()
        self.kvm_mmu_reload()

    # -- shadow translation ---------------------------------------------------
    def _start(self, va):
        if self.pae:
            return self.pae_root[(va >> 30) & 3], 2
        return self.root, 4

    def shadow_path(self, va):
        """(sps on the shadow path of va, leaf Spte or None)."""
        sp, level = self._start(va)
        path = []
        while sp is not None:
            path.append(sp)
            ent = sp.spt.get((va >> (12 + 9 * (level - 1))) & 511)
            if ent is None:
                return path, None
            if ent.kind != "nonleaf":
                return path, ent
            sp, level = ent.child, level - 1
        return path, None

    # -- FNAME(page_fault) (paging_tmpl.h:791) and FNAME(fetch) (:618) --------
    def page_fault(self, va, write, present):
        kvm = self.kvm
        tables, glevel, gfn = self.g.walk(va)
        if present and write and kvm.is_write_tracked(gfn):
            # page_fault_handle_page_track + shadow_page_table_clear_flood
            for sp in self.shadow_path(va)[0]:
                sp.write_flooding_count = 0
            return EMULATE
        kvm.make_mmu_pages_available()
        return self.fetch(va, tables, glevel, gfn, write)

    def fetch(self, va, tables, glevel, gfn, write):
        kvm = self.kvm
        sp, level = self._start(va)
        while level > glevel:
            sp.write_flooding_count = 0          # clear_sp_write_flooding_count
            idx = (va >> (12 + 9 * (level - 1))) & 511
            child_gfn = tables[level - 1]
            role = self.role(level - 1)
            ent = sp.spt.get(idx)
            if (ent is not None and ent.kind == "nonleaf" and
                    ent.child.gfn == child_gfn and ent.child.role == role):
                child = ent.child                 # kvm_mmu_get_child_sp: -EEXIST
            else:
                child = self.get_sp(child_gfn, role)
                if child.unsync_children and kvm.mmu_sync_children(self, child, False):
                    return RETRY
                kvm.link_shadow_page(sp, idx, child)
            sp = child
            level -= 1
        # Guest large page: direct sps down to 4K (A8).  From 6.12 on the
        # flood count is reset down to the guest's leaf level only
        # (kernels.py "fetch-flood"): not in the direct sps below it.
        clear_direct = kvm.kernel.fetch_clears_direct_flood
        while level > PG_LEVEL_4K:
            if clear_direct or not sp.role.direct:
                sp.write_flooding_count = 0
            idx = (va >> (12 + 9 * (level - 1))) & 511
            base_gfn = gfn & ~((1 << (9 * (level - 1))) - 1)
            if self.huge_page_allowed(level, base_gfn):
                return self.map_huge(sp, idx, base_gfn)
            role = self.role(level - 1, direct=True)
            ent = sp.spt.get(idx)
            if (ent is not None and ent.kind == "nonleaf" and
                    ent.child.gfn == base_gfn and ent.child.role == role):
                child = ent.child
            else:
                child = self.get_sp(base_gfn, role)
                kvm.link_shadow_page(sp, idx, child)
            sp = child
            level -= 1
        if clear_direct or not sp.role.direct:
            sp.write_flooding_count = 0
        idx = (va >> 12) & 511
        old = sp.spt.get(idx)
        ret = self.mmu_set_spte(sp, idx, gfn, write, prefetch=False)
        new = sp.spt[idx]
        spurious = (old is not None and old.gfn == new.gfn and
                    old.writable == new.writable)
        if not spurious and sp.role.direct:
            self.direct_pte_prefetch(sp, idx)
        # (indirect FNAME(pte_prefetch) only maps guest data pages: no
        #  shadow page, no unsync, nothing counted)
        return ret

    def huge_page_allowed(self, level, base_gfn):
        """kvm_mmu_hugepage_adjust for a guest 2 MiB page: only with
        huge_pages (the guest memory is THP-backed and 2 MiB aligned,
        kernels.py "thp-align", 6.12 and 7.2) and only where no shadowed
        gfn disallows it (account_shadowed)."""
        return (self.huge_pages and level == 2 and
                self.kvm.kernel.thp_aligned_anon and
                self.kvm.lpage_allowed(base_gfn))

    def map_huge(self, sp, idx, base_gfn):
        """mmu_set_spte at level 2: a direct sp linked there is unlinked
        (drop_parent_pte), the 2 MiB spte is writable (its region has no
        shadowed gfn, so mmu_try_to_unsync_pages allows it); no
        __direct_pte_prefetch above level 1."""
        old = sp.spt.get(idx)
        if old is not None and old.kind == "nonleaf":
            self.kvm.drop_parent_pte(old.child, sp, idx)
        sp.spt[idx] = Spte("large", gfn=base_gfn, writable=True)
        return FIXED

    def mmu_set_spte(self, sp, idx, gfn, write, prefetch):
        """mmu_set_spte/make_spte for a guest entry with RW and D set."""
        kvm = self.kvm
        old = sp.spt.get(idx)
        host_writable = gfn in self.g.host_pages or write
        if write:
            self.g.host_pages.add(gfn)            # faulted in for writing
        writable = False
        wrprot = False
        if host_writable:
            if old is not None and old.writable and old.gfn == gfn:
                writable = True
            elif kvm.mmu_try_to_unsync_pages(gfn, can_unsync=True, prefetch=prefetch):
                wrprot = True
            else:
                writable = True
        sp.spt[idx] = Spte("leaf", gfn=gfn, writable=writable)
        if wrprot and write:
            return EMULATE
        return FIXED

    def direct_pte_prefetch(self, sp, idx):
        """__direct_pte_prefetch (mmu.c): the 8-aligned block around idx."""
        base = idx & ~7
        start = None
        for i in range(base, base + 8):
            if i in sp.spt or i == idx:
                if start is None:
                    continue
                if not self.direct_pte_prefetch_many(sp, start, i):
                    return
                start = None
            elif start is None:
                start = i
        if start is not None:
            self.direct_pte_prefetch_many(sp, start, base + 8)

    def direct_pte_prefetch_many(self, sp, start, end):
        gfn = sp.gfn + start
        n = end - start
        if gfn >= self.g.npages or self.g.npages - gfn < n:
            return False                          # no slot / entry < nr_pages
        got = 0
        while got < n and gfn + got in self.g.host_pages:
            got += 1                              # get_user_pages_fast_only
        if got <= 0:
            return False
        for j in range(got):
            self.mmu_set_spte(sp, start + j, gfn + j, write=False, prefetch=True)
        return True

    # -- guest accesses ------------------------------------------------------
    def _translate_ok(self, va, write):
        _, leaf = self.shadow_path(va)
        if leaf is None:
            return False, False
        return (not write or leaf.writable), True

    def access(self, va, write=False, on_emulate=None):
        """One guest instruction: its fetch, then its data access at va.
        A fault re-executes the instruction after KVM handled it (and the
        vCPU re-entered); an emulated write completes it."""
        while True:
            ok, present = self._translate_ok(CODE_VA, False)
            if not ok:
                self.page_fault(CODE_VA, False, present)
                self.enter_guest()
                continue
            if va is None:
                return FIXED
            ok, present = self._translate_ok(va, write)
            if ok:
                return FIXED
            r = self.page_fault(va, write, present)
            if r == EMULATE:
                if on_emulate is not None:
                    on_emulate()
                self.enter_guest()
                return EMULATE
            self.enter_guest()

    def guest_read(self, va):
        self.access(va, write=False)

    def guest_write_table(self, table_gfn, index, entry):
        """Store one paging-structure entry through the identity map."""
        va = (table_gfn << 12) + index * 8

        def store():
            if entry is None:
                self.g.mem[table_gfn].pop(index, None)
            else:
                self.g.mem[table_gfn][index] = entry

        def emulated():
            store()
            self.kvm.kvm_mmu_pte_write(table_gfn, index)

        if self.access(va, write=True, on_emulate=emulated) != EMULATE:
            store()

    def params(self, write=False):
        self.access(PARAMS_GFN << 12, write)

    def stack(self, write=False):
        self.access((STACK_GFN << 12) + 0xfe0, write)

    def mov_cr3_same(self):
        # A2: kvm_set_cr3 -> kvm_invalidate_pcid -> KVM_REQ_MMU_SYNC
        self.access(None)
        self.req_mmu_sync = True
        self.enter_guest()


# ----------------------------------------------------------------------
# The script of SHAPES.md, as the kvmwalk guests run it (A15)
# ----------------------------------------------------------------------

VARIANTS = ("stock", "patched")


def kvm_class(variant):
    """The walk model of a kernel variant: "stock" (shadow.Kvm, Debian's
    6.1) or "patched" (shadow_patched.KvmPatched, 6.1 with
    tests/kernel/patches).  This module's KVM layer serves both: the
    series changes only the walk and its two callers."""
    if variant == "stock":
        return Kvm
    if variant == "patched":
        from shadow_patched import KvmPatched
        return KvmPatched
    raise ValueError("kernel variant must be one of %s" % ", ".join(VARIANTS))


class Run:
    def __init__(self, shape, trace=False, resched_points=(), variant="stock",
                 kernel=None, huge_pages=False):
        validate(shape)
        self.s = shape
        self.variant = variant
        self.kernel = kernels.get(kernel)
        if variant != "stock" and self.kernel.release not in kernels.PATCHED_RELEASES:
            raise ValueError("the %s kernel is built on %s only"
                             % (variant, " and ".join(kernels.PATCHED_RELEASES)))
        self.rec = Recorder()
        self.rec.trace = trace
        self.kvm = kvm_class(variant)(self.rec)
        self.kvm.kernel = self.kernel
        self.kvm.resched_points = set(resched_points)
        self.g = Guest(shape)
        self.kvm.set_memslot_pages(self.g.npages)
        self.vcpu = Vcpu(self.kvm, self.g)
        self.vcpu.huge_pages = huge_pages

    def dirty(self, r):
        data = DATA_A_GFN if r % 2 == 0 else DATA_B_GFN
        for k in range(self.s.tables):
            self.vcpu.guest_write_table(pt_gfn(k), 1, GEntry(data))

    def run(self, destroy=True):
        """The script; destroy=False stops where kvmwalk --hold stops,
        the guest done and the VM still there."""
        s, g, v = self.s, self.g, self.vcpu
        pae = s.paging == "pae"
        v.enter_guest()                  # first KVM_RUN: kvm_mmu_load (A1)
        if pae:
            v.stack(write=True)          # push %ebp, ... (spills)
        v.params()                       # read the parameter block
        v.params(write=True)             # stage = PRIME
        for k in range(s.tables):        # 1. prime
            v.guest_read(g.va(k))
        if pae:
            v.stack()
        v.params(write=True)             # stage = ROUNDS
        if pae and s.rounds:
            v.stack(write=True)
        for r in range(s.rounds):        # 2. rounds
            v.params(write=True)         # round = r
            self.dirty(r)
            if s.sync == "cr3":
                if not pae:
                    v.params()           # reads params->sync
                v.mov_cr3_same()
                if pae:
                    v.stack()
            else:
                v.params()
                alias = 1 + s.dirs + r
                v.guest_write_table(PDPT0_GFN, alias, GEntry(pd_t_gfn(0)))
                v.guest_read(alias * GiB)
        v.params()                       # params->flood_zap
        if s.flood_zap:                  # 3.
            v.params(write=True)         # stage = FLOOD_ZAP
            v.stack(write=True)          # call dirty
            self.dirty(s.rounds)
            v.stack()                    # ret
            for _ in range(3):           # SHAPES.md: writes 0
                v.guest_write_table(pd_t_gfn(0), 511, None)
            v.mov_cr3_same()
        v.params()                       # params->exit_unsync
        if s.exit_unsync:                # 4.
            v.params(write=True)         # stage = EXIT_UNSYNC
            v.stack(write=True)
            self.dirty(s.rounds + 1)
            v.stack()
        v.params(write=True)             # stage = DONE
        v.access(None)                   # out 0xf4
        if not destroy:
            return self.rec
        # 5. VM destruction (A12, A13)
        self.kvm.kvm_mmu_zap_all()
        v.kvm_mmu_free_roots()          # kvm_unload_vcpu_mmus -> kvm_mmu_unload
        return self.rec


def predict(shape, trace=False, resched_points=(), variant="stock", kernel=None,
            huge_pages=False):
    """Run the model; returns the Recorder.  resched_points: see
    shadow.Kvm.resched_points (default: need_resched() never true, A6).
    variant: "stock" or "patched" kernel (kvm_class).  kernel: the release
    ("6.1", the default, "6.12" or "7.2"; kernels.py).  huge_pages: the
    guest memory is THP-backed (6.12, 7.2: Vcpu.huge_page_allowed)."""
    return Run(shape, trace=trace, resched_points=resched_points,
               variant=variant, kernel=kernel, huge_pages=huge_pages).run()
