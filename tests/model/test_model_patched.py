"""Unit tests of the PATCHED walk model (shadow_patched.py), with
python3 -m unittest from tests/model (or with tests/model on sys.path).

Every expected number is derived by hand from the patched mmu.c (6.1 with
tests/kernel/patches applied), with the derivation next to it; none was
copied from the model's output.  The rules the derivations use:

  R1 The vector holds only unsync pages (no root, no parents): 16 fit.
  R2 Before adding an unsync page the walk checks for a full vector:
     -ENOSPC only when a 17th page is met.  The -ENOSPC propagates
     through every frame above, and those frames keep the bits on the
     path (the bit of the child being walked is not cleared).
  R3 A frame clears a child's bit when the spte is not present, the
     child is clean (stale bit), its subtree returned 0, or the child was
     fully walked (added, or its subtree returned > 0) -- except that a
     frame whose page has root_count != 0 keeps the bit of a fully
     walked child.
  R4 mmu_sync_children / mmu_zap_unsync_children loop while the walk
     returns non-zero; the walk returns 0 only when the vector is empty.
     So a sync from a root that found something ends with one more walk:
     one frame (the root), clears the kept bits, returns 0, nr 0.
  R5 mmu_unsync_walk_and_clear returns 0 without a frame when the root's
     unsync_children is 0.

Notation: "walk = frames/return/nr".  Figures for the stock kernel, for
contrast, are in test_model.py.
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
import predict  # noqa: E402
from shadow import Role  # noqa: E402
from shadow_patched import KvmPatched, PageVec  # noqa: E402


def hist(**counts):
    """pvec_depth list from nr=count pairs, e.g. hist(n16=2, n0=1)."""
    h = [0] * 17
    for k, v in counts.items():
        h[int(k[1:])] = v
    return h


class Tree:
    """A shadow tree on the patched model: a level-4 root (root_count 1)
    -> PDPT -> PD[p] (at PDPT index 1 + p) -> PT leaves; or, with
    root_level=2, one level-2 root PD (a PAE root, root_count 1)."""

    def __init__(self, leaves_per_pd, root_level=4):
        self.kvm = KvmPatched()
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
        else:
            self.root = self.pdpt = None
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

    def sync(self, can_yield=True, root=None):
        return self.kvm.mmu_sync_children(None, root or self.root, can_yield)

    def report(self):
        return self.rec.report()


class PageVector(unittest.TestCase):

    def test_check_then_add(self):
        # mmu_pages_add no longer reports fullness; adding to a full vector
        # is a WARN_ON_ONCE (the model raises); an unsync page already in
        # the vector is not added twice.
        k = KvmPatched()
        pvec = PageVec()
        pts = [k.alloc_shadow_page(0x400 + i, Role(1)) for i in range(17)]
        for pt in pts:
            pt.unsync = True
        for pt in pts[:16]:
            self.assertFalse(k.mmu_is_page_vec_full(pvec))
            k.mmu_pages_add(pvec, pt)
        self.assertTrue(k.mmu_is_page_vec_full(pvec))
        k.mmu_pages_add(pvec, pts[3])           # duplicate: dropped quietly
        self.assertEqual(pvec.nr, 16)
        with self.assertRaises(AssertionError):
            k.mmu_pages_add(pvec, pts[16])

    def test_clear_parents_is_gone(self):
        with self.assertRaises(AssertionError):
            KvmPatched().mmu_pages_clear_parents(None)


class WalkBoundaries(unittest.TestCase):
    """4-level root, one PD, L unsync leaves, one mmu_sync_children.
    Bits set: L in the PD, 1 in the PDPT, 1 in the PML4 (the first
    leaf's mark_unsync climbs; the others stop at the PD)."""

    def check_one(self, L, walks, frames, enospc_frames, restarts, depth,
                  syncs_max_nr):
        t = Tree([L])
        t.unsync_all()
        self.assertEqual(t.kvm.bits_set, L + 2)
        self.assertEqual(t.sync(), 0)
        r = t.report()
        self.assertEqual(r["walks"]["sync"], walks)
        self.assertEqual(r["frames"]["sync"], frames)
        self.assertEqual(r["enospc_frames"]["sync"], enospc_frames)
        self.assertEqual(r["restarts"], restarts)
        self.assertEqual(r["pvec_depth"]["sync"], depth)
        self.assertEqual(r["leaves"]["sync"], L)
        self.assertEqual(r["pages_synced"], L)
        # Every bit cleared once, in the walk; nothing left set.
        self.assertEqual(r["clears"]["sync"], {"walk": L + 2, "clear_parents": 0})
        self.assertEqual(t.kvm.bits_still_set(), 0)
        self.assertEqual(len(r["syncs"]), 1)
        s = r["syncs"][0]
        self.assertEqual((s["walks"], s["restarts"], s["frames"], s["leaves"],
                          s["clears_walk"], s["clears_parents"], s["max_nr"]),
                         (walks["done"] + walks["enospc"], restarts, frames, L,
                          L + 2, 0, syncs_max_nr))
        return t, r

    def test_12_leaves(self):
        # Walk 1 = 3/12/12: the PD frame adds 12 and clears its 12 bits,
        # returns 12; the PDPT frame clears bit 1 (fully walked, PDPT has
        # no root_count), returns 12; the PML4 frame keeps bit 0 (R3).
        # Walk 2 = 1/0/0: PML4 bit 0 -> PDPT is clean -> cleared (R4).
        t, r = self.check_one(12, {"done": 2, "enospc": 0}, 4, 0, 0,
                              hist(n12=1, n0=1), 12)
        self.assertEqual(t.rec.k["walk_leaves"], {"sync": 12})

    def test_13_leaves_no_enospc(self):
        # Stock: the 13th add made nr 16 and the walk returned -ENOSPC.
        # Patched: 13 pages in 16 slots, walk 1 = 3/13/13, no -ENOSPC;
        # walk 2 = 1/0/0 clears the root's kept bit.  One walk collects,
        # the second only clears.
        self.check_one(13, {"done": 2, "enospc": 0}, 4, 0, 0,
                       hist(n13=1, n0=1), 13)

    def test_16_leaves_fill_exactly(self):
        # The 16th page takes the last slot; nothing is met after it, so
        # no -ENOSPC (R2): walk 1 = 3/16/16, walk 2 = 1/0/0.
        self.check_one(16, {"done": 2, "enospc": 0}, 4, 0, 0,
                       hist(n16=1, n0=1), 16)

    def test_17_leaves(self):
        # Walk 1: 16 added (PD bits 0..15 cleared), bit 16 finds the vector
        # full: -ENOSPC from PD, PDPT, PML4 (3/-ENOSPC/16), PDPT bit 1 and
        # PML4 bit 0 kept.  Walk 2 = 3/1/1: PD's last page, PD bit 16 and
        # PDPT bit 1 cleared, PML4 keeps bit 0.  Walk 3 = 1/0/0.
        self.check_one(17, {"done": 2, "enospc": 1}, 7, 3, 1,
                       hist(n16=1, n1=1, n0=1), 16)

    def test_14_leaves(self):
        # Stock: 2 walks (13 + 1).  Patched: all 14 in walk 1 (3/14/14),
        # walk 2 = 1/0/0.
        self.check_one(14, {"done": 2, "enospc": 0}, 4, 0, 0,
                       hist(n14=1, n0=1), 14)

    def test_two_pds_20_and_20(self):
        # Walk 1: PD0 adds 16, bit 16 -> -ENOSPC: 3 frames, all -ENOSPC,
        #   nr 16 (PD0 keeps 4 bits, PDPT bit 1, PML4 bit 0).
        # Walk 2: PD0 adds its last 4 (nr 4, returns 4, PDPT clears bit 1);
        #   PD1 adds 12 (nr 16), its 13th -> -ENOSPC: frames PML4, PDPT,
        #   PD0, PD1 = 4, -ENOSPC frames PD1, PDPT, PML4 = 3.
        # Walk 3: PD1's last 8: 3 frames, nr 8, PDPT clears bit 2.
        # Walk 4: 1/0/0.  Frames 3+4+3+1 = 11, -ENOSPC frames 6.
        # Clears: 40 PD bits + PDPT bits 1, 2 + PML4 bit 0 = 43 = bits set.
        t = Tree([20, 20])
        t.unsync_all()
        t.sync()
        r = t.report()
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 2})
        self.assertEqual(r["frames"]["sync"], 11)
        self.assertEqual(r["enospc_frames"]["sync"], 6)
        self.assertEqual(r["restarts"], 2)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=2, n8=1, n0=1))
        self.assertEqual(r["leaves"]["sync"], 40)
        self.assertEqual(r["clears"]["sync"], {"walk": 43, "clear_parents": 0})
        self.assertEqual(t.kvm.bits_set, 43)


