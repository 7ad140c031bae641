#!/usr/bin/env python3
"""The pin directory's lock when flock() itself fails.

The agent takes flock(LOCK_EX|LOCK_NB) on its pin directory so that two
agents never share (and later unpin) one set of maps.  On a kernel built
without CONFIG_FILE_LOCKING flock() returns ENOSYS for every file: the
agent used to call that "in use by another kvm-unsync-exporter".  Now:

  - ENOSYS: the agent starts and serves, with one warning that says the
    kernel has no file locking and a second agent would not be refused;
  - any other error but EWOULDBLOCK: exit 1, one line naming the real
    error, never "in use by another";
  - EWOULDBLOCK (another agent holds it): refused as before
    (test_startup.Errors.test_second_agent_on_same_pins_refused).

This machine's kernel has file locking, so an LD_PRELOAD shim
(shim/flock_fail.c, built here with the C compiler) makes flock() fail.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentenv import AGENT, BPFFS, ensure_bpffs, free_port  # noqa: E402

SHIM_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim",
                        "flock_fail.c")


@unittest.skipUnless(os.path.exists(AGENT), "agent not built (make)")
@unittest.skipUnless(os.geteuid() == 0, "needs root to mount bpffs and pin")
class PinLockFails(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_bpffs()
        cls.tmp = tempfile.mkdtemp(prefix="kue-shim-")
        cls.shim = os.path.join(cls.tmp, "flock_fail.so")
        cc = shutil.which("gcc") or shutil.which("cc")
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", cls.shim,
                        SHIM_SRC], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, err):
        port = free_port()
        pin_dir = "%s/kue-lock-%d-%d" % (BPFFS, os.getpid(), port)
        env = dict(os.environ, LD_PRELOAD=self.shim,
                   KUE_FLOCK_ERRNO=str(err))
        proc = subprocess.Popen([AGENT, "--pin-dir=" + pin_dir,
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        return proc, port, pin_dir

    def test_no_file_locking_runs_with_a_warning(self):
        proc, port, pin_dir = self.start(errno.ENOSYS)
        served = None
        try:
            deadline = time.time() + 30
            while time.time() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(
                            "http://127.0.0.1:%d/metrics" % port,
                            timeout=10) as r:
                        served = r.status
                    break
                except OSError:
                    time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        self.assertEqual(served, 200, err)
        self.assertEqual(proc.returncode, 0, err)
        lines = [ln for ln in err.splitlines() if "lock pin directory" in ln]
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("warning: "), lines[0])
        self.assertIn("no file locking", lines[0])
        self.assertNotIn("in use by another", err)
        self.assertFalse(os.path.exists(pin_dir))

    def test_other_lock_error_is_named(self):
        proc, _, pin_dir = self.start(errno.EIO)
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 1, err)
        last = err.strip().splitlines()[-1]
        self.assertIn("cannot lock pin directory %s" % pin_dir, last)
        self.assertIn(os.strerror(errno.EIO), last)
        self.assertNotIn("in use by another", err)
        self.assertEqual(len(err.strip().splitlines()),
                         1 + err.count("warning:"), err)


if __name__ == "__main__":
    unittest.main()
