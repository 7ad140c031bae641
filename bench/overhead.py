#!/usr/bin/env python3
"""What the agent's probes cost the walk, measured in one lab run.

Boots the VM lab (tests/vm/lab.py: Debian's kernel, KVM with shadow
paging under QEMU TCG) and runs bench/overhead.sh: one kvmwalk workload
(40 tables, BENCH_ROUNDS rounds of dirty-then-sync) with no agent, then
under the agent with --attach=fentry and --attach=kprobe, alternating,
BENCH_REPEAT times.  The kernel's bpf_stats give each program's run count
and run time; the agent's own sync-duration histogram gives the time spent
in mmu_sync_children.  Reported, as medians over the repeats:

- BPF time per sync, and where it goes: each program's calls per sync and
  time per call;
- BPF time in the walk / time in mmu_sync_children: the share of each sync
  spent in the agent's programs (kprobe mode also pays for the kprobe
  machinery, which bpf_stats does not see: compare the mean sync durations);
- the workload's wall time under each mode / with no agent.

All times are the emulated machine's (TCG), so only the ratios mean
anything, and only within this run.  Emulation translates code the first
time it runs (the agent's freshly JITed programs too), so a warm-up run
comes first and the figures are differences across the measured run.
Each run's counts are checked against the model first: a run that did not
do the expected work is not reported.

  make bench            (BENCH_REPEAT=3 BENCH_ROUNDS=20 by default)
Writes build/bench/overhead.md and prints it.
"""

import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
sys.path.insert(0, os.path.join(REPO, "tests", "model"))
sys.path.insert(0, os.path.join(REPO, "tests"))

import lab  # noqa: E402
import labagent as la  # noqa: E402
from promtext import parse_metrics, select  # noqa: E402

MODES = ("fentry", "kprobe")
# the programs that run inside a sync (tp_unsync_page runs at page faults)
PREFIXES = ("fentry_", "fexit_", "kprobe_", "kretprobe_", "tp_sync_page")


def progs(text):
    """{name: (run_cnt, run_time_ns)} of the agent's programs."""
    out = {}
    for p in json.loads(text):
        name = p.get("name", "")
        if name.startswith(PREFIXES) and p.get("run_cnt"):
            out[name] = (p["run_cnt"], p["run_time_ns"])
    return out


def one_run(sec, mode, i, want):
    """The figures of one run under the agent, or a reason it is invalid."""
    run = la.kv_lines(sec["run %s %d" % (mode, i)])
    if run.get("rc") != "0":
        return "kvmwalk rc=%s" % run.get("rc")
    pid = sec["run %s %d" % (mode, i)].split("pid=")[1].split()[0]
    s0 = parse_metrics(sec["metrics %s %d.0" % (mode, i)])
    s1 = parse_metrics(sec["metrics %s %d.1" % (mode, i)])
    calls = sum(select(s1, "kvm_unsync_sync_calls_total", pid=pid))
    frames = sum(select(s1, "kvm_unsync_walk_frames_total", pid=pid,
                        context="sync"))
    if calls != sum(want["sync_calls"].values()) or \
            frames != want["frames"]["sync"]:
        return "counts differ from the model (%d syncs, %d frames)" % (
            calls, frames)

    def delta(name):
        return select(s1, name)[0] - select(s0, name)[0]

    # the histogram is global: only the measured VM ran in between
    if delta("kvm_unsync_sync_duration_seconds_count") != calls:
        return "other syncs ran during the measured run"
    dur_ns = delta("kvm_unsync_sync_duration_seconds_sum") * 1e9
    p0 = progs(sec["progs %s %d.0" % (mode, i)])
    p1 = progs(sec["progs %s %d.1" % (mode, i)])
    p = {n: (c - p0.get(n, (0, 0))[0], t - p0.get(n, (0, 0))[1])
         for n, (c, t) in p1.items()}
    p = {n: ct for n, ct in p.items() if ct[0]}
    bpf_ns = sum(t for _, t in p.values())
    return {
        "syncs": calls,
        "frames": frames,
        "sync_ns": dur_ns / calls,
        "bpf_per_sync_ns": bpf_ns / calls,
        "bpf_share": bpf_ns / dur_ns,
        "wall_cs": int(run["centiseconds"]),
        # per program: (calls per sync, mean ns per call, ns per sync)
        "progs": {n: (c / calls, t / c, t / calls)
                  for n, (c, t) in p.items()},
    }


