#!/usr/bin/env python3
"""Start-up on the machine the tests run on, with no VM.

Here KVM is built in but nothing ever runs the walk, and whether fentry or
kprobes attach depends on the kernel.  So these tests prove what can be
proved without a walk: discovery and its report, the verifier's verdict on
the kprobe flavour, degradation to the tracepoints, valid metrics, pinned
maps with named fields, clean shutdown, and one-line errors for bad input.
Counting is proved in the lab (tests/vm/test_lab.py).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, BPFFS, bpffs_mounted, free_port, run  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402

WALK_HOOKS = ("mmu_sync_children", "__mmu_unsync_walk")
ALL_HOOKS = WALK_HOOKS + ("mmu_pages_clear_parents",)


def check_table(out):
    """--check output: {probe: (mode, attached, reason)}"""
    rows = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[2] in ("yes", "no"):
            rows[parts[0]] = (parts[1], parts[2] == "yes",
                              parts[3] if len(parts) > 3 else "")
    return rows


def possible_cpus():
    """How many CPUs a per-CPU map holds a value for."""
    with open("/sys/devices/system/cpu/possible") as f:
        n = 0
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


def fill_vm_stats(pinned, pid, value):
    """An entry for pid in the pinned vm_stats map, every counter of guest
    level l1 (the first half of struct vm_guests) at value on each CPU
    (bpftool writes one value to every CPU of a per-CPU map)."""
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", pinned],
                       capture_output=True, text=True, check=True)
    size = json.loads(r.stdout)["bytes_value"]
    words = b"".join(value.to_bytes(8, "little")
                     for _ in range(size // 2 // 8)) + bytes(size // 2)
    subprocess.run(["bpftool", "map", "update", "pinned", pinned, "key"] +
                   ["%d" % b for b in pid.to_bytes(4, "little")] +
                   ["value"] + ["%d" % b for b in words], check=True)


def fill_vm_stats_many(pinned, values):
    """fill_vm_stats() for many pids at once ({pid: value}), with one
    `bpftool batch` run."""
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", pinned],
                       capture_output=True, text=True, check=True)
    size = json.loads(r.stdout)["bytes_value"]
    lines = []
    for pid, value in values.items():
        words = b"".join(value.to_bytes(8, "little")
                         for _ in range(size // 2 // 8)) + bytes(size // 2)
        lines.append(" ".join(
            ["map", "update", "pinned", pinned, "key"] +
            ["%d" % b for b in pid.to_bytes(4, "little")] +
            ["value"] + ["%d" % b for b in words]))
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        subprocess.run(["bpftool", "batch", "file", f.name], check=True,
                       stdout=subprocess.DEVNULL)


class Agent:
    """The daemon running in the background on a free port."""

    def __init__(self, *extra, pin_dir=None):
        self.port = free_port()
        self.pin_dir = pin_dir or "%s/kue-test-%d-%d" % (BPFFS, os.getpid(),
                                                         self.port)
        self.args = ["--web.listen-address=127.0.0.1:%d" % self.port,
                     "--pin-dir=" + self.pin_dir] + list(extra)
        self.proc = subprocess.Popen([AGENT] + self.args,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %d: %s" %
                                     (self.proc.returncode,
                                      self.proc.stderr.read()))
            try:
                self.get("/metrics")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("agent did not serve within 30 s")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, method="GET"):
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("agent ignored signal %d" % sig)
        return self.proc.returncode, out, err


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
class Startup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AGENT):
            raise unittest.SkipTest("%s not built (make all)" % AGENT)
        if not bpffs_mounted():
            # A test host without systemd may lack it; the agent itself
            # refuses to mount it (see test_pin_dir_not_bpffs).
            subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)
        cls.check = run(["--check"])
        cls.table = check_table(cls.check.stdout)

    def test_check_reports_every_probe(self):
        for probe in ALL_HOOKS + ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertIn(probe, self.table, self.check.stdout)
        for hook in ALL_HOOKS:
            mode, attached, reason = self.table[hook]
            if attached:
                self.assertIn(mode, ("fentry", "kprobe"))
            else:
                self.assertEqual(mode, "none")
                self.assertRegex(reason, r"fentry: .+; kprobe: .+")

    def test_check_exit_code_follows_walk_hooks(self):
        attached = all(self.table[h][1] for h in WALK_HOOKS)
        self.assertEqual(self.check.returncode, 0 if attached else 1,
                         self.check.stdout + self.check.stderr)

    def test_check_names_kernel_and_variant(self):
        first = self.check.stdout.splitlines()[0]
        self.assertIn(os.uname().release, first)
        self.assertRegex(first, r"variant (stock|patched|unknown) \(.+\)")

    def test_tracepoints_attach(self):
        for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertEqual(self.table[tp][:2], ("tracepoint", True),
                             self.check.stdout)

    def test_check_says_how_clears_are_counted(self):
        """Each clear site: hooked, derived, or missing and why.  Here the
        walk hook decides: without it nothing can be derived."""
        lines = [ln for ln in self.check.stdout.splitlines()
                 if ln.startswith("bitmap clears, site ")]
        self.assertEqual(len(lines), 2, self.check.stdout)
        walk_ok = self.table["__mmu_unsync_walk"][1]
        cp_ok = self.table["mmu_pages_clear_parents"][1]
        self.assertTrue(lines[0].startswith(
            "bitmap clears, site walk: " + ("hook" if walk_ok else "missing: ")),
            lines[0])
        want = "hook" if cp_ok else "derived: " if walk_ok else "missing: "
        self.assertTrue(lines[1].startswith(
            "bitmap clears, site clear_parents: " + want), lines[1])

    def test_tracepoints_btf_where_the_kernel_describes_them(self):
        """The tracepoints are BTF tracepoints (plain loads of their
        typed argument) where the kernel's BTF has the typedef tp_btf
        attaches through, raw tracepoints elsewhere; here the BTF is read
        directly for its names."""
        names = b""
        for path in ("/sys/kernel/btf/vmlinux", "/sys/kernel/btf/kvm"):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    names += f.read()
        want = all(b"\0btf_trace_%s\0" % tp in names for tp in
                   (b"kvm_mmu_sync_page", b"kvm_mmu_unsync_page"))
        r = run(["--check", "-v"])
        lines = [ln for ln in r.stderr.splitlines()
                 if ln.startswith("tracepoints: ")]
        self.assertEqual(lines, ["tracepoints: " +
                                 ("tp_btf" if want else "raw_tp")], r.stderr)
        table = check_table(r.stdout)
        for tp in ("kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertEqual(table[tp][:2], ("tracepoint", True), r.stdout)

    def test_kprobe_flavour_passes_the_verifier(self):
        # Forced kprobe mode loads the real programs even where kprobes
        # cannot attach: a load failure would end start-up with an error.
        # --clear-parents=hook loads mmu_pages_clear_parents' programs,
        # the default (derive) the walk exit's derivation.
        for cp in ("hook", "auto"):
            with self.subTest(clear_parents=cp):
                r = run(["--check", "--attach=kprobe", "--clear-parents=" + cp])
                self.assertNotIn("cannot load", r.stderr)
                table = check_table(r.stdout)
                for hook in ALL_HOOKS:
                    mode, attached, reason = table[hook]
                    if attached:
                        continue
                    self.assertNotIn("load failed", reason)
                    if hook == "mmu_pages_clear_parents" and cp == "auto":
                        self.assertIn("not hooked: its clears are derived",
                                      reason)
                    else:
                        self.assertIn("attach failed", reason)

    def test_serves_valid_metrics(self):
        a = Agent()
        try:
            status, headers, body = a.get("/metrics")
        finally:
            rc, _, err = a.stop()
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(rc, 0, err)
        s = parse_metrics(body)
        for hook in ALL_HOOKS:
            mode, attached, _ = self.table[hook]
            self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                    probe=hook, mode=mode),
                             [1 if attached else 0], hook)
        self.assertEqual(select(s, "kvm_unsync_kernel_info",
                                release=os.uname().release), [1])
        with open(os.path.join(REPO, "VERSION")) as f:
            version = f.read().strip()
        self.assertEqual(select(s, "kvm_unsync_build_info",
                                version=version), [1])
        for name in ("kvm_unsync_ringbuf_dropped_total",
                     "kvm_unsync_orphan_exits_total"):
            self.assertEqual(select(s, name), [0])
        sources = {dict(lbl)["site"]: dict(lbl)["source"]
                   for (n, lbl), v in s.items()
                   if n == "kvm_unsync_bitmap_clears_source" and v == 1}
        self.assertEqual(set(sources), {"walk", "clear_parents"}, sources)
        for site, src in sources.items():
            # a missing site is left out, never published as 0
            got = [v for (n, lbl), v in s.items()
                   if n == "kvm_unsync_bitmap_clears_total" and
                   dict(lbl)["site"] == site]
            self.assertEqual(got, [] if src == "missing" else got, site)
            if src == "missing":
                self.assertRegex(err, "warning: bitmap clears, site %s: "
                                 "missing: .+" % site)
        if not all(self.table[h][1] for h in WALK_HOOKS):
            self.assertIn("serving tracepoint counts only", err)
            for hook in WALK_HOOKS:
                self.assertRegex(err, "warning: %s not attached: .+" %
                                 re.escape(hook))

    def test_family_of_a_missing_probe_left_out(self):
        """The real page over a real map entry: a VM in vm_stats (a live
        process, every l1 counter set with bpftool, as the kvmmmu
        tracepoints would create it) has the series of each family whose
        probes attached and none of the others, never a 0 nobody counted.
        Here the walk hooks attach only where this kernel allows it."""
        attached = {p: row[1] for p, row in self.table.items()}
        needs = {
            "kvm_unsync_sync_calls_total": WALK_HOOKS[:1],
            "kvm_unsync_walks_total": WALK_HOOKS,
            "kvm_unsync_walk_frames_total": WALK_HOOKS,
            "kvm_unsync_restarts_total": WALK_HOOKS,
            "kvm_unsync_walk_leaves_total": WALK_HOOKS,
            "kvm_unsync_bitmap_clears_total": WALK_HOOKS,
            "kvm_unsync_pages_unsynced_total": ("kvm_mmu_unsync_page",),
            "kvm_unsync_pages_synced_total": ("kvm_mmu_sync_page",),
        }
        sleeper = subprocess.Popen(["sleep", "600"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        a = Agent()
        try:
            fill_vm_stats(a.pin_dir + "/vm_stats", sleeper.pid, 7)
            _, _, body = a.get("/metrics")
        finally:
            rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)
        s = parse_metrics(body)
        per_cpu = 7 * possible_cpus()
        for family, probes in needs.items():
            got = select(s, family, pid=str(sleeper.pid), guest="l1")
            with self.subTest(family=family):
                self.assertIn("# TYPE %s counter\n" % family, body)
                if all(attached[p] for p in probes):
                    self.assertTrue(got)
                    self.assertEqual(set(got), {per_cpu})
                else:
                    self.assertEqual(got, [])
        for probe in WALK_HOOKS:
            if not attached[probe]:
                self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                        probe=probe, mode="none"), [0])

    def test_many_vms_read_exactly_and_reaped(self):
        """300 VMs (live processes) in the real map, each with its own
        value: the scrape reads them in several batches and publishes each
        one's exactly.  100 of them then exit: each is published once more,
        then deleted from the map, found by its pidfd, not by /proc."""
        sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(300)]
        for p in sleepers:
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        values = {p.pid: 1000 + i for i, p in enumerate(sleepers)}
        ncpus = possible_cpus()
        a = Agent()
        try:
            fill_vm_stats_many(a.pin_dir + "/vm_stats", values)
            s = parse_metrics(a.get("/metrics")[2])
            self.assertEqual(select(s, "kvm_unsync_vms"), [300])
            for pid, v in values.items():
                self.assertEqual(select(s, "kvm_unsync_pages_unsynced_total",
                                        pid=str(pid), guest="l1"),
                                 [v * ncpus], pid)
            gone = sleepers[:100]
            for p in gone:
                p.kill()
                p.wait()
            s = parse_metrics(a.get("/metrics")[2])
            self.assertEqual(select(s, "kvm_unsync_vms"), [300])
            s = parse_metrics(a.get("/metrics")[2])
            self.assertEqual(select(s, "kvm_unsync_vms"), [200])
            for p in gone:
                self.assertEqual(select(s, "kvm_unsync_pages_unsynced_total",
                                        pid=str(p.pid)), [])
            r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                a.pin_dir + "/vm_stats"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            # the map is BTF-typed: bpftool formats the __u32 key
            self.assertEqual(sorted(e["formatted"]["key"]
                                    for e in json.loads(r.stdout)),
                             sorted(p.pid for p in sleepers[100:]))
        finally:
            rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)

    @unittest.skipUnless(shutil.which("promtool"),
                         "promtool not installed (Debian package prometheus)")
    def test_promtool_accepts_metrics(self):
        a = Agent()
        try:
            _, _, body = a.get("/metrics")
        finally:
            a.stop()
        r = subprocess.run(["promtool", "check", "metrics"], input=body,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "")

    def test_landing_page_and_errors(self):
        a = Agent()
        try:
            status, headers, body = a.get("/")
            self.assertEqual(status, 200)
            self.assertIn("text/html", headers["Content-Type"])
            self.assertIn('href="/metrics"', body)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                a.get("/nope")
            self.assertEqual(cm.exception.code, 404)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                a.get("/metrics", method="POST")
            self.assertEqual(cm.exception.code, 405)
        finally:
            a.stop()

    def test_pinned_maps_have_named_fields(self):
        a = Agent()
        try:
            for name, field in (("vm_stats", None),
                                ("hists", "pvec_depth"),
                                ("self_stats", "ringbuf_dropped"),
                                ("self_stats", "vm_names_full"),
                                ("vm_names", None)):
                r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned",
                                    "%s/%s" % (a.pin_dir, name)],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                dump = json.loads(r.stdout)
                if field:
                    value = dump[0]["formatted"]["values"][0]["value"]
                    self.assertIn(field, value)
        finally:
            a.stop()

    def test_sigterm_unpins_and_exits_zero(self):
        a = Agent()
        self.assertTrue(os.path.isdir(a.pin_dir))
        rc, _, err = a.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(a.pin_dir))

    def test_sigint_exits_zero(self):
        a = Agent()
        rc, _, err = a.stop(signal.SIGINT)
        self.assertEqual(rc, 0, err)

    def sig_caught(self, pid, sig):
        """Whether process pid has a handler for sig (/proc's SigCgt)."""
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return int(line.split()[1], 16) >> (sig - 1) & 1 == 1
        return False

    def spawn(self, tag):
        pin_dir = "%s/kue-early-%d-%s" % (BPFFS, os.getpid(), tag)
        proc = subprocess.Popen(
            [AGENT, "--pin-dir=" + pin_dir,
             "--web.listen-address=127.0.0.1:%d" % free_port()],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(shutil.rmtree, pin_dir, ignore_errors=True)
        return proc, pin_dir

    def wait_caught(self, proc, sig):
        """Until proc handles sig: before that, nothing can (the
        dynamic loader runs first); after it, it must end cleanly."""
        deadline = time.time() + 30
        while not self.sig_caught(proc.pid, sig):
            self.assertIsNone(proc.poll(), "exited before handling signals")
            self.assertLess(time.time(), deadline)
            time.sleep(0.001)

    def test_handlers_set_before_pins(self):
        # the handlers came after the probes started, ~0.13 s after the
        # pins appeared: whenever the pins are there, a handler must be
        for i in range(3):
            proc, pin_dir = self.spawn("order%d" % i)
            try:
                self.wait_pins(proc, pin_dir)
                self.assertTrue(self.sig_caught(proc.pid, signal.SIGTERM))
                self.assertTrue(self.sig_caught(proc.pid, signal.SIGHUP))
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 0)

    def wait_pins(self, proc, pin_dir):
        """Until the pin directory appears: start-up is half done (the
        probes load and attach next, ~0.1 s)."""
        deadline = time.time() + 30
        while not os.path.exists(pin_dir):
            self.assertIsNone(proc.poll(), "exited while starting")
            self.assertLess(time.time(), deadline)
            time.sleep(0.0005)

    def test_signal_while_starting_exits_zero(self):
        # SIGTERM or SIGINT all through start-up: from the moment there is
        # a handler (nothing can catch one before: the dynamic loader runs
        # first) or the pins appear, to 0.2 s on.  Exit 0, no pins left;
        # it was 143 or 130 with the pins left behind.
        for i in range(12):
            sig = (signal.SIGTERM, signal.SIGINT)[i % 2]
            with self.subTest(i=i, sig=sig):
                proc, pin_dir = self.spawn("sig%d" % i)
                if i < 6:
                    self.wait_pins(proc, pin_dir)
                else:
                    self.wait_caught(proc, sig)
                time.sleep(0.02 * (i % 6) * (i % 3))
                proc.send_signal(sig)
                _, err = proc.communicate(timeout=30)
                self.assertEqual(proc.returncode, 0, err)
                self.assertFalse(os.path.exists(pin_dir))

    def test_sighup_while_starting_does_not_kill(self):
        # it killed the agent (exit 129) until it served
        for i in range(3):
            proc, pin_dir = self.spawn("hup%d" % i)
            try:
                self.wait_pins(proc, pin_dir)
                time.sleep(0.03 * i)
                proc.send_signal(signal.SIGHUP)
                deadline = time.time() + 30
                while not os.path.exists(pin_dir + "/vm_stats"):
                    self.assertIsNone(proc.poll(), "SIGHUP ended it")
                    self.assertLess(time.time(), deadline)
                    time.sleep(0.05)
                time.sleep(0.2)
                self.assertIsNone(proc.poll(), "SIGHUP ended it")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, 0)
            self.assertFalse(os.path.exists(pin_dir))

    def test_keep_pins_then_restart(self):
        a = Agent("--keep-pins")
        self.addCleanup(shutil.rmtree, a.pin_dir, ignore_errors=True)
        rc, _, _ = a.stop()
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(a.pin_dir + "/vm_stats"))
        # A new agent on the same directory replaces the stale pins: it
        # serves (Agent waits for its first page, however long start-up
        # takes on a loaded machine), then unpins them at its stop.
        b = Agent(pin_dir=a.pin_dir)
        rc, _, err = b.stop()
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(a.pin_dir))

    def test_second_agent_on_same_pins_refused(self):
        a = Agent()
        try:
            r = run(["--pin-dir=" + a.pin_dir,
                     "--web.listen-address=127.0.0.1:%d" % free_port()])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1 +
                             r.stderr.count("warning:"), r.stderr)
            self.assertIn("in use by another kvm-unsync-exporter", r.stderr)
        finally:
            rc, _, _ = a.stop()
        self.assertEqual(rc, 0)

    def test_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = run(["--web.listen-address=127.0.0.1:%d" % port,
                     "--pin-dir=%s/kue-port-%d" % (BPFFS, os.getpid())])
        self.assertNotEqual(r.returncode, 0)
        last = r.stderr.strip().splitlines()[-1]
        self.assertIn(str(port), last)
        self.assertFalse(os.path.exists("%s/kue-port-%d" % (BPFFS, os.getpid())))

    def test_pin_dir_not_bpffs(self):
        r = run(["--pin-dir=/tmp/kue-not-bpffs",
                 "--web.listen-address=127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 1)
        self.assertIn("not on a BPF filesystem", r.stderr.splitlines()[-1])

    def test_bad_flags(self):
        cases = [
            (["--attach=bogus"], "--attach"),
            (["--clear-parents=bogus"], "--clear-parents"),
            (["--trace=bogus"], "--trace"),
            (["--ringbuf-kib=3"], "--ringbuf-kib"),
            (["--ringbuf-kib=abc"], "--ringbuf-kib"),
            (["--pin-dir=relative"], "--pin-dir"),
            (["--web.telemetry-path=metrics"], "--web.telemetry-path"),
            (["--no-such-flag"], "no-such-flag"),
            (["stray"], "stray"),
            # strtoul() took these (the last as 4)
            (["--ringbuf-kib= 8"], "--ringbuf-kib"),
            (["--ringbuf-kib=+8"], "--ringbuf-kib"),
            (["--ringbuf-kib=-18446744073709551612"], "--ringbuf-kib"),
            (["--ringbuf-kib=18446744073709551616"], "--ringbuf-kib"),
            (["--max-vms=+5"], "--max-vms"),
            (["--iterations= 5", "--batch"], "--iterations"),
            # every scrape got 404, and the landing page linked there
            (["--web.telemetry-path=/metrics?x=1"], "--web.telemetry-path"),
            (["--web.telemetry-path=/metrics#x"], "--web.telemetry-path"),
            (["--web.telemetry-path=/a b"], "--web.telemetry-path"),
            (["--web.telemetry-path=/a%20b"], "--web.telemetry-path"),
            (["--web.telemetry-path=/a\nb"], "--web.telemetry-path"),
            (["--web.telemetry-path=/"], "--web.telemetry-path"),
            # a newline split the start-up line
            (["--pin-dir=/sys/fs/bpf/a\nb"], "--pin-dir"),
            (["--pin-dir=/sys/fs/bpf/a\tb"], "--pin-dir"),
            (["--web.config.file=/etc/a\nb.yml"], "--web.config.file"),
            (["--record=/tmp/a\nb.json"], "--record"),
            # getopt's own errors, with argp's "Try --help" line gone
            (["--pin-dir"], "pin-dir"),
            (["--keep-pins=1"], "keep-pins"),
            (["--t"], "--t"),
            # a long message is not wrapped either
            (["--top", "--batch"], "--top and --batch"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                # a bad flag taken for good meets a bad --attach after it,
                # and so does not start an agent (unless it is refused at
                # the end, takes it as its value, or is not a flag: argp
                # takes flags first)
                tail = [] if args[-1] in ("--pin-dir", "stray") or \
                    "--top" in args else ["--attach=bogus"]
                r = run(args + tail)
                self.assertEqual(r.returncode, 2, r.stderr)
                # one line, and nothing of argp's "Try --help" after it
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.endswith("\n"), r.stderr)
                self.assertIn(needle, r.stderr.splitlines()[0])
                self.assertNotIn("Try", r.stderr)
        # the plain forms the checks must not refuse
        for args in (["--ringbuf-kib=8"], ["--ringbuf-kib=1048576"],
                     ["--web.telemetry-path=/a-b/c_d.e~f:g@h"]):
            with self.subTest(args=args):
                r = run(args + ["--attach=bogus"])
                self.assertIn("--attach", r.stderr)

    def test_pin_dir_diagnosis(self):
        missing = "%s/kue-no-parent-%d" % (BPFFS, os.getpid())
        cases = [
            # pinning there would unpin what others put in the root
            (BPFFS, "is the BPF filesystem's root: pass a directory in it"),
            (BPFFS + "/", "is the BPF filesystem's root"),
            (BPFFS + "/.", "is the BPF filesystem's root"),
            # the parent does not exist: not a mount problem
            (missing + "/pins", "%s does not exist: create it" % missing),
            ("/kue-no-such-dir-%d/pins" % os.getpid(), "does not exist"),
            ("/tmp/kue-not-bpffs", "not on a BPF filesystem: mount it"),
        ]
        for pin_dir, want in cases:
            with self.subTest(pin_dir=pin_dir):
                r = run(["--pin-dir=" + pin_dir,
                         "--web.listen-address=127.0.0.1:%d" % free_port()])
                self.assertEqual(r.returncode, 1, r.stderr)
                last = r.stderr.strip().splitlines()[-1]
                self.assertIn(want, last)
                self.assertFalse(os.path.exists(missing))

    def test_bad_listen_address(self):
        for addr in ("bogus", "127.0.0.1:99999", "[::1", ":"):
            with self.subTest(addr=addr):
                r = run(["--web.listen-address=" + addr,
                         "--pin-dir=%s/kue-addr-%d" % (BPFFS, os.getpid())])
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("--web.listen-address",
                              r.stderr.strip().splitlines()[-1])

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) missing")
    def test_non_root_refused(self):
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", AGENT], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("must run as root", lines[0])


if __name__ == "__main__":
    unittest.main()
