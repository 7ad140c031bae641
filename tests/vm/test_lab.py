#!/usr/bin/env python3
"""The agent on a real shadow-paging KVM, checked against the model.

For each attach mode (fentry, kprobe) one lab VM boots Debian's stock
kernel, starts the agent forced into that mode, runs every workload shape
(tests/vm/SHAPES.md) as its own VMM process, and prints the agent's
/metrics, its pinned maps (bpftool), its per-sync trace records and the
kernel's own kvmmmu tracepoint counts (tests/vm/scenarios/agent.sh).

Every figure is compared with tests/model/predict.py, which simulates the
walk from the kernel source and never sees the agent's output, and with the
kernel's tracepoints.  A mode whose walk hooks did not attach fails: no
count can pass by being zero because nothing was hooked.
"""

import os
import shutil
import subprocess
import unittest

from labagent import (AGENT, AGENT_THREADS, ANOMALIES, BPFTOOL, CAP_BPF,
                      CAP_PERFMON, CAP_SYS_ADMIN, CHRT, CTX, GUESTS, KVMWALK,
                      SHAPES, SYNC_FIELDS, WALK_HOOKS, LabSections,
                      agent_figures, build_kernel, guests_of, kv_lines, lab,
                      map_figures, map_values, model, require, run_agent,
                      thread_caps, thread_names, trace_records)
from promtext import parse_metrics, select
from shadow import Recorder

# The report of a guest level the model gives no figure.
ZERO_LEVEL = Recorder().report()


class LabRun(LabSections):
    """What every lab run must show, whatever it ran: the scenario ended
    well (LabSections), the kernel logged no warning, the agent exited
    cleanly."""

    def test_kernel_stayed_healthy(self):
        dmesg = self.sec.get("dmesg")
        if dmesg is None:
            self.skipTest("this lab prints no dmesg section")
        for bad in ("WARNING:", "BUG:", "possible circular locking",
                    "possible recursive locking", "Call Trace"):
            self.assertNotIn(bad, dmesg)

    def test_clean_shutdown(self):
        out = kv_lines(self.section("shutdown"))
        self.assertEqual(out["rc"], "0")
        self.assertEqual(out["pins"], "0")


