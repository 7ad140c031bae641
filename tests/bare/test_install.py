#!/usr/bin/env python3
"""What an operator installs, checked with the real tools:
- make install with PREFIX and DESTDIR puts every file where it belongs
  (the units' ExecStart= at the installed binary), make uninstall takes
  every one away again;
- kvm-unsync-exporter(8) passes mandoc -T lint with nothing to say, and
  names every flag of --help and every metric family the agent exports;
- the recording rules load and pass their promtool unit tests;
- the Grafana dashboard has what Grafana needs (a datasource variable, host
  and VM variables, unique panel ids, a schemaVersion) and every panel
  expression, its variables filled in, is PromQL promtool accepts;
- dpkg-buildpackage -us -uc -b builds the package from a copy of the tree,
  lintian reports no error, and the .deb holds the binary, both units (the
  maintainer scripts enable them through deb-systemd-helper),
  /etc/default/kvm-unsync-exporter (a conffile with ARGS="") and the rules
  and dashboard under /usr/share.
Installing, running and purging it under a real systemd is
tests/vm/test_package_lab.py's job.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from agentenv import AGENT  # noqa: E402
import debbuild  # noqa: E402

MAN = os.path.join(REPO, "docs", "kvm-unsync-exporter.8")
PROM = os.path.join(REPO, "deploy", "prometheus")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "kvm-unsync-exporter.json")
SHARE = "share/kvm-unsync-exporter/"
INSTALLED = [
    "sbin/kvm-unsync-exporter",
    "lib/systemd/system/kvm-unsync-exporter.service",
    "lib/systemd/system/kvm-unsync-exporter.socket",
    "share/man/man8/kvm-unsync-exporter.8",
    SHARE + "prometheus/kvm-unsync-exporter.rules.yml",
    SHARE + "prometheus/kvm-unsync-exporter.recording.yml",
    SHARE + "grafana/kvm-unsync-exporter.json",
    SHARE + "web-config.example.yml",
]


def run(args, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def dashboard_exprs(dash, host="h1", vm="a"):
    """Every target's expr with $host, $vm and $__rate_interval filled in."""
    out = []
    for p in dash["panels"]:
        for t in p["targets"]:
            e = t["expr"].replace("$host", host).replace("$vm", vm)
            out.append((p["title"], e.replace("$__rate_interval", "1m")))
    return out