class Roots(unittest.TestCase):
    """R3: where root_count decides."""

    def test_level2_root_keeps_bits(self):
        # A PAE root PD with 15 unsync PTs.  Walk 1 = 1/15/15: the PTs are
        # added but the root keeps all 15 bits.  Walk 2 = 1/0/0: 15 clean
        # children, 15 bits cleared.  Stock: one walk (nr 16, -ENOSPC).
        t = Tree([15], root_level=2)
        t.unsync_all()
        t.sync()
        r = t.report()
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 2)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n15=1, n0=1))
        self.assertEqual(r["syncs"][0]["clears_walk"], 15)
        # The 15 clears all happen in walk 2 (frame returning 0).
        self.assertEqual(t.rec.k["zero_frame_clears"], {"sync": 15})

    def test_nonroot_sync_from_fetch(self):
        # FNAME(fetch) syncs a level-2 page without root_count (can_yield
        # false), 20 unsync PTs below it.  Walk 1 = 1/-ENOSPC/16 (16 bits
        # cleared); walk 2 = 1/4/4 (4 cleared, PD now 0); the loop's next
        # call returns 0 without a frame (R5): no extra walk.  The PDPT and
        # PML4 bits above the walk root stay set (stale).
        t = Tree([20])
        t.unsync_all()
        self.assertEqual(t.sync(can_yield=False, root=t.pds[0]), 0)
        r = t.report()
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 0, "false": 1})
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 1})
        self.assertEqual(r["frames"]["sync"], 2)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=1, n4=1))
        self.assertEqual(r["clears"]["sync"]["walk"], 20)
        self.assertEqual((t.pdpt.unsync_children, t.root.unsync_children), (1, 1))

    def test_stale_bits_need_no_extra_walk(self):
        # Three unsync PTs zapped (parent sptes dropped, PD bits stale).  A
        # root sync: PD clears 3 not-present bits, returns 0; PDPT and PML4
        # clear theirs because the subtree returned 0 (not "fully walked":
        # the root keeps nothing).  One walk = 3/0/0.
        t = Tree([3])
        t.unsync_all()
        inv = []
        for pt in t.pts:
            t.kvm.kvm_mmu_prepare_zap_page(pt, inv)
        t.kvm.kvm_mmu_commit_zap_page(inv)
        t.sync()
        r = t.report()
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 3)
        self.assertEqual(r["clears"]["sync"], {"walk": 5, "clear_parents": 0})
        self.assertEqual(r["pvec_depth"]["sync"], hist(n0=1))


