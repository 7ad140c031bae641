#!/usr/bin/env python3
"""Nested guests in the lab.

npt=1 host, the production case: the lab VM's CPU gets nested paging
(QEMU -cpu qemu64,+svm,+npt) and kvm_amd loads with npt=1 nested=1.
kvmwalk --nested (tests/vm/SHAPES.md) is then an L1 hypervisor whose L2
runs on L1's nested page tables: the only page tables KVM shadows, and the
walk syncs them on nested VMRUN.

npt=0 host: kvmwalk --nested=shadow runs its L2 without NPT on L1's own
tables, so KVM shadows them twice in one VM, once per guest level
(role.guest_mode), and both world switches sync.

The agent files every per-VM figure under the guest label of the shadow
page it starts from: on the npt=1 host every figure is guest="l2" and
guest="l1" is all zeros (the TDP MMU never walks); on the npt=0 host each
level's figures equal the model's split (nested.predict_shadow(split=
True)), and the per-sync records' guest follows the world switches.

  *ModelVsKernel  the kernel's own instruments (selfcheck.sh, no BPF)
                  against tests/model/nested.py, shape by shape;
  *Fentry/Kprobe  the agent in each attach mode (scenarios/agent.sh)
                  against the same model and the kvmmmu tracepoints:
                  test_lab.AgentRun's tests, on these hosts and shapes;
                  Sid*: the npt=1 host on the newest Debian kernel (7.2),
                  SidShadow*: the npt=0 host on it.
"""

import json
import os
import unittest

from labagent import (BPFTOOL, HERE, KVMWALK, WALK_HOOKS, lab, model_levels,
                      require)
import compare_nested  # tests/model, on sys.path once labagent is in
from promtext import parse_metrics, select
from test_kernels_lab import suite_kernel
from test_lab import AgentRun

NPT_HOST = {"qemu": ["-cpu", "qemu64,+svm,+npt"],
            "env": {"KUE_KVM_AMD_PARAMS": "npt=1 nested=1"}}
SHADOW_HOST = {"qemu": [], "env": {"KUE_KVM_AMD_PARAMS": "npt=0 nested=1"}}

# name -> kvmwalk arguments; L2's pvec holds [root, PDPT0, PD_t, leaves].
NPT_SHAPES = [
    ("n_fit", "--nested --tables 12 --rounds 3"),        # 15 entries
    ("n_boundary", "--nested --tables 13 --rounds 10"),  # the 13th fills it
    ("n_over", "--nested --tables 14 --rounds 3"),       # one leaf past
    ("n_dirs", "--nested --tables 40 --dirs 3 --rounds 2"),  # 3 NPT dirs
    ("n_exitzap", "--nested --tables 20 --exit-unsync"),  # zap at VM destroy
]
# Each level's tree alone is the 4level shape: two of them in one VM.
SHADOW_SHAPES = [
    ("s_boundary", "--nested=shadow --tables 13 --rounds 3"),
    ("s_over", "--nested=shadow --tables 14 --rounds 2"),
    ("s_exitzap", "--nested=shadow --tables 12 --dirs 2 --exit-unsync"),
]


def predicted(args):
    return compare_nested.model_for(args).report()


def switch_guests(args):
    """The guest label of each mmu_sync_children call, in call order: a
    nested VMRUN syncs L2's tree (l2), a #VMEXIT L1's (l1)."""
    out = []
    for event, _, calls in compare_nested.model_for(args).switches:
        out += ["l2" if event == "vmrun" else "l1"] * calls
    return out


class ModelVsKernel:
    host = NPT_HOST
    shapes = NPT_SHAPES

    @classmethod
    def setUpClass(cls):
        require((KVMWALK, BPFTOOL))
        shapes = ";".join("%s:%s" % (n, a) for n, a in cls.shapes)
        cls.rc, cls.log = lab.run_scenario(
            os.path.join(HERE, "scenarios", "selfcheck.sh"),
            [KVMWALK, BPFTOOL], timeout=600, qemu_args=cls.host["qemu"],
            env=dict(cls.host["env"], KUE_SHAPES=shapes))
        cls.lines = [json.loads(l) for l in
                     lab.sections(cls.log).get("selfcheck", "").splitlines()
                     if l.startswith("{")]

    def test_host_paging_as_asked(self):
        d = lab.dmesg(self.log)
        npt = "npt=1" in self.host["env"]["KUE_KVM_AMD_PARAMS"]
        self.assertIn("Nested Paging %s" % ("enabled" if npt else "disabled"), d)
        self.assertIn("Nested Virtualization enabled", d)

    def test_every_shape_ran_and_walked(self):
        self.assertEqual(self.rc, 0, lab.last_log)
        self.assertEqual([l["shape"] for l in self.lines],
                         [n for n, _ in self.shapes])
        for l in self.lines:
            self.assertTrue(l["ok"], l["shape"])
            self.assertEqual(l["trace_lost"], 0, l["shape"])
            self.assertGreater(l["sync_children"], 0, l["shape"])

    def test_model_equals_kernel(self):
        results = compare_nested.compare_nested(self.lines)
        self.assertEqual(len(results), len(self.shapes))
        for r in results:
            with self.subTest(shape=r["shape"]):
                self.assertFalse(r["no_kprobes"])
                self.assertEqual(r["diffs"], [])


