#!/usr/bin/env python3
"""What an operator installs, checked with the real tools:
- make install with PREFIX and DESTDIR puts every file where it belongs
  (the units' ExecStart= at the installed binary), make uninstall takes
  every one away again;
- the Makefile compiles and links with CPPFLAGS, CFLAGS and LDFLAGS as a
  packager gives them (environment or command line) on top of its own;
- kvm-unsync-exporter(8) passes mandoc -T lint (warnings and up: nothing;
  style: only its own .Os, which mandoc flags for BSD base manuals), has
  the project and version in its footer, no "BSD" in groff's header and a
  SEE ALSO, and names every flag of --help and every metric family the
  agent exports; it, README and the units give the one way to move the
  port under systemd;
- every rule file promtool check rules deploy/prometheus/*.yml takes (what
  rule_files: loads) is a rule file, and the promtool unit tests in
  deploy/prometheus/tests/ pass;
- LICENSE and debian/copyright say of each file what its
  SPDX-License-Identifier says, and LICENSE holds the license texts;
- the Grafana dashboard has what Grafana needs (a datasource variable, host
  and VM variables, unique panel ids, a schemaVersion) and every panel
  expression, its variables filled in, is PromQL promtool accepts;
- dpkg-buildpackage -us -uc -b builds the package from a copy of the tree,
  lintian reports no error and no missing hardening, the binary calls
  glibc's fortified functions, and the .deb holds the binary, both units
  (the maintainer scripts enable them through deb-systemd-helper),
  /etc/default/kvm-unsync-exporter (a conffile with ARGS=""), the rules
  and dashboard under /usr/share, README.md and record.md under
  /usr/share/doc/kvm-unsync-exporter and debian/copyright as its copyright.
Installing, running and purging it under a real systemd is
tests/vm/test_package_lab.py's job.
"""

import fnmatch
import glob
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
VERSION = open(os.path.join(REPO, "VERSION")).read().strip()
MOVE_PORT = "systemctl edit kvm-unsync-exporter.socket"
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


class MakeFlags(unittest.TestCase):
    """make -n in an empty OUTPUT: the commands a packager's build runs."""
    CPP, C, LD = "-DKUE_PKG_CPP", "-O1 -DKUE_PKG_C", "-Wl,-z,kue-pkg-ld"

    def commands(self, how):
        out = tempfile.mkdtemp(prefix="kue-flags-")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        flags = {"CPPFLAGS": self.CPP, "CFLAGS": self.C, "LDFLAGS": self.LD}
        args = ["make", "-n", "-C", REPO, "OUTPUT=" + out, "all"]
        env = dict(os.environ)
        if how == "command line":
            args += ["%s=%s" % kv for kv in flags.items()]
        else:
            env.update(flags)
        r = run(args, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        cc = [ln for ln in r.stdout.splitlines()
              if re.search(r" -c user/\S+\.c ", ln)]
        link = [ln for ln in r.stdout.splitlines()
                if ln.endswith("-o %s/kvm-unsync-exporter" % out)]
        self.assertEqual(len(cc), len(glob.glob(os.path.join(REPO, "user",
                                                             "*.c"))))
        self.assertEqual(len(link), 1, r.stdout)
        return out, cc, link[0]

    def test_packager_flags_on_top_of_the_builds_own(self):
        for how in ("environment", "command line"):
            with self.subTest(how=how):
                out, cc, link = self.commands(how)
                for ln in cc:
                    words = ln.split()
                    for own in ("-Wall", "-std=gnu11", "-I" + out, "-Iuser",
                                "-DKUE_VERSION=\\\"%s\\\"" % VERSION):
                        self.assertIn(own, words, ln)
                    for theirs in (self.CPP + " " + self.C).split():
                        self.assertIn(theirs, words, ln)
                    # theirs after the build's own: a packager's -O wins
                    self.assertGreater(words.index("-O1"),
                                       words.index("-std=gnu11"), ln)
                self.assertIn(self.LD, link.split())


class ManPage(unittest.TestCase):
    @unittest.skipUnless(shutil.which("mandoc"), "mandoc not installed")
    def test_mandoc_lint_is_silent(self):
        r = run(["mandoc", "-T", "lint", "-W", "warning", MAN])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # mandoc's style level asks NetBSD's and OpenBSD's own manuals for
        # an empty .Os; a page from elsewhere names itself there
        r = run(["mandoc", "-T", "lint", MAN])
        self.assertEqual(r.stdout.splitlines(), [
            "mandoc: %s:6:5: STYLE: operating system explicitly specified: "
            "Os kvm-unsync-exporter (NetBSD)" % MAN])

    @unittest.skipUnless(shutil.which("groff") and shutil.which("mandoc"),
                         "needs groff and mandoc")
    def test_header_footer_and_see_also(self):
        footer = "kvm-unsync-exporter %s" % VERSION
        for fmt in (["groff", "-mandoc", "-Tascii", "-P-cbou"],
                    ["mandoc", "-T", "ascii"]):
            with self.subTest(fmt=fmt[0]):
                r = run(fmt + [MAN], env=dict(os.environ, LC_ALL="C"))
                self.assertEqual(r.returncode, 0, r.stderr)
                page = re.sub(".\b", "", r.stdout)   # overstrikes: bold
                lines = [ln for ln in page.splitlines() if ln.strip()]
                self.assertRegex(lines[0], r"^KVM-UNSYNC-EXPORTER\(8\) +"
                                 r"System Manager's Manual +KVM-UNSYNC")
                self.assertRegex(lines[-1], r"^%s +December \d+, \d+ +%s$"
                                 % (footer, footer))
                see = page.split("\nSEE ALSO\n")[1]
                for ref in ("bpftool(8)", "prometheus(1)", "promtool(1)",
                            "systemd.socket(5)", "systemd.service(5)",
                            "sd_listen_fds(3)"):
                    self.assertIn(ref, " ".join(see.split()))

    def test_one_way_to_move_the_port(self):
        docs = {"man page": MAN, "README": os.path.join(REPO, "README.md"),
                "service": os.path.join(REPO, "deploy",
                                        "kvm-unsync-exporter.service"),
                "socket": os.path.join(REPO, "deploy",
                                       "kvm-unsync-exporter.socket")}
        for what, path in docs.items():
            with open(path) as f:
                text = f.read().replace("\\-", "-")
            self.assertTrue(MOVE_PORT in " ".join(text.split()), what)
        with open(docs["service"]) as f:
            self.assertIn("\nRestartPreventExitStatus=2\n", f.read())

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
class PrometheusRules(unittest.TestCase):
    def test_the_glob_rule_files_takes_is_all_rules(self):
        # as README's rule_files: and an operator's shell glob it
        r = run(["sh", "-c", "promtool check rules deploy/prometheus/*.yml"],
                cwd=REPO)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sorted(os.path.basename(p) for p in
                                glob.glob(os.path.join(PROM, "*.yml"))),
                         sorted(os.path.basename(p) for p in INSTALLED
                                if "/prometheus/" in p))

    def test_unit_tests(self):
        tests = glob.glob(os.path.join(PROM, "tests", "*.test.yml"))
        self.assertEqual(len(tests), 2)
        r = run(["promtool", "test", "rules"] + tests)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


