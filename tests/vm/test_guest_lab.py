#!/usr/bin/env python3
"""The agent on a real Linux guest, checked against the kernel's own counts.

One lab VM per kernel (Debian 12's 6.1, and sid's, the newest the lab
has) runs QEMU on the lab's KVM (shadow paging, kvm_amd npt=0) as the VMM
of a Linux guest: Debian 12's own kernel with a busybox initramfs that
forks and execs KUE_GUEST_FORKS (20) short processes and powers off
(tests/vm/labguest.py).  Two agents watch it side by side, one in fentry
mode and one in kprobe mode, each with its own pins and port
(tests/vm/scenarios/guest.sh): they start before QEMU and are scraped
after QEMU exited, when they publish the VM once more.

The model cannot predict a Linux guest, so the reference is what the
kernel itself did in the same run, measured without BPF: kprobe events on
mmu_sync_children, __mmu_unsync_walk and mmu_zap_unsync_children (entry
and return) and the kvmmmu sync/unsync page tracepoints, filtered to
QEMU's threads and read in order per thread (guest/trace.awk): sync calls
by result, top-level walks (recursion depth 0) by context and result,
frames by context, each walk's leaves (the kvm_mmu_sync_page events its
batch fires), pages synced and unsynced, and the bitmap clears by site:
kprobe events on the very instructions that decrement unsync_children
(clear_unsync_child_bit() is inlined everywhere; labguest.clear_sites()
finds them by disassembling the kernel's kvm.ko here), a count the agent
never makes (it reads unsync_children at a frame's entry and exit, or
derives the clear_parents clears from the page vector where that function
is inlined).  Every per-VM figure the agent publishes for that VM equals
those.  A run where the guest made no sync, a probe of either side did
not attach, or the trace lost an event fails.
"""

import os
import tempfile
import unittest

import labguest
from labagent import (AGENT, ANOMALIES, LabSections, agent_figures,
                      guests_of, kv_lines, lab, require)
from promtext import parse_metrics, select
from test_kernels_lab import suite_kernel

FORKS = int(os.environ.get("KUE_GUEST_FORKS", "20"))
MODES = ("fentry", "kprobe")
CTX = ("sync", "zap")


def kernel_figures(kv):
    """The kernel's figures (a "kernel M" section) as agent_figures()
    keys, clears left out."""
    n = {k: int(v) for k, v in kv.items()}
    return {
        "sync_calls": {"ok": n["sync_calls.ok"],
                       "eintr": n["sync_calls.eintr"]},
        "walks": {c: {r: n["walks.%s.%s" % (c, r)]
                      for r in ("done", "enospc")} for c in CTX},
        "frames": {c: n["frames." + c] for c in CTX},
        "restarts": n["walks.sync.enospc"],
        "leaves": {c: n["leaves." + c] for c in CTX},
        "pages_synced": n["pages_synced"],
        "pages_unsynced": n["pages_unsynced"],
        "clears": {c: {s: n["clears.%s.%s" % (c, s)]
                       for s in ("walk", "clear_parents")} for c in CTX},
    }


