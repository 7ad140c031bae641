#!/usr/bin/env python3
"""The lab kernels, stock and patched: do they boot, run every workload,
stay free of warnings and lockdep splats, and sync every unsync page?

Builds (or takes from the cache) both flavours with tests/kernel/build.sh,
boots each in the VM lab (KVM built in, kvm_amd.npt=0) with
tests/kernel/scenario.sh, and runs the kvmwalk shapes of tests/vm/SHAPES.md
under the kernel's own instruments: kvmmmu tracepoints and kprobe events
on mmu_sync_children, __mmu_unsync_walk and mmu_zap_unsync_children.

Checked on both kernels:
  - the kernel boots and the scenario ends with exit code 0;
  - every kvmwalk run succeeds and the trace lost nothing;
  - the kernel log has no WARN, BUG, lockdep splat or call trace;
  - every page that went unsync was synced or zapped: per workload,
    kvm_mmu_unsync_page events == kvm_mmu_sync_page events;
  - the page vector's type in vmlinux BTF is the one the flavour promises.
And the walk itself, from the source (tests/kernel/README.md):
  - every sync's top-level walks are -ENOSPC but the last (stock) or the
    last positive one and a final 0 (patched, which never ends on -ENOSPC);
  - the top-level walk returns of every sync, per shape, as derived from
    the source (EXPECTED_SYNC_WALKS);
  - patched: the vector holds only leaves, a -ENOSPC batch is 16 leaves
    (16 * -ENOSPC walks + the positive returns == pages synced or zapped).

usage: python3 tests/kernel/test_patched.py [-v]
Environment: KUE_KERNEL_FLAVOURS="stock patched" (default both),
KUE_CACHE, KUE_BUILD as for the lab.
"""

import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))

import lab  # noqa: E402

BPFTOOL = "/usr/sbin/bpftool"
ENOSPC = -28
VEC = 16  # KVM_PAGE_ARRAY_NR

# name -> kvmwalk arguments (tests/vm/SHAPES.md)
SHAPES = [
    ("t8", "--tables 8"),
    ("t12", "--tables 12"),
    ("t13", "--tables 13"),
    ("t16", "--tables 16"),
    ("t17", "--tables 17"),
    ("t40_r3", "--tables 40 --rounds 3"),
    ("t40_d4", "--tables 40 --dirs 4 --rounds 2"),
    ("pae_t20_d3", "--paging pae --tables 20 --dirs 3 --rounds 2"),
    ("fault_t20_d2_r3", "--sync fault --tables 20 --dirs 2 --rounds 3"),
    ("flood_t20_d2", "--flood-zap --tables 20 --dirs 2"),
    ("exit_t20_d2", "--exit-unsync --tables 20 --dirs 2"),
    ("pae_exit_t20_d2", "--paging pae --tables 20 --dirs 2 --exit-unsync"),
]

# Top-level walk returns of each mmu_sync_children call (tests/kernel/
# README.md derives them from the source).  Stock: root, PDPT and PD take 3
# of the 16 entries of a 4-level walk, and the add that fills the vector
# returns -ENOSPC; after the last batch mmu_unsync_walk() finds the root
# clean and returns without a walk.  Patched: 16 leaves per batch, -ENOSPC
# only when one more leaf has no slot, and a sync rooted at a vCPU root
# (4-level root, PAE roots) ends with a walk that clears the root's bits
# and returns 0; the fault path's level-2 walk is not rooted at a root.
E = ENOSPC
EXPECTED_SYNC_WALKS = {
    # shape: (stock, patched)
    "t8": ([[8]], [[8, 0]]),
    "t12": ([[12]], [[12, 0]]),
    "t13": ([[E]], [[13, 0]]),
    "t16": ([[E, 3]], [[16, 0]]),
    "t17": ([[E, 4]], [[E, 1, 0]]),
    "t40_r3": ([[E, E, E, 1]] * 3, [[E, E, 8, 0]] * 3),
    "t40_d4": ([[E, E, E, 4]] * 2, [[E, E, 8, 0]] * 2),
    "pae_t20_d3": ([[]] * 5 + [[7], [7], [6], []] + [[7], [7], [6]],
                   [[]] * 5 + [[7, 0], [7, 0], [6, 0], []]
                   + [[7, 0], [7, 0], [6, 0]]),
    "fault_t20_d2_r3": ([[10]] * 3, [[10]] * 3),
    "flood_t20_d2": ([[E, 8], [10]], [[E, 4, 0], [10, 0]]),
    "exit_t20_d2": ([[E, 8]], [[E, 4, 0]]),
    "pae_exit_t20_d2": ([[]] * 4 + [[10], [10]],
                        [[]] * 4 + [[10, 0], [10, 0]]),
}

