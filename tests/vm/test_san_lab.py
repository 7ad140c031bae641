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
os.environ.setdefault("KUE_AGENT", SAN_AGENT)
sys.path.insert(0, HERE)

import lab  # noqa: E402
import test_lab  # noqa: E402

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
           "UndefinedBehaviorSanitizer")

_run_scenario = lab.run_scenario


def run_scenario(scenario, binaries=(), timeout=lab.DEFAULT_TIMEOUT, **kw):
    """lab.run_scenario with the sanitizer options exported in the VM."""
    env = dict(SAN_ENV)
    env.update(kw.pop("env", None) or {})
    return _run_scenario(scenario, binaries, timeout, env=env, **kw)


lab.run_scenario = run_scenario


def sanitizer_lines(text):
    return [ln for ln in text.splitlines() if any(m in ln for m in MARKERS)]


def is_sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


class SanMixin:
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(test_lab.AGENT):
            raise unittest.SkipTest("%s not built (make OUTPUT=build/san "
                                    "SAN=1)" % test_lab.AGENT)
        super().setUpClass()

    def test_agent_is_sanitized(self):
        self.assertTrue(is_sanitized(test_lab.AGENT), test_lab.AGENT)

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
