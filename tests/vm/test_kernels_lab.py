#!/usr/bin/env python3
"""The kernels people run, proven like Debian 12's 6.1 (tests/vm/test_lab.py).

Every shape of test_lab.py, in fentry and in kprobe mode, on:
- Debian 13's kernel (trixie, 6.12) and the newest kernel Debian ships
  (sid), fetched by tests/vm/kernel.sh -s SUITE through a private apt
  configuration under the cache;
- Debian 12's 6.1 with --clear-parents=hook, in both modes: the agent
  hooks mmu_pages_clear_parents() there instead of deriving its clears.

On every stock kernel the agent derives the clears of
mmu_pages_clear_parents() from the page vector at each top-level walk's
exit (derive_clear_parents_clears() in bpf/unsync.bpf.c); Debian's 6.12
and sid builds inline that function into mmu_sync_children(), so there it
has no symbol and no BTF function to hook anyway.  On 6.1 it can be
hooked: test_lab.py proves the derivation equals the model on every
shape, and the hook classes here prove the hook equals the same model, so
derivation and hook agree wherever both can run.  On the newer
kernels every figure, clear_parents included, equals the model
(tests/model/, which follows each release from its source: kernels.py) and
the kernel's own tracepoints.

KUE_KERNEL_SUITES (default "trixie sid") picks the suites; a suite whose
kernel cannot be fetched skips its classes and says why.
"""

import os
import re
import subprocess
import unittest

import lab
import test_lab

SUITES = os.environ.get("KUE_KERNEL_SUITES", "trixie sid").split()


def suite_kernel(suite):
    """The suite's kernel, or a SkipTest saying why it is not here."""
    if suite not in SUITES:
        raise unittest.SkipTest("suite %s not in KUE_KERNEL_SUITES=%r" %
                                (suite, " ".join(SUITES)))
    try:
        return lab.kernel(suite)
    except subprocess.CalledProcessError as e:
        raise unittest.SkipTest("cannot fetch %s's kernel (tests/vm/kernel.sh "
                                "-s %s exited %d)" % (suite, suite,
                                                      e.returncode))


def member_depth(struct_text, member):
    """How deep `member` sits in bpftool's C dump of a struct: 1 for a
    direct member, 3 inside a struct inside a union."""
    for line in struct_text.splitlines():
        if re.search(r"\b%s;" % re.escape(member), line):
            return len(line) - len(line.lstrip("\t"))
    return None


class SuiteMode(test_lab.LabMode):
    """test_lab.LabMode on another Debian suite's kernel: mmu_pages_clear_
    parents() is inlined there, so its clears are derived."""
    clear_parents = "derived"
    uc_depth = 1	# where unsync_children sits in struct kvm_mmu_page

    @classmethod
    def setUpClass(cls):
        suite_kernel(cls.suite)
        super().setUpClass()

    def test_clear_parents_not_hookable(self):
        """The reason to derive: this build has no mmu_pages_clear_parents
        to hook, and --check says so."""
        check = self.section("check")
        line = [ln for ln in check.splitlines()
                if ln.startswith("mmu_pages_clear_parents ")]
        self.assertEqual(len(line), 1, check)
        # each mode tries only its own flavour
        self.assertIn("fentry: not in kernel BTF" if self.mode == "fentry"
                      else "kprobe: not in kallsyms", line[0])

    def test_unsync_children_layout(self):
        """Where this kernel keeps unsync_children: 7.2 moved it into an
        anonymous struct in a union (beside external_spt).  The agent reads
        it by CO-RE; the walk clears equal to the model
        (test_metrics_equal_model) show the relocation followed it."""
        text = self.section("btf kvm_mmu_page")
        self.assertEqual(member_depth(text, "unsync_children"),
                         self.uc_depth, text)
        self.assertEqual(member_depth(text, "unsync_child_bitmap[8]"), 1,
                         text)


class LabHook61Fentry(test_lab.LabMode, unittest.TestCase):
    mode = "fentry"
    trace = "frames"
    agent_args = "--clear-parents=hook"
    clear_parents = "hook"


class LabHook61Kprobe(test_lab.LabMode, unittest.TestCase):
    mode = "kprobe"
    agent_args = "--clear-parents=hook"
    clear_parents = "hook"


class LabTrixieFentry(SuiteMode, unittest.TestCase):
    suite = "trixie"
    release = "6.12"
    mode = "fentry"
    trace = "frames"


class LabTrixieKprobe(SuiteMode, unittest.TestCase):
    suite = "trixie"
    release = "6.12"
    mode = "kprobe"


class LabSidFentry(SuiteMode, unittest.TestCase):
    suite = "sid"
    release = "7.2"
    mode = "fentry"
    trace = "frames"
    uc_depth = 3


class LabSidKprobe(SuiteMode, unittest.TestCase):
    suite = "sid"
    release = "7.2"
    mode = "kprobe"
    uc_depth = 3


if __name__ == "__main__":
    unittest.main()