class AgentRun(LabSections):
    """The agent in one attach mode ran each of `shapes` (agent.sh) on a
    host (`host`: QEMU's CPU and kvm_amd's options; None: the lab's
    default): every VM's figures, as scraped, pinned and traced, equal the
    model's (`predict`), and the kernel's tracepoints agree.  The figures
    of each guest label equal the model's of that level (`predict_levels`);
    a VM has no guest label the model gives it no figures for.  Also the
    base of test_nested_lab's agent tests."""
    mode = None
    trace = "syncs"
    kernel = None		# tests/kernel/build.sh flavour; None: Debian's
    suite = None		# with kernel None: that Debian suite's kernel
    release = None		# the model's stock release (None: 6.1)
    variant = "stock"		# what the agent must detect, and the model
    agent_args = ""		# more agent flags
    shapes = SHAPES
    host = None

    @classmethod
    def predict(cls, args):
        return model(args, cls.variant, cls.release)

    @classmethod
    def predict_levels(cls, args):
        """{guest label: the model's report}: a plain guest's pages are
        all role.guest_mode 0, guest="l1", and it has no "l2" series."""
        return {"l1": cls.predict(args)}

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, BPFTOOL, CHRT))
        kernel = build_kernel(cls.kernel) if cls.kernel else None
        host = cls.host or {"qemu": [], "env": {}}
        cls.rc, cls.log, cls.sec = run_agent(
            cls.mode, cls.trace, kernel, cls.shapes, qemu_args=host["qemu"],
            env=host["env"], suite=cls.suite, agent_args=cls.agent_args)
        cls.last_log = lab.last_log
        cls.predicted = {n: cls.predict(a) for n, a in cls.shapes}
        cls.levels = {n: cls.predict_levels(a) for n, a in cls.shapes}
        cls.records = trace_records(cls.sec)

    def test_metrics_equal_model(self):
        for name, args in self.shapes:
            pid = self.pid_of(name)
            s = parse_metrics(self.section("metrics " + name))
            with self.subTest(shape=name):
                self.assertEqual(guests_of(s, pid), sorted(self.levels[name]))
            for guest, report in self.levels[name].items():
                with self.subTest(shape=name, guest=guest):
                    got = agent_figures(s, pid, guest)
                    want = {k: report[k] for k in got}
                    self.assertEqual(got, want, "%s (%s)" % (name, args))

    def test_pinned_maps_equal_model(self):
        for name, _ in self.shapes:
            pid = self.pid_of(name)
            v = map_values(self.section("maps " + name), pid)
            for guest in GUESTS:
                with self.subTest(shape=name, guest=guest):
                    self.assertIsNotNone(v, "pid %d not in pinned vm_stats"
                                         % pid)
                    got = map_figures(v, guest)
                    report = self.levels[name].get(guest, ZERO_LEVEL)
                    want = {k: report[k] for k in got}
                    self.assertEqual(got, want)

    def test_kernel_tracepoints_agree(self):
        for name, _ in self.shapes:
            with self.subTest(shape=name):
                tp = kv_lines(self.section("tp " + name))
                self.assertEqual(tp["lost"], "0")
                self.assertEqual(int(tp["sync_page"]),
                                 self.predicted[name]["pages_synced"])
                self.assertEqual(int(tp["unsync_page"]),
                                 self.predicted[name]["pages_unsynced"])

    def test_sync_records_equal_model(self):
        for name, _ in self.shapes:
            pid = self.pid_of(name)
            mine = [r for r in self.records
                    if r["pid"] == pid and r["type"] == "sync"]
            with self.subTest(shape=name):
                self.assertLessEqual({r["guest"] for r in mine},
                                     set(self.levels[name]))
                for r in mine:
                    self.assertEqual(r["result"], 0)
                    self.assertGreater(r["duration_ns"], 0)
            for guest, report in self.levels[name].items():
                with self.subTest(shape=name, guest=guest):
                    got = [{f: r[f] for f in SYNC_FIELDS} for r in mine
                           if r["guest"] == guest]
                    want = [{f: int(s[f]) for f in SYNC_FIELDS}
                            for s in report["syncs"]]
                    self.assertEqual(got, want)

    def test_zap_records_equal_model(self):
        for name, _ in self.shapes:
            pid = self.pid_of(name)
            zap = [r for r in self.records
                   if r["pid"] == pid and r["type"] == "zap_walk"]
            with self.subTest(shape=name):
                self.assertLessEqual({r["guest"] for r in zap},
                                     set(self.levels[name]))
            for guest, p in self.levels[name].items():
                with self.subTest(shape=name, guest=guest):
                    mine = [r for r in zap if r["guest"] == guest]
                    self.assertEqual(len(mine),
                                     sum(p["walks"]["zap"].values()))
                    self.assertEqual(sum(r["frames"] for r in mine),
                                     p["frames"]["zap"])

    def test_histograms_equal_model(self):
        h = map_values(self.section("hists"), 0)
        self.assertIsNotNone(h)
        for i, ctx in enumerate(CTX):
            want = [sum(self.predicted[n]["pvec_depth"][ctx][b]
                        for n, _ in self.shapes) for b in range(17)]
            self.assertEqual(h["pvec_depth"][i], want, ctx)
        calls = sum(sum(p["sync_calls"].values())
                    for p in self.predicted.values())
        self.assertEqual(sum(h["sync_duration"]), calls)
        s = parse_metrics(self.section("metrics final"))
        self.assertEqual(select(s, "kvm_unsync_sync_duration_seconds_count"),
                         [calls])
        for ctx in CTX:
            want = sum(sum(p["pvec_depth"][ctx]) for p in
                       self.predicted.values())
            self.assertEqual(select(s, "kvm_unsync_pvec_depth_count",
                                    context=ctx), [want])
            self.assertEqual(select(s, "kvm_unsync_pvec_depth_bucket",
                                    context=ctx, le="+Inf"), [want])



