#!/usr/bin/env python3
"""What probing the unsync walk costs, against the naive floor and
bpftrace, in one lab run.

Boots the VM lab (tests/vm/lab.py: Debian's kernel, KVM with shadow
paging under QEMU TCG) and runs bench/overhead.sh: BENCH_REPEAT times, in
a rotating order, each variant (no BPF; in each flavour the naive floor,
do-nothing programs on every hook a straightforward agent needs, and
do-nothing programs on the agent's own hooks, bench/floor.c; the agent in
fentry and in kprobe mode; Debian's bpftrace running bench/walk.bt) runs
each shape for BENCH_ROUNDS rounds of dirty-then-sync.  The measure is kvmwalk --time: the VMM's own time in
KVM_RUN, round by round, so trampolines, kprobe traps and the agent's
wake-ups are all in it.  The shadow shapes run on kvm_amd npt=0, the nested
one (L2 on L1's NPT) on npt=1 nested=1, in the same boot.  A run counts
only if its figures equal the model's (tests/vm/labagent.py model(),
tests/model/nested.py for the nested shape, at each guest level for the
agent): the agent's scrape, bpftrace's maps, or
(floors) the do-nothing programs' run counts.  A short run with bpf_stats
on gives each program's share beside it (the measured runs have bpf_stats
off, so their times carry no accounting).

Reported per shape, as medians (a run's figure is the median of its
rounds; a variant's, the median over repeats): each variant's added time
per round over no BPF, the ratios agent/naive floor in each flavour,
agent/bpftrace and agent/its own hooks' floor, the goals (agent <= 1.0x
the naive floor in fentry mode, <= 1.5x in kprobe mode, <= 0.5x bpftrace)
met or missed and, where missed, where the agent's time goes.  Emulated machine (TCG): only ratios mean anything.

  make bench   (BENCH_REPEAT=3 BENCH_ROUNDS=200 BENCH_STATS_ROUNDS=50
                BENCH_WARM_ROUNDS=20 by default)
Writes build/bench/overhead.md and prints it.  `bench/overhead.py --log
LOG` writes the report of an earlier run from its serial log (same
BENCH_* settings).  BENCH_VARIANTS="none naive-fentry agent-fentry" runs
only those (with KUE_AGENT=another build: what a change to the programs
saves).
"""

