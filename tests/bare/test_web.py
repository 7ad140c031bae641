#!/usr/bin/env python3
"""--web.config.file with real clients: the agent runs on this machine
and curl talks to it over loopback, with certificates made here by the
openssl CLI and bcrypt hashes made by libcrypt.

TLS works; a TLS 1.2 client is refused under min_version TLS13; with
RequireAndVerifyClientCert a client without a certificate (or with one the
CA did not sign) fails the handshake, one with a signed certificate gets
in; basic auth answers 401 with a Basic challenge to a wrong or missing
password.  Bad files stop start-up with one line naming the file; SIGHUP
re-reads the file on the same port and keeps the old settings when the new
ones are bad.  A TLS connection is kept alive: curl and Python's
http.client each scrape several times over one connection and session.
Idle half-open TLS connections do not keep a scrape out, and the server
hangs up on each of them; the plain slowloris clients, which wait out the
server's deadlines, are in test_slow_clients.py.
"""

import base64
import collections
import ctypes
import ctypes.util
import gzip
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, BPFFS, bpffs_mounted, free_port, log_file  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402
CURL_TIMEOUT = 10
# slowloris clients, more than the server's 32 connection slots, and how
# long to wait for the server to hang up on them: its 15 s request
# deadline, with room for a loaded machine
SLOWLORIS = 40
SLOWLORIS_WAIT = 60


def bcrypt(password, cost=4):
    """A $2b$ hash from libxcrypt, as htpasswd -B would make."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$2b$", cost, None, 0)
    return lib.crypt(password.encode(), setting).decode()


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 signed by it, a client
    certificate signed by it, and a self-signed client certificate."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=kue test CA", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]),
                      ("client", [])):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
                "-CAkey", "ca.key", "-CAcreateserial", "-out", name + ".crt",
                "-days", "2", *ext, cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "stranger.key", "-out",
            "stranger.crt", "-days", "2", "-subj", "/CN=stranger", cwd=d)


class Agent:
    """The daemon on a free port with a web config (None: plain HTTP, no
    --web.config.file); stderr to a file."""

    def __init__(self, config, ready=None):
        self.port = free_port()
        self.pin_dir = "%s/kue-web-%d-%d" % (BPFFS, os.getpid(), self.port)
        self.config = config
        self.err = log_file()
        self.proc = subprocess.Popen(
            [AGENT, "--web.listen-address=127.0.0.1:%d" % self.port,
             "--pin-dir=" + self.pin_dir] +
            (["--web.config.file=" + config] if config else []),
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %d: %s" %
                                     (self.proc.returncode, self.stderr()))
            if " (port " in self.stderr():  # the ready line, not a warning
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("agent did not serve within 30 s")

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def url(self, path="/metrics", scheme="https"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def hup(self):
        """SIGHUP, then wait for the reload's log line."""
        before = self.stderr().count("web config ")
        self.proc.send_signal(signal.SIGHUP)
        # a bound for a hang, not a speed
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.stderr().count("web config ") > before:
                # its line, not a warning a scrape printed meanwhile
                return [ln for ln in self.stderr().splitlines()
                        if "web config " in ln][-1]
            time.sleep(0.05)
        raise AssertionError("no reload line after SIGHUP: " + self.stderr())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("agent ignored SIGTERM")
        shutil.rmtree(self.pin_dir, ignore_errors=True)
        return self.proc.returncode


def curl(*args):
    """(exit code, HTTP status or 0, response headers, body)"""
    r = subprocess.run(["curl", "-sS", "--max-time", str(CURL_TIMEOUT),
                        "-D", "-", "-w", "\n%{http_code}"] + list(args),
                       capture_output=True, text=True,
                       timeout=CURL_TIMEOUT + 5)
    out, _, code = r.stdout.rpartition("\n")
    head, _, body = out.partition("\n\n")  # text mode: no \r left
    return r.returncode, int(code or 0), head, body


