#!/usr/bin/env python3
"""make compare: the same workload shapes on the stock and the patched kernel,
side by side, made by `kvm-unsync-exporter compare` from two records.

Each kernel boots in the lab (tests/vm/scenarios/records.sh) and, for every
shape of tests/vm/labagent.py, the agent runs with --record=FILE while
kvmwalk runs that shape alone: one record per shape and kernel, so the
page vector and duration histograms, global in a record, stay per shape.
The records are kept in build/compare/records/{stock,patched}/SHAPE.json.

The report (build/compare/report.md) is, per shape, what
`kvm-unsync-exporter compare stock.json patched.json --plot=DIR` prints for
the two records: the same report a developer makes on real hardware from
two --record runs.  Around it, in sections marked as coming from the lab,
only what the lab knows and compare cannot: whether each kernel's record
equals its model (tests/model/, --kernel stock|patched), and why each
figure that differs moves, from the patch series.

The stock side is Debian's own 6.1 kernel image (the one the rest of the
lab boots) unless KUE_COMPARE_STOCK=lab, which builds the stock twin of the
patched kernel (tests/kernel/build.sh stock: the same source and config
without the patches; about 20 minutes the first time, cached after).

Counts are deterministic: the same command on a fresh machine gives the same
counts (report.json holds them alone, for diffing).  Durations are timings
under QEMU's software emulation: their shape compares, their values vary.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import labagent  # noqa: E402

OUT = os.path.join(REPO, "build", "compare")
KERNELS = ("stock", "patched")
CTX = labagent.CTX
COUNTERS = ("sync_calls", "walks", "frames", "restarts", "leaves", "clears",
            "pages_synced", "pages_unsynced")

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


def stock_kernel():
    """(bzImage or None for Debian's image, what the report calls it)."""
    how = os.environ.get("KUE_COMPARE_STOCK", "debian")
    if how == "debian":
        return None, ("Debian's own 6.1 kernel image (its config, KVM as "
                      "modules)")
    if how == "lab":
        return build_kernel("stock"), ("Debian's linux-source-6.1 with the "
                                       "lab config (tests/kernel/lab.config)")
    raise SystemExit("compare: KUE_COMPARE_STOCK=%s: want debian or lab" % how)


def build_kernel(flavour):
    try:
        return labagent.build_kernel(flavour)
    except AssertionError:
        raise SystemExit("compare: building the %s kernel failed "
                         "(tests/kernel/build.sh %s)" % (flavour, flavour))


def collect(flavour, kernel):
    """{shape: record} of one lab boot; each record also saved to
    records/FLAVOUR/SHAPE.json."""
    extra = {"kernel": kernel} if kernel else {}
    rc, log = labagent.lab.run_scenario(
        os.path.join(HERE, "scenarios", "records.sh"),
        [labagent.AGENT, labagent.KVMWALK, labagent.CHRT], timeout=1800,
        env={"KUE_SHAPES": labagent.shapes_env(labagent.SHAPES)}, **extra)
    sec = labagent.lab.sections(log)
    where = os.path.join(OUT, "records", flavour)
    os.makedirs(where, exist_ok=True)
    records = {}
    for name, _ in labagent.SHAPES:
        agent = labagent.kv_lines(sec.get("agent " + name, ""))
        shape = labagent.kv_lines(sec.get("shape " + name, ""))
        if rc != 0 or agent.get("rc") != "0" or shape.get("rc") != "0":
            raise SystemExit("compare: the %s lab run failed at shape %s "
                             "(lab rc=%s, agent rc=%s, kvmwalk rc=%s; log %s)" %
                             (flavour, name, rc, agent.get("rc"),
                              shape.get("rc"), labagent.lab.last_log))
        path = os.path.join(where, name + ".json")
        with open(path, "w") as f:
            f.write(sec["record " + name])
        with open(path) as f:
            records[name] = json.load(f)
    return records


def vm_figures(doc, name):
    """The model's keys of VM `name` in a record, its pvec_depth from the
    record's histogram (the shape ran alone), or None if it is missing."""
    vms = [v for v in doc["vms"] if v["name"] == name]
    if len(vms) != 1:
        return None
    c = vms[0]["counters"]
    out = {k: c[k] for k in COUNTERS}
    out["sync_calls"] = {r: c["sync_calls"][r] for r in ("ok", "eintr")}
    out["pvec_depth"] = doc["hists"]["pvec_depth"]
    return out


def model_problems(doc, name, args, variant):
    """Why a record is not its kernel's model ([] if it is)."""
    got = vm_figures(doc, name)
    if got is None:
        return ["no single VM named %s in the record" % name]
    want = labagent.model(args, variant=variant)
    bad = ["%s: record %s, model %s" % (k, json.dumps(got[k]),
                                        json.dumps(want[k]))
           for k in got if got[k] != want[k]]
    if doc["kernel"]["variant"] != variant:
        bad.append("the agent detected a %s kernel" % doc["kernel"]["variant"])
    bad += ["self.%s = %d" % (k, v) for k, v in doc["self"].items() if v]
    return bad


def run_compare(name):
    """compare's report of the shape's two records, and its plots, in
    build/compare/SHAPE/."""
    plots = os.path.join(OUT, name)
    os.makedirs(plots, exist_ok=True)
    a, b = (os.path.join("records", k, name + ".json") for k in KERNELS)
    r = subprocess.run([labagent.AGENT, "compare", a, b, "--plot=" + name],
                       cwd=OUT, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit("compare: kvm-unsync-exporter compare %s %s: %s" %
                         (a, b, r.stderr.strip()))
    return r.stdout


def demote(text, levels):
    """compare's markdown with its headings moved `levels` down."""
    return "\n".join("#" * levels + line if line.startswith("#") else line
                     for line in text.splitlines())


def report(runs, problems, stock_what):
    lines = ["# Stock vs patched: the unsync walk, shape by shape", "",
             "Made by `kvm-unsync-exporter compare` from two `--record` runs "
             "of each shape (A = stock, B = patched), as on real hardware; "
             "the sections marked *lab* come from the lab's models "
             "(tests/model/) and the patch series, not from compare.", "",
             "- stock: %s" % stock_what,
             "- patched: Debian's linux-source-6.1 with the lab config and "
             "tests/kernel/patches/", ""]
    for name, args in labagent.SHAPES:
        s, p = (vm_figures(runs[k][name], name) for k in KERNELS)
        lines += ["## %s (`%s`)" % (name, args), "",
                  "### lab: each record against its kernel's model", ""]
        for k in KERNELS:
            bad = problems[k][name]
            lines.append("- %s: %s" % (k, "equals the model" if not bad else
                                       "**differs from the model**: " +
                                       "; ".join(bad)))
        lines.append("")
        diff = [k for k in s if s[k] != p[k]] if s and p else []
        lines.append("### lab: why the figures move")
        lines.append("")
        if diff:
            for k in diff:
                lines.append("- %s: %s." % (k.replace("_", " "), REASONS[k]))
        else:
            lines.append("The two kernels count the same for this shape.")
        lines += ["", demote(run_compare(name), 2), ""]
        for png in ("pvec-depth.png", "sync-duration.png"):
            if os.path.exists(os.path.join(OUT, name, png)):
                lines.append("![%s %s](%s/%s)" % (name, png[:-4], name, png))
        lines.append("")
    return "\n".join(lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    stock_image, stock_what = stock_kernel()
    kernels = {"stock": stock_image, "patched": build_kernel("patched")}
    runs, problems = {}, {}
    for flavour in KERNELS:
        print("compare: %s kernel..." % flavour, flush=True)
        runs[flavour] = collect(flavour, kernels[flavour])
        problems[flavour] = {n: model_problems(runs[flavour][n], n, a, flavour)
                             for n, a in labagent.SHAPES}
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump({k: {n: vm_figures(runs[k][n], n) for n, _ in labagent.SHAPES}
                   for k in KERNELS}, f, indent=1, sort_keys=True)
    text = report(runs, problems, stock_what)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print("\ncompare: report in %s" % os.path.relpath(OUT, REPO))
    ok = not any(problems[k][n] for k in KERNELS for n in problems[k])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
