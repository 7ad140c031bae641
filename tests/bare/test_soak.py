#!/usr/bin/env python3
"""Soak the agent on the bare machine: thousands of scrapes, concurrent
and slow clients; then no leak, RSS flat, every scrape answered.

No VM runs here (the lab soak, tests/vm/test_soak_lab.py, has VMs and the
model); this is the HTTP side and the map reads under load, on the host's
own kernel, and the one place valgrind can watch the agent:

  BareSoak          the agent as built: two phases under the same load
                    (4 scraper threads, 2 slow clients sending each request
                    in two halves, 1 client that connects and sends
                    nothing); RSS after the second phase within 10% of the
                    first.  No timed bound: a fixed number of scrapes.
  BareSoakSan       build/san/kvm-unsync-exporter (make OUTPUT=build/san
                    SAN=1): no AddressSanitizer, UBSan or LeakSanitizer
                    report on stderr after SIGTERM.
  BareSoakValgrind  the agent under valgrind memcheck: no leak, no error
                    (tests/bare/valgrind-bpf.supp: the bpf() syscall's
                    partly-set attribute union, which libbpf sets right).

Agent: KUE_AGENT, else build/kvm-unsync-exporter.
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import BPFFS, free_port  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402

AGENT = os.environ.get("KUE_AGENT") or os.path.join(REPO, "build",
                                                    "kvm-unsync-exporter")
SAN_AGENT = os.path.join(REPO, "build", "san", "kvm-unsync-exporter")
SUPP = os.path.join(HERE, "valgrind-bpf.supp")
SCRAPERS = 4
SLOW = 2
RSS_GROWTH = 0.10
SAN_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
               "UndefinedBehaviorSanitizer")


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


class Load:
    """One phase: SCRAPERS threads of `scrapes` scrapes each, SLOW slow
    clients and one idle connection until the scrapers are done."""

    def __init__(self, port, scrapes):
        self.port, self.scrapes = port, scrapes
        self.ok = self.fail = self.slow_ok = self.slow_fail = 0
        self.errors = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def note(self, good, slow=False, why=None):
        with self.lock:
            if slow:
                self.slow_ok += good
                self.slow_fail += not good
            else:
                self.ok += good
                self.fail += not good
            if why and len(self.errors) < 5:
                self.errors.append(why)

    def scraper(self):
        for _ in range(self.scrapes):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=60)
                c.request("GET", "/metrics")
                r = c.getresponse()
                body = r.read().decode()
                c.close()
                good = r.status == 200 and "\nkvm_unsync_vms " in body
                self.note(good, why=None if good else "status %d" % r.status)
            except OSError as e:
                self.note(False, why=repr(e))

    def slow(self):
        # At least one request, however soon the scrapers end.
        first = True
        while first or not self.done.is_set():
            first = False
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=60) as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n")
                    time.sleep(0.5)
                    s.sendall(b"Connection: close\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                good = data.startswith(b"HTTP/1.1 200 ") and \
                    b"\nkvm_unsync_vms " in data
                self.note(good, slow=True,
                          why=None if good else repr(data[:60]))
            except OSError as e:
                self.note(False, slow=True, why=repr(e))

    def run(self):
        idle = socket.create_connection(("127.0.0.1", self.port))
        threads = [threading.Thread(target=self.slow) for _ in range(SLOW)]
        scrapers = [threading.Thread(target=self.scraper)
                    for _ in range(SCRAPERS)]
        for t in threads + scrapers:
            t.start()
        for t in scrapers:
            t.join()
        self.done.set()
        for t in threads:
            t.join()
        idle.close()
        return self


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
class BareSoak(unittest.TestCase):
    agent = AGENT
    prefix = []
    env = {}
    warmup = 200
    scrapes = 1000      # per scraper thread and phase
    phases = 2
    check_rss = True
    start_timeout = 60

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(cls.agent):
            raise unittest.SkipTest("%s not built" % cls.agent)
        if cls.prefix and not shutil.which(cls.prefix[0]):
            raise unittest.SkipTest("%s not installed" % cls.prefix[0])
        cls.port = free_port()
        pin = "%s/kue-soak-%d-%d" % (BPFFS, os.getpid(), cls.port)
        env = dict(os.environ)
        env.update(cls.env)
        cls.proc = subprocess.Popen(
            cls.prefix + [cls.agent, "--pin-dir=" + pin,
                          "--web.listen-address=127.0.0.1:%d" % cls.port],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env)
        try:
            cls.soak()
        finally:
            if cls.proc.poll() is None:
                cls.proc.send_signal(signal.SIGTERM)
            try:
                _, cls.stderr = cls.proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                _, cls.stderr = cls.proc.communicate()
            cls.rc = cls.proc.returncode

    @classmethod
    def soak(cls):
        deadline = time.monotonic() + cls.start_timeout
        while True:
            if cls.proc.poll() is not None:
                raise AssertionError("agent exited %d: %s" % (
                    cls.proc.returncode, cls.proc.stderr.read()))
            try:
                socket.create_connection(("127.0.0.1", cls.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("agent did not listen within %d s"
                                         % cls.start_timeout)
                time.sleep(0.2)
        warm = Load(cls.port, cls.warmup // SCRAPERS).run()
        cls.loads = [warm]
        cls.rss = [rss_kb(cls.proc.pid)]
        for _ in range(cls.phases):
            cls.loads.append(Load(cls.port, cls.scrapes).run())
            cls.rss.append(rss_kb(cls.proc.pid))
        cls.hwm = rss_kb(cls.proc.pid, "VmHWM")
        c = http.client.HTTPConnection("127.0.0.1", cls.port, timeout=60)
        c.request("GET", "/metrics")
        cls.final = parse_metrics(c.getresponse().read().decode())
        c.close()

    def test_every_scrape_answered(self):
        total = 0
        for i, ld in enumerate(self.loads):
            with self.subTest(phase=i):
                self.assertEqual((ld.fail, ld.slow_fail), (0, 0), ld.errors)
                self.assertGreater(ld.slow_ok, 0)
                total += ld.ok + ld.slow_ok
        self.assertEqual(sum(ld.ok for ld in self.loads[1:]),
                         self.phases * SCRAPERS * self.scrapes)
        print("\nbare soak (%s): %d scrapes, %d of them slow" % (
            os.path.basename(self.prefix[0]) if self.prefix else
            os.path.relpath(self.agent, REPO), total,
            sum(ld.slow_ok for ld in self.loads)))

    def test_no_scrape_error(self):
        self.assertEqual(select(self.final, "kvm_unsync_scrape_errors_total"),
                         [0])
        self.assertEqual(select(self.final, "kvm_unsync_vms"), [0])

    def test_rss_flat(self):
        print("\nbare soak: VmRSS %s kB (warm-up, then each phase), peak %d kB"
              % (" -> ".join(map(str, self.rss)), self.hwm))
        if not self.check_rss:
            self.skipTest("RSS under this tool is not the agent's own")
        self.assertLess(self.rss[-1], self.rss[1] * (1 + RSS_GROWTH),
                        self.rss)

    def test_clean_exit(self):
        self.assertEqual(self.rc, 0, self.stderr)

    def test_no_sanitizer_report(self):
        bad = [ln for ln in self.stderr.splitlines()
               if any(m in ln for m in SAN_MARKERS)]
        self.assertEqual(bad, [], self.stderr)


@unittest.skipUnless(os.path.exists(SAN_AGENT),
                     "%s not built (make OUTPUT=build/san SAN=1)" % SAN_AGENT)
class BareSoakSan(BareSoak):
    agent = SAN_AGENT
    env = {"ASAN_OPTIONS": "detect_leaks=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    check_rss = False


class BareSoakValgrind(BareSoak):
    prefix = ["valgrind", "--leak-check=full",
              "--show-leak-kinds=definite,indirect,possible",
              "--errors-for-leak-kinds=definite,indirect,possible",
              "--suppressions=" + SUPP, "--error-exitcode=99"]
    warmup = 40
    scrapes = 100
    check_rss = False
    start_timeout = 180

    def test_clean_exit(self):
        self.assertEqual(self.rc, 0, self.stderr[-3000:])

    def test_valgrind_no_leak_no_error(self):
        m = re.search(r"ERROR SUMMARY: (\d+) errors", self.stderr)
        self.assertIsNotNone(m, self.stderr[-2000:])
        self.assertEqual(m.group(1), "0", self.stderr[-3000:])
        self.assertNotRegex(self.stderr, r"definitely lost: [1-9]")
        self.assertNotRegex(self.stderr, r"indirectly lost: [1-9]")
        print("\nbare soak (valgrind): " + " / ".join(
            ln.split("== ", 1)[-1].strip() for ln in self.stderr.splitlines()
            if "in use at exit" in ln or "ERROR SUMMARY" in ln))


if __name__ == "__main__":
    unittest.main()
