"""Faithful model of the stock Linux 6.1 x86 shadow-MMU unsync walk.

Everything here is transcribed from arch/x86/kvm/mmu/mmu.c of 6.1 (function
names are kept so the model can be read side by side with the source).  The
model keeps an explicit tree of shadow pages and replays the algorithm on it:

  mark_unsync / kvm_mmu_mark_parents_unsync / kvm_unsync_page   (bits set)
  mmu_pages_add, mmu_unsync_walk, __mmu_unsync_walk             (the walk)
  mmu_pages_first / mmu_pages_next / for_each_sp                (pvec iter)
  mmu_pages_clear_parents, clear_unsync_child_bit               (bits cleared)
  mmu_sync_children, kvm_unlink_unsync_page, kvm_sync_page
  mmu_zap_unsync_children, __kvm_mmu_prepare_zap_page,
  kvm_mmu_commit_zap_page, kvm_mmu_zap_all

It is instrumented (class Recorder) to produce exactly the figures the agent
reports; see Recorder.report().  Nothing here knows about the workload: that
is kvm_shapes.py.

Simplifications (none of them changes a counted figure):
  * sptes are kept as a dict index -> Spte; "not present" == missing key.
    Leaf sptes only carry the gfn they map; no access bits, no A/D bits.
  * TLB flushes and write protection have no observable effect on the
    figures and are recorded only as counters (flushes) or a flag.
  * kvm_sync_page() (FNAME(sync_page), paging_tmpl.h:994) never fails for
    the pages of our workloads: it returns -1 only on a role mismatch
    (WARN_ON_ONCE) or when reading guest memory fails.  The model lets a
    test force a failure (Kvm.sync_page_fails) to exercise the zap branch.
  * need_resched()/rwlock_needbreak() in mmu_sync_children are assumed to be
    false (no -EINTR); Kvm.need_resched can be set by a test.
"""

import kernels

PG_LEVEL_4K = 1
KVM_PAGE_ARRAY_NR = 16          # mmu.c: #define KVM_PAGE_ARRAY_NR 16
PT64_ROOT_MAX_LEVEL = 5         # struct mmu_page_path arrays
INVALID_INDEX = -1
ENOSPC = 28
EINTR = 4

KVM_MIN_ALLOC_MMU_PAGES = 64   # arch/x86/include/asm/kvm_host.h:144
KVM_MIN_FREE_MMU_PAGES = 5     # kvm_host.h:147
KVM_REFILL_PAGES = 25          # kvm_host.h:148
KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO = 50

CTX_SYNC = "sync"
CTX_ZAP = "zap"


class Spte:
    """One present shadow PTE.

    kind: "nonleaf" (points to child sp), "leaf" (4K mapping of gfn),
          "large" (huge mapping of gfn; is_large_pte()).
    """
    __slots__ = ("kind", "child", "gfn", "writable")

    def __init__(self, kind, child=None, gfn=None, writable=False):
        self.kind = kind
        self.child = child
        self.gfn = gfn
        self.writable = writable


class Role:
    """The parts of union kvm_mmu_page_role the model needs (hashable)."""
    __slots__ = ("level", "direct", "access", "quadrant")

    def __init__(self, level, direct=False, access=7, quadrant=0):
        self.level = level
        self.direct = direct
        self.access = access
        self.quadrant = quadrant

    def word(self):
        return (self.level, self.direct, self.access, self.quadrant)

    def __eq__(self, other):
        return isinstance(other, Role) and self.word() == other.word()

    def __hash__(self):
        return hash(self.word())

    def __repr__(self):
        return "Role(level=%d%s)" % (self.level, ", direct" if self.direct else "")


class SP:
    """struct kvm_mmu_page (mmu_internal.h), the fields the walk uses."""
    _serial = 0

    def __init__(self, gfn, role, name=None):
        SP._serial += 1
        self.serial = SP._serial
        self.gfn = gfn
        self.role = role
        self.name = name or "sp%d(gfn=%#x,L%d)" % (self.serial, gfn, role.level)
        self.unsync = False
        self.unsync_children = 0
        self.unsync_child_bitmap = set()    # set of spte indexes (0..511)
        self.spt = {}                       # index -> Spte (present only)
        self.parent_ptes = []               # list of (parent SP, index)
        self.root_count = 0
        self.invalid = False                # role.invalid
        self.write_flooding_count = 0
        self.freed = False

    @property
    def level(self):
        return self.role.level

    def __repr__(self):
        return self.name


def is_shadow_present_pte(ent):
    return ent is not None


def is_large_pte(ent):
    return ent is not None and ent.kind == "large"


def sp_has_gptes(sp):
    # mmu.c sp_has_gptes(): !direct && !passthrough
    return not sp.role.direct


class Pvec:
    """struct kvm_mmu_pages: page[16] of {sp, idx} and nr."""

    def __init__(self):
        self.page = [None] * KVM_PAGE_ARRAY_NR    # (sp, idx)
        self.nr = 0

    def entries(self):
        return self.page[:self.nr]


class MmuPagePath:
    """struct mmu_page_path."""

    def __init__(self):
        self.parent = [None] * PT64_ROOT_MAX_LEVEL
        self.idx = [None] * PT64_ROOT_MAX_LEVEL


