#!/usr/bin/env python3
"""deploy/prometheus: the alerting rules load, pass their promtool unit
tests (each alert fires on the series that should raise it, and not on a
healthy agent), and name only series the agent really exports: every
kvm_unsync_* name in them is a family of a real scrape of the daemon."""

import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from test_ops import Agent, Base  # noqa: E402

RULES_DIR = os.path.join(REPO, "deploy", "prometheus")
RULES = os.path.join(RULES_DIR, "kvm-unsync-exporter.rules.yml")
RULES_TEST = os.path.join(RULES_DIR, "tests", "kvm-unsync-exporter.rules.test.yml")


@unittest.skipUnless(shutil.which("promtool"),
                     "promtool not installed (Debian package prometheus)")
class Rules(unittest.TestCase):
    def promtool(self, *args):
        p = subprocess.run(["promtool"] + list(args), cwd=RULES_DIR,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_rules_load(self):
        self.promtool("check", "rules", RULES)

    def test_rules_unit_tests(self):
        self.promtool("test", "rules", RULES_TEST)


class RulesNameRealSeries(Base):
    def test_every_name_is_exported(self):
        with open(RULES) as f:
            names = set(re.findall(r"\bkvm_unsync_[a-z_]+", f.read()))
        self.assertGreater(len(names), 5)
        a = Agent()
        self.addCleanup(lambda: a.proc.poll() is None and a.stop())
        families = set(re.findall(r"^# TYPE (\S+) ", a.get("/metrics"),
                                  re.M))
        self.assertEqual(sorted(names - families), [],
                         "rules name series the agent does not export")


if __name__ == "__main__":
    unittest.main()
