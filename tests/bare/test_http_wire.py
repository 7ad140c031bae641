#!/usr/bin/env python3
"""What Prometheus expects of the agent's HTTP server on the wire, with the
agent running on this machine and real clients over loopback.

gzip: a request that accepts it (curl --compressed, or Python's http.client
with Accept-Encoding: gzip) gets a gzip body with Content-Encoding: gzip
and Vary: Accept-Encoding that inflates to the same page as the plain one
(the same HELP/TYPE lines and the same series; values move between
scrapes); "gzip;q=0" or no header gets the plain page.

keep-alive: one HTTP/1.1 connection serves several scrapes, plain and
gzip, and the server counts it as one connection throughout; an idle
kept-alive connection is closed by the server after its idle timeout
(HTTP_CONNECTION_TIMEOUT, 30 s, in user/http.h); an HTTP/1.0 request, or
one that says Connection: close, still gets its connection closed.  The
connection guard's own tests (slow clients, eviction) are in test_web.py
and test_ops.py.
"""

import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, BPFFS, bpffs_mounted  # noqa: E402
from test_web import Agent  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics  # noqa: E402

TIMEOUT = 10
IDLE_TIMEOUT = 30	# HTTP_CONNECTION_TIMEOUT in user/http.h


def agent():
    """The daemon on a free port, plain HTTP: test_web's, with an empty
    web config."""
    fd, path = tempfile.mkstemp(suffix=".yml")
    with os.fdopen(fd, "w") as f:
        f.write("{}\n")
    try:
        a = Agent(path)
    finally:
        os.unlink(path)  # read at start-up, and never again without HUP
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
        if not bpffs_mounted():
            subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], check=True)
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


class KeepAlive(Base):
    def test_one_connection_serves_several_scrapes(self):
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

    def test_idle_connection_closed_after_the_idle_timeout(self):
        with socket.create_connection(("127.0.0.1", self.agent.port),
                                      timeout=IDLE_TIMEOUT + 30) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            read_response(s)
            answered = time.monotonic()
            # still open a while later: a second request is served
            time.sleep(2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _ = read_response(s)
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            answered = time.monotonic()
            # then idle: the server hangs up, no sooner than its timeout
            self.assertEqual(s.recv(1), b"")
            idle = time.monotonic() - answered
            self.assertGreaterEqual(idle, IDLE_TIMEOUT - 1)
            self.assertLess(idle, IDLE_TIMEOUT + 20)


if __name__ == "__main__":
    unittest.main()