def curl_transfers(*args):
    """curl with several URLs in one run: (exit code, stderr, output,
    [(HTTP status, connections it opened)] per transfer, in order)."""
    r = subprocess.run(["curl", "-sS", "--max-time", str(CURL_TIMEOUT),
                        "-w", "\n=%{http_code} %{num_connects}\n"] +
                       list(args), capture_output=True, text=True,
                       timeout=CURL_TIMEOUT + 5)
    ends = [tuple(ln[1:].split()) for ln in r.stdout.splitlines()
            if ln.startswith("=")]
    return r.returncode, r.stderr, r.stdout, ends


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
@unittest.skipUnless(shutil.which("curl") and shutil.which("openssl"),
                     "curl and openssl (Debian packages) needed")
class WebConfigCase(unittest.TestCase):
    """A temporary directory with a PKI and a bcrypt hash, and agents
    started on web configs written there; no tests of its own."""
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AGENT):
            raise unittest.SkipTest("%s not built (make all)" % AGENT)
        if not bpffs_mounted():
            subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)
        cls.dir = tempfile.mkdtemp(prefix="kue-web-")
        make_pki(cls.dir)
        cls.hash = bcrypt("s3cret")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, text, name="web.yml"):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def agent(self, text, name="web.yml"):
        """An agent on the config text (None: no config, plain HTTP)."""
        a = Agent(self.write(text, name) if text is not None else None)
        self.addCleanup(a.stop)
        return a

    def ca(self):
        return ["--cacert", self.path("ca.crt")]

    def refused_line(self, path):
        """The agent started on web config path: it exits 1 with one
        line on stderr, returned."""
        r = subprocess.run(
            [AGENT, "--web.config.file=" + path,
             "--web.listen-address=127.0.0.1:%d" % free_port(),
             "--pin-dir=%s/kue-web-bad-%d" % (BPFFS, os.getpid())],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        return lines[0]


class WebConfig(WebConfigCase):
    TLS = ("tls_server_config:\n"
           "  cert_file: server.crt\n"
           "  key_file: server.key\n")

    def test_tls_works(self):
        a = self.agent(self.TLS)
        rc, code, _, body = curl(*self.ca(), a.url())
        self.assertEqual((rc, code), (0, 200))
        self.assertIn("kvm_unsync_build_info", body)
        # plain HTTP to the TLS port gets no metrics
        rc, code, _, body = curl(a.url(scheme="http"))
        self.assertNotEqual(code, 200)
        self.assertNotIn("kvm_unsync_build_info", body)

    def test_tls_connection_kept_alive(self):
        # a scraper keeps its TLS session from one scrape to the next:
        # curl given three URLs connects (and shakes hands) once...
        a = self.agent(self.TLS)
        rc, err, out, ends = curl_transfers(*self.ca(), a.url(), a.url(),
                                            a.url())
        self.assertEqual(rc, 0, err)
        self.assertEqual(ends, [("200", "1"), ("200", "0"), ("200", "0")],
                         out[-500:])
        # ...and so does Python's http.client: one socket, one session
        ctx = ssl.create_default_context(cafile=self.path("ca.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", a.port,
                                           timeout=CURL_TIMEOUT, context=ctx)
        try:
            socks = set()
            for _ in range(4):
                conn.request("GET", "/metrics",
                             headers={"Accept-Encoding": "gzip"})
                resp = conn.getresponse()
                page = gzip.decompress(resp.read()).decode()
                self.assertEqual(resp.status, 200)
                socks.add(conn.sock.getsockname()[1])
                self.assertEqual(select(parse_metrics(page),
                                        "kvm_unsync_http_connections"), [1])
            self.assertEqual(len(socks), 1, "reconnected")
        finally:
            conn.close()

    def test_min_version_tls13_refuses_tls12(self):
        a = self.agent(self.TLS + "  min_version: TLS13\n")
        rc, code, _, _ = curl(*self.ca(), "--tlsv1.2", "--tls-max", "1.2",
                              a.url())
        self.assertNotEqual(rc, 0)
        self.assertEqual(code, 0)
        rc, code, _, _ = curl(*self.ca(), "--tlsv1.3", a.url())
        self.assertEqual((rc, code), (0, 200))

    def test_max_version_tls12_refuses_tls13(self):
        a = self.agent(self.TLS + "  max_version: TLS12\n")
        rc, code, _, _ = curl(*self.ca(), "--tlsv1.3", a.url())
        self.assertNotEqual(rc, 0)
        rc, code, _, _ = curl(*self.ca(), "--tls-max", "1.2", a.url())
        self.assertEqual((rc, code), (0, 200))

    def test_client_certificates(self):
        a = self.agent(self.TLS +
                       "  client_auth_type: RequireAndVerifyClientCert\n"
                       "  client_ca_file: ca.crt\n")
        client = ["--cert", self.path("client.crt"),
                  "--key", self.path("client.key")]
        stranger = ["--cert", self.path("stranger.crt"),
                    "--key", self.path("stranger.key")]
        for tls in (["--tlsv1.3"], ["--tls-max", "1.2"]):
            with self.subTest(tls=tls):
                rc, code, _, body = curl(*self.ca(), *tls, *client, a.url())
                self.assertEqual((rc, code), (0, 200))
                self.assertIn("kvm_unsync_build_info", body)
                # no certificate, or one the CA did not sign: the
                # handshake fails (with TLS 1.3 the client learns it when
                # it reads, after its own side of the handshake is done)
                for who in ([], stranger):
                    rc, code, _, body = curl(*self.ca(), *tls, *who,
                                             a.url())
                    self.assertNotEqual(rc, 0)
                    self.assertEqual(code, 0)
                    self.assertEqual(body, "")

    def test_other_client_auth_types(self):
        client = ["--cert", self.path("client.crt"),
                  "--key", self.path("client.key")]
        stranger = ["--cert", self.path("stranger.crt"),
                    "--key", self.path("stranger.key")]
        # (type, CA?) -> (no certificate, unsigned, signed) get in?
        cases = [
            ("VerifyClientCertIfGiven", True, (True, False, True)),
            ("RequireAnyClientCert", False, (False, True, True)),
            ("RequestClientCert", False, (True, True, True)),
        ]
        for kind, ca, want in cases:
            with self.subTest(kind=kind):
                a = self.agent(self.TLS + "  client_auth_type: %s\n" % kind +
                               ("  client_ca_file: ca.crt\n" if ca else ""),
                               kind + ".yml")
                got = tuple(curl(*self.ca(), *who, a.url())[1] == 200
                            for who in ([], stranger, client))
                self.assertEqual(got, want)
                a.stop()

    def test_basic_auth(self):
        a = self.agent(self.TLS + "basic_auth_users:\n"
                       "  alice: '%s'\n" % self.hash)
        rc, code, _, body = curl(*self.ca(), "-u", "alice:s3cret", a.url())
        self.assertEqual((rc, code), (0, 200))
        self.assertIn("kvm_unsync_build_info", body)
        for who in (["-u", "alice:wrong"], ["-u", "bob:s3cret"], []):
            with self.subTest(who=who):
                rc, code, head, body = curl(*self.ca(), *who, a.url())
                self.assertEqual(code, 401)
                self.assertRegex(head, r"(?im)^WWW-Authenticate: Basic ")
                self.assertNotIn("kvm_unsync", body)

    def test_bad_config_exits_1_with_one_line(self):
        cases = [
            ("unknown.yml", "tls_server_confg: {}\n",
             'unknown key "tls_server_confg"'),
            ("yaml.yml", "basic_auth_users: [\n", "bad YAML"),
            ("hash.yml", "basic_auth_users: {alice: plain}\n",
             "not a bcrypt hash"),
            ("nocert.yml", "tls_server_config:\n  cert_file: nope.crt\n"
             "  key_file: server.key\n", "nope.crt: cannot read"),
            ("mismatch.yml", "tls_server_config:\n  cert_file: server.crt\n"
             "  key_file: client.key\n", "cannot load"),
            ("notpem.yml", "tls_server_config:\n  cert_file: web.yml\n"
             "  key_file: server.key\n", "cannot load"),
        ]
        self.write("{}\n")  # web.yml: not PEM, for notpem.yml
        for name, text, want in cases:
            with self.subTest(name=name):
                path = self.write(text, name)
                line = self.refused_line(path)
                self.assertIn(path, line)
                self.assertIn(want, line)
        r = subprocess.run([AGENT, "--web.config.file=" +
                            self.path("missing.yml")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(), "web config %s: cannot read: "
                         "No such file or directory" %
                         self.path("missing.yml"))

    def test_sighup_reloads_on_the_same_port(self):
        bob = bcrypt("hunter2")
        a = self.agent("basic_auth_users:\n  alice: '%s'\n" % self.hash,
                       "reload.yml")
        http = a.url(scheme="http")
        self.assertEqual(curl("-u", "alice:s3cret", http)[1], 200)

        # new users take effect
        self.write("basic_auth_users:\n  bob: '%s'\n" % bob, "reload.yml")
        self.assertIn("reloaded", a.hup())
        self.assertEqual(curl("-u", "bob:hunter2", http)[1], 200)
        self.assertEqual(curl("-u", "alice:s3cret", http)[1], 401)

        # a bad file keeps the old settings, one line says so
        self.write("basic_auth_users: {bob: [\n", "reload.yml")
        line = a.hup()
        self.assertIn("keeping the previous one", line)
        self.assertIn("reload.yml", line)
        self.assertEqual(curl("-u", "bob:hunter2", http)[1], 200)

        # TLS switched on, on the same listening socket
        self.write(self.TLS + "basic_auth_users:\n  bob: '%s'\n" % bob,
                   "reload.yml")
        self.assertIn("reloaded (TLS", a.hup())
        rc, code, _, _ = curl(*self.ca(), "-u", "bob:hunter2", a.url())
        self.assertEqual((rc, code), (0, 200))

        # a new certificate: now client certificates are required
        self.write(self.TLS +
                   "  client_auth_type: RequireAndVerifyClientCert\n"
                   "  client_ca_file: ca.crt\n"
                   "basic_auth_users:\n  bob: '%s'\n" % bob, "reload.yml")
        self.assertIn("reloaded (TLS", a.hup())
        self.assertNotEqual(curl(*self.ca(), "-u", "bob:hunter2",
                                 a.url())[0], 0)
        rc, code, _, _ = curl(*self.ca(), "--cert", self.path("client.crt"),
                              "--key", self.path("client.key"),
                              "-u", "bob:hunter2", a.url())
        self.assertEqual((rc, code), (0, 200))
        self.assertIsNone(a.proc.poll())
        self.assertEqual(a.stop(), 0, a.stderr())

    def test_silent_tls_clients_do_not_starve_a_scrape(self):
        # connections that never send a ClientHello, from more addresses
        # than the per-address limit stops and more than the server's
        # slots: the handshake of a scraper that arrives later still runs
        a = self.agent(self.TLS)
        socks = []
        try:
            for i in range(SLOWLORIS):
                try:
                    socks.append(socket.create_connection(
                        ("127.0.0.1", a.port), timeout=5,
                        source_address=("127.0.0.%d" % (3 + i % 5), 0)))
                except OSError:
                    pass
            self.assertEqual(len(socks), SLOWLORIS)
            time.sleep(1)
            rc, code, _, body = curl("--max-time", "5", *self.ca(), a.url())
            self.assertEqual((rc, code), (0, 200))
            n = select(parse_metrics(body),
                       "kvm_unsync_http_connections_closed_total",
                       reason="evicted")
            self.assertGreater(n[0], 0)
        finally:
            for s in socks:
                s.close()


def agent_run(config, timeout=60):
    """The agent started on config, to completion: (CompletedProcess,
    seconds it took)."""
    t0 = time.monotonic()
    r = subprocess.run(
        [AGENT, "--web.config.file=" + config,
         "--web.listen-address=127.0.0.1:%d" % free_port(),
         "--pin-dir=%s/kue-web-bad-%d" % (BPFFS, os.getpid())],
        capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


class Scraper(threading.Thread):
    """Scrapes /metrics over plain HTTP in a loop, with or without
    credentials, counting each status, until stopped."""

    def __init__(self, port, auth=None):
        super().__init__(daemon=True)
        self.port, self.auth = port, auth
        self.codes = {}
        self.halt = threading.Event()

    def run(self):
        headers = {}
        if self.auth:
            headers["Authorization"] = "Basic " + base64.b64encode(
                self.auth.encode()).decode()
        while not self.halt.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=CURL_TIMEOUT)
            try:
                conn.request("GET", "/metrics", headers=headers)
                code = conn.getresponse().status
            except OSError:
                code = 0
            finally:
                conn.close()
            self.codes[code] = self.codes.get(code, 0) + 1

    def stop(self):
        self.halt.set()
        self.join(CURL_TIMEOUT + 5)
        return self.codes


class FailClosed(WebConfigCase):
    """Empty, cut-short, special, huge and deep files: refused at start and
    on SIGHUP, never taken for "plain HTTP, no users", never blocking."""
    TLS = WebConfig.TLS

    def users(self):
        return "basic_auth_users:\n  alice: '%s'\n" % self.hash

    def test_empty_or_cut_short_refused_at_start(self):
        for text in ("", "\n  \n", "# all commented out\n", "---\n",
                     "tls_server_config:\n", "basic_auth_users:\n",
                     "basic_auth_users: {}\n"):
            with self.subTest(text=text):
                path = self.write(text, "empty.yml")
                r, _ = agent_run(path)
                self.assertEqual(r.returncode, 1, r.stderr)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertIn(path + ": turns on neither TLS nor basic "
                              "auth", lines[0])

    def test_reload_of_cut_short_files_under_scrapes(self):
        # every line-boundary prefix of the file, and the empty file, sent
        # by SIGHUP while two clients scrape: the one without a password
        # never gets the page, the one with it always does
        good = self.users() + "  bob: '%s'\n" % bcrypt("hunter2")
        a = self.agent(good, "cut.yml")
        anon, alice = Scraper(a.port), Scraper(a.port, "alice:s3cret")
        anon.start()
        alice.start()
        cuts = [good[:i] for i in range(len(good)) if good[i - 1:i] in
                ("", "\n", ":", " ", "$")]
        outcomes = []
        try:
            for text in cuts:
                self.write(text, "cut.yml")
                outcomes.append(a.hup())
            self.write(good, "cut.yml")
            self.assertIn("reloaded", a.hup())
        finally:
            anon_codes, alice_codes = anon.stop(), alice.stop()
        # the cut right after alice's line is a valid file with fewer
        # users, and applies; every other cut is refused
        for text, line in zip(cuts, outcomes):
            with self.subTest(text=text):
                self.assertIn("reloaded" if text.rstrip(" ") == self.users()
                              else "keeping the previous one", line)
        self.assertNotIn(200, anon_codes, anon_codes)
        self.assertGreater(anon_codes.get(401, 0), 0, anon_codes)
        self.assertEqual(set(alice_codes), {200}, alice_codes)
        self.assertEqual(a.stop(), 0, a.stderr())

    def test_reload_never_weakens(self):
        mtls = (self.TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                "  client_ca_file: ca.crt\n")
        client = ["--cert", self.path("client.crt"),
                  "--key", self.path("client.key")]
        a = self.agent(mtls + self.users(), "weak.yml")
        cases = [
            (self.users(), "turns TLS off"),
            (self.TLS + self.users(), "stops requiring client certificates"),
            (self.TLS + "  client_auth_type: RequireAnyClientCert\n" +
             self.users(), "stops verifying client certificates"),
            (mtls, "turns basic auth off"),
        ]
        for text, why in cases:
            with self.subTest(why=why):
                self.write(text, "weak.yml")
                line = a.hup()
                self.assertIn("the new file %s, which takes a restart" % why,
                              line)
                self.assertIn("keeping the previous one", line)
                # still TLS, a client certificate and a password needed
                rc, code, _, _ = curl(*self.ca(), *client, "-u",
                                      "alice:s3cret", a.url())
                self.assertEqual((rc, code), (0, 200))
                self.assertEqual(curl(*self.ca(), *client, a.url())[1], 401)
                self.assertNotEqual(curl(*self.ca(), "-u", "alice:s3cret",
                                         a.url())[1], 200)
        # what only strengthens, or keeps, is applied
        self.write(mtls + "  min_version: TLS13\n" + self.users(),
                   "weak.yml")
        self.assertIn("reloaded (TLS", a.hup())
        self.assertEqual(a.stop(), 0, a.stderr())

    def test_fifo_as_config_at_start(self):
        fifo = self.path("config.fifo")
        os.mkfifo(fifo)
        self.addCleanup(os.unlink, fifo)
        r, took = agent_run(fifo, timeout=30)  # it hung for ever
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr.strip(), "web config %s: cannot read: not "
                         "a regular file (a FIFO, device or directory could "
                         "block or never end)" % fifo)
        for dev in ("/dev/zero", self.dir):
            with self.subTest(dev=dev):
                r, _ = agent_run(dev, timeout=30)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("not a regular file", r.stderr)

    def test_fifo_as_key_file_on_sighup_then_sigterm(self):
        fifo = self.path("key.fifo")
        os.mkfifo(fifo)
        self.addCleanup(os.unlink, fifo)
        a = self.agent(self.TLS, "fifo.yml")
        self.write("tls_server_config:\n  cert_file: server.crt\n"
                   "  key_file: key.fifo\n", "fifo.yml")
        line = a.hup()
        self.assertIn("key_file %s: cannot read: not a regular file" % fifo,
                      line)
        self.assertIn("keeping the previous one", line)
        rc, code, _, _ = curl(*self.ca(), a.url())
        self.assertEqual((rc, code), (0, 200))
        # SIGHUP then SIGTERM at once: the reload cannot hold the exit
        a.proc.send_signal(signal.SIGHUP)
        a.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        self.assertEqual(a.proc.wait(timeout=30), 0, a.stderr())
        took = time.monotonic() - t0
        # a bound far above the agent's exit time (a second), far below
        # for ever; a loaded machine is not to fail it
        self.assertLess(took, 10, took)

    def test_huge_deep_and_many_keyed_files_refused_fast(self):
        cases = [
            ("big.yml", "# pad\n" * ((2 << 20) // 6 + 1),
             "cannot read: larger than 1 MiB"),
            # 589 KB of 60,000 keys took 30 s to reject
            ("keys.yml", "basic_auth_users:\n" +
             "".join("  u%d: x\n" % i for i in range(60000)),
             "more than 2304 keys and values"),
            # 200 KB of nested brackets took 67 s
            ("deep.yml", "basic_auth_users: " + "[" * 200000,
             "line 1: nested deeper than 16 levels"),
        ]
        a = self.agent(self.users(), "live.yml")
        for name, text, want in cases:
            with self.subTest(name=name):
                path = self.write(text, name)
                r, took = agent_run(path)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1)
                self.assertIn(want, r.stderr)
                self.assertLess(took, 20, took)
                # and on SIGHUP, with SIGTERM right behind it
                self.write(text, "live.yml")
                line = a.hup()
                self.assertIn(want, line)
                self.assertIn("keeping the previous one", line)
        a.proc.send_signal(signal.SIGHUP)
        a.proc.send_signal(signal.SIGTERM)
        self.assertEqual(a.proc.wait(timeout=30), 0, a.stderr())


def basic(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def guesses(n, user, first=0):
    """n pipelined GETs of /metrics with wrong passwords for user."""
    return b"".join(("GET /metrics HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: %s\r\n\r\n" %
                     basic(user, "guess%d" % (first + i))).encode()
                    for i in range(n))


class Responses:
    """Reads HTTP/1.1 responses with Content-Length bodies off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def next(self):
        """(status, header lines) of the next response."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value)
        while len(self.buf) < length:
            self._more()
        self.buf = self.buf[length:]
        return int(lines[0].split()[1]), lines[1:]


class Flood:
    """Clients from 127.0.0.1 pipelining wrong passwords for a real user,
    each on its own connection, reconnecting when the server hangs up,
    until stopped.  Which of their requests are sent and not answered yet
    is known at any moment."""

    def __init__(self, port, user, conns=24, depth=3):
        self.port, self.user, self.depth = port, user, depth
        self.lock = threading.Lock()
        self.pending = set()
        self.codes = collections.Counter()
        self.ids = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(conns)]
        for t in self.threads:
            t.start()

    def _batch(self, sock, reader):
        with self.lock:
            ids = list(range(self.ids, self.ids + self.depth))
            self.ids += self.depth
            self.pending.update(ids)
        try:
            sock.sendall(guesses(self.depth, self.user, ids[0]))
            for i in ids:
                code, _ = reader.next()
                with self.lock:
                    self.pending.discard(i)
                    self.codes[code] += 1
        finally:
            with self.lock:
                self.pending.difference_update(ids)

    def _run(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=30) as sock:
                    reader = Responses(sock)
                    while not self.stop.is_set():
                        self._batch(sock, reader)
            except OSError:
                time.sleep(0.01)

    def outstanding(self):
        with self.lock:
            return set(self.pending)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        with self.lock:
            return collections.Counter(self.codes)


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
class PasswordChecks(WebConfigCase):
    """Basic auth against a user of cost 12 (the most allowed): password
    checks run off the server's thread, bounded, and never hold back a
    scrape or SIGTERM."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hash12 = bcrypt("s3cret", cost=12)

    def auth_agent(self):
        return self.agent("basic_auth_users:\n  alice: '%s'\n" %
                          self.hash12)

    def open_from(self, port, addr):
        s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                     source_address=(addr, 0))
        self.addCleanup(s.close)
        return s

    def stopped_burst(self, a, socks, user="alice"):
        """One wrong guess on each socket, all sent while the agent is
        stopped (SIGSTOP), so all are there when it runs again: which get
        a check, and which are refused, does not depend on how fast they
        arrive.  Returns each socket's (status, headers)."""
        os.kill(a.proc.pid, signal.SIGSTOP)
        try:
            for s in socks:
                s.sendall(guesses(1, user))
        finally:
            os.kill(a.proc.pid, signal.SIGCONT)
        got = []
        for s in socks:
            try:
                got.append(Responses(s).next())
            except ConnectionError:
                got.append((None, []))
        return got

    def test_cost_above_12_refused_at_start(self):
        tail = self.hash12[7:]
        for cost in (13, 31):
            with self.subTest(cost=cost):
                path = self.write("basic_auth_users:\n  carol: "
                                  "'$2b$%d$%s'\n" % (cost, tail), "cost.yml")
                self.assertIn("carol: bcrypt cost %d is above 12" % cost,
                              self.refused_line(path))

    def test_guessing_clients_do_not_starve_a_scrape(self):
        # Prometheus, already scraping (its credentials checked once),
        # from 127.0.0.2; 24 connections from 127.0.0.1 pipelining wrong
        # passwords for alice.  Every scrape is answered, and while checks
        # the flood sent before it were still unanswered.
        a = self.auth_agent()
        prom = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10,
                                          source_address=("127.0.0.2", 0))
        self.addCleanup(prom.close)
        hdr = {"Authorization": basic("alice", "s3cret")}

        def scrape():
            prom.request("GET", "/metrics", headers=hdr)
            r = prom.getresponse()
            r.read()
            return r.status

        self.assertEqual(scrape(), 200)
        flood = Flood(a.port, "alice")
        try:
            # refused for the address's budget: its checks are under way
            deadline = time.time() + 60
            while not flood.codes[429] and time.time() < deadline:
                time.sleep(0.05)
            waits, overlapped = [], 0
            for _ in range(20):
                before = flood.outstanding()
                t0 = time.monotonic()
                self.assertEqual(scrape(), 200)
                waits.append(time.monotonic() - t0)
                overlapped += bool(before & flood.outstanding())
        finally:
            codes = flood.finish()
        sys.stderr.write("\n  scrape under a flood of guesses: median "
                         "%.3f s, max %.3f s; flood answers %s\n" %
                         (sorted(waits)[len(waits) // 2], max(waits),
                          dict(codes)))
        self.assertGreater(overlapped, 0)
        self.assertGreater(codes[429], 0)   # past the address's budget
        # a check's own answer is often lost: the connection guard drops
        # the flood's longest-running requests to let its newer ones in
        self.assertLessEqual(set(codes), {401, 429, 503})

    def test_address_budget_429_and_full_queue_503(self):
        a = self.auth_agent()
        # 2 checks per address (HTTP_AUTH_PER_ADDR): the third is 429
        got = self.stopped_burst(
            a, [self.open_from(a.port, "127.0.0.50") for _ in range(3)])
        self.assertEqual(sorted(c for c, _ in got), [401, 401, 429])
        hdrs = [h for c, h in got if c == 429][0]
        self.assertIn("Retry-After: 1", hdrs)
        # 2 running and 8 queued (HTTP_AUTH_WORKERS, HTTP_AUTH_QUEUE) from
        # 14 addresses: the other 4 are 503 at once.  The last queued
        # wait five checks; on a loaded host that can pass the 15 s
        # request deadline, which hangs up on them (None), as on any
        # request that slow
        got = self.stopped_burst(
            a, [self.open_from(a.port, "127.0.0.%d" % (60 + i))
                for i in range(14)])
        codes = collections.Counter(c for c, _ in got)
        self.assertEqual(codes[503], 4, codes)
        self.assertEqual(codes[401] + codes[None], 10, codes)
        # and the right password still works afterwards
        rc, code, _, _ = curl("-u", "alice:s3cret",
                              a.url(scheme="http"))
        self.assertEqual((rc, code), (0, 200))

    def test_sigterm_during_checks(self):
        a = self.auth_agent()
        socks = [self.open_from(a.port, "127.0.0.%d" % (80 + i))
                 for i in range(10)]
        os.kill(a.proc.pid, signal.SIGSTOP)
        for s in socks:
            s.sendall(guesses(1, "alice"))
        os.kill(a.proc.pid, signal.SIGCONT)
        time.sleep(0.1)  # checks running and queued
        t0 = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)
        rc = a.proc.wait(timeout=30)
        took = time.monotonic() - t0
        sys.stderr.write("\n  SIGTERM with 10 checks queued or running: "
                         "exit %d after %.2f s\n" % (rc, took))
        self.assertEqual(rc, 0, a.stderr())
        # README promises a second; a stop that waited for the checks
        # (ten at a fifth of a second each, more on a loaded host) is late
        self.assertLess(took, 3.0)
        for s in socks:  # every client answered or hung up on: none hangs
            try:
                Responses(s).next()
            except ConnectionError:
                pass


if __name__ == "__main__":
    unittest.main()