BTF_TYPE = {"stock": "struct kvm_mmu_pages {",
            "patched": "struct kvm_mmu_page_vec {"}

_runs = {}


def flavours():
    return os.environ.get("KUE_KERNEL_FLAVOURS", "stock patched").split()


def build_kernel(flavour):
    out = subprocess.run([os.path.join(HERE, "build.sh"), flavour],
                         check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


def build_kvmwalk():
    out = lab.build_dir()
    subprocess.run(["make", "-s", "-C", os.path.join(REPO, "tests", "vm",
                                                     "workload"),
                    "KVMWALK_OUT=" + out], check=True)
    return os.path.join(out, "kvmwalk")


def run(flavour):
    """Boot `flavour` once with every shape; cached per process."""
    if flavour not in _runs:
        kernel = build_kernel(flavour)
        binaries = [build_kvmwalk()]
        if os.path.exists(BPFTOOL):
            binaries.append(BPFTOOL)
        shapes = ";".join("%s:%s" % (n, a.replace(" ", ","))
                          for n, a in SHAPES)
        log_path = os.path.join(lab.build_dir(), "logs", "kernel-%s-%s-%d.log"
                                % (flavour, time.strftime("%Y%m%d-%H%M%S"),
                                   os.getpid()))
        rc, log = lab.run_scenario(os.path.join(HERE, "scenario.sh"),
                                   binaries, timeout=1200, kernel=kernel,
                                   env={"KUE_SHAPES": shapes},
                                   log_path=log_path)
        found = lab.sections(log)
        results = {}
        for line in found.get("kernel", "").splitlines():
            if line.startswith("{"):
                s = json.loads(line)
                results[s["shape"]] = s
        _runs[flavour] = {"rc": rc, "log": log, "log_path": lab.last_log,
                          "sections": found, "shapes": results}
        print("\n%s kernel %s: scenario exit %d, log %s"
              % (flavour, kernel, rc, lab.last_log), file=sys.stderr)
        for s in results.values():
            print("  %-16s unsync %3d sync %3d  walks per sync %s"
                  % (s["shape"], s["tp_unsync_page"], s["tp_sync_page"],
                     s["sync_walk_returns"]), file=sys.stderr)
    return _runs[flavour]


def total(v):
    return sum(v.values()) if isinstance(v, dict) else v


class KernelMixin:
    flavour = None

    def setUp(self):
        if self.flavour not in flavours():
            self.skipTest("%s not in KUE_KERNEL_FLAVOURS" % self.flavour)
        self.r = run(self.flavour)

    def where(self):
        return "%s kernel, log %s" % (self.flavour, self.r["log_path"])

    def test_boots_and_scenario_passes(self):
        self.assertIn("dmesg", self.r["sections"],
                      "no dmesg section: the VM died (%s)" % self.where())
        self.assertEqual(self.r["rc"], 0, self.where())

    def test_every_workload_succeeds(self):
        shapes = self.r["shapes"]
        self.assertEqual(sorted(shapes), sorted(n for n, _ in SHAPES),
                         self.where())
        for name, s in shapes.items():
            with self.subTest(shape=name):
                self.assertEqual((s["rc"], s["ok"], s["trace_lost"]),
                                 (0, True, 0), self.where())

    def test_no_warn_bug_or_lockdep_splat(self):
        self.assertEqual(lab.kernel_splats(self.r["log"]), [], self.where())

    def test_every_unsync_page_synced_or_zapped(self):
        for name, s in self.r["shapes"].items():
            with self.subTest(shape=name):
                self.assertGreater(s["tp_unsync_page"], 0, self.where())
                self.assertEqual(s["tp_unsync_page"], s["tp_sync_page"],
                                 self.where())
                # Nothing left unsync before the VM was destroyed, except
                # what --exit-unsync leaves for the destruction zaps and
                # the other directories' tables of a --sync fault run.
                if ("--exit-unsync" not in s["args"]
                        and "--sync fault" not in s["args"]):
                    self.assertEqual(s["stats"].get("mmu_unsync"), 0,
                                     self.where())

    def test_walks_end_complete(self):
        # Stock: -ENOSPC walks, then the last one, which is -ENOSPC itself
        # when the add that filled the vector took the last leaf.
        # Patched: -ENOSPC walks, then at most one positive (the last
        # batch), then at most one 0 (the walk that clears a root's bits);
        # never a -ENOSPC at the end.
        for name, s in self.r["shapes"].items():
            with self.subTest(shape=name):
                self.assertGreater(total(s["walk_frames"]), 0, self.where())
                for returns, ret in zip(s["sync_walk_returns"],
                                        s["sync_children_returns"]):
                    # -EINTR: a can_yield=false sync stopped after a batch.
                    if not returns or ret != 0:
                        continue
                    seq = list(returns)
                    if self.flavour == "patched":
                        self.assertGreaterEqual(seq[-1], 0, self.where())
                        if seq[-1] == 0:
                            seq.pop()
                        if seq and seq[-1] > 0:
                            seq.pop()
                    else:
                        seq.pop()
                    self.assertTrue(all(r == ENOSPC for r in seq),
                                    "%s: %s" % (returns, self.where()))

    def test_sync_walks_match_the_source(self):
        col = ("stock", "patched").index(self.flavour)
        for name, both in EXPECTED_SYNC_WALKS.items():
            want = both[col]
            with self.subTest(shape=name):
                self.assertEqual(self.r["shapes"][name]["sync_walk_returns"],
                                 want, self.where())

    def test_btf_has_the_page_vector(self):
        if not os.path.exists(BPFTOOL):
            self.skipTest("no bpftool on the host")
        self.assertIn(BTF_TYPE[self.flavour], self.r["sections"].get("btf", ""),
                      self.where())


class StockKernel(KernelMixin, unittest.TestCase):
    flavour = "stock"


class PatchedKernel(KernelMixin, unittest.TestCase):
    flavour = "patched"

    def test_full_batch_is_sixteen_leaves(self):
        # Only leaves go into the vector: each -ENOSPC walk handed over 16
        # pages, each complete walk as many as it returned.  kvmwalk never
        # shares a page table between two parents, so no page is counted
        # twice.
        for name, s in self.r["shapes"].items():
            for ctx in ("sync", "zap"):
                with self.subTest(shape=name, context=ctx):
                    handed = (VEC * s["restarts"].get(ctx, 0)
                              + s["walk_leaves"].get(ctx, 0))
                    self.assertEqual(
                        handed, s["tp_sync_page_by_context"].get(ctx, 0),
                        self.where())

    def test_functions_gone(self):
        probes = [json.loads(l) for l in
                  self.r["sections"].get("probes", "").splitlines()
                  if l.startswith("{")]
        names = {p["function"]: p["kallsyms"] for p in probes}
        for gone in ("mmu_pages_clear_parents", "mmu_pages_first",
                     "mmu_pages_next", "mmu_unsync_walk"):
            self.assertEqual(names.get(gone), [], gone)
        self.assertTrue(names["__mmu_unsync_walk"], self.where())


if __name__ == "__main__":
    unittest.main()
