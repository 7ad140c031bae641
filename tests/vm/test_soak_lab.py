#!/usr/bin/env python3
"""Soak the agent in the lab: thousands of scrapes while VMs come and go.

tests/vm/scenarios/soak.sh runs the agent on the lab's shadow-paging KVM
and, in three phases under the same load, four busybox wget loops (ten
scrapes per wget), two slow clients (each request sent in two halves a
second apart) and one client that connects and sends nothing, while
kvmwalk VMs run one after another (KUE_SOAK_RUNS runs, two shapes taken
in turn: restarts and a flood zap, so sync and zap records both flow).

Asserted, with no timed bound anywhere (every client makes a fixed number
of requests):
  - every scrape answered with a whole page, no failure;
  - every VM's final counters, as the scrapes published them, equal the
    model's prediction for its run: nothing lost under load;
  - the global figures (histogram counts and buckets, ring-buffer records)
    equal the sum of the predictions; no ring-buffer drop, no anomaly;
  - every VM dropped at the end, clean SIGTERM exit;
  - RSS flat: the last phase ends less than 10% above the one before (the
    same load again: a leak per scrape, connection or VM grows it in every
    phase; the allocator's high-water mark after a burst moves once, early);
  - no sanitizer report in the agent's stderr (with the ASan+UBSan build,
    LeakSanitizer runs at exit: class SoakLabSan).

Agent: KUE_AGENT, else build/kvm-unsync-exporter; SoakLabSan uses
build/san/kvm-unsync-exporter (make OUTPUT=build/san SAN=1) and skips
when it is not built.
"""

import os
import unittest

from labagent import (AGENT, ANOMALIES, CTX, KVMWALK, SAN_AGENT, SAN_ENV,
                      LabSections, NoSanitizerReport, agent_figures,
                      kv_lines, model, require, run_lines, shapes_env)
from promtext import parse_metrics, select

SHAPES = [("restarts", "--tables 40 --rounds 10"),
          ("floodzap", "--tables 20 --dirs 2 --flood-zap")]
RUNS = 20
WARMUP_RUNS = 2
WARMUP = 100            # scrapes before the first RSS reading
SCRAPERS = 4
SCRAPES = 500           # per scraper and phase
SLOW = 2
RSS_GROWTH = 0.10       # last phase vs the one before


