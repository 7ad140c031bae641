"""What the lab tests of the agent share.

Where the agent and the binaries the scenarios need are, the model's
prediction for a kvmwalk run, the agent.sh run (the agent in one attach
mode, shapes one after another), readers for what the scenarios print
(key=value lines, bpftool map dumps, one VM's figures in a scrape, thread
capabilities, "run" lines, sanitizer reports), and LabSections, the mixin
of a TestCase that boots one scenario and reads its sections.

Importing it puts tests/ (promtext) and tests/model/ (the model) on
sys.path.
"""

import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "model"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import lab  # noqa: E402
import kvm_shapes  # noqa: E402
import predict  # noqa: E402
from promtext import parse_metrics, select  # noqa: E402

# KUE_AGENT: another build of the agent, e.g. the ASan+UBSan one
# (make OUTPUT=build/san SAN=1; tests/vm/test_san_lab.py).
AGENT = os.environ.get("KUE_AGENT") or os.path.join(REPO, "build",
                                                    "kvm-unsync-exporter")
SAN_AGENT = os.path.join(REPO, "build", "san", "kvm-unsync-exporter")
KVMWALK = os.path.join(lab.build_dir(), "kvmwalk")
BPFTOOL = "/usr/sbin/bpftool"
CHRT = "/usr/bin/chrt"  # util-linux: busybox-static has none
WALK_HOOKS = ("mmu_sync_children", "__mmu_unsync_walk",
              "mmu_pages_clear_parents")

# name -> kvmwalk/model arguments.  What each one is for:
SHAPES = [
    ("small", "--tables 8"),                 # one walk, room to spare
    ("fit", "--tables 12"),                  # root+PDPT+PD+12 = 15 entries
    ("boundary", "--tables 13"),             # the 13th add fills the vector
    ("over", "--tables 14"),                 # one leaf past the boundary
    ("restarts", "--tables 40 --rounds 10"),  # kernel.md's data point
    ("dirs", "--tables 40 --dirs 4 --rounds 2"),  # several page directories
    ("pae", "--paging pae --tables 20 --dirs 3 --rounds 2"),  # PAE roots
    ("fault", "--tables 20 --dirs 2 --sync fault --rounds 3"),  # can_yield=0
    ("floodzap", "--tables 20 --dirs 2 --flood-zap"),  # zap walk, stale bit
    ("exitzap", "--tables 20 --dirs 2 --exit-unsync"),  # zap at VM destroy
]

CTX = ("sync", "zap")
# The guest label's values, in struct vm_guests order (enum guest_level).
GUESTS = ("l1", "l2")
SITES = ("walk", "clear_parents")
SYNC_FIELDS = ("can_yield", "root_level", "walks", "restarts", "frames",
               "leaves", "clears_walk", "clears_parents", "max_nr")
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
# Counters of what must never happen in a lab run.
ANOMALIES = ("kvm_unsync_task_state_full_total",
             "kvm_unsync_stack_overflow_total",
             "kvm_unsync_orphan_exits_total",
             "kvm_unsync_vm_stats_full_total",
             "kvm_unsync_scrape_errors_total")

# What the sanitized agent runs with in the VM, and what its reports say.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
SAN_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
               "UndefinedBehaviorSanitizer")


def model(args, variant="stock", release=None):
    """The model's figures for kvmwalk ARGS on `variant`; release: the
    stock kernel's (tests/model/kernels.py; None: 6.1)."""
    a = predict.parse_args(args.split())
    if variant == "stock":
        return kvm_shapes.Run(predict.shape_from_args(a),
                              kernel=release).run().report()
    return kvm_shapes.Run(predict.shape_from_args(a),
                          variant=variant).run().report()


def model_levels(args, variant="stock", release=None):
    """{guest label: the model's figures} for kvmwalk ARGS, by the
    role.guest_mode of the pages counted: a plain shape's are all "l1"; a
    nested shape's (tests/model/nested.py) split as that model says."""
    import compare_nested
    import nested
    if not compare_nested.is_nested(args):
        return {"l1": model(args, variant, release)}
    shape = compare_nested.shape_from_args(args)
    if compare_nested.parse_args(args.split()).nested == "shadow":
        return {g: rec.report() for g, rec in
                nested.predict_shadow(shape, split=True).items()}
    return nested.by_guest_level(nested.predict(shape))