class MakeInstall(unittest.TestCase):
    def test_install_then_uninstall(self):
        dest = tempfile.mkdtemp(prefix="kue-install-")
        self.addCleanup(shutil.rmtree, dest, ignore_errors=True)
        r = run(["make", "-s", "-C", REPO, "install", "DESTDIR=" + dest,
                 "PREFIX=/opt/kue"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        root = os.path.join(dest, "opt/kue")
        self.assertEqual(files_under(root), set(INSTALLED))
        self.assertTrue(os.access(os.path.join(root, INSTALLED[0]), os.X_OK))
        with open(os.path.join(root, INSTALLED[1])) as f:
            unit = f.read()
        self.assertIn("\nExecStart=/opt/kue/sbin/kvm-unsync-exporter $ARGS\n",
                      unit)
        self.assertIn("\nEnvironmentFile=-/etc/default/kvm-unsync-exporter\n",
                      unit)
        r = run(["make", "-s", "-C", REPO, "uninstall", "DESTDIR=" + dest,
                 "PREFIX=/opt/kue"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(files_under(dest), set())


class ManPage(unittest.TestCase):
    @unittest.skipUnless(shutil.which("mandoc"), "mandoc not installed")
    def test_mandoc_lint_is_silent(self):
        r = run(["mandoc", "-T", "lint", MAN])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_every_flag_and_metric_documented(self):
        with open(MAN) as f:
            man = f.read().replace("\\-", "-")
        helptext = run([AGENT, "--help"]).stdout
        flags = set(re.findall(r"--([a-z][a-z.-]+)", helptext))
        flags -= {"help", "usage"}
        self.assertGreater(len(flags), 10)
        missing = [f for f in sorted(flags) if "Fl -" + f not in man]
        self.assertEqual(missing, [], "flags not in the man page")
        readme = open(os.path.join(REPO, "README.md")).read()
        metrics = set(re.findall(r"^\| `(kvm_unsync_[a-z_]+)`", readme, re.M))
        self.assertGreater(len(metrics), 15)
        self.assertEqual(sorted(m for m in metrics if m not in man), [])


@unittest.skipUnless(shutil.which("promtool"),
                     "promtool not installed (Debian package prometheus)")
class RecordingRules(unittest.TestCase):
    def test_recording_rules(self):
        for args in (["check", "rules", "kvm-unsync-exporter.recording.yml"],
                     ["test", "rules", "kvm-unsync-exporter.recording.test.yml"]):
            r = run(["promtool"] + args, cwd=PROM)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dash = json.load(f)

    def test_what_grafana_needs(self):
        d = self.dash
        self.assertIsInstance(d.get("schemaVersion"), int)
        self.assertTrue(d.get("uid") and d.get("title"))
        var = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(var["datasource"]["type"], "datasource")
        self.assertEqual(var["datasource"]["query"], "prometheus")
        self.assertEqual((var["host"]["type"], var["vm"]["type"]),
                         ("query", "query"))
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids not unique")
        for p in d["panels"]:
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
        types = {p["type"] for p in d["panels"]}
        self.assertIn("heatmap", types)

    def test_the_panels_the_operators_need(self):
        text = json.dumps(self.dash)
        for name in ("kvm_unsync_sync_calls_total", "kvm_unsync_walks_total",
                     "kvm_unsync_restarts_total", "kvm_unsync_bitmap_clears_total",
                     "kvm_unsync_pvec_depth_bucket",
                     "kvm_unsync_sync_duration_seconds_bucket",
                     "kvm_unsync_pages_synced_total",
                     "kvm_unsync_pages_unsynced_total",
                     "kvm_unsync_probe_attached", "kvm_unsync_ringbuf_dropped_total",
                     "kvm_unsync_scrape_errors_total",
                     "kvm_unsync_http_connections_closed_total"):
            self.assertIn(name, text)

    @unittest.skipUnless(shutil.which("promtool"),
                         "promtool not installed (Debian package prometheus)")
    def test_every_expression_parses(self):
        # promtool parses every expression of a rule file: one rule each
        tmp = tempfile.mkdtemp(prefix="kue-dash-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        rules = [{"record": "panel_%d" % i, "expr": e}
                 for i, (_, e) in enumerate(dashboard_exprs(self.dash))]
        path = os.path.join(tmp, "panels.yml")
        with open(path, "w") as f:
            json.dump({"groups": [{"name": "panels", "rules": rules}]}, f)
        r = run(["promtool", "check", "rules", path])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


@unittest.skipUnless(shutil.which("dpkg-buildpackage") and shutil.which("dh")
                     and shutil.which("lintian"),
                     "needs dpkg-dev, debhelper and lintian")
class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kue-deb-")
        cls.build, cls.deb = debbuild.build(cls.tmp)
        cls.changes = cls.deb[:-4] + ".changes"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_builds(self):
        self.assertEqual(self.build.returncode, 0,
                         self.build.stdout[-3000:] + self.build.stderr[-3000:])
        self.assertTrue(os.path.exists(self.deb))

    def test_lintian_no_errors(self):
        r = run(["lintian", "--fail-on", "error", self.changes])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^E: ")

    def test_contents(self):
        r = run(["dpkg-deb", "-c", self.deb], check=True)
        paths = {line.split()[-1].lstrip(".") for line in r.stdout.splitlines()}
        for p in ("/usr/sbin/kvm-unsync-exporter",
                  "/lib/systemd/system/kvm-unsync-exporter.service",
                  "/lib/systemd/system/kvm-unsync-exporter.socket",
                  "/etc/default/kvm-unsync-exporter",
                  "/usr/share/man/man8/kvm-unsync-exporter.8.gz",
                  "/usr/share/kvm-unsync-exporter/prometheus/kvm-unsync-exporter.rules.yml",
                  "/usr/share/kvm-unsync-exporter/prometheus/kvm-unsync-exporter.recording.yml",
                  "/usr/share/kvm-unsync-exporter/grafana/kvm-unsync-exporter.json"):
            self.assertIn(p, paths)
        ctl = os.path.join(self.tmp, "control")
        run(["dpkg-deb", "-e", self.deb, ctl], check=True)
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertIn("/etc/default/kvm-unsync-exporter", f.read())
        with open(os.path.join(ctl, "postinst")) as f:
            postinst = f.read()
        for u in ("kvm-unsync-exporter.socket", "kvm-unsync-exporter.service"):
            self.assertIn("deb-systemd-helper enable '%s'" % u, postinst)
        x = os.path.join(self.tmp, "x")
        run(["dpkg-deb", "-x", self.deb, x], check=True)
        with open(os.path.join(x, "etc/default/kvm-unsync-exporter")) as f:
            self.assertRegex(f.read(), r'(?m)^ARGS=""$')
        with open(os.path.join(x, "lib/systemd/system/kvm-unsync-exporter.service")) as f:
            self.assertIn("\nExecStart=/usr/sbin/kvm-unsync-exporter $ARGS\n",
                          f.read())


if __name__ == "__main__":
    unittest.main()