class Dedup(unittest.TestCase):

    def build(self, n_pts, extra_links):
        """PML4 -> PDPT -> PD with PTs at 0..n-1; extra_links: (index, pt#)
        more sptes of the PD pointing at an existing PT."""
        k = KvmPatched()
        root = k.alloc_shadow_page(0x10, Role(4), "PML4")
        root.root_count = 1
        pdpt = k.alloc_shadow_page(0x11, Role(3), "PDPT")
        pd = k.alloc_shadow_page(0x12, Role(2), "PD")
        k.link_shadow_page(root, 0, pdpt)
        k.link_shadow_page(pdpt, 1, pd)
        pts = []
        for j in range(n_pts):
            pt = k.alloc_shadow_page(0x400 + j, Role(1), "PT%d" % j)
            k.link_shadow_page(pd, j, pt)
            pts.append(pt)
        for idx, j in extra_links:
            k.link_shadow_page(pd, idx, pts[j])
        for pt in pts:
            k.kvm_unsync_page(pt)
        return k, root, pd

    def test_leaf_under_two_sptes(self):
        # PD sptes 0 and 1 -> one PT: bits PD{0,1}, PDPT{1}, PML4{0}.
        # Walk 1: bit 0 adds PT (nr 1), clears; bit 1 finds PT still unsync,
        # vector not full, add dedups (nr 1), counts 2, clears.  PD returns
        # 2, PDPT clears bit 1, PML4 keeps bit 0: 3/2/1.  PT synced once.
        # Walk 2 = 1/0/0.  Clears 2 + 1 + 1 = 4; the top-level return
        # counts the page twice (walk_leaves 2), the vector once (leaves 1).
        k, root, pd = self.build(1, [(1, 0)])
        k.mmu_sync_children(None, root, True)
        r = k.rec.report()
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 4)
        self.assertEqual(r["pages_synced"], 1)
        self.assertEqual(r["leaves"]["sync"], 1)
        self.assertEqual(k.rec.k["walk_leaves"], {"sync": 2})
        self.assertEqual(r["pvec_depth"]["sync"], hist(n1=1, n0=1))
        self.assertEqual(r["clears"]["sync"], {"walk": 4, "clear_parents": 0})
        self.assertEqual(k.bits_set, 4)

    def test_duplicate_met_with_full_vector(self):
        # 16 PTs at PD 0..15, PD spte 16 -> PT0 again.  Walk 1 adds PT0..15
        # (nr 16, bits 0..15 cleared); bit 16: PT0 is unsync, the vector is
        # full -> -ENOSPC (patch 1: check before add, even for a page that
        # is already there): 3/-ENOSPC/16.  Walk 2: PD bit 16 -> PT0 clean
        # -> cleared, PD returns 0, PDPT and PML4 clear theirs: 3/0/0.
        # (Stock stops earlier: its 13th add fills [root, PDPT, PD] + 13.)
        # Bits: 17 + 1 + 1 = 19.
        k, root, pd = self.build(16, [(16, 0)])
        self.assertEqual(pd.unsync_children, 17)
        k.mmu_sync_children(None, root, True)
        r = k.rec.report()
        self.assertEqual(r["walks"]["sync"], {"done": 1, "enospc": 1})
        self.assertEqual(r["frames"]["sync"], 6)
        self.assertEqual(r["enospc_frames"]["sync"], 3)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=1, n0=1))
        self.assertEqual(r["pages_synced"], 16)
        self.assertEqual(r["clears"]["sync"], {"walk": 19, "clear_parents": 0})

    def test_pd_under_two_pdpt_entries(self):
        # PDPT 1 and 2 -> one PD with 3 unsync PTs (the --sync fault alias
        # seen from a root walk).  Bits: PD 3, PDPT {1, 2}, PML4 {0} = 6.
        # Walk 1: PDPT bit 1 -> PD adds 3, clears 3, returns 3 -> PDPT
        # clears bit 1; PDPT bit 2 -> PD is clean -> cleared (stock walked
        # it a second time).  PML4 keeps bit 0: 3/3/3.  Walk 2 = 1/0/0.
        k = KvmPatched()
        root = k.alloc_shadow_page(0x10, Role(4), "PML4")
        root.root_count = 1
        pdpt = k.alloc_shadow_page(0x11, Role(3), "PDPT")
        pd = k.alloc_shadow_page(0x12, Role(2), "PD")
        k.link_shadow_page(root, 0, pdpt)
        k.link_shadow_page(pdpt, 1, pd)
        k.link_shadow_page(pdpt, 2, pd)
        for j in range(3):
            pt = k.alloc_shadow_page(0x20 + j, Role(1))
            k.link_shadow_page(pd, j, pt)
            k.kvm_unsync_page(pt)
        k.mmu_sync_children(None, root, True)
        r = k.rec.report()
        self.assertEqual(r["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(r["frames"]["sync"], 4)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n3=1, n0=1))
        self.assertEqual(r["clears"]["sync"], {"walk": 6, "clear_parents": 0})
        self.assertEqual(k.bits_set, 6)


class ZapWalks(unittest.TestCase):

    def test_zap_nonroot_pd_with_20(self):
        # mmu_zap_unsync_children(PD), PD not a root: walk 1 = 1/-ENOSPC/16
        # (16 bits cleared), 16 zapped; walk 2 = 1/4/4, 4 zapped; the next
        # call sees unsync_children 0: no frame.  Restarts count only in a
        # sync.  Stock: [PD] + 15 then PD + 5.
        t = Tree([20])
        t.unsync_all()
        inv = []
        t.kvm.kvm_mmu_prepare_zap_page(t.pds[0], inv)
        t.kvm.kvm_mmu_commit_zap_page(inv)
        r = t.report()
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 1})
        self.assertEqual(r["frames"]["zap"], 2)
        self.assertEqual(r["enospc_frames"]["zap"], 1)
        self.assertEqual(r["restarts"], 0)
        self.assertEqual(r["leaves"]["zap"], 20)
        self.assertEqual(r["pvec_depth"]["zap"], hist(n16=1, n4=1))
        self.assertEqual(r["clears"]["zap"], {"walk": 20, "clear_parents": 0})
        self.assertEqual(r["pages_synced"], 20)

    def test_zap_root_pd_with_20(self):
        # The PD is a root (a PAE root zapped by write flooding): walk 1 =
        # 1/-ENOSPC/16, bits kept; the 16 PTs are zapped and their sptes
        # dropped.  Walk 2: bits 0..15 not present -> cleared; 16..19 added,
        # kept: 1/4/4.  Walk 3: bits 16..19 not present -> cleared: 1/0/0.
        t = Tree([20], root_level=2)
        t.unsync_all()
        inv = []
        t.kvm.kvm_mmu_prepare_zap_page(t.root, inv)
        r = t.report()
        self.assertEqual(r["walks"]["zap"], {"done": 2, "enospc": 1})
        self.assertEqual(r["frames"]["zap"], 3)
        self.assertEqual(r["pvec_depth"]["zap"], hist(n16=1, n4=1, n0=1))
        self.assertEqual(r["clears"]["zap"]["walk"], 20)
        self.assertEqual(r["leaves"]["zap"], 20)

    def test_zap_all_newest_first(self):
        # As in stock: PT4..PT0 zapped alone (no walk), then PD (5 stale
        # bits), PDPT (1), PML4 (1, stale: cleared even in a root): 3 zap
        # walks of one frame, but nr 0 (stock: 1, the root).
        t = Tree([5])
        t.unsync_all()
        t.kvm.kvm_mmu_zap_all()
        r = t.report()
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["frames"]["zap"], 3)
        self.assertEqual(r["clears"]["zap"], {"walk": 7, "clear_parents": 0})
        self.assertEqual(r["pvec_depth"]["zap"], hist(n0=3))
        self.assertEqual(r["pages_synced"], 5)


