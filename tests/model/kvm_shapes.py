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
    "A8 Guest large (2 MiB) pages under PD_id are shadowed by direct sps or "
    "large sptes; direct sps never go unsync (paging_tmpl.h:1019), never "
    "get bitmap bits, and zapping one (level 1) or a large spte never walks "
    "(mmu_zap_unsync_children returns 0 at level 1, mmu.c:2440). The model "
    "therefore does not create them; their only effect would be extra "
    "entries in active_mmu_pages, which never reorder the test pages.",
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
    "unstable -> no restart. Roots zapped there still have root_count; "
    "kvm_mmu_unload at vCPU destruction prepare-zaps them again with "
    "unsync_children == 0: no walk.",
    "A13 The memslots are not deleted before the VM is destroyed (a memslot "
    "delete would run kvm_mmu_zap_all_fast, which zaps in the opposite "
    "order); munmap of guest memory only drops leaf sptes (rmaps), never "
    "a non-leaf link, so it does not change the walk.",
]


# ----------------------------------------------------------------------
# Guest page tables (SHAPES.md layout)
# ----------------------------------------------------------------------

class GEntry:
    __slots__ = ("gfn", "large")

    def __init__(self, gfn, large=False):
        self.gfn = gfn
        self.large = large


class Guest:
    """The guest-physical page tables kvmwalk builds (gfns are arbitrary
    but distinct; all of them lie in the first GiB, mapped by PD_id)."""

    PML4 = 0x100
    PDPT0 = 0x101          # 4level PDPT0; PAE: the 4-entry PDPT (CR3 target)
    PD_ID = 0x102
    PD_T0 = 0x110          # PD_t[d] = PD_T0 + d
    PT0 = 0x200            # PT[k] = PT0 + k
    DATA0 = 0x1000         # PTE 0 data pages
    DATA_A = 0x3000        # PTE 1 alternates between DATA_A and DATA_B
    DATA_B = 0x3001
    CODE_VA = 0x10000

    def __init__(self, shape):
        self.s = shape
        self.mem = {}          # table gfn -> {index: GEntry}
        D = shape.dirs
        if shape.paging == "4level":
            self.mem[self.PML4] = {0: GEntry(self.PDPT0)}
            self.mem[self.PDPT0] = {0: GEntry(self.PD_ID)}
            for d in range(D):
                self.mem[self.PDPT0][1 + d] = GEntry(self.pd_t(d))
        else:
            self.pdptes = {0: GEntry(self.PD_ID)}
            for d in range(D):
                self.pdptes[1 + d] = GEntry(self.pd_t(d))
        self.mem[self.PD_ID] = {i: GEntry(i * 512, large=True) for i in range(512)}
        for d in range(D):
            self.mem[self.pd_t(d)] = {}
        for k in range(shape.tables):
            d, j = k % D, k // D
            self.mem[self.pd_t(d)][j] = GEntry(self.pt(k))
            self.mem[self.pt(k)] = {0: GEntry(self.DATA0 + k)}

    def pd_t(self, d):
        return self.PD_T0 + d

    def pt(self, k):
        return self.PT0 + k

    def va(self, k):
        D = self.s.dirs
        d, j = k % D, k // D
        return (1 + d) * GiB + j * MiB2

    def walk(self, va):
        """Guest page walk: returns (table_gfn_by_level, leaf_level, leaf_gfn)
        with table_gfn_by_level[L] = gfn of the table consulted at level L."""
        tables = {}
        if self.s.paging == "4level":
            level, table = 4, self.PML4
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
            if level == 1 or e.large:
                return tables, level, e.gfn
            table = e.gfn
            level -= 1


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

    # -- roots (mmu.c:3438-3560, 3690-3770, 5324) --------------------------
    def mmu_alloc_root(self, gfn, level):
        sp = self.kvm.get_shadow_page(self, gfn, Role(level),
                                      name=self.g_name(gfn, level))
        sp.root_count += 1
        return sp

    def kvm_mmu_load(self):
        if self.pae:
            for i in range(4):
                e = self.g.pdptes.get(i)
                self.pae_root[i] = self.mmu_alloc_root(e.gfn, 2) if e else None
        else:
            self.root = self.mmu_alloc_root(self.g.PML4, 4)
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

    # -- FNAME(fetch) (paging_tmpl.h:618) ------------------------------------
    def g_name(self, gfn, level):
        g = self.g
        if gfn == g.PML4 and level == 4:
            return "PML4"
        if gfn == g.PDPT0 and level == 3:
            return "PDPT0"
        if gfn == g.PD_ID:
            return "PD_id"
        if g.PD_T0 <= gfn < g.PD_T0 + 8:
            return "PD_t[%d]" % (gfn - g.PD_T0)
        if g.PT0 <= gfn < g.PT0 + 4096:
            return "PT[%d]" % (gfn - g.PT0)
        return None

    def fetch(self, va):
        """Shadow page fault on va: guest walk, then FNAME(fetch).  Returns
        (leaf gfn, shadow sp holding the last level reached)."""
        kvm = self.kvm
        tables, glevel, leaf_gfn = self.g.walk(va)
        if self.pae:
            sp, level = self.pae_root[(va >> 30) & 3], 2
        else:
            sp, level = self.root, 4
        while level > glevel:
            sp.write_flooding_count = 0          # clear_sp_write_flooding_count
            idx = (va >> (12 + 9 * (level - 1))) & 511
            child_gfn = tables[level - 1]
            role = Role(level - 1)
            ent = sp.spt.get(idx)
            if (ent is not None and ent.kind == "nonleaf" and
                    ent.child.gfn == child_gfn and ent.child.role == role):
                child = ent.child                 # kvm_mmu_get_child_sp: -EEXIST
            else:
                child = kvm.get_shadow_page(self, child_gfn, role,
                                            name=self.g_name(child_gfn, level - 1))
                if child.unsync_children and kvm.mmu_sync_children(self, child, False):
                    return None, None             # RET_PF_RETRY
                kvm.link_shadow_page(sp, idx, child)
            sp = child
            level -= 1
        sp.write_flooding_count = 0
        if glevel == PG_LEVEL_4K:
            idx = (va >> 12) & 511
            sp.spt[idx] = Spte("leaf", gfn=leaf_gfn)   # mmu_set_spte
        # glevel > 1: guest large page -> direct sp / large spte (A8)
        return leaf_gfn, sp

    # -- guest accesses ------------------------------------------------------
    def guest_read(self, va):
        # RET_PF_RETRY (mmu_sync_children returned -EINTR in FNAME(fetch)):
        # the vCPU re-enters (handling the KVM_REQ_MMU_SYNC it requested)
        # and the guest faults again on the same access.
        while True:
            gfn, _ = self.fetch(va)
            self.enter_guest()
            if gfn is not None:
                return

    def guest_write_table(self, table_gfn, index, entry):
        """The guest writes entry `index` of the page table at table_gfn
        through its identity mapping (PD_id)."""
        kvm = self.kvm
        va = table_gfn << 12                      # identity mapped
        if kvm.is_write_tracked(table_gfn):
            # A9/A10: emulated write; the fault (present: page_fault_handle_
            # page_track + shadow_page_table_clear_flood; not present: fetch)
            # clears the flood counts on va's shadow path first.
            self.fetch(va)
            self._store(table_gfn, index, entry)
            kvm.kvm_mmu_pte_write(table_gfn, index)
        else:
            # A4: write-protect fault -> make_spte -> unsync (or nothing if
            # no sp shadows the gfn or it is already unsync: no fault then).
            if any(not sp.unsync for sp in kvm.valid_sps_for_gfn(table_gfn)):
                self.fetch(va)
                kvm.mmu_try_to_unsync_pages(table_gfn)
            self._store(table_gfn, index, entry)
        self.enter_guest()

    def _store(self, table_gfn, index, entry):
        if entry is None:
            self.g.mem[table_gfn].pop(index, None)
        else:
            self.g.mem[table_gfn][index] = entry

    def mov_cr3_same(self):
        # A2: kvm_set_cr3 -> kvm_invalidate_pcid -> KVM_REQ_MMU_SYNC
        self.req_mmu_sync = True
        self.enter_guest()


