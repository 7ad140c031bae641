#!/usr/bin/env python3
"""What watching the walk costs a real Linux guest, in one lab run.

Boots the VM lab with -icount (the lab's clock counts instructions, so the
host's load is not in the figures) and runs bench/guest.sh: a Linux guest
(tests/vm/labguest.py: Debian's kernel, a busybox init that forks and
execs BENCH_GUEST_FORKS short processes) as a QEMU VM on the lab's KVM
with shadow paging, timed from QEMU's start to its exit, under each
variant in turn: no BPF, the naive floor's do-nothing programs
(build/floor: every hook a plain agent needs) in each flavour, the agent in each flavour, bpftrace running bench/walk.bt.
One unmeasured run first, then BENCH_GUEST_REPEAT rounds in rotating
order.  A run counts only if the guest ran every fork and QEMU exited 0,
and, for the agent and bpftrace, if they counted syncs for that QEMU (the
exact figures against the kernel's own counts are tests/vm/
test_guest_lab.py's job: its instruments would cost time here).

Reported: each variant's median run and its cost in percent of no BPF's,
the ratios agent/floor in each flavour and agent/bpftrace, and the goals
(fentry: <= 1.0x the floor and <= 0.25% of the run; kprobe: <= 1.5x the
floor).  Writes build/bench/guest.md and prints it.

  make bench   (BENCH_GUEST_REPEAT=3 BENCH_GUEST_FORKS=100)
  bench/guest.py --log LOG   the report of an earlier run's serial log
"""

import os
import re
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import benchreport  # noqa: E402
import lab  # noqa: E402
import labagent as la  # noqa: E402
import labguest  # noqa: E402
from promtext import parse_metrics, select  # noqa: E402

FLOOR = os.path.join(REPO, "build", "floor")
BPFTRACE = "/usr/bin/bpftrace"
WALK_BT = os.path.join(HERE, "walk.bt")
VARIANTS = ("none", "naive-fentry", "naive-kprobe", "agent-fentry",
            "agent-kprobe", "bpftrace")
# agent variant -> (its floor, goal for agent/floor, goal in % of the run)
GOALS = {"agent-fentry": ("naive-fentry", 1.0, 0.25),
         "agent-kprobe": ("naive-kprobe", 1.5, None)}
BPFTRACE_GOAL = 0.5


def check_run(v, text, check):
    """(pid, ns) of a valid run, or a reason it does not count."""
    kv = la.kv_lines(text)
    forks = os.environ.get("BENCH_GUEST_FORKS", "100")
    if kv.get("rc") != "0" or \
            "guest: forked %s failed=0" % forks not in text:
        return "QEMU or the guest failed: %s" % text.strip()[-300:]
    if not kv.get("ns", "").isdigit():
        return "no time"
    pid = kv["pid"]
    if v.startswith("agent-"):
        s = parse_metrics(check)
        calls = select(s, "kvm_unsync_sync_calls_total", pid=pid,
                       vm="bench-" + v)
        if not sum(calls):
            return "the agent counted no sync for QEMU (pid %s)" % pid
    if v == "bpftrace" and not re.search(
            r"^@sync_calls\[%s\]: [1-9]" % pid, check, re.M):
        return "bpftrace counted no sync for QEMU (pid %s)" % pid
    return int(pid), int(kv["ns"])


def collect(sec, repeat):
    times, bad = {}, []
    for v in VARIANTS:
        for i in range(1, repeat + 1):
            where = "%s %d" % (v, i)
            if "run " + where not in sec:
                bad.append("%s: no run" % where)
                continue
            r = check_run(v, sec["run " + where], sec.get("check " + where,
                                                          ""))
            if isinstance(r, str):
                bad.append("%s: %s" % (where, r))
            else:
                times.setdefault(v, []).append(r[1])
    return times, bad


def pct(a, base):
    return None if a is None or base is None else 100.0 * (a - base) / base


def fmt(x, f="%+.2f%%"):
    return "—" if x is None else f % x


