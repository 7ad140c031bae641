#!/usr/bin/env python3
"""The developer's modes on the machine the tests run on, with no VM:
--record, --batch, --top (in tmux), beside a running agent or alone,
compare on bad files, and one-line errors for bad flags.

No walk runs here, so these prove the plumbing (a valid record of a run
with no VM, the blocks, the keys, the read-only reading of a running
agent's pins); the figures are proved in the lab
(tests/vm/test_devtools_lab.py).
"""

import json
import os
import platform
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, BPFFS, require_agent_and_bpffs, run  # noqa: E402
from test_startup import Agent  # noqa: E402

RECORDS = os.path.join(REPO, "tests", "unit", "records")
HEADER = "kvm-unsync-exporter: "


def blocks(out):
    """The --batch blocks of out: lists of lines, header first."""
    return [b.splitlines() for b in out.split("\n\n") if b.strip()]


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
class DevTools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_agent_and_bpffs()
        cls.tmp = tempfile.mkdtemp(prefix="kue-devtools-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pin_dir(self, name):
        return "%s/kue-dev-%d-%s" % (BPFFS, os.getpid(), name)

    def read_record(self, path):
        with open(path) as f:
            return json.load(f)

    def test_record_of_a_run_with_no_vm(self):
        path = os.path.join(self.tmp, "novm.json")
        pins = self.pin_dir("rec")
        r = run(["--record=" + path, "--duration=0.5", "--pin-dir=" + pins])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("written to " + path, r.stderr.splitlines()[-1])
        self.assertFalse(os.path.exists(pins), "pins left behind")
        doc = self.read_record(path)
        self.assertEqual(doc["schema"], "kvm-unsync-exporter/record")
        self.assertEqual(doc["schema_version"], 1)
        self.assertEqual(doc["kernel"]["release"], platform.release())
        self.assertIn(doc["kernel"]["variant"], ("stock", "patched"))
        self.assertEqual(doc["maps"], {"source": "attached", "pin_dir": pins})
        self.assertEqual(doc["vms"], [])
        self.assertGreaterEqual(doc["time"]["duration_seconds"], 0.5)
        self.assertEqual(set(doc["hists"]["sync_duration_ns"]["slots"]), {0})
        probes = [h["probe"] for h in doc["hooks"]]
        for hook in ("mmu_sync_children", "__mmu_unsync_walk",
                     "kvm_mmu_sync_page", "kvm_mmu_unsync_page"):
            self.assertIn(hook, probes)
        # the tracepoints attach on any kernel with KVM
        tps = [h for h in doc["hooks"] if h["mode"] == "tracepoint"]
        self.assertTrue(tps and all(h["attached"] for h in tps), doc["hooks"])
        # compare reads it back: a record of no VM is a valid one
        c = run(["compare", path, path])
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(c.stderr, "")

    def test_record_at_sigint_and_sigterm(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig):
                path = os.path.join(self.tmp, "sig%d.json" % sig)
                p = subprocess.Popen([AGENT, "--record=" + path,
                                      "--pin-dir=" + self.pin_dir("sig")],
                                     stderr=subprocess.PIPE, text=True)
                # it says so once it counts: then the signal writes it
                for line in p.stderr:
                    if line.startswith(HEADER + "recording to"):
                        break
                p.send_signal(sig)
                rest = p.stderr.read()
                self.assertEqual(p.wait(timeout=30), 0, rest)
                self.assertIn("written to " + path, rest)
                self.assertEqual(self.read_record(path)["vms"], [])

    def record_to(self, target, *extra, duration="0.2"):
        """A --record run writing to target: a CompletedProcess."""
        return run(["--record=" + target, "--duration=" + duration,
                    "--pin-dir=" + self.pin_dir("tgt")] + list(extra))

    def fresh_dir(self):
        return tempfile.mkdtemp(dir=self.tmp)

    def assert_kept(self, target, test):
        """--record=target leaves target the node it was (lstat)."""
        before = os.lstat(target)
        r = self.record_to(target)
        after = os.lstat(target)
        self.assertEqual(stat.S_IFMT(after.st_mode),
                         stat.S_IFMT(before.st_mode), after)
        self.assertEqual((after.st_ino, after.st_rdev),
                         (before.st_ino, before.st_rdev))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("written through, not replaced", r.stderr)
        self.assertIn("written to " + target, r.stderr.splitlines()[-1])
        test(r)

    def test_record_to_a_device_keeps_the_device(self):
        # this test's own /dev/null node first: a regression replaces it,
        # and fails there, before the system's is tried
        node = os.path.join(self.fresh_dir(), "null")
        try:
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except OSError as e:
            self.skipTest("cannot make a device node here: %s" % e)
        # no subTest: a failure on the node must stop the test there
        for target in (node, "/dev/null"):
            self.assert_kept(target, lambda r: None)

    def test_record_through_a_symlink(self):
        d = self.fresh_dir()
        real, link = os.path.join(d, "real.json"), os.path.join(d, "link")
        with open(real, "w") as f:
            f.write("x" * 100000)	# longer than the record: cut, not kept
        os.symlink("real.json", link)
        ino = os.stat(real).st_ino
        r = self.record_to(link)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.readlink(link), "real.json")
        # written in place: the same file, not one renamed over it
        self.assertEqual(os.stat(real).st_ino, ino)
        self.assertEqual(self.read_record(real)["vms"], [])
        self.assertEqual(sorted(os.listdir(d)), ["link", "real.json"])

    def test_record_to_stdout(self):
        # a pipe: the record is the whole of stdout.  This test's own
        # link like /dev/stdout first: a regression renames over it, and
        # fails there, before the system's is tried
        link = os.path.join(self.fresh_dir(), "stdout")
        os.symlink("/proc/self/fd/1", link)
        for target in (link, "/dev/stdout"):
            self.assert_kept(target, lambda r: self.assertEqual(
                json.loads(r.stdout)["vms"], []))
        # a shell's "> file": after what --batch printed there, not over it
        out = os.path.join(self.fresh_dir(), "out")
        with open(out, "w") as f:
            p = subprocess.run([AGENT, "--batch", "--iterations=1",
                                "--interval=0.1", "--record=/dev/stdout",
                                "--pin-dir=" + self.pin_dir("stdout")],
                               stdout=f, stderr=subprocess.PIPE, text=True,
                               timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            text = f.read()
        block, _, doc = text.partition("\n{")
        self.assertEqual(len(blocks(block)), 1, text)
        self.assertEqual(json.loads("{" + doc)["vms"], [])

    def test_record_to_a_fifo(self):
        fifo = os.path.join(self.fresh_dir(), "fifo")
        os.mkfifo(fifo)
        # no reader: refused at start, not a wait for one
        r = self.record_to(fifo, duration="3600")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn("no process reads that FIFO", r.stderr)
        # a reader: written through
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            r = self.record_to(fifo)
            self.assertEqual(r.returncode, 0, r.stderr)
            with os.fdopen(os.dup(fd), "rb") as f:
                self.assertEqual(json.loads(f.read())["vms"], [])
        finally:
            os.close(fd)

    def test_record_refuses_a_directory_and_a_block_device(self):
        d = self.fresh_dir()
        node = os.path.join(d, "loop")
        try:
            os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 0))
        except OSError as e:
            self.skipTest("cannot make a device node here: %s" % e)
        for target, needle in ((d, "is a directory"),
                               (node, "is a block device")):
            with self.subTest(target=target):
                r = self.record_to(target, duration="3600")
                self.assertEqual(r.returncode, 2, r.stderr)
                lines = r.stderr.splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn(needle, lines[0])
        self.assertTrue(stat.S_ISBLK(os.lstat(node).st_mode))
        self.assertEqual(sorted(os.listdir(d)), ["loop"])

    def test_record_to_an_unwritable_directory_fails_at_start(self):
        d = self.fresh_dir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k",
                           "tmpfs", d]).returncode:
            self.skipTest("cannot mount a read-only tmpfs")
        try:
            # an hour's run: had it started, the timeout would end the test
            r = self.record_to(os.path.join(d, "r.json"), duration="3600")
        finally:
            subprocess.run(["umount", d], check=True)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)	# before any probe
        self.assertIn("--record: cannot write " + d, lines[0])
        self.assertIn("Read-only file system", lines[0])

    def test_record_replaces_a_regular_file_atomically(self):
        d = self.fresh_dir()
        path = os.path.join(d, "r.json")
        with open(path, "w") as f:
            f.write("old")
        ino = os.stat(path).st_ino
        r = self.record_to(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("written through", r.stderr)
        st = os.stat(path)
        self.assertNotEqual(st.st_ino, ino)	# a new file renamed over it
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual(self.read_record(path)["vms"], [])
        self.assertEqual(os.listdir(d), ["r.json"])	# no temporary left

    def test_batch_prints_one_block_per_iteration(self):
        r = run(["--batch", "--iterations=3", "--interval=0.2",
                 "--pin-dir=" + self.pin_dir("batch")])
        self.assertEqual(r.returncode, 0, r.stderr)
        got = blocks(r.stdout)
        self.assertEqual(len(got), 3, r.stdout)
        for b in got:
            self.assertTrue(b[0].startswith(HEADER + "0 VMs, last "), b)
            self.assertIn("sorted by syncs", b[0])
            self.assertEqual(b[1].split()[:3], ["VM", "PID", "SYNCS/s"])
            self.assertIn("sync duration: no syncs", b)

    def test_sort_flag(self):
        r = run(["--batch", "--iterations=1", "--interval=0.1",
                 "--sort=restarts", "--pin-dir=" + self.pin_dir("sort")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sorted by restarts", r.stdout.splitlines()[0])

    def test_beside_a_running_agent(self):
        agent = Agent()
        try:
            path = os.path.join(self.tmp, "beside.json")
            r = run(["--batch", "--iterations=1", "--interval=0.1",
                     "--record=" + path, "--pin-dir=" + agent.pin_dir])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("read-only", r.stderr.splitlines()[0])
            self.assertEqual(len(blocks(r.stdout)), 1)
            doc = self.read_record(path)
            self.assertEqual(doc["maps"]["source"], "pinned")
            self.assertEqual(doc["hooks"], [])	# the agent's own, not ours
            # the agent still owns its pins and serves
            self.assertEqual(agent.get("/metrics")[0], 200)
            self.assertTrue(os.path.exists(agent.pin_dir + "/vm_stats"))
        finally:
            rc, _, err = agent.stop()
        self.assertEqual(rc, 0, err)

    def test_beside_an_agent_without_vm_names(self):
        """An agent that pinned no vm_names (one from before the map):
        one warning line, and the view still reads its counts."""
        agent = Agent()
        try:
            os.unlink(agent.pin_dir + "/vm_names")
            r = run(["--batch", "--iterations=1", "--interval=0.1",
                     "--pin-dir=" + agent.pin_dir])
            self.assertEqual(r.returncode, 0, r.stderr)
            warn = [l for l in r.stderr.splitlines() if "vm_names" in l]
            self.assertEqual(len(warn), 1, r.stderr)
            self.assertIn("warning: ", warn[0])
            self.assertIn("named from /proc", warn[0])
            self.assertEqual(len(blocks(r.stdout)), 1)
        finally:
            rc, _, err = agent.stop()
        self.assertEqual(rc, 0, err)

    def test_top_needs_a_terminal(self):
        r = run(["--top", "--pin-dir=" + self.pin_dir("notty")],
                stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        self.assertIn("--top needs a terminal", lines[-1])
        self.assertIn("--batch", lines[-1])

    @unittest.skipUnless(shutil.which("tmux"), "tmux not installed")
    def test_top_keys_in_tmux(self):
        sock = os.path.join(self.tmp, "tmux.sock")
        rcfile = os.path.join(self.tmp, "top.rc")
        tmux = ["tmux", "-S", sock]
        cmd = "%s --top --interval=3600 --pin-dir=%s; echo rc=$? >%s" % (
            AGENT, self.pin_dir("top"), rcfile)
        subprocess.run(tmux + ["new-session", "-d", "-x", "160", "-y", "30",
                               cmd], check=True, env={"PATH": "/usr/bin:/bin"})

        def screen_with(text):
            for _ in range(300):
                s = subprocess.run(tmux + ["capture-pane", "-p"],
                                   capture_output=True, text=True).stdout
                if text in s:
                    return s
                subprocess.run(["sleep", "0.1"])
            self.fail("no %r on the screen: %s" % (text, s))

        try:
            first = screen_with("sorted by syncs")
            self.assertIn("last 0.0 s", first)	# at once, no interval yet
            for key, name in (("r", "restarts"), ("p", "pages"),
                              ("n", "name"), ("i", "pid"), ("s", "syncs")):
                subprocess.run(tmux + ["send-keys", key], check=True)
                screen_with("sorted by " + name)
            # space: update now, not in an hour (a block of at least the
            # 0.2 s slept here, so "last 0.0 s" is the first screen)
            subprocess.run(["sleep", "0.2"])
            subprocess.run(tmux + ["send-keys", " "], check=True)
            for _ in range(300):
                s = screen_with("sorted by syncs")
                if "last 0.0 s" not in s.splitlines()[0]:
                    break
                subprocess.run(["sleep", "0.1"])
            self.assertNotIn("last 0.0 s", s.splitlines()[0])
            subprocess.run(tmux + ["send-keys", "q"], check=True)
            for _ in range(300):
                if os.path.exists(rcfile) and open(rcfile).read():
                    break
                subprocess.run(["sleep", "0.1"])
            with open(rcfile) as f:
                self.assertEqual(f.read().strip(), "rc=0")
        finally:
            subprocess.run(tmux + ["kill-server"], capture_output=True)

    def test_bad_flags(self):
        cases = [
            (["--top", "--batch"], "--top and --batch"),
            (["--interval=0"], "--interval"),
            (["--batch", "--interval=abc"], "--interval"),
            (["--batch", "--interval=nan"], "--interval"),
            (["--interval=2"], "--interval needs"),
            (["--batch", "--iterations=0"], "--iterations"),
            (["--batch", "--iterations=-1"], "--iterations"),
            (["--iterations=3"], "--iterations needs --top or --batch"),
            (["--batch", "--sort=bogus"], "--sort"),
            (["--sort=name"], "--sort needs"),
            (["--record="], "--record"),
            (["--duration=5"], "--duration needs"),
            (["--record=x.json", "--duration=0"], "--duration"),
            (["--batch", "--check"], "--check"),
            (["--batch", "--trace"], "--trace"),
            (["--record=x.json", "--web.listen-address=:1"], "HTTP"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = run(args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(needle, r.stderr.splitlines()[0])

    def test_bad_record_files_give_one_line(self):
        good = os.path.join(RECORDS, "stock.json")
        empty = os.path.join(self.tmp, "empty.json")
        open(empty, "w").close()
        cases = [
            ("truncated.json", "truncated"),
            ("not_json.json", "not_json.json"),
            ("version2.json", "schema version 2"),
            ("no_version.json", "no_version.json"),
            ("missing_field.json", "missing field"),
            ("null.json", "the document is null"),
            ("number.json", "the document is a number"),
            ("blank.json", "blank file"),
            ("big_count.json", "restarts is 2^64 or more"),
            ("dur_nan.json", "duration_seconds is nan"),
        ]
        paths = [(os.path.join(RECORDS, f), n) for f, n in cases]
        paths += [(empty, "empty file"), ("/nonexistent.json", "cannot open"),
                  ("/dev/zero", "not a regular file")]
        for path, needle in paths:
            for a, b in ((path, good), (good, path)):
                with self.subTest(a=a, b=b):
                    r = run(["compare", a, b])
                    self.assertEqual(r.returncode, 2)
                    lines = r.stderr.strip().splitlines()
                    self.assertEqual(len(lines), 1, r.stderr)
                    self.assertIn(path, lines[0])
                    self.assertIn(needle, lines[0])
                    self.assertEqual(r.stdout, "")

    def test_compare_report_lost_is_an_error(self):
        good = os.path.join(RECORDS, "stock.json")
        with open("/dev/full", "w") as full:
            r = subprocess.run([AGENT, "compare", good, good], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("cannot write the report: No space left on device",
                      lines[0])


if __name__ == "__main__":
    unittest.main()
