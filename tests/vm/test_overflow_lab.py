#!/usr/bin/env python3
"""The ring buffer overflows; the counters lose nothing, the loss is counted.

tests/vm/scenarios/overflow.sh runs the agent with a 4 KiB ring buffer and
--trace=frames (one record per walk frame besides one per sync call and
per zap walk: bpf/unsync.bpf.c; nothing else goes through the ring).  Three
kvmwalk runs (restarts shape: 10 syncs, 120 frames each) go while the
agent consumes, three more while it is stopped.

The stop is deliberate.  Measured in the lab, the consumer may keep up
with a 4 KiB buffer while it runs.  So the test stalls
the consumer (SIGSTOP for the second batch of runs, then SIGCONT): the
buffer must fill whatever the scheduling, and the records that do not fit
are dropped in the kernel.

Asserted:
  - kvm_unsync_ringbuf_dropped_total > 0;
  - ringbuf_events_total + ringbuf_dropped_total == the records produced,
    from the model: sync calls + zap walks + frames;
  - the --trace output has one line per consumed record;
  - the in-kernel aggregates stay exact: every VM's counters, and the
    histogram totals, equal the model;
  - no other anomaly, clean exit, no sanitizer report.
"""

import os
import unittest

from labagent import (AGENT, ANOMALIES, KVMWALK, LabSections,
                      NoSanitizerReport, agent_figures, kv_lines, model,
                      require, run_lines)
from promtext import parse_metrics, select

SHAPE = "--tables 40 --rounds 10"
LIVE = 3
STALLED = 3
RINGBUF_KIB = 4


def produced(p):
    """Records a run makes with --trace=frames."""
    return (sum(p["sync_calls"].values()) + sum(p["walks"]["zap"].values())
            + sum(p["frames"].values()))


class Overflow(NoSanitizerReport, LabSections, unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK), "overflow needs %s (make all)")
        env = {"KUE_OVF_SHAPE": SHAPE.replace(" ", ","),
               "KUE_OVF_LIVE": str(LIVE), "KUE_OVF_STALLED": str(STALLED),
               "KUE_OVF_RINGBUF_KIB": str(RINGBUF_KIB)}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        cls.boot("overflow.sh", [AGENT, KVMWALK], 300, env=env)
        cls.runs = [(name, pid, rc) for name, pid, rc, _ in
                    run_lines(cls.sec.get("runs", ""))]
        cls.p = model(SHAPE)

    def test_every_run_ok(self):
        self.assertEqual([(n, rc) for n, _, rc in self.runs],
                         [("live", "0")] * LIVE + [("stalled", "0")] * STALLED)

    def test_loss_counted_and_accounted(self):
        s = self.final()
        dropped = select(s, "kvm_unsync_ringbuf_dropped_total")[0]
        events = select(s, "kvm_unsync_ringbuf_events_total")[0]
        want = produced(self.p) * len(self.runs)
        print("\noverflow: %d records produced, %d consumed, %d dropped "
              "(%d KiB ring buffer)" % (want, events, dropped, RINGBUF_KIB))
        self.assertGreater(dropped, 0)
        self.assertEqual(events + dropped, want)

    def test_trace_has_every_consumed_record(self):
        s = self.final()
        events = select(s, "kvm_unsync_ringbuf_events_total")[0]
        t = {k: int(v) for k, v in kv_lines(self.section("trace")).items()}
        self.assertEqual(t["lines"], t["sync"] + t["zap_walk"] + t["frame"])
        # Every consumed record is a printed one.
        self.assertEqual(t["lines"], events)
        self.assertLessEqual(t["sync"], sum(self.p["sync_calls"].values())
                             * len(self.runs))
        self.assertLessEqual(t["frame"], sum(self.p["frames"].values())
                             * len(self.runs))

    def test_every_vm_equals_model(self):
        series = parse_metrics(self.section("vm series"))
        for name, pid, _ in self.runs:
            with self.subTest(run=name, pid=pid):
                got = agent_figures(series, pid)
                want = {k: self.p[k] for k in got}
                self.assertEqual(got, want)

    def test_histograms_equal_model(self):
        s = self.final()
        n = len(self.runs)
        self.assertEqual(select(s, "kvm_unsync_sync_duration_seconds_count"),
                         [sum(self.p["sync_calls"].values()) * n])
        for ctx in ("sync", "zap"):
            self.assertEqual(select(s, "kvm_unsync_pvec_depth_count",
                                    context=ctx),
                             [sum(self.p["pvec_depth"][ctx]) * n], ctx)

    def test_no_other_anomaly(self):
        s = self.final()
        self.assert_zero(s, ANOMALIES)
        self.assertEqual(select(s, "kvm_unsync_vms"), [0])


if __name__ == "__main__":
    unittest.main()
