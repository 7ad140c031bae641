#!/usr/bin/env python3
"""make compare: the same workload shapes on the stock and the patched kernel,
side by side.

Both kernels are built from Debian's linux-source-6.1 with one config
(tests/kernel/build.sh), so the A/B differs only by the patch series.  Each
boots in the lab with the agent (--trace=frames) and runs every shape of
tests/vm/labagent.py.  The report (build/compare/report.md, with PNG plots
made by gnuplot) gives, per shape, the counts on both kernels, calls out
every difference with the reason for it, and says whether each kernel's
counts equal its model (tests/model/, --kernel stock|patched).

Counts are deterministic: the same command on a fresh machine gives the same
counts (report.json holds them alone, for diffing).  Durations are timings
under QEMU's software emulation: their shape compares, their values vary.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import labagent  # noqa: E402
from promtext import parse_metrics  # noqa: E402

OUT = os.path.join(REPO, "build", "compare")
KERNELS = ("stock", "patched")
CTX = labagent.CTX

# Why a figure moves between the two kernels, from the series itself.
REASONS = {
    "restarts": "the stock vector also holds the walk's root and every parent on "
                "the path (root, PDPT and PD in a 4-level guest), and mmu_pages_add() "
                "reports -ENOSPC when an add fills it, even if that was the last leaf; "
                "the patched vector holds leaves only and is checked for room before "
                "an add, so fewer walks restart and a walk that fills it exactly does not",
    "walks": "every restart is one more top-level walk; and on the patched "
             "kernel a root page (root_count != 0: the 4-level PML4, a PAE root) "
             "keeps the bits of children it walked fully until a last walk that "
             "finds nothing (pvec->nr 0) and clears them (patch 2: "
             "is_unsync_root() reads a root's unsync_children without mmu_lock, "
             "so it must not drop to 0 while the sync is still going)",
    "frames": "every extra top-level walk is at least one more frame, and a "
              "restart walks again from the top through every level",
    "clears": "the stock kernel clears most bitmap bits in mmu_pages_clear_parents() "
              "after syncing each leaf (and its parents' bits on the way up); the "
              "patched walk clears each child's bit itself, once the child is added or "
              "fully walked, and mmu_pages_clear_parents() is gone",
    "pvec_depth": "the patched vector no longer holds the root and the parents, so it "
                  "is shallower for the same leaves",
    "leaves": "leaves handed over per walk change with the vector's room",
    "sync_calls": "a different number of mmu_sync_children calls",
    "pages_synced": "a different number of pages synced (kvm_mmu_sync_page)",
    "pages_unsynced": "a different number of pages going unsync",
}


def build_kernel(flavour):
    try:
        return labagent.build_kernel(flavour)
    except AssertionError:
        raise SystemExit("compare: building the %s kernel failed" % flavour)


def collect(flavour, kernel):
    rc, log, sec = labagent.run_agent("auto", trace="frames", kernel=kernel)
    if rc != 0:
        raise SystemExit("compare: the %s lab run failed (rc=%d, log %s)" %
                         (flavour, rc, labagent.lab.last_log))
    records = labagent.trace_records(sec)
    shapes = {}
    for name, args in labagent.SHAPES:
        pid = int(sec["shape " + name].split("pid=")[1].split()[0])
        figures = labagent.agent_figures(parse_metrics(sec["metrics " + name]),
                                         pid)
        mine = [r for r in records if r["pid"] == pid]
        depth = {c: [0] * 17 for c in CTX}
        for r in mine:
            if r["type"] == "frame" and r["depth"] == 0:
                depth[r["context"]][min(r["nr"], 16)] += 1
        figures["pvec_depth"] = depth
        model = labagent.model(args, variant=flavour)
        shapes[name] = {
            "figures": figures,
            "model_agrees": all(figures[k] == model[k] for k in figures),
            "durations_ns": [r["duration_ns"] for r in mine
                             if r["type"] == "sync"],
        }
    return shapes


def flat(figures):
    """(label, value) rows of one shape's counts."""
    f = figures
    rows = [("sync calls (ok/eintr)", "%d/%d" % (f["sync_calls"]["ok"],
                                                f["sync_calls"]["eintr"]))]
    for c in CTX:
        rows += [
            ("%s walks (done/enospc)" % c, "%d/%d" % (f["walks"][c]["done"],
                                                     f["walks"][c]["enospc"])),
            ("%s frames" % c, f["frames"][c]),
            ("%s leaves" % c, f["leaves"][c]),
            ("%s clears in walk" % c, f["clears"][c]["walk"]),
            ("%s clears in clear_parents" % c, f["clears"][c]["clear_parents"]),
        ]
    rows += [("restarts", f["restarts"]),
             ("pages unsynced / synced", "%d / %d" % (f["pages_unsynced"],
                                                      f["pages_synced"]))]
    for c in CTX:
        hist = f["pvec_depth"][c]
        if sum(hist):
            rows.append(("%s pvec->nr at walk exit" % c,
                         " ".join("%d:%d" % (nr, n) for nr, n in
                                  enumerate(hist) if n)))
    return rows


