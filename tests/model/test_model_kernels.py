"""What differs between the kernels the model predicts for: 6.1 (bookworm),
6.12 (trixie) and 7.2 (sid).  kernels.py lists the differences with the
lines they come from.

The model tests need no kernel source.  The source tests read the trees
tests/model/kernel_source.sh -s SUITE unpacked under the cache and skip,
saying so, when one is missing; the line numbers are checked when the tree
is the package version kernels.py was written from."""

import ast
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kernels  # noqa: E402
import kvm_shapes  # noqa: E402
import predict  # noqa: E402
import shadow  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


def lab_shapes():
    """The lab's SHAPES (tests/vm/labagent.py), read without importing it."""
    with open(os.path.join(REPO, "tests", "vm", "labagent.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and
                getattr(node.targets[0], "id", None) == "SHAPES"):
            return ast.literal_eval(node.value)
    raise AssertionError("no SHAPES in tests/vm/labagent.py")


# The shapes of README's lab table and the boundaries around 13 leaves,
# besides the lab's own.  Budget shapes (A14) are left out: see
# kernels.py "thp-align".
MORE_SHAPES = [
    ("t13", "--tables 13"), ("t14", "--tables 14"), ("t16", "--tables 16"),
    ("pae_t20_d3", "--paging pae --tables 20 --dirs 3"),
    ("fault_t20_d2_r2", "--sync fault --tables 20 --dirs 2 --rounds 2"),
    ("flood_t20", "--flood-zap --tables 20"),
    ("exit_t40_d2", "--exit-unsync --tables 40 --dirs 2"),
    ("pae_flood_t20_d2", "--paging pae --tables 20 --dirs 2 --flood-zap"),
    ("fault_t40_d4_r5_all",
     "--sync fault --tables 40 --dirs 4 --rounds 5 --flood-zap --exit-unsync"),
]


def all_shapes():
    return list(lab_shapes()) + MORE_SHAPES


def make_run(args, release, **kw):
    a = predict.parse_args(args.split())
    return kvm_shapes.Run(predict.shape_from_args(a), kernel=release, **kw)


class ClearParentsProbe:
    """Checks, on a model run, the assumption the agent derives the
    clear_parents clears from: between a top-level walk's exit and each
    mmu_pages_clear_parents() of that batch, the pages above the leaves
    change only by clear_parents' own clears.  Then the clears of a batch
    follow from the page vector and the counts at the walk's exit alone
    (derive()), and the probe checks that they do."""

    def __init__(self, tc, kvm):
        self.tc, self.kvm = tc, kvm
        self.batch = None
        self.batches = 0
        self.cleared = 0
        walk_exit, unsync_walk = kvm._top_level_exit, kvm.mmu_unsync_walk
        clear_bit, clear_parents = kvm.clear_unsync_child_bit, kvm.mmu_pages_clear_parents

        def top_level_exit(ctx, root, pvec, ret):
            walk_exit(ctx, root, pvec, ret)
            self.open_batch(pvec)

        def mmu_unsync_walk(sp, pvec):
            self.close_batch()
            return unsync_walk(sp, pvec)

        def clear_unsync_child_bit(sp, idx, site):
            if self.batch is not None and site == "clear_parents":
                counts, bits, _, done = self.batch
                counts[id(sp)] -= 1
                bits[id(sp)].discard(idx)
                self.batch[3] = done + 1
            clear_bit(sp, idx, site)

        def mmu_pages_clear_parents(parents):
            self.check_uppers()
            clear_parents(parents)

        kvm._top_level_exit = top_level_exit
        kvm.mmu_unsync_walk = mmu_unsync_walk
        kvm.clear_unsync_child_bit = clear_unsync_child_bit
        kvm.mmu_pages_clear_parents = mmu_pages_clear_parents

    def open_batch(self, pvec):
        uppers = [sp for sp, _ in pvec.entries() if sp.level > shadow.PG_LEVEL_4K]
        counts = {id(sp): sp.unsync_children for sp in uppers}
        bits = {id(sp): set(sp.unsync_child_bitmap) for sp in uppers}
        self.uppers = uppers
        self.batch = [counts, bits, self.derive(pvec, counts), 0]
        self.batches += 1

    def derive(self, pvec, counts):
        """mmu_pages_clear_parents() for every leaf of for_each_sp, on the
        counts at the walk's exit."""
        counts = dict(counts)
        parents = shadow.MmuPagePath()
        n = 0
        for _ in self.kvm.for_each_sp(pvec, parents):
            level = 0
            while parents.parent[level] is not None:
                sp = parents.parent[level]
                counts[id(sp)] -= 1
                n += 1
                level += 1
                if counts[id(sp)]:
                    break
        return n

    def check_uppers(self):
        counts, bits, _, _ = self.batch
        for sp in self.uppers:
            self.tc.assertEqual((sp.unsync_children, sp.unsync_child_bitmap),
                                (counts[id(sp)], bits[id(sp)]),
                                "%s changed between the walk and clear_parents" % sp)

    def close_batch(self):
        if self.batch is not None:
            _, _, derived, done = self.batch
            self.tc.assertEqual(done, derived, "clear_parents clears of a batch")
            self.cleared += done
            self.batch = None


class SamePredictions(unittest.TestCase):
    """Nothing that differs between 6.1, 6.12 and 7.2 changes a figure of
    these shapes: the same report, the same kvmmmu event stream, the same
    raw kernel view, and no shadow-page eviction (so neither the shrinker
    nor the 2 MiB alignment of 6.12+ can matter, kernels.py)."""

    def test_lab_shapes(self):
        for name, args in all_shapes():
            runs = {}
            for r in kernels.RELEASES:
                run = make_run(args, r)
                rec = run.run()
                self.assertEqual(run.kvm.zap_oldest_calls, 0, (name, r))
                runs[r] = (rec.report(), rec.events, rec.kernel_view())
            for r in kernels.RELEASES[1:]:
                with self.subTest(shape=name, release=r):
                    self.assertEqual(runs[r], runs[kernels.DEFAULT])

    def test_predict_cli_release(self):
        argv = ["--tables", "40", "--rounds", "10"]
        base = predict.predict_dict(argv)
        for r in kernels.RELEASES:
            self.assertEqual(predict.predict_dict(argv + ["--release", r]), base)
        # The series is rebased onto 7.3 (tests/kernel/patches-7.3) and
        # no DIFFERENCE moves a figure: patched 7.3 is patched 6.1.
        patched = predict.predict_dict(argv, variant="patched")
        self.assertNotEqual(patched, base)
        for r in kernels.PATCHED_RELEASES:
            self.assertEqual(predict.predict_dict(argv + ["--release", r],
                                                  variant="patched"), patched)
        self.assertEqual(predict.main(["--kernel", "patched", "--release", "7.2"] + argv), 2)
        with self.assertRaises(ValueError):
            kvm_shapes.Run(kvm_shapes.make_shape(), variant="patched", kernel="7.2")
        with self.assertRaises(ValueError):
            kernels.get("6.2")


class HugePages(unittest.TestCase):
    """kernels.py "thp-align": on 6.12 and 7.2 kvmwalk's guest memory is
    2 MiB aligned, so with THP behind it region 0 gets a 2 MiB spte and
    the direct sp for gfn 0 is never made.  Under the budget that is all:
    the agent's figures stay those of 6.1."""

    @staticmethod
    def without_gfn0_direct(events):
        return [e for e in events if not (e[1] == 0 and e[3])]

    def test_lab_shapes(self):
        for name, args in all_shapes():
            base = make_run(args, "6.1").run()
            self.assertEqual(make_run(args, "6.1", huge_pages=True).run().events,
                             base.events, name)
            for r in ("6.12", "7.2"):
                with self.subTest(shape=name, release=r):
                    run = make_run(args, r, huge_pages=True)
                    rec = run.run()
                    self.assertEqual(rec.report(), base.report())
                    self.assertNotEqual(rec.events, base.events)
                    self.assertEqual(rec.events, self.without_gfn0_direct(base.events))
                    self.assertEqual(run.kvm.zap_oldest_calls, 0)

    def test_budget_shape_moves(self):
        """Past the budget the eviction order changes: the model says so
        (not yet compared with a 6.12 lab)."""
        args = ["--tables", "300", "--dirs", "3", "--rounds", "2"]
        base = predict.predict_dict(args)
        self.assertEqual(predict.predict_dict(args + ["--release", "6.12"]), base)
        huge = predict.predict_dict(args + ["--release", "6.12", "--huge-pages"])
        self.assertNotEqual(huge["pages_synced"], base["pages_synced"])
        self.assertEqual(huge, predict.predict_dict(args + ["--release", "7.2", "--huge-pages"]))


class ClearParents(unittest.TestCase):
    """The agent's derivation of clear_parents clears from the page vector
    holds on every shape and release, also when syncs fail and zap the
    page (kernels.CLEAR_PARENTS gives the source lines)."""

    def check(self, args, release, fail=None, read_fail=None):
        run = make_run(args, release)
        probe = ClearParentsProbe(self, run.kvm)
        if fail:
            run.kvm.sync_page_fails = fail
        if read_fail:
            run.kvm.gpte_read_fails = read_fail
        rec = run.run()
        probe.close_batch()
        self.assertGreater(probe.batches, 0)
        self.assertEqual(probe.cleared, sum(c["clear_parents"] for c in rec.clears.values()))
        return rec

    def test_shapes(self):
        for name, args in all_shapes():
            for r in kernels.RELEASES:
                with self.subTest(shape=name, release=r):
                    self.check(args, r)

    def test_probe_sees_a_change(self):
        """A kernel that set a parent's bit while syncing would fail."""
        run = make_run("--tables 4", "7.2")
        ClearParentsProbe(self, run.kvm)
        unlink = run.kvm.kvm_unlink_unsync_page

        def kvm_unlink_unsync_page(sp):
            unlink(sp)
            parent, idx = sp.parent_ptes[0]
            parent.unsync_child_bitmap.add(idx + 1)

        run.kvm.kvm_unlink_unsync_page = kvm_unlink_unsync_page
        with self.assertRaisesRegex(AssertionError, "changed between the walk"):
            run.run()

    def test_failed_syncs_zap(self):
        pt1 = kvm_shapes.pt_gfn(1)
        for r in kernels.RELEASES:
            rec = self.check("--tables 20 --rounds 3", r,
                             fail=lambda sp: sp.gfn == pt1)
            # PT[1] is zapped by its first sync (and never re-created: the
            # guest does not read VA(1) again).
            self.assertGreaterEqual(rec.k["zap_levels"].get(1, 0), 1)


class SyncPerSpte(unittest.TestCase):
    """kernels.py "sync": 6.1 stops syncing a page at the first gPTE it
    cannot read, 6.12 and 7.2 sync the remaining entries first; all three
    zap the page, so the figures do not move."""

    def run_shape(self, release, read_fail):
        run = make_run("--tables 8 --rounds 2", release)
        run.kvm.gpte_read_fails = read_fail
        rec = run.run()
        return run, rec

    def test_zapped_in_all(self):
        pt0 = kvm_shapes.pt_gfn(0)

        def fails(sp, i):
            return sp.gfn == pt0 and i == 0

        out = {}
        for r in kernels.RELEASES:
            run, rec = self.run_shape(r, fails)
            out[r] = (run.kvm.sptes_synced, rec.report(), rec.events)
        clean = {r: self.run_shape(r, lambda sp, i: False) for r in kernels.RELEASES}
        for r in kernels.RELEASES:
            # The failing page is zapped in every release: the figures
            # differ from a clean run the same way.
            self.assertEqual(out[r][1:], out[kernels.DEFAULT][1:])
            self.assertNotEqual(out[r][2], clean[r][1].events)
            self.assertIn(("prepare_zap_page", pt0, 1, False, "sync"), out[r][2])
        # The model's PT[0] has one present spte (PTE 0, the only one the
        # guest reads through), so no release syncs more of it;
        # test_kvm_sync_page shows the difference on a fuller page.
        self.assertEqual(len({o[0] for o in out.values()}), 1)

    def test_kvm_sync_page(self):
        for r, want in (("6.1", 1), ("6.12", 3), ("7.2", 3)):
            kvm = shadow.Kvm()
            kvm.kernel = kernels.get(r)
            sp = kvm.alloc_shadow_page(0x400, shadow.Role(1))
            for i in (0, 1, 2, 3):
                sp.spt[i] = shadow.Spte("leaf", gfn=0x100 + i)
            kvm.gpte_read_fails = lambda s, i: i == 1
            invalid = []
            self.assertEqual(kvm.kvm_sync_page(None, sp, invalid), -1)
            self.assertEqual(kvm.sptes_synced, want, r)
            self.assertEqual(invalid, [sp])
            kvm.gpte_read_fails = lambda s, i: False
            sp2 = kvm.alloc_shadow_page(0x401, shadow.Role(1))
            sp2.spt[0] = shadow.Spte("leaf", gfn=0x100)
            self.assertEqual(kvm.kvm_sync_page(None, sp2, invalid), 0)


class FetchFlood(unittest.TestCase):
    """kernels.py "fetch-flood": 6.1's FNAME(fetch) resets the flood count
    of direct sps too; 6.12 and 7.2 stop at the guest's leaf level.  Only
    guest-table sps are ever flood-checked, so that is all it changes."""

    def test_direct_sps(self):
        for r, direct_reset in (("6.1", True), ("6.12", False), ("7.2", False)):
            run = make_run("--tables 2", r)
            v = run.vcpu
            v.enter_guest()
            v.params()
            va = kvm_shapes.PARAMS_GFN << 12
            path, _ = v.shadow_path(va)
            self.assertTrue(path[-1].role.direct)
            for sp in path:
                sp.write_flooding_count = 2
            tables, glevel, gfn = v.g.walk(va)
            v.fetch(va, tables, glevel, gfn, False)
            for sp in path:
                want = 2 if sp.role.direct and not direct_reset else 0
                self.assertEqual(sp.write_flooding_count, want, (r, sp))

    def test_direct_sps_never_flood_checked(self):
        for name, args in all_shapes():
            for r in kernels.RELEASES:
                run = make_run(args, r)
                check = run.kvm.detect_write_flooding

                def detect(sp, check=check):
                    self.assertFalse(sp.role.direct)
                    return check(sp)

                run.kvm.detect_write_flooding = detect
                run.run()


class UnsyncLpageShortcut(unittest.TestCase):
    """kernels.py "unsync-lpage": 7.2's early return in
    mmu_try_to_unsync_pages is only taken for gfns without a shadow page,
    where 6.1's loop finds nothing to unsync either."""

    def test_taken_only_without_sps(self):
        taken = 0
        for name, args in all_shapes():
            run = make_run(args, "7.2")
            kvm = run.kvm
            allowed = kvm.lpage_allowed

            def lpage_allowed(gfn, kvm=kvm, allowed=allowed):
                nonlocal taken
                ok = allowed(gfn)
                if ok:
                    taken += 1
                    self.assertEqual(kvm.valid_sps_for_gfn(gfn), [], (name, gfn))
                return ok

            kvm.lpage_allowed = lpage_allowed
            run.run()
        self.assertGreater(taken, 0)


class Source(unittest.TestCase):
    """The lines kernels.py cites, in the fetched sources."""

    trees = {}

    @classmethod
    def setUpClass(cls):
        cls.trees = {r: kernels.source_dir(r) for r in kernels.RELEASES}

    def tree(self, release):
        t = self.trees[release]
        if t is None:
            k = kernels.get(release)
            self.skipTest("no %s source in the cache: run tests/model/kernel_source.sh -s %s"
                          % (release, k.suite))
        return t

    def exact(self, release):
        """The tree, if it is the version the line numbers are for."""
        t = self.tree(release)
        got = kernels.source_package(t)
        if got != kernels.get(release).package:
            self.skipTest("%s source is %s; kernels.py's lines are for %s"
                          % (release, got, kernels.get(release).package))
        return t

    def assert_lines(self, tree, cited):
        for path, n, text in cited:
            lines = kernels.read_lines(tree, path)
            self.assertEqual(lines[n - 1].strip(), text, "%s:%d" % (path, n))

    def bodies(self, name, path=kernels.MMU):
        out = {}
        for r in kernels.RELEASES:
            fn = kernels.function(kernels.read_lines(self.tree(r), path), name)
            self.assertIsNotNone(fn, "%s has no %s in %s" % (r, name, path))
            out[r] = fn
        return out

    def test_walk_functions_same(self):
        """The walk, and what runs between a walk and clear_parents, is the
        same code in 6.1, 6.12 and 7.2 up to kernels.NORMALIZE; the two
        exceptions are kernels.WALK_DIFFERS."""
        for name in kernels.WALK_FUNCTIONS:
            with self.subTest(function=name):
                b = self.bodies(name)
                text = {r: kernels.normalize(f[2]) for r, f in b.items()}
                if name in kernels.WALK_DIFFERS:
                    _, pat, rep = kernels.WALK_DIFFERS[name]
                    self.assertNotEqual(text["6.1"], text["6.12"])
                    text["6.1"] = re.sub(pat, rep, text["6.1"])
                for r in kernels.RELEASES[1:]:
                    self.assertEqual(text[r], text["6.1"], "%s differs in %s" % (name, r))

    def test_walk_function_lines(self):
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                t = self.exact(r)
                lines = kernels.read_lines(t, kernels.MMU)
                for name, at in kernels.WALK_FUNCTIONS.items():
                    fn = kernels.function(lines, name)
                    self.assertEqual(fn[0], at[r], "%s %s:%d" % (name, kernels.MMU, fn[0]))

    def test_differences(self):
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                t = self.exact(r)
                for d in kernels.DIFFERENCES:
                    self.assert_lines(t, d.lines[r])

    def test_shrinker(self):
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                text = "\n".join(kernels.read_lines(self.tree(r), kernels.MMU))
                self.assertEqual("mmu_shrink_scan" in text, kernels.get(r).shrinker)

    def test_thp_alignment(self):
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                text = "\n".join(kernels.read_lines(self.tree(r), "mm/mmap.c"))
                self.assertEqual("IS_ALIGNED(len, PMD_SIZE)" in text,
                                 kernels.get(r).thp_aligned_anon)

    def test_clear_parents_lines(self):
        """kernels.CLEAR_PARENTS: in each release, what runs between a
        walk's exit and mmu_pages_clear_parents()."""
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                self.assert_lines(self.exact(r), kernels.CLEAR_PARENTS[r])

    def test_between_touches_no_bits(self):
        """None of the functions that run between a walk and clear_parents
        names the parents' counts or bits (kernels.BETWEEN)."""
        words = re.compile(r"\b(%s)\b" % "|".join(kernels.BETWEEN_WORDS))
        for r in kernels.RELEASES:
            with self.subTest(release=r):
                t = self.tree(r)
                absent = set()
                for path, names in kernels.BETWEEN.items():
                    lines = kernels.read_lines(t, path)
                    for name in names:
                        fn = kernels.function(lines, name)
                        if fn is None:
                            absent.add(name)
                            continue
                        self.assertIsNone(words.search(kernels.normalize(fn[2])),
                                          "%s %s:%d" % (name, path, fn[0]))
                self.assertEqual(absent, kernels.BETWEEN_ABSENT[r])


if __name__ == "__main__":
    unittest.main()