class SyncRecord:
    """What the agent emits per mmu_sync_children call (EV_SYNC)."""

    def __init__(self, can_yield, root_level):
        self.can_yield = can_yield
        self.root_level = root_level
        self.walks = 0
        self.restarts = 0
        self.frames = 0
        self.leaves = 0
        self.clears_walk = 0
        self.clears_parents = 0
        self.max_nr = 0
        self.result = 0

    def as_dict(self):
        return {
            "can_yield": self.can_yield,
            "root_level": self.root_level,
            "walks": self.walks,
            "restarts": self.restarts,
            "frames": self.frames,
            "leaves": self.leaves,
            "clears_walk": self.clears_walk,
            "clears_parents": self.clears_parents,
            "max_nr": self.max_nr,
        }


class Recorder:
    """The figures of bpf/unsync.h (struct vm_stats, struct hists, events),
    measured the way kernel.md says the agent measures them, plus the raw
    function-hit counts an ftrace run of the real kernel gives."""

    def __init__(self):
        self.sync_calls = {"ok": 0, "eintr": 0}
        self.sync_by_can_yield = {"true": 0, "false": 0}
        self.walks = {c: {"done": 0, "enospc": 0} for c in (CTX_SYNC, CTX_ZAP)}
        self.frames = {CTX_SYNC: 0, CTX_ZAP: 0}
        self.enospc_frames = {CTX_SYNC: 0, CTX_ZAP: 0}
        self.restarts = 0
        self.leaves = {CTX_SYNC: 0, CTX_ZAP: 0}
        self.clears = {c: {"walk": 0, "clear_parents": 0} for c in (CTX_SYNC, CTX_ZAP)}
        self.pvec_depth = {CTX_SYNC: [0] * (KVM_PAGE_ARRAY_NR + 1),
                           CTX_ZAP: [0] * (KVM_PAGE_ARRAY_NR + 1)}
        self.pages_synced = 0       # kvmmmu:kvm_mmu_sync_page
        self.pages_unsynced = 0     # kvmmmu:kvm_mmu_unsync_page
        self.syncs = []             # SyncRecord per mmu_sync_children call
        self.zap_walks = []         # (root level, ret, nr, leaves) per zap walk
        # Raw hit counts, for comparison with an ftrace function-count run.
        self.hits = {
            "mmu_sync_children": 0,
            "__mmu_unsync_walk": 0,
            "mmu_pages_clear_parents": 0,
            "kvm_unlink_unsync_page": 0,
            "kvm_mmu_prepare_zap_page_tp": 0,   # kvmmmu:kvm_mmu_prepare_zap_page
            "kvm_mmu_get_page_tp": 0,           # kvmmmu:kvm_mmu_get_page
            "kvm_mmu_sync_roots": 0,
        }
        # What a tracer of the real kernel sees (tests/vm/scenarios/
        # selfcheck.sh): contexts are "sync" (inside mmu_sync_children),
        # "zap" (inside mmu_zap_unsync_children) or "other".
        self.k = {
            "sync_children_root_levels": {},
            "walks_per_sync_children": [],
            "walk_frames": {}, "walk_frames_enospc": {}, "walks": {},
            "restarts": {}, "walk_leaves": {}, "clear_parents": {},
            "tp_sync_page_by_context": {}, "walk_max_depth": 0,
            "walk_max_nr_at_entry": 0, "walk_top_nr_not_1": 0,
            "zap_levels": {}, "zap_unsync": 0,
            # sum of unsync_children at entry of frames returning 0 (they
            # clear all their bits): checkable against kprobe data
            "zero_frame_clears": {},
        }
        self._kstack = []           # "sync" / "zap" frames, innermost last
        # kvmmmu tracepoint stream, as (event, gfn, level, direct, state):
        # comparable with a raw kernel trace, event by event.
        self.events = []
        self.get_page = {"new": 0, "existing": 0}
        # Walk state (the agent's per-task state).
        self._sync_stack = []       # open SyncRecords (mmu_sync_children)
        self._depth = 0             # __mmu_unsync_walk recursion depth
        self.log = []               # optional event log (strings)
        self.trace = False

    # -- context ----------------------------------------------------------
    def ctx(self):
        return CTX_SYNC if self._sync_stack else CTX_ZAP

    def cur_sync(self):
        return self._sync_stack[-1] if self._sync_stack else None

    def kctx(self):
        return self._kstack[-1] if self._kstack else "other"

    def kinc(self, key, ctx=None, n=1):
        d = self.k[key]
        c = self.kctx() if ctx is None else ctx
        d[c] = d.get(c, 0) + n

    def kernel_view(self):
        """The selfcheck's per-shape JSON fields (walk_trace.awk), as far as
        they concern the test pages.  Not comparable, because the model
        does not create direct sps (assumption A8): the kvm_mmu_get_page
        counts, the level-1 kvm_mmu_prepare_zap_page count and the
        mmu_zap_unsync_children call count (one per prepare_zap)."""
        k = self.k
        return {
            "sync_children": self.hits["mmu_sync_children"],
            "sync_children_noyield": self.sync_by_can_yield["false"],
            "sync_children_eintr": self.sync_calls["eintr"],
            "sync_children_root_levels": dict(k["sync_children_root_levels"]),
            "sync_roots": self.hits["kvm_mmu_sync_roots"],
            "walks_per_sync_children": list(k["walks_per_sync_children"]),
            "walk_frames": dict(k["walk_frames"]),
            "walk_frames_enospc": dict(k["walk_frames_enospc"]),
            "walks": dict(k["walks"]),
            "restarts": dict(k["restarts"]),
            "walk_leaves": dict(k["walk_leaves"]),
            "walk_max_depth": k["walk_max_depth"],
            "walk_max_nr_at_entry": k["walk_max_nr_at_entry"],
            "walk_top_nr_not_1": k["walk_top_nr_not_1"],
            "clear_parents": dict(k["clear_parents"]),
            "tp_unsync_page": self.pages_unsynced,
            "tp_sync_page": self.pages_synced,
            "tp_sync_page_by_context": dict(k["tp_sync_page_by_context"]),
            "tp_prepare_zap_page_unsync": k["zap_unsync"],
            "tp_prepare_zap_page_levels_upper": {
                str(l): n for l, n in sorted(k["zap_levels"].items()) if l > 1},
            "tp_prepare_zap_page_levels": {
                str(l): n for l, n in sorted(k["zap_levels"].items())},
            "tp_prepare_zap_page": sum(k["zap_levels"].values()),
            "zap_unsync_children_calls": sum(k["zap_levels"].values()),
            "tp_get_page_new": self.get_page["new"],
            "tp_get_page_existing": self.get_page["existing"],
        }

    def ev(self, name, sp, state=None):
        self.events.append((name, sp.gfn, sp.level, sp.role.direct,
                            state if state is not None else
                            ("unsync" if sp.unsync else "sync")))

    def note(self, msg):
        if self.trace:
            self.log.append(msg)

    def report(self):
        """The JSON object of predict.py (key set fixed by the brief)."""
        return {
            "sync_calls": dict(self.sync_calls),
            "sync_calls_by_can_yield": dict(self.sync_by_can_yield),
            "walks": {c: dict(v) for c, v in self.walks.items()},
            "frames": dict(self.frames),
            "enospc_frames": dict(self.enospc_frames),
            "restarts": self.restarts,
            "leaves": dict(self.leaves),
            "clears": {c: dict(v) for c, v in self.clears.items()},
            "pvec_depth": {c: list(v) for c, v in self.pvec_depth.items()},
            "pages_synced": self.pages_synced,
            "pages_unsynced": self.pages_unsynced,
            "syncs": [s.as_dict() for s in self.syncs],
        }


