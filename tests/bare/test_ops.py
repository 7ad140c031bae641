#!/usr/bin/env python3
"""Running the agent as a production service, on the machine the tests run on.

What is proved here, without a walk (counting is the lab's, tests/vm/):
- capabilities: after start-up every thread of the agent holds none
  (/proc/PID/task/TID/status), the HTTP thread included, with
  no_new_privs set and an empty bounding set; --capabilities.keep keeps
  exactly what it names on the main thread and nothing on the HTTP
  thread; a capability the agent does not hold cannot be kept; the
  deploy/ unit's CapabilityBoundingSet is enough to start;
- systemd: socket activation (systemd-socket-activate, and LISTEN_FDS set
  by hand), READY=1 once serving and STOPPING=1 on exit on a
  NOTIFY_SOCKET the test owns, `systemd-analyze verify` of deploy/;
- SIGTERM detaches and unpins within a second;
- one-line errors and exit code 2 for every bad value of the new flags.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import (AGENT, BPFFS, ensure_bpffs, free_port, log_file,  # noqa: E402
                      run)
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402

DEPLOY = os.path.join(REPO, "deploy")
UNIT = os.path.join(DEPLOY, "kvm-unsync-exporter.service")
SOCKET_UNIT = os.path.join(DEPLOY, "kvm-unsync-exporter.socket")
CAP_NET_RAW = 13
CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def status(path):
    """A /proc status file as {field: value}."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def threads(pid):
    """{tid: (comm, status dict)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s" % (pid, tid)
        with open(base + "/comm") as f:
            comm = f.read().strip()
        out[int(tid)] = (comm, status(base + "/status"))
    return out


def caps(st):
    return {k: int(st[k], 16) for k in CAP_FIELDS}


class Agent:
    """The daemon in the background, serving on a port of ours.

    prefix: a wrapper command (setpriv ..., systemd-socket-activate ...);
    port: where it ends up serving (None: pass --web.listen-address)."""

    def __init__(self, *extra, prefix=(), env=None, port=None, wait=True,
                 pass_fds=()):
        self.port = port or free_port()
        self.pin_dir = "%s/kue-ops-%d-%d" % (BPFFS, os.getpid(), self.port)
        args = ["--pin-dir=" + self.pin_dir] + list(extra)
        if port is None:
            args.insert(0, "--web.listen-address=127.0.0.1:%d" % self.port)
        self.proc = subprocess.Popen(list(prefix) + [AGENT] + args,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env, pass_fds=pass_fds)
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %d: %s" %
                                     (self.proc.returncode,
                                      self.proc.stderr.read()))
            try:
                return self.get("/metrics")
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("agent did not serve within %d s" % timeout)

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError("agent ignored signal %d" % sig)
        return self.proc.returncode, out, err


def unit_capabilities():
    """The capability names of the unit's CapabilityBoundingSet=."""
    with open(UNIT) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return line.split("=", 1)[1].split()
    raise AssertionError("no CapabilityBoundingSet= in " + UNIT)


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to load BPF programs")
        if not os.path.exists(AGENT):
            raise unittest.SkipTest("%s not built (make all)" % AGENT)
        ensure_bpffs()

    def start(self, *extra, **kw):
        a = Agent(*extra, **kw)
        self.addCleanup(lambda: a.proc.poll() is None and a.stop())
        return a


