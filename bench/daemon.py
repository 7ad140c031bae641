#!/usr/bin/env python3
"""What the daemon costs the host, beside Debian's node_exporter, in one run
on this machine (no VM, no lab).

Starts the agent (build/kvm-unsync-exporter) and prometheus-node-exporter
with its default collectors, each on a free loopback port, and reports for
both, side by side:

- RSS (VmRSS) after start and after BENCH_SCRAPES_RSS (100) scrapes, with
  0 and with 1,000 VMs in the agent's map.  The lab cannot run 1,000 VMs:
  the pinned vm_stats map is filled (bpftool batch) with entries keyed by
  1,000 live `sleep` processes, which the agent names from /proc like any
  VMM.  node_exporter is restarted with the agent, so both "after start"
  figures are a fresh process;
- the page's in-process render time for 1,000 VMs (bench/render_bench.c:
  metrics_render() over a fake snapshot, then the gzip of it; median of
  BENCH_RENDER_ROUNDS), against a 5 ms goal;
- the whole scrape as Prometheus' client sees it, curl as a process, for
  1,000 VMs against node_exporter's default /metrics: median of
  BENCH_CURL (31) runs each, gzip'd (as Prometheus asks) and plain,
  alternating between the daemons so load hits all alike.  Here the walk
  hooks cannot attach, so the agent's own page leaves out the walk
  families; the full page a KVM host serves is scraped beside it from
  bench/serve_bench.c, the agent's serving path linked from user/ with
  every probe said attached, over the same pinned maps;
- CPU seconds (utime + stime of /proc/PID/stat) per 1,000 scrapes with
  Accept-Encoding: gzip, as Prometheus scrapes;
- where the agent's RSS goes (/proc/PID/smaps, by mapping).

Scrapes use http.client with Accept-Encoding: gzip, like Prometheus, on
one connection for as long as the server keeps it open.  Needs root (BPF), bpftool, curl;
installs prometheus-node-exporter with apt-get if it is missing.

  make bench-daemon     (BENCH_SCRAPES_CPU=1000 BENCH_CURL=31 by default)
Writes build/bench/daemon.md and prints it.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
AGENT = os.path.join(REPO, "build", "kvm-unsync-exporter")
RENDER = os.path.join(REPO, "build", "bench", "render_bench")
SERVE = os.path.join(REPO, "build", "bench", "serve_bench")
OUT = os.path.join(REPO, "build", "bench", "daemon.md")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
BPFFS = "/sys/fs/bpf"
VMS = 1000
SCRAPES_RSS = int(os.environ.get("BENCH_SCRAPES_RSS", "100"))
SCRAPES_CPU = int(os.environ.get("BENCH_SCRAPES_CPU", "1000"))
CURL_RUNS = int(os.environ.get("BENCH_CURL", "31"))
RENDER_ROUNDS = int(os.environ.get("BENCH_RENDER_ROUNDS", "101"))
GOAL_RSS_RATIO = 1 / 3
GOAL_RENDER_MS = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def rollup_kib(pid):
    """{Pss, Private}: the process's share of the pages it maps (shared
    ones divided among their mappers) and the pages only it maps."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out[parts[0].rstrip(":")] = int(parts[1])
    return {"Pss": out["Pss"],
            "Private": out["Private_Clean"] + out["Private_Dirty"]}


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def smaps_by_mapping(pid):
    """{what: RSS kB} of one process, by mapping: heap, each library,
    anonymous (thread stacks, arenas, the ring buffer), ..."""
    out = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                path = parts[5] if len(parts) > 5 else "[anon]"
                name = os.path.basename(path) if path.startswith("/") \
                    else path
            elif parts[0] == "Rss:":
                out[name] = out.get(name, 0) + int(parts[1])
    return out


