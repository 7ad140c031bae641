#!/usr/bin/env python3
"""Prometheus scrapes the agent in the lab; the Grafana dashboard and a
fleet's central store, checked with real servers.

No Grafana server can run here, so this proves what Grafana would show by
asking Prometheus what Grafana asks it.  Three Debian `prometheus` servers,
each on a free port with its storage in a temporary directory:

  edge-lab   scrapes the agent in the lab VM every second: the agent serves
             on the VM's e1000 card (Debian's own driver), which QEMU
             forwards to a host port; host="lab"
  edge-bare  scrapes a second agent, on this machine (no VM runs here: its
             own and its tracepoints' metrics) as localhost:PORT, with no
             host label: the relabelling names it host="localhost"
  central    started with --web.enable-remote-write-receiver; both edges
             remote-write into it, as a fleet's servers would into Thanos
             Receive or Mimir

The edges use the scrape job README's "Many hosts" section gives, its
relabelling read from README's text (a host label, else the target's
address without the port; `instance` relabelled from it), and load both
rule files.  While
edge-lab scrapes, the lab runs three kvmwalk shapes at once
(tests/vm/scenarios/prometheus.sh), whose VMs stay published once done.
Then, at one instant T after the shapes ended:

  - the dashboard's variables, run as Grafana runs them, list the hosts
    and the shapes' VMs;
  - every expression of every panel, its variables filled in, returns data
    (finite values) from edge-lab, for all VMs and for each one;
  - per VM, walks and restarts per sync, restarts by VM and bitmap clears
    by site per sync equal the model's (tests/model), and every counter
    edge-lab holds equals the model's total;
  - the central store holds both hosts' series apart (by host, with each
    edge's external label), with each host's own kernel release, and every
    series equal to the edge's (recorded rules included); every panel
    asked of it for a host answers as that host's edge does.

Why a rate can equal a per-sync figure: every sync of each shape is the
same (the model says so; asserted), and the agent counts a sync's walks,
restarts and clears at its exit, all at once, on the VM's single CPU.  So
whatever whole number of syncs a scrape falls after, the increase between
two scrapes is a whole number of identical syncs, and both rates of a
ratio are extrapolated from the same samples by the same factor.  These
shapes sync by CR3 (can_yield), so a sync never ends early with -EINTR;
kvmwalk needs no real-time priority here, and the agent gets the CPU to
answer scrapes while the VMs run.
"""

import json
import lzma
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import lab  # noqa: E402
from labagent import (AGENT, KVMWALK, agent_figures, model,  # noqa: E402
                      require, shapes_env)

PROMETHEUS = shutil.which("prometheus")
SCENARIO = os.path.join(HERE, "scenarios", "prometheus.sh")
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "kvm-unsync-exporter.json")
RULES = [os.path.join(REPO, "deploy", "prometheus", f) for f in
         ("kvm-unsync-exporter.rules.yml",
          "kvm-unsync-exporter.recording.yml")]
BPFFS = "/sys/fs/bpf"
E1000 = "kernel/drivers/net/ethernet/intel/e1000/e1000"

# Long enough that edge-lab scrapes each VM several times while it runs.
SHAPES = [
    ("restarts", "--tables 40 --rounds 800"),   # 4 walks, 3 restarts a sync
    ("boundary", "--tables 13 --rounds 1500"),  # its one walk fills the vector
    ("small", "--tables 8 --rounds 2000"),      # one walk, no restart
]
SCRAPE = "1s"
BARE = "localhost"      # the name edge-bare's target has, port aside
HOSTS = ("lab", BARE)
EXTERNAL = {"lab": "edge-lab", BARE: "edge-bare"}
REL = 1e-9


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nic_module(tmp):
    """Debian's e1000.ko for the lab kernel, decompressed (busybox insmod
    takes a plain .ko), or None."""
    base = os.path.join(lab.kernel()["MODULES"], E1000)
    if os.path.exists(base + ".ko"):
        return base + ".ko"
    if os.path.exists(base + ".ko.xz"):
        out = os.path.join(tmp, "e1000.ko")
        with lzma.open(base + ".ko.xz") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return out
    return None


