#!/usr/bin/env python3
"""The developer's modes on a real shadow-paging KVM, against the model.

One lab VM per kernel (tests/vm/scenarios/devtools.sh): the agent runs
--batch --iterations --record, attached by itself, while kvmwalk runs a
few shapes; on Debian's kernel, --top then runs in tmux beside a running
agent (its pinned maps, read-only), driven with send-keys and read with
capture-pane as a person would.

The figures on the screen are checked against the model
(tests/model/predict.py via labagent.model), which never sees the agent:
every shape here syncs the same way each time (the model says so, and the
test checks that it does), so each row's per-sync figures of any interval
that holds a sync are the model's; the footers' sync counts and page
vector depths add up, over the blocks, to the model's.  The records are
the model's figures, and `compare` of the stock and the patched kernel's
records shows the two models side by side, difference and ratio.
"""

import functools
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from labagent import (AGENT, CHRT, CTX, KVMWALK, SITES, LabSections,
                      agent_figures, build_kernel, kv_lines, lab, model,
                      require)
from promtext import parse_metrics

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
# tmux refuses to start without a UTF-8 locale (it tries C.UTF-8 itself)
# and the terminfo entry of $TERM (the scenario sets screen)
UTF8_CTYPE = "/usr/lib/locale/C.utf8/LC_CTYPE"
TERMINFO = "/lib/terminfo/s/screen"
ITERATIONS = 60		# --batch blocks of 0.5 s: kvmwalk ends well before
RECORD_SHAPES = [
    ("restarts", "--tables 40 --rounds 10"),
    ("dirs", "--tables 40 --dirs 4 --rounds 2"),
    ("fit", "--tables 12"),
]
TOP_SHAPES = [		# other names: a section appears once in a log
    ("top-restarts", "--tables 40 --rounds 10"),
    ("top-fit", "--tables 12"),
]
# top.c's per-sync columns, from the model's report of one VM
PER_SYNC = ("WALKS", "RESTARTS", "FRAMES", "LEAVES", "CLR-WALK", "CLR-PAR")


def shapes_env(shapes):
    return ";".join("%s:%s" % (n, a.replace(" ", ",")) for n, a in shapes)


def per_sync(m):
    """top.c's per-sync cells of the model's report m, as printed."""
    n = sum(m["sync_calls"].values())
    w = m["walks"]["sync"]
    vals = (w["done"] + w["enospc"], m["restarts"], m["frames"]["sync"],
            m["leaves"]["sync"], m["clears"]["sync"]["walk"],
            m["clears"]["sync"]["clear_parents"])
    return ["%.2f" % (v / n) for v in vals]


def screen_rows(block):
    """{vm: cells} of one block (a --batch block or a --top screen)."""
    return {cells[0]: cells for cells in screen_rows_list(block)}


def screen_rows_list(block):
    """The rows of one block, in screen order: lists of cells."""
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("VM ") and "SYNCS/s" in line:
            out = []
            for row in lines[i + 1:]:
                if not row.strip() or row.startswith(("sync duration", "(")):
                    break
                out.append(row.split())
            return out
    return []


def footer(block):
    """(syncs, {ctx: {nr: walks}}) of a block's two footer lines."""
    syncs, depth = 0, {"sync": {}, "zap": {}}
    for line in block.splitlines():
        if line.startswith("sync duration:") and "syncs)" in line:
            syncs = int(line.rsplit("(", 1)[1].split()[0])
        if line.startswith("pvec->nr at walk exit"):
            ctx = None
            for word in line.split("):", 1)[1].split():
                if word in ("sync", "zap"):
                    ctx = word
                elif ":" in word:
                    k, v = word.split(":")
                    depth[ctx][int(k)] = int(v)
    return syncs, depth


def model_depth(models):
    out = {"sync": {}, "zap": {}}
    for m in models:
        for c in CTX:
            for k, v in enumerate(m["pvec_depth"][c]):
                if v:
                    out[c][k] = out[c].get(k, 0) + v
    return out


