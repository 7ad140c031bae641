#!/usr/bin/env python3
"""What Prometheus expects of the agent's HTTP server on the wire, with the
agent running on this machine and real clients over loopback.

gzip: a request that accepts it (curl --compressed, or Python's http.client
with Accept-Encoding: gzip) gets a gzip body with Content-Encoding: gzip
and Vary: Accept-Encoding that inflates to the same page as the plain one
(the same HELP/TYPE lines and the same series; values move between
scrapes); "gzip;q=0" or no header gets the plain page.

keep-alive: one HTTP/1.1 connection serves several scrapes, plain and
gzip, to Python's http.client and to curl given several URLs (curl says
it connected once), the server counting one connection throughout; an
HTTP/1.0 request, or one that says Connection: close, still gets its
connection closed.  That the guard's deadline for the next request still
holds on a kept-alive connection is in test_slow_clients.py (it waits the
deadline out).  TLS keep-alive is in test_web.py; the guard's rules for
clients that reconnect per scrape are in test_soak.py and the unit tests.
"""

import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, ensure_bpffs  # noqa: E402
from test_web import Agent, curl_transfers  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402

TIMEOUT = 10
# the guard's deadline for a kept-alive connection's next request:
# HTTP_CONNECTION_TIMEOUT + HTTP_REQUEST_DEADLINE in user/http.h
NEXT_DEADLINE = 30 + 15


def agent():
    """The daemon on a free port, plain HTTP (test_web's, without a web
    config)."""
    a = Agent(None)
    a.connect = lambda: http.client.HTTPConnection("127.0.0.1", a.port,
                                                   timeout=TIMEOUT)
    return a


def get(conn, path="/metrics", headers=None):
    """One request on conn: (response, body bytes as sent)."""
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()


def shape(page):
    """What stays the same between two scrapes of one idle agent: the
    HELP/TYPE lines and the set of series."""
    comments = [line for line in page.splitlines() if line.startswith("#")]
    return comments, sorted(parse_metrics(page))


@unittest.skipUnless(os.geteuid() == 0, "needs root to load BPF programs")
@unittest.skipUnless(shutil.which("curl"), "curl (Debian package) needed")
class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(AGENT):
            raise unittest.SkipTest("%s not built (make all)" % AGENT)
        ensure_bpffs()
        cls.agent = agent()

    @classmethod
    def tearDownClass(cls):
        assert cls.agent.stop() == 0, cls.agent.stderr()


class Gzip(Base):
    def plain(self):
        conn = self.agent.connect()
        try:
            r, body = get(conn)
        finally:
            conn.close()
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.getheader("Content-Encoding"))
        return body.decode()

    def test_http_client_gets_gzip(self):
        conn = self.agent.connect()
        try:
            r, body = get(conn, headers={"Accept-Encoding": "gzip"})
        finally:
            conn.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.getheader("Content-Encoding"), "gzip")
        self.assertEqual(r.getheader("Vary"), "Accept-Encoding")
        self.assertEqual(int(r.getheader("Content-Length")), len(body))
        self.assertEqual(body[:2], b"\x1f\x8b")
        page = gzip.decompress(body).decode()
        self.assertIn("kvm_unsync_build_info", page)
        self.assertEqual(shape(page), shape(self.plain()))
        self.assertLess(len(body), len(page.encode()))

    def test_curl_compressed(self):
        r = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT),
                            "--compressed", "-D", "-",
                            self.agent.url(scheme="http")],
                           capture_output=True, timeout=TIMEOUT + 5)
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, page = r.stdout.decode().partition("\r\n\r\n")
        self.assertIn("\r\nContent-Encoding: gzip\r\n", head + "\r\n")
        self.assertEqual(shape(page), shape(self.plain()))

    def test_refused_or_not_asked_plain(self):
        for value in (None, "identity", "gzip;q=0", "deflate, br",
                      "*;q=0", "identity;q=1, gzip;q=0.5"):
            conn = self.agent.connect()
            try:
                r, body = get(conn, headers={"Accept-Encoding": value}
                              if value is not None else None)
            finally:
                conn.close()
            self.assertEqual(r.status, 200, value)
            self.assertIsNone(r.getheader("Content-Encoding"), value)
            self.assertEqual(r.getheader("Vary"), "Accept-Encoding")
            self.assertIn(b"kvm_unsync_build_info", body, value)
        # only /metrics is compressed: the landing page stays as it is
        conn = self.agent.connect()
        try:
            r, body = get(conn, "/", headers={"Accept-Encoding": "gzip"})
        finally:
            conn.close()
        self.assertIsNone(r.getheader("Content-Encoding"))
        self.assertIn(b"<html>", body)


