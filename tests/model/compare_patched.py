#!/usr/bin/env python3
"""Compare the PATCHED-kernel model with a selfcheck run of the patched lab
kernel (tests/kernel/build.sh patched).

  python3 tests/model/compare_patched.py SELFCHECK_LOG [--kernel stock|patched]

Same checks as compare.py (the selfcheck's kprobe, tracepoint and ftrace
fields, field by field; with KUE_SELFCHECK_TRACE=1 also the kvmmmu event
stream, pvec->nr at every top-level exit, the pages in each vector, the
clears of frames returning 0 and max nr per sync), but against
kvm_shapes.predict(..., variant=KERNEL) and with the patched kernel's
vector: it holds only the unsync pages, so nr at a top-level exit is 16
for -ENOSPC and otherwise the number of pages the caller then syncs or
zaps (kvm_mmu_sync_page events before the next walk).  --kernel stock
runs the stock model on the same log (it must differ: a negative check).

The selfcheck needs two things on a lab kernel: KVM's BTF is in vmlinux
(KVM built in, no /sys/kernel/btf/kvm), and the vector's type is struct
kvm_mmu_page_vec (patch 9).  Exit status 1 on any difference.
"""

import argparse
import json
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402
import kvm_shapes  # noqa: E402
import predict  # noqa: E402


def model_for(args, variant, points=()):
    a = predict.parse_args(shlex.split(args))
    return kvm_shapes.predict(predict.shape_from_args(a), resched_points=points,
                              variant=variant)


def field(line, name):
    m = re.search(r"\b%s=(-?\w+)" % re.escape(name), line)
    return int(m.group(1)) if m else None


def analyze_trace(lines):
    """The agent-facing figures rebuilt from the kernel's events, for a
    vector that holds only unsync pages (patch 7)."""
    stack, frames, syncs, walks = [], [], [], []
    depth, cur, pending = 0, None, {}
    zero = {"sync": 0, "zap": 0}

    def close(level):
        w = pending.pop(level, None)
        if w is not None:
            w["nr"] = 16 if w["ret"] == -28 else w["pages"]
            walks.append(w)

    for line in lines:
        ev = line.split(":", 1)[0].strip()
        ctx = "sync" if "sync" in stack else "zap"
        if ev in ("sc_enter", "zap_enter"):
            stack.append("sync" if ev == "sc_enter" else "zap")
            if ev == "sc_enter":
                syncs.append([])
        elif ev in ("sc_exit", "zap_exit"):
            close(len(stack))
            stack.pop()
        elif ev == "walk_enter":
            frames.append(field(line, "children"))
            if depth == 0:
                close(len(stack))
                cur = {"ctx": ctx, "pages": 0, "ret": None}
                if stack and stack[-1] == "sync":
                    syncs[-1].append(cur)
            depth += 1
        elif ev == "walk_exit":
            children, ret = frames.pop(), field(line, "ret")
            if ret == 0:
                zero[ctx] += children
            depth -= 1
            if depth == 0:
                cur["ret"] = ret
                pending[len(stack)] = cur
        elif ev == "kvm_mmu_sync_page" and len(stack) in pending:
            pending[len(stack)]["pages"] += 1
    for level in sorted(pending, reverse=True):
        close(level)
    hist = {"sync": [0] * 17, "zap": [0] * 17}
    leaves = {"sync": 0, "zap": 0}
    for w in walks:
        hist[w["ctx"]][w["nr"]] += 1
        leaves[w["ctx"]] += w["pages"]
    return {"pvec_depth": hist, "leaves": leaves, "zero_frame_clears": zero,
            "max_nr_per_sync": [max([w["nr"] for w in ws] or [0]) for ws in syncs]}


def trace_diffs(lines, model):
    got = analyze_trace(lines)
    rep = model.report()
    zc = model.k["zero_frame_clears"]
    want = {"pvec_depth": rep["pvec_depth"], "leaves": rep["leaves"],
            "zero_frame_clears": {"sync": zc.get("sync", 0), "zap": zc.get("zap", 0)},
            "max_nr_per_sync": [s["max_nr"] for s in rep["syncs"]]}
    diffs = [(k, want[k], got[k]) for k in want if want[k] != got[k]]
    mev, kev = list(model.events), compare.kernel_events(lines)
    i = compare.first_divergence(mev, kev)
    if i is not None:
        diffs.append(("kvmmmu event stream", mev[i] if i < len(mev) else "<end>",
                      kev[i] if i < len(kev) else "<end>"))
    return diffs, len(kev)


def find_resched(rec, variant, budget=500):
    """(call, batch) points at which need_resched() reproduces a kernel run
    that took -EINTR (see compare.find_resched)."""
    want = rec.get("sync_children_eintr") or 0
    if not want:
        return []
    tried = [0]

    def search(points):
        if tried[0] >= budget:
            return None
        tried[0] += 1
        m = model_for(rec["args"], variant, points)
        if len(points) == want:
            return points if not compare.diff_fields(rec, m)[0] else None
        last = points[-1][0] if points else -1
        for i, s in enumerate(m.syncs):
            if i <= last or s.can_yield:
                continue
            for b in range(max(s.walks, 1)):
                found = search(points + [(i, b)])
                if found:
                    return found
        return None

    return search([]) or []


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("log")
    p.add_argument("--kernel", choices=kvm_shapes.VARIANTS, default="patched")
    a = p.parse_args(argv)
    with open(a.log, errors="replace") as f:
        text = f.read()
    lines = compare.selfcheck_lines(text)
    if not lines:
        print("compare_patched: no selfcheck lines in %s" % a.log, file=sys.stderr)
        return 2
    traces = compare.trace_blocks(text)
    bad = False
    for rec in lines:
        points = find_resched(rec, a.kernel)
        model = model_for(rec["args"], a.kernel, points)
        diffs, same, no_kprobes = compare.diff_fields(rec, model)
        status = "MATCH" if not diffs else "DIFF (%d)" % len(diffs)
        status += " (%d fields%s)" % (len(diffs) + len(same),
                                      ", no kprobe data" if no_kprobes else "")
        if points:
            status += " with --resched %s" % " --resched ".join("%d:%d" % x for x in points)
        if rec["shape"] in traces:
            tdiffs, nev = trace_diffs(traces[rec["shape"]], model)
            status += "; trace %s (%d kvmmmu events)" % (
                "MATCH" if not tdiffs else "DIFF", nev)
            diffs = diffs + tdiffs
        print("%-20s %-50s %s" % (rec["shape"], rec["args"], status))
        for key, x, y in diffs:
            print("   !! %-32s model=%s kernel=%s" % (key, json.dumps(x), json.dumps(y)))
        bad = bad or bool(diffs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