def differing(a, b):
    return [k for k in a if a[k] != b[k]]


def duration_row(ns):
    if not ns:
        return "-"
    us = sorted(x / 1000.0 for x in ns)
    return "median %.0f us, max %.0f us (%d calls)" % (statistics.median(us),
                                                      us[-1], len(us))


def plot(name, runs):
    """PNG: pvec depth distribution, both kernels, one bar pair per depth."""
    if not shutil.which("gnuplot"):
        return None
    data = os.path.join(OUT, "%s.dat" % name)
    png = os.path.join(OUT, "%s-pvec.png" % name)
    with open(data, "w") as f:
        for nr in range(17):
            f.write("%d %d %d\n" % (nr, *(sum(runs[k][name]["figures"]
                                                ["pvec_depth"][c][nr]
                                                for c in CTX)
                                            for k in KERNELS)))
    script = """
set terminal pngcairo size 640,360 noenhanced
set output '%s'
set title '%s: pvec->nr when a top-level walk returns'
set xlabel 'pvec->nr'
set ylabel 'walks'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xtics 1
set key top center
set offsets 0, 0, graph 0.15, 0
set yrange [0:*]
plot '%s' using 2:xtic(1) title 'stock', '' using 3 title 'patched'
""" % (png, name, data)
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return os.path.basename(png)


def plot_durations(runs):
    if not shutil.which("gnuplot"):
        return None
    png = os.path.join(OUT, "sync-duration.png")
    files = []
    for k in KERNELS:
        path = os.path.join(OUT, "durations-%s.dat" % k)
        us = sorted(d / 1000.0 for s in runs[k].values()
                    for d in s["durations_ns"])
        with open(path, "w") as f:
            for i, v in enumerate(us):
                f.write("%f %f\n" % (v, (i + 1) / len(us)))
        files.append((k, path))
    script = """
set terminal pngcairo size 640,360 noenhanced
set output '%s'
set title 'mmu_sync_children duration, all shapes (CDF; TCG timing)'
set xlabel 'microseconds'
set ylabel 'fraction of calls'
set logscale x
plot %s
""" % (png, ", ".join("'%s' using 1:2 with steps title '%s'" % (p, k)
                      for k, p in files))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return os.path.basename(png)


def report(runs):
    lines = ["# Stock vs patched: the unsync walk, shape by shape", "",
             "Both kernels: Debian's linux-source-6.1 with the lab config "
             "(tests/kernel/lab.config); patched = tests/kernel/patches/. "
             "Counts from kvm-unsync-exporter in the lab; each kernel's counts "
             "are also checked against its own model of the walk.", ""]
    for name, args in labagent.SHAPES:
        s, p = runs["stock"][name], runs["patched"][name]
        lines += ["## %s (`%s`)" % (name, args), "",
                  "| | stock | patched |", "| --- | --- | --- |"]
        for (label, a), (_, b) in zip(flat(s["figures"]), flat(p["figures"])):
            mark = "" if a == b else " **≠**"
            lines.append("| %s | %s | %s%s |" % (label, a, b, mark))
        lines.append("| sync duration (TCG) | %s | %s |" %
                     (duration_row(s["durations_ns"]),
                      duration_row(p["durations_ns"])))
        lines.append("| equals its model | %s | %s |" %
                     ("yes" if s["model_agrees"] else "**NO**",
                      "yes" if p["model_agrees"] else "**NO**"))
        lines.append("")
        diff = differing(s["figures"], p["figures"])
        if diff:
            lines.append("What differs, and why:")
            for k in diff:
                lines.append("- %s: %s." % (k.replace("_", " "), REASONS[k]))
        else:
            lines.append("The two kernels count the same for this shape.")
        png = plot(name, runs)
        if png:
            lines += ["", "![%s](%s)" % (name, png)]
        lines.append("")
    png = plot_durations(runs)
    if png:
        lines += ["## Sync durations", "", "![durations](%s)" % png, ""]
    return "\n".join(lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    runs = {}
    for flavour in KERNELS:
        print("compare: %s kernel..." % flavour, flush=True)
        runs[flavour] = collect(flavour, build_kernel(flavour))
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump({k: {n: v["figures"] for n, v in runs[k].items()}
                   for k in KERNELS}, f, indent=1, sort_keys=True)
    text = report(runs)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print("\ncompare: report in %s" % os.path.relpath(OUT, REPO))
    ok = all(v["model_agrees"] for k in KERNELS for v in runs[k].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