class GuestRun(LabSections):
    suite = None		# None: Debian 12's 6.1; else kernel.sh -s SUITE

    @classmethod
    def setUpClass(cls):
        require((AGENT, labguest.QEMU))
        if cls.suite:
            suite_kernel(cls.suite)
        try:
            sites = labguest.clear_sites(cls.suite)
            cls.no_clears = None
        except LookupError as e:
            sites, cls.no_clears = [], str(e)
        os.makedirs(lab.build_dir(), exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="guest-",
                                         dir=lab.build_dir()) as tmp:
            binaries, files = labguest.lab_payload(tmp)
            cls.boot("guest.sh", [AGENT] + binaries, 3600, files=files,
                     suite=cls.suite,
                     env={"KUE_MODES": " ".join(MODES),
                          "KUE_GUEST_FORKS": str(FORKS),
                          "KUE_CLEAR_SITES": " ".join(
                              "%s:%s" % s for s in sites)})

    def qemu_pid(self):
        text = self.section("guest")
        self.assertIn("rc=0", text.splitlines(), text)
        self.assertIn("guest: forked %d failed=0" % FORKS, text)
        return int(kv_lines(text)["pid"])

    def kernel(self):
        """The kernel's figures: one guest run, whichever agent reads it."""
        return kv_lines(self.section("kernel"))

    def test_kernel_instruments_complete(self):
        """The reference lost nothing: no trace overrun, no missed kprobe
        or kretprobe, every probe hit, no result or caller nobody
        expects."""
        k = self.kernel()
        for key in ("lost", "missed", "sync_calls.bad", "walks.other"):
            self.assertEqual(k[key], "0", (key, k))
        for ev in ("sc_enter", "sc_exit", "walk_enter", "walk_exit",
                   "zap_enter", "zap_exit"):
            self.assertGreater(int(k["hits." + ev]), 0, (ev, k))

    def test_guest_synced(self):
        """The workload did what it is for: the guest made KVM sync."""
        f = kernel_figures(self.kernel())
        self.assertGreater(f["sync_calls"]["ok"], 0)
        self.assertGreater(f["leaves"]["sync"], 0)

    def test_probes_attached_in_mode(self):
        # mmu_pages_clear_parents is never hooked by default: on a stock
        # kernel its clears are derived from the page vector, hookable
        # (6.1) or inlined (sid) alike; test_clears_equal_kernel checks
        # them against the kernel's own decrements
        hooks = ["mmu_sync_children", "__mmu_unsync_walk"]
        for mode in MODES:
            s = parse_metrics(self.section("metrics " + mode))
            src = {dict(lbl)["site"]: dict(lbl)["source"]
                   for (n, lbl), v in s.items()
                   if n == "kvm_unsync_bitmap_clears_source" and v == 1}
            with self.subTest(mode=mode, what="clear sources"):
                self.assertEqual(src, {"walk": "hook",
                                       "clear_parents": "derived"})
            for hook in hooks:
                with self.subTest(mode=mode, hook=hook):
                    self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                            probe=hook, mode=mode), [1])
            for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
                with self.subTest(mode=mode, hook=tp):
                    self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                            probe=tp, mode="tracepoint"), [1])

    def test_vm_published_under_its_qemu_name(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                pid = str(self.qemu_pid())
                s = parse_metrics(self.section("metrics " + mode))
                vms = {dict(lbl).get("vm") for (n, lbl), _ in s.items()
                       if n == "kvm_unsync_sync_calls_total" and
                       dict(lbl).get("pid") == pid}
                self.assertEqual(vms, {"lab-guest"})
                # a guest without a nested guest of its own: l1 only
                self.assertEqual(guests_of(s, pid), ["l1"])

    def test_figures_equal_kernel(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                pid = self.qemu_pid()
                s = parse_metrics(self.section("metrics " + mode))
                got = agent_figures(s, pid)
                want = kernel_figures(self.kernel())
                del got["clears"], want["clears"]
                self.assertEqual(got, want)

    def test_clears_equal_kernel(self):
        """The bitmap clears, by context and site, against the kernel's
        decrements of unsync_children."""
        if self.no_clears:
            self.skipTest("the clears cannot be counted on this build: %s"
                          % self.no_clears)
        for mode in MODES:
            with self.subTest(mode=mode):
                pid = self.qemu_pid()
                s = parse_metrics(self.section("metrics " + mode))
                want = kernel_figures(self.kernel())["clears"]
                self.assertGreater(want["sync"]["clear_parents"], 0)
                self.assertEqual(agent_figures(s, pid)["clears"], want)

    def test_no_loss_no_anomaly(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                s = parse_metrics(self.section("metrics " + mode))
                self.assert_zero(s, ("kvm_unsync_ringbuf_dropped_total",) +
                                 ANOMALIES)

    def test_clean_shutdown(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                text = self.section("shutdown " + mode)
                self.assertEqual(kv_lines(text).get("rc"), "0", text)


class Guest61(GuestRun, unittest.TestCase):
    pass


class GuestSid(GuestRun, unittest.TestCase):
    suite = "sid"


if __name__ == "__main__":
    unittest.main()