def build_kernel(flavour):
    """bzImage of tests/kernel/build.sh FLAVOUR (cached outside the repo)."""
    r = subprocess.run(["sh", os.path.join(REPO, "tests", "kernel", "build.sh"),
                        flavour], stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise AssertionError("tests/kernel/build.sh %s failed" % flavour)
    return r.stdout.strip().splitlines()[-1]


def require(paths, why="lab test needs %s (make all)"):
    """Skip the TestCase being set up unless every path exists."""
    for path in paths:
        if not os.path.exists(path):
            raise unittest.SkipTest(why % path)


def shapes_env(shapes):
    """KUE_SHAPES for agent.sh: "name:args;..." with ',' for ' '."""
    return ";".join("%s:%s" % (n, a.replace(" ", ",")) for n, a in shapes)


def run_agent(mode, trace="syncs", kernel=None, shapes=SHAPES,
              qemu_args=(), env=None, suite=None, agent_args=""):
    """One VM (scenarios/agent.sh): the agent in `mode`, every shape.
    kernel: a bzImage with KVM built in, or None for a Debian kernel and
    its modules: the host's suite's, or that of `suite` (trixie, sid);
    qemu_args, env: the host's CPU and kvm_amd options; agent_args: more
    agent flags.  Returns (rc, log, sections)."""
    extra = {"kernel": kernel} if kernel else {"suite": suite}
    rc, log = lab.run_scenario(
        os.path.join(HERE, "scenarios", "agent.sh"),
        [AGENT, KVMWALK, BPFTOOL, CHRT], timeout=900, qemu_args=qemu_args,
        env=dict(env or {}, KUE_MODE=mode, KUE_SHAPES=shapes_env(shapes),
                 KUE_TRACE=trace, KUE_AGENT_ARGS=agent_args),
        **extra)
    return rc, log, lab.sections(log)


def trace_records(sec):
    """The agent's --trace --json records in a run's "trace" section."""
    return [json.loads(line) for line in sec.get("trace", "").splitlines()
            if line.startswith("{")]


def kv_lines(text):
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def run_lines(text):
    """The "runs" section of soak.sh and overflow.sh: one (name, pid, rc,
    args) per "run N name=.. pid=.. rc=.. args=.." line."""
    runs = []
    for line in text.splitlines():
        if not line.startswith("run "):
            continue
        head, args = line.split(" args=", 1)
        f = kv_lines("\n".join(head.split()[2:]))
        runs.append((f["name"], f["pid"], f["rc"], args.strip()))
    return runs


def map_values(dump_text, key):
    """Sum bpftool's formatted per-CPU values for one key."""
    total = None
    for entry in json.loads(dump_text):
        f = entry["formatted"]
        if f["key"] != key:
            continue
        for cpu in f["values"]:
            total = add_nested(total, cpu["value"])
    return total


def add_nested(a, b):
    if a is None:
        return b
    if isinstance(b, dict):
        return {k: add_nested(a[k], b[k]) for k in b}
    if isinstance(b, list):
        return [add_nested(x, y) for x, y in zip(a, b)]
    return a + b


def agent_figures(samples, pid, guest="l1"):
    """The model's keys, read from one VM's series of a scrape, at one
    guest level (the guest label)."""
    def one(name, **labels):
        got = select(samples, name, pid=str(pid), guest=guest, **labels)
        if len(got) != 1:
            raise AssertionError("%s{pid=%s,%s}: %d samples" %
                                 (name, pid, labels, len(got)))
        return got[0]

    return {
        "sync_calls": {r: one("kvm_unsync_sync_calls_total", result=r)
                       for r in ("ok", "eintr")},
        "walks": {c: {r: one("kvm_unsync_walks_total", context=c, result=r)
                      for r in ("done", "enospc")} for c in CTX},
        "frames": {c: one("kvm_unsync_walk_frames_total", context=c)
                   for c in CTX},
        "restarts": one("kvm_unsync_restarts_total"),
        "leaves": {c: one("kvm_unsync_walk_leaves_total", context=c)
                   for c in CTX},
        "clears": {c: {s: one("kvm_unsync_bitmap_clears_total", context=c,
                              site=s) for s in SITES} for c in CTX},
        "pages_synced": one("kvm_unsync_pages_synced_total"),
        "pages_unsynced": one("kvm_unsync_pages_unsynced_total"),
    }


def guests_of(samples, pid):
    """The guest label values one VM's series carry, sorted."""
    return sorted({dict(lbl).get("guest") for (_, lbl), _ in samples.items()
                   if dict(lbl).get("pid") == str(pid)})


def map_figures(value, guest="l1"):
    """The same keys, from the pinned vm_stats map: one guest level's
    struct vm_stats of the entry's struct vm_guests."""
    v = value["guest"][GUESTS.index(guest)]
    return {
        "sync_calls": {"ok": v["sync_calls"][0], "eintr": v["sync_calls"][1]},
        "walks": {c: {"done": v["walks"][i][0], "enospc": v["walks"][i][1]}
                  for i, c in enumerate(CTX)},
        "frames": {c: v["frames"][i] for i, c in enumerate(CTX)},
        "restarts": v["restarts"],
        "leaves": {c: v["leaves"][i] for i, c in enumerate(CTX)},
        "clears": {c: {s: v["clears"][i][j] for j, s in enumerate(SITES)}
                   for i, c in enumerate(CTX)},
        "pages_synced": v["pages_synced"],
        "pages_unsynced": v["pages_unsynced"],
    }


# The agent's threads, by name: main, libmicrohttpd's, kue-capless that
# created it, the connection guard's watchdog, the two password checkers.
AGENT_THREADS = ["MHD", "kue-capless", "kue-http-auth", "kue-http-auth",
                 "kue-http-guard", "kvm-unsync-expo"]


def thread_names(t):
    """thread_caps()'s threads as AGENT_THREADS spells them (MHD's own
    thread names vary with its version: their prefix only)."""
    return sorted("MHD" if c.startswith("MHD") else c for c, _ in t.values())


def thread_caps(text):
    """A "threads" section: (pid, {tid: (comm, {field: value})})."""
    pid, out, tid = None, {}, None
    for line in text.splitlines():
        if line.startswith("pid="):
            pid = int(line[4:])
        elif line.startswith("tid="):
            t, comm = line.split(" ", 1)
            tid = int(t[4:])
            out[tid] = (comm[len("comm="):], {})
        elif ":" in line and tid is not None:
            k, v = line.split(":", 1)
            out[tid][1][k] = v.strip()
    return pid, out


def sanitizer_lines(text):
    return [ln for ln in text.splitlines()
            if any(m in ln for m in SAN_MARKERS)]


class LabSections:
    """For a TestCase whose setUpClass booted one scenario (boot(), or set
    rc, log, sec = lab.sections(log) and last_log itself)."""

    @classmethod
    def boot(cls, scenario, binaries, timeout, **kw):
        """lab.run_scenario(scenarios/SCENARIO, ...), kept in the class."""
        cls.rc, cls.log = lab.run_scenario(
            os.path.join(HERE, "scenarios", scenario), binaries, timeout, **kw)
        cls.last_log = lab.last_log
        cls.sec = lab.sections(cls.log)

    def section(self, name):
        if name not in self.sec:
            self.fail("lab printed no '%s' section (rc=%s); log: %s" %
                      (name, self.rc, getattr(self, "last_log",
                                              lab.last_log)))
        return self.sec[name]

    def final(self):
        """The "metrics final" scrape, parsed."""
        return parse_metrics(self.section("metrics final"))

    def pid_of(self, name):
        """The pid of the kvmwalk run in section "shape NAME", which must
        have succeeded."""
        text = self.section("shape " + name)
        self.assertEqual(kv_lines(text).get("rc"), "0", text)
        return int(text.split("pid=")[1].split()[0])

    def assert_capless(self, threads):
        """Every thread of thread_caps(): no capability, no_new_privs."""
        for tid, (comm, st) in threads.items():
            for f in ("CapPrm", "CapEff", "CapBnd"):
                self.assertEqual(int(st[f], 16), 0, (comm, f, st))
            self.assertEqual(st["NoNewPrivs"], "1", comm)

    def assert_zero(self, samples, names):
        """Each counter in `names` is there, once, and 0."""
        for name in names:
            self.assertEqual(select(samples, name), [0], name)

    def assert_walk_hooks_attached(self, samples):
        """Each walk hook the agent attaches by default attached once, all
        in one mode (fentry or kprobe): that mode.  mmu_pages_clear_parents
        is not one of them: its clears are derived on a stock kernel."""
        modes = set()
        for hook in WALK_HOOKS[:2]:
            got = [(dict(lbl)["mode"], v) for (n, lbl), v in samples.items()
                   if n == "kvm_unsync_probe_attached" and
                   dict(lbl)["probe"] == hook]
            self.assertEqual(len(got), 1, got)
            self.assertIn(got[0][0], ("fentry", "kprobe"), hook)
            self.assertEqual(got[0][1], 1, hook)
            modes.add(got[0][0])
        self.assertEqual(len(modes), 1, modes)
        return modes.pop()

    def test_scenario_ran(self):
        self.assertEqual(self.rc, 0, "lab log: %s" %
                         getattr(self, "last_log", lab.last_log))


class NoSanitizerReport:
    """For a LabSections TestCase whose scenario prints the agent's exit
    code and stderr in its "shutdown" section."""

    def test_clean_shutdown_no_sanitizer_report(self):
        text = self.section("shutdown")
        self.assertEqual(kv_lines(text).get("rc"), "0", text)
        self.assertEqual(sanitizer_lines(self.log), [], self.last_log)
