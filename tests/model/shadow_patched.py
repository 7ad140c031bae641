"""Model of the unsync walk of the PATCHED 6.1 kernel.

tests/kernel/patches/ apply Lai Jiangshan's "Simplify mmu_unsync_walk()"
series (as reworked after Sean Christopherson's review) to Debian's 6.1.
This module transcribes the patched arch/x86/kvm/mmu/mmu.c walk, function
by function, the way shadow.py transcribes the stock one:

  mmu_is_page_vec_full, mmu_pages_add            (check, then add)
  __mmu_unsync_walk                               (collects AND clears)
  mmu_unsync_walk_and_clear                       (was mmu_unsync_walk)
  for_each_sp                                     (a plain loop now)
  mmu_sync_children, mmu_zap_unsync_children      (no clear_parents)

Everything the series does not touch (shadow-page allocation, linking,
mark_unsync / kvm_unsync_page, prepare/commit zap, zap_all, zap_oldest,
the budget, write flooding) is inherited unchanged from shadow.Kvm, and the
vCPU/workload layer (kvm_shapes.py) is shared: it calls the same entry
points (mmu_sync_children, kvm_mmu_prepare_zap_page) on either model.

The patched walk, read from the patched source (after all 9 patches):

  for each set bit i of sp->unsync_child_bitmap (live bitmap):
      spte not present or large            -> clear bit i
      child has unsync_children            -> recurse;
            < 0: return it (bit i stays);  0: stale, clear bit i;
            > 0: count it, then "fully walked"
      child unsync                         -> vector full? return -ENOSPC
                                              (bit i stays); else add
                                              (dedup), count 1, "fully
                                              walked"
      else                                 -> clear bit i
      fully walked: clear bit i unless sp->root_count != 0 (a root keeps
      the bit; the caller's next walk finds the child clean and clears it)
  return the count

  mmu_unsync_walk_and_clear: nr = 0; return 0 if !unsync_children (no
  frame); no longer adds the root to the vector.

Consequences the figures show (derived by hand in test_model_patched.py):
  * Only unsync pages are in the vector: 16 of them fit, not 16 minus the
    root and the parents on the path.
  * -ENOSPC only when an unsync page finds no room: a walk whose pages
    fill the vector exactly returns their number.
  * Bits are cleared once, in the walk; clear_parents is always 0 and the
    walk-site clears equal the bits set.
  * A walk from a page with root_count (the 4-level PML4, every PAE
    root, an invalid root still held by a vCPU) that found something
    leaves the root's bits set, so the caller loops once more: one
    top-level frame that clears them and returns 0, with nr 0.  A walk
    from a non-root page (FNAME(fetch), can_yield = false; zap of a
    non-root page) clears everything and needs no such extra walk.
"""

from shadow import (Kvm, SyncRecord, KVM_PAGE_ARRAY_NR, PG_LEVEL_4K, ENOSPC,
                    EINTR, is_shadow_present_pte, is_large_pte)

VARIANT = "patched"

# What the patched model assumes beyond kvm_shapes.ASSUMPTIONS (which stay
# true: the series touches only the walk and its two callers).
ASSUMPTIONS = [
    "P1 The series (tests/kernel/patches, 9 patches) changes only mmu.c's "
    "page vector (struct kvm_mmu_page_vec: page[16] of bare pointers, nr), "
    "mmu_is_page_vec_full, mmu_pages_add, __mmu_unsync_walk, "
    "mmu_unsync_walk (renamed mmu_unsync_walk_and_clear), for_each_sp, "
    "mmu_sync_children and mmu_zap_unsync_children, and removes "
    "mmu_pages_clear_parents, mmu_pages_first/next and struct "
    "mmu_page_path. kvm_mmu_sync_roots, is_unsync_root, FNAME(fetch), "
    "__kvm_mmu_prepare_zap_page, kvm_mmu_zap_all, the budget and write "
    "flooding are unchanged, so every kvm_shapes assumption A1-A16 holds.",
    "P2 The loops of mmu_sync_children and mmu_zap_unsync_children still "
    "run 'while (walk returns non-zero)'; the walk returns 0 exactly when "
    "the vector is empty. need_resched() is checked once per batch, as "
    "before (A6: never true unless replayed with --resched).",
    "P3 'if (sp->root_count) continue' reads the root_count of the frame's "
    "own page: in 4-level guests only the PML4 frame keeps bits; in PAE "
    "guests every PD_t[d] root frame keeps the bits of its tables; an "
    "invalid root still referenced by the vCPU (PAE flood zap) keeps "
    "them too.",
]


class PageVec:
    """struct kvm_mmu_page_vec: page[16] (bare sp pointers) and nr."""

    def __init__(self):
        self.page = [None] * KVM_PAGE_ARRAY_NR
        self.nr = 0

    def entries(self):
        return self.page[:self.nr]


