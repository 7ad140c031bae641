#!/usr/bin/env python3
"""Predict the agent's figures for one kvmwalk workload shape (stock 6.1).

Usage (same knobs as kvmwalk, see tests/vm/SHAPES.md):

  python3 tests/model/predict.py --paging 4level --tables 40 --rounds 10
  python3 tests/model/predict.py --paging pae --tables 20 --dirs 2 --exit-unsync
  python3 tests/model/predict.py --kernel patched --tables 40 --rounds 10

--kernel stock|patched (default stock) picks the kernel: Debian's 6.1 as
shipped, or with tests/kernel/patches applied (shadow_patched.py).  Same
keys either way; clear_parents is always 0 on the patched kernel.
--release 6.1|6.12|7.2 (default 6.1) picks the stock kernel's release:
Debian 12's, 13's or sid's (kernels.py says where they differ).
--huge-pages: on 6.12 and 7.2, the guest memory is THP-backed, so guest
2 MiB pages without shadowed gfns get 2 MiB sptes (kernels.py "thp-align";
no effect on 6.1, whose mmap is not 2 MiB aligned).

Prints one JSON object (keys fixed: they are compared with the agent's):
  sync_calls{ok,eintr}, sync_calls_by_can_yield{true,false},
  walks{sync:{done,enospc},zap:{done,enospc}}, frames{sync,zap},
  enospc_frames{sync,zap}, restarts, leaves{sync,zap},
  clears{sync:{walk,clear_parents},zap:{walk,clear_parents}},
  pvec_depth{sync:[17],zap:[17]}, pages_synced, pages_unsynced,
  syncs:[{can_yield,root_level,walks,restarts,frames,leaves,clears_walk,
          clears_parents,max_nr}]

Other outputs (never mixed into that object):
  --ftrace       the raw counts an ftrace/tracepoint run of the real kernel
                 gives (function hits, tracepoint counts) instead
  --explain      a human-readable trace of the simulated events on stderr
  --assumptions  the list of assumptions about KVM the model rests on
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kernels  # noqa: E402
import kvm_shapes  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--paging", choices=("4level", "pae"), default="4level")
    p.add_argument("--tables", type=int, default=8)
    p.add_argument("--dirs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--sync", choices=("cr3", "fault"), default="cr3")
    p.add_argument("--flood-zap", action="store_true")
    p.add_argument("--exit-unsync", action="store_true")
    p.add_argument("-name", dest="name", default=None,
                   help="ignored (kvmwalk accepts it for the agent)")
    p.add_argument("--kernel", choices=("stock", "patched"), default="stock",
                   help="kernel to model: stock 6.1 or 6.1 with "
                        "tests/kernel/patches (default stock)")
    p.add_argument("--release", choices=kernels.RELEASES, default=kernels.DEFAULT,
                   help="stock kernel release: 6.1 (bookworm), 6.12 (trixie) "
                        "or 7.2 (sid) (default %s)" % kernels.DEFAULT)
    p.add_argument("--huge-pages", action="store_true",
                   help="6.12, 7.2: map guest 2 MiB pages with 2 MiB sptes "
                        "where no shadowed gfn forbids it (THP-backed memory)")
    p.add_argument("--ftrace", action="store_true",
                   help="print the kernel-side raw counts instead")
    p.add_argument("--explain", action="store_true",
                   help="log simulated events to stderr")
    p.add_argument("--assumptions", action="store_true",
                   help="print the model's assumptions and exit")
    p.add_argument("--resched", action="append", default=[], metavar="CALL:BATCH",
                   help="make need_resched() true after walk batch BATCH of "
                        "mmu_sync_children call CALL (both 0-based), to replay "
                        "a kernel run that took -EINTR; repeatable")
    p.add_argument("--indent", type=int, default=None)
    return p.parse_args(argv)


def shape_from_args(a):
    return kvm_shapes.make_shape(paging=a.paging, tables=a.tables, dirs=a.dirs,
                                 rounds=a.rounds, sync=a.sync,
                                 flood_zap=a.flood_zap, exit_unsync=a.exit_unsync)


def predict_dict(argv, resched_points=(), variant=None, kernel=None):
    """For tests: the JSON object of `predict.py ARGV...` as a dict, e.g.
    predict_dict(["--tables", "40", "--rounds", "10"]).  variant "stock" or
    "patched" overrides a --kernel in argv, kernel ("6.1", "6.12", "7.2")
    a --release."""
    a = parse_args(list(argv))
    shape = shape_from_args(a)
    return kvm_shapes.predict(shape, resched_points=resched_points,
                              variant=variant or a.kernel,
                              kernel=kernel or a.release,
                              huge_pages=a.huge_pages).report()


def ftrace_counts(rec):
    """What the lab's selfcheck measures on the real kernel."""
    h = rec.hits
    return {
        "mmu_sync_children": h["mmu_sync_children"],
        "__mmu_unsync_walk": h["__mmu_unsync_walk"],
        "mmu_pages_clear_parents": h["mmu_pages_clear_parents"],
        "kvm_mmu_sync_page": rec.pages_synced,
        "kvm_mmu_unsync_page": rec.pages_unsynced,
        "kvm_mmu_prepare_zap_page": h["kvm_mmu_prepare_zap_page_tp"],
    }


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.assumptions:
        lines = list(kvm_shapes.ASSUMPTIONS)
        if a.kernel == "patched":
            import shadow_patched
            lines += shadow_patched.ASSUMPTIONS
        if a.release != kernels.DEFAULT:
            lines += kernels.assumptions(a.release)
        for line in lines:
            print(line)
            print()
        return 0
    if a.kernel == "patched" and a.release not in kernels.PATCHED_RELEASES:
        print("predict: the patched kernel is built on %s only (--release)"
              % " and ".join(kernels.PATCHED_RELEASES), file=sys.stderr)
        return 2
    try:
        shape = shape_from_args(a)
    except ValueError as e:
        print("predict: %s" % e, file=sys.stderr)
        return 2
    try:
        points = [tuple(int(x) for x in v.split(":")) for v in a.resched]
        assert all(len(p) == 2 for p in points)
    except (ValueError, AssertionError):
        print("predict: --resched wants CALL:BATCH", file=sys.stderr)
        return 2
    run = kvm_shapes.Run(shape, trace=a.explain, resched_points=points,
                         variant=a.kernel, kernel=a.release,
                         huge_pages=a.huge_pages)
    rec = run.run()
    if a.explain:
        for line in rec.log:
            print(line, file=sys.stderr)
    out = ftrace_counts(rec) if a.ftrace else rec.report()
    print(json.dumps(out, indent=a.indent, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