def record_figures(c):
    """A record's counters in the model's keys."""
    return {
        "sync_calls": {r: c["sync_calls"][r] for r in ("ok", "eintr")},
        "walks": c["walks"],
        "frames": c["frames"],
        "restarts": c["restarts"],
        "leaves": c["leaves"],
        "clears": c["clears"],
        "pages_synced": c["pages_synced"],
        "pages_unsynced": c["pages_unsynced"],
    }


def model_keys(m):
    return {k: m[k] for k in ("sync_calls", "walks", "frames", "restarts",
                              "leaves", "clears", "pages_synced",
                              "pages_unsynced")}


@functools.lru_cache(maxsize=None)
def devtools_run(kernel, top):
    """One boot of devtools.sh: (rc, log, sections, last_log)."""
    image = build_kernel(kernel) if kernel else None
    env = {"KUE_SHAPES": shapes_env(RECORD_SHAPES),
           "KUE_TOP_SHAPES": shapes_env(TOP_SHAPES),
           "KUE_ITERATIONS": str(ITERATIONS), "KUE_TOP": "1" if top else "0"}
    extra = {"kernel": image} if image else {}
    if top:
        extra["files"] = [(UTF8_CTYPE, UTF8_CTYPE), (TERMINFO, TERMINFO)]
    rc, log = lab.run_scenario(
        os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     "scenarios", "devtools.sh"),
        [AGENT, KVMWALK, CHRT] + ([TMUX] if top else []), timeout=900,
        env=env, **extra)
    return rc, log, lab.sections(log), lab.last_log


class DevtoolsRun(LabSections):
    """--batch --iterations --record on one kernel."""
    kernel = None		# tests/kernel/build.sh flavour; None: Debian's
    variant = "stock"
    top = False

    @classmethod
    def setUpClass(cls):
        require([AGENT, KVMWALK, CHRT] +
                ([TMUX, UTF8_CTYPE, TERMINFO] if cls.top else []))
        cls.rc, cls.log, cls.sec, cls.last_log = devtools_run(cls.kernel,
                                                              cls.top)

    def models(self, shapes):
        return {n: model(a, self.variant) for n, a in shapes}

    def assert_homogeneous(self, shapes):
        """The premise of the per-sync checks: every sync of each shape
        has the same figures, so any interval's ratio is the model's."""
        for name, args in shapes:
            syncs = model(args, self.variant)["syncs"]
            self.assertTrue(syncs, name)
            self.assertEqual(len({json.dumps(s, sort_keys=True)
                                  for s in syncs}), 1, name)

    def batch_blocks(self):
        text = self.section("batch")
        return [b for b in text.split("\n\n") if b.strip()]

    def test_batch_ran_its_iterations(self):
        out = kv_lines(self.section("batch-stderr"))
        self.assertEqual(out["rc"], "0", self.section("batch-stderr"))
        self.assertEqual(out["walked"], "1",
                         "kvmwalk outlived %d blocks of --batch" % ITERATIONS)
        blocks = self.batch_blocks()
        self.assertEqual(len(blocks), ITERATIONS)
        for b in blocks:
            self.assertTrue(b.startswith("kvm-unsync-exporter: "), b)

    def test_batch_rows_are_the_model_per_sync(self):
        self.assert_homogeneous(RECORD_SHAPES)
        for name, m in self.models(RECORD_SHAPES).items():
            with self.subTest(vm=name):
                want = per_sync(m)
                seen = 0
                for b in self.batch_blocks():
                    cells = screen_rows(b).get(name)
                    if not cells or cells[3] == "-":
                        continue	# no sync of it in this interval
                    self.assertEqual(cells[3:9], want, b)
                    seen += 1
                self.assertGreater(seen, 0, "no block with a sync of " + name)

    def test_batch_footers_add_up_to_the_model(self):
        models = self.models(RECORD_SHAPES).values()
        syncs, depth = 0, {"sync": {}, "zap": {}}
        for b in self.batch_blocks():
            n, d = footer(b)
            syncs += n
            for c in CTX:
                for k, v in d[c].items():
                    depth[c][k] = depth[c].get(k, 0) + v
        self.assertEqual(syncs, sum(sum(m["sync_calls"].values())
                                    for m in models))
        self.assertEqual(depth, model_depth(models))

    def record(self):
        return json.loads(self.section("record"))

    def test_record_is_the_model(self):
        doc = self.record()
        self.assertEqual(doc["kernel"]["variant"], self.variant)
        self.assertEqual(doc["maps"]["source"], "attached")
        modes = {h["probe"]: h["mode"] for h in doc["hooks"] if h["attached"]}
        for hook in ("mmu_sync_children", "__mmu_unsync_walk"):
            self.assertIn(modes.get(hook), ("fentry", "kprobe"), doc["hooks"])
        vms = {v["name"]: v for v in doc["vms"]}
        self.assertEqual(sorted(vms), sorted(n for n, _ in RECORD_SHAPES))
        for name, m in self.models(RECORD_SHAPES).items():
            with self.subTest(vm=name):
                self.assertEqual(vms[name]["pid"], self.pid_of(name))
                self.assertEqual(record_figures(vms[name]["counters"]),
                                 model_keys(m))
        models = self.models(RECORD_SHAPES).values()
        for c in CTX:
            want = [sum(m["pvec_depth"][c][k] for m in models)
                    for k in range(17)]
            self.assertEqual(doc["hists"]["pvec_depth"][c], want)
        self.assertEqual(sum(doc["hists"]["sync_duration_ns"]["slots"]),
                         sum(sum(m["sync_calls"].values()) for m in models))
        for k, v in doc["self"].items():
            self.assertEqual(v, 0, k)


