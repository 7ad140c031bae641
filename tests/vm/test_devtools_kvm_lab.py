#!/usr/bin/env python3
"""KVM's own stats in the live view and in the record, with a VM still there.

tests/vm/test_devtools_lab.py's VMs are gone before the view reads them;
here (tests/vm/scenarios/devtools_kvm.sh) each shape's kvmwalk runs with
--stats --hold: it prints KVM's VM stats from the binary stats fd
(KVM_GET_STATS_FD) once the guest is done and stops itself before the VM
is destroyed, so nothing in the VM moves while two views beside a running
agent (--batch --record, its pins read-only) read it.  One view is
stopped (SIGINT) during the hold, the other once the VM is destroyed.

Asserted, for each shape:
  - a --batch block begun and ended in the hold shows KVM's mmu_unsync
    (KVM-UNS, all top.c shows of KVM) equal to kvmwalk's print, and no
    sync (every per-sync cell `-`: nothing moved);
  - the record written in the hold has every KVM stat of that VM equal to
    kvmwalk's print, its agent counters equal to the model's up to the
    hold (tests/model, Run.run(destroy=False)), and the identity
        pages_unsynced - pages_synced == kvm.mmu_unsync
    (why it holds exactly: tests/vm/test_kvmstats_lab.py); exitzap leaves
    its 20 tables unsync, so the figure is not 0;
  - once the VM is destroyed the view's row shows `-` for KVM-UNS (README,
    "For KVM developers"), and the record keeps KVM's stats as last read
    while the VM lived (docs/record.md): those of the hold, since
    kvm_destroy_vm() removes the debugfs directory before it zaps a page.
    The agent's counters are then the model's whole run, whose difference
    is 0 (destruction zapped every unsync page): the identity is a fact of
    a living VM, and the kept mmu_unsync of exitzap is 20, not 0.
"""

import json
import unittest

from labagent import (AGENT, CHRT, KVMWALK, LabSections, kv_lines, model,
                      require, shapes_env)
import kvm_shapes  # tests/model, on the path once labagent is imported
import predict
from test_devtools_lab import model_keys, record_figures, screen_rows_list
from test_kvmstats_lab import KVM_FAMILIES, stats_line

SHAPES = [
    ("exitzap", "--tables 20 --dirs 2 --exit-unsync"),  # unsync at the end
    ("floodzap", "--tables 20 --dirs 2 --flood-zap"),   # a flood zap
]
KVM_STATS = tuple(KVM_FAMILIES)		# the record's kvm keys, beside "vms"
KVM_UNS = 11				# top.c's column of KVM's mmu_unsync
PER_SYNC = slice(3, 9)			# its per-sync columns


def model_held(args):
    """The model's figures for kvmwalk ARGS up to --hold: the guest done,
    the VM not yet destroyed (none of destruction's zaps)."""
    shape = predict.shape_from_args(predict.parse_args(args.split()))
    return kvm_shapes.Run(shape).run(destroy=False).report()


class LabDevtoolsKvm(LabSections, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, CHRT), "devtools kvm lab needs %s (make all)")
        cls.boot("devtools_kvm.sh", [AGENT, KVMWALK, CHRT], 600,
                 env={"KUE_SHAPES": shapes_env(SHAPES)})

    def printed(self, name):
        return stats_line(self.section("shape " + name))

    def row(self, name, when):
        """The shape's row of its block, by pid, or None."""
        # the list, not screen_rows(): rows named alike share a key there
        rows = {int(c[1]): c for c in
                screen_rows_list(self.section("batch %s %s" % (name, when)))}
        return rows.get(self.pid_of(name))

    def record_vm(self, name, when):
        st = kv_lines(self.section("view %s %s" % (name, when)))
        self.assertEqual(st["rc"], "0", self.section("view %s %s" % (name, when)))
        doc = json.loads(self.section("record %s %s" % (name, when)))
        self.assertIsNone(doc["kvm_stats"]["error"])
        vms = [v for v in doc["vms"] if v["pid"] == self.pid_of(name)]
        self.assertEqual(len(vms), 1, doc["vms"])
        return vms[0]

    def test_batch_in_the_hold_is_kvmwalks_print(self):
        for name, _ in SHAPES:
            with self.subTest(shape=name):
                cells = self.row(name, "held")
                self.assertIsNotNone(cells, self.section("batch %s held" % name))
                self.assertEqual(cells[KVM_UNS],
                                 str(self.printed(name)["mmu_unsync"]))
                self.assertEqual(cells[PER_SYNC], ["-"] * 6)
        self.assertEqual(self.row("exitzap", "held")[KVM_UNS], "20")

    def test_record_in_the_hold(self):
        for name, args in SHAPES:
            with self.subTest(shape=name):
                v = self.record_vm(name, "held")
                printed = self.printed(name)
                self.assertIsNotNone(v["kvm"])
                self.assertEqual(v["kvm"]["vms"], 1)
                for stat in KVM_STATS:
                    self.assertEqual(v["kvm"][stat], printed[stat], stat)
                c = v["counters"]
                self.assertEqual(record_figures(c),
                                 model_keys(model_held(args)))
                self.assertEqual(c["pages_unsynced"] - c["pages_synced"],
                                 v["kvm"]["mmu_unsync"])
                print("\ndevtools kvm %s: record unsynced %d - synced %d = "
                      "kvm.mmu_unsync %d" % (name, c["pages_unsynced"],
                                             c["pages_synced"],
                                             v["kvm"]["mmu_unsync"]))
        self.assertEqual(self.record_vm("exitzap", "held")["kvm"]["mmu_unsync"],
                         20)
        self.assertGreater(self.printed("floodzap")["mmu_flooded"], 0)

    def test_batch_after_destroy_shows_no_kvm(self):
        for name, _ in SHAPES:
            with self.subTest(shape=name):
                # the row stays (the agent keeps an exited VMM's counts)
                cells = self.row(name, "after")
                self.assertIsNotNone(cells,
                                     self.section("batch %s after" % name))
                self.assertEqual(cells[KVM_UNS], "-")

    def test_record_after_destroy_keeps_the_last_kvm_read(self):
        for name, args in SHAPES:
            with self.subTest(shape=name):
                v = self.record_vm(name, "after")
                printed = self.printed(name)
                self.assertIsNotNone(v["kvm"])
                for stat in KVM_STATS:
                    self.assertEqual(v["kvm"][stat], printed[stat], stat)
                c = v["counters"]
                self.assertEqual(record_figures(c), model_keys(model(args)))
                self.assertEqual(c["pages_unsynced"] - c["pages_synced"], 0)


if __name__ == "__main__":
    unittest.main()
