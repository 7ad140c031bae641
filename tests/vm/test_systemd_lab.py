#!/usr/bin/env python3
"""deploy/'s units under a real systemd, PID 1 of the lab VM.

tests/vm/systemd/root.sh puts this machine's systemd, journald and
systemctl into the lab's root, with the agent installed and its socket and
service enabled as their header tells operators; boot.sh makes systemd
init, and kue-lab.service runs tests/vm/scenarios/systemd.sh once the
agent's service has started.  Checked:
- the unit's hardening still lets the agent load and attach its BPF
  programs (every walk hook attached), and the counts of a kvmwalk run
  equal the model's;
- socket activation: the agent serves on the fd systemd passed; readiness:
  the service is active with the status the agent sent with READY=1;
- every thread has no capability left and no_new_privs, under the unit's
  bounding set;
- systemctl reload (SIGHUP) keeps it running; systemctl stop ends it
  cleanly (exit 0, result success, no pins left) while the socket keeps
  listening, and the next scrape on the port starts it again;
- the port set the Debian way (--web.listen-address in ARGS) fails the
  unit once, exit 2, with no restart made or pending, and the one line it
  logs names the way that works; a scrape then finds the port closed and
  the socket unit failed, not a new start; that way (ListenStream= set with
  systemctl edit on the socket unit) moves the agent to the new port.
"""

import os
import subprocess
import sys
import unittest

from labagent import (AGENT, AGENT_THREADS, CHRT, HERE, KVMWALK, LabSections,
                      agent_figures, kv_lines, lab, model, require,
                      thread_caps, thread_names)
from promtext import parse_metrics, select

SYSTEMD = "/lib/systemd/systemd"
SERVICE = "kvm-unsync-exporter.service"
SOCKET = "kvm-unsync-exporter.socket"


def unit_props(text):
    """{unit: {key: value}} from "UNIT Key=Value" lines."""
    out = {}
    for line in text.splitlines():
        unit, sep, kv = line.partition(" ")
        if sep and "=" in kv and unit.startswith("kvm-unsync-exporter."):
            k, _, v = kv.partition("=")
            out.setdefault(unit, {})[k] = v
    return out


class SystemdRun(LabSections):
    """A scenario run by kue-lab.service in the VM booted with systemd as
    PID 1 over a root.sh tree (the base of test_package_lab too)."""

    @classmethod
    def boot_systemd(cls, scenario, tar, binaries, timeout):
        cls.boot(scenario, binaries, timeout,
                 env={"KUE_PID1": "/bin/kue-systemd-boot"},
                 files=[(tar, "/systemd-root.tar"),
                        (os.path.join(HERE, "systemd", "boot.sh"),
                         "/bin/kue-systemd-boot")])

    def test_kernel_stayed_healthy(self):
        dmesg = self.section("dmesg")
        for bad in ("WARNING:", "BUG:", "Call Trace", "segfault"):
            self.assertNotIn(bad, dmesg)