class SoakLab(NoSanitizerReport, LabSections, unittest.TestCase):
    agent = AGENT
    env = {}
    scrapes = SCRAPES
    check_rss = True

    @classmethod
    def setUpClass(cls):
        require((cls.agent, KVMWALK), "soak needs %s (make all)")
        env = {
            "KUE_SOAK_SHAPES": shapes_env(SHAPES),
            "KUE_SOAK_RUNS": str(RUNS),
            "KUE_SOAK_WARMUP_RUNS": str(WARMUP_RUNS),
            "KUE_SOAK_WARMUP": str(WARMUP),
            "KUE_SOAK_SCRAPERS": str(SCRAPERS),
            "KUE_SOAK_SCRAPES": str(cls.scrapes),
            "KUE_SOAK_SLOW": str(SLOW),
        }
        env.update(cls.env)
        cls.boot("soak.sh", [cls.agent, KVMWALK], 600, env=env)
        cls.runs = run_lines(cls.sec.get("runs", ""))
        cache = {}
        cls.predicted = []
        for _, _, _, args in cls.runs:
            if args not in cache:
                cache[args] = model(args)
            cls.predicted.append(cache[args])

    def test_every_run_ok(self):
        self.assertEqual(len(self.runs), RUNS, self.section("runs"))
        for name, pid, rc, args in self.runs:
            self.assertEqual(rc, "0", (name, pid, args))

    def test_every_scrape_answered(self):
        total = 0
        clients = {}
        for line in self.section("clients").splitlines():
            parts = line.split()
            f = kv_lines("\n".join(parts[1:]))
            clients[parts[0]] = f
            with self.subTest(client=parts[0]):
                self.assertEqual(f["fail"], "0", line)
                self.assertEqual(f["ok"], f["pages"], line)
                self.assertGreater(int(f["ok"]), 0, line)
            total += int(f["ok"])
        for ph in "abc":
            for c in range(1, SCRAPERS + 1):
                self.assertEqual(clients["%ss%d" % (ph, c)]["ok"],
                                 str(self.scrapes))
            for c in range(1, SLOW + 1):
                self.assertIn("%sslow%d" % (ph, c), clients)
        self.assertGreaterEqual(total, 3 * SCRAPERS * self.scrapes + WARMUP)
        print("\nsoak: %d scrapes in all, %s" % (
            total, ", ".join("%s=%s" % (k, v["ok"])
                             for k, v in sorted(clients.items()))))

    def test_every_vm_equals_model(self):
        series = parse_metrics(self.section("vm series"))
        for (name, pid, _, args), p in zip(self.runs, self.predicted):
            with self.subTest(run=name, pid=pid):
                got = agent_figures(series, pid)
                want = {k: p[k] for k in got}
                self.assertEqual(got, want, args)
                vms = {dict(lbl).get("vm") for (n, lbl), _ in series.items()
                       if dict(lbl).get("pid") == pid}
                self.assertEqual(len(vms), 1, vms)
                self.assertTrue(vms.pop().startswith(name + "-"))

    def test_totals_equal_model(self):
        s = self.final()
        calls = sum(sum(p["sync_calls"].values()) for p in self.predicted)
        self.assertEqual(select(s, "kvm_unsync_sync_duration_seconds_count"),
                         [calls])
        for ctx in CTX:
            want = [sum(p["pvec_depth"][ctx][b] for p in self.predicted)
                    for b in range(17)]
            got = [select(s, "kvm_unsync_pvec_depth_bucket", context=ctx,
                          le=str(b))[0] for b in range(17)]
            cum = [sum(want[:b + 1]) for b in range(17)]
            self.assertEqual(got, cum, ctx)
            self.assertEqual(select(s, "kvm_unsync_pvec_depth_count",
                                    context=ctx), [sum(want)], ctx)
        # Without --trace nothing goes through the ring buffer: no
        # per-sync record (bpf/unsync.bpf.c, trace_syncs), and a VM's name
        # is kept in vm_names.
        self.assertEqual(select(s, "kvm_unsync_ringbuf_events_total"), [0])
        print("\nsoak: %d VMs, %d sync calls" % (len(self.runs), calls))

    def test_nothing_lost_no_anomaly(self):
        s = self.final()
        self.assert_zero(s, ("kvm_unsync_ringbuf_dropped_total",) + ANOMALIES)

    def test_every_vm_dropped(self):
        s = self.final()
        self.assertEqual(select(s, "kvm_unsync_vms"), [0])
        self.assertEqual(select(s, "kvm_unsync_sync_calls_total"), [])

    def test_rss_flat(self):
        r = {k: int(v) for k, v in kv_lines(self.section("rss")).items()}
        print("\nsoak: VmRSS warm %d kB, after phase a %d kB, after phase b "
              "%d kB, after phase c %d kB, peak %d kB"
              % (r["warm"], r["mid"], r["late"], r["end"], r["hwm"]))
        if not self.check_rss:
            self.skipTest("ASan's allocator and quarantine: RSS not "
                          "comparable; LeakSanitizer checks leaks instead")
        self.assertLess(r["end"], r["late"] * (1 + RSS_GROWTH), r)


@unittest.skipUnless(os.path.exists(SAN_AGENT),
                     "%s not built (make OUTPUT=build/san SAN=1)" % SAN_AGENT)
class SoakLabSan(SoakLab):
    """The same soak with the ASan+UBSan build: LeakSanitizer at exit."""
    agent = SAN_AGENT
    env = SAN_ENV
    scrapes = 250
    check_rss = False


if __name__ == "__main__":
    unittest.main()