import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
sys.path.insert(0, os.path.join(REPO, "tests", "model"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import compare_nested  # noqa: E402
import benchreport  # noqa: E402
import lab  # noqa: E402
import labagent as la  # noqa: E402
from promtext import parse_metrics  # noqa: E402

FLOOR = os.path.join(REPO, "build", "floor")
BPFTRACE = "/usr/bin/bpftrace"
WALK_BT = os.path.join(HERE, "walk.bt")

SHAPES = [
    ("few", "--tables 8", "few leaves"),
    ("restarts", "--tables 40", "many restarts"),
    ("dirs", "--tables 40 --dirs 4", "several directories"),
    # L2 on L1's nested page tables (npt=1 host): 13 leaves fill the
    # 16-entry pvec with root, PDPT and PD, so every sync restarts once
    ("nested", "--nested --tables 13", "nested, L2 on L1's NPT"),
]
# kvm_amd's parameters each shape needs (overhead.sh reloads kvm_amd
# between shapes that differ): shadow paging, or the npt=1 nested host
# of tests/vm/test_nested_lab.py
SHADOW_HOST = "npt=0"
NPT_HOST = "npt=1 nested=1"
NPT_CPU = ["-cpu", "qemu64,+svm,+npt"]


def host_of(args):
    return NPT_HOST if compare_nested.is_nested(args) else SHADOW_HOST


def model(args):
    """The model's figures for kvmwalk ARGS, all guest levels together:
    tests/model/nested.py for a nested shape, kvm_shapes otherwise."""
    if compare_nested.is_nested(args):
        return compare_nested.model_for(args).report()
    return la.model(args)

ALL_VARIANTS = ("none", "naive-fentry", "own-fentry", "agent-fentry",
                "naive-kprobe", "own-kprobe", "agent-kprobe", "bpftrace")
# BENCH_VARIANTS="none agent-fentry": a subset, to try a change quickly
VARIANTS = tuple(v for v in ALL_VARIANTS if v in os.environ.get(
    "BENCH_VARIANTS", " ".join(ALL_VARIANTS)).split())
# agent variant -> [(reference, the goal for agent/reference or None)]:
# the naive floor (the goal), the floor of the agent's own hooks (the old
# ratio, reported beside it)
AGAINST_FLOOR = {
    "agent-fentry": [("naive-fentry", 1.0), ("own-fentry", None)],
    "agent-kprobe": [("naive-kprobe", 1.5), ("own-kprobe", None)],
}
BPFTRACE_GOAL = 0.5
# floor program -> the model's count its run count must equal (tp: the
# naive floor's raw tracepoint, tb: the own hooks' BTF tracepoint)
FLOOR_COUNTS = {"sync": "sync_calls", "walk": "frames", "tp_sync":
                "pages_synced", "tb_sync": "pages_synced"}


def time_line(text):
    """(pid, [ns per round]) of a kvmwalk --time run, or a reason."""
    kv = la.kv_lines(text)
    if kv.get("rc") != "0":
        return "kvmwalk rc=%s: %s" % (kv.get("rc"), text.strip()[-200:])
    pid = re.search(r"kvmwalk: ok pid=(\d+)", text)
    m = re.search(r"^kvmwalk: time .* round_ns=([\d,]+)$", text, re.M)
    if not pid or not m:
        return "no kvmwalk ok/time line"
    return int(pid.group(1)), [int(x) for x in m.group(1).split(",")]


def prog_delta(before, after):
    """{name: (run_cnt, run_time_ns)} of the programs that ran in between.
    Names that more than one of them has (the kernel keeps 15 bytes:
    bpftrace's kprobe and kretprobe on one function) get "#1", "#2" in
    load order."""
    def read(text):
        return {p["id"]: (p.get("name", str(p["id"])), p.get("run_cnt", 0),
                          p.get("run_time_ns", 0)) for p in json.loads(text)}
    b, a = read(before), read(after)
    ran = []
    for i, (n, c, t) in sorted(a.items()):
        _, c0, t0 = b.get(i, (n, 0, 0))
        if c - c0:
            ran.append((n, c - c0, t - t0))
    names = [n for n, _, _ in ran]
    out, seen = {}, {}
    for n, c, t in ran:
        seen[n] = seen.get(n, 0) + 1
        out[n if names.count(n) == 1 else "%s#%d" % (n, seen[n])] = (c, t)
    return out


def want_total(want, key):
    v = want[key]
    if key == "sync_calls":
        return sum(v.values())
    if key == "frames":
        return v["sync"] + v["zap"]
    return v


def check_agent(scrape, pid, levels):
    """levels: {guest label: the model's figures at that level}; a nested
    shape on the npt=1 host has all of them under guest="l2"."""
    samples = parse_metrics(scrape)
    for guest, want in sorted(levels.items()):
        got = la.agent_figures(samples, pid, guest)
        exp = {k: want[k] for k in got}
        if got != exp:
            return "agent figures (guest=%s) differ from the model: " \
                "%s != %s" % (guest, got, exp)
    return None


def bpftrace_maps(text):
    """{map: {pid: count}} from bpftrace's exit output."""
    out = {}
    for m in re.finditer(r"^@(\w+)\[(\d+)\]: (\d+)$", text, re.M):
        out.setdefault(m.group(1), {})[int(m.group(2))] = int(m.group(3))
    return out


def check_bpftrace(maps, pid, want):
    exp = {
        "sync_calls": want_total(want, "sync_calls"),
        "walks": sum(want["walks"]["sync"].values()) +
        sum(want["walks"]["zap"].values()),
        "enospc": want["walks"]["sync"]["enospc"] +
        want["walks"]["zap"]["enospc"],
        "frames": want_total(want, "frames"),
        "pages_synced": want["pages_synced"],
    }
    got = {k: maps.get(k, {}).get(pid, 0) for k in exp}
    if got != exp:
        return "bpftrace counts differ from the model: %s != %s" % (got,
                                                                     exp)
    return None


def check_floor(progs, v, want):
    flavour = "fe" if "fentry" in v else "kp"
    for suffix, key in FLOOR_COUNTS.items():
        if suffix == ("tb_sync" if v.startswith("naive-") else "tp_sync"):
            continue
        name = "nop_" + suffix if "_" in suffix else \
            "nop_%s_%s" % (flavour, suffix)
        got = progs.get(name, (0, 0))[0]
        if got != want_total(want, key):
            return "%s ran %d times, the model says %d" % (
                name, got, want_total(want, key))
    return None


class Bench:
    def __init__(self, sec, repeat, rounds, stats_rounds):
        self.sec = sec
        self.repeat = repeat
        self.rounds = rounds
        self.stats_rounds = stats_rounds
        self.bad = []
        # (v, s) -> [median ns per round of each valid run]
        self.times = {}
        # (v, s) -> [{prog: (calls per round, ns per call, ns per round)}]
        self.progs = {}

    def run(self):
        bt = {i: bpftrace_maps(self.sec.get("bpftrace %d" % i, ""))
              for i in range(1, self.repeat + 1)}
        for s, args, _ in SHAPES:
            run_args = "%s --rounds %d" % (args, self.rounds)
            want = model(run_args)
            levels = la.model_levels(run_args)
            want_stats = model("%s --rounds %d" % (args, self.stats_rounds))
            for v in VARIANTS:
                for i in range(1, self.repeat + 1):
                    self.one(v, s, i, want, levels, want_stats, bt[i])

    def one(self, v, s, i, want, levels, want_stats, bt):
        where = "%s %s %d" % (v, s, i)
        run = time_line(self.sec.get("run " + where, ""))
        if isinstance(run, str):
            self.bad.append("%s: %s" % (where, run))
            return
        pid, rounds = run
        err = None
        progs = {}
        if v != "none":
            stats = time_line(self.sec.get("stats " + where, ""))
            if isinstance(stats, str):
                err = "stats run: " + stats
            else:
                progs = prog_delta(self.sec["progs %s.0" % where],
                                   self.sec["progs %s.1" % where])
        if err is None and v.startswith("agent-"):
            err = check_agent(self.sec["check " + where], pid, levels)
        elif err is None and v == "bpftrace":
            err = check_bpftrace(bt, pid, want) or \
                check_bpftrace(bt, stats[0], want_stats)
        elif err is None and v.startswith(("naive-", "own-")):
            err = check_floor(progs, v, want_stats)
        if err:
            self.bad.append("%s: %s" % (where, err))
            return
        self.times.setdefault((v, s), []).append(statistics.median(rounds))
        if progs:
            n = self.stats_rounds
            self.progs.setdefault((v, s), []).append(
                {p: (c / n, t / c, t / n) for p, (c, t) in progs.items()})

    def med(self, v, s):
        t = self.times.get((v, s))
        return statistics.median(t) if t else None

    def added(self, v, s):
        a, b = self.med(v, s), self.med("none", s)
        return None if a is None or b is None else a - b


# the hook a program runs at, by parts of its name (the kernel keeps 15
# bytes of it), for the agent's and the floors': first match wins
HOOKS = ((("tp_sync", "tb_sync", "tpb_sync"), "kvm_mmu_sync_page"),
         (("tp_unsync", "tb_unsync", "tpb_unsync"), "kvm_mmu_unsync_page"),
         (("clear",), "mmu_pages_clear_parents"),
         (("walk", "unsyn"), "__mmu_unsync_walk"),
         (("sync",), "mmu_sync_children"))


def hook_of(prog):
    for keys, hook in HOOKS:
        if any(k in prog for k in keys):
            return hook
    return prog


def per_hook(runs):
    """{hook: median ns per round} over the runs' programs."""
    out = {}
    for n in {n for r in runs for n in r}:
        t = statistics.median(r.get(n, (0, 0, 0))[2] for r in runs)
        out[hook_of(n)] = out.get(hook_of(n), 0) + t
    return out


def us(ns):
    return "—" if ns is None else "%.1f" % (ns / 1000)


def ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def verdict(r, goal):
    """met, missed, or n/a when the reference's added cost is not above
    no BPF's (the noise of this run hid it); "reported" for a ratio
    without a goal."""
    if goal is None:
        return "reported"
    if r is None:
        return "n/a"
    if r < 0:
        return "n/a"
    return "met" if r <= goal else "missed"


def fmt_ratio(r):
    return "—" if r is None else "%.2f×" % r


def fmt_goal(goal):
    return "—" if goal is None else "≤ %.1f×" % goal


def shape_report(b, s, args, title):
    want = model("%s --rounds 1" % args)
    lines = [
        "## %s (`%s`)" % (title, args),
        "",
        "Per round: %d tables dirtied, one sync of %d walk frames, %d "
        "top-level walks (%d restarts), %d pages synced." % (
            want["pages_unsynced"], want_total(want, "frames"),
            sum(want["walks"]["sync"].values()), want["restarts"],
            want["pages_synced"]),
        "",
        "| variant | valid runs | µs per round (median) | spread over runs "
        "| added over none, µs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in VARIANTS:
        t = b.times.get((v, s), [])
        spread = "%s–%s" % (us(min(t)), us(max(t))) if t else "—"
        lines.append("| %s | %d | %s | %s | %s |" % (
            v, len(t), us(b.med(v, s)), spread,
            "—" if v == "none" else us(b.added(v, s))))
    lines += ["", "| ratio | measured | goal | |", "| --- | --- | --- | --- |"]
    goals = []
    bt = b.added("bpftrace", s)
    for v, refs in AGAINST_FLOOR.items():
        for floor, goal in refs:
            r = ratio(b.added(v, s), b.added(floor, s))
            goals.append((v, floor, r, goal, verdict(r, goal)))
    for v in AGAINST_FLOOR:
        r = ratio(b.added(v, s), bt)
        goals.append((v, "bpftrace", r, BPFTRACE_GOAL,
                      verdict(r, BPFTRACE_GOAL)))
    for v, ref, r, goal, ok in goals:
        lines.append("| %s / %s | %s | %s | %s |" % (
            v, ref, fmt_ratio(r), fmt_goal(goal),
            "**missed**" if ok == "missed" else ok))
    lines += ["", "Where the time goes (bpf_stats, %d-round runs with "
              "bpf_stats on; ns per round, medians):" % b.stats_rounds, "",
              "| variant | program | calls per round | ns per call | "
              "ns per round |", "| --- | --- | --- | --- | --- |"]
    bpf_per_round = {}
    for v in (v for v in VARIANTS if v != "none"):
        runs = b.progs.get((v, s), [])
        names = sorted({n for r in runs for n in r})
        total = 0
        for n in names:
            calls, per_call, per_round = (
                statistics.median(r.get(n, (0, 0, 0))[k] for r in runs)
                for k in range(3))
            total += per_round
            lines.append("| %s | %s | %.1f | %.0f | %.0f |" % (
                v, n, calls, per_call, per_round))
        bpf_per_round[v] = total
    lines += ["", "Missed goals, where the agent's time goes beyond its "
              "reference:", ""]
    missed = [g for g in goals if g[4] == "missed"]
    if not missed:
        lines.append("- none: every goal is met for this shape.")
    for v, ref, r, goal, _ in missed:
        extra = None
        if b.added(v, s) is not None and b.added(ref, s) is not None:
            extra = b.added(v, s) - b.added(ref, s)
        in_progs = bpf_per_round.get(v, 0) - bpf_per_round.get(ref, 0)
        top = sorted(((statistics.median(x.get(n, (0, 0, 0))[2]
                                         for x in b.progs.get((v, s), [])), n)
                      for n in {n for x in b.progs.get((v, s), []) for n in x}),
                     reverse=True)[:3]
        hooks = ""
        if not ref.startswith("bpftrace"):
            a, f = per_hook(b.progs.get((v, s), [])), \
                per_hook(b.progs.get((ref, s), []))
            hooks = " By hook, the agent's programs beyond the floor's: " + \
                ", ".join("%s %s µs" % (h, us(a[h] - f.get(h, 0)))
                          for h in sorted(a, key=lambda h: f.get(h, 0) - a[h]))
        lines.append(
            "- %s / %s = %s (goal %s): %s µs per round more than %s; "
            "the programs' own run time (bpf_stats) is %s µs per round more "
            "than %s's; the rest (%s µs) is outside the programs: the "
            "attach machinery (trampolines, kprobe traps) of hooks one side "
            "has and the other has not, which bpf_stats does not see.%s" % (
                v, ref, fmt_ratio(r), fmt_goal(goal), us(extra), ref,
                us(in_progs), ref,
                us(None if extra is None else extra - in_progs), hooks))
    return lines, goals


def main():
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "200"))
    stats_rounds = int(os.environ.get("BENCH_STATS_ROUNDS", "50"))
    warm = int(os.environ.get("BENCH_WARM_ROUNDS", "20"))
    icount = os.environ.get("BENCH_ICOUNT", "shift=0,sleep=off")
    bins = [la.AGENT, la.KVMWALK, la.CHRT, la.BPFTOOL, FLOOR, BPFTRACE]
    if len(sys.argv) == 3 and sys.argv[1] == "--log":
        # the report of an earlier run, from its serial log
        with open(sys.argv[2], errors="replace") as f:
            log = lab.clean(f.read())
        return report(log, repeat, rounds, stats_rounds, warm, sys.argv[2],
                      icount)
    for path in bins:
        if not os.path.exists(path):
            sys.exit("bench: needs %s (make all floor kvmwalk; apt-get "
                     "install bpftool bpftrace)" % path)
    shapes = ";".join("%s:%s:%s" % (s, a.replace(" ", ","),
                                    host_of(a).replace(" ", ","))
                      for s, a, _ in SHAPES)
    # bpftrace and its libraries (LLVM, clang) are ~200 MiB unpacked in
    # the initramfs: more memory than the lab's default 1 GiB.
    qemu_args = ["-m", "2048"]
    # SVM with nested paging for the npt=1 host; the shadow shapes run
    # with kvm_amd npt=0 on the same CPU
    if any(host_of(a) == NPT_HOST for _, a, _ in SHAPES):
        qemu_args += NPT_CPU
    # The guest's clock counts instructions (1 ns each), not the host's
    # time, so that other work on the host does not land in the rounds'
    # times (under load, real-time rounds vary 4x from one to the next).
    # sleep=off: an idle guest jumps to its next timer at once.
    if icount != "off":
        qemu_args += ["-icount", icount]
    rc, log = lab.run_scenario(
        os.path.join(HERE, "overhead.sh"), bins, timeout=7200,
        files=[(WALK_BT, "/bench/walk.bt")], qemu_args=qemu_args,
        env={"BENCH_REPEAT": str(repeat), "BENCH_ROUNDS": str(rounds),
             "BENCH_STATS_ROUNDS": str(stats_rounds),
             "BENCH_WARM_ROUNDS": str(warm), "BENCH_SHAPES": shapes,
             "BENCH_VARIANTS": " ".join(VARIANTS)})
    if rc != 0:
        sys.exit("bench: the lab run failed (rc=%s): %s" % (rc, lab.last_log))
    return report(log, repeat, rounds, stats_rounds, warm, lab.last_log,
                  icount)


def report(log, repeat, rounds, stats_rounds, warm, log_path, icount):
    b = Bench(lab.sections(log), repeat, rounds, stats_rounds)
    b.run()
    lines = [
        "# Probe cost on the unsync walk: agent vs floor vs bpftrace "
        "(one lab run)",
        "",
        "kvmwalk --time: the VMM's own time in KVM_RUN per round (one "
        "dirty-then-sync), so every cost is counted. %d repeats in "
        "rotating order of %d variants × %d shapes, %d rounds per run after "
        "a %d-round warm-up; a run's figure is the median of its rounds, a "
        "variant's the median over its valid runs. Each run was checked "
        "against the model first (agent: its scrape; bpftrace: its maps; "
        "floors: their programs' run counts). QEMU TCG, one vCPU, -icount "
        "%s: the guest's clock counts instructions (1 ns each, whatever the "
        "host's load), so these are instruction counts; what an instruction "
        "costs on hardware (a kprobe's trap, cache misses) is not in them." % (
            repeat, len(VARIANTS), len(SHAPES), rounds, warm, icount),
        "",
        "Variants: `none` (no BPF); `naive-fentry`, `naive-kprobe`, the "
        "naive floor (bench/floor.c: do-nothing entry and exit programs on "
        "mmu_sync_children, __mmu_unsync_walk and mmu_pages_clear_parents "
        "where the kernel has it, plus the kvm_mmu_sync_page and "
        "kvm_mmu_unsync_page raw tracepoints); `own-fentry`, `own-kprobe` "
        "(`floor --hooks=agent`: do-nothing programs on the agent's own "
        "hooks, the two functions and the tracepoints as tp_btf); "
        "`agent-fentry` (`--attach=fentry`), `agent-kprobe` "
        "(`--attach=kprobe`); "
        "`bpftrace` (Debian's bpftrace, bench/walk.bt: kprobes and a "
        "tracepoint counting syncs, walks, -ENOSPC at depth 0, frames, "
        "synced pages per process).",
        "",
    ]
    if b.bad:
        lines += ["Runs left out (figures not as the model says, or the "
                  "run failed):", ""] + ["- " + x for x in b.bad] + [""]
    summary = []
    for s, args, title in SHAPES:
        shape_lines, goals = shape_report(b, s, args, title)
        lines += shape_lines + [""]
        summary += [(title, g) for g in goals]
    lines += ["## Goals", "", "| shape | ratio | measured | goal | |",
              "| --- | --- | --- | --- | --- |"]
    for title, (v, ref, r, goal, ok) in summary:
        lines.append("| %s | %s / %s | %s | %s | %s |" % (
            title, v, ref, fmt_ratio(r), fmt_goal(goal), ok))
    benchreport.write("overhead.md", lines, log_path)
    if not any(b.times.values()):
        sys.exit("bench: no valid run")


if __name__ == "__main__":
    main()