class Kvm:
    """struct kvm's shadow-MMU state: active_mmu_pages, the sp hash, stats."""

    def __init__(self, recorder=None):
        self.rec = recorder or Recorder()
        # The release whose code this runs where the kernels differ
        # (kernels.py); kvm_shapes.Run sets it.
        self.kernel = kernels.get()
        # kvm->arch.active_mmu_pages; index 0 is the list head, list_add()
        # inserts there (kvm_mmu_alloc_shadow_page, mmu.c:2144).
        self.active_mmu_pages = []
        self.hash = {}              # gfn -> [SP], hlist_add_head order
        # 2 MiB region (gfn >> 9) -> shadowed gfns in it: account_shadowed
        # disallows huge pages there (kvm_mmu_gfn_disallow_lpage).
        self.lpage_disallowed = {}
        self.tracked = {}           # gfn -> count (KVM_PAGE_TRACK_WRITE)
        self.stat_mmu_unsync = 0
        self.stat_shadow_zapped = 0
        self.stat_flooded = 0
        self.tlb_flushes = 0
        self.need_resched = lambda: False       # see module docstring
        # (call, batch) pairs at which need_resched() is true: call = index
        # of the mmu_sync_children call (0-based, in call order), batch =
        # index of the walk batch inside it.  Replays a kernel run that
        # took -EINTR (kernel.md: timing, not workload).
        self.resched_points = set()
        self.sync_page_fails = lambda sp: False
        # A failed kvm_vcpu_read_guest_atomic() of gPTE i of sp while it is
        # synced (kernels.py "sync"); sptes_synced counts the present
        # entries kvm_sync_page got through.
        self.gpte_read_fails = lambda sp, i: False
        self.sptes_synced = 0
        self.request_mmu_sync = False           # KVM_REQ_MMU_SYNC (vcpu)
        self.request_free_obsolete_roots = False
        # Shadow-page budget (mmu.c:2601 make_mmu_pages_available).  Set by
        # set_memslot_pages(); None = unlimited.
        self.n_max_mmu_pages = None
        self.n_used_mmu_pages = 0
        self.zap_oldest_calls = 0

    def set_memslot_pages(self, nr_memslot_pages):
        """kvm_arch_commit_memory_region (x86.c:13021) on KVM_MR_CREATE:
        n_max_mmu_pages = max(pages / 50, 64)."""
        self.n_max_mmu_pages = max(nr_memslot_pages // KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO,
                                   KVM_MIN_ALLOC_MMU_PAGES)

    # ------------------------------------------------------------------
    # sp allocation / lookup (mmu.c:2035-2180)
    # ------------------------------------------------------------------
    def valid_sps_for_gfn(self, gfn):
        """for_each_gfn_valid_sp_with_gptes(kvm, sp, gfn)."""
        return [sp for sp in self.hash.get(gfn, [])
                if not sp.invalid and sp.gfn == gfn and sp_has_gptes(sp)]

    def alloc_shadow_page(self, gfn, role, name=None):
        """kvm_mmu_alloc_shadow_page(): list_add at the head of
        active_mmu_pages, hlist_add_head, account_shadowed()."""
        sp = SP(gfn, role, name)
        self.active_mmu_pages.insert(0, sp)
        self.n_used_mmu_pages += 1              # kvm_account_mmu_page
        self.hash.setdefault(gfn, []).insert(0, sp)
        if sp_has_gptes(sp):
            self.account_shadowed(sp)
        return sp

    def account_shadowed(self, sp):
        # mmu.c:803: upper levels are write-tracked (writes are emulated);
        # level-1 pages are only write-protected (and may go unsync).  Both
        # write-protect the existing sptes that map the gfn
        # (kvm_slot_page_track_add_page / kvm_mmu_slot_gfn_write_protect).
        if sp.level > PG_LEVEL_4K:
            self.tracked[sp.gfn] = self.tracked.get(sp.gfn, 0) + 1
        region = sp.gfn >> 9
        self.lpage_disallowed[region] = self.lpage_disallowed.get(region, 0) + 1
        self.write_protect_gfn(sp.gfn)

    def live_sps(self):
        for lst in self.hash.values():
            for sp in lst:
                yield sp

    def write_protect_gfn(self, gfn):
        """kvm_mmu_slot_gfn_write_protect / kvm_vcpu_write_protect_gfn:
        every leaf spte mapping gfn becomes read-only (rmap walk), 2 MiB
        ones included (the rmaps of every level up to 1 GiB)."""
        for sp in self.live_sps():
            for ent in sp.spt.values():
                if ((ent.kind == "leaf" and ent.gfn == gfn) or
                        (ent.kind == "large" and ent.gfn == gfn & ~511)):
                    ent.writable = False

    def unaccount_shadowed(self, sp):
        if sp.level > PG_LEVEL_4K:
            self.tracked[sp.gfn] -= 1
            if not self.tracked[sp.gfn]:
                del self.tracked[sp.gfn]
        region = sp.gfn >> 9
        self.lpage_disallowed[region] -= 1
        if not self.lpage_disallowed[region]:
            del self.lpage_disallowed[region]

    def lpage_allowed(self, gfn):
        """kvm_gfn_is_lpage_allowed(gfn, PG_LEVEL_2M) as far as shadow
        pages decide it (the memslot's alignment aside)."""
        return not self.lpage_disallowed.get(gfn >> 9)

    def is_write_tracked(self, gfn):
        return self.tracked.get(gfn, 0) > 0

    def find_shadow_page(self, vcpu, gfn, role):
        """kvm_mmu_find_shadow_page() (mmu.c:2038)."""
        invalid_list = []
        found = None
        for sp in list(self.hash.get(gfn, [])):
            if sp.invalid:                      # for_each_valid_sp
                continue
            if sp.gfn != gfn:
                continue
            if sp.role != role:
                if role.level > PG_LEVEL_4K and sp.unsync:
                    self.kvm_mmu_prepare_zap_page(sp, invalid_list)
                continue
            if sp.role.direct:
                found = sp
                break
            if sp.unsync:
                # kvm_sync_page() without kvm_unlink_unsync_page(): no
                # kvm_mmu_sync_page tracepoint, the page stays unsync.
                ret = self.kvm_sync_page(vcpu, sp, invalid_list)
                if ret < 0:
                    break
            sp.write_flooding_count = 0         # __clear_sp_write_flooding_count
            found = sp
            break
        self.kvm_mmu_commit_zap_page(invalid_list)
        return found

    def get_shadow_page(self, vcpu, gfn, role, name=None):
        """__kvm_mmu_get_shadow_page(): find or create."""
        sp = self.find_shadow_page(vcpu, gfn, role)
        created = sp is None
        if created:
            sp = self.alloc_shadow_page(gfn, role, name)
        self.rec.hits["kvm_mmu_get_page_tp"] += 1
        self.rec.get_page["new" if created else "existing"] += 1
        self.rec.ev("get_page", sp, "new" if created else "existing")
        self.rec.note("get_page %s created=%s" % (sp, created))
        return sp

    # ------------------------------------------------------------------
    # linking (mmu.c:2320 __link_shadow_page, 1705 parent ptes)
    # ------------------------------------------------------------------
    def link_shadow_page(self, parent, idx, sp):
        ent = parent.spt.get(idx)
        if is_shadow_present_pte(ent):
            invalid_list = []
            self.mmu_page_zap_pte(parent, idx, invalid_list)
            self.kvm_mmu_remote_flush_or_zap(invalid_list, True)
        parent.spt[idx] = Spte("nonleaf", child=sp)
        sp.parent_ptes.append((parent, idx))
        if sp.unsync_children or sp.unsync:
            self.mark_unsync(parent, idx)

    def drop_parent_pte(self, sp, parent, idx):
        """drop_parent_pte(): remove the rmap entry, clear the parent spte.
        Note: the parent's unsync_child_bitmap is NOT touched: a set bit for
        this index becomes stale and is cleared by a later walk."""
        sp.parent_ptes.remove((parent, idx))
        del parent.spt[idx]

    # ------------------------------------------------------------------
    # setting bits (mmu.c:1726-1747, 2676)
    # ------------------------------------------------------------------
    def kvm_mmu_mark_parents_unsync(self, sp):
        for (parent, idx) in list(sp.parent_ptes):     # for_each_rmap_spte
            self.mark_unsync(parent, idx)

    def mark_unsync(self, sp, idx):
        if idx in sp.unsync_child_bitmap:               # __test_and_set_bit
            return
        sp.unsync_child_bitmap.add(idx)
        sp.unsync_children += 1
        if sp.unsync_children - 1:                       # if (sp->unsync_children++)
            return
        self.kvm_mmu_mark_parents_unsync(sp)

    def kvm_unsync_page(self, sp):
        """kvm_unsync_page() (mmu.c:2680): fires kvmmmu:kvm_mmu_unsync_page."""
        self.rec.pages_unsynced += 1
        self.rec.ev("unsync_page", sp)
        self.rec.note("unsync_page %s" % sp)
        self.stat_mmu_unsync += 1
        sp.unsync = True
        self.kvm_mmu_mark_parents_unsync(sp)

    def mmu_try_to_unsync_pages(self, gfn, can_unsync=True, prefetch=False):
        """mmu.c:2695.  Returns 0 (writable) or a negative error (the spte
        must stay write-protected)."""
        if self.is_write_tracked(gfn):
            return -1                                   # -EPERM
        if self.kernel.unsync_lpage_shortcut and self.lpage_allowed(gfn):
            return 0                                    # 7.2 mmu.c:3005
        for sp in self.valid_sps_for_gfn(gfn):
            if not can_unsync:
                return -1
            if sp.unsync:
                continue
            if prefetch:
                return -17                              # -EEXIST
            assert sp.level == PG_LEVEL_4K
            self.kvm_unsync_page(sp)
        return 0

    # ------------------------------------------------------------------
    # the walk (mmu.c:1765-1838)
    # ------------------------------------------------------------------
    def mmu_pages_add(self, pvec, sp, idx):
        if sp.unsync:
            for i in range(pvec.nr):
                if pvec.page[i][0] is sp:
                    return 0
        pvec.page[pvec.nr] = (sp, idx)      # IndexError == kernel overflow
        pvec.nr += 1
        return pvec.nr == KVM_PAGE_ARRAY_NR

    def clear_unsync_child_bit(self, sp, idx, site):
        sp.unsync_children -= 1
        if sp.unsync_children < 0:
            raise AssertionError("WARN_ON: unsync_children < 0 on %s" % sp)
        sp.unsync_child_bitmap.discard(idx)
        if site == "clear_parents":
            # The agent measures these over the parents of
            # mmu_pages_clear_parents (entry minus exit); the walk-site clears
            # are measured per frame in __mmu_unsync_walk below.
            ctx = self.rec.ctx()
            self.rec.clears[ctx]["clear_parents"] += 1
            s = self.rec.cur_sync()
            if s is not None:
                s.clears_parents += 1

    def __mmu_unsync_walk(self, sp, pvec):
        rec = self.rec
        ctx = rec.ctx()
        depth = rec._depth
        rec._depth += 1
        rec.hits["__mmu_unsync_walk"] += 1
        kc = rec.kctx()
        rec.kinc("walk_frames")
        if depth == 0:
            rec.kinc("walks")
            if pvec.nr != 1:
                rec.k["walk_top_nr_not_1"] += 1
            if kc == "sync":
                rec.k["walks_per_sync_children"][-1] += 1
        rec.k["walk_max_nr_at_entry"] = max(rec.k["walk_max_nr_at_entry"], pvec.nr)
        rec.k["walk_max_depth"] = max(rec.k["walk_max_depth"], rec._depth)
        rec.frames[ctx] += 1
        s = rec.cur_sync()
        if s is not None:
            s.frames += 1
        entry_children = sp.unsync_children
        ret = self._walk_body(sp, pvec)
        # Agent's measure: sp->unsync_children at entry minus at exit.
        cleared = entry_children - sp.unsync_children
        rec.clears[ctx]["walk"] += cleared
        if s is not None:
            s.clears_walk += cleared
        if ret == -ENOSPC:
            rec.enospc_frames[ctx] += 1
            rec.kinc("walk_frames_enospc")
            if depth == 0:
                rec.kinc("restarts")
        elif depth == 0 and ret > 0:
            rec.kinc("walk_leaves", n=ret)
        if ret == 0:
            zc = rec.k["zero_frame_clears"]
            zc[ctx] = zc.get(ctx, 0) + entry_children
        rec._depth -= 1
        if depth == 0:
            self._top_level_exit(ctx, sp, pvec, ret)
        rec.note("%sframe %s ret=%d nr=%d cleared=%d" %
                 ("  " * depth, sp, ret, pvec.nr, cleared))
        return ret

    def _walk_body(self, sp, pvec):
        nr_unsync_leaf = 0
        i = self._next_set_bit(sp, -1)
        while i is not None:                    # for_each_set_bit(i, bitmap, 512)
            ent = sp.spt.get(i)
            if not is_shadow_present_pte(ent) or is_large_pte(ent):
                self.clear_unsync_child_bit(sp, i, "walk")
                i = self._next_set_bit(sp, i)
                continue
            child = ent.child
            if child.unsync_children:
                if self.mmu_pages_add(pvec, child, i):
                    return -ENOSPC
                ret = self.__mmu_unsync_walk(child, pvec)
                if not ret:
                    self.clear_unsync_child_bit(sp, i, "walk")
                    i = self._next_set_bit(sp, i)
                    continue
                elif ret > 0:
                    nr_unsync_leaf += ret
                else:
                    return ret
            elif child.unsync:
                nr_unsync_leaf += 1
                if self.mmu_pages_add(pvec, child, i):
                    return -ENOSPC
            else:
                self.clear_unsync_child_bit(sp, i, "walk")
            i = self._next_set_bit(sp, i)
        return nr_unsync_leaf

    @staticmethod
    def _next_set_bit(sp, after):
        """find_next_bit() on the live bitmap."""
        nxt = [b for b in sp.unsync_child_bitmap if b > after]
        return min(nxt) if nxt else None

    def _top_level_exit(self, ctx, root, pvec, ret):
        rec = self.rec
        result = "enospc" if ret == -ENOSPC else "done"
        assert ret >= 0 or ret == -ENOSPC
        rec.walks[ctx][result] += 1
        leaves = sum(1 for (p, _) in pvec.entries()
                     if p.level == PG_LEVEL_4K and p.unsync)
        rec.leaves[ctx] += leaves
        rec.pvec_depth[ctx][pvec.nr] += 1
        s = rec.cur_sync()
        if s is not None:
            s.walks += 1
            s.leaves += leaves
            s.max_nr = max(s.max_nr, pvec.nr)
            if ret == -ENOSPC:
                s.restarts += 1
                rec.restarts += 1
        else:
            rec.zap_walks.append((root.level, ret, pvec.nr, leaves))

    def mmu_unsync_walk(self, sp, pvec):
        pvec.nr = 0
        if not sp.unsync_children:
            return 0
        self.mmu_pages_add(pvec, sp, INVALID_INDEX)
        return self.__mmu_unsync_walk(sp, pvec)

    # ------------------------------------------------------------------
    # pvec iteration (mmu.c:1908-1978)
    # ------------------------------------------------------------------
    @staticmethod
    def mmu_pages_next(pvec, parents, i):
        n = i + 1
        while n < pvec.nr:
            sp, idx = pvec.page[n]
            level = sp.level
            parents.idx[level - 1] = idx
            if level == PG_LEVEL_4K:
                break
            parents.parent[level - 2] = sp
            n += 1
        return n

    @classmethod
    def mmu_pages_first(cls, pvec, parents):
        if pvec.nr == 0:
            return 0
        sp, idx = pvec.page[0]
        assert idx == INVALID_INDEX
        level = sp.level
        assert level != PG_LEVEL_4K
        parents.parent[level - 2] = sp
        parents.parent[level - 1] = None        # sentinel
        return cls.mmu_pages_next(pvec, parents, 0)

    def for_each_sp(self, pvec, parents):
        i = self.mmu_pages_first(pvec, parents)
        while i < pvec.nr:
            yield pvec.page[i][0]
            i = self.mmu_pages_next(pvec, parents, i)

    def mmu_pages_clear_parents(self, parents):
        self.rec.hits["mmu_pages_clear_parents"] += 1
        self.rec.kinc("clear_parents")
        level = 0
        while True:
            idx = parents.idx[level]
            sp = parents.parent[level]
            if sp is None:
                return
            assert idx != INVALID_INDEX
            self.clear_unsync_child_bit(sp, idx, "clear_parents")
            level += 1
            if sp.unsync_children:
                break

    # ------------------------------------------------------------------
    # sync (mmu.c:1840, 1857, 1980)
    # ------------------------------------------------------------------
    def kvm_unlink_unsync_page(self, sp):
        assert sp.unsync, "WARN_ON(!sp->unsync)"
        self.rec.hits["kvm_unlink_unsync_page"] += 1
        self.rec.kinc("tp_sync_page_by_context")
        self.rec.pages_synced += 1              # trace_kvm_mmu_sync_page
        self.rec.ev("sync_page", sp)
        sp.unsync = False
        self.stat_mmu_unsync -= 1

    def kvm_sync_page(self, vcpu, sp, invalid_list):
        ret = self.sync_page(vcpu, sp)
        if ret < 0:
            self.kvm_mmu_prepare_zap_page(sp, invalid_list)
        return ret

    def sync_page(self, vcpu, sp):
        """6.1: mmu->sync_page = FNAME(sync_page) (paging_tmpl.h:994), -1
        at the first gPTE it cannot read.  6.4 on: __kvm_sync_page (6.12
        mmu.c:1934, 7.2 mmu.c:2084) calls kvm_sync_spte for every present
        entry; a failed read is -1 for that entry only, "flush |= ret"
        makes the result -1 after the loop (kernels.py "sync").  Both
        start with the role check (sync_page_fails)."""
        if self.sync_page_fails(sp):
            return -1
        per_spte = self.kernel.sync_page == "spte"
        flush = 0
        for i in sorted(sp.spt):
            if self.gpte_read_fails(sp, i):
                if not per_spte:
                    return -1
                flush |= -1
                continue
            self.sptes_synced += 1
        return flush

    def mmu_sync_children(self, vcpu, parent, can_yield):
        rec = self.rec
        rec.hits["mmu_sync_children"] += 1
        call_no = rec.hits["mmu_sync_children"] - 1
        batch = 0
        srec = SyncRecord(can_yield, parent.level)
        rec._sync_stack.append(srec)
        rec._kstack.append("sync")
        lv = rec.k["sync_children_root_levels"]
        lv[str(parent.level)] = lv.get(str(parent.level), 0) + 1
        rec.k["walks_per_sync_children"].append(0)
        rec.sync_by_can_yield["true" if can_yield else "false"] += 1
        rec.note("mmu_sync_children(%s, can_yield=%s)" % (parent, can_yield))
        result = 0
        try:
            invalid_list = []
            pvec = Pvec()
            while self.mmu_unsync_walk(parent, pvec):
                parents = MmuPagePath()
                # kvm_vcpu_write_protect_gfn() for each sp: the model needs
                # no state for it (a synced level-1 sp always faults on the
                # next guest write, which is all that matters).
                for sp in self.for_each_sp(pvec, parents):
                    self.write_protect_gfn(sp.gfn)
                parents = MmuPagePath()
                for sp in self.for_each_sp(pvec, parents):
                    self.kvm_unlink_unsync_page(sp)
                    self.kvm_sync_page(vcpu, sp, invalid_list)
                    self.mmu_pages_clear_parents(parents)
                resched = (call_no, batch) in self.resched_points or self.need_resched()
                batch += 1
                if resched:
                    self.kvm_mmu_remote_flush_or_zap(invalid_list, True)
                    if not can_yield:
                        self.request_mmu_sync = True
                        result = -EINTR
                        break
            if result == 0:
                self.kvm_mmu_remote_flush_or_zap(invalid_list, True)
        finally:
            rec._sync_stack.pop()
            rec._kstack.pop()
        srec.result = result
        rec.sync_calls["ok" if result == 0 else "eintr"] += 1
        rec.syncs.append(srec)
        return result

    # ------------------------------------------------------------------
    # zap (mmu.c:2378-2552, 6527)
    # ------------------------------------------------------------------
    def mmu_page_zap_pte(self, sp, idx, invalid_list):
        ent = sp.spt.get(idx)
        if is_shadow_present_pte(ent):
            if ent.kind in ("leaf", "large"):
                del sp.spt[idx]                 # drop_spte
            else:
                self.drop_parent_pte(ent.child, sp, idx)
                # (the tdp_enabled && guest_mode recursion never applies:
                #  shadow paging, tdp_enabled == false)
        return 0

    def kvm_mmu_page_unlink_children(self, sp, invalid_list):
        zapped = 0
        for idx in sorted(sp.spt):
            zapped += self.mmu_page_zap_pte(sp, idx, invalid_list)
        return zapped

    def kvm_mmu_unlink_parents(self, sp):
        while sp.parent_ptes:
            parent, idx = sp.parent_ptes[0]
            self.drop_parent_pte(sp, parent, idx)

    def mmu_zap_unsync_children(self, parent, invalid_list):
        self.rec._kstack.append("zap")
        try:
            return self._zap_unsync_children(parent, invalid_list)
        finally:
            self.rec._kstack.pop()

    def _zap_unsync_children(self, parent, invalid_list):
        zapped = 0
        if parent.level == PG_LEVEL_4K:
            return 0
        pvec = Pvec()
        while self.mmu_unsync_walk(parent, pvec):
            parents = MmuPagePath()
            for sp in self.for_each_sp(pvec, parents):
                self.kvm_mmu_prepare_zap_page(sp, invalid_list)
                self.mmu_pages_clear_parents(parents)
                zapped += 1
        return zapped

    def __kvm_mmu_prepare_zap_page(self, sp, invalid_list):
        """Returns (list_unstable, nr_zapped)."""
        self.rec.hits["kvm_mmu_prepare_zap_page_tp"] += 1
        self.rec.ev("prepare_zap_page", sp)
        zl = self.rec.k["zap_levels"]
        zl[sp.level] = zl.get(sp.level, 0) + 1
        if sp.unsync:
            self.rec.k["zap_unsync"] += 1
        self.rec.note("prepare_zap %s unsync=%s unsync_children=%d root_count=%d"
                      % (sp, sp.unsync, sp.unsync_children, sp.root_count))
        self.stat_shadow_zapped += 1
        nr_zapped = self.mmu_zap_unsync_children(sp, invalid_list)
        nr_zapped += self.kvm_mmu_page_unlink_children(sp, invalid_list)
        self.kvm_mmu_unlink_parents(sp)
        list_unstable = bool(nr_zapped)
        if not sp.invalid and sp_has_gptes(sp):
            self.unaccount_shadowed(sp)
        if sp.unsync:
            self.kvm_unlink_unsync_page(sp)
        zapped_root = False
        if not sp.root_count:
            nr_zapped += 1
            self.n_used_mmu_pages -= 1          # kvm_unaccount_mmu_page
            if sp in self.active_mmu_pages:     # list_move (or list_add if invalid)
                self.active_mmu_pages.remove(sp)
            invalid_list.append(sp)
        else:
            if sp in self.active_mmu_pages:     # list_del
                self.active_mmu_pages.remove(sp)
            zapped_root = not sp.invalid
        sp.invalid = True
        if zapped_root:
            # kvm_make_all_cpus_request(KVM_REQ_MMU_FREE_OBSOLETE_ROOTS)
            self.request_free_obsolete_roots = True
        return list_unstable, nr_zapped

    def kvm_mmu_prepare_zap_page(self, sp, invalid_list):
        _, nr = self.__kvm_mmu_prepare_zap_page(sp, invalid_list)
        return nr

    def kvm_mmu_commit_zap_page(self, invalid_list):
        if not invalid_list:
            return
        self.tlb_flushes += 1
        for sp in invalid_list:
            assert sp.invalid and not sp.root_count
            self.free_shadow_page(sp)
        del invalid_list[:]

    def free_shadow_page(self, sp):
        self.hash[sp.gfn].remove(sp)
        sp.freed = True

    def kvm_mmu_remote_flush_or_zap(self, invalid_list, remote_flush):
        if not remote_flush and not invalid_list:
            return False
        if invalid_list:
            self.kvm_mmu_commit_zap_page(invalid_list)
        else:
            self.tlb_flushes += 1
        return True

    def kvm_mmu_zap_all(self):
        """mmu.c:6527.  Walks active_mmu_pages from the head (newest first);
        restarts from the head whenever a zap zapped other pages.  The
        cond_resched_rwlock_write() restart is harmless for the figures: a
        restart re-visits only pages still on the list, in the same order."""
        invalid_list = []
        restart = True
        while restart:
            restart = False
            for sp in list(self.active_mmu_pages):
                if sp not in self.active_mmu_pages:
                    # list_for_each_entry_safe would have gone astray here;
                    # the kernel restarts (list_unstable) before that.
                    raise AssertionError("zap_all iterated a removed page")
                assert not sp.invalid
                unstable, _ = self.__kvm_mmu_prepare_zap_page(sp, invalid_list)
                if unstable:
                    restart = True
                    break
        self.kvm_mmu_commit_zap_page(invalid_list)

    def kvm_mmu_zap_oldest_mmu_pages(self, nr_to_zap):
        """mmu.c:2556: walk active_mmu_pages from the tail (oldest first,
        list_for_each_entry_safe_reverse), skip roots, zap until
        nr_to_zap pages went; restart from the tail when a zap made the
        list unstable (it zapped unsync children)."""
        self.zap_oldest_calls += 1
        invalid_list = []
        total = 0
        if self.active_mmu_pages:
            restart = True
            while restart:
                restart = False
                i = len(self.active_mmu_pages) - 1
                while i >= 0:
                    sp = self.active_mmu_pages[i]
                    if sp.root_count:
                        i -= 1
                        continue
                    unstable, nr = self.__kvm_mmu_prepare_zap_page(sp, invalid_list)
                    total += nr
                    if total >= nr_to_zap:
                        break
                    if unstable:
                        restart = True
                        break
                    # sp left the list; the previous (newer) entry is now
                    # at i - 1 ("tmp" of the _safe_reverse iteration)
                    i -= 1
        self.kvm_mmu_commit_zap_page(invalid_list)
        return total

    def kvm_mmu_available_pages(self):
        if self.n_max_mmu_pages is None:
            return 1 << 30
        return max(self.n_max_mmu_pages - self.n_used_mmu_pages, 0)

    def make_mmu_pages_available(self):
        """mmu.c:2601; called (under mmu_lock) by every shadow page fault
        that gets past the page-track check, and by root allocation."""
        avail = self.kvm_mmu_available_pages()
        if avail >= KVM_MIN_FREE_MMU_PAGES:
            return 0
        self.kvm_mmu_zap_oldest_mmu_pages(KVM_REFILL_PAGES - avail)
        return 0

    # ------------------------------------------------------------------
    # emulated writes to write-tracked (upper-level) page tables
    # (mmu.c:5443 detect_write_flooding, 5509 kvm_mmu_pte_write)
    # ------------------------------------------------------------------
    @staticmethod
    def detect_write_flooding(sp):
        if sp.level == PG_LEVEL_4K:
            return False
        sp.write_flooding_count += 1
        return sp.write_flooding_count >= 3

    def kvm_mmu_pte_write(self, gfn, index, misaligned=False):
        invalid_list = []
        flush = False
        for sp in self.valid_sps_for_gfn(gfn):
            if misaligned or self.detect_write_flooding(sp):
                self.kvm_mmu_prepare_zap_page(sp, invalid_list)
                self.stat_flooded += 1
                continue
            if is_shadow_present_pte(sp.spt.get(index)):
                flush = True
            self.mmu_page_zap_pte(sp, index, None)
        self.kvm_mmu_remote_flush_or_zap(invalid_list, flush)
