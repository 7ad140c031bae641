#!/usr/bin/env python3
"""Lab self-check: does kvmwalk really make KVM walk?

Builds kvmwalk, boots the lab VM with scenarios/selfcheck.sh and bpftool,
and measures each workload shape with the kernel's own instruments (kvmmmu
tracepoints, kprobe events, the function tracer; no BPF).  Prints one JSON
line per shape (and the "probes" lines: which functions kallsyms and ftrace
know), saves them to build/vm/selfcheck.jsonl, and checks:

  - every kvmwalk run succeeded and the trace lost nothing;
  - the two instruments agree: kprobe and function-tracer hit counts of
    mmu_sync_children, __mmu_unsync_walk, mmu_pages_clear_parents;
  - every top-level walk started with pvec->nr == 1 (the root alone: the
    kprobe reads the field where KVM's BTF says it is);
  - every shape walked and synced something;
  - kernel.md's data point: 4level, 40 tables, 10 rounds gives 10
    mmu_sync_children calls, 120 walk frames, 90 returning -ENOSPC and
    400 kvm_mmu_sync_page events.

Fields of a shape line (counts over the whole kvmwalk run, VM destruction
included; "by context" objects split sync / zap / other by the innermost
mmu_sync_children or mmu_zap_unsync_children call active):
  sync_children[_noyield|_eintr]  mmu_sync_children calls, can_yield=false
                                  ones, non-zero returns
  sync_children_root_levels       {level: calls}
  sync_roots                      kvm_mmu_sync_roots calls
  walks_per_sync_children         top-level walks in each call, in order
  walk_frames, walk_frames_enospc __mmu_unsync_walk frames (all depths),
                                  and those returning -ENOSPC, by context
  walks, restarts                 top-level frames, and those returning
                                  -ENOSPC, by context
  walk_leaves                     sum of positive top-level returns
  walk_max_depth                  deepest recursion (frames)
  walk_max_nr_at_entry            largest pvec->nr seen entering a frame
  clear_parents                   mmu_pages_clear_parents calls by context
  zap_unsync_children_calls       mmu_zap_unsync_children calls (every zap)
  tp_*                            kvmmmu tracepoint counts
  ftrace_hits                     function tracer hits
  stats                           kvmwalk --stats: KVM's VM counters just
                                  before the VM was destroyed

usage: selfcheck.py [--shapes 'name:args;...'] [--trace] [--timeout S]
                    [--no-build] [--echo]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import lab

HERE = os.path.dirname(os.path.abspath(__file__))

DATA_POINT = ("t40_r10", {"sync_children": 10, "walk_frames": 120,
                          "walk_frames_enospc": 90, "tp_sync_page": 400})


def total(v):
    """A count, or the sum of a by-context object."""
    return sum(v.values()) if isinstance(v, dict) else v


def check(shapes):
    problems = []
    for s in shapes:
        name = s["shape"]
        if s["rc"] != 0 or not s["ok"]:
            problems.append("%s: kvmwalk failed (rc %d)" % (name, s["rc"]))
            continue
        if s["trace_lost"]:
            problems.append("%s: trace lost %d events" % (name, s["trace_lost"]))
        ft = s["ftrace_hits"]
        for fn, key in (("mmu_sync_children", "sync_children"),
                        ("__mmu_unsync_walk", "walk_frames"),
                        ("mmu_pages_clear_parents", "clear_parents")):
            if ft.get(fn, 0) != total(s[key]):
                problems.append("%s: %s: function tracer %d, kprobe %d"
                                % (name, fn, ft.get(fn, 0), total(s[key])))
        if s["walk_top_nr_not_1"]:
            problems.append("%s: %d top-level walks did not start with "
                            "pvec->nr 1" % (name, s["walk_top_nr_not_1"]))
        if not total(s["walk_frames"]) or not s["tp_sync_page"]:
            problems.append("%s: no walk or no sync" % name)
    want_name, want = DATA_POINT
    for s in shapes:
        if s["shape"] == want_name:
            got = {k: total(s[k]) for k in want}
            if got != want:
                problems.append("%s: kernel.md says %s, measured %s"
                                % (want_name, want, got))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", help="'name:kvmwalk args;...' instead of "
                    "the default list")
    ap.add_argument("--trace", action="store_true",
                    help="also print each shape's raw trace")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--echo", action="store_true",
                    help="copy the console to stderr")
    a = ap.parse_args(argv)

    out = lab.build_dir()
    if not a.no_build:
        subprocess.run(["make", "-s", "-C", os.path.join(HERE, "workload"),
                        "KVMWALK_OUT=" + out], check=True)
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(bpftool):
        print("selfcheck: bpftool not found (apt-get install bpftool)",
              file=sys.stderr)
        return 1

    env = {}
    if a.shapes:
        env["KUE_SHAPES"] = a.shapes
    if a.trace:
        env["KUE_SELFCHECK_TRACE"] = "1"
    rc, log = lab.run_scenario(os.path.join(HERE, "scenarios", "selfcheck.sh"),
                               [os.path.join(out, "kvmwalk"), bpftool],
                               a.timeout, env=env, echo=a.echo)
    found = lab.sections(log)
    lines = [l for l in found.get("probes", "").splitlines() if l.startswith("{")]
    shapes = [json.loads(l) for l in found.get("selfcheck", "").splitlines()
              if l.startswith("{")]
    with open(os.path.join(out, "selfcheck.jsonl"), "w") as f:
        for l in lines:
            f.write(l + "\n")
        for s in shapes:
            f.write(json.dumps(s) + "\n")
    for l in lines:
        print(l)
    for s in shapes:
        print(json.dumps(s))
    if a.trace:
        for name, text in found.items():
            if name.startswith("trace "):
                print("=== %s ===\n%s" % (name, text))

    problems = check(shapes)
    if rc != 0:
        problems.insert(0, "scenario exit %d (log %s)" % (rc, lab.last_log))
    if not shapes:
        problems.append("no shape results in the log %s" % lab.last_log)
    for p in problems:
        print("selfcheck: FAIL: " + p, file=sys.stderr)
    if not problems:
        print("selfcheck: ok, %d shapes (log %s)" % (len(shapes), lab.last_log),
              file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