class Capabilities(Base):
    def test_every_thread_drops_everything(self):
        a = self.start()
        a.get("/metrics")
        t = threads(a.proc.pid)
        comms = sorted(c for c, _ in t.values())
        # the main thread, libmicrohttpd's, and ours that created it,
        # the connection guard's watchdog and the two password checkers
        # (started with the server: a reload may add basic auth)
        self.assertEqual(len(t), 6, comms)
        self.assertTrue(any(c.startswith("MHD") for c in comms), comms)
        self.assertIn("kue-capless", comms)
        self.assertIn("kue-http-guard", comms)
        self.assertEqual(comms.count("kue-http-auth"), 2, comms)
        for tid, (comm, st) in t.items():
            with self.subTest(thread=comm):
                self.assertEqual(caps(st), dict.fromkeys(CAP_FIELDS, 0))
                self.assertEqual(st["NoNewPrivs"], "1")
        # the process view (thread group leader) says the same
        st = status("/proc/%d/status" % a.proc.pid)
        self.assertEqual(caps(st), dict.fromkeys(CAP_FIELDS, 0))
        # and scrapes still read the maps without any capability
        s = parse_metrics(a.get("/metrics"))
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])
        self.assertEqual(select(s, "kvm_unsync_vms"), [0])
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(a.pin_dir))

    def test_keep_stays_on_main_thread_only(self):
        a = self.start("--capabilities.keep=CAP_NET_RAW")
        for tid, (comm, st) in threads(a.proc.pid).items():
            with self.subTest(thread=comm):
                want = 1 << CAP_NET_RAW if tid == a.proc.pid else 0
                c = caps(st)
                self.assertEqual((c["CapPrm"], c["CapEff"], c["CapBnd"]),
                                 (want, want, want))
                self.assertEqual((c["CapInh"], c["CapAmb"]), (0, 0))
                self.assertEqual(st["NoNewPrivs"], "1")
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)

    @unittest.skipUnless(shutil.which("openssl"), "openssl missing")
    def test_reload_starts_a_capless_tls_thread(self):
        # A SIGHUP that changes the TLS settings starts a new
        # libmicrohttpd daemon (and thread): it has no capability either,
        # even though the main thread keeps one.
        tmp = tempfile.mkdtemp(prefix="kue-tls-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        for n in ("a", "b"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", n + ".key", "-out", n + ".crt",
                            "-days", "2", "-subj", "/CN=127.0.0.1"],
                           cwd=tmp, check=True, capture_output=True,
                           timeout=60)
        cfg = os.path.join(tmp, "web.yml")

        def tls(n):
            with open(cfg, "w") as f:
                f.write("tls_server_config:\n  cert_file: %s.crt\n"
                        "  key_file: %s.key\n" % (n, n))
        tls("a")
        err = log_file()
        port = free_port()
        pin = "%s/kue-ops-tls-%d" % (BPFFS, port)
        proc = subprocess.Popen(
            [AGENT, "--web.listen-address=127.0.0.1:%d" % port,
             "--pin-dir=" + pin, "--web.config.file=" + cfg,
             "--capabilities.keep=CAP_NET_RAW"],
            stdout=subprocess.DEVNULL, stderr=err)

        def log():
            err.seek(0)
            return err.read()

        def wait_for(pred, what):
            deadline = time.time() + 30
            while time.time() < deadline:
                self.assertIsNone(proc.poll(), log())
                if pred():
                    return
                time.sleep(0.05)
            proc.kill()
            self.fail("no %s: %s" % (what, log()))
        try:
            wait_for(lambda: " (port " in log(), "serving line")
            tls("b")
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded (TLS" in log(), "reload line")
            t = threads(proc.pid)
            self.assertGreaterEqual(len(t), 3, t)
            for tid, (comm, st) in t.items():
                with self.subTest(thread=comm):
                    want = 1 << CAP_NET_RAW if tid == proc.pid else 0
                    c = caps(st)
                    self.assertEqual((c["CapPrm"], c["CapEff"], c["CapBnd"]),
                                     (want, want, want))
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
        self.assertEqual(rc, 0, log())

    def test_privileged_port_bound_before_the_drop(self):
        # The HTTP thread could not bind it (no CAP_NET_BIND_SERVICE): the
        # main thread binds it and hands the socket over.
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            start = int(f.read())
        port = None
        for p in range(min(start, 1024) - 1, 0, -1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                    port = p
                    break
                except OSError:
                    continue
        if port is None:
            self.skipTest("no free port below %d" % start)
        a = self.start("--web.listen-address=127.0.0.1:%d" % port, port=port)
        for tid, (comm, st) in threads(a.proc.pid).items():
            with self.subTest(thread=comm):
                self.assertEqual(caps(st), dict.fromkeys(CAP_FIELDS, 0))
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("serving /metrics on 127.0.0.1:%d (port %d)" %
                      (port, port), err)

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) missing")
    def test_cannot_keep_what_it_does_not_hold(self):
        r = subprocess.run(["setpriv", "--bounding-set=-net_raw", AGENT,
                            "--capabilities.keep=CAP_NET_RAW",
                            "--web.listen-address=127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("cannot keep CAP_NET_RAW", lines[0])

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) missing")
    def test_unit_bounding_set_is_enough(self):
        # What systemd would leave it (CapabilityBoundingSet=, plus
        # NoNewPrivileges=yes): it starts, serves, and drops all of it.
        names = [c.lower().replace("cap_", "") for c in unit_capabilities()]
        a = self.start(prefix=["setpriv", "--no-new-privs",
                               "--bounding-set=-all," +
                               ",".join("+" + n for n in names)])
        for tid, (comm, st) in threads(a.proc.pid).items():
            with self.subTest(thread=comm):
                self.assertEqual(caps(st), dict.fromkeys(CAP_FIELDS, 0))
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)
        self.assertFalse(os.path.exists(a.pin_dir))

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) missing")
    def test_refuses_without_setpcap(self):
        # Without CAP_SETPCAP the bounding set cannot be cleared: the agent
        # says so and exits rather than serve with capabilities it could
        # hand back through execve.
        port = free_port()
        pin = "%s/kue-ops-nosetpcap-%d" % (BPFFS, os.getpid())
        r = subprocess.run(["setpriv", "--bounding-set=-setpcap", AGENT,
                            "--web.listen-address=127.0.0.1:%d" % port,
                            "--pin-dir=" + pin],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        self.assertIn("CAP_SETPCAP", last)
        self.assertFalse(os.path.exists(pin))


class Service(Base):
    @unittest.skipUnless(shutil.which("systemd-socket-activate"),
                         "systemd-socket-activate missing (Debian package systemd)")
    def test_socket_activation_systemd_socket_activate(self):
        port = free_port()
        a = self.start(prefix=["systemd-socket-activate", "-l",
                               "127.0.0.1:%d" % port],
                       port=port)
        s = parse_metrics(a.get("/metrics"))
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("serving /metrics on the socket systemd passed (port %d)"
                      % port, err)

    def activate_by_hand(self, sock, *extra, nfds=1):
        """The agent with sock as fd 3 and LISTEN_FDS/LISTEN_PID set, as
        systemd does it (the shell's pid is the agent's after exec)."""
        env = dict(os.environ, FD=str(sock.fileno()), N=str(nfds))
        wrapper = ['bash', '-c',
                   '[ "$FD" = 3 ] || eval "exec 3<&$FD $FD<&-"; '
                   '[ "$N" = 1 ] || exec 4<&3; '
                   'LISTEN_PID=$$ LISTEN_FDS=$N exec "$0" "$@"']
        port = sock.getsockname()[1] if sock.type == socket.SOCK_STREAM \
            else free_port()
        return Agent(*extra, prefix=wrapper, env=env, port=port, wait=False,
                     pass_fds=(sock.fileno(),))

    def test_socket_activation_by_hand(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            a = self.activate_by_hand(s)
            self.addCleanup(lambda: a.proc.poll() is None and a.stop())
        # our copy is closed: only the agent holds the socket now
        s = parse_metrics(a.wait_serving())
        self.assertEqual(select(s, "kvm_unsync_scrape_errors_total"), [0])
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)

    def test_socket_activation_errors(self):
        # a datagram socket, two sockets, and a listen address on top: a
        # unit set up wrong, exit 2, which the service does not restart
        cases = [
            (socket.SOCK_DGRAM, 1, (), 2, "not a listening TCP socket"),
            (socket.SOCK_STREAM, 2, (), 2, "2 sockets passed"),
            (socket.SOCK_STREAM, 1,
             ("--web.listen-address=127.0.0.1:%d" % free_port(),), 2,
             "cannot be used with socket activation"),
        ]
        for kind, n, extra, code, needle in cases:
            with self.subTest(needle=needle):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", 0))
                    if kind == socket.SOCK_STREAM:
                        s.listen(4)
                    a = self.activate_by_hand(s, *extra, nfds=n)
                    try:
                        _, err = a.proc.communicate(timeout=30)
                    except subprocess.TimeoutExpired:
                        a.stop()
                        self.fail("agent did not refuse")
                    if kind == socket.SOCK_STREAM:
                        # shut down, for systemd too: its socket unit fails
                        # rather than start the agent on the next scrape
                        with self.assertRaises(ConnectionRefusedError):
                            socket.create_connection(s.getsockname(), 5)
                self.assertEqual(a.proc.returncode, code, err)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn(needle, lines[0])
                self.assertFalse(os.path.exists(a.pin_dir))

    def test_notify_ready_then_stopping(self):
        tmp = tempfile.mkdtemp(prefix="kue-notify-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "notify")
        n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(n.close)
        n.bind(path)
        n.settimeout(30)
        a = self.start(env=dict(os.environ, NOTIFY_SOCKET=path), wait=False)
        msg = n.recv(4096).decode()
        self.assertIn("READY=1", msg.splitlines())
        self.assertTrue(any(l.startswith("STATUS=serving")
                            for l in msg.splitlines()), msg)
        # READY=1 comes once serving: the first request must succeed
        s = parse_metrics(a.get("/metrics"))
        self.assertTrue(select(s, "kvm_unsync_build_info"))
        # the main thread sends it after its own drop: still allowed
        a.proc.send_signal(signal.SIGTERM)
        msg = n.recv(4096).decode()
        self.assertIn("STOPPING=1", msg.splitlines())
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)

    @unittest.skipUnless(shutil.which("systemd-analyze"),
                         "systemd-analyze missing (Debian package systemd)")
    def test_units_verify(self):
        tmp = tempfile.mkdtemp(prefix="kue-units-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        # verify wants ExecStart= to exist: point it at the build
        with open(UNIT) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/sbin/kvm-unsync-exporter $ARGS\n",
                      text)
        with open(os.path.join(tmp, os.path.basename(UNIT)), "w") as f:
            f.write(text.replace("/usr/local/sbin/kvm-unsync-exporter", AGENT))
        shutil.copy(SOCKET_UNIT, tmp)
        # and it runs man for each Documentation=man:...: the page as make
        # install puts it, under a MANPATH of its own
        os.makedirs(os.path.join(tmp, "man", "man8"))
        shutil.copy(os.path.join(REPO, "docs", "kvm-unsync-exporter.8"),
                    os.path.join(tmp, "man", "man8"))
        r = subprocess.run(["systemd-analyze", "verify",
                            os.path.join(tmp, os.path.basename(UNIT)),
                            os.path.join(tmp, os.path.basename(SOCKET_UNIT))],
                           capture_output=True, text=True, timeout=60,
                           cwd=tmp, env=dict(os.environ,
                                             MANPATH=os.path.join(tmp, "man")))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_unit_hardening(self):
        with open(UNIT) as f:
            d = {}
            for line in f:
                if "=" in line and not line.startswith("#"):
                    k, v = line.rstrip("\n").split("=", 1)
                    d[k] = v
        self.assertEqual(d["Type"], "notify")
        self.assertEqual(d["NoNewPrivileges"], "yes")
        self.assertEqual(d["ProtectSystem"], "strict")
        self.assertEqual(d["ReadWritePaths"], "/sys/fs/bpf")
        self.assertEqual(set(d["RestrictAddressFamilies"].split()),
                         {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"})
        self.assertTrue({"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"} <=
                        set(unit_capabilities()))
        self.assertNotIn("ProtectProc", d)   # would hide the VMs' /proc
        with open(SOCKET_UNIT) as f:
            self.assertIn("ListenStream=10190\n", f.read())


def filter_syscalls(spec):
    """The system calls a SystemCallFilter= value allows (@groups
    expanded by systemd-analyze)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"],
                         capture_output=True, text=True, timeout=60,
                         check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.strip()
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip())

    def expand(name, seen):
        res = set()
        for x in groups.get(name, []):
            if x.startswith("@"):
                if x not in seen:
                    seen.add(x)
                    res |= expand(x, seen)
            else:
                res.add(x)
        return res
    allowed = set()
    for item in spec.split():
        allowed |= expand(item, set()) if item.startswith("@") else {item}
    return allowed


class Sandbox(Base):
    @unittest.skipUnless(shutil.which("strace") and
                         shutil.which("systemd-analyze"),
                         "strace and systemd-analyze (Debian packages) needed")
    def test_syscall_filter_covers_the_agent(self):
        # Every system call of a start, a scrape and a stop is one the
        # unit's SystemCallFilter= allows (a missing one would be EPERM).
        with open(UNIT) as f:
            spec = [l.split("=", 1)[1] for l in f
                    if l.startswith("SystemCallFilter=")]
        self.assertEqual(len(spec), 1)
        allowed = filter_syscalls(spec[0])
        tmp = tempfile.mkdtemp(prefix="kue-strace-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        trace = os.path.join(tmp, "strace.out")
        a = self.start(prefix=["strace", "-f", "-qq", "-o", trace])
        a.get("/metrics")
        # SIGTERM to the agent, strace's child: strace itself would only
        # detach; it exits with the agent's status
        with open("/proc/%d/task/%d/children" % (a.proc.pid, a.proc.pid)) as f:
            child = int(f.read().split()[0])
        os.kill(child, signal.SIGTERM)
        try:
            _, err = a.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(child, signal.SIGKILL)
            a.proc.kill()
            a.proc.communicate()
            self.fail("agent under strace did not stop")
        self.assertEqual(a.proc.returncode, 0, err)
        used = set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)
                if m:
                    used.add(m.group(1))
        self.assertIn("bpf", used)
        self.assertEqual(sorted(used - allowed), [])


class Shutdown(Base):
    def test_sigterm_detaches_and_unpins_within_a_second(self):
        worst = 0
        for _ in range(3):
            a = self.start()
            self.assertTrue(os.path.isdir(a.pin_dir))
            t0 = time.monotonic()
            a.proc.send_signal(signal.SIGTERM)
            a.proc.wait(timeout=10)
            worst = max(worst, time.monotonic() - t0)
            rc, _, err = a.stop()
            self.assertEqual(rc, 0, err)
            self.assertFalse(os.path.exists(a.pin_dir))
        self.assertLess(worst, 1.0)


class BadInput(Base):
    def test_bad_values_of_new_flags(self):
        cases = [
            ("--capabilities.keep=CAP_BOGUS", "--capabilities.keep"),
            ("--capabilities.keep=CAP_NET_RAW,", "--capabilities.keep"),
            ("--capabilities.keep=,", "--capabilities.keep"),
            ("--capabilities.keep=12", "--capabilities.keep"),
            ("--capabilities.keep=NET_RAW", "--capabilities.keep"),
            ("--capabilities.keep=CAP_NET_RAW CAP_BPF", "--capabilities.keep"),
            ("--max-vms=0", "--max-vms"),
            ("--max-vms=-1", "--max-vms"),
            ("--max-vms=abc", "--max-vms"),
            ("--max-vms=", "--max-vms"),
            ("--max-vms=65537", "--max-vms"),
            ("--max-vms=99999999999999999999999", "--max-vms"),
            ("--max-vms=1x", "--max-vms"),
        ]
        for arg, needle in cases:
            with self.subTest(arg=arg):
                r = run([arg])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(needle, r.stderr.splitlines()[0])

    def test_good_values_accepted(self):
        a = self.start("--max-vms=1", "--capabilities.keep=")
        s = parse_metrics(a.get("/metrics"))
        self.assertEqual(select(s, "kvm_unsync_vms_folded_total"), [0])
        rc, _, err = a.stop()
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
