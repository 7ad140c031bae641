#!/usr/bin/env python3
"""The Debian package on a systemd host: the lab VM with systemd as PID 1.

The .deb is built from the tree (tests/debbuild.py, cached under the lab's
build directory); tests/vm/systemd/root.sh -d puts it into a root with no
agent and no units, with dpkg and what the maintainer scripts run, and
tests/vm/scenarios/deb.sh installs it with dpkg -i.  Checked:
- dpkg -i configures it and its maintainer scripts enable both units the
  Debian way and start them: the service is up;
- ARGS in /etc/default/kvm-unsync-exporter (the package's conffile) reaches
  the agent's command line after systemctl restart, and does what it says:
  --max-vms=1 labels the first VM, which is counted exactly as the model
  predicts, and folds the second into vm="other";
- dpkg --purge stops it and leaves nothing: no unit loaded or enabled, no
  file of the package (dpkg -L before), nothing named after it (conffile,
  links, dpkg's and deb-systemd-helper's state), no pins, no listener.
"""

import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "model"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import debbuild  # noqa: E402
import lab  # noqa: E402
import labagent as tl  # noqa: E402
from promtext import parse_metrics, select  # noqa: E402
from test_systemd_lab import (SERVICE, SOCKET, SYSTEMD, SystemdRun,  # noqa: E402
                              unit_props)

PKG = "kvm-unsync-exporter"
NEEDS = (tl.KVMWALK, tl.CHRT, SYSTEMD, "/usr/bin/dpkg",
         "/usr/bin/deb-systemd-helper", "/usr/lib/x86_64-linux-gnu/perl-base")


class LabPackage(SystemdRun, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path in NEEDS:
            if not os.path.exists(path):
                raise unittest.SkipTest("package lab test needs %s" % path)
        for tool in ("dpkg-buildpackage", "dh"):
            if not shutil.which(tool):
                raise unittest.SkipTest("package lab test needs %s" % tool)
        deb = debbuild.cached(os.path.join(lab.build_dir(), "deb"))
        tar = os.path.join(lab.build_dir(), "package-root.tar")
        subprocess.run(["sh", os.path.join(HERE, "systemd", "root.sh"), "-d",
                        deb, tar], check=True, timeout=120)
        cls.boot_systemd("deb.sh", tar, [tl.KVMWALK, tl.CHRT], 400)

    def test_dpkg_installs_it(self):
        text = self.section("install")
        kv = tl.kv_lines(text)
        self.assertEqual(kv["rc"], "0", text)
        self.assertEqual(kv["status"], "install ok installed", text)

    def test_enabled_the_debian_way_and_started(self):
        text = self.section("installed")
        u = unit_props(text)
        for unit in (SOCKET, SERVICE):
            self.assertEqual((u[unit]["LoadState"], u[unit]["UnitFileState"],
                              u[unit]["ActiveState"]),
                             ("loaded", "enabled", "active"), text)
        # deb-systemd-helper's links, where [Install] says
        links = sorted(ln[len("link="):] for ln in text.splitlines()
                       if ln.startswith("link="))
        self.assertEqual(links, [
            "/etc/systemd/system/multi-user.target.wants/" + SERVICE,
            "/etc/systemd/system/sockets.target.wants/" + SOCKET])
        self.assertRegex(text, r'(?m)^ARGS=""$')

    def test_args_from_etc_default_on_the_command_line(self):
        text = self.section("configured")
        kv = tl.kv_lines(text)
        self.assertEqual(kv["rc"], "0", text)
        svc = unit_props(text)[SERVICE]
        self.assertEqual((svc["ActiveState"], svc["SubState"]),
                         ("active", "running"), text)
        first = unit_props(self.section("installed"))[SERVICE]["MainPID"]
        self.assertNotEqual(svc["MainPID"], first)
        self.assertEqual(kv["cmdline"],
                         "/usr/sbin/%s --max-vms=1" % PKG)

    def test_counts_one_vm_as_the_model_the_next_folded(self):
        s = parse_metrics(self.section("metrics"))
        self.assert_walk_hooks_attached(s)
        want = tl.model("--tables 8")
        got = tl.agent_figures(s, self.pid_of("sd"))
        self.assertEqual(got, {k: want[k] for k in got})
        self.assertGreater(got["sync_calls"]["ok"], 0)
        self.pid_of("sd2")
        # --max-vms=1: the second VM has no labels of its own
        other = tl.agent_figures(s, "")
        self.assertEqual(other, {k: want[k] for k in other})
        self.assertEqual(select(s, "kvm_unsync_vms_folded_total"), [1])
        self.assertEqual(select(s, "kvm_unsync_ringbuf_dropped_total"), [0])
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])

    def test_purge_leaves_nothing(self):
        self.assertEqual(tl.kv_lines(self.section("purge"))["rc"], "0",
                         self.section("purge"))
        files = self.section("files").split()
        self.assertIn("/usr/sbin/" + PKG, files)
        self.assertIn("/etc/default/" + PKG, files)
        self.assertIn("/usr/share/doc/%s/README.md" % PKG, files)
        text = self.section("purged")
        u = unit_props(text)
        for unit in (SOCKET, SERVICE):
            self.assertEqual((u[unit]["LoadState"], u[unit]["ActiveState"]),
                             ("not-found", "inactive"), text)
        self.assertNotIn("status=install", text)
        for what in ("left=", "named="):
            self.assertNotIn(what, text)
        kv = tl.kv_lines(text)
        self.assertEqual(kv["pins"], "0", text)
        self.assertNotEqual(kv["scrape"], "0", text)

    def test_started_twice_on_the_socket_systemd_passed(self):
        # by dpkg -i (postinst), then by systemctl restart
        journal = self.section("journal")
        self.assertEqual(journal.count("on the socket systemd passed"), 2,
                         journal)


if __name__ == "__main__":
    unittest.main()