class Eintr(unittest.TestCase):

    def test_cannot_yield_after_first_batch(self):
        # Root sync with need_resched(): first batch 16 pages (-ENOSPC),
        # then -EINTR and KVM_REQ_MMU_SYNC.  Stock stopped at 13.
        t = Tree([20])
        t.unsync_all()
        t.kvm.need_resched = lambda: True
        self.assertEqual(t.sync(can_yield=False), -shadow.EINTR)
        r = t.report()
        self.assertEqual(r["sync_calls"], {"ok": 0, "eintr": 1})
        self.assertEqual(r["pages_synced"], 16)
        self.assertTrue(t.kvm.request_mmu_sync)

    def test_fault_eintr_replay(self):
        # --sync fault --tables 20 --rounds 3, need_resched() after call 0's
        # first batch.  Call 0: sync(PD_t[0], false): 16 pages (-ENOSPC),
        # -EINTR, RET_PF_RETRY.  Call 1: kvm_mmu_sync_roots(PML4, true):
        # walk 1 = PML4, PDPT0, PD_t[0] (4 left) -> nr 4, PDPT0 bit 1
        # cleared, PML4 keeps bit 0; walk 2 = 1/0/0.  The retried fault
        # finds PD_t[0] clean: no sync.  Rounds 1, 2: 16 (-ENOSPC) + 4.
        r = kvm_shapes.predict(kvm_shapes.make_shape(tables=20, rounds=3, sync="fault"),
                               resched_points=[(0, 0)], variant="patched").report()
        self.assertEqual(r["sync_calls"], {"ok": 3, "eintr": 1})
        self.assertEqual([(s["can_yield"], s["root_level"], s["walks"], s["max_nr"])
                          for s in r["syncs"]],
                         [(False, 2, 1, 16), (True, 4, 2, 4),
                          (False, 2, 2, 16), (False, 2, 2, 16)])
        self.assertEqual(r["syncs"][1]["clears_walk"], 4 + 1 + 1)
        self.assertEqual(r["pages_synced"], 60)


