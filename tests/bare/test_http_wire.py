#!/usr/bin/env python3
"""What Prometheus expects of the agent's HTTP server on the wire, with the
agent running on this machine and real clients over loopback.

gzip: a request that accepts it (curl --compressed, or Python's http.client
with Accept-Encoding: gzip) gets a gzip body with Content-Encoding: gzip
and Vary: Accept-Encoding that inflates to the same page as the plain one
(the same HELP/TYPE lines and the same series; values move between
scrapes); "gzip;q=0" or no header gets the plain page.
"""

import gzip
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from agentenv import AGENT, BPFFS, ensure_bpffs  # noqa: E402
from test_web import Agent  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics  # noqa: E402

TIMEOUT = 10


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


if __name__ == "__main__":
    unittest.main()
