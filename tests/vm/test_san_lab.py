#!/usr/bin/env python3
"""The lab tests (test_lab.py) with the agent built with ASan and UBSan.

    make OUTPUT=build/san SAN=1
    python3 tests/pyrun.py tests/vm/test_san_lab.py

The tests of test_lab.py on Debian's kernel (fentry, kprobe, KVM loaded
late; not the patched-kernel classes, to keep CI short) run unchanged
against build/san/kvm-unsync-exporter (KUE_AGENT overrides it), and each
VM run must also be free of sanitizer reports: the agent runs inside the
VM with ASAN_OPTIONS=detect_leaks=1 and
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1, and the whole serial log
(the scenarios print the agent's stderr in their "shutdown" section,
--check's in "check") must hold no "ERROR: AddressSanitizer",
"runtime error:", "LeakSanitizer" or "UndefinedBehaviorSanitizer" line.
The sanitizer runtime (libasan, libubsan) reaches the VM like any library
ldd names (lab.run_scenario).
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SAN_AGENT = os.path.join(REPO, "build", "san", "kvm-unsync-exporter")
# Before labagent reads it.
os.environ.setdefault("KUE_AGENT", SAN_AGENT)
sys.path.insert(0, HERE)

import labagent  # noqa: E402
from labagent import SAN_ENV, lab, sanitizer_lines  # noqa: E402
import test_lab  # noqa: E402

_run_scenario = lab.run_scenario


def run_scenario(scenario, binaries=(), timeout=lab.DEFAULT_TIMEOUT, **kw):
    """lab.run_scenario with the sanitizer options exported in the VM."""
    env = dict(SAN_ENV)
    env.update(kw.pop("env", None) or {})
    return _run_scenario(scenario, binaries, timeout, env=env, **kw)


lab.run_scenario = run_scenario


def is_sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


class SanMixin:
    @classmethod
    def setUpClass(cls):
        labagent.require((labagent.AGENT,),
                         "%s not built (make OUTPUT=build/san SAN=1)")
        super().setUpClass()

    def test_agent_is_sanitized(self):
        self.assertTrue(is_sanitized(labagent.AGENT), labagent.AGENT)

    def test_no_sanitizer_report(self):
        self.assertIn("shutdown", self.sec, lab.last_log)
        self.assertEqual(sanitizer_lines(self.log), [], lab.last_log)


class SanLabFentry(SanMixin, test_lab.LabFentry):
    pass


class SanLabKprobe(SanMixin, test_lab.LabKprobe):
    pass


class SanLabNoKvm(SanMixin, test_lab.LabNoKvm):
    pass


if __name__ == "__main__":
    unittest.main()