# ----------------------------------------------------------------------
# layer b: the workload shapes on the patched kernel
# ----------------------------------------------------------------------

def patched(**kw):
    return kvm_shapes.predict(kvm_shapes.make_shape(**kw), variant="patched").report()


def run_both(args):
    a = predict.parse_args(args.split())
    shape = predict.shape_from_args(a)
    out = {}
    for v in kvm_shapes.VARIANTS:
        run = kvm_shapes.Run(shape, variant=v)
        run.run()
        out[v] = run
    return out


# tests/vm/test_lab.py's shapes and the selfcheck's (tests/vm/scenarios/
# selfcheck.sh), plus budget-regime ones (kvm_shapes A14).
ALL_SHAPES = [
    "--tables 8", "--tables 12", "--tables 13", "--tables 14",
    "--tables 40 --rounds 10", "--tables 40 --dirs 4 --rounds 2",
    "--paging pae --tables 20 --dirs 3 --rounds 2",
    "--tables 20 --dirs 2 --sync fault --rounds 3",
    "--tables 20 --dirs 2 --flood-zap", "--tables 20 --dirs 2 --exit-unsync",
    "--tables 40 --dirs 4", "--paging pae --tables 20 --dirs 3",
    "--sync fault", "--sync fault --tables 20 --rounds 3",
    "--sync fault --tables 20 --dirs 2 --rounds 2", "--flood-zap --tables 20",
    "--exit-unsync --tables 20", "--exit-unsync --tables 40 --dirs 2",
    "--paging pae --tables 20 --dirs 2 --flood-zap",
    "--paging pae --tables 20 --dirs 2 --exit-unsync",
    "--tables 300 --dirs 3 --rounds 2",
    "--sync fault --tables 50 --dirs 4 --rounds 5 --flood-zap --exit-unsync",
    "--paging pae --tables 200 --dirs 3 --rounds 3 --flood-zap --exit-unsync",
]