class StockDevtools(DevtoolsRun, unittest.TestCase):
    """Debian's kernel: --batch, --record, and --top in tmux."""
    top = True

    def top_screen(self, name):
        return self.section("top " + name)

    def test_top_starts_with_no_vm(self):
        s = self.top_screen("start")
        self.assertIn("0 VMs, last 0.0 s, sorted by syncs", s)

    def top_rows(self, screen):
        """{pid: cells} of a --top screen; each VM under its name, though
        it exited before --top looked (beside a running agent the name
        comes from the agent's pinned vm_names)."""
        rows = {int(c[1]): c for c in screen_rows_list(screen)}
        for name, _ in TOP_SHAPES:
            cells = rows.get(self.top_pid(name))
            self.assertIsNotNone(cells, screen)
            self.assertEqual(cells[0], name, screen)
        return rows

    def test_top_rows_are_the_model(self):
        self.assert_homogeneous(TOP_SHAPES)
        s = self.top_screen("syncs")
        rows = self.top_rows(s)
        models = self.models(TOP_SHAPES)
        for name, m in models.items():
            with self.subTest(vm=name):
                cells = rows[self.top_pid(name)]
                self.assertEqual(cells[3:9], per_sync(m), s)
                self.assertEqual(cells[11], "-")	# exited: no KVM stats
        syncs, depth = footer(s)
        self.assertEqual(syncs, sum(sum(m["sync_calls"].values())
                                    for m in models.values()))
        self.assertEqual(depth, model_depth(models.values()))

    def top_pid(self, name):
        return self.pid_of(name)

    def order(self, name):
        """The rows of the screen after sort key `name`: [(name, pid)]."""
        s = self.top_screen(name)
        self.assertIn("sorted by " + name, s.splitlines()[0])
        self.top_rows(s)
        return [(c[0], int(c[1])) for c in screen_rows_list(s)]

    def test_top_sort_keys(self):
        # top-restarts: 10 syncs, 3 restarts each; top-fit: 1 sync, none
        r, f = self.top_pid("top-restarts"), self.top_pid("top-fit")
        self.assertEqual([p for _, p in self.order("syncs")], [r, f])
        self.assertEqual([p for _, p in self.order("restarts")], [r, f])
        by_name = self.order("name")
        self.assertEqual(by_name, sorted(by_name))
        self.assertEqual([p for _, p in self.order("pid")], sorted([r, f]))

    def test_top_quits_on_q_and_the_agent_was_not_touched(self):
        out = kv_lines(self.section("top end"))
        self.assertEqual(out.get("rc"), "0", self.section("top end"))
        self.assertEqual(out.get("agent_rc"), "0", self.section("top end"))
        # the agent beside it counted every VM, as if --top was not there
        samples = parse_metrics(self.section("metrics after top"))
        for name, m in self.models(TOP_SHAPES).items():
            with self.subTest(vm=name):
                got = agent_figures(samples, self.top_pid(name))
                self.assertEqual(got, model_keys(m))


