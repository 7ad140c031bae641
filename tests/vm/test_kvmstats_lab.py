#!/usr/bin/env python3
"""KVM's own per-VM stats in /metrics (kvm_unsync_kvm_*), beside the agent's.

tests/vm/scenarios/kvmstats.sh runs the agent, then each shape's kvmwalk
with --stats --hold: it prints KVM's VM stats from the binary stats fd
(KVM_GET_STATS_FD) once the guest is done, and stops itself before the VM
is destroyed.  While it is stopped nothing in its VM moves, so the
scenario reads debugfs and scrapes the agent; then it lets kvmwalk go on,
destroy its VM and exit, and scrapes again.

Asserted, for each shape:
  - every kvm_unsync_kvm_* figure of the scrape equals what kvmwalk
    printed from the stats fd, and what debugfs held (three readers, two
    interfaces of the kernel);
  - the identity, for a VM the agent saw from its start:
        pages_unsynced - pages_synced == KVM's mmu_unsync
    at the hold, and the kernel's own kvmmmu tracepoints, counted through
    tracefs for the VMM's pid, give the same difference.  It holds exactly
    because kvm_unsync_page() and kvm_unlink_unsync_page() are the only
    writers of stat.mmu_unsync, each beside its tracepoint, and
    kvm_unlink_unsync_page() runs both for a page synced and for an unsync
    page zapped (user/kvm_stats.c cites the 6.1 source).  exitzap leaves
    every one of its --tables tables unsync at the hold: a figure that is
    not 0;
  - after the VM is destroyed: its destruction zapped every unsync page, so
    the agent's difference is 0, its counts equal the model's
    (tests/model), and KVM's series for that pid are gone (KVM removed its
    debugfs directory);
  - kvm_unsync_kvm_stats_readable is 1 while debugfs is there; once it is
    unmounted it is 0, the agent logs one warning line for it however many
    scrapes follow, keeps serving its own counts, and exits cleanly.
What this does not show (README, "KVM's own counters"): the identity
breaks when another task zaps (the MMU shrinker, or a last reference to
the VM dropped elsewhere), on a late attach, and when vm_stats was full.
"""

import unittest

from labagent import (AGENT, ANOMALIES, CHRT, KVMWALK, LabSections,
                      NoSanitizerReport, agent_figures, kv_lines, model,
                      require, shapes_env)
from promtext import parse_metrics, select

SHAPES = [
    ("restarts", "--tables 40 --rounds 10"),   # every page synced at the end
    ("floodzap", "--tables 20 --dirs 2 --flood-zap"),  # a flood zap
    ("exitzap", "--tables 20 --dirs 2 --exit-unsync"),  # unsync at the end
]
# kvm_stat_descs[] (user/kvm_stats.c): the published name of each stat
KVM_FAMILIES = {
    "mmu_shadow_zapped": "kvm_unsync_kvm_mmu_shadow_zapped_total",
    "mmu_pte_write": "kvm_unsync_kvm_mmu_pte_write_total",
    "mmu_pde_zapped": "kvm_unsync_kvm_mmu_pde_zapped_total",
    "mmu_flooded": "kvm_unsync_kvm_mmu_flooded_total",
    "mmu_recycled": "kvm_unsync_kvm_mmu_recycled_total",
    "mmu_cache_miss": "kvm_unsync_kvm_mmu_cache_miss_total",
    "mmu_unsync": "kvm_unsync_kvm_mmu_unsync",
}
WARNING = "warning: KVM stats: "


def stats_line(text):
    """kvmwalk's "kvmwalk: stats a=1 b=2" line as {name: int}."""
    for line in text.splitlines():
        if line.startswith("kvmwalk: stats "):
            return {k: int(v) for k, v in
                    (w.split("=", 1) for w in line.split()[2:])}
    raise AssertionError("no stats line in: %r" % text)


class LabKvmStats(NoSanitizerReport, LabSections, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, CHRT), "kvmstats lab needs %s (make all)")
        cls.boot("kvmstats.sh", [AGENT, KVMWALK, CHRT], 600,
                 env={"KUE_SHAPES": shapes_env(SHAPES)})

    def held(self, name):
        return parse_metrics(self.section("metrics %s held" % name))

    def after(self, name):
        return parse_metrics(self.section("metrics %s after" % name))

    def test_scraped_equal_kvmwalk_and_debugfs(self):
        for name, _ in SHAPES:
            with self.subTest(shape=name):
                pid = self.pid_of(name)
                printed = stats_line(self.section("shape " + name))
                debugfs = {k: int(v) for k, v in
                           kv_lines(self.section("debugfs " + name)).items()}
                s = self.held(name)
                for stat, family in KVM_FAMILIES.items():
                    got = select(s, family, pid=str(pid), vm=name)
                    self.assertEqual(got, [printed[stat]], (stat, printed))
                    self.assertEqual(debugfs[stat], printed[stat], stat)
                self.assertEqual(select(s, "kvm_unsync_kvm_stats_readable"),
                                 [1])
        # the flood zap is KVM's to count, and it did
        self.assertGreater(stats_line(self.section("shape floodzap"))
                           ["mmu_flooded"], 0)

    def test_identity_at_the_hold(self):
        for name, args in SHAPES:
            with self.subTest(shape=name):
                pid = self.pid_of(name)
                s = self.held(name)
                a = agent_figures(s, pid)
                tp = kv_lines(self.section("tp " + name))
                self.assertEqual(tp["lost"], "0")
                unsync = select(s, "kvm_unsync_kvm_mmu_unsync",
                                pid=str(pid))
                self.assertEqual(len(unsync), 1)
                self.assertEqual(a["pages_unsynced"] - a["pages_synced"],
                                 unsync[0])
                self.assertEqual(int(tp["unsync_page"]) -
                                 int(tp["sync_page"]), unsync[0])
                print("\nkvmstats %s: unsynced %d - synced %d = mmu_unsync %d"
                      % (name, a["pages_unsynced"], a["pages_synced"],
                         unsync[0]))
        # --exit-unsync dirties every table after the last sync
        self.assertEqual(select(self.held("exitzap"),
                                "kvm_unsync_kvm_mmu_unsync",
                                pid=str(self.pid_of("exitzap"))), [20])

    def test_after_destroy(self):
        for name, args in SHAPES:
            with self.subTest(shape=name):
                pid = self.pid_of(name)
                s = self.after(name)
                a = agent_figures(s, pid)
                p = model(args)
                self.assertEqual(a["pages_unsynced"], p["pages_unsynced"])
                self.assertEqual(a["pages_synced"], p["pages_synced"])
                self.assertEqual(a["pages_unsynced"] - a["pages_synced"], 0)
                for family in KVM_FAMILIES.values():
                    self.assertEqual(select(s, family, pid=str(pid)), [],
                                     family)
                self.assert_zero(s, ANOMALIES)

    def test_no_debugfs_said_once(self):
        s = parse_metrics(self.section("metrics nodebugfs"))
        self.assertEqual(select(s, "kvm_unsync_kvm_stats_readable"), [0])
        for family in KVM_FAMILIES.values():
            self.assertEqual(select(s, family), [], family)
        # the rest of the page is served as before, with no error
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])
        self.assertEqual(len(select(s, "kvm_unsync_build_info")), 1)
        err = self.section("shutdown")
        warnings = [ln for ln in err.splitlines() if ln.startswith(WARNING)]
        self.assertEqual(len(warnings), 1, err)
        self.assertIn("/sys/kernel/debug/kvm", warnings[0])
        self.assertIn("debugfs not mounted", warnings[0])


if __name__ == "__main__":
    unittest.main()
