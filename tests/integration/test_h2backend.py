"""Integration tests of HTTP/2 toward backends (issue 12, points 2 and 6):
routes added with `--proto h2c` reach real HTTP/2 backends with prior
knowledge through the worker's HTTP/2 upstream (worker/h2client.c).

Backends: nghttpd (nghttp2-server) serving a folder, and a python3-h2
backend (h2backend.py) that echoes bodies and trailers, counts connections,
records resets and can go away (GOAWAY) during load.

Covered: an HTTP/1.1 client (curl, and raw bytes for a chunked body with
trailers both ways) and an HTTP/2 client (curl --http2-prior-knowledge,
python-h2 with request trailers) to h2c backends; 100 concurrent streams
from h2load through one client connection use one or two backend
connections; backend GOAWAYs during load lose no request (GET and POST); a
stream its client does not read stalls alone (flow control end to end);
a client's RST_STREAM cancels the backend's stream; an answer that ends on
its HEADERS (gRPC trailers-only) stays one HEADERS frame; a backend that is down
is a 502, and so is an upgrade to an h2c route.

h2 (HTTP/2 over TLS, ALPN h2): nghttpd with a certificate from a test CA,
verified against the route's CA (GET over HTTP/1.1 and HTTP/2, h2load), a
wrong CA refused with the reason in the log.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import h2.events

from .h2backend import H2Backend
from .harness import DaemonTestCase, free_port, request, unique_host, wait_for
from .test_datapath import closed_port
from .test_http2 import H2Client, run
from .test_tls import Pki

CURL = shutil.which("curl") or "/usr/bin/curl"
NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"
TIMEOUT = 10.0
NGHTTP2_CANCEL = 8
MIB = 1 << 20


def connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def read_chunked_response(s):
    """A raw HTTP/1.1 response with a chunked body: (head text, body, trailer lines)."""
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            raise AssertionError("EOF in the response head: %r" % data)
        data += b
    head, rest = data.split(b"\r\n\r\n", 1)

    def more():
        b = s.recv(65536)
        if not b:
            raise AssertionError("EOF in the chunked body: %r" % rest)
        return b

    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += more()
        line, rest = rest.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        while len(rest) < size + 2:
            rest += more()
        body, rest = body + rest[:size], rest[size + 2:]
    while b"\r\n\r\n" not in b"\r\n" + rest:
        rest += more()
    trailers = [ln for ln in rest.split(b"\r\n") if ln]
    return head.decode("latin-1"), body, [t.decode("latin-1") for t in trailers]


class FrameClient(H2Client):
    """H2Client noting the streams whose response HEADERS carried END_STREAM."""

    def __init__(self, *a, **kw):
        self.ended_on_headers = set()
        super().__init__(*a, **kw)

    def handle(self, events):
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_ended is not None:
                self.ended_on_headers.add(ev.stream_id)
        super().handle(events)


class H2BackendTest(DaemonTestCase):
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.docroot = tempfile.mkdtemp(prefix="haloyd-nghttpd-")
        cls.file_body = b"".join(b"line %05d of the nghttpd file\n" % i for i in range(4000))
        with open(os.path.join(cls.docroot, "file.txt"), "wb") as f:
            f.write(cls.file_body)
        cls.nghttpd_port = free_port()
        cls.nghttpd = subprocess.Popen(
            [NGHTTPD, "--no-tls", "-a", "127.0.0.1", "-d", cls.docroot, str(cls.nghttpd_port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: connectable(cls.nghttpd_port), TIMEOUT, "nghttpd to listen")
        cls.h2 = H2Backend("h2").start()

    @classmethod
    def tearDownClass(cls):
        cls.nghttpd.terminate()
        cls.nghttpd.wait(TIMEOUT)
        cls.h2.stop()
        shutil.rmtree(cls.docroot, ignore_errors=True)
        super().tearDownClass()

    def route(self, addr, label):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, addr, "--proto", "h2c")
        return host

    def curl(self, host, path, extra=(), timeout=30):
        """curl to the plain listener: (http version, status, headers, body, trailers)."""
        fd, out = tempfile.mkstemp(prefix="haloyd-h2b-")
        os.close(fd)
        self.addCleanup(os.unlink, out)
        cmd = [CURL, "-sS", "--max-time", str(timeout), "-o", out, "-D", "-",
               "-w", "\n%{http_version} %{http_code}",
               "--resolve", "%s:%d:127.0.0.1" % (host, self.daemon.port)] + list(extra)
        cmd.append("http://%s:%d%s" % (host, self.daemon.port, path))
        p = run(cmd, timeout=timeout + 10)
        self.assertEqual(p.returncode, 0, "%s: %s" % (" ".join(cmd), p.stderr.decode()))
        text, _, last = p.stdout.decode("latin-1").rpartition("\n")
        version, code = last.split()
        headers = []
        for ln in text.splitlines():
            if ":" in ln and not ln.startswith("HTTP/"):
                k, v = ln.split(":", 1)
                headers.append((k.strip().lower(), v.strip()))
        with open(out, "rb") as f:
            return version, int(code), headers, f.read()

    def client(self):
        c = H2Client(self.daemon.port)
        self.addCleanup(c.close)
        return c

    # --- nghttpd

    def test_nghttpd_http11_and_h2_clients(self):
        host = self.route("127.0.0.1:%d" % self.nghttpd_port, "nghttpd")
        v, code, headers, body = self.curl(host, "/file.txt")
        self.assertEqual((v, code), ("1.1", 200))
        self.assertEqual(body, self.file_body)
        self.assertIn(("content-length", str(len(self.file_body))), headers)
        v, code, _, body = self.curl(host, "/file.txt", extra=["--http2-prior-knowledge"])
        self.assertEqual((v, code), ("2", 200))
        self.assertEqual(body, self.file_body)
        v, code, _, _ = self.curl(host, "/missing", extra=["--http2-prior-knowledge"])
        self.assertEqual(code, 404)
        # HEAD: the length of what a GET would get, no body; HTTP/1.1 gets a reason phrase.
        r = request(self.daemon.port, "/file.txt", host=host, method="HEAD")
        self.assertEqual((r.status, r.reason, r.body), (200, "OK", b""))
        self.assertEqual(r.header("Content-Length"), str(len(self.file_body)))
        r = self.client().get(host, "/file.txt", method="HEAD")
        self.assertEqual((r.status, bytes(r.data)), (200, b""))
        self.assertEqual(r.header("content-length"), str(len(self.file_body)))

    # --- conversions

    def test_http11_client_chunked_body_and_trailers(self):
        host = self.route(self.h2.addr, "h1conv")
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT) as s:
            s.sendall(("POST /echo?h1 HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
                       "TE: trailers\r\nContent-Type: text/x-test\r\nCookie: a=1\r\n\r\n"
                       "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n" % host).encode())
            head, body, trailers = read_chunked_response(s)
        self.assertTrue(head.startswith("HTTP/1.1 200"), head)
        self.assertIn("transfer-encoding: chunked", head.lower())
        self.assertEqual(body, b"hello world")
        self.assertIn("x-echo-trailers: x-sum=11", [t.lower() for t in trailers])
        self.assertIn("grpc-status: 0", [t.lower() for t in trailers])
        rec = self.h2.records("/echo?h1")[-1]
        hdrs = rec["headers"]
        self.assertIn((":authority", host), hdrs)
        self.assertIn((":method", "POST"), hdrs)
        self.assertIn(("te", "trailers"), hdrs)
        self.assertIn(("cookie", "a=1"), hdrs)
        names = [k for k, _ in hdrs]
        for hop in ("host", "transfer-encoding", "connection", "content-length"):
            self.assertNotIn(hop, names)
        self.assertEqual((rec["body"], rec["trailers"]), (b"hello world", [("x-sum", "11")]))

    def test_http2_client_to_h2c_backend(self):
        host = self.route(self.h2.addr, "h2conv")
        v, code, _, body = self.curl(host, "/headers?curl", extra=["--http2-prior-knowledge"])
        self.assertEqual((v, code), ("2", 200))
        got = dict((k, v) for k, v in json.loads(body))
        self.assertEqual(got[":authority"], "%s:%d" % (host, self.daemon.port))  # as curl sent it
        self.assertEqual(got["x-forwarded-for"], "127.0.0.1")
        self.assertNotIn("host", got)
        # Request trailers on, response trailers back.
        c = self.client()
        sid = c.request(host, "/echo?h2", method="POST", end=False, extra=[("te", "trailers")])
        c.send_body(sid, b"y" * 100000, end=False)
        c.conn.send_headers(sid, [("x-req-sum", "42")], end_stream=True)
        c.flush()
        r = c.response(sid)
        self.assertEqual((r.status, len(r.data)), (200, 100000), r)
        self.assertIn(("x-echo-trailers", "x-req-sum=42"), r.trailers or [])
        self.assertIn(("grpc-status", "0"), r.trailers or [])
        rec = self.h2.records("/echo?h2")[-1]
        self.assertEqual((len(rec["body"]), rec["trailers"]), (100000, [("x-req-sum", "42")]))
        r = c.get(host, "/trailers")
        self.assertEqual(bytes(r.data), b"body with trailers\n")
        self.assertIn(("grpc-message", "fine"), r.trailers or [])

    def test_trailers_only_answer_stays_one_headers(self):
        host = self.route(self.h2.addr, "tronly")
        c = FrameClient(self.daemon.port)
        self.addCleanup(c.close)
        r = c.get(host, "/trailers-only", extra=[("content-type", "application/grpc"),
                                                 ("te", "trailers")])
        # A gRPC client reads its status from this HEADERS: it must end the stream itself.
        self.assertEqual((r.status, bytes(r.data), r.trailers, r.ended), (200, b"", None, True), r)
        self.assertIn(r.id, c.ended_on_headers, "END_STREAM came on a frame after HEADERS")
        self.assertEqual(r.header("grpc-status"), "5")
        self.assertEqual(r.header("grpc-message"), "not here")
        # HTTP/1.1 gets an empty body of length 0.
        r = request(self.daemon.port, "/trailers-only", host=host)
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "0"))
        self.assertEqual(r.header("grpc-status"), "5")

    # --- multiplexing

    def test_h2load_100_streams_few_backend_connections(self):
        be = H2Backend("mux").start()
        self.addCleanup(be.stop)
        host = self.route(be.addr, "mux")
        p = run([H2LOAD, "-n", "2000", "-c", "1", "-m", "100", "-H", ":authority: " + host,
                 "http://127.0.0.1:%d/mux" % self.daemon.port], timeout=120)
        out = p.stdout.decode("latin-1")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertIn("2000 succeeded, 0 failed, 0 errored, 0 timeout", out, out)
        self.assertIn("status codes: 2000 2xx", out, out)
        self.assertEqual(len(be.records("/mux")), 2000)
        # One client connection lives in one worker: its 100 streams share its sessions.
        self.assertLessEqual(be.accepted, 2, "100 concurrent streams used %d backend "
                             "connections" % be.accepted)

    def test_backend_goaway_during_load_loses_no_request(self):
        be = H2Backend("goaway").start()
        self.addCleanup(be.stop)
        be.goaway_every = 150
        host = self.route(be.addr, "goaway")
        p = run([H2LOAD, "-n", "1200", "-c", "2", "-m", "50", "-H", ":authority: " + host,
                 "http://127.0.0.1:%d/ga-get" % self.daemon.port], timeout=120)
        out = p.stdout.decode("latin-1")
        self.assertIn("1200 succeeded, 0 failed, 0 errored, 0 timeout", out, out)
        self.assertIn("status codes: 1200 2xx", out, out)
        self.assertGreaterEqual(len(be.goaways), 4, be.goaways)
        # Each request was processed once: the ones past a GOAWAY were retried, not lost.
        self.assertEqual(len(be.records("/ga-get")), 1200)
        # POSTs too: a stream the backend never processed is retried whatever its method.
        fd, data = tempfile.mkstemp(prefix="haloyd-h2b-post-")
        os.write(fd, b"p" * 3000)
        os.close(fd)
        self.addCleanup(os.unlink, data)
        p = run([H2LOAD, "-n", "600", "-c", "1", "-m", "50", "-d", data, "-H",
                 ":authority: " + host, "http://127.0.0.1:%d/ga-post" % self.daemon.port],
                timeout=120)
        out = p.stdout.decode("latin-1")
        self.assertIn("600 succeeded, 0 failed, 0 errored, 0 timeout", out, out)
        self.assertIn("status codes: 600 2xx", out, out)
        recs = be.records("/ga-post")
        self.assertEqual(len(recs), 600)
        self.assertTrue(all(r["body"] == b"p" * 3000 and r["method"] == "POST" for r in recs))

    def test_stalled_client_stream_stalls_alone(self):
        be = H2Backend("flow").start()
        self.addCleanup(be.stop)
        host = self.route(be.addr, "flow")
        c = self.client()
        big = c.request(host, "/big?bytes=%d" % (8 * MIB))
        c.stalled.add(big)      # this client stops reading that stream
        c.wait(lambda: c.streams[big].received >= 60000, "the stalled stream's first window")
        # Another stream of the same client connection, over the same backend session.
        r = c.get(host, "/big?bytes=%d" % (4 * MIB), timeout=60)
        self.assertEqual((r.status, r.received), (200, 4 * MIB))
        v, code, _, body = self.curl(host, "/big?bytes=%d" % MIB, extra=["--http2-prior-knowledge"])
        self.assertEqual((code, len(body)), (200, MIB))
        # The stalled one got little more than the windows and buffers on the way.
        self.assertLess(c.streams[big].received, 1 * MIB)
        c.open_window(big)
        r = c.response(big, timeout=60)
        self.assertEqual((r.status, r.received), (200, 8 * MIB))

    def test_client_cancel_reaches_backend(self):
        host = self.route(self.h2.addr, "cancel")
        c = self.client()
        sid = c.request(host, "/slow?ms=20000&cancel")
        wait_for(lambda: self.h2.records("/slow?ms=20000&cancel"), TIMEOUT,
                 "the request to reach the backend")
        before = len(self.h2.resets)
        c.conn.reset_stream(sid, error_code=NGHTTP2_CANCEL)
        c.flush()
        wait_for(lambda: any(code == NGHTTP2_CANCEL for _, code in self.h2.resets[before:]),
                 TIMEOUT, "RST_STREAM CANCEL at the backend")

    # --- errors

    def test_backend_down_502(self):
        s, addr = closed_port()
        self.addCleanup(s.close)
        host = self.route(addr, "down")
        v, code, _, _ = self.curl(host, "/down")
        self.assertEqual((v, code), ("1.1", 502))
        v, code, _, _ = self.curl(host, "/down", extra=["--http2-prior-knowledge"])
        self.assertEqual((v, code), ("2", 502))

    def test_upgrade_to_h2c_route_502(self):
        host = self.route(self.h2.addr, "upg")
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT) as s:
            s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % host).encode())
            data = b""
            deadline = time.monotonic() + TIMEOUT
            while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        self.assertTrue(data.startswith(b"HTTP/1.1 502"), data[:200])
        self.assertEqual(self.h2.records("/ws"), [])


class H2TlsBackendTest(DaemonTestCase):
    """--proto h2: nghttpd over TLS with a certificate of a test CA."""

    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki, cls.other_pki = Pki(), Pki()
        cert, key, _ = cls.pki.leaf("backend", ["127.0.0.1", "backend.test"])
        cls.docroot = tempfile.mkdtemp(prefix="haloyd-nghttpd-tls-")
        cls.file_body = b"".join(b"tls line %05d\n" % i for i in range(5000))
        with open(os.path.join(cls.docroot, "file.txt"), "wb") as f:
            f.write(cls.file_body)
        cls.port = free_port()
        cls.nghttpd = subprocess.Popen(
            [NGHTTPD, "-a", "127.0.0.1", "-d", cls.docroot, str(cls.port), key, cert],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: connectable(cls.port), TIMEOUT, "nghttpd (TLS) to listen")
        cls.addr = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.nghttpd.terminate()
        cls.nghttpd.wait(TIMEOUT)
        shutil.rmtree(cls.docroot, ignore_errors=True)
        cls.pki.close()
        cls.other_pki.close()
        super().tearDownClass()

    def route(self, *args, label):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, self.addr, "--proto", "h2", *args)
        return host

    def log_since(self):
        return self.daemon.log_text(self._log_mark)

    def test_h2_over_tls_verified(self):
        host = self.route("--backend-ca", self.pki.ca, label="h2tls")
        r = request(self.daemon.port, "/file.txt", host=host)
        self.assertEqual((r.status, r.body), (200, self.file_body))
        c = H2Client(self.daemon.port)
        self.addCleanup(c.close)
        r = c.get(host, "/file.txt")
        self.assertEqual((r.status, bytes(r.data)), (200, self.file_body))
        p = run([H2LOAD, "-n", "300", "-c", "1", "-m", "50", "-H", ":authority: " + host,
                 "http://127.0.0.1:%d/file.txt" % self.daemon.port], timeout=120)
        out = p.stdout.decode("latin-1")
        self.assertIn("300 succeeded, 0 failed, 0 errored, 0 timeout", out, out)
        self.assertIn("status codes: 300 2xx", out, out)

    def test_h2_wrong_ca_refused_with_reason(self):
        host = self.route("--backend-ca", self.other_pki.ca, label="h2tlsca")
        self.assertEqual(request(self.daemon.port, "/file.txt", host=host).status, 502)
        wait_for(lambda: "TLS handshake failed: certificate verify failed" in self.log_since(),
                 TIMEOUT, "the handshake failure in the log", lambda: self.log_since()[-3000:])
        line = [ln for ln in self.log_since().splitlines() if "TLS handshake failed" in ln][0]
        self.assertIn("(%s)" % self.addr, line)