class NestedModelVsKernel(ModelVsKernel, unittest.TestCase):
    pass


class ShadowNestedModelVsKernel(ModelVsKernel, unittest.TestCase):
    host = SHADOW_HOST
    shapes = SHADOW_SHAPES


class Agent(AgentRun):
    """test_lab's agent tests on a nested host, with nested.py's model."""
    host = NPT_HOST
    shapes = NPT_SHAPES
    # the function hooks the agent attaches: clear_parents is derived on
    # every stock kernel (hooked only with --clear-parents=hook)
    hooks = WALK_HOOKS[:2]

    @classmethod
    def setUpClass(cls):
        if cls.suite:
            suite_kernel(cls.suite)
        super().setUpClass()

    @classmethod
    def predict(cls, args):
        return predicted(args)

    @classmethod
    def predict_levels(cls, args):
        return model_levels(args)

    def test_sync_records_follow_world_switches(self):
        for name, args in self.shapes:
            with self.subTest(shape=name):
                want = switch_guests(args)
                # every sync of the model is one of a world switch
                self.assertEqual(len(want),
                                 sum(self.predicted[name]["sync_calls"].values()))
                pid = self.pid_of(name)
                got = [r["guest"] for r in self.records
                       if r["pid"] == pid and r["type"] == "sync"]
                self.assertEqual(got, want)

    def test_kernel_stayed_healthy(self):
        self.assertEqual(lab.kernel_splats(self.log), [])

    def test_walk_hooks_attached_in_mode(self):
        s = parse_metrics(self.section("metrics final"))
        for hook in self.hooks:
            self.assertEqual(select(s, "kvm_unsync_probe_attached",
                                    probe=hook, mode=self.mode), [1], hook)


class NestedFentry(Agent, unittest.TestCase):
    mode = "fentry"


class NestedKprobe(Agent, unittest.TestCase):
    mode = "kprobe"


class ShadowHost:
    """The npt=0 host: L1's own tables and its L2's shadowed in one VM."""
    host = SHADOW_HOST
    shapes = SHADOW_SHAPES


# The newest kernel Debian ships (sid, 7.2): its build inlines
# mmu_pages_clear_parents(), so those clears are derived
# (test_kernels_lab.py), and its kvm_mmu_page_role has other bits below
# guest_mode than 6.1's.  The agent is compared with the same nested model
# and with the kernel's kvmmmu tracepoints.  No selfcheck class: selfcheck.sh
# hooks mmu_pages_clear_parents and reads unsync_children as a direct
# member, and 7.2 has neither (the plain shapes have no sid selfcheck
# either).
class Sid:
    suite = "sid"
    hooks = WALK_HOOKS[:2]


class ShadowNestedFentry(ShadowHost, Agent, unittest.TestCase):
    mode = "fentry"


class ShadowNestedKprobe(ShadowHost, Agent, unittest.TestCase):
    mode = "kprobe"


class SidNestedFentry(Sid, Agent, unittest.TestCase):
    mode = "fentry"


class SidNestedKprobe(Sid, Agent, unittest.TestCase):
    mode = "kprobe"


# The npt=0 host on 7.2: the two levels split by 7.2's guest_mode bit.
class SidShadowNestedFentry(Sid, ShadowHost, Agent, unittest.TestCase):
    mode = "fentry"


class SidShadowNestedKprobe(Sid, ShadowHost, Agent, unittest.TestCase):
    mode = "kprobe"


def load_tests(loader, tests, pattern):
    """Each host's model check first, then the agent compared with it."""
    order = (NestedModelVsKernel, NestedFentry, NestedKprobe,
             ShadowNestedModelVsKernel, ShadowNestedFentry, ShadowNestedKprobe,
             SidNestedFentry, SidNestedKprobe,
             SidShadowNestedFentry, SidShadowNestedKprobe)
    return unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in order)


if __name__ == "__main__":
    unittest.main()
