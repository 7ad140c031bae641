#!/usr/bin/env python3
"""Compare the model with the lab's selfcheck (the real 6.1 kernel, measured
with kprobes, ftrace and kvmmmu tracepoints only).

  python3 tests/model/compare.py SELFCHECK_LOG [--json] [--all]

SELFCHECK_LOG is the serial log of tests/vm/scenarios/selfcheck.sh (or
just its "selfcheck" section): one JSON line per shape with the kvmwalk
arguments.  For each shape the model is run on the same arguments and its
kernel_view() (shadow.Recorder) is compared field by field.  Exit status
1 if any compared field differs.

Not compared (the model does not create the direct shadow pages of the
guest's 2 MiB mappings, assumption A8 in kvm_shapes.py): kvm_mmu_get_page
counts, level-1 kvm_mmu_prepare_zap_page counts, mmu_zap_unsync_children
calls, ftrace hits of functions also reached for those pages.
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
    "clear_parents", "tp_sync_page_by_context",
]
# Fields from the function tracer and the kvmmmu tracepoints alone.
TRACE_FIELDS = [
    "ftrace.mmu_sync_children", "ftrace.__mmu_unsync_walk",
    "ftrace.mmu_pages_clear_parents", "ftrace.kvm_mmu_sync_roots",
    "tp_unsync_page", "tp_sync_page", "tp_prepare_zap_page_unsync",
    "tp_prepare_zap_page_levels_upper",
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


def model_for(args):
    a = predict.parse_args(shlex.split(args))
    shape = predict.shape_from_args(a)
    return kvm_shapes.predict(shape)


def compare(lines, show_all=False):
    results = []
    for rec in lines:
        model = model_for(rec["args"])
        mv = model.kernel_view()
        h = model.hits
        mv.update({"ftrace.mmu_sync_children": h["mmu_sync_children"],
                   "ftrace.__mmu_unsync_walk": h["__mmu_unsync_walk"],
                   "ftrace.mmu_pages_clear_parents": h["mmu_pages_clear_parents"],
                   "ftrace.kvm_mmu_sync_roots": h["kvm_mmu_sync_roots"]})
        kv = kernel_fields(rec)
        # No kprobe event in the trace although the function tracer saw
        # the functions: the kprobe fields were not measured.
        no_kprobes = (not kv.get("sync_children") and not kv.get("walk_frames")
                      and (kv.get("ftrace.mmu_sync_children") or
                           kv.get("ftrace.__mmu_unsync_walk")))
        diffs, same = [], []
        for key in COMPARED:
            if key not in kv:
                continue
            if no_kprobes and key in KPROBE_FIELDS:
                continue
            a, b = norm(mv.get(key)), norm(kv[key])
            (same if a == b else diffs).append((key, a, b))
        results.append({"shape": rec["shape"], "args": rec["args"],
                        "no_kprobes": bool(no_kprobes),
                        "ok": rec.get("ok"), "diffs": diffs, "same": same,
                        "model": mv, "kernel": kv, "agent": model.report()})
    return results


def fmt(v):
    return json.dumps(v, separators=(",", ":"))


def print_table(results, show_all):
    for r in results:
        status = "MATCH" if not r["diffs"] else "DIFF (%d)" % len(r["diffs"])
        status += " (%d fields%s)" % (len(r["diffs"]) + len(r["same"]),
                                      ", no kprobe data" if r["no_kprobes"] else "")
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
        lines = selfcheck_lines(f.read())
    if not lines:
        print("compare: no selfcheck lines in %s" % a.log, file=sys.stderr)
        return 2
    results = compare(lines, a.all)
    if a.json:
        print(json.dumps([{k: r[k] for k in ("shape", "args", "diffs")}
                          for r in results]))
    else:
        print_table(results, a.all)
    return 1 if any(r["diffs"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