def readme_relabelling():
    """The relabel_configs of README's "Many hosts" job, as text, indented
    as it is there (under a `  - job_name:` item)."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    block = re.search(r"```yaml\n# prometheus.yml of each server.*?```", text,
                      re.S)
    if not block:
        raise AssertionError("README has no \"Many hosts\" job")
    lines = block.group(0).splitlines()
    start = [i for i, ln in enumerate(lines)
             if ln == "    relabel_configs:"]
    if len(start) != 1:
        raise AssertionError("README's job has no relabel_configs")
    out = []
    for ln in lines[start[0]:]:
        if out and not ln.startswith("     "):
            break
        out.append(ln)
    return "\n".join(out) + "\n"


def edge_config(host, target, central, label):
    """An edge server's prometheus.yml: README's job, relabelling and all
    (its text), its target with a host label (label true) or without.
    The rest is JSON, which is YAML too."""
    static = {"targets": [target]}
    if label:
        static["labels"] = {"host": host}
    return "".join([
        "global: %s\n" % json.dumps({
            "scrape_interval": SCRAPE, "scrape_timeout": SCRAPE,
            "evaluation_interval": SCRAPE,
            "external_labels": {"prometheus": EXTERNAL[host]}}),
        "rule_files: %s\n" % json.dumps(RULES),
        "scrape_configs:\n",
        "  - job_name: kvm-unsync\n",
        "    static_configs: %s\n" % json.dumps([static]),
        readme_relabelling(),
        "remote_write: %s\n" % json.dumps([{
            "url": "http://127.0.0.1:%d/api/v1/write" % central,
            "queue_config": {"batch_send_deadline": "1s"}}]),
    ])


class Prometheus:
    """One server with `config` (prometheus.yml's text), started at once;
    ready() waits for it."""

    def __init__(self, name, tmp, config, flags=()):
        self.name = name
        self.port = free_port()
        d = os.path.join(tmp, name)
        os.makedirs(d)
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(config)
        self.log_path = os.path.join(d, "log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + cfg,
                 "--storage.tsdb.path=" + os.path.join(d, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port] +
                list(flags), stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path) as f:
            return f.read()[-3000:]

    def ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited %d: %s" % (
                    self.name, self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" %
                                            self.port, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("%s not ready in %ds: %s" % (
            self.name, timeout, self.log()))

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (
            self.port, path, urllib.parse.urlencode(params, doseq=True))
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError("%s %s: %s" % (self.name, url, body))
        return body["data"]

    def query(self, expr, t):
        """An instant query at t: {labels: value}, labels a frozenset of
        (name, value) pairs (the metric name as __name__)."""
        data = self.api("query", query=expr, time="%.3f" % t)
        if data["resultType"] == "scalar":
            return {frozenset(): float(data["result"][1])}
        return {frozenset(s["metric"].items()): float(s["value"][1])
                for s in data["result"]}

    def samples(self, expr, t):
        """An instant query as tests/promtext.py reads a page:
        {(name, ((label, value), ...)): value}."""
        out = {}
        for labels, v in self.query(expr, t).items():
            d = dict(labels)
            name = d.pop("__name__")
            out[(name, tuple(sorted(d.items())))] = \
                int(v) if v.is_integer() else v
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class BareAgent:
    """The agent on this machine, on a free port and its own pin dir."""

    def __init__(self, tmp):
        self.port = free_port()
        self.pin_dir = "%s/kue-prom-%d-%d" % (BPFFS, os.getpid(), self.port)
        self.err_path = os.path.join(tmp, "bare-agent.err")
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [AGENT, "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--pin-dir=" + self.pin_dir],
                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("bare agent exited %d: %s" % (
                    self.proc.returncode, self.err()))
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                       self.port, timeout=5).read()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("bare agent not serving in 30 s: " + self.err())

    def err(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def knock(port, word, until):
    """Connect to the lab's pacing port until the scenario answers `word`
    (before it listens, QEMU accepts and hangs up); False at `until`."""
    while time.time() < until:
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=5) as s:
                s.settimeout(5)
                got = b""
                while not got.endswith(b"\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    got += chunk
            if got.decode().strip() == word:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def fill(expr, host, vm, window):
    """A panel's expression with Grafana's variables filled in: $host and
    $vm as a single selection (or .*, the dashboard's allValue), the
    interval variables as `window`.  Any other variable is an error."""
    values = {"host": host, "vm": vm, "__rate_interval": window,
              "__interval": window, "__range": window}

    def sub(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise AssertionError("unknown variable $%s in %r" % (name, expr))
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)


def panel_targets(dash):
    """[(panel title, legendFormat, expr)] of every target."""
    return [(p["title"], t.get("legendFormat", t["refId"]), t["expr"])
            for p in dash["panels"] for t in p["targets"]]


def comparable(result):
    """A query's result with NaN (histogram_quantile of no increase) made
    equal to itself."""
    return {k: "NaN" if math.isnan(v) else v for k, v in result.items()}


def without(labels, *names):
    return frozenset((k, v) for k, v in labels if k not in names)


class PrometheusLab(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not PROMETHEUS:
            raise unittest.SkipTest("prometheus not installed (Debian "
                                    "package prometheus)")
        require((AGENT, KVMWALK))
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: the second agent loads "
                                    "BPF programs on this machine")
        cls.tmp = tempfile.mkdtemp(prefix="kue-prom-")
        nic = nic_module(cls.tmp)
        if not nic:
            raise unittest.SkipTest("no %s.ko(.xz) in the lab kernel's "
                                    "modules" % E1000)
        with open(DASHBOARD) as f:
            cls.dash = json.load(f)
        cls.servers = []
        cls.bare = None
        try:
            cls.run_everything(nic)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def run_everything(cls, nic):
        central = Prometheus("central", cls.tmp, "global: {}\n",
                             ["--web.enable-remote-write-receiver"])
        cls.servers.append(central)
        cls.bare = BareAgent(cls.tmp)
        lab_port, pace_port = free_port(), free_port()
        edges = {
            "lab": Prometheus("edge-lab", cls.tmp, edge_config(
                "lab", "127.0.0.1:%d" % lab_port, central.port, True)),
            BARE: Prometheus("edge-bare", cls.tmp, edge_config(
                BARE, "%s:%d" % (BARE, cls.bare.port), central.port, False)),
        }
        cls.servers += edges.values()
        for s in cls.servers:
            s.ready()
        cls.central, cls.edges = central, edges

        done = threading.Event()
        cls.t_done = None

        def on_line(line):
            if line.strip() == "prometheus lab: shapes done":
                cls.t_done = time.time()
                done.set()

        cls.rc, cls.log = None, ""

        def boot():
            cls.rc, cls.log = lab.run_scenario(
                SCENARIO, [AGENT, KVMWALK], timeout=400,
                env={"KUE_SHAPES": shapes_env(SHAPES), "KUE_WAIT": "180"},
                files=[(nic, "/lib/e1000.ko")],
                qemu_args=["-nic", "user,model=e1000,"
                           "hostfwd=tcp:127.0.0.1:%d-:10190,"
                           "hostfwd=tcp:127.0.0.1:%d-:10191" %
                           (lab_port, pace_port)],
                on_line=on_line)
            done.set()

        vm = threading.Thread(target=boot, daemon=True)
        vm.start()
        # While the VM boots.
        cls.predicted = {n: model(a) for n, a in SHAPES}

        def lab_failed(what):
            vm.join(5)
            return AssertionError("%s (lab rc=%s); log: %s\n%s" % (
                what, cls.rc, lab.last_log, cls.log[-3000:]))

        # Prometheus sees the agent before any VM runs.
        deadline = time.time() + 240
        while not all(cls.up(edges[h], h, time.time()) for h in HOSTS):
            if not vm.is_alive() or time.time() > deadline:
                raise lab_failed("the edges never scraped both agents: " +
                                 edges["lab"].log())
            time.sleep(0.5)
        cls.t_go = time.time()
        if not knock(pace_port, "go", time.time() + 60):
            raise lab_failed("the lab never answered go")
        if not done.wait(300) or cls.t_done is None:
            raise lab_failed("the shapes never ended")

        # T: a successful scrape of the lab that began after every VM had
        # exited, so it holds their final counts.
        deadline = time.time() + 30
        cls.T = None
        while cls.T is None:
            if time.time() > deadline:
                raise lab_failed("no scrape of the lab after the shapes")
            time.sleep(0.5)
            m = edges["lab"].api("query", query='up{instance="lab"}[10s]',
                                 time="%.3f" % time.time())
            for ts, v in (m["result"][0]["values"] if m["result"] else []):
                if float(ts) > cls.t_done and v == "1":
                    cls.T = float(ts)
                    break
        # The windows the panels' rates take: back to before the VMs.
        cls.window = "%ds" % math.ceil(cls.T - cls.t_go + 5)
        knock(pace_port, "done", time.time() + 60)
        vm.join(120)

        # Remote write lags a second or two: both hosts past T centrally.
        deadline = time.time() + 60
        while True:
            ts = central.query("max by (host) (timestamp(up))", time.time())
            seen = {dict(k).get("host"): v for k, v in ts.items()}
            if all(seen.get(h, 0) >= cls.T for h in HOSTS):
                break
            if time.time() > deadline:
                raise AssertionError("central store never caught up: %s; "
                                     "%s" % (seen, central.log()))
            time.sleep(0.5)

    @staticmethod
    def up(server, host, t):
        got = server.query('up{instance="%s"}' % host, t)
        return bool(got) and all(v == 1 for v in got.values())

    @classmethod
    def tearDownClass(cls):
        # The edges first: at exit each flushes its remote-write queue,
        # and waits a minute for a central store that is gone.
        for s in reversed(getattr(cls, "servers", [])):
            s.stop()
        if getattr(cls, "bare", None):
            cls.bare.stop()
        if getattr(cls, "tmp", None):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers --

    def section(self, name):
        sec = lab.sections(self.log)
        if name not in sec:
            self.fail("lab printed no '%s' section (rc=%s); log: %s" %
                      (name, self.rc, lab.last_log))
        return sec[name]

    def pid_of(self, name):
        text = self.section("shape " + name)
        m = re.search(r"^kvmwalk: ok pid=(\d+) ", text, re.M)
        self.assertIsNotNone(m, text)
        return int(m.group(1))

    def panel(self, server, title, legend, host, vm):
        for t, lg, expr in panel_targets(self.dash):
            if (t, lg) == (title, legend):
                return server.query(fill(expr, host, vm, self.window), self.T)
        self.fail("no panel %r with a target %r" % (title, legend))

    def assert_close(self, got, want, msg):
        self.assertTrue(math.isclose(got, want, rel_tol=REL, abs_tol=REL),
                        "%s: got %r, want %r" % (msg, got, want))

    def per_sync(self, name):
        """The model's figures per sync of shape `name` (every sync the
        same)."""
        p = self.predicted[name]
        syncs = p["syncs"]
        self.assertTrue(syncs)
        self.assertEqual([s for s in syncs if s != syncs[0]], [],
                         "%s: the model's syncs differ" % name)
        n = len(syncs)
        self.assertEqual(p["sync_calls"], {"ok": n, "eintr": 0})
        return {"walks": sum(p["walks"]["sync"].values()) / n,
                "restarts": p["restarts"] / n,
                "clears": {s: c / n for s, c in p["clears"]["sync"].items()},
                "zap": p["walks"]["zap"]}

    # -- the lab run --

    def test_lab_ran(self):
        self.assertEqual(self.rc, 0, "lab log: %s" % lab.last_log)
        self.assertEqual(lab.kernel_splats(self.log), [])
        for name, _ in SHAPES:
            self.pid_of(name)
        text = self.section("shutdown")
        self.assertEqual(text.splitlines()[0], "rc=0", text)

    def test_each_vm_scraped_while_it_ran(self):
        # A rate needs two samples that differ: edge-lab saw each VM mid-run.
        for name, _ in SHAPES:
            with self.subTest(vm=name):
                got = self.edges["lab"].query(
                    'changes(kvm_unsync_sync_calls_total{instance="lab",'
                    'vm="%s",result="ok"}[%s])' % (name, self.window), self.T)
                self.assertEqual(len(got), 1, got)
                self.assertGreaterEqual(list(got.values())[0], 1)

    def test_counters_equal_model(self):
        s = self.edges["lab"].samples('{__name__=~"kvm_unsync_.+",'
                                      'instance="lab"}', self.T)
        for name, _ in SHAPES:
            with self.subTest(vm=name):
                got = agent_figures(s, self.pid_of(name))
                want = {k: self.predicted[name][k] for k in got}
                self.assertEqual(got, want)

    # -- the dashboard, asked of edge-lab --

    def test_variables_list_hosts_and_vms(self):
        var = {v["name"]: v for v in self.dash["templating"]["list"]}
        for server, hosts in ((self.edges["lab"], {"lab"}),
                              (self.central, set(HOSTS))):
            got = self.label_values(server, var["host"]["definition"], ".*")
            self.assertEqual(set(got), hosts, server.name)
        got = self.label_values(self.edges["lab"], var["vm"]["definition"],
                                "lab")
        self.assertEqual(set(got), {n for n, _ in SHAPES})

    def label_values(self, server, definition, host):
        """Grafana's label_values(SELECTOR, LABEL), as its Prometheus data
        source asks it (the label values API, match[]=SELECTOR)."""
        m = re.fullmatch(r"label_values\((.+), *(\w+)\)", definition)
        self.assertIsNotNone(m, definition)
        sel = fill(m.group(1), host, ".*", self.window)
        return server.api("label/%s/values" % m.group(2), **{
            "match[]": sel, "start": "%.3f" % (self.T - 300),
            "end": "%.3f" % self.T})

    def test_every_panel_returns_data(self):
        for vm in [".*"] + [n for n, _ in SHAPES]:
            for title, legend, expr in panel_targets(self.dash):
                with self.subTest(panel=title, target=legend, vm=vm):
                    q = fill(expr, "lab", vm, self.window)
                    got = self.edges["lab"].query(q, self.T)
                    self.assertTrue(got, q)
                    for labels, v in got.items():
                        self.assertTrue(math.isfinite(v),
                                        "%s: %s = %r" % (q, dict(labels), v))

    def test_panels_equal_model(self):
        lab_ = self.edges["lab"]
        for name, _ in SHAPES:
            with self.subTest(vm=name):
                want = self.per_sync(name)
                rate = {dict(k)["result"]: v for k, v in self.panel(
                    lab_, "Syncs per second by result", "{{result}}",
                    "lab", name).items()}
                self.assertEqual(rate["eintr"], 0)
                syncs = rate["ok"]
                self.assertGreater(syncs, 0)

                walks, = self.panel(lab_, "Walks and restarts per sync",
                                    "walks per sync", "lab", name).values()
                self.assert_close(walks, want["walks"], "walks per sync")
                restarts, = self.panel(lab_, "Walks and restarts per sync",
                                       "restarts per sync", "lab",
                                       name).values()
                self.assert_close(restarts, want["restarts"],
                                  "restarts per sync")
                by_vm = self.panel(lab_, "Restarts by VM", "{{vm}} ({{pid}})",
                                   "lab", name)
                self.assertEqual(list(by_vm), [frozenset(
                    {"vm": name, "pid": str(self.pid_of(name))}.items())])
                self.assert_close(list(by_vm.values())[0] / syncs,
                                  want["restarts"], "restarts by VM / syncs")
                # No zap in these shapes: every clear is a sync's.
                self.assertEqual(want["zap"], {"done": 0, "enospc": 0})
                clears = {dict(k)["site"]: v for k, v in self.panel(
                    lab_, "Bitmap clears by site", "{{site}}", "lab",
                    name).items()}
                self.assertEqual(set(clears), set(want["clears"]))
                for site, c in clears.items():
                    self.assert_close(c / syncs, want["clears"][site],
                                      "clears at %s per sync" % site)

    # -- the fleet: the central store --

    def test_central_holds_both_hosts_apart(self):
        got = self.central.query("kvm_unsync_kernel_info", self.T)
        hosts = {}
        for labels, v in got.items():
            d = dict(labels)
            self.assertEqual(v, 1)
            hosts[d["host"]] = (d["prometheus"], d["instance"], d["release"])
        self.assertEqual(hosts, {
            "lab": ("edge-lab", "lab", lab.kernel()["RELEASE"]),
            BARE: ("edge-bare", BARE, os.uname().release)})
        # Per VM, the lab's counts as the model has them; the bare machine
        # runs no VM.
        s = self.central.samples('{__name__=~"kvm_unsync_.+",host="lab"}',
                                 self.T)
        for name, _ in SHAPES:
            with self.subTest(vm=name):
                got = agent_figures(s, self.pid_of(name))
                self.assertEqual(got, {k: self.predicted[name][k]
                                       for k in got})
        self.assertEqual(self.central.query(
            'kvm_unsync_sync_calls_total{host="%s"}' % BARE, self.T), {})

    def converge(self, ask, want, what):
        """The central store may still be writing the last batch: ask
        until it answers `want` (10 s)."""
        deadline = time.time() + 10
        while True:
            got = comparable(ask())
            want = comparable(want)
            if got == want or time.time() > deadline:
                self.assertEqual(got, want, what)
                return
            time.sleep(0.5)

    def test_central_series_equal_the_edges(self):
        # Everything each edge holds for its host (the scrape's own
        # series and the recorded rules included), value for value.
        for host in HOSTS:
            with self.subTest(host=host):
                sel = '{instance="%s"}' % host
                want = self.edges[host].query(sel, self.T)
                self.assertTrue(want)
                if host == "lab":
                    self.assertTrue(any(dict(k)["__name__"].startswith(
                        "instance:") for k in want), "no recorded series")

                def ask():
                    got = self.central.query(sel, self.T)
                    for k in got:
                        self.assertEqual(dict(k)["prometheus"],
                                         EXTERNAL[host])
                    return {without(k, "prometheus"): v
                            for k, v in got.items()}

                self.converge(ask, want, host)

    def test_central_answers_each_panel_as_the_edge(self):
        for host in HOSTS:
            for title, legend, expr in panel_targets(self.dash):
                with self.subTest(host=host, panel=title, target=legend):
                    q = fill(expr, host, ".*", self.window)
                    want = self.edges[host].query(q, self.T)
                    # health panels have data for every host
                    if "vm" not in expr:
                        self.assertTrue(want, q)
                    self.converge(lambda: self.central.query(q, self.T),
                                  want, q)


if __name__ == "__main__":
    unittest.main()
