"""Unit tests of the walk model (python3 -m unittest, from tests/model or
with tests/model on sys.path).

Every expected number below is derived by hand from 6.1 mmu.c, with the
derivation in the comment next to it; none was copied from the model's
output.  Notation: nr = pvec->nr; the pvec of a walk rooted at a level-4
root holds [root, PDPT, PD, leaves...], so a 4-level walk through one PD
has 3 + L entries for L leaves, and mmu_pages_add returns true (-> -ENOSPC)
when an add makes nr == 16, i.e. at the 13th leaf.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import shadow  # noqa: E402
import kvm_shapes  # noqa: E402
from shadow import Kvm, Role  # noqa: E402


# ----------------------------------------------------------------------
# helpers: build shadow trees directly (layer a)
# ----------------------------------------------------------------------

class Tree:
    """A 4-level shadow tree: PML4 root -> PDPT -> PD[p] -> PT leaves."""

    def __init__(self, leaves_per_pd, root_level=4):
        self.kvm = Kvm()
        self.rec = self.kvm.rec
        k = self.kvm
        gfn = iter(range(0x100, 0x10000))
        self.pds, self.pts = [], []
        if root_level == 4:
            self.root = k.alloc_shadow_page(next(gfn), Role(4), "PML4")
            self.root.root_count = 1
            self.pdpt = k.alloc_shadow_page(next(gfn), Role(3), "PDPT")
            k.link_shadow_page(self.root, 0, self.pdpt)
            parent = self.pdpt
        else:                                   # a level-2 root (PAE root)
            self.root = None
            parent = None
        for p, n in enumerate(leaves_per_pd):
            pd = k.alloc_shadow_page(next(gfn), Role(2), "PD%d" % p)
            if parent is not None:
                k.link_shadow_page(parent, 1 + p, pd)
            else:
                pd.root_count = 1
                self.root = pd
            self.pds.append(pd)
            for j in range(n):
                pt = k.alloc_shadow_page(next(gfn), Role(1), "PT%d.%d" % (p, j))
                k.link_shadow_page(pd, j, pt)
                self.pts.append(pt)

    def unsync_all(self):
        for pt in self.pts:
            self.kvm.kvm_unsync_page(pt)

    def sync(self, can_yield=True):
        return self.kvm.mmu_sync_children(None, self.root, can_yield)


def rep(rec):
    return rec.report()


class WalkBoundaries(unittest.TestCase):
    """4-level root, one PD, L unsync leaves, one mmu_sync_children."""

    def test_12_leaves_one_walk_nr_15(self):
        t = Tree([12])
        t.unsync_all()
        self.assertEqual(t.root.unsync_children, 1)
        self.assertEqual(t.pdpt.unsync_children, 1)
        self.assertEqual(t.pds[0].unsync_children, 12)
        self.assertEqual(t.sync(), 0)
        r = rep(t.rec)
        # One walk: 3 + 12 = 15 < 16, returns 12 (done); frames PML4, PDPT, PD.
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 3)
        self.assertEqual(r["enospc_frames"]["sync"], 0)
        self.assertEqual(r["restarts"], 0)
        self.assertEqual(r["pvec_depth"]["sync"][15], 1)
        self.assertEqual(r["leaves"]["sync"], 12)
        # clear_parents: 11 clears of a PD bit with the PD still nonzero, then
        # the 12th clears PD (->0), PDPT (->0) and PML4 (->0): 12 + 2.
        self.assertEqual(r["clears"]["sync"], {"walk": 0, "clear_parents": 14})
        self.assertEqual(r["pages_synced"], 12)
        # The second mmu_unsync_walk sees root->unsync_children == 0 and
        # returns 0 without a frame.
        self.assertEqual(t.rec.hits["__mmu_unsync_walk"], 3)
        self.assertEqual(r["syncs"], [{
            "can_yield": True, "root_level": 4, "walks": 1, "restarts": 0,
            "frames": 3, "leaves": 12, "clears_walk": 0, "clears_parents": 14,
            "max_nr": 15}])
        self.assertEqual(t.root.unsync_children, 0)

    def test_13_leaves_enospc_at_boundary(self):
        t = Tree([13])
        t.unsync_all()
        t.sync()
        r = rep(t.rec)
        # The 13th add makes nr 16: -ENOSPC from the PD frame, propagated
        # through PDPT and PML4 frames (3 -ENOSPC frames) although all 13
        # leaves are in the vector.  All 13 are synced and clear_parents
        # empties the whole path, so the next mmu_unsync_walk returns 0
        # without calling __mmu_unsync_walk: one walk, one restart, 3 frames.
        self.assertEqual(r["walks"]["sync"], {"done": 0, "enospc": 1})
        self.assertEqual(r["restarts"], 1)
        self.assertEqual(r["frames"]["sync"], 3)
        self.assertEqual(r["enospc_frames"]["sync"], 3)
        self.assertEqual(r["pvec_depth"]["sync"][16], 1)
        self.assertEqual(r["leaves"]["sync"], 13)
        self.assertEqual(r["clears"]["sync"]["clear_parents"], 13 + 2)
        self.assertEqual(r["pages_synced"], 13)
        self.assertEqual(r["syncs"][0]["max_nr"], 16)

    def test_14_leaves_two_walks(self):
        t = Tree([14])
        t.unsync_all()
        t.sync()
        r = rep(t.rec)
        # Walk 1: 13 leaves, nr 16, -ENOSPC.  Walk 2: 1 leaf, nr 4, done.
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 1})
        self.assertEqual(r["restarts"], 1)
        self.assertEqual(r["frames"]["sync"], 6)
        self.assertEqual(r["enospc_frames"]["sync"], 3)
        hist = [0] * 17
        hist[16] = 1
        hist[4] = 1
        self.assertEqual(r["pvec_depth"]["sync"], hist)
        self.assertEqual(r["leaves"]["sync"], 14)
        self.assertEqual(r["clears"]["sync"]["clear_parents"], 14 + 2)
        self.assertEqual(r["syncs"][0]["walks"], 2)
        self.assertEqual(r["syncs"][0]["max_nr"], 16)

    def test_two_pds_split_across_walks(self):
        # PD0 with 20, PD1 with 20 leaves.  Walk 1: [PML4,PDPT,PD0]+13 ->
        # -ENOSPC.  Walk 2: [PML4,PDPT,PD0]+7 = 10, PD0 frame returns 7,
        # PD1 added (11) + 5 leaves -> 16 -ENOSPC.  Walk 3: [PML4,PDPT,PD1]
        # + 13 (PD1's remaining 15) -> 16 -ENOSPC.  Walk 4: PD1's last 2 ->
        # nr 5, done.  Frames: 3 + 4 + 3 + 3 = 13; -ENOSPC frames: 3+3+3 = 9.
        t = Tree([20, 20])
        t.unsync_all()
        t.sync()
        r = rep(t.rec)
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 3})
        self.assertEqual(r["frames"]["sync"], 13)
        self.assertEqual(r["enospc_frames"]["sync"], 9)
        self.assertEqual(r["pvec_depth"]["sync"][16], 3)
        self.assertEqual(r["pvec_depth"]["sync"][5], 1)
        # Leaves at exit: 13 + (7 + 5) + 13 + 2 = 40.
        self.assertEqual(r["leaves"]["sync"], 40)
        # clear_parents: 40 leaf bits + PD0->PDPT bit (when PD0 empties) +
        # PD1->PDPT bit and PDPT->PML4 bit (when PD1 empties) = 43.
        self.assertEqual(r["clears"]["sync"]["clear_parents"], 43)


class Dedup(unittest.TestCase):

    def test_same_unsync_leaf_under_two_sptes(self):
        # One PD whose sptes 0 and 1 both point to the same PT.  kvm_unsync_
        # page marks both parent sptes: PD bits {0,1}, unsync_children 2.
        k = Kvm()
        root = k.alloc_shadow_page(0x10, Role(4), "PML4")
        root.root_count = 1
        pdpt = k.alloc_shadow_page(0x11, Role(3), "PDPT")
        pd = k.alloc_shadow_page(0x12, Role(2), "PD")
        pt = k.alloc_shadow_page(0x13, Role(1), "PT")
        k.link_shadow_page(root, 0, pdpt)
        k.link_shadow_page(pdpt, 1, pd)
        k.link_shadow_page(pd, 0, pt)
        k.link_shadow_page(pd, 1, pt)
        k.kvm_unsync_page(pt)
        self.assertEqual(pd.unsync_children, 2)
        k.mmu_sync_children(None, root, True)
        r = k.rec.report()
        # Walk 1: bit 0 adds PT (nr 4); bit 1 finds PT unsync again: the leaf
        # count goes to 2 but mmu_pages_add dedups it (nr stays 4).  Sync PT
        # once; clear_parents clears PD bit 0 only (PD still has 1).
        # Walk 2: PD bit 1 -> PT is neither unsync nor has children: cleared
        # in the walk; PD frame returns 0 -> PDPT clears its bit in the walk,
        # returns 0 -> PML4 clears its bit in the walk: 3 walk clears,
        # nr 3, no leaf.
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 6)
        self.assertEqual(r["pages_synced"], 1)
        self.assertEqual(r["leaves"]["sync"], 1)
        self.assertEqual(r["clears"]["sync"], {"walk": 3, "clear_parents": 1})
        hist = [0] * 17
        hist[4] = 1
        hist[3] = 1
        self.assertEqual(r["pvec_depth"]["sync"], hist)
        self.assertEqual(root.unsync_children, 0)

    def test_same_pd_under_two_pdpt_entries(self):
        # PDPT entries 1 and 2 both point to one PD with 3 unsync PTs (the
        # --sync fault alias situation, seen from a root walk).
        k = Kvm()
        root = k.alloc_shadow_page(0x10, Role(4), "PML4")
        root.root_count = 1
        pdpt = k.alloc_shadow_page(0x11, Role(3), "PDPT")
        pd = k.alloc_shadow_page(0x12, Role(2), "PD")
        k.link_shadow_page(root, 0, pdpt)
        k.link_shadow_page(pdpt, 1, pd)
        k.link_shadow_page(pdpt, 2, pd)
        pts = []
        for j in range(3):
            pt = k.alloc_shadow_page(0x20 + j, Role(1), "PT%d" % j)
            k.link_shadow_page(pd, j, pt)
            pts.append(pt)
        for pt in pts:
            k.kvm_unsync_page(pt)
        self.assertEqual(pdpt.unsync_children, 2)
        k.mmu_sync_children(None, root, True)
        r = k.rec.report()
        # Walk 1: PML4(1) PDPT(2) PD(3) PT0-2(6), PD frame returns 3; bit 2:
        # PD is not unsync, so it is added again (7) and walked again: its
        # three PTs are deduplicated, it still returns 3.  Frames: PML4,
        # PDPT, PD, PD = 4; nr 7; leaves in pvec 3.  Syncing PT2 empties
        # the PD and clear_parents clears PDPT bit 1 (PDPT keeps bit 2).
        # Walk 2: PDPT bit 2 -> PD has nothing: cleared in the walk, PDPT
        # returns 0, PML4 clears bit 0: frames 2, nr 2, 2 walk clears.
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 6)
        self.assertEqual(r["pvec_depth"]["sync"][7], 1)
        self.assertEqual(r["pvec_depth"]["sync"][2], 1)
        self.assertEqual(r["leaves"]["sync"], 3)
        self.assertEqual(r["clears"]["sync"], {"walk": 2, "clear_parents": 4})
        self.assertEqual(r["pages_synced"], 3)


class StaleBits(unittest.TestCase):

    def test_stale_bits_cleared_in_walk(self):
        # Three unsync PTs under one PD whose parent sptes are dropped (as a
        # zap of the PTs does): the PD bits stay set.  A sync then finds
        # three non-present sptes: three clears in the PD frame, PD frame
        # returns 0, PDPT and PML4 clear their bits in their frames.
        t = Tree([3])
        t.unsync_all()
        inv = []
        for pt in t.pts:
            t.kvm.kvm_mmu_prepare_zap_page(pt, inv)
        t.kvm.kvm_mmu_commit_zap_page(inv)
        self.assertEqual(t.pds[0].unsync_children, 3)
        t.sync()
        r = rep(t.rec)
        self.assertEqual(r["pages_synced"], 3)       # from the zaps
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 3)
        self.assertEqual(r["clears"]["sync"], {"walk": 5, "clear_parents": 0})
        self.assertEqual(r["leaves"]["sync"], 0)
        self.assertEqual(r["pvec_depth"]["sync"][3], 1)
        self.assertEqual(r["syncs"][0]["clears_walk"], 5)

    def test_synced_child_with_stale_bit(self):
        # A PT that is no longer unsync but still has its bit set in the PD
        # (sync through another path) is cleared in the walk.
        t = Tree([2])
        t.unsync_all()
        t.kvm.kvm_unlink_unsync_page(t.pts[0])   # synced behind the PD's back
        t.sync()
        r = rep(t.rec)
        # Walk: PT0 bit -> neither unsync nor children -> walk clear; PT1
        # added (nr 4).  clear_parents for PT1: PD (->0), PDPT, PML4.
        self.assertEqual(r["clears"]["sync"], {"walk": 1, "clear_parents": 3})
        self.assertEqual(r["pvec_depth"]["sync"][4], 1)
        self.assertEqual(r["pages_synced"], 2)


class ZapWalks(unittest.TestCase):

    def test_zap_of_pd_with_20_unsync_children(self):
        # mmu_zap_unsync_children(PD): pvec [PD] + leaves; the 15th leaf
        # makes nr 16 -> -ENOSPC; second walk: PD + 5 -> nr 6, done.
        # Each leaf: kvm_mmu_prepare_zap_page -> kvm_unlink_unsync_page
        # (kvm_mmu_sync_page fires) and clear_parents clears the PD bit
        # only (the PD is the walk's root: sentinel above it).
        t = Tree([20])
        t.unsync_all()
        inv = []
        t.kvm.kvm_mmu_prepare_zap_page(t.pds[0], inv)
        t.kvm.kvm_mmu_commit_zap_page(inv)
        r = rep(t.rec)
        self.assertEqual(r["sync_calls"], {"ok": 0, "eintr": 0})
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 1})
        self.assertEqual(r["frames"]["zap"], 2)
        self.assertEqual(r["enospc_frames"]["zap"], 1)
        self.assertEqual(r["restarts"], 0)          # restarts only count in a sync
        self.assertEqual(r["leaves"]["zap"], 20)
        self.assertEqual(r["clears"]["zap"], {"walk": 0, "clear_parents": 20})
        self.assertEqual(r["pvec_depth"]["zap"][16], 1)
        self.assertEqual(r["pvec_depth"]["zap"][6], 1)
        self.assertEqual(r["pages_synced"], 20)
        # The PDPT keeps a stale bit for the zapped PD.
        self.assertEqual(t.pdpt.unsync_children, 1)
        self.assertNotIn(1, t.pdpt.spt)

    def test_zap_all_newest_first(self):
        # zap_all visits newest first: the PTs (newest) are zapped one by one
        # without a walk (level 1), then PD, PDPT, PML4 each walk once over
        # stale bits: 3 zap walks of one frame, nr 1 each, clears 5+1+1.
        t = Tree([5])
        t.unsync_all()
        t.kvm.kvm_mmu_zap_all()
        r = rep(t.rec)
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["frames"]["zap"], 3)
        self.assertEqual(r["clears"]["zap"], {"walk": 7, "clear_parents": 0})
        self.assertEqual(r["pvec_depth"]["zap"][1], 3)
        self.assertEqual(r["leaves"]["zap"], 0)
        self.assertEqual(r["pages_synced"], 5)


class Budget(unittest.TestCase):

    def test_zap_oldest_skips_roots_and_stops_at_quota(self):
        # active list, oldest first: PML4 (root), PDPT, PD0, PT0.0, PT0.1,
        # PD1, PT1.0 (Tree([2, 1]) creates them in that order).  Nothing
        # unsync.  zap_oldest(3): skip PML4, zap PDPT (1), PD0 (2), PT0.0
        # (3) -> stop.  No walk (no unsync_children anywhere).
        t = Tree([2, 1])
        k = t.kvm
        self.assertEqual(k.n_used_mmu_pages, 7)
        total = k.kvm_mmu_zap_oldest_mmu_pages(3)
        self.assertEqual(total, 3)
        self.assertEqual([sp.name for sp in k.active_mmu_pages],
                         ["PT1.0", "PD1", "PT0.1", "PML4"])
        self.assertEqual(k.n_used_mmu_pages, 4)
        self.assertEqual(t.rec.frames, {"sync": 0, "zap": 0})

    def test_zap_oldest_counts_unsync_children(self):
        # Same tree, all 3 PTs unsync.  zap_oldest(2): PDPT first; its zap
        # walk zaps the 3 unsync PTs (nr_zapped 3 + itself = 4 >= 2): stop
        # after one page.  Walk from the level-3 PDPT: [PDPT, PD0, 2 PTs,
        # PD1, 1 PT] = 6, one zap walk, 3 frames; 3 kvm_mmu_sync_page in
        # zap context, clear_parents: PT0.0 (PD0 bit), PT0.1 (PD0 bit, PD0
        # empty -> PDPT bit 1), PT1.0 (PD1 bit -> PDPT bit 2): 5 clears.
        t = Tree([2, 1])
        t.unsync_all()
        total = t.kvm.kvm_mmu_zap_oldest_mmu_pages(2)
        self.assertEqual(total, 4)
        r = rep(t.rec)
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 0})
        self.assertEqual(r["frames"]["zap"], 3)
        self.assertEqual(r["pvec_depth"]["zap"][6], 1)
        self.assertEqual(r["clears"]["zap"], {"walk": 0, "clear_parents": 5})
        self.assertEqual(r["pages_synced"], 3)
        self.assertEqual(t.rec.kctx(), "other")
        self.assertEqual(t.rec.k["tp_sync_page_by_context"], {"zap": 3})

    def test_make_available_threshold(self):
        # 64-page budget: zap only when fewer than 5 pages are left, then
        # 25 - avail pages.
        t = Tree([57])                       # PML4 + PDPT + PD + 57 = 60
        k = t.kvm
        k.set_memslot_pages(1536)            # 6 MiB -> max(30, 64) = 64
        self.assertEqual(k.n_max_mmu_pages, 64)
        self.assertEqual(k.kvm_mmu_available_pages(), 4)
        k.make_mmu_pages_available()         # zap 21: PDPT, PD, 19 PTs
        self.assertEqual(k.n_used_mmu_pages, 60 - 21)
        self.assertEqual(k.zap_oldest_calls, 1)
        k.make_mmu_pages_available()         # 25 left: nothing
        self.assertEqual(k.zap_oldest_calls, 1)

    def test_first_eviction_of_fault_d4_r5(self):
        # --sync fault --tables 50 --dirs 4: prime makes PML4 (load),
        # PDPT0, PD_id, direct(0) (first instruction), 4 PD_t, 50 PT = 58.
        # Round 0's first PT write adds direct(0x400) (59) and unsyncs the
        # 50 tables.  The PDPT0 alias write faults (not present) with 5
        # pages left: no zap, direct(0x200) added (60, 4 left).  The alias
        # read then zaps the oldest non-root page, PDPT0: its zap walk
        # takes all 50 unsync tables (51 >= 21 zapped: stop), dir 0's first
        # (gfns 0x400, 0x404, ...).
        r = kvm_shapes.Run(kvm_shapes.make_shape(tables=50, dirs=4, rounds=5,
                                                 sync="fault"))
        r.run()
        ev = r.rec.events
        i = ev.index(("prepare_zap_page", 0x201, 3, False, "sync"))
        self.assertEqual(ev[i - 1], ("get_page", 0x200, 1, True, "new"))
        news = [e for e in ev[:i] if e[0] == "get_page" and e[4] == "new"]
        self.assertEqual(len(news), 60)
        self.assertEqual([e[1] for e in ev[i + 1:i + 14:1] if e[0] == "prepare_zap_page"][:3],
                         [0x400, 0x404, 0x408])
        zapped = [e for e in ev[i:] if e[0] == "prepare_zap_page"]
        self.assertTrue(all(e[4] == "unsync" for e in zapped[1:51]))


class Eintr(unittest.TestCase):

    def test_cannot_yield_returns_eintr_after_one_batch(self):
        t = Tree([20])
        t.unsync_all()
        t.kvm.need_resched = lambda: True
        self.assertEqual(t.sync(can_yield=False), -shadow.EINTR)
        r = rep(t.rec)
        # First batch only: 13 leaves (nr 16), then -EINTR and a
        # KVM_REQ_MMU_SYNC request.
        self.assertEqual(r["sync_calls"], {"ok": 0, "eintr": 1})
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 0, "false": 1})
        self.assertEqual(r["pages_synced"], 13)
        self.assertTrue(t.kvm.request_mmu_sync)

    def test_can_yield_keeps_going(self):
        t = Tree([20])
        t.unsync_all()
        t.kvm.need_resched = lambda: True
        self.assertEqual(t.sync(can_yield=True), 0)
        self.assertEqual(t.rec.pages_synced, 20)


# ----------------------------------------------------------------------
# layer b: workload shapes
# ----------------------------------------------------------------------

def shape_report(**kw):
    return kvm_shapes.predict(kvm_shapes.make_shape(**kw)).report()


class Shapes(unittest.TestCase):

    def test_kernel_md_data_point(self):
        # 4level, 40 tables in one PD, 10 rounds of 'mov cr3, cr3'.
        # Per round: 40 unsync; one mmu_sync_children(PML4): walks of 13,
        # 13, 13 (-ENOSPC, 3 frames each) and 1 leaf (nr 4, 3 frames), then
        # the root is clean: 4 walks, 12 frames, 9 -ENOSPC frames, max nr 16.
        # 10 rounds: 10 syncs, 120 frames, 90 -ENOSPC frames, 400 synced.
        # Nothing is unsync at exit: no zap walk.
        r = shape_report(paging="4level", tables=40, rounds=10)
        self.assertEqual(r["sync_calls"], {"ok": 10, "eintr": 0})
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 10, "false": 0})
        self.assertEqual(r["frames"], {"sync": 120, "zap": 0})
        self.assertEqual(r["enospc_frames"], {"sync": 90, "zap": 0})
        self.assertEqual(r["walks"]["sync"], {"done": 10, "enospc": 30})
        self.assertEqual(r["restarts"], 30)
        self.assertEqual(max(s["max_nr"] for s in r["syncs"]), 16)
        self.assertEqual(r["pages_synced"], 400)
        self.assertEqual(r["pages_unsynced"], 400)
        self.assertEqual(r["leaves"], {"sync": 400, "zap": 0})
        # clear_parents: 40 per round + PD->PDPT0 and PDPT0->PML4 = 42.
        self.assertEqual(r["clears"]["sync"], {"walk": 0, "clear_parents": 420})
        self.assertEqual(r["pvec_depth"]["sync"][16], 30)
        self.assertEqual(r["pvec_depth"]["sync"][4], 10)
        for s in r["syncs"]:
            self.assertEqual(s, {"can_yield": True, "root_level": 4, "walks": 4,
                                 "restarts": 3, "frames": 12, "leaves": 40,
                                 "clears_walk": 0, "clears_parents": 42,
                                 "max_nr": 16})

    def test_4level_exit_unsync_zaps(self):
        # 8 tables, 1 round: one sync (nr 3+8 = 11).  Exit dirty: 8 more
        # unsync.  Destruction: 8 tables zapped first (8 sync_page events),
        # then PD_t[0] (8 stale bits), PDPT0 (1), PML4 (1): 3 zap walks.
        r = shape_report(tables=8, exit_unsync=True)
        self.assertEqual(r["sync_calls"]["ok"], 1)
        self.assertEqual(r["pages_unsynced"], 16)
        self.assertEqual(r["pages_synced"], 16)
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["frames"]["zap"], 3)
        self.assertEqual(r["clears"]["zap"], {"walk": 10, "clear_parents": 0})
        self.assertEqual(r["leaves"]["zap"], 0)
        self.assertEqual(r["pvec_depth"]["zap"][1], 3)
        self.assertEqual(r["pvec_depth"]["sync"][11], 1)

    def test_4level_exit_unsync_at_the_hold(self):
        # The same run stopped before destruction (kvmwalk --hold): the 8
        # exit-dirty tables still unsync, no zap walk yet.
        r = kvm_shapes.Run(kvm_shapes.make_shape(tables=8, exit_unsync=True)
                           ).run(destroy=False).report()
        self.assertEqual(r["pages_unsynced"], 16)
        self.assertEqual(r["pages_synced"], 8)
        self.assertEqual(r["walks"]["zap"], {"done": 0, "enospc": 0})
        self.assertEqual(r["frames"]["zap"], 0)

    def test_pae_syncs_every_root(self):
        # PAE, D=2: 3 valid PAE roots (PD_id, PD_t[0], PD_t[1]).  kvm_mmu_load
        # syncs all three (nothing to walk); each CR3 reload syncs all three;
        # only PD_t[0] and PD_t[1] walk (level-2 roots, 10 leaves each,
        # nr 11).  2 rounds: 3 + 2*3 = 9 calls, 4 walks, 4 frames.
        r = shape_report(paging="pae", tables=20, dirs=2, rounds=2)
        self.assertEqual(r["sync_calls"], {"ok": 9, "eintr": 0})
        self.assertEqual(r["walks"]["sync"], {"done": 4, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 4)
        self.assertEqual([s["root_level"] for s in r["syncs"]], [2] * 9)
        self.assertEqual([s["walks"] for s in r["syncs"]],
                         [0, 0, 0, 0, 1, 1, 0, 1, 1])
        self.assertEqual(r["pvec_depth"]["sync"][11], 4)
        # clear_parents: level-2 root is the walk root, sentinel above: 1 per leaf.
        self.assertEqual(r["clears"]["sync"]["clear_parents"], 40)
        self.assertEqual(r["pages_synced"], 40)

    def test_pae_enospc_at_15_leaves(self):
        # Level-2 root: pvec [PD] + leaves, so the 15th leaf fills it.
        # 15 tables in one dir: walk 1 -ENOSPC with 15 leaves, and the root
        # is then clean: 1 walk, 1 restart.  16 tables: 2 walks (15 + 1).
        r = shape_report(paging="pae", tables=15, rounds=1)
        s = [x for x in r["syncs"] if x["walks"]]
        self.assertEqual(s, [{"can_yield": True, "root_level": 2, "walks": 1,
                              "restarts": 1, "frames": 1, "leaves": 15,
                              "clears_walk": 0, "clears_parents": 15,
                              "max_nr": 16}])
        r = shape_report(paging="pae", tables=16, rounds=1)
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 1})
        self.assertEqual(r["pvec_depth"]["sync"][2], 1)

    def test_fault_sync_can_yield_false(self):
        # D=2, 20 tables (10 per dir), 2 rounds of --sync fault.
        # Round 0: 20 unsync; the alias fault links PD_t[0] and syncs it
        # (can_yield false, root level 2, nr 11).  Round 1: only dir 0's 10
        # tables are synced and go unsync again (dir 1 never synced).
        # Destruction: dir 1's 10 tables zapped (10 sync_page); zap walks:
        # PD_t[1] (10 stale), PDPT0 (bits 1, 2 and alias bit 3 set in
        # round 1 through PD_t[0]'s second parent pte: 3), PML4 (1).
        r = shape_report(tables=20, dirs=2, rounds=2, sync="fault")
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 0, "false": 2})
        self.assertEqual([(s["root_level"], s["leaves"], s["max_nr"])
                          for s in r["syncs"]], [(2, 10, 11), (2, 10, 11)])
        self.assertEqual(r["pages_unsynced"], 30)
        self.assertEqual(r["pages_synced"], 30)
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["clears"]["zap"], {"walk": 14, "clear_parents": 0})

    def test_4level_flood_zap(self):
        # 20 tables, D=1, 1 round: sync walks 13 (-ENOSPC) + 7 (nr 10).
        # Flood: 20 unsync, then the 3rd emulated write zaps PD_t[0]: zap
        # walks PD+15 (nr 16, -ENOSPC) and PD+5 (nr 6): 20 leaves, 20
        # clear_parents clears, 20 sync_page.  The CR3 sync then finds
        # PML4 -> PDPT0 -> stale bit 1: one walk, 2 frames, 2 walk clears,
        # nr 2, no leaf.  Nothing left for destruction to walk.
        r = shape_report(tables=20, rounds=1, flood_zap=True)
        self.assertEqual(r["sync_calls"]["ok"], 2)
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 1})
        self.assertEqual(r["frames"]["zap"], 2)
        self.assertEqual(r["enospc_frames"]["zap"], 1)
        self.assertEqual(r["leaves"]["zap"], 20)
        self.assertEqual(r["clears"]["zap"], {"walk": 0, "clear_parents": 20})
        self.assertEqual(r["syncs"][1], {"can_yield": True, "root_level": 4,
                                         "walks": 1, "restarts": 0, "frames": 2,
                                         "leaves": 0, "clears_walk": 2,
                                         "clears_parents": 0, "max_nr": 2})
        self.assertEqual(r["pages_synced"], 40)
        self.assertEqual(r["pages_unsynced"], 40)

    def test_pae_flood_zap_reloads_roots(self):
        # PAE, D=2, 20 tables, 1 round, flood: PD_t[0] is a PAE root; its
        # zap frees the roots at the next entry and kvm_mmu_load syncs all
        # three new/old roots: calls = 3 (load) + 3 (round) + 3 (reload)
        # + 3 (guest CR3) = 12; the reload sync walks PD_t[1] (10 leaves).
        r = shape_report(paging="pae", tables=20, dirs=2, rounds=1, flood_zap=True)
        self.assertEqual(r["sync_calls"]["ok"], 12)
        self.assertEqual([s["leaves"] for s in r["syncs"]],
                         [0, 0, 0, 0, 10, 10, 0, 0, 10, 0, 0, 0])
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 0})
        self.assertEqual(r["pages_synced"], 20 + 10 + 10)

    def test_pae_exit_unsync_no_rounds(self):
        # PAE D=3, 9 tables, 0 rounds: load syncs 4 roots.  Exit dirty: 9
        # unsync; destruction zaps them (9 sync_page) then each PD_t root
        # walks its 3 stale bits.
        r = shape_report(paging="pae", tables=9, dirs=3, rounds=0, exit_unsync=True)
        self.assertEqual(r["sync_calls"]["ok"], 4)
        self.assertEqual(r["frames"]["sync"], 0)
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["clears"]["zap"]["walk"], 9)
        self.assertEqual(r["pages_synced"], 9)

    def test_fault_sync_eintr_replay(self):
        # --sync fault, 20 tables, 3 rounds, need_resched() true after the
        # first batch of the first sync (seen once on the real kernel).
        # Call 0: mmu_sync_children(PD_t[0], false): PD + 15 leaves -> nr
        # 16 -ENOSPC, 15 synced, then -EINTR, KVM_REQ_MMU_SYNC and
        # RET_PF_RETRY (not linked).  Next entry: kvm_mmu_sync_roots finds
        # the root unsync: call 1 = mmu_sync_children(PML4, true), one walk
        # PML4+PDPT0+PD_t[0]+5 leaves = nr 8; clear_parents 5 + PD_t[0]'s
        # bit in PDPT0 + PDPT0's bit in PML4 = 7.  The retried fault finds
        # PD_t[0] clean and links it without a sync.  Rounds 1, 2: 15 + 5.
        r = kvm_shapes.predict(kvm_shapes.make_shape(tables=20, rounds=3, sync="fault"),
                               resched_points=[(0, 0)]).report()
        self.assertEqual(r["sync_calls"], {"ok": 3, "eintr": 1})
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 1, "false": 3})
        self.assertEqual([(s["can_yield"], s["root_level"], s["walks"], s["max_nr"])
                          for s in r["syncs"]],
                         [(False, 2, 1, 16), (True, 4, 1, 8),
                          (False, 2, 2, 16), (False, 2, 2, 16)])
        self.assertEqual(r["syncs"][1]["clears_parents"], 7)
        self.assertEqual(r["pages_synced"], 60)

    def test_cli_key_set(self):
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "predict.py"), "--paging",
             "4level", "--tables", "40", "--rounds", "10"],
            check=True, stdout=subprocess.PIPE).stdout
        d = json.loads(out)
        self.assertEqual(set(d), {
            "sync_calls", "sync_calls_by_can_yield", "walks", "frames",
            "enospc_frames", "restarts", "leaves", "clears", "pvec_depth",
            "pages_synced", "pages_unsynced", "syncs"})
        self.assertEqual(set(d["walks"]), {"sync", "zap"})
        self.assertEqual(len(d["pvec_depth"]["sync"]), 17)
        self.assertEqual(set(d["syncs"][0]), {
            "can_yield", "root_level", "walks", "restarts", "frames", "leaves",
            "clears_walk", "clears_parents", "max_nr"})


if __name__ == "__main__":
    unittest.main()