class LabSystemd(SystemdRun, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require((AGENT, KVMWALK, CHRT, SYSTEMD), "systemd lab test needs %s")
        tar = os.path.join(lab.build_dir(), "systemd-root.tar")
        subprocess.run(["sh", os.path.join(HERE, "systemd", "root.sh"), tar,
                        AGENT], check=True, timeout=120)
        cls.boot_systemd("systemd.sh", tar, [AGENT, KVMWALK, CHRT], 300)

    def test_ready_on_the_socket_systemd_passed(self):
        text = self.section("units")
        u = unit_props(text)
        # "running": its service holds the listening socket now
        self.assertEqual((u[SOCKET]["ActiveState"], u[SOCKET]["SubState"]),
                         ("active", "running"), text)
        svc = u[SERVICE]
        self.assertEqual((svc["ActiveState"], svc["SubState"]),
                         ("active", "running"), text)
        # Type=notify: active once the agent said READY=1, with this status
        self.assertEqual(svc["StatusText"],
                         "serving on port 10190, probes attached")
        self.assertEqual(svc["NRestarts"], "0")
        # the listening socket systemd passes is fd 3 (SD_LISTEN_FDS_START)
        self.assertRegex(text, r"\nsocket:\[\d+\]\n")
        self.assertIn("on the socket systemd passed (port 10190)",
                      self.section("journal"))

    def test_every_thread_capless_under_the_unit(self):
        pid, t = thread_caps(self.section("threads"))
        self.assertEqual(thread_names(t), AGENT_THREADS, t)
        self.assert_capless(t)

    def test_hardened_agent_attaches_and_counts_as_the_model(self):
        s = parse_metrics(self.section("metrics"))
        self.assert_walk_hooks_attached(s)
        got = agent_figures(s, self.pid_of("sd"))
        want = model("--tables 8")
        self.assertEqual(got, {k: want[k] for k in got})
        self.assertGreater(got["sync_calls"]["ok"], 0)
        self.assertEqual(select(s, "kvm_unsync_ringbuf_dropped_total"), [0])
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])

    def test_reload_keeps_it_running(self):
        before = unit_props(self.section("units"))[SERVICE]
        text = self.section("reload")
        self.assertIn("rc=0", text)
        after = unit_props(text)[SERVICE]
        self.assertEqual(after["MainPID"], before["MainPID"])
        self.assertEqual((after["ActiveState"], after["NRestarts"]),
                         ("active", "0"))

    def test_stop_is_clean_and_the_socket_stays(self):
        text = self.section("stop")
        kv = kv_lines(text)
        self.assertEqual(kv["rc"], "0", text)
        self.assertEqual(kv["pins"], "0", text)
        u = unit_props(text)
        self.assertEqual((u[SERVICE]["ActiveState"], u[SERVICE]["Result"],
                          u[SERVICE]["ExecMainStatus"]),
                         ("inactive", "success", "0"), text)
        self.assertEqual(u[SOCKET]["SubState"], "listening", text)
        print("\nsystemctl stop took %.2f s (TCG)" %
              (int(kv["centiseconds"]) / 100), file=sys.stderr)

    def test_socket_starts_it_again(self):
        text = self.section("reactivated unit")
        first = unit_props(self.section("units"))[SERVICE]["MainPID"]
        svc = unit_props(text)[SERVICE]
        self.assertEqual(svc["ActiveState"], "active", text)
        self.assertNotEqual(svc["MainPID"], first)
        self.assert_walk_hooks_attached(
            parse_metrics(self.section("reactivated")))
        self.assertEqual(self.section("journal").count(
            "on the socket systemd passed (port 10190)"), 2)

    def test_listen_address_in_args_fails_once(self):
        text = self.section("refused")
        self.assertNotEqual(kv_lines(text)["rc"], "0", text)
        svc = unit_props(text)[SERVICE]
        # Restart=on-failure would leave it activating/auto-restart here
        self.assertEqual((svc["ActiveState"], svc["SubState"], svc["Result"],
                          svc["ExecMainStatus"], svc["NRestarts"]),
                         ("failed", "failed", "exit-code", "2", "0"), text)
        # the agent shut the socket down: the scrape found nothing
        # listening, and systemd failed the socket unit (POLLHUP) rather
        # than start the service on it again
        self.assertNotEqual(kv_lines(text)["scrape"], "0", text)
        sock = unit_props(text)[SOCKET]
        self.assertEqual((sock["ActiveState"], sock["Result"]),
                         ("failed", "resources"), text)
        refusals = [ln for ln in self.section("journal").splitlines()
                    if "cannot be used with socket activation" in ln]
        self.assertEqual(len(refusals), 1, self.section("journal"))
        self.assertIn("systemctl edit kvm-unsync-exporter.socket",
                      refusals[0])

    def test_systemctl_edit_moves_the_port(self):
        text = self.section("moved")
        kv = kv_lines(text)
        self.assertEqual((kv["edit"], kv["dropin"], kv["rc"]),
                         ("0", "override.conf", "0"), text)
        u = unit_props(text)
        self.assertEqual(u[SOCKET]["Listen"], "127.0.0.1:9100 (Stream)", text)
        self.assertEqual((u[SERVICE]["ActiveState"], u[SERVICE]["NRestarts"]),
                         ("active", "0"), text)
        self.assertEqual(kv["new"], "1", text)
        self.assertNotEqual(kv["old"], "0", text)
        self.assertEqual(self.section("journal").count(
            "on the socket systemd passed (port 9100)"), 1)


if __name__ == "__main__":
    unittest.main()