class Shapes(unittest.TestCase):

    def test_kernel_md_data_point(self):
        # 4level, 40 tables, 10 rounds of 'mov cr3, cr3'.  Per round, one
        # mmu_sync_children(PML4): walks 3/-ENOSPC/16, 3/-ENOSPC/16, 3/8/8
        # (PDPT0 bit cleared in the last), 1/0/0 (PML4 bit): 4 walks, 10
        # frames, 6 -ENOSPC frames, 2 restarts, 42 walk clears (40 + PDPT0
        # + PML4).  10 rounds: 100 frames (stock 120), 60 -ENOSPC (90),
        # 20 restarts (30).
        r = patched(tables=40, rounds=10)
        self.assertEqual(r["sync_calls"], {"ok": 10, "eintr": 0})
        self.assertEqual(r["frames"], {"sync": 100, "zap": 0})
        self.assertEqual(r["enospc_frames"], {"sync": 60, "zap": 0})
        self.assertEqual(r["walks"]["sync"], {"done": 20, "enospc": 20})
        self.assertEqual(r["restarts"], 20)
        self.assertEqual(r["leaves"], {"sync": 400, "zap": 0})
        self.assertEqual(r["clears"]["sync"], {"walk": 420, "clear_parents": 0})
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=20, n8=10, n0=10))
        self.assertEqual(r["pages_synced"], 400)
        for s in r["syncs"]:
            self.assertEqual(s, {"can_yield": True, "root_level": 4, "walks": 4,
                                 "restarts": 2, "frames": 10, "leaves": 40,
                                 "clears_walk": 42, "clears_parents": 0,
                                 "max_nr": 16})

    def test_dirs(self):
        # 40 tables over 4 PDs (10 each), 2 rounds.  Per sync:
        #  walk 1: PD0 adds 10 (PDPT0 bit 1 cleared), PD1 adds 6 -> nr 16,
        #          PD1's 7th -> -ENOSPC: frames PML4, PDPT0, PD0, PD1 = 4,
        #          -ENOSPC frames PD1, PDPT0, PML4 = 3;
        #  walk 2: PD1 4 (bit 2 cleared), PD2 10 (bit 3), PD3 2 -> nr 16,
        #          -ENOSPC at PD3's 3rd: 5 frames, 3 -ENOSPC;
        #  walk 3: PD3's last 8: 3 frames, nr 8, PDPT0 bit 4 cleared;
        #  walk 4: 1/0/0.
        # 13 frames, 6 -ENOSPC frames, 2 restarts per sync (stock 15/9/3).
        r = patched(tables=40, dirs=4, rounds=2)
        self.assertEqual(r["frames"]["sync"], 26)
        self.assertEqual(r["enospc_frames"]["sync"], 12)
        self.assertEqual(r["restarts"], 4)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=4, n8=2, n0=2))
        # 40 PD bits + PDPT0 bits 1..4 + PML4 bit 0 = 45 per round.
        self.assertEqual(r["clears"]["sync"]["walk"], 90)

    def test_pae_roots_keep_bits(self):
        # PAE, D=3, 20 tables (7, 7, 6), 2 rounds.  Calls: 4 at load (PD_id,
        # PD_t[0..2], nothing to walk) + 4 per round = 12.  Each PD_t[d]
        # is a PAE root: walk 1 = 1/n/n keeps its bits, walk 2 = 1/0/0
        # clears them.  Stock: one walk per directory.
        r = patched(paging="pae", tables=20, dirs=3, rounds=2)
        self.assertEqual(r["sync_calls"], {"ok": 12, "eintr": 0})
        self.assertEqual([s["walks"] for s in r["syncs"]],
                         [0, 0, 0, 0, 0, 2, 2, 2, 0, 2, 2, 2])
        self.assertEqual([s["max_nr"] for s in r["syncs"]],
                         [0, 0, 0, 0, 0, 7, 7, 6, 0, 7, 7, 6])
        self.assertEqual(r["frames"]["sync"], 12)
        self.assertEqual(r["pvec_depth"]["sync"], hist(n7=4, n6=2, n0=6))
        self.assertEqual(r["clears"]["sync"], {"walk": 40, "clear_parents": 0})

    def test_fault_no_extra_walk(self):
        # --tables 20 --dirs 2 --sync fault --rounds 3: each fault syncs
        # PD_t[0] (no root_count) with 10 pages: one walk 1/10/10, bits
        # cleared in place (stock nr 11).  Destruction: dir 1's 10 tables
        # zapped alone; zap walks PD_t[1] (10 stale), PDPT0 (bits 1, 2 and
        # the alias bits 3, 4 set by rounds 1 and 2), PML4 (1): nr 0 each.
        r = patched(tables=20, dirs=2, rounds=3, sync="fault")
        self.assertEqual(r["sync_calls_by_can_yield"], {"true": 0, "false": 3})
        self.assertEqual([(s["root_level"], s["walks"], s["frames"], s["max_nr"])
                          for s in r["syncs"]], [(2, 1, 1, 10)] * 3)
        self.assertEqual(r["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(r["clears"], {"sync": {"walk": 30, "clear_parents": 0},
                                       "zap": {"walk": 15, "clear_parents": 0}})
        self.assertEqual(r["pvec_depth"]["zap"], hist(n0=3))

    def test_floodzap(self):
        # --tables 20 --dirs 2 --flood-zap (1 round).
        # Round sync: walk 1: PD0 10 + PD1 6 = 16, -ENOSPC in PD1: 4
        #   frames, 3 -ENOSPC; walk 2: PD1's 4, 3 frames; walk 3: 1/0/0.
        # Flood zap of PD_t[0] (no root_count): one zap walk 1/10/10.
        # CR3 sync: PDPT0 bit 1 not present (cleared), bit 2 -> PD1 10:
        #   3 frames nr 10; then 1/0/0.
        r = patched(tables=20, dirs=2, flood_zap=True)
        self.assertEqual([(s["walks"], s["frames"], s["restarts"], s["max_nr"])
                          for s in r["syncs"]], [(3, 8, 1, 16), (2, 4, 0, 10)])
        self.assertEqual(r["walks"]["zap"], {"done": 1, "enospc": 0})
        self.assertEqual(r["pvec_depth"]["zap"], hist(n10=1))
        self.assertEqual(r["pvec_depth"]["sync"], hist(n16=1, n4=1, n10=1, n0=2))

    def test_pae_flood_zap_of_a_root(self):
        # PAE D=2, 20 tables, flood: PD_t[0] is a PAE root: its zap walk
        # adds its 10 pages but keeps the bits; they are zapped (sptes
        # dropped) and a second zap walk clears the 10 stale bits: 2 zap
        # walks, nr 10 then 0 (stock: 1 walk, nr 11).
        r = patched(paging="pae", tables=20, dirs=2, flood_zap=True)
        self.assertEqual(r["walks"]["zap"], {"done": 2, "enospc": 0})
        self.assertEqual(r["pvec_depth"]["zap"], hist(n10=1, n0=1))
        self.assertEqual(r["clears"]["zap"], {"walk": 10, "clear_parents": 0})

    def test_exitzap(self):
        # --tables 20 --dirs 2 --exit-unsync: the round's sync as in
        # test_floodzap (3 walks); destruction zaps the 20 tables alone,
        # then PD_t[0], PD_t[1] (10 stale each), PDPT0 (2), PML4 (1).
        r = patched(tables=20, dirs=2, exit_unsync=True)
        self.assertEqual(r["walks"], {"sync": {"done": 2, "enospc": 1},
                                      "zap": {"done": 4, "enospc": 0}})
        self.assertEqual(r["frames"], {"sync": 8, "zap": 4})
        self.assertEqual(r["clears"]["zap"], {"walk": 23, "clear_parents": 0})
        self.assertEqual(r["pvec_depth"]["zap"], hist(n0=4))

    def test_bits_cleared_equal_bits_set(self):
        # The series' promise: each bit is cleared exactly once, in a walk.
        # After VM destruction nothing is left set, no clear_parents.
        for args in ALL_SHAPES:
            with self.subTest(args=args):
                run = run_both(args)["patched"]
                k, r = run.kvm, run.rec.report()
                self.assertGreater(k.bits_set, 0)
                self.assertEqual(r["clears"]["sync"]["clear_parents"], 0)
                self.assertEqual(r["clears"]["zap"]["clear_parents"], 0)
                self.assertEqual(r["clears"]["sync"]["walk"] + r["clears"]["zap"]["walk"],
                                 k.bits_set)
                self.assertEqual(k.bits_still_set(), 0)
                self.assertEqual(run.rec.hits["mmu_pages_clear_parents"], 0)

    def test_same_kvm_events_as_stock(self):
        # The series changes how the walk batches and clears, not what KVM
        # syncs or zaps: the kvmmmu tracepoint stream (get_page, unsync_page,
        # sync_page, prepare_zap_page, in order), the calls of
        # mmu_sync_children and the pages synced per call are the same.
        for args in ALL_SHAPES:
            with self.subTest(args=args):
                b = run_both(args)
                s, p = b["stock"].rec, b["patched"].rec
                self.assertEqual(p.events, s.events)
                self.assertEqual([(x.can_yield, x.root_level, x.leaves) for x in p.syncs],
                                 [(x.can_yield, x.root_level, x.leaves) for x in s.syncs])
                self.assertEqual(p.leaves, s.leaves)

    def test_top_walk_starts_empty(self):
        # Patch 7: the root is not added; every top-level frame is entered
        # with nr 0 (the selfcheck's "nr != 1 at entry" counts them all).
        # The largest nr at any frame's entry (test_dirs, walk 2): PD3 is
        # entered after PD1's 4 and PD2's 10 pages, at nr 14.
        rec = run_both("--tables 40 --dirs 4 --rounds 2")["patched"].rec
        kv = rec.kernel_view()
        self.assertEqual(kv["walk_max_nr_at_entry"], 14)
        self.assertEqual(kv["walk_top_nr_not_1"], sum(kv["walks"].values()))
        self.assertEqual(kv["clear_parents"], {})