# ----------------------------------------------------------------------
# The script of SHAPES.md
# ----------------------------------------------------------------------

class Run:
    def __init__(self, shape, trace=False, resched_points=()):
        validate(shape)
        self.s = shape
        self.rec = Recorder()
        self.rec.trace = trace
        self.kvm = Kvm(self.rec)
        self.kvm.resched_points = set(resched_points)
        self.g = Guest(shape)
        self.vcpu = Vcpu(self.kvm, self.g)
        self.phase = "init"
        self.phase_of_sync = []       # phase name per SyncRecord

    def _mark(self, phase):
        # attribute the syncs done so far to the phase that just ended
        while len(self.phase_of_sync) < len(self.rec.syncs):
            self.phase_of_sync.append(self.phase)
        self.phase = phase

    def dirty(self, r):
        g = self.g
        data = g.DATA_A if r % 2 == 0 else g.DATA_B
        for k in range(self.s.tables):
            self.vcpu.guest_write_table(g.pt(k), 1, GEntry(data))

    def run(self):
        s, g, v = self.s, self.g, self.vcpu
        # First KVM_RUN with paging on (A1), then the guest starts executing
        # its code (identity-mapped through PD_id).
        self._mark("load")
        v.enter_guest()
        v.guest_read(g.CODE_VA)
        # 1. prime
        self._mark("prime")
        for k in range(s.tables):
            v.guest_read(g.va(k))
        # 2. rounds
        for r in range(s.rounds):
            self._mark("round%d" % r)
            self.dirty(r)
            if s.sync == "cr3":
                v.mov_cr3_same()
            else:
                alias = 1 + s.dirs + r
                v.guest_write_table(g.PDPT0, alias, GEntry(g.pd_t(0)))
                v.guest_read(alias * GiB)
        # 3. flood zap
        if s.flood_zap:
            self._mark("flood")
            self.dirty(s.rounds)
            for _ in range(3):
                # SHAPES.md: writes 0 (not present before and after)
                v.guest_write_table(g.pd_t(0), 511, None)
            v.mov_cr3_same()
        # 4. exit with unsync pages
        if s.exit_unsync:
            self._mark("exit_unsync")
            self.dirty(s.rounds + 1)
        # 5. out 0xf4, VMM exits: VM destruction (A12, A13)
        self._mark("destroy")
        self.kvm.kvm_mmu_zap_all()
        v.kvm_mmu_free_roots()          # kvm_unload_vcpu_mmus -> kvm_mmu_unload
        self._mark("end")
        return self.rec


def predict(shape, trace=False, resched_points=()):
    """Run the model; returns the Recorder.  resched_points: see
    shadow.Kvm.resched_points (default: need_resched() never true, A6)."""
    return Run(shape, trace=trace, resched_points=resched_points).run()