class KvmPatched(Kvm):
    """shadow.Kvm with the walk and its callers of the patched kernel."""

    variant = VARIANT

    def __init__(self, recorder=None):
        Kvm.__init__(self, recorder)
        # Bits set by mark_unsync (__test_and_set_bit found it clear): the
        # patched kernel clears each exactly once, in a walk frame.
        self.bits_set = 0

    # ------------------------------------------------------------------
    # bits set: unchanged code, counted for the set == cleared invariant
    # ------------------------------------------------------------------
    def mark_unsync(self, sp, idx):
        if idx not in sp.unsync_child_bitmap:
            self.bits_set += 1
        Kvm.mark_unsync(self, sp, idx)

    # ------------------------------------------------------------------
    # the page vector (patches 1, 5, 6, 9)
    # ------------------------------------------------------------------
    @staticmethod
    def mmu_is_page_vec_full(pvec):
        return pvec.nr == KVM_PAGE_ARRAY_NR

    def mmu_pages_add(self, pvec, sp, idx=None):
        """Adds sp unless it is an unsync page already there; never
        reports fullness (the caller checked first)."""
        if sp.unsync:
            for i in range(pvec.nr):
                if pvec.page[i] is sp:
                    return
        if self.mmu_is_page_vec_full(pvec):
            raise AssertionError("WARN_ON_ONCE: add to a full page vector")
        pvec.page[pvec.nr] = sp
        pvec.nr += 1

    def mmu_pages_clear_parents(self, parents):
        raise AssertionError("mmu_pages_clear_parents() does not exist in "
                             "the patched kernel")

    # ------------------------------------------------------------------
    # the walk (patches 1, 2, 7)
    # ------------------------------------------------------------------
    def mmu_unsync_walk_and_clear(self, sp, pvec):
        pvec.nr = 0
        if not sp.unsync_children:
            return 0
        return self._patched_walk(sp, pvec)

    # The stock name is gone; anything still calling it is a model bug.
    def mmu_unsync_walk(self, sp, pvec):
        raise AssertionError("mmu_unsync_walk() is mmu_unsync_walk_and_clear() "
                             "in the patched kernel")

    def _patched_walk(self, sp, pvec):
        """__mmu_unsync_walk(sp, pvec), instrumented like the stock model:
        one frame per call, entry-minus-exit unsync_children, top-level
        exit figures."""
        rec = self.rec
        ctx = rec.ctx()
        depth = rec._depth
        rec._depth += 1
        rec.hits["__mmu_unsync_walk"] += 1
        kc = rec.kctx()
        rec.kinc("walk_frames")
        if depth == 0:
            rec.kinc("walks")
            # The selfcheck counts top-level entries with nr != 1 (the
            # stock root entry); the patched vector starts empty.
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
        ret = self._patched_walk_body(sp, pvec)
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
            self._patched_top_level_exit(ctx, sp, pvec, ret)
        rec.note("%sframe %s ret=%d nr=%d cleared=%d" %
                 ("  " * depth, sp, ret, pvec.nr, cleared))
        return ret

    def _patched_walk_body(self, sp, pvec):
        nr_unsync_leaf = 0
        i = self._next_set_bit(sp, -1)
        while i is not None:                    # for_each_set_bit(i, ..., 512)
            ent = sp.spt.get(i)
            clear = True
            if is_shadow_present_pte(ent) and not is_large_pte(ent):
                child = ent.child
                if child.unsync_children:
                    ret = self._patched_walk(child, pvec)
                    if ret < 0:
                        return ret
                    if ret:                     # 0: stale, clear below
                        nr_unsync_leaf += ret
                        clear = not sp.root_count
                elif child.unsync:
                    if self.mmu_is_page_vec_full(pvec):
                        return -ENOSPC
                    self.mmu_pages_add(pvec, child)
                    nr_unsync_leaf += 1
                    clear = not sp.root_count
            if clear:                           # clear_child_bit:
                self.clear_unsync_child_bit(sp, i, "walk")
            i = self._next_set_bit(sp, i)
        return nr_unsync_leaf

    def _patched_top_level_exit(self, ctx, root, pvec, ret):
        rec = self.rec
        assert ret >= 0 or ret == -ENOSPC
        assert (ret == 0) == (pvec.nr == 0), "returns 0 iff the vector is empty"
        rec.walks[ctx]["enospc" if ret == -ENOSPC else "done"] += 1
        leaves = sum(1 for p in pvec.entries()
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

    # ------------------------------------------------------------------
    # the callers (patches 2, 4, 8)
    # ------------------------------------------------------------------
    @staticmethod
    def for_each_sp(pvec, parents=None):
        for i in range(pvec.nr):
            yield pvec.page[i]

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
        rec.note("mmu_sync_children(%s, can_yield=%s) [patched]" % (parent, can_yield))
        result = 0
        try:
            invalid_list = []
            pvec = PageVec()
            while self.mmu_unsync_walk_and_clear(parent, pvec):
                for sp in self.for_each_sp(pvec):
                    self.write_protect_gfn(sp.gfn)
                for sp in self.for_each_sp(pvec):
                    self.kvm_unlink_unsync_page(sp)
                    self.kvm_sync_page(vcpu, sp, invalid_list)
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

    def _zap_unsync_children(self, parent, invalid_list):
        zapped = 0
        if parent.level == PG_LEVEL_4K:
            return 0
        pvec = PageVec()
        while self.mmu_unsync_walk_and_clear(parent, pvec):
            for sp in self.for_each_sp(pvec):
                self.kvm_mmu_prepare_zap_page(sp, invalid_list)
                zapped += 1
        return zapped

    # ------------------------------------------------------------------
    # invariant helpers
    # ------------------------------------------------------------------
    def bits_cleared(self):
        c = self.rec.clears
        return sum(c[x]["walk"] + c[x]["clear_parents"] for x in c)

    def bits_still_set(self):
        """Bits set in pages that still exist (not freed)."""
        return sum(len(sp.unsync_child_bitmap) for sp in self.live_sps()
                   if not sp.freed)