class Daemon:
    def __init__(self, name, argv, port, pin_dir=None):
        self.name, self.port, self.pin_dir = name, port, pin_dir
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        self.conn = None
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError("%s exited: %s" % (name, self.err.read()))
            try:
                self.scrape()
                break
            except OSError:
                self.conn = None
                time.sleep(0.2)
        else:
            raise RuntimeError("%s did not serve within 30 s" % name)
        time.sleep(1)

    def page(self, gzip=True):
        """One GET /metrics on the kept-alive connection: the body as
        sent.  A connection the server closed while idle (its idle
        timeout) is opened anew, as a scraper would."""
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request("GET", "/metrics", headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if fresh or attempt:
                    raise
        if r.status != 200:
            raise RuntimeError("%s: HTTP %d" % (self.name, r.status))
        if (r.getheader("Connection") or "").lower() == "close":
            self.conn.close()
            self.conn = None
        return body

    def scrape(self, gzip=True):
        """One scrape; the size of the body as sent."""
        return len(self.page(gzip))

    def scrapes(self, n):
        for _ in range(n):
            self.scrape()

    def rss(self):
        return rss_kib(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        if self.conn:
            self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.pin_dir:
            shutil.rmtree(self.pin_dir, ignore_errors=True)


def start_agent(pin_dir):
    port = free_port()
    return Daemon("agent", [AGENT, "--web.listen-address=127.0.0.1:%d" % port,
                            "--pin-dir=" + pin_dir], port, pin_dir)


def start_full_page(pin_dir):
    port = free_port()
    return Daemon("full page", [SERVE, pin_dir, str(port)], port)


def start_node_exporter():
    port = free_port()
    return Daemon("node_exporter",
                  [NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port],
                  port)


def value_size(pinned):
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", pinned],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["bytes_value"]


def fill_vm_stats(pin_dir, pids):
    """One vm_stats entry per pid: every counter of guest level l1 (the
    first half of struct vm_guests) nonzero, so the page carries as many
    digits as a busy host's without nested guests."""
    pinned = os.path.join(pin_dir, "vm_stats")
    size = value_size(pinned) // 2
    with tempfile.NamedTemporaryFile("w", suffix=".batch",
                                     delete=False) as f:
        for i, pid in enumerate(pids):
            key = " ".join("%d" % b for b in pid.to_bytes(4, "little"))
            words = b"".join(((i + 1) * 1000003 + w).to_bytes(8, "little")
                             for w in range(size // 8)) + bytes(size)
            val = " ".join("%d" % b for b in words)
            f.write("map update pinned %s key %s value %s\n" %
                    (pinned, key, val))
        batch = f.name
    try:
        subprocess.run(["bpftool", "batch", "file", batch], check=True,
                       capture_output=True, timeout=300)
    finally:
        os.unlink(batch)


def curl_times(port, compressed):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
            "http://127.0.0.1:%d/metrics" % port]
    if compressed:
        args.insert(1, "--compressed")
    r = subprocess.run(args, capture_output=True, text=True, check=True,
                       timeout=60)
    return float(r.stdout) * 1000


def curl_medians(daemons, compressed):
    times = {d.name: [] for d in daemons}
    for _ in range(CURL_RUNS):
        for d in daemons:
            times[d.name].append(curl_times(d.port, compressed))
    return {k: statistics.median(v) for k, v in times.items()}


def render_bench():
    r = subprocess.run([RENDER, str(VMS), str(RENDER_ROUNDS)],
                       capture_output=True, text=True, check=True,
                       timeout=600)
    return {k: float(v) for k, v in
            (line.split() for line in r.stdout.splitlines())}


def cpu_per_1000(d):
    before = d.cpu()
    d.scrapes(SCRAPES_CPU)
    return (d.cpu() - before) * 1000 / SCRAPES_CPU


def ensure_node_exporter():
    if os.path.exists(NODE_EXPORTER):
        return
    print("installing prometheus-node-exporter", flush=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                    "prometheus-node-exporter"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def mib(kib):
    return "%.1f MiB" % (kib / 1024)


def main():
    if os.geteuid() != 0:
        sys.exit("bench-daemon: needs root (BPF)")
    for path in (AGENT, RENDER, SERVE):
        if not os.path.exists(path):
            sys.exit("bench-daemon: %s not built (make bench-daemon)" % path)
    ensure_node_exporter()
    if not os.path.ismount(BPFFS):
        subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)
    pin_dir = "%s/kue-bench-%d" % (BPFFS, os.getpid())
    rss, cpu, sizes, rollup = {}, {}, {}, {}
    sleepers = []
    daemons = []
    try:
        # 0 VMs
        agent, node = start_agent(pin_dir), start_node_exporter()
        daemons = [agent, node]
        for d in daemons:
            rss[d.name, 0, "start"] = d.rss()
        for d in daemons:
            d.scrapes(SCRAPES_RSS)
            rss[d.name, 0, "scrapes"] = d.rss()
        for d in daemons:
            d.stop()
        daemons = []

        # 1,000 VMs: live processes the agent can name from /proc
        sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(VMS)]
        agent, node = start_agent(pin_dir), start_node_exporter()
        daemons = [agent, node]
        fill_vm_stats(pin_dir, [p.pid for p in sleepers])
        agent.scrape()  # the first scrape that sees them
        for d in daemons:
            rss[d.name, VMS, "start"] = d.rss()
        for d in daemons:
            d.scrapes(SCRAPES_RSS)
            rss[d.name, VMS, "scrapes"] = d.rss()
            rollup[d.name] = rollup_kib(d.proc.pid)
        full = start_full_page(pin_dir)
        daemons.append(full)
        for d in daemons:
            sizes[d.name, "gzip"] = d.scrape(gzip=True)
            sizes[d.name, "plain"] = d.scrape(gzip=False)
        curl_gz = curl_medians(daemons, True)
        curl_plain = curl_medians(daemons, False)
        for d in daemons:
            cpu[d.name] = cpu_per_1000(d)
        smaps = smaps_by_mapping(agent.proc.pid)
        threads = len(os.listdir("/proc/%d/task" % agent.proc.pid))
        with open("/proc/%d/status" % agent.proc.pid) as f:
            status = {k: v.strip() for k, _, v in
                      (line.partition(":") for line in f)}
        vms_seen = vms_in(agent)
        full_seen = vms_in(full)
        full_walk = b"kvm_unsync_walk_frames_total{" in full.page(gzip=False)
    finally:
        for d in daemons:
            d.stop()
        for p in sleepers:
            p.kill()
        for p in sleepers:
            p.wait()
        shutil.rmtree(pin_dir, ignore_errors=True)
    if vms_seen != VMS or full_seen != VMS:
        sys.exit("bench-daemon: the agent saw %s VMs, the full page %s, "
                 "not %d" % (vms_seen, full_seen, VMS))
    if not full_walk:
        sys.exit("bench-daemon: the full page has no per-VM walk families")
    rend = render_bench()

    ratio = rss["agent", VMS, "scrapes"] / rss["node_exporter", VMS, "scrapes"]
    scrape_ratio = curl_gz["agent"] / curl_gz["node_exporter"]
    full_ratio = curl_gz["full page"] / curl_gz["node_exporter"]
    goals = [
        ("agent RSS <= 1/3 of node_exporter's, 1,000 VMs, after %d scrapes"
         % SCRAPES_RSS, ratio <= GOAL_RSS_RATIO, "%.2f" % ratio),
        ("render of 1,000 VMs in-process <= %g ms (median)" % GOAL_RENDER_MS,
         rend["render_ms_median"] <= GOAL_RENDER_MS,
         "%.2f ms" % rend["render_ms_median"]),
        ("whole scrape (curl, gzip) of 1,000 VMs not slower than "
         "node_exporter's, this machine's page", scrape_ratio <= 1.0,
         "%.2f x" % scrape_ratio),
        ("whole scrape (curl, gzip) of 1,000 VMs not slower than "
         "node_exporter's, a KVM host's full page", full_ratio <= 1.0,
         "%.2f x" % full_ratio),
    ]
    lines = [
        "# The daemon beside node_exporter",
        "",
        "One run of `make bench-daemon` (bench/daemon.py) on this machine "
        "(%d CPUs, %s), node_exporter %s with its default collectors. "
        "1,000 VMs are 1,000 live `sleep` processes keyed in the agent's "
        "pinned vm_stats map. The walk hooks cannot attach here, so "
        "*this machine's page* (the agent's own) leaves out the walk "
        "families; *a KVM host's full page* is the same serving path "
        "(bench/serve_bench.c, linked from user/) with every probe said "
        "attached, over the same pinned maps. RSS rows are the agent's "
        "own process." % (os.cpu_count(), os.uname().release,
                          node_version()),
        "",
        "| | agent | node_exporter | agent / node_exporter |",
        "| --- | --- | --- | --- |",
    ]
    for vms in (0, VMS):
        for when, label in (("start", "after start"),
                            ("scrapes", "after %d scrapes" % SCRAPES_RSS)):
            a, n = rss["agent", vms, when], rss["node_exporter", vms, when]
            lines.append("| RSS, %d VMs, %s | %s | %s | %.2f |" %
                         (vms, label, mib(a), mib(n), a / n))
    for key, label in (("Pss", "PSS (shared pages divided among their "
                        "mappers)"),
                       ("Private", "private (pages no other process "
                        "maps)")):
        a, n = rollup["agent"][key], rollup["node_exporter"][key]
        lines.append("| %s, 1000 VMs, after %d scrapes | %s | %s | %.2f |" %
                     (label, SCRAPES_RSS, mib(a), mib(n), a / n))
    node = "node_exporter"
    for who, page in (("agent", "this machine's page"),
                      ("full page", "a KVM host's full page")):
        lines += [
            "| whole scrape (curl, `--compressed`), 1,000 VMs, %s, "
            "median of %d | %.1f ms | %.1f ms | %.2f |" %
            (page, CURL_RUNS, curl_gz[who], curl_gz[node],
             curl_gz[who] / curl_gz[node]),
            "| whole scrape (curl, plain), 1,000 VMs, %s, median of %d "
            "| %.1f ms | %.1f ms | %.2f |" %
            (page, CURL_RUNS, curl_plain[who], curl_plain[node],
             curl_plain[who] / curl_plain[node]),
            "| page, 1,000 VMs, %s: gzip / plain | %d / %d B | %d / %d B "
            "| |" % (page, sizes[who, "gzip"], sizes[who, "plain"],
                     sizes[node, "gzip"], sizes[node, "plain"]),
            "| CPU per 1,000 scrapes (gzip), 1,000 VMs, %s | %.2f s "
            "| %.2f s | %.2f |" % (page, cpu[who], cpu[node],
                                   cpu[who] / cpu[node]),
        ]
    lines += [
        "",
        "In-process, 1,000 VMs (bench/render_bench.c, median of %d, "
        "minimum in brackets): render %.2f ms (%.2f), gzip of the "
        "%d-byte page %.2f ms (%.2f) to %d bytes." %
        (int(rend["rounds"]), rend["render_ms_median"],
         rend["render_ms_min"], int(rend["bytes_plain"]),
         rend["gzip_ms_median"], rend["gzip_ms_min"],
         int(rend["bytes_gzip"])),
        "",
        "## Goals",
        "",
    ]
    for what, ok, fig in goals:
        lines.append("- %s: %s (%s)" % (what, "met" if ok else "**missed**",
                                        fig))
    lines += [
        "",
        "## Where the agent's RSS goes (1,000 VMs, end of run)",
        "",
        "%d threads; VmRSS %s = RssAnon %s + RssFile %s. By mapping "
        "(kB, largest first):" % (threads, status.get("VmRSS"),
                                  status.get("RssAnon"),
                                  status.get("RssFile")),
        "",
        "| mapping | RSS kB |",
        "| --- | --- |",
    ]
    for name, kb in sorted(smaps.items(), key=lambda kv: -kv[1])[:12]:
        if kb:
            lines.append("| %s | %d |" % (name, kb))
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(text)


def vms_in(d):
    for line in d.page(gzip=False).decode().splitlines():
        if line.startswith("kvm_unsync_vms "):
            return int(line.split()[1])
    return None


def node_version():
    r = subprocess.run([NODE_EXPORTER, "--version"], capture_output=True,
                       text=True)
    out = (r.stdout + r.stderr).split()
    return out[2] if len(out) > 2 else "?"


if __name__ == "__main__":
    main()