class PatchedDevtools(DevtoolsRun, unittest.TestCase):
    """The patched lab kernel: --batch and --record; then compare of the
    two kernels' records against the two models."""
    kernel = "patched"
    variant = "patched"

    def test_compare_of_the_two_records_is_the_two_models(self):
        _, _, stock_sec, _ = devtools_run(None, True)
        tmp = tempfile.mkdtemp(prefix="kue-compare-")
        try:
            a, b = os.path.join(tmp, "stock.json"), os.path.join(tmp, "patched.json")
            with open(a, "w") as f:
                f.write(stock_sec["record"])
            with open(b, "w") as f:
                f.write(self.section("record"))
            r = subprocess.run([AGENT, "compare", a, b], capture_output=True,
                               text=True, timeout=60)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        tables = compare_tables(r.stdout)
        for name, args in RECORD_SHAPES:
            ma, mb = model(args, "stock"), model(args, "patched")
            with self.subTest(vm=name):
                counts = tables["vm " + name]["counts"]
                per = tables["vm " + name]["per sync"]
                na, nb = (sum(m["sync_calls"].values()) for m in (ma, mb))
                for label, key in figure_labels():
                    va, vb = key(ma), key(mb)
                    self.assertEqual(counts[label],
                                     [str(va), str(vb), "%+d" % (vb - va),
                                      ratio(va, vb)], label)
                    if va or vb:
                        pa, pb = va / na, vb / nb
                        self.assertEqual(per[label][:3],
                                         ["%.2f" % pa, "%.2f" % pb,
                                          "%+.2f" % (pb - pa)], label)


def ratio(a, b):
    if a == 0:
        return "=" if b == 0 else "-"
    return "%.2f" % (b / a)


def figure_labels():
    """compare's row labels of the walk's counts, and the model's key."""
    out = [("sync calls ok", lambda m: m["sync_calls"]["ok"]),
           ("sync calls eintr", lambda m: m["sync_calls"]["eintr"])]
    for c in CTX:
        for r in ("done", "enospc"):
            out.append(("%s walks %s" % (c, r),
                        lambda m, c=c, r=r: m["walks"][c][r]))
        out.append(("%s frames" % c, lambda m, c=c: m["frames"][c]))
        out.append(("%s leaves" % c, lambda m, c=c: m["leaves"][c]))
        for s in SITES:
            out.append(("%s clears in %s" % (c, s),
                        lambda m, c=c, s=s: m["clears"][c][s]))
    out += [("restarts", lambda m: m["restarts"]),
            ("pages unsynced", lambda m: m["pages_unsynced"]),
            ("pages synced", lambda m: m["pages_synced"])]
    return out


def compare_tables(text):
    """{"vm NAME": {"counts"|"per sync"|"per page synced": {label: cells}}}"""
    out, title, table = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            title, table = line[3:].strip(), "counts"
            out[title] = {table: {}}
        elif line.endswith(":") and title and not line.startswith("|"):
            table = line[:-1]
            out[title][table] = {}
        elif line.startswith("| ") and title and not line.startswith("| figure") \
                and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[title][table][cells[0]] = cells[1:]
    return out


if __name__ == "__main__":
    unittest.main()
