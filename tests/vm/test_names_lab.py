#!/usr/bin/env python3
"""Every VM under its QEMU name, however briefly it lived.

tests/vm/scenarios/names.sh runs the agent, and --batch --record beside it
(its pins, read-only), on a lab loaded by a busy loop at the readers'
priority; then several kvmwalk runs, each named with QEMU's
`-name guest=NAME`, under SCHED_FIFO with real-time throttling off: from
a VM's first event to its exit no reader runs at all, so /proc can never
name it.  The agent is not scraped until every VM is gone.

Asserted, for every VM, under the name its command line gave it:
  - the pinned vm_names map has it, as bpftool prints it (BTF: strings),
    with the VMM's comm and the -name value;
  - the daemon's /metrics publishes its series under it, with the counts
    the model predicts;
  - --batch has a row for it, and the record a VM of that name and pid;
  - once the daemon reaped the VM's series, its name is gone from the map
    too, and no name was ever lost (kvm_unsync_vm_names_full_total 0).
Each VM lived less than one --batch interval (the lifetimes are printed).
"""

import json
import os
import unittest

from labagent import (AGENT, ANOMALIES, BPFTOOL, CHRT, KVMWALK, LabSections,
                      NoSanitizerReport, agent_figures, kv_lines, model,
                      require)
from promtext import parse_metrics
from test_devtools_lab import screen_rows_list

NAMES = ["brief-%d" % i for i in range(1, 7)]
SHAPE = "--tables 12"
INTERVAL = 10		# --batch's, seconds: 4 times the longest lifetime seen here


def dump_names(text):
    """{pid: formatted value} of a `bpftool -j map dump` of vm_names."""
    out = {}
    for e in json.loads(text):
        f = e["formatted"]
        out[f["key"]] = f["value"]
    return out


class Names(NoSanitizerReport, LabSections, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, BPFTOOL, CHRT))
        cls.boot("names.sh", [AGENT, KVMWALK, BPFTOOL, CHRT], 900,
                 env={"KUE_NAMES": " ".join(NAMES),
                      "KUE_NAMES_SHAPE": SHAPE.replace(" ", ","),
                      "KUE_INTERVAL": str(INTERVAL)})

    def pids(self):
        return {name: self.pid_of(name) for name in NAMES}

    def test_lifetimes_under_one_interval(self):
        lines = self.section("lifetimes").split("\n")
        got = {l.split()[0]: int(l.split("cs=")[1]) for l in lines if l}
        print("\nnames: lifetimes (1/100 s): %s" % got)
        self.assertEqual(sorted(got), sorted(NAMES))
        for name, cs in got.items():
            self.assertLess(cs, INTERVAL * 100, name)

    def test_pinned_map_has_every_name(self):
        names = dump_names(self.section("names"))
        for name, pid in self.pids().items():
            with self.subTest(vm=name):
                v = names.get(pid)
                self.assertIsNotNone(v, names)
                self.assertEqual(v["name_opt"], "guest=" + name)
                self.assertEqual(v["comm"], "kvmwalk")
                self.assertGreater(v["args_len"], 0)

    def test_metrics_name_every_vm_with_the_models_counts(self):
        samples = parse_metrics(self.section("metrics"))
        want = model(SHAPE)
        for name, pid in self.pids().items():
            with self.subTest(vm=name):
                vms = {dict(lbl)["vm"] for (n, lbl), _ in samples.items()
                       if dict(lbl).get("pid") == str(pid)}
                self.assertEqual(vms, {name})
                got = agent_figures(samples, pid)
                self.assertEqual(got, {k: want[k] for k in got})

    def test_batch_names_every_vm(self):
        text = self.section("batch")
        rows = {(cells[0], cells[1]) for block in text.split("\n\n")
                for cells in screen_rows_list(block)}
        self.assertEqual(kv_lines(self.section("batch-stderr"))["rc"], "0")
        for name, pid in self.pids().items():
            self.assertIn((name, str(pid)), rows)
        self.assertNotIn("unknown", {r[0] for r in rows})

    def test_record_names_every_vm(self):
        doc = json.loads(self.section("record"))
        got = {v["name"]: v["pid"] for v in doc["vms"]}
        self.assertEqual(got, self.pids())

    def test_names_reaped_with_the_series_none_lost(self):
        final = parse_metrics(self.section("metrics final"))
        self.assertEqual(dump_names(self.section("names reaped")), {})
        self.assert_zero(final, ("kvm_unsync_vm_names_full_total",) +
                         ANOMALIES)


if __name__ == "__main__":
    unittest.main()