def spdx_of(path):
    """A file's SPDX-License-Identifier, as debian/copyright spells it."""
    with open(path, errors="replace") as f:
        m = re.search(r"SPDX-License-Identifier: *(.*?) *(\*/)?$",
                      f.read(4096), re.M)
    if not m:
        return None
    return {"(LGPL-2.1 OR BSD-2-Clause)": "LGPL-2.1 or BSD-2-Clause",
            "GPL-2.0": "GPL-2"}.get(m.group(1), m.group(1))


def copyright_files(text):
    """[(patterns, license)] of debian/copyright's Files paragraphs."""
    out = []
    for para in text.split("\n\n"):
        fields = dict(re.findall(r"(?ms)^([A-Za-z-]+): *(.*?)(?=^\S|\Z)",
                                 para))
        if "Files" in fields:
            out.append((fields["Files"].split(),
                        fields["License"].splitlines()[0].strip()))
    return out


class Licenses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(REPO, "debian", "copyright")) as f:
            cls.files = copyright_files(f.read())
        with open(os.path.join(REPO, "LICENSE")) as f:
            cls.license = f.read()

    def test_debian_copyright_says_what_each_file_says(self):
        wrong = []
        for rel in debbuild.tree_files():
            spdx = spdx_of(os.path.join(REPO, rel))
            # DEP-5: the last paragraph that matches wins
            said = [lic for pats, lic in self.files
                    if any(fnmatch.fnmatchcase(rel, p) for p in pats)][-1]
            if spdx and spdx != said:
                wrong.append((rel, spdx, said))
        self.assertEqual(wrong, [])

    def test_license_file_lists_the_same_and_holds_the_texts(self):
        for pats, lic in self.files:
            if pats != ["*"]:
                for p in pats:
                    self.assertIn("\n  %s\n" % p, self.license)
        self.assertIn("LGPL-2.1 OR BSD-2-Clause", self.license)
        self.assertIn("Redistribution and use in source and binary forms",
                      self.license)
        for name in ("GPL-2", "LGPL-2.1"):
            path = os.path.join("/usr/share/common-licenses", name)
            if os.path.exists(path):
                with open(path) as f:
                    self.assertIn(f.read(), self.license)


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
        # -I: hardening-no-fortify-functions is only an I: tag
        r = run(["lintian", "-I", "--fail-on", "error", self.changes])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^E: ")
        self.assertNotIn("hardening-", r.stdout)

    def test_fortified(self):
        # CPPFLAGS' -D_FORTIFY_SOURCE=2 reached the compiler: glibc's
        # checking variants are what the binary calls
        x = os.path.join(self.tmp, "fortified")
        run(["dpkg-deb", "-x", self.deb, x], check=True)
        r = run(["nm", "-D", "--undefined-only",
                 os.path.join(x, "usr/sbin/kvm-unsync-exporter")], check=True)
        chk = set(re.findall(r"__(\w+)_chk@", r.stdout))
        self.assertTrue({"snprintf", "fprintf"} <= chk, chk)

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
                  "/usr/share/kvm-unsync-exporter/grafana/kvm-unsync-exporter.json",
                  "/usr/share/doc/kvm-unsync-exporter/README.md",
                  "/usr/share/doc/kvm-unsync-exporter/record.md"):
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
        doc = os.path.join(x, "usr/share/doc/kvm-unsync-exporter")
        for name, src in (("copyright", "debian/copyright"),
                          ("README.md", "README.md"),
                          ("record.md", "docs/record.md")):
            with open(os.path.join(doc, name)) as f, \
                    open(os.path.join(REPO, src)) as g:
                self.assertEqual(f.read(), g.read(), name)


if __name__ == "__main__":
    unittest.main()
