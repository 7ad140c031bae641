#!/usr/bin/env python3
"""Compare the model with the lab's selfcheck (the real 6.1 kernel, measured
with kprobes, ftrace and kvmmmu tracepoints only).

  python3 tests/model/compare.py SELFCHECK_LOG [--json] [--all]

SELFCHECK_LOG is the serial log of tests/vm/scenarios/selfcheck.sh (or
just its "selfcheck" section): one JSON line per shape with the kvmwalk
arguments.  For each shape the model is run on the same arguments and its
kernel_view() (shadow.Recorder) is compared field by field.  Exit status
1 if any compared field differs.

With raw traces (KUE_SELFCHECK_TRACE=1) it also compares the ordered
stream of kvmmmu events (get_page, prepare_zap_page, unsync_page,
sync_page with gfn, level, direct, state) and the pvec->nr / leaves
figures rebuilt from the kprobe events.
"""

import argparse
import json
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kvm_shapes  # noqa: E402
import predict  # noqa: E402

# Fields the selfcheck derives from its kprobe events (entry/return probes,
# and the sync/zap context stack they give).
KPROBE_FIELDS = [
    "sync_children", "sync_children_noyield", "sync_children_eintr",
    "sync_children_root_levels", "sync_roots", "walks_per_sync_children",
    "walk_frames", "walk_frames_enospc", "walks", "restarts", "walk_leaves",
    "walk_max_depth", "walk_max_nr_at_entry", "walk_top_nr_not_1",
    "clear_parents", "tp_sync_page_by_context", "zap_unsync_children_calls",
]
# Fields from the function tracer and the kvmmmu tracepoints alone.
TRACE_FIELDS = [
    "ftrace.mmu_sync_children", "ftrace.__mmu_unsync_walk",
    "ftrace.mmu_pages_clear_parents", "ftrace.kvm_mmu_sync_roots",
    "tp_unsync_page", "tp_sync_page", "tp_prepare_zap_page_unsync",
    "tp_prepare_zap_page_levels_upper", "tp_prepare_zap_page_levels",
    "tp_prepare_zap_page", "tp_get_page_new", "tp_get_page_existing",
    "ftrace.mmu_zap_unsync_children",
]
COMPARED = KPROBE_FIELDS + TRACE_FIELDS


def selfcheck_lines(text):
    """JSON objects of the selfcheck section (or of a bare section)."""
    m = re.search(r"^=== BEGIN selfcheck ===$(.*?)^=== END selfcheck ===$",
                  text, re.M | re.S)
    body = m.group(1) if m else text
    out = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("{") and '"shape"' in line:
            out.append(json.loads(line))
    return out


def trace_blocks(text):
    """{shape: [lines]} of the raw traces (KUE_SELFCHECK_TRACE=1)."""
    out = {}
    for m in re.finditer(r"^=== BEGIN trace (\S+) ===$(.*?)^=== END trace \1 ===$",
                         text, re.M | re.S):
        out[m.group(1)] = m.group(2).strip("\n").splitlines()
    return out


def _field(line, name):
    m = re.search(r"\b%s=(-?\w+)" % re.escape(name), line)
    return m.group(1) if m else None


def analyze_trace(lines):
    """Rebuild, from the kernel's own events, the agent's figures that the
    selfcheck does not print: pvec->nr at each top-level walk's exit and
    the unsync pages in the vector.  For a walk returning -ENOSPC nr is
    16; otherwise every vector entry is the root, one entry per nested
    frame (a child with unsync_children is added, then walked) or one
    leaf, and every leaf is then synced (sync) or zapped (zap) by the
    caller, firing kvm_mmu_sync_page once, before the next walk starts.
    Agent contexts: "sync" inside mmu_sync_children, "zap" otherwise."""
    stack = []              # "sync" / "zap"
    depth = 0
    frames = []             # entry "children" per open frame
    zero_clears = {"sync": 0, "zap": 0}
    cur = None              # top-level walk in progress
    pending = {}            # stack height -> finished walk awaiting leaves
    walks = []              # finished walks
    syncs = []              # per mmu_sync_children: list of its walks

    def close(level):
        w = pending.pop(level, None)
        if w is not None:
            w["nr"] = 16 if w["ret"] == -28 else 1 + w["nested"] + w["leaves"]
            walks.append(w)

    for line in lines:
        ev = line.split(":", 1)[0].strip()
        if ev == "sc_enter":
            stack.append("sync")
            syncs.append([])
        elif ev == "sc_exit":
            close(len(stack))
            stack.pop()
        elif ev == "zap_enter":
            stack.append("zap")
        elif ev == "zap_exit":
            close(len(stack))
            stack.pop()
        elif ev == "walk_enter":
            frames.append(int(_field(line, "children")))
            if depth == 0:
                close(len(stack))
                ctx = "sync" if "sync" in stack else "zap"
                cur = {"ctx": ctx, "nested": 0, "leaves": 0, "ret": None}
                if stack and stack[-1] == "sync":
                    syncs[-1].append(cur)
            else:
                cur["nested"] += 1
            depth += 1
        elif ev == "walk_exit":
            children = frames.pop()
            if int(_field(line, "ret")) == 0:
                zero_clears["sync" if "sync" in stack else "zap"] += children
            depth -= 1
            if depth == 0:
                cur["ret"] = int(_field(line, "ret"))
                pending[len(stack)] = cur
                cur = None
        elif ev == "kvm_mmu_sync_page":
            w = pending.get(len(stack))
            if w is not None:
                w["leaves"] += 1
    for level in sorted(pending, reverse=True):
        close(level)
    hist = {"sync": [0] * 17, "zap": [0] * 17}
    leaves = {"sync": 0, "zap": 0}
    for w in walks:
        hist[w["ctx"]][w["nr"]] += 1
        leaves[w["ctx"]] += w["leaves"]
    return {"pvec_depth": hist, "leaves": leaves,
            "zero_frame_clears": zero_clears,
            "max_nr_per_sync": [max([w["nr"] for w in ws] or [0]) for ws in syncs]}


