"""Unit tests of the nested model (nested.py): kvmwalk --nested on an npt=1
host, every expected figure derived by hand from 6.1's mmu.c and
svm/nested.c (derivation next to it), none copied from the model's output.

Shadow tree of L1's NPT, as for a 4level guest: root (nCR3) -> PDPT0 ->
PD_t[d] -> PT[k], so a walk through one directory holds [root, PDPT0,
PD_t, leaves...] and fills the 16-entry pvec (-ENOSPC) at the 13th leaf.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nested  # noqa: E402


def run(tables, dirs=1, rounds=1, exit_unsync=False):
    return nested.predict(nested.make_nested_shape(tables, dirs, rounds,
                                                   exit_unsync))


def depth_hist(pairs):
    h = [0] * 17
    for nr, n in pairs:
        h[nr] += n
    return h


class WorldSwitches(unittest.TestCase):
    def test_first_vmrun_and_every_vmexit_do_not_sync(self):
        # N3: the first VMRUN creates guest_mmu's root, nothing unsync
        # yet; N2: a #VMEXIT's KVM_REQ_MMU_SYNC runs on root_mmu (direct).
        # Every later VMRUN follows a dirty: one mmu_sync_children each.
        rec = run(8, rounds=4)
        self.assertEqual(rec.switches,
                         [("vmrun", 0, 0), ("vmexit", 0, 0)] +
                         [s for r in range(1, 5)
                          for s in (("vmrun", r, 1), ("vmexit", r, 0))])

    def test_sync_roots_calls(self):
        # N4: 1 (L1's load) + (R + 1) VMRUNs + 1 (first guest_mmu load)
        # + (R + 1) #VMEXITs = 2R + 4.
        for r in (0, 1, 10):
            self.assertEqual(run(8, rounds=r).kernel_view()["sync_roots"],
                             2 * r + 4, r)

    def test_no_rounds_no_walk(self):
        rec = run(13, rounds=0)
        self.assertEqual(rec.hits["mmu_sync_children"], 0)
        self.assertEqual(rec.hits["__mmu_unsync_walk"], 0)
        self.assertEqual(rec.pages_unsynced, 0)


class PvecBoundary(unittest.TestCase):
    def test_12_tables_below(self):
        # nr = 3 + 12 = 15 < 16: one walk of 3 frames, no restart; the
        # walk's clear_parents empty the root, so the next mmu_unsync_walk
        # returns 0 without a frame.  clear_parents clears 12 PT bits of
        # PD_t[0], and the last one also PD_t's bit in PDPT0 and PDPT0's
        # in the root (each reached 0 unsync children): 14 a round.
        rep = run(12, rounds=3).report()
        self.assertEqual(rep["sync_calls"], {"ok": 3, "eintr": 0})
        self.assertEqual(rep["walks"]["sync"], {"done": 3, "enospc": 0})
        self.assertEqual(rep["frames"]["sync"], 9)
        self.assertEqual(rep["restarts"], 0)
        self.assertEqual(rep["leaves"]["sync"], 36)
        self.assertEqual(rep["pvec_depth"]["sync"], depth_hist([(15, 3)]))
        self.assertEqual(rep["clears"]["sync"], {"walk": 0, "clear_parents": 42})
        self.assertEqual(rep["pages_synced"], 36)

    def test_13_tables_at(self):
        # The check: 13 tables x 10 rounds gave 10 syncs, 10
        # restarts, 30 frames, 130 synced pages.  The 13th leaf fills the
        # pvec (-ENOSPC, 3 frames); after the batch is synced the root has
        # no unsync child left: no second walk.
        rep = run(13, rounds=10).report()
        self.assertEqual(rep["sync_calls"]["ok"], 10)
        self.assertEqual(rep["restarts"], 10)
        self.assertEqual(rep["frames"]["sync"], 30)
        self.assertEqual(rep["walks"]["sync"], {"done": 0, "enospc": 10})
        self.assertEqual(rep["leaves"]["sync"], 130)
        self.assertEqual(rep["pvec_depth"]["sync"], depth_hist([(16, 10)]))
        self.assertEqual(rep["pages_synced"], 130)

    def test_14_tables_past(self):
        # First walk -ENOSPC at the 13th leaf (3 frames, nr 16); its 13
        # clear_parents leave PD_t[0] one child: a second walk, [root,
        # PDPT0, PD_t, PT13] = nr 4, 3 frames, done.
        rep = run(14, rounds=3).report()
        self.assertEqual(rep["walks"]["sync"], {"done": 3, "enospc": 3})
        self.assertEqual(rep["frames"]["sync"], 18)
        self.assertEqual(rep["restarts"], 3)
        self.assertEqual(rep["pvec_depth"]["sync"], depth_hist([(16, 3), (4, 3)]))
        self.assertEqual(rep["leaves"]["sync"], 42)
        self.assertEqual(rep["pages_synced"], 42)


class Directories(unittest.TestCase):
    def test_three_directories(self):
        # 40 tables over 3 directories: 14, 13, 13.  One walk visits the
        # directories in index order: root, PDPT0, PD_t[0] + 13 leaves
        # fills the pvec (-ENOSPC); then [root, PDPT0, PD_t[0], 1 leaf,
        # PD_t[1], 11 leaves] = 16 again; then [root, PDPT0, PD_t[1], 2
        # leaves, PD_t[2], 10 leaves] = 16; then [root, PDPT0, PD_t[2], 3
        # leaves] = 6.  4 walks, 3 restarts, 40 leaves per round.
        rep = run(40, dirs=3, rounds=2).report()
        self.assertEqual(rep["walks"]["sync"], {"done": 2, "enospc": 6})
        self.assertEqual(rep["leaves"]["sync"], 80)
        self.assertEqual(rep["pvec_depth"]["sync"], depth_hist([(16, 6), (6, 2)]))
        self.assertEqual(rep["pages_synced"], 80)


class ExitUnsync(unittest.TestCase):
    def test_destruction_zaps_the_unsync_tables(self):
        # After round 1, L1 dirties all 20 tables and stops.  zap_all,
        # newest first: PT[19..0] (20 kvm_mmu_sync_page outside any walk),
        # then PD_t[0] with 20 stale bits (one zap frame, nr 1, clears 20),
        # PDPT0 and the root with one stale bit each (one frame each).
        rep = run(20, rounds=1, exit_unsync=True).report()
        self.assertEqual(rep["pages_unsynced"], 40)
        self.assertEqual(rep["pages_synced"], 40)
        self.assertEqual(rep["walks"]["zap"], {"done": 3, "enospc": 0})
        self.assertEqual(rep["frames"]["zap"], 3)
        self.assertEqual(rep["leaves"]["zap"], 0)
        self.assertEqual(rep["pvec_depth"]["zap"], depth_hist([(1, 3)]))
        self.assertEqual(rep["clears"]["zap"], {"walk": 22, "clear_parents": 0})


class GuestLevels(unittest.TestCase):
    def test_npt_host_files_everything_under_l2(self):
        # With npt=1 the shadow MMU only shadows L1's NPT: every shadow
        # page has role.guest_mode = 1 (kvm_init_shadow_npt_mmu), so all
        # figures belong to L2 and L1's are zero.
        rec = run(14, rounds=3)
        split = nested.by_guest_level(rec)
        self.assertEqual(split["l2"], rec.report())
        zero = split["l1"]
        self.assertEqual(zero["sync_calls"], {"ok": 0, "eintr": 0})
        self.assertEqual(zero["pages_synced"], 0)
        self.assertEqual(zero["restarts"], 0)
        self.assertEqual(sum(zero["pvec_depth"]["sync"]), 0)


def shadow(tables, dirs=1, rounds=1, exit_unsync=False, split=False):
    return nested.predict_shadow(
        nested.make_nested_shape(tables, dirs, rounds, exit_unsync), split=split)


class ShadowNested(unittest.TestCase):
    """--nested=shadow on an npt=0 host: L1 and L2 on the same tables,
    shadowed twice (S1), each tree synced by its own world switch (S3)."""

    def test_both_world_switches_sync(self):
        # VMRUN 0 creates L2's tree, nothing unsync; after each dirty the
        # VMRUN syncs L2's tree and the #VMEXIT L1's (S3, S4).
        rec = shadow(8, rounds=2)
        self.assertEqual(rec.switches, [("vmrun", 0, 0), ("vmexit", 0, 0),
                                        ("vmrun", 1, 1), ("vmexit", 1, 1),
                                        ("vmrun", 2, 1), ("vmexit", 2, 1)])

    def test_totals_are_both_levels(self):
        # Each level's sync of 13 tables is the 4level boundary shape: one
        # -ENOSPC walk of 3 frames, 13 pages.  Two per round, 3 rounds.
        # Every L1 write unsyncs both pages of its gfn (S4): 26 a round.
        rep = shadow(13, rounds=3).report()
        self.assertEqual(rep["sync_calls"]["ok"], 6)
        self.assertEqual(rep["restarts"], 6)
        self.assertEqual(rep["frames"]["sync"], 18)
        self.assertEqual(rep["pages_unsynced"], 78)
        self.assertEqual(rep["pages_synced"], 78)
        self.assertEqual(rep["pvec_depth"]["sync"], depth_hist([(16, 6)]))

    def test_split_by_guest_mode(self):
        # Each level gets its own three syncs; the split sums to the total.
        total = shadow(14, rounds=3).report()
        split = shadow(14, rounds=3, split=True)
        l1, l2 = split["l1"].report(), split["l2"].report()
        for rep in (l1, l2):
            # 14 tables: an -ENOSPC walk (nr 16) and a walk of nr 4.
            self.assertEqual(rep["sync_calls"]["ok"], 3)
            self.assertEqual(rep["walks"]["sync"], {"done": 3, "enospc": 3})
            self.assertEqual(rep["pvec_depth"]["sync"],
                             depth_hist([(16, 3), (4, 3)]))
            self.assertEqual(rep["pages_synced"], 42)
            self.assertEqual(rep["pages_unsynced"], 42)
        for key in ("restarts", "pages_synced", "pages_unsynced"):
            self.assertEqual(l1[key] + l2[key], total[key], key)
        self.assertEqual(l1["frames"]["sync"] + l2["frames"]["sync"],
                         total["frames"]["sync"])
        # In time, each round's VMRUN syncs L2, then its #VMEXIT L1.
        self.assertEqual(total["syncs"][0::2], l2["syncs"])
        self.assertEqual(total["syncs"][1::2], l1["syncs"])

    def test_exit_unsync_zap_split(self):
        # L1 dirties at the end: both levels' 20 pages unsync, zapped at
        # destruction (20 sync_page events each outside any walk); each
        # level's PD_t, PDPT0 and root carry stale bits: 3 zap walks each.
        split = shadow(20, rounds=1, exit_unsync=True, split=True)
        for lvl in ("l1", "l2"):
            rep = split[lvl].report()
            self.assertEqual(rep["walks"]["zap"], {"done": 3, "enospc": 0}, lvl)
            self.assertEqual(rep["pages_synced"], 40, lvl)


if __name__ == "__main__":
    unittest.main()