def read_response(sock):
    """One response with a Content-Length off a raw socket: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed before the headers: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
              if line.lower().startswith(b"content-length:")][0]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed inside the body")
        body += chunk
    return head.decode(), body


def closed_by_deadline(page):
    return select(parse_metrics(page.decode() if isinstance(page, bytes)
                                else page),
                  "kvm_unsync_http_connections_closed_total",
                  reason="deadline")[0]


class KeepAlive(Base):
    def test_http_client_one_connection_several_scrapes(self):
        conn = self.agent.connect()
        try:
            ports = set()
            for i in range(6):
                headers = {"Accept-Encoding": "gzip"} if i % 2 else {}
                r, body = get(conn, headers=headers)
                self.assertEqual(r.status, 200)
                self.assertNotEqual(r.getheader("Connection"), "close")
                ports.add(conn.sock.getsockname()[1])
                page = gzip.decompress(body) if i % 2 else body
                # this one connection is all the server has open
                self.assertIn(b"\nkvm_unsync_http_connections 1\n", page)
            self.assertEqual(len(ports), 1, "a new connection was opened")
            r, body = get(conn, "/")
            self.assertEqual(r.status, 200)
            r, body = get(conn, "/nope")
            self.assertEqual(r.status, 404)
            r, body = get(conn)
            self.assertEqual(r.status, 200)
            self.assertEqual({conn.sock.getsockname()[1]}, ports)
        finally:
            conn.close()

    def test_curl_several_urls_one_connection(self):
        url = self.agent.url(scheme="http")
        rc, err, out, ends = curl_transfers(url, "--compressed", url, url)
        self.assertEqual(rc, 0, err)
        # one connect for the first transfer, none for the next two
        self.assertEqual(ends, [("200", "1"), ("200", "0"), ("200", "0")],
                         out[-500:])
        self.assertEqual(out.count("\nkvm_unsync_http_connections 1\n"), 3)

    def test_close_when_asked(self):
        for req in (b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.agent.port),
                                          timeout=TIMEOUT) as s:
                s.sendall(req)
                head, body = read_response(s)
                self.assertTrue(head.startswith("HTTP/1."), head)
                self.assertIn(b"kvm_unsync_build_info", body)
                self.assertEqual(s.recv(1), b"", "connection left open")


class EdgeCases(Base):
    """Requests libmicrohttpd 0.9.75 mishandled on its own: each is
    answered at once (a socket timeout below the server's 15 s request
    deadline, which is what a stalled request ended on), and as it
    should be."""

    def raw(self, req):
        with socket.create_connection(("127.0.0.1", self.agent.port),
                                      timeout=TIMEOUT) as s:
            s.sendall(req)
            head, body = read_response(s)
        return int(head.split()[1]), body

    def test_many_query_arguments_answered(self):
        for n in (250, 2000):
            for path, want in (("/metrics", b"kvm_unsync_build_info"),
                               ("/", b"<html>")):
                with self.subTest(n=n, path=path):
                    q = "&".join(["a"] * n)
                    code, body = self.raw(("GET %s?%s HTTP/1.1\r\n"
                                           "Host: x\r\n\r\n" %
                                           (path, q)).encode())
                    self.assertEqual(code, 200)
                    self.assertIn(want, body)

    def test_encoded_nul_is_not_the_path(self):
        for path, want in (("/metrics%00junk", 404), ("/metrics%00", 404),
                           ("/%00", 404), ("/metric%73", 200),
                           ("/metrics%2", 404)):
            with self.subTest(path=path):
                code, _ = self.raw(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" %
                                    path).encode())
                self.assertEqual(code, want)

    def test_chunked_get_4xx_not_500(self):
        for ext in ("x" * 20000, ""):
            with self.subTest(ext=len(ext)):
                code, body = self.raw(
                    ("GET /metrics HTTP/1.1\r\nHost: x\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n"
                     "5;%s\r\nhello\r\n0\r\n\r\n" % ext).encode())
                self.assertEqual(code, 400, body)
        # a GET with a Content-Length body is still read and answered
        code, body = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 5\r\n\r\nhello")
        self.assertEqual(code, 200)

    def test_idle_connections_keep_the_scrapers(self):
        # a scraper's kept-alive connection, then 20 idle ones from its
        # own address (more than HTTP_PER_IP_CONNECTION_LIMIT): its next
        # scrape on that connection, and one on a new connection, are
        # answered
        conn = self.agent.connect()
        idle = []
        try:
            r, _ = get(conn)
            self.assertEqual(r.status, 200)
            for _ in range(20):
                try:
                    idle.append(socket.create_connection(
                        ("127.0.0.1", self.agent.port), timeout=TIMEOUT))
                except OSError:
                    pass  # past libmicrohttpd's own per-address limit
            r, body = get(conn)
            self.assertEqual(r.status, 200)
            self.assertIn(b"kvm_unsync_build_info", body)
            r = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT),
                                "-o", "/dev/null", "-w", "%{http_code}",
                                self.agent.url(scheme="http")],
                               capture_output=True, text=True,
                               timeout=TIMEOUT + 5)
            self.assertEqual(r.stdout, "200", r.stderr)
        finally:
            conn.close()
            for s in idle:
                s.close()


if __name__ == "__main__":
    unittest.main()