TP_RE = re.compile(r"^kvm_mmu_(get_page|prepare_zap_page|unsync_page|sync_page): "
                   r"sp gen \d+ gfn (\w+) l(\d) .*?(direct )?.*?(\w+)$")


def kernel_events(trace_lines):
    out = []
    for line in trace_lines:
        m = TP_RE.match(line)
        if m:
            out.append((m.group(1), int(m.group(2), 16), int(m.group(3)),
                        " direct " in line, line.split()[-1]))
    return out


def first_divergence(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def trace_diffs(trace_lines, model):
    got = analyze_trace(trace_lines)
    rep = model.report()
    zc = model.k["zero_frame_clears"]
    want = {"pvec_depth": rep["pvec_depth"], "leaves": rep["leaves"],
            "zero_frame_clears": {"sync": zc.get("sync", 0), "zap": zc.get("zap", 0)},
            "max_nr_per_sync": [x["max_nr"] for x in rep["syncs"]]}
    diffs, same = [], []
    for key in want:
        (same if want[key] == got[key] else diffs).append((key, want[key], got[key]))
    mev, kev = list(model.events), kernel_events(trace_lines)
    i = first_divergence(mev, kev)
    key = "kvmmmu event stream (%d events)" % len(kev)
    if i is None:
        same.append((key, len(mev), len(kev)))
    else:
        diffs.append((key, "event %d: %s" % (i, mev[i] if i < len(mev) else "<end>"),
                      "event %d: %s" % (i, kev[i] if i < len(kev) else "<end>")))
    return diffs, same


def compare_traces(text, resched=None):
    """[(shape, args, diffs, same)] for the shapes with a raw trace."""
    lines = {r["shape"]: r for r in selfcheck_lines(text)}
    out = []
    for shape, tl in sorted(trace_blocks(text).items()):
        if shape not in lines:
            continue
        model = model_for(lines[shape]["args"], (resched or {}).get(shape, ()))
        diffs, same = trace_diffs(tl, model)
        out.append((shape, lines[shape]["args"], diffs, same))
    return out


def norm(v):
    if isinstance(v, dict):
        return {str(k): x for k, x in v.items() if x}
    return v


def kernel_fields(rec):
    kv = dict(rec)
    for f, n in rec.get("ftrace_hits", {}).items():
        kv["ftrace." + f] = n
    levels = kv.get("tp_prepare_zap_page_levels", {})
    kv["tp_prepare_zap_page_levels_upper"] = {
        k: n for k, n in levels.items() if k != "1"}
    return kv


def model_for(args, resched_points=()):
    a = predict.parse_args(shlex.split(args))
    shape = predict.shape_from_args(a)
    return kvm_shapes.predict(shape, resched_points=resched_points)


def diff_fields(rec, model):
    """(diffs, same, no_kprobes) between one selfcheck line and a model run."""
    mv = model.kernel_view()
    h = model.hits
    mv.update({"ftrace.mmu_sync_children": h["mmu_sync_children"],
               "ftrace.__mmu_unsync_walk": h["__mmu_unsync_walk"],
               "ftrace.mmu_pages_clear_parents": h["mmu_pages_clear_parents"],
               "ftrace.kvm_mmu_sync_roots": h["kvm_mmu_sync_roots"],
               "ftrace.mmu_zap_unsync_children": mv["zap_unsync_children_calls"]})
    kv = kernel_fields(rec)
    # No kprobe event in the trace although the function tracer saw the
    # functions: the kprobe fields were not measured.
    no_kprobes = bool(not kv.get("sync_children") and not kv.get("walk_frames")
                      and (kv.get("ftrace.mmu_sync_children") or
                           kv.get("ftrace.__mmu_unsync_walk")))
    diffs, same = [], []
    for key in COMPARED:
        if key not in kv or (no_kprobes and key in KPROBE_FIELDS):
            continue
        a, b = norm(mv.get(key)), norm(kv[key])
        (same if a == b else diffs).append((key, a, b))
    return diffs, same, no_kprobes


def find_resched(rec, trace, max_points=4, budget=2000):
    """The kernel took -EINTR (need_resched() in a can_yield=false
    mmu_sync_children, a matter of timing): find the (call, batch) points
    at which the model, made to see need_resched() there, reproduces
    every compared figure.  Returns the points or None."""
    want = rec.get("sync_children_eintr") or 0
    if not want or want > max_points:
        return None
    tried = [0]

    def search(points):
        if tried[0] >= budget:
            return None
        tried[0] += 1
        model = model_for(rec["args"], points)
        if len(points) == want:
            diffs, _, _ = diff_fields(rec, model)
            if not diffs and (trace is None or not trace_diffs(trace, model)[0]):
                return points
            return None
        last = points[-1][0] if points else -1
        for i, srec in enumerate(model.syncs):
            if i <= last or srec.can_yield:
                continue
            for b in range(max(srec.walks, 1)):
                found = search(points + [(i, b)])
                if found:
                    return found
        return None

    return search([])


def compare(lines, show_all=False, traces=None):
    results = []
    for rec in lines:
        trace = (traces or {}).get(rec["shape"])
        model = model_for(rec["args"])
        points = []
        if rec.get("sync_children_eintr"):
            found = find_resched(rec, trace)
            if found:
                points = found
                model = model_for(rec["args"], points)
        diffs, same, no_kprobes = diff_fields(rec, model)
        results.append({"shape": rec["shape"], "args": rec["args"],
                        "resched": points,
                        "no_kprobes": bool(no_kprobes),
                        "ok": rec.get("ok"), "diffs": diffs, "same": same,
                        "model": model.kernel_view(), "kernel": kernel_fields(rec),
                        "agent": model.report()})
    return results


def fmt(v):
    return json.dumps(v, separators=(",", ":"))


def print_table(results, show_all):
    for r in results:
        status = "MATCH" if not r["diffs"] else "DIFF (%d)" % len(r["diffs"])
        status += " (%d fields%s)" % (len(r["diffs"]) + len(r["same"]),
                                      ", no kprobe data" if r["no_kprobes"] else "")
        if r["resched"]:
            status += " with -EINTR replayed at --resched %s" % " --resched ".join(
                "%d:%d" % p for p in r["resched"])
        print("%-20s %-55s %s" % (r["shape"], r["args"], status))
        rows = r["diffs"] + (r["same"] if show_all else [])
        for key, a, b in rows:
            mark = "  " if a == b else "!!"
            print("   %s %-34s model=%s kernel=%s" % (mark, key, fmt(a), fmt(b)))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also list matching fields")
    a = p.parse_args(argv)
    with open(a.log, errors="replace") as f:
        text = f.read()
    lines = selfcheck_lines(text)
    if not lines:
        print("compare: no selfcheck lines in %s" % a.log, file=sys.stderr)
        return 2
    tblocks = trace_blocks(text)
    results = compare(lines, a.all, tblocks)
    traces = compare_traces(text, {r["shape"]: r["resched"] for r in results})
    if a.json:
        print(json.dumps({
            "fields": [{k: r[k] for k in ("shape", "args", "diffs", "resched")}
                       for r in results],
            "traces": [{"shape": t[0], "args": t[1], "diffs": t[2]} for t in traces]}))
    else:
        print_table(results, a.all)
        if traces:
            print("\nFrom the raw traces (pvec->nr at top-level exit, leaves, max nr per sync):")
            for shape, args, diffs, same in traces:
                status = "MATCH" if not diffs else "DIFF (%d)" % len(diffs)
                print("%-20s %-55s %s" % (shape, args, status))
                for key, x, y in diffs + (same if a.all else []):
                    print("   %s %-34s model=%s kernel=%s" %
                          ("  " if x == y else "!!", key, fmt(x), fmt(y)))
    bad = any(r["diffs"] for r in results) or any(t[2] for t in traces)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