class LabMode(AgentRun, LabRun):
    """Mixed into one TestCase per kernel and attach mode."""
    # How site="clear_parents" is counted here: hook, derived or absent
    # (derived on every stock kernel unless --clear-parents=hook)
    clear_parents = "derived"

    @classmethod
    def hooks(cls):
        """The function hooks the agent attaches on this kernel."""
        if cls.clear_parents == "hook":
            return WALK_HOOKS
        return WALK_HOOKS[:2]

    def test_check_reports_mode(self):
        text = self.section("check")
        self.assertEqual(kv_lines(text).get("rc"), "0", text)
        for hook in WALK_HOOKS:
            line = [ln for ln in text.splitlines() if ln.startswith(hook + " ")]
            self.assertEqual(len(line), 1, text)
            want = [self.mode, "yes"] if hook in self.hooks() else ["none", "no"]
            self.assertEqual(line[0].split()[1:3], want, text)

    def test_probes_attached_in_mode(self):
        s = parse_metrics(self.section("metrics final"))
        for hook in self.hooks():
            self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                    probe=hook, mode=self.mode), [1], hook)
        for hook in set(WALK_HOOKS) - set(self.hooks()):
            self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                    probe=hook, mode="none"), [0], hook)
        for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertEqual(select(s, "kvm_unsync_probe_attached", probe=tp,
                                    mode="tracepoint"), [1], tp)

    def test_no_loss_no_anomaly(self):
        s = parse_metrics(self.section("metrics final"))
        self.assert_zero(s, ("kvm_unsync_ringbuf_dropped_total",) + ANOMALIES)

    def test_variant_detected(self):
        s = parse_metrics(self.section("metrics final"))
        info = [lbl for (n, lbl), _ in s.items()
                if n == "kvm_unsync_kernel_info"]
        self.assertEqual(len(info), 1)
        self.assertEqual(dict(info[0])["variant"], self.variant)
        if not self.kernel:
            self.assertEqual(dict(info[0])["release"],
                             lab.kernel(self.suite)["RELEASE"])

    def test_clears_sources(self):
        """How each clear site is counted, in /metrics and in --check; a
        derived site is still published, and nothing is "missing"."""
        s = parse_metrics(self.section("metrics final"))
        src = {dict(lbl)["site"]: dict(lbl)["source"]
               for (n, lbl), v in s.items()
               if n == "kvm_unsync_bitmap_clears_source" and v == 1}
        self.assertEqual(src, {"walk": "hook",
                               "clear_parents": self.clear_parents})
        check = self.section("check")
        line = [ln for ln in check.splitlines()
                if ln.startswith("bitmap clears, site clear_parents: ")]
        self.assertEqual(len(line), 1, check)
        self.assertTrue(line[0].startswith(
            "bitmap clears, site clear_parents: %s" % self.clear_parents),
            line[0])

    def test_vm_named_as_qemu_would_be(self):
        for name, _ in self.shapes:
            with self.subTest(shape=name):
                pid = self.pid_of(name)
                s = parse_metrics(self.section("metrics " + name))
                vms = {dict(lbl).get("vm") for (n, lbl), _ in s.items()
                       if n == "kvm_unsync_sync_calls_total" and
                       dict(lbl).get("pid") == str(pid)}
                self.assertEqual(vms, {name})


    def test_exited_vms_dropped_after_last_scrape(self):
        # Each VMM has exited before the scrape that follows it.  A VM seen
        # dead is published once more, then dropped: it may appear in the
        # next shape's scrape, never in the one after.
        names = [n for n, _ in self.shapes] + ["final", "after"]
        for i, name in enumerate(names[:len(self.shapes)]):
            pid = str(self.pid_of(name))
            for later in names[i + 2:]:
                s = parse_metrics(self.section("metrics " + later))
                self.assertEqual(select(s, "kvm_unsync_sync_calls_total",
                                        pid=pid), [], (name, later))
        s = parse_metrics(self.section("metrics after"))
        self.assertEqual(select(s, "kvm_unsync_vms"), [0])
        self.assertEqual(select(s, "kvm_unsync_sync_calls_total"), [])

    @unittest.skipUnless(shutil.which("promtool"),
                         "promtool not installed (Debian package prometheus)")
    def test_promtool_accepts_every_scrape(self):
        for name in [n for n, _ in self.shapes] + ["final", "after"]:
            with self.subTest(scrape=name):
                r = subprocess.run(["promtool", "check", "metrics"],
                                   input=self.section("metrics " + name),
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_frame_records_equal_model(self):
        frames = [r for r in self.records if r["type"] == "frame"]
        if self.trace != "frames":
            self.assertEqual(frames, [], "frame records without --trace=frames")
            return
        for name, _ in self.shapes:
            with self.subTest(shape=name):
                pid = self.pid_of(name)
                p = self.predicted[name]
                for ctx in CTX:
                    mine = [r for r in frames
                            if r["pid"] == pid and r["context"] == ctx]
                    self.assertEqual(len(mine), p["frames"][ctx], ctx)
                    self.assertEqual(sum(r["ret"] == -28 for r in mine),
                                     p["enospc_frames"][ctx], ctx)
                    self.assertEqual(sum(r["cleared"] for r in mine),
                                     p["clears"][ctx]["walk"], ctx)
                    top = [r for r in mine if r["depth"] == 0]
                    self.assertEqual(len(top),
                                     sum(p["walks"][ctx].values()), ctx)
                    self.assertEqual(sorted(r["nr"] for r in top),
                                     sorted(b for b, n in
                                            enumerate(p["pvec_depth"][ctx])
                                            for _ in range(n)), ctx)


class LabFentry(LabMode, unittest.TestCase):
    mode = "fentry"
    trace = "frames"


class LabKprobe(LabMode, unittest.TestCase):
    mode = "kprobe"


@unittest.skipIf(os.environ.get("KUE_SKIP_PATCHED") == "1",
                 "KUE_SKIP_PATCHED=1: no patched-kernel lab")
class LabPatchedFentry(LabMode, unittest.TestCase):
    mode = "fentry"
    trace = "frames"
    kernel = variant = "patched"
    clear_parents = "absent"


@unittest.skipIf(os.environ.get("KUE_SKIP_PATCHED") == "1",
                 "KUE_SKIP_PATCHED=1: no patched-kernel lab")
class LabPatchedKprobe(LabMode, unittest.TestCase):
    mode = "kprobe"
    kernel = variant = "patched"
    clear_parents = "absent"


class LabNoKvm(LabRun, unittest.TestCase):
    """Started on a host whose KVM module is not loaded yet: --check
    refuses; the daemon waits, serving its own metrics, with its HTTP
    thread already stripped of every capability, then attaches once KVM
    is loaded, drops the main thread's capabilities too, and counts a VM
    exactly as the model predicts.  kvm_amd unloaded and loaded again
    under it changes nothing (the hooks are in kvm.ko); kvm.ko itself
    cannot be unloaded until the daemon stops."""

    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, CHRT))
        cls.boot("nokvm.sh", [AGENT, KVMWALK, CHRT], 300, load_kvm=False)

    def test_check_refuses_with_one_line(self):
        lines = self.section("nokvm").splitlines()
        self.assertEqual(lines[0], "rc=1")
        self.assertEqual(len(lines), 2, self.section("nokvm"))
        self.assertIn("KVM is not loaded", lines[1])
        self.assertIn("modprobe", lines[1])

    def test_waits_serving_own_metrics(self):
        self.assertIn("KVM not loaded yet: waiting",
                      self.section("waiting log"))
        s = parse_metrics(self.section("waiting"))
        for hook in WALK_HOOKS:
            self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                    probe=hook, mode="none"), [0], hook)
        for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertEqual(select(s, "kvm_unsync_probe_attached", probe=tp,
                                    mode="tracepoint"), [0], tp)
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])
        self.assertEqual(len(select(s, "kvm_unsync_build_info")), 1)

    def test_http_thread_capless_while_main_waits(self):
        pid, t = thread_caps(self.section("waiting threads"))
        self.assertEqual(thread_names(t), AGENT_THREADS, t)
        need = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_ADMIN)
        main = t[pid][1]
        self.assertEqual(int(main["CapEff"], 16) & need, need, main)
        self.assert_capless({tid: v for tid, v in t.items() if tid != pid})

    def test_attaches_once_loaded_then_drops_all(self):
        s = parse_metrics(self.section("attached"))
        self.assert_walk_hooks_attached(s)
        for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertEqual(select(s, "kvm_unsync_probe_attached", probe=tp,
                                    mode="tracepoint"), [1], tp)
        self.assertIn("KVM loaded: attaching", self.section("shutdown"))
        pid, t = thread_caps(self.section("attached threads"))
        self.assertEqual(thread_names(t), AGENT_THREADS, t)
        self.assert_capless(t)

    def test_late_vm_counted_as_the_model_predicts(self):
        pid = str(self.pid_of("late"))
        want = model("--tables 8")
        s = parse_metrics(self.section("metrics late"))
        for r in ("ok", "eintr"):
            self.assertEqual(select(s, "kvm_unsync_sync_calls_total",
                                    pid=pid, result=r),
                             [want["sync_calls"][r]], r)
        self.assertGreater(want["sync_calls"]["ok"], 0)
        self.assertEqual(select(s, "kvm_unsync_vms_folded_total"), [0])
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])

    def test_vendor_module_reloaded_under_it_still_counted(self):
        kv = kv_lines(self.section("reload kvm_amd"))
        self.assertEqual((kv.get("rmmod_rc"), kv.get("load_rc")), ("0", "0"))
        s = parse_metrics(self.section("metrics reloaded"))
        got = agent_figures(s, self.pid_of("reloaded"))
        want = model("--tables 8")
        self.assertEqual(got, {k: want[k] for k in got})
        self.assert_walk_hooks_attached(s)

    def test_kvm_module_held_until_it_stops(self):
        # its programs hold kvm.ko: no probe can vanish under it unseen
        text = self.section("rmmod kvm attached")
        self.assertNotEqual(kv_lines(text).get("rc"), "0", text)
        self.assertEqual(kv_lines(self.section("rmmod kvm stopped")).get("rc"),
                         "0")


if __name__ == "__main__":
    unittest.main()