def main():
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "20"))
    for path in (la.AGENT, la.KVMWALK, la.CHRT, la.BPFTOOL):
        if not os.path.exists(path):
            sys.exit("bench: needs %s (make all; apt-get install bpftool)"
                     % path)
    want = la.model("--tables 40 --rounds %d" % rounds)
    rc, log = lab.run_scenario(
        os.path.join(HERE, "overhead.sh"),
        [la.AGENT, la.KVMWALK, la.CHRT, la.BPFTOOL], timeout=1800,
        env={"BENCH_REPEAT": str(repeat), "BENCH_ROUNDS": str(rounds)})
    if rc != 0:
        sys.exit("bench: the lab run failed (rc=%s): %s" % (rc, lab.last_log))
    sec = lab.sections(log)
    none_cs = [int(la.kv_lines(sec["run none %d" % i])["centiseconds"])
               for i in range(1, repeat + 1)]
    res, bad = {}, []
    for mode in MODES:
        for i in range(1, repeat + 1):
            r = one_run(sec, mode, i, want)
            if isinstance(r, str):
                bad.append("%s run %d: %s" % (mode, i, r))
            else:
                res.setdefault(mode, []).append(r)
    if bad or set(res) != set(MODES):
        sys.exit("bench: invalid runs: %s (log: %s)" % ("; ".join(bad),
                                                        lab.last_log))

    def med(mode, key):
        return statistics.median(r[key] for r in res[mode])

    base = statistics.median(none_cs)
    lines = [
        "# Probe overhead on the unsync walk (one lab run)",
        "",
        "kvmwalk --tables 40 --rounds %d (%d syncs, %d walk frames per run, "
        "as the model predicts), %d runs per mode, alternating; medians. "
        "QEMU TCG: emulated times, compare ratios only." % (
            rounds, res["fentry"][0]["syncs"], res["fentry"][0]["frames"],
            repeat),
        "",
        "| | fentry | kprobe |",
        "| --- | --- | --- |",
        "| mean mmu_sync_children duration (agent's histogram) | %.0f ns | "
        "%.0f ns |" % (med("fentry", "sync_ns"), med("kprobe", "sync_ns")),
        "| BPF time per sync (bpf_stats) | %.0f ns | %.0f ns |" % (
            med("fentry", "bpf_per_sync_ns"), med("kprobe", "bpf_per_sync_ns")),
        "| **BPF time / sync time** | **%.1f%%** | **%.1f%%** |" % (
            100 * med("fentry", "bpf_share"), 100 * med("kprobe", "bpf_share")),
        "| whole kvmwalk run (VM set-up included) / no agent | %.2f | %.2f |"
        % (med("fentry", "wall_cs") / base, med("kprobe", "wall_cs") / base),
        "| mean sync duration / fentry's | 1.000 | %.3f |" % (
            med("kprobe", "sync_ns") / med("fentry", "sync_ns")),
        "",
        "Where the BPF time goes, per program (emulated ns):",
        "",
        "| mode | program | calls per sync | ns per call | ns per sync | "
        "share of BPF time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        names = sorted({n for r in res[mode] for n in r["progs"]})
        total = med(mode, "bpf_per_sync_ns")
        for n in names:
            calls, per_call, per_sync = (
                statistics.median(r["progs"].get(n, (0, 0, 0))[k]
                                  for r in res[mode]) for k in range(3))
            lines.append("| %s | %s | %.1f | %.0f | %.0f | %.0f%% |" % (
                mode, n, calls, per_call, per_sync, 100 * per_sync / total))
    out = os.path.join(REPO, "build", "bench", "overhead.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("\nwritten to %s (lab log: %s)" % (out, lab.last_log))


if __name__ == "__main__":
    main()
