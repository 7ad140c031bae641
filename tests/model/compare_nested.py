#!/usr/bin/env python3
"""Compare the nested model (nested.py) with the lab's selfcheck of the
nested shapes (kvmwalk --nested on an npt=1 host, --nested=shadow on an
npt=0 one, measured with kprobes, ftrace and kvmmmu tracepoints only).

  python3 tests/model/compare_nested.py SELFCHECK_LOG [--all]

Same fields as compare.py; for --nested (npt) less the kvm_mmu_get_page
and kvm_mmu_prepare_zap_page tracepoint counts: L1's TDP MMU fires them
for its own pages, which the model leaves out (nested.ASSUMPTIONS, N1).
The mmu_zap_unsync_children kprobe and function counts, which only the
shadow MMU calls, stand for them.  --nested=shadow has no TDP MMU: every
field is compared, totals over both guest levels.  Exit status 1 if any compared field differs,
2 if the log has no nested shape.
"""

import argparse
import json
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402
import nested  # noqa: E402

TDP_FIRED = ("tp_get_page_new", "tp_get_page_existing", "tp_prepare_zap_page",
             "tp_prepare_zap_page_levels", "tp_prepare_zap_page_levels_upper",
             "tp_prepare_zap_page_unsync")


def parse_args(argv):
    """kvmwalk's arguments of a nested shape."""
    p = argparse.ArgumentParser(prog="kvmwalk --nested")
    p.add_argument("--nested", nargs="?", const="npt", choices=("npt", "shadow"),
                   required=True)
    p.add_argument("--tables", type=int, default=8)
    p.add_argument("--dirs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--exit-unsync", action="store_true")
    p.add_argument("--stats", action="store_true")
    p.add_argument("-name", dest="name", default=None)
    return p.parse_args(argv)


def shape_from_args(args):
    a = parse_args(shlex.split(args))
    return nested.make_nested_shape(a.tables, a.dirs, a.rounds, a.exit_unsync)


def is_nested(args):
    return any(w == "--nested" or w.startswith("--nested=")
               for w in shlex.split(args))


def model_for(args):
    """The Recorder of a nested shape's kvmwalk arguments (all levels)."""
    shape = shape_from_args(args)
    if parse_args(shlex.split(args)).nested == "shadow":
        return nested.predict_shadow(shape)
    return nested.predict(shape)


def compare_nested(lines):
    results = []
    for rec in lines:
        if not is_nested(rec["args"]) or not rec.get("ok"):
            continue        # a failed kvmwalk run has nothing to compare
        model = model_for(rec["args"])
        diffs, same, no_kprobes = compare.diff_fields(rec, model)
        skip = (() if parse_args(shlex.split(rec["args"])).nested == "shadow"
                else TDP_FIRED)
        results.append({
            "shape": rec["shape"], "args": rec["args"],
            "no_kprobes": no_kprobes,
            "diffs": [d for d in diffs if d[0] not in skip],
            "same": [d for d in same if d[0] not in skip],
            "switches": model.switches, "agent": model.report()})
    return results


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("--all", action="store_true", help="also list matching fields")
    a = p.parse_args(argv)
    with open(a.log, errors="replace") as f:
        lines = compare.selfcheck_lines(f.read())
    results = compare_nested(lines)
    if not results:
        print("compare_nested: no --nested shape in %s" % a.log, file=sys.stderr)
        return 2
    for r in results:
        r["resched"] = []
    compare.print_table(results, a.all)
    for r in results:
        synced = [n for ev, n, calls in r["switches"] if ev == "vmrun" and calls]
        exits = [n for ev, n, calls in r["switches"] if ev == "vmexit" and calls]
        print("   %s: %d VMRUNs; mmu_sync_children in VMRUNs %s, in #VMEXITs %s"
              % (r["shape"], sum(1 for s in r["switches"] if s[0] == "vmrun"),
                 json.dumps(synced), json.dumps(exits)))
    return 1 if any(r["diffs"] or r["no_kprobes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
