#!/usr/bin/env python3
"""The HTTP server against clients that take their time, which is what
makes these tests slow (a minute and more): they wait out the server's
deadlines, so they run in `make test` and not in `make check`.

Idle half-open connections and slowloris clients from several addresses
(a header byte a second, more of them than the server has slots) do not
keep a scrape out, and the server hangs up on each of them, by deadline
and by eviction; an oversized header gets an error, not a crash.  On a
kept-alive connection the guard's deadline for the next request still
holds: one that trickles its second request a byte a second is hung up on
(reason="deadline"), within HTTP_CONNECTION_TIMEOUT + HTTP_REQUEST_DEADLINE
(user/http.h) of the first answer.
"""

import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import test_http_wire as wire  # noqa: E402
import test_web as web  # noqa: E402
from test_http_wire import NEXT_DEADLINE, TIMEOUT, closed_by_deadline, get, \
    read_response  # noqa: E402
from test_web import SLOWLORIS, SLOWLORIS_WAIT, curl  # noqa: E402
sys.path.insert(0, os.path.join(REPO, "tests"))
from promtext import parse_metrics, select  # noqa: E402


class SlowClients(web.WebConfigCase):
    def test_slow_clients_do_not_starve_a_scrape(self):
        a = self.agent(None)
        stop = threading.Event()
        socks, closed = [], []
        lock = threading.Lock()
        try:
            # 50 idle half-open connections from one address...
            for _ in range(50):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(5)
                try:
                    s.connect(("127.0.0.1", a.port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)

            # ...and slowloris clients from more addresses than the
            # per-address limit stops, more of them than the server has
            # slots, each sending a header byte a second for ever
            def slowloris(src):
                req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
                try:
                    s = socket.create_connection(
                        ("127.0.0.1", a.port), timeout=5,
                        source_address=(src, 0))
                except OSError:
                    return
                with s:
                    for b in req + b"a" * 1000:
                        if stop.wait(1):
                            return
                        try:
                            s.send(bytes([b]))
                        except OSError:
                            break
                    with lock:
                        closed.append(src)
            threads = [threading.Thread(target=slowloris, daemon=True,
                                        args=("127.0.0.%d" % (3 + i % 5),))
                       for i in range(SLOWLORIS)]
            for t in threads:
                t.start()
            time.sleep(3)
            rc, code, _, body = curl("--max-time", "5",
                                     a.url(scheme="http"))
            self.assertEqual((rc, code), (0, 200))
            self.assertIn("kvm_unsync_build_info", body)

            # the server hangs up on every slowloris client: those past
            # the request deadline, and those evicted by newcomers
            for t in threads:
                t.join(SLOWLORIS_WAIT)
            self.assertEqual(len(closed), SLOWLORIS,
                             "slowloris connections the server kept open")
            rc, code, _, body = curl(a.url(scheme="http"))
            self.assertEqual(code, 200)
            samples = parse_metrics(body)
            for reason in ("deadline", "evicted"):
                n = select(samples, "kvm_unsync_http_connections_closed_total",
                           reason=reason)
                self.assertEqual(len(n), 1, reason)
                self.assertGreater(n[0], 0, reason)
        finally:
            stop.set()
            for s in socks:
                s.close()

        # a header past the request size limit: an error status
        rc, code, _, _ = curl("-H", "X-Big: " + "a" * 64 * 1024,
                              a.url(scheme="http"))
        self.assertIn(code, (413, 431))
        self.assertEqual(curl(a.url(scheme="http"))[1], 200)
        self.assertIsNone(a.proc.poll())


class NextRequest(wire.Base):
    def test_next_request_deadline_still_holds(self):
        with socket.create_connection(("127.0.0.1", self.agent.port),
                                      timeout=TIMEOUT) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = read_response(s)
            self.assertTrue(head.startswith("HTTP/1.1 200"), head)
            before = closed_by_deadline(body)
            answered = time.monotonic()
            # the next request, a header byte a second: libmicrohttpd's
            # idle timeout never fires, the guard's deadline must
            s.settimeout(1)
            req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
            hung_up = False
            for b in req + b"a" * (2 * NEXT_DEADLINE):
                try:
                    s.send(bytes([b]))
                    if s.recv(1) == b"":
                        hung_up = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    hung_up = True
                    break
            waited = time.monotonic() - answered
        self.assertTrue(hung_up, "still open after %.0f s" % waited)
        # by the deadline, not an eviction or the idle timeout
        conn = self.agent.connect()
        try:
            _, body = get(conn)
        finally:
            conn.close()
        self.assertEqual(closed_by_deadline(body), before + 1)
        self.assertEqual(select(parse_metrics(body.decode()),
                                "kvm_unsync_http_connections_closed_total",
                                reason="evicted"), [0])


if __name__ == "__main__":
    unittest.main()