def report(log, repeat, forks, log_path):
    times, bad = collect(lab.sections(log), repeat)
    med = {v: statistics.median(t) for v, t in times.items()}
    base = med.get("none")
    cost = {v: pct(med.get(v), base) for v in VARIANTS if v != "none"}
    lines = [
        "# What watching the walk costs a Linux guest (one lab run)",
        "",
        "A Linux guest (Debian's kernel, busybox init, %s fork+exec) as a "
        "QEMU microvm on the lab's KVM, shadow paging (kvm_amd npt=0); its "
        "whole run, QEMU start to exit, in the lab's instruction clock "
        "(-icount), after the tool attached. %d round(s) of the variants, "
        "in an order rotating by round, after one unmeasured run; a "
        "variant's figure is the median of its runs." % (forks, repeat),
        "",
        "| variant | valid runs | run, s (median) | spread, s | cost, % of "
        "the run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in VARIANTS:
        t = times.get(v, [])
        lines.append("| %s | %d | %s | %s | %s |" % (
            v, len(t), "%.3f" % (med[v] / 1e9) if t else "—",
            "%.3f–%.3f" % (min(t) / 1e9, max(t) / 1e9) if t else "—",
            "—" if v == "none" else fmt(cost.get(v))))
    lines += ["", "| ratio | measured | goal | |", "| --- | --- | --- | --- |"]
    for v, (floor, goal, run_goal) in GOALS.items():
        r = None
        if cost.get(v) is not None and cost.get(floor):
            r = cost[v] / cost[floor]
        lines.append("| %s / %s | %s | ≤ %.1f× | %s |" % (
            v, floor, fmt(r, "%.2f×"), goal,
            "—" if r is None or cost[floor] <= 0 else
            "met" if r <= goal else "**missed**"))
        if run_goal is not None:
            c = cost.get(v)
            lines.append("| %s, %% of the run | %s | ≤ %.2f%% | %s |" % (
                v, fmt(c), run_goal, "—" if c is None else
                "met" if c <= run_goal else "**missed**"))
        b = None
        if cost.get(v) is not None and cost.get("bpftrace"):
            b = cost[v] / cost["bpftrace"]
        lines.append("| %s / bpftrace | %s | ≤ %.1f× | %s |" % (
            v, fmt(b, "%.2f×"), BPFTRACE_GOAL, "—" if b is None else
            "met" if b <= BPFTRACE_GOAL else "**missed**"))
    if bad:
        lines += ["", "Runs left out:", ""] + ["- " + x for x in bad]
    benchreport.write("guest.md", lines, log_path)
    if base is None:
        sys.exit("bench: no valid run without BPF")


def main():
    repeat = int(os.environ.get("BENCH_GUEST_REPEAT", "3"))
    forks = int(os.environ.get("BENCH_GUEST_FORKS", "100"))
    icount = os.environ.get("BENCH_ICOUNT", "shift=0,sleep=off")
    if len(sys.argv) == 3 and sys.argv[1] == "--log":
        with open(sys.argv[2], errors="replace") as f:
            return report(lab.clean(f.read()), repeat, forks, sys.argv[2])
    bins = [la.AGENT, FLOOR, BPFTRACE]
    for path in bins:
        if not os.path.exists(path):
            sys.exit("bench: needs %s (make all floor; apt-get install "
                     "bpftrace)" % path)
    os.makedirs(lab.build_dir(), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="guest-",
                                     dir=lab.build_dir()) as tmp:
        guest_bins, files = labguest.lab_payload(tmp)
        # bpftrace's libraries, QEMU's and the guest: more than 1 GiB
        rc, log = lab.run_scenario(
            os.path.join(HERE, "guest.sh"), bins + guest_bins,
            timeout=4 * 3600, files=files + [(WALK_BT, "/bench/walk.bt")],
            qemu_args=["-m", "2048", "-icount", icount],
            env={"BENCH_GUEST_REPEAT": str(repeat),
                 "BENCH_GUEST_FORKS": str(forks),
                 "BENCH_VARIANTS": " ".join(VARIANTS)})
    if rc != 0:
        sys.exit("bench: the lab run failed (rc=%s): %s" % (rc,
                                                             lab.last_log))
    return report(log, repeat, forks, lab.last_log)


if __name__ == "__main__":
    main()