class Cli(unittest.TestCase):

    def test_kernel_switch(self):
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "predict.py"), "--kernel", "patched",
             "--tables", "13"], check=True, stdout=subprocess.PIPE).stdout
        d = json.loads(out)
        self.assertEqual(set(d), {
            "sync_calls", "sync_calls_by_can_yield", "walks", "frames",
            "enospc_frames", "restarts", "leaves", "clears", "pvec_depth",
            "pages_synced", "pages_unsynced", "syncs"})
        self.assertEqual(d["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(d["pvec_depth"]["sync"], hist(n13=1, n0=1))

    def test_default_is_stock(self):
        self.assertEqual(predict.predict_dict(["--tables", "13"])["walks"]["sync"],
                         {"done": 0, "enospc": 1})
        self.assertEqual(predict.predict_dict(["--tables", "13"], variant="patched")
                         ["walks"]["sync"], {"done": 2, "enospc": 0})
        self.assertEqual(predict.predict_dict(["--kernel", "patched", "--tables", "13"])
                         ["walks"]["sync"], {"done": 2, "enospc": 0})

    def test_bad_variant(self):
        with self.assertRaises(ValueError):
            kvm_shapes.Run(kvm_shapes.make_shape(), variant="mainline")


if __name__ == "__main__":
    unittest.main()
