"""Integration tests of HTTP/2 for clients (issue 11, first step): the real
haloyd with a plain and an HTTPS listener, real HTTP/1.1 backends
(backend.py and small raw ones below) and real HTTP/2 clients: curl
--http2 (ALPN over TLS) and --http2-prior-knowledge, nghttp and h2load
(nghttp2-client), and python3-h2 for control frame by frame.

Covered: ALPN h2 over TLS with http/1.1 still served to clients offering
only it; prior knowledge on a plain listener; --http2 off; 100 concurrent
streams on one connection (h2load, and python-h2 checking every body);
:authority and Host (neither: 400, also over hand-made frames: padded, split
over CONTINUATION); 414 and 431 at HTTP/1.1's limits; forwarding headers and
hop-by-hop rules; uploads with and without content-length, request and
response trailers, a 64 MiB download; flow control (a stream that is not read
stalls alone, and the worker's memory stays bounded); error pages, port-80
redirects, HSTS, 413 and access entries over HTTP/2; GOAWAY on a graceful stop
and after the keep-alive time; an ACME HTTP-01 challenge answered over h2c
(pebble validates through a relay that asks haloyd with prior knowledge).

Elsewhere: flood hardening (test_http2_abuse), RFC 9113 section 8
(test_http2_conformance), WebSocket over HTTP/2 (test_http2_websocket), 1 GiB
transfers and a stalled upload (test_http2_flow).

Memory bound: while a stream is stalled on a 1 GiB download and another
stream on the same connection reads 128 MiB, the worker's VmRSS grows by
less than RSS_GROWTH_MAX over its value before.
"""
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
import hyperframe.frame

from . import listener
from . import harness
from .backend import Backend, header
from .harness import DaemonTestCase, unique_host, wait_for
from .test_acme import Pebble, acme_user
from .test_datapath import (PATTERN, RSS_GROWTH_MAX, RssWatch, RouteMixin, access_lines,
                            assert_error_page, closed_port, xff)
from .test_tls import HttpsTestCase

CURL = shutil.which("curl") or "/usr/bin/curl"
NGHTTP = shutil.which("nghttp") or "/usr/bin/nghttp"
H2LOAD = shutil.which("h2load") or "/usr/bin/h2load"
TIMEOUT = 10.0
MIB = 1 << 20
GIB = 1 << 30
T_LO, T_HI = 0.9, 6.0           # a 1 s timeout fires in this window (ASan margin)
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_GOAWAY = 0x7


def run(cmd, timeout=120, input=None):
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not end within %d s" % (" ".join(cmd), timeout))


def pattern_sha256(n):
    """The SHA-256 of what backend.py's /big?bytes=n sends."""
    h = hashlib.sha256()
    block = PATTERN * (MIB // len(PATTERN))
    while n > 0:
        k = min(n, len(block))
        h.update(block[:k])
        n -= k
    return h.hexdigest()


def alpn_ctx(protocols):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if protocols:
        ctx.set_alpn_protocols(protocols)
    return ctx


# --- a python-h2 client

class Stream:
    def __init__(self, sid):
        self.id = sid
        self.headers = None     # the final response head, [(name, value)]
        self.interim = []
        self.trailers = None
        self.data = bytearray()
        self.received = 0       # DATA bytes, kept or not
        self.unacked = 0        # flow-controlled bytes not given back to the stream's window
        self.ended = False
        self.reset = None       # the RST_STREAM error code
        self.keep = True        # keep DATA bytes in .data
        self.sha = hashlib.sha256()
        self.t_end = None

    @property
    def status(self):
        return int(self.header(":status")) if self.headers else None

    def header(self, name):
        for k, v in self.headers or ():
            if k == name:
                return v
        return None

    def headers_named(self, name):
        return [v for k, v in self.headers or () if k == name]

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return "<stream %d %r ended=%s reset=%s data=%r>" % (
            self.id, self.headers, self.ended, self.reset, bytes(self.data[:200]))


class H2Client:
    """An HTTP/2 client connection (prior knowledge, or TLS with ALPN h2).

    DATA is acknowledged as it arrives (stream and connection windows) except
    on streams in .stalled, whose bytes open the connection's window only, as
    a client that stopped reading one stream does. With hold_goaway, GOAWAY
    frames are kept aside (.goaways) instead of reaching h2, so the client can
    go on using the connection after one as a misbehaving peer would.
    """

    def __init__(self, port, tls=False, sni=None, validate=True, hold_goaway=False,
                 timeout=TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = alpn_ctx(["h2"]).wrap_socket(self.sock, server_hostname=sni)
            if self.sock.selected_alpn_protocol() != "h2":
                raise AssertionError("ALPN chose %r" % self.sock.selected_alpn_protocol())
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=validate,
                                        normalize_outbound_headers=validate)
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.initiate_connection()
        self.scheme = "https" if tls else "http"
        self.streams = {}
        self.stalled = set()
        self.hold_goaway = hold_goaway
        self.goaways = []       # (last_stream_id, error_code)
        self.terminated = None  # h2's ConnectionTerminated
        self.eof = False
        self._frames = bytearray()
        self.flush()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    # --- requests

    def request(self, host, path="/", method="GET", extra=(), body=None, end=True,
                authority=True, pseudo=None):
        """Opens a stream; returns its id. body is sent (flow-controlled) when given."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = pseudo if pseudo is not None else [(":method", method), (":scheme", self.scheme)]
        if pseudo is None:
            if authority:
                hdrs.append((":authority", host))
            hdrs.append((":path", path))
        hdrs += list(extra)
        self.streams[sid] = Stream(sid)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=end)
        return sid

    def send_body(self, sid, body, end=True):
        view = memoryview(body)
        while len(view) > 0:
            def window():
                return min(self.conn.local_flow_control_window(sid),
                           self.conn.max_outbound_frame_size)
            n = self.wait(window, "the server to open stream %d's window" % sid,
                          fail_on_done=sid)
            n = min(n, len(view))
            self.conn.send_data(sid, view[:n].tobytes())
            self.flush()
            view = view[n:]
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def get(self, host, path="/", timeout=None, **kw):
        """One whole request: the finished Stream."""
        sid = self.request(host, path, **kw)
        return self.response(sid, timeout=timeout)

    def response(self, sid, timeout=None):
        self.wait(lambda: self.streams[sid].done, "stream %d to end" % sid, timeout=timeout)
        return self.streams[sid]

    # --- receiving

    def pump(self, timeout):
        """Reads once (up to timeout seconds) and handles what came."""
        if self.eof:
            return
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r and not (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return
        self.feed(data)

    def feed(self, data):
        if not self.hold_goaway:
            self.handle(self.conn.receive_data(data))
            self.flush()
            return
        self._frames += data
        while len(self._frames) >= 9:
            n = 9 + int.from_bytes(self._frames[:3], "big")
            if len(self._frames) < n:
                break
            frame = bytes(self._frames[:n])
            del self._frames[:n]
            if frame[3] == FRAME_GOAWAY:
                self.goaways.append((int.from_bytes(frame[9:13], "big") & 0x7fffffff,
                                     int.from_bytes(frame[13:17], "big")))
            else:
                self.handle(self.conn.receive_data(frame))
        self.flush()

    def handle(self, events):
        for ev in events:
            st = self.streams.get(getattr(ev, "stream_id", None) or 0)
            if isinstance(ev, h2.events.ResponseReceived):
                st.headers = ev.headers
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                st.interim.append(ev.headers)
            elif isinstance(ev, h2.events.TrailersReceived):
                st.trailers = ev.headers
            elif isinstance(ev, h2.events.DataReceived):
                if st is not None:
                    st.received += len(ev.data)
                    st.sha.update(ev.data)
                    if st.keep:
                        st.data += ev.data
                n = ev.flow_controlled_length
                if n:
                    if ev.stream_id in self.stalled:
                        self.conn.increment_flow_control_window(n)
                        if st is not None:
                            st.unacked += n
                    else:
                        try:
                            self.conn.acknowledge_received_data(n, ev.stream_id)
                        except h2.exceptions.StreamClosedError:
                            pass
            elif isinstance(ev, h2.events.StreamEnded):
                if st is not None:
                    st.ended = True
                    st.t_end = time.monotonic()
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st.reset = ev.error_code
            elif isinstance(ev, h2.events.PingAckReceived):
                self.pong = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev

    def open_window(self, sid):
        """The client reads a stalled stream again: its window opens."""
        self.stalled.discard(sid)
        st = self.streams[sid]
        if st.unacked:
            self.conn.increment_flow_control_window(st.unacked, stream_id=sid)
            st.unacked = 0
        self.flush()

    def wait(self, pred, what, timeout=None, fail_on_done=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            v = pred()
            if v:
                return v
            if fail_on_done is not None and self.streams[fail_on_done].done:
                raise AssertionError("stream %d ended while waiting for %s: %r"
                                     % (fail_on_done, what, self.streams[fail_on_done]))
            if self.eof:
                raise AssertionError("the server closed the connection while waiting for %s "
                                     "(GOAWAY: %r)" % (what, self.terminated or self.goaways))
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %.1f s waiting for %s"
                                     % (timeout or self.timeout, what))
            self.pump(min(left, 0.2))

    def settle(self):
        """A PING round trip: the server has handled all we sent (our SETTINGS ack too)."""
        self.pong = False
        self.conn.ping(b"settle!!")
        self.flush()
        self.wait(lambda: self.pong, "the answer to a PING")

    def wait_eof(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the server kept the connection open %.1f s" % timeout)
            self.pump(min(left, 0.2))


class TrailerBackend:
    """A raw HTTP/1.1 backend that reads a request body (Content-Length or
    chunked with trailer fields), records head, body and trailers, and
    answers 200 with a JSON summary."""

    def __init__(self):
        self.ls = listener.listen(16)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.records = []
        self.cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            c.settimeout(30)
            while True:
                line = f.readline(65536)
                if not line:
                    return
                head = [line.rstrip(b"\r\n").decode("latin-1")]
                fields = []
                while True:
                    ln = f.readline(65536).rstrip(b"\r\n")
                    if not ln:
                        break
                    k, v = ln.decode("latin-1").split(":", 1)
                    fields.append((k.strip(), v.strip()))
                low = {k.lower(): v for k, v in fields}
                body, trailers = bytearray(), []
                if "chunked" in low.get("transfer-encoding", "").lower():
                    while True:
                        size = int(f.readline(1024).split(b";")[0].strip(), 16)
                        if size == 0:
                            while True:
                                ln = f.readline(65536).rstrip(b"\r\n")
                                if not ln:
                                    break
                                k, v = ln.decode("latin-1").split(":", 1)
                                trailers.append((k.strip(), v.strip()))
                            break
                        body += f.read(size)
                        f.readline(16)
                else:
                    body += f.read(int(low.get("content-length", "0")))
                rec = {"line": head[0], "headers": fields, "body": bytes(body),
                       "trailers": trailers}
                with self.cond:
                    self.records.append(rec)
                    self.cond.notify_all()
                out = json.dumps({"bytes": len(body), "trailers": trailers}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        except (OSError, ValueError):
            pass
        finally:
            f.close()
            c.close()

    def close(self):
        self.ls.close()


class RawH2:
    """Frames written by hand (hyperframe, hpack) on a prior-knowledge connection,
    and the server's frames read back per stream: status, body, END_STREAM, the
    RST_STREAM code and whether it came after END_STREAM."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.enc, self.dec = hpack.Encoder(), hpack.Decoder()
        self.streams = {}
        self.goaway = None
        self.eof = False
        self._buf = b""
        self.sock.sendall(H2_PREFACE + hyperframe.frame.SettingsFrame(0).serialize())

    def close(self):
        self.sock.close()

    def block(self, fields):
        return self.enc.encode(fields)

    def send(self, *frames):
        for f in frames:
            self.streams.setdefault(f.stream_id, {"headers": None, "data": b"", "ended": False,
                                                  "reset": None, "reset_after_end": None})
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def _frame(self, f):
        st = self.streams.get(f.stream_id)
        if isinstance(f, hyperframe.frame.SettingsFrame) and "ACK" not in f.flags:
            self.sock.sendall(hyperframe.frame.SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, hyperframe.frame.GoAwayFrame):
            self.goaway = f.error_code
        elif isinstance(f, hyperframe.frame.HeadersFrame):
            st["headers"] = [(k.decode() if isinstance(k, bytes) else k,
                              v.decode() if isinstance(v, bytes) else v)
                             for k, v in self.dec.decode(f.data)]
        elif isinstance(f, hyperframe.frame.DataFrame):
            st["data"] += f.data
        elif isinstance(f, hyperframe.frame.RstStreamFrame):
            st["reset"], st["reset_after_end"] = f.error_code, st["ended"]
        if st is not None and "END_STREAM" in f.flags:
            st["ended"] = True

    def wait(self, pred, what):
        deadline = time.monotonic() + TIMEOUT
        while not pred():
            if self.eof or time.monotonic() > deadline:
                raise AssertionError("waiting for %s: %s (streams %r, GOAWAY %r)" % (
                    what, "EOF" if self.eof else "timed out", self.streams, self.goaway))
            r, _, _ = select.select([self.sock], [], [], 0.2)
            if not r:
                continue
            d = self.sock.recv(1 << 16)
            if not d:
                self.eof = True
                continue
            self._buf += d
            while len(self._buf) >= 9:
                f, n = hyperframe.frame.Frame.parse_frame_header(memoryview(self._buf[:9]))
                if len(self._buf) < 9 + n:
                    break
                f.parse_body(memoryview(self._buf[9:9 + n]))
                self._buf = self._buf[9 + n:]
                self._frame(f)

    def status(self, sid):
        return int(dict(self.streams[sid]["headers"])[":status"])


# --- the suite

class Http2Mixin(RouteMixin):
    """Helpers for a daemon with a plain listener (daemon.port) and an HTTPS one."""

    def client(self, tls=False, **kw):
        c = H2Client(self.https_port if tls else self.daemon.port, tls=tls, **kw)
        self.addCleanup(c.close)
        return c

    def curl(self, url_host, path="/", tls=True, extra=(), port=None, timeout=60):
        """curl; returns (http version, status, headers, body bytes)."""
        port = port or (self.https_port if tls else self.daemon.port)
        fd, out = tempfile.mkstemp(prefix="haloyd-h2-")
        os.close(fd)
        self.addCleanup(os.unlink, out)
        scheme = "https" if tls else "http"
        cmd = [CURL, "-sS", "-k", "--max-time", str(timeout), "-o", out, "-D", "-",
               "-w", "\n%{http_version} %{http_code}",
               "--resolve", "%s:%d:127.0.0.1" % (url_host, port)] + list(extra)
        cmd.append("%s://%s:%d%s" % (scheme, url_host, port, path))
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
            body = f.read()
        return version, int(code), headers, body


class Http2Test(Http2Mixin, HttpsTestCase):
    WORKERS = 2
    BACKEND = "h2"

    def cert(self, host):
        cert, key, _ = self.pki.leaf(host, [host])
        self.daemon.ctl_ok("cert", "import", host, "--cert", cert, "--key", key)

    # --- negotiation

    def test_alpn_h2_over_tls_and_http11_still_served(self):
        host = self.route(self.be.addr, label="alpn")
        self.cert(host)
        # curl, verifying the certificate: ALPN h2.
        p = run([CURL, "-sS", "--http2", "--max-time", "10", "--cacert", self.pki.ca,
                 "--resolve", "%s:%d:127.0.0.1" % (host, self.https_port),
                 "-w", "\n%{http_version} %{http_code}",
                 "https://%s:%d/alpn" % (host, self.https_port)])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout, b"backend h2\n\n2 200")
        # python ssl: h2 first wins; offering only http/1.1, or nothing, gets HTTP/1.1.
        for offer, want in ((["h2", "http/1.1"], "h2"), (["http/1.1", "h2"], "h2"),
                            (["http/1.1"], "http/1.1"), (None, None)):
            s = alpn_ctx(offer).wrap_socket(
                socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT),
                server_hostname=host)
            try:
                self.assertEqual(s.selected_alpn_protocol(), want, offer)
                if want != "h2":
                    s.sendall(b"GET /h1-alpn HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                              % host.encode())
                    got = b""
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        got += b
                    self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:200])
                    self.assertTrue(got.endswith(b"backend h2\n"), got[-200:])
            finally:
                s.close()
        for version in ("--http1.1", "--http2"):
            v, code, _, body = self.curl(host, "/curl" + version, extra=[version])
            self.assertEqual((v, code, body), ("1.1" if version == "--http1.1" else "2", 200,
                                               b"backend h2\n"))
        # nghttp over TLS.
        p = run([NGHTTP, "-H", ":authority: " + host,
                 "https://127.0.0.1:%d/nghttp-tls" % self.https_port], timeout=30)
        self.assertEqual((p.returncode, p.stdout), (0, b"backend h2\n"), p.stderr.decode())
        # The python-h2 client over TLS.
        c = self.client(tls=True, sni=host)
        r = c.get(host, "/py-tls")
        self.assertEqual((r.status, bytes(r.data)), (200, b"backend h2\n"), r)

    def test_prior_knowledge_plain_listener(self):
        host = self.route(self.be.addr, label="prior")
        v, code, headers, body = self.curl(host, "/pk", tls=False,
                                           extra=["--http2-prior-knowledge"])
        self.assertEqual((v, code, body), ("2", 200, b"backend h2\n"))
        self.assertIn(("x-backend", "h2"), headers)
        p = run([NGHTTP, "-v", "-H", ":authority: " + host,
                 "http://127.0.0.1:%d/nghttp-plain" % self.daemon.port], timeout=30)
        out = p.stdout.decode("latin-1")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertIn(":status: 200", out)
        self.assertIn("backend h2\n", out)
        c = self.client()
        r = c.get(host, "/py-plain")
        self.assertEqual((r.status, bytes(r.data)), (200, b"backend h2\n"), r)
        # The same listener still speaks HTTP/1.1 to everyone else.
        r = self.daemon.get(host, "/h1-plain")
        self.assertEqual((r.status, r.body), (200, b"backend h2\n"))
        v, code, _, _ = self.curl(host, "/h1-curl", tls=False)
        self.assertEqual((v, code), ("1.1", 200))

    # --- 100 streams on one connection

    def test_h2load_100_streams_one_connection(self):
        host = self.route(self.be.addr, label="h2load")
        for scheme, port in (("http", self.daemon.port), ("https", self.https_port)):
            path = "/h2load-" + scheme
            p = run([H2LOAD, "-n", "2000", "-c", "1", "-m", "100", "-H", ":authority: " + host,
                     "%s://127.0.0.1:%d%s" % (scheme, port, path)], timeout=120)
            out = p.stdout.decode("latin-1")
            self.assertEqual(p.returncode, 0, out + p.stderr.decode())
            self.assertIn("2000 succeeded, 0 failed, 0 errored, 0 timeout", out, out)
            self.assertIn("status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx", out, out)
            self.assertRegex(out, r"Application protocol: h2c?\b")
            self.assertEqual(len(self.be.records(path)), 2000)

    def test_100_concurrent_streams_every_body_checked(self):
        host = self.route(self.be.addr, label="streams")
        c = self.client(tls=True, sni=host)
        c.wait(lambda: c.conn.remote_settings.max_concurrent_streams == 100,
               "the server's SETTINGS (max concurrent streams 100)")
        t0 = time.monotonic()
        sids = {c.request(host, "/path?ms=300&i=%d" % i): "/path?ms=300&i=%d" % i
                for i in range(100)}
        for sid in sids:
            c.response(sid, timeout=60)
        took = time.monotonic() - t0
        for sid, path in sids.items():
            r = c.streams[sid]
            self.assertEqual((r.status, bytes(r.data), r.reset), (200, path.encode(), None), r)
        # 100 answers of 300 ms each, one after the other, would take 30 s.
        self.assertLess(took, 15, "100 streams took %.1f s: not concurrent" % took)
        seen = [x["path"] for x in self.be.records() if x["path"] in sids.values()]
        self.assertEqual(sorted(seen), sorted(sids.values()), "each stream reached the backend")
        # The connection is still usable.
        r = c.get(host, "/after-100")
        self.assertEqual(r.status, 200)

    # --- :authority and Host

    def test_authority_and_host(self):
        host = self.route(self.be.addr, label="auth")
        other = self.route(self.be.addr, label="auth-other")
        c = self.client(validate=False)
        r = c.get(host, "/authority-only")
        self.assertEqual((r.status, bytes(r.data)), (200, b"backend h2\n"), r)
        self.assertEqual(header(self.be.wait_request("/authority-only"), "Host"), [host])
        r = c.get(host, "/host-only", authority=False, extra=[("host", host)])
        self.assertEqual((r.status, bytes(r.data)), (200, b"backend h2\n"), r)
        self.assertEqual(header(self.be.wait_request("/host-only"), "Host"), [host])
        r = c.get(host, "/both-same", extra=[("host", host)])
        self.assertEqual(r.status, 200, r)
        # Port and case do not make a difference.
        r = c.get(host.upper() + ":%d" % self.daemon.port, "/authority-port")
        self.assertEqual(r.status, 200, r)
        r = c.get(host, "/both-different", extra=[("host", other)])
        assert_error_page(self, r.status, r.headers, bytes(r.data), 400)
        # Neither: RFC 9113 8.3.1 lets a client send it; nghttp2 would reset it, haloyd
        # answers 400 first, as HTTP/1.1 answers a request without Host.
        r = c.get(host, "/neither", pseudo=[(":method", "GET"), (":scheme", "http"),
                                            (":path", "/neither")])
        assert_error_page(self, r.status, r.headers, bytes(r.data), 400)
        tc = self.client(tls=True, sni=host, validate=False)    # and over TLS
        r = tc.get(host, "/neither", pseudo=[(":method", "GET"), (":scheme", "https"),
                                             (":path", "/neither")])
        assert_error_page(self, r.status, r.headers, bytes(r.data), 400)
        self.assertEqual(self.be.records("/both-different") + self.be.records("/neither"), [])
        r = c.get(host, "/after-400s")
        self.assertEqual(r.status, 200, "the connection serves on after the 400s")

    def test_no_authority_nor_host_400_raw_frames(self):
        # Frames by hand, as a client may send them (RFC 9113 8.3.1 allows a request without
        # :authority): :method, :scheme and :path only, in every shape a block can take.
        be = self.fresh_backend("noauth")
        host = self.route(be.addr, label="noauth")
        c = RawH2(self.daemon.port)
        self.addCleanup(c.close)
        HF, CF, DF = (hyperframe.frame.HeadersFrame, hyperframe.frame.ContinuationFrame,
                      hyperframe.frame.DataFrame)

        def pseudo(path, method="GET"):
            return [(":method", method), (":scheme", "http"), (":path", path)]
        plain = HF(1, c.block(pseudo("/plain")), flags=["END_HEADERS", "END_STREAM"])
        padded = HF(3, c.block(pseudo("/padded") + [("x-a", "1")]),
                    flags=["END_HEADERS", "END_STREAM", "PADDED"], pad_length=7)
        split = c.block(pseudo("/split") + [("x-b", "2" * 100)])
        first = HF(5, split[:10], flags=["END_STREAM"])
        cont = CF(5, split[10:], flags=["END_HEADERS"])
        post = HF(7, c.block(pseudo("/post", "POST")), flags=["END_HEADERS"])
        body = DF(7, b"x" * 1000)
        c.send(plain)                       # alone in its read
        c.wait(lambda: c.streams[1]["ended"], "the answer on stream 1")
        c.send(padded, first, cont, post, body)   # together in one write
        c.wait(lambda: all(c.streams[i]["ended"] for i in (3, 5, 7)), "the answers")
        for sid in (1, 3, 5, 7):
            st = c.streams[sid]
            assert_error_page(self, c.status(sid), st["headers"], st["data"], 400)
            # nghttp2 resets the stream once it read the block: only after our END_STREAM.
            self.assertIn(st["reset_after_end"], (None, True), st)
        # Past our limits as well (101 fields): the pauses stop at the limit, and
        # nghttp2's reset is the answer.
        many = HF(9, c.block(pseudo("/many") + [("x-f%d" % i, "v") for i in range(101)]),
                  flags=["END_HEADERS", "END_STREAM"])
        c.send(many)
        c.wait(lambda: c.streams[9]["reset"] is not None, "the reset of stream 9")
        self.assertEqual((c.streams[9]["headers"], c.streams[9]["reset"]),
                         (None, h2.errors.ErrorCodes.PROTOCOL_ERROR))
        # The connection serves on; nothing reached the backend but the last request.
        ok = HF(11, c.block(pseudo("/after") + [(":authority", host)]),
                flags=["END_HEADERS", "END_STREAM"])
        c.send(ok)
        c.wait(lambda: c.streams[11]["ended"], "the answer on stream 11")
        self.assertEqual((c.status(11), c.streams[11]["data"]), (200, be.hello()))
        self.assertEqual([r["path"] for r in be.records()], ["/after"])
        self.assertIsNone(c.goaway)
        # The answers are logged like any local one.
        got = wait_for(lambda: [e for e in access_lines(self.daemon.log_text(), "-")
                                if e["PATH"] in ("/plain", "/split") and e["STATUS"] == "400"],
                       10, "the 400s' access entries", self.daemon.log_tail)
        self.assertEqual({e["PROTO"] for e in got}, {"HTTP/2.0"})

    def test_431_and_414_same_limits_as_http11(self):
        # http1.c's limits (message.h): request-target 8 KiB (414), head 16 KiB and 100
        # fields (431). Over HTTP/2 the same requests get the same answers, and the
        # connection serves on; a block past 4 x 16 KiB decoded is an attack (GOAWAY).
        be = TrailerBackend()   # it takes any number of fields (http.server stops at 100)
        self.addCleanup(be.close)
        host = self.route(be.addr, label="limits")
        c = self.client(validate=False)
        many = [("x-f%d" % i, "v") for i in range(101)]
        crumbs = [("cookie", "c%d=v" % i) for i in range(100)]
        joined = ("Cookie", "; ".join(v for _, v in crumbs))
        # (path, fields, status); http.client adds Host and Accept-Encoding to the HTTP/1.1
        # request, so it gets two fields fewer of ours to count as many.
        cases = [
            ("/" + "p" * 8191, [], 200),                            # target at the limit
            ("/" + "p" * 8192, [], 414),                            # one byte past it
            ("/big-field", [("x-big", "b" * 15000)], 200),
            ("/big-field", [("x-big", "b" * 17000)], 431),
            ("/many", many[:100], 200),                             # 100 fields
            ("/many", many, 431),                                   # 101
            ("/sum", [("x-s%d" % i, "s" * 7000) for i in range(5)], 431),
            # Cookie crumbs (RFC 9113 8.2.3) are the one Cookie field HTTP/1.1 carries.
            ("/crumbs", crumbs + many[:99], 200),
        ]
        for path, extra, want in cases:
            r = c.get(host, path, extra=extra)
            if want == 200:
                self.assertEqual(r.status, 200, path[:40])
                got = be.records[-1]["headers"]
                self.assertEqual([f for f in got if f[0].startswith("x-")],
                                 [f for f in extra if f[0] != "cookie"], "every field reached it")
                self.assertEqual([(k.lower(), v) for k, v in got if k.lower() == "cookie"],
                                 [("cookie", joined[1])] if path == "/crumbs" else [])
            else:
                assert_error_page(self, r.status, r.headers, bytes(r.data), want)
            # HTTP/1.1 answers the same request the same way.
            h1 = extra[2:] if path == "/many" else extra
            if path == "/crumbs":
                h1 = [joined] + many[:97]
            r1 = self.daemon.get(host, path, headers=dict(h1))
            self.assertEqual(r1.status, want, "HTTP/1.1 %s: %d" % (path[:40], r1.status))
        self.assertIsNone(c.terminated)
        self.assertEqual(c.get(host, "/after-limits").status, 200)
        # Past the hard bound (an HPACK bomb's size; test_http2_abuse has the bomb itself).
        sid = c.request(host, "/huge", extra=[("x-h%d" % i, "h" * 15000) for i in range(5)])
        c.wait(lambda: c.eof or c.terminated, "GOAWAY for a 75 KB header block", timeout=10)
        self.assertEqual(c.terminated.error_code, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertIsNone(c.streams[sid].headers)

    # --- forwarding rules

    def test_forwarded_headers_and_hop_by_hop(self):
        host = self.route(self.be.addr, label="fwd")
        c = self.client(tls=True, sni=host)
        r = c.get(host, "/fwd", extra=[
            ("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil.example.com"), ("x-kept", "stays"),
            ("te", "trailers"), ("cookie", "a=1"), ("cookie", "b=2")])
        self.assertEqual(r.status, 200, r)
        rec = self.be.wait_request("/fwd")
        self.assertEqual(header(rec, "Host"), [host])
        self.assertEqual(xff(rec), ["127.0.0.1"], "X-Forwarded-For is replaced")
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header(rec, "X-Forwarded-Host"), [host])
        self.assertEqual(header(rec, "X-Kept"), ["stays"])
        self.assertEqual(header(rec, "Cookie"), ["a=1; b=2"], "cookies joined for HTTP/1.1")
        self.assertEqual([v for v in header(rec, "TE") if "trailers" in v.lower()], ["trailers"])
        rid = header(rec, "X-Request-Id")
        self.assertEqual(len(rid), 1)
        self.assertRegex(rid[0], r"^[0-9A-Za-z-]{8,}$")
        for name in ("Transfer-Encoding", "Content-Length", "Upgrade", "Keep-Alive"):
            self.assertEqual(header(rec, name), [], "%s reached the backend" % name)
        # A request id the client sent is kept; plain HTTP/2 says http.
        c2 = self.client()
        r = c2.get(host, "/fwd-rid", extra=[("x-request-id", "client-id-12345")])
        self.assertEqual(r.status, 200)
        rec = self.be.wait_request("/fwd-rid")
        self.assertEqual(header(rec, "X-Request-Id"), ["client-id-12345"])
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["http"])

    def test_hop_by_hop_removed_from_response(self):
        srv = listener.listen(4)
        self.addCleanup(srv.close)

        def answer():
            c, _ = listener.accept(srv)
            with c:
                c.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: X-Resp-Hop, keep-alive\r\nX-Resp-Hop: secret\r\n"
                          b"Keep-Alive: max=99\r\nProxy-Connection: keep-alive\r\n"
                          b"Upgrade: nothing\r\nX-Resp-Kept: yes\r\n\r\n3\r\nok\n\r\n0\r\n\r\n")
                try:
                    c.recv(1)
                except OSError:
                    pass
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        host = self.route("127.0.0.1:%d" % srv.getsockname()[1], label="resp-hop")
        # h2 itself refuses connection-specific fields in a response (validate_inbound_headers).
        c = self.client()
        r = c.get(host, "/resp-hop")
        self.assertEqual((r.status, bytes(r.data), r.reset), (200, b"ok\n", None), r)
        names = [k for k, _ in r.headers]
        for name in ("connection", "x-resp-hop", "keep-alive", "proxy-connection",
                     "transfer-encoding", "upgrade"):
            self.assertNotIn(name, names)
        self.assertEqual(r.headers_named("x-resp-kept"), ["yes"])
        self.assertIsNone(c.terminated)
        t.join(10)

    # --- bodies

    def test_upload_with_and_without_content_length(self):
        host = self.route(self.be.addr, label="upload")
        body = os.urandom(3 * MIB + 12345)
        digest = hashlib.sha256(body).hexdigest()
        # curl over TLS: a content-length.
        fd, src = tempfile.mkstemp(prefix="haloyd-h2-up-")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        self.addCleanup(os.unlink, src)
        v, code, _, got = self.curl(host, "/echo?curl", extra=[
            "--http2", "--data-binary", "@" + src, "-H", "Content-Type: application/octet-stream"])
        self.assertEqual((v, code), ("2", 200))
        self.assertEqual(hashlib.sha256(got).hexdigest(), digest, "the echo came back intact")
        rec = self.be.wait_request("/echo?curl")
        self.assertEqual(hashlib.sha256(rec["body"]).hexdigest(), digest)
        self.assertEqual(header(rec, "Content-Length"), [str(len(body))])
        self.assertEqual(header(rec, "Transfer-Encoding"), [])
        # python-h2, no content-length: chunked to the backend.
        c = self.client()
        sid = c.request(host, "/echo?h2", method="POST", body=body,
                        extra=[("content-type", "application/octet-stream")])
        r = c.response(sid, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(hashlib.sha256(r.data).hexdigest(), digest)
        rec = self.be.wait_request("/echo?h2")
        self.assertEqual(hashlib.sha256(rec["body"]).hexdigest(), digest)
        self.assertEqual(header(rec, "Content-Length"), [])
        self.assertEqual([v.lower() for v in header(rec, "Transfer-Encoding")], ["chunked"])
        # And with content-length from python-h2 on the same connection.
        sid = c.request(host, "/echo?h2cl", method="POST", body=body,
                        extra=[("content-length", str(len(body)))])
        r = c.response(sid, timeout=60)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(hashlib.sha256(r.data).hexdigest(), digest)
        rec = self.be.wait_request("/echo?h2cl")
        self.assertEqual(header(rec, "Content-Length"), [str(len(body))])

    def test_download_64mib_intact(self):
        host = self.route(self.be.addr, label="down")
        n = 64 * MIB
        v, code, headers, body = self.curl(host, "/big?bytes=%d" % n, extra=["--http2"])
        self.assertEqual((v, code, len(body)), ("2", 200, n))
        self.assertIn(("content-length", str(n)), headers)
        self.assertEqual(hashlib.sha256(body).hexdigest(), pattern_sha256(n))
        # python-h2 on the plain listener, the bytes hashed as they come.
        c = self.client(timeout=60)
        sid = c.request(host, "/big?bytes=%d" % (16 * MIB))
        c.streams[sid].keep = False
        r = c.response(sid)
        self.assertEqual((r.status, r.received), (200, 16 * MIB), r)
        self.assertEqual(r.sha.hexdigest(), pattern_sha256(16 * MIB))

    def test_response_and_request_trailers(self):
        host = self.route(self.be.addr, label="trl")
        c = self.client(tls=True, sni=host)
        r = c.get(host, "/trailers", extra=[("te", "trailers")])
        self.assertEqual((r.status, bytes(r.data)), (200, b"body with trailers\n"), r)
        self.assertIsNotNone(r.trailers, "no trailers: %r" % r)
        self.assertIn(("x-checksum", "abc123"), r.trailers)
        self.assertIn(("x-backend-trailer", "h2"), r.trailers)
        # nghttp shows them too.
        p = run([NGHTTP, "-v", "-H", ":authority: " + host,
                 "http://127.0.0.1:%d/trailers" % self.daemon.port], timeout=30)
        out = p.stdout.decode("latin-1")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("x-checksum: abc123", out)
        # Request trailers reach the backend (the body goes chunked).
        tb = TrailerBackend()
        self.addCleanup(tb.close)
        thost = self.route(tb.addr, label="req-trl")
        sid = c.request(thost, "/req-trailers", method="POST", end=False,
                        extra=[("te", "trailers")])
        c.send_body(sid, b"x" * 100000, end=False)
        c.conn.send_headers(sid, [("x-req-checksum", "sum-42"), ("x-other", "two")],
                            end_stream=True)
        c.flush()
        r = c.response(sid)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(bytes(r.data)),
                         {"bytes": 100000, "trailers": [["x-req-checksum", "sum-42"],
                                                        ["x-other", "two"]]})
        rec = tb.records[-1]
        self.assertEqual(rec["body"], b"x" * 100000)

    # --- flow control

    def test_flow_control_stalled_stream_alone_rss_bounded(self):
        be = self.fresh_backend("flow")
        host = self.route(be.addr, label="flow")
        for _ in range(4):  # the workers' buffers are warm before measuring
            self.assertEqual(self.curl(host, "/big?bytes=%d" % (4 * MIB),
                                       extra=["--http2"])[1], 200)
        watch = RssWatch(self.worker_pids())
        c = self.client(timeout=60)
        big = "/big?bytes=%d" % GIB
        stalled = c.request(host, big)
        c.stalled.add(stalled)
        c.streams[stalled].keep = False
        rec = be.wait_request(big)
        c.wait(lambda: c.streams[stalled].received >= 65535,
               "the stalled stream's first window of DATA")

        def stable():  # the backend stops: nothing takes its bytes
            last = rec.get("sent", 0)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                c.pump(0.1)
            return rec.get("sent", 0) == last and last
        sent = c.wait(stable, "the backend of the stalled stream to stop", timeout=30)
        self.assertLess(sent, 64 * MIB, "the proxy took %d MiB for a stream nobody reads"
                        % (sent >> 20))
        self.assertEqual(c.streams[stalled].received, 65535,
                         "the client's stream window was respected")
        # Other streams on the same connection keep getting answers, promptly.
        for i in range(20):
            t0 = time.monotonic()
            r = c.get(host, "/other-%d" % i)
            self.assertEqual((r.status, bytes(r.data)), (200, be.hello()), r)
            self.assertLess(time.monotonic() - t0, 2.0, "request %d waited" % i)
        # A large download beside the stalled stream.
        sid = c.request(host, "/big?bytes=%d" % (128 * MIB))
        c.streams[sid].keep = False
        r = c.response(sid)
        self.assertEqual((r.status, r.received), (200, 128 * MIB))
        self.assertEqual(r.sha.hexdigest(), pattern_sha256(128 * MIB))
        self.assertLess(rec.get("sent", 0), 64 * MIB)
        growth = watch.stop()
        self.assertLess(growth, RSS_GROWTH_MAX, "a worker's RSS grew by %d MiB"
                        % (growth >> 20))
        # Reading again opens the flow: more of the 1 GiB comes, in order.
        before = c.streams[stalled].received
        c.open_window(stalled)
        c.wait(lambda: c.streams[stalled].received >= before + 8 * MIB,
               "8 MiB more on the stream read again", timeout=60)
        c.conn.reset_stream(stalled, h2.errors.ErrorCodes.CANCEL)
        c.flush()
        r = c.get(host, "/after-cancel")
        self.assertEqual(r.status, 200)

    # --- local answers

    def test_error_pages_404_502(self):
        v, code, headers, body = self.curl(unique_host("nowhere"), "/", extra=["--http2"])
        self.assertEqual(v, "2")
        assert_error_page(self, code, headers, body, 404)
        dead, addr = closed_port()
        self.addCleanup(dead.close)
        host = self.route(addr, label="dead")
        v, code, headers, body = self.curl(host, "/", tls=False,
                                           extra=["--http2-prior-knowledge"])
        self.assertEqual(v, "2")
        assert_error_page(self, code, headers, body, 502)
        c = self.client()
        r = c.get(host, "/py-502")
        assert_error_page(self, r.status, r.headers, bytes(r.data), 502)
        r = c.get(unique_host("nowhere"), "/py-404", method="HEAD")
        self.assertEqual((r.status, bytes(r.data)), (404, b""))

    def test_redirect_and_hsts(self):
        host = self.route(self.be.addr, label="redir")
        self.cert(host)
        c = self.client()
        loc = "https://%s:%d/a/b?c=d" % (host, self.https_port)
        r = c.get(host, "/a/b?c=d")
        self.assertEqual((r.status, r.header("location")), (301, loc), r)
        r = c.get(host, "/a/b?c=d", method="POST", body=b"x=1")
        self.assertEqual((r.status, r.header("location")), (308, loc), r)
        r = c.get(host, "/.well-known/acme-challenge/tok123")
        self.assertNotIn(r.status, (301, 308), r)
        # HSTS over h2 (TLS), on backend answers and on error pages; not on plain HTTP.
        tc = self.client(tls=True, sni=host)
        r = tc.get(host, "/hsts")
        self.assertIsNone(r.header("strict-transport-security"))
        self.daemon.ctl_ok("route", "set", host, "--hsts", "on")
        r = tc.get(host, "/hsts")
        self.assertEqual((r.status, r.header("strict-transport-security")),
                         (200, "max-age=31536000"), r)
        r = tc.get(host, "/status?code=404")
        self.assertEqual((r.status, r.header("strict-transport-security")),
                         (404, "max-age=31536000"), r)
        v, code, headers, _ = self.curl(host, "/hsts-curl", extra=["--http2"])
        self.assertEqual((v, code), ("2", 200))
        self.assertIn(("strict-transport-security", "max-age=31536000"), headers)
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "off")
        r = c.get(host, "/plain-after-opt-out")
        self.assertEqual((r.status, r.header("strict-transport-security")), (200, None), r)

    def test_max_body_413(self):
        be = self.fresh_backend("maxbody")
        host = self.route(be.addr, label="maxbody")
        self.daemon.ctl_ok("route", "set", host, "--max-body", "1k")
        c = self.client()
        r = c.get(host, "/echo?cl", method="POST", body=b"a" * 2048,
                  extra=[("content-length", "2048")])
        assert_error_page(self, r.status, r.headers, bytes(r.data), 413)
        self.assertEqual(be.records(), [], "refused before the backend saw the request")
        # Without a content-length the exchange counts (chunked to the backend).
        r = c.get(host, "/echo?nocl", method="POST", body=b"b" * 4096)
        assert_error_page(self, r.status, r.headers, bytes(r.data), 413)
        self.assertEqual([x for x in be.records() if x["body"]], [],
                         "no over-size body reached the backend whole")
        r = c.get(host, "/echo?small", method="POST", body=b"c" * 1000)
        self.assertEqual((r.status, bytes(r.data)), (200, b"c" * 1000), r)

    def test_access_log_proto(self):
        be = self.fresh_backend("log")
        host = self.route(be.addr, label="log")
        mark = self.daemon.log_size()
        c = self.client(tls=True, sni=host)
        for i in range(3):
            self.assertEqual(c.get(host, "/h2log/%d" % i).status, 200)
        self.assertEqual(c.get(host, "/echo", method="POST", body=b"p" * 1234).status, 200)
        self.assertEqual(self.curl(host, "/h2log/curl", tls=False,
                                   extra=["--http2-prior-knowledge"])[1], 200)
        self.assertEqual(self.daemon.get(host, "/h1log").status, 200)
        missing = unique_host("nolog")
        self.assertEqual(c.get(missing, "/absent").status, 404)

        def entries():
            e = access_lines(self.daemon.log_text(mark), host)
            return e if len(e) >= 6 else None
        got = wait_for(entries, 10, "6 access entries for %s" % host, self.daemon.log_tail)
        by_path = {e["PATH"]: e for e in got}
        self.assertEqual(sorted(by_path), sorted(["/h2log/0", "/h2log/1", "/h2log/2", "/echo",
                                                  "/h2log/curl", "/h1log"]))
        for p, e in by_path.items():
            self.assertEqual(e["PROTO"], "HTTP/1.1" if p == "/h1log" else "HTTP/2.0", e["_line"])
            self.assertEqual(e["STATUS"], "200")
            self.assertEqual(e["BACKEND"], be.addr)
        self.assertGreaterEqual(int(by_path["/echo"]["BYTES_IN"]), 1234)
        self.assertGreaterEqual(int(by_path["/echo"]["BYTES_OUT"]), 1234)
        for p in ("/h2log/0", "/echo"):
            self.assertEqual(header(be.records(p)[0], "X-Request-Id"),
                             [by_path[p]["REQUEST_ID"]])
        nf = wait_for(lambda: access_lines(self.daemon.log_text(mark), missing), 10,
                      "the 404's access entry", self.daemon.log_tail)
        self.assertEqual([(e["STATUS"], e["PATH"], e["PROTO"]) for e in nf],
                         [("404", "/absent", "HTTP/2.0")])


class Http2OffTest(Http2Mixin, DaemonTestCase):
    WORKERS = 1

    @classmethod
    def _start_daemon(cls):
        cls.https_port = harness.free_port()
        cls.DAEMON_ARGS = ("--listen-https", "127.0.0.1:%d" % cls.https_port, "--http2", "off")
        super()._start_daemon()

    def test_http2_off(self):
        be = self.backend("off")
        host = self.route(be.addr, label="off")
        # The preface is not HTTP/1.1: 505 (HTTP Version Not Supported), in HTTP/1.1.
        out = harness.raw_request(self.daemon.port, H2_PREFACE)
        self.assertTrue(out.startswith(b"HTTP/1.1 505 "), out[:300])
        # ALPN picks http/1.1 even when h2 comes first.
        s = alpn_ctx(["h2", "http/1.1"]).wrap_socket(
            socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT),
            server_hostname=host)
        try:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        finally:
            s.close()
        v, code, _, body = self.curl(host, "/curl-h2", extra=["--http2"])
        self.assertEqual((v, code, body), ("1.1", 200, b"backend off\n"))
        r = self.daemon.get(host, "/h1")
        self.assertEqual((r.status, r.body), (200, b"backend off\n"))


class Http2KeepaliveTest(Http2Mixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--keepalive-timeout", "1s", "--http2-max-streams", "10")

    https_port = None

    def test_idle_connection_goaway_after_keepalive(self):
        be = self.backend("ka")
        host = self.route(be.addr, label="ka")
        c = self.client()
        r = c.get(host, "/first")
        self.assertEqual(r.status, 200)
        t0 = r.t_end
        self.assertEqual(c.conn.remote_settings.max_concurrent_streams, 10,
                         "--http2-max-streams is advertised")
        c.wait(lambda: c.terminated, "GOAWAY on the idle connection")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, T_LO, "GOAWAY after %.2f s" % took)
        self.assertLess(took, T_HI, "GOAWAY only after %.2f s" % took)
        self.assertEqual(c.terminated.error_code, h2.errors.ErrorCodes.NO_ERROR)
        self.assertEqual(c.terminated.last_stream_id, 1)
        c.wait_eof(5)
        # A stream open longer than the keep-alive time is not cut.
        c = self.client()
        r = c.get(host, "/slow?ms=2500", timeout=15)
        self.assertEqual((r.status, bytes(r.data), c.terminated), (200, be.hello(), None), r)
        # A connection that never opened a stream is closed too, with a GOAWAY.
        c = self.client()
        t0 = time.monotonic()
        c.wait(lambda: c.terminated, "GOAWAY on a connection without streams")
        took = time.monotonic() - t0
        self.assertLess(took, T_HI)
        self.assertEqual(c.terminated.last_stream_id, 0)
        c.wait_eof(5)


class Http2GracefulStopTest(RouteMixin, unittest.TestCase):
    """SIGTERM during HTTP/2 streams: GOAWAY, in-flight streams finish (or the
    stop timeout cuts them), new streams are refused, the master exits 0."""

    def start(self, stop_timeout="10s"):
        self.be = Backend("stop").start()
        self.addCleanup(self.be.stop)
        self.daemon = harness.Daemon(workers=1, stop_timeout=stop_timeout)
        self.addCleanup(self.daemon.close, check=False)
        self.daemon.start()
        return self.route(self.be.addr, label="stop")

    def test_sigterm_goaway_inflight_finishes_new_refused(self):
        host = self.start()
        quiet, busy, idle = (H2Client(self.daemon.port, hold_goaway=True, timeout=20)
                             for _ in range(3))
        for c in (quiet, busy, idle):
            self.addCleanup(c.close)
        self.assertEqual(idle.get(host, "/before-stop").status, 200)
        slow = quiet.request(host, "/slow?ms=2500")     # no byte moves until it answers
        drip = busy.request(host, "/drip?n=30&ms=100")  # a long streaming download
        self.be.wait_request("/slow?ms=2500")
        busy.wait(lambda: b"chunk 0 " in busy.streams[drip].data, "the first chunk")
        for c in (quiet, busy, idle):
            c.settle()  # nothing of theirs is left for the server to read
        t_sig = time.monotonic()
        self.daemon.signal(signal.SIGTERM)
        for name, c in (("busy", busy), ("quiet", quiet), ("idle", idle)):
            c.wait(lambda: c.goaways, "GOAWAY after SIGTERM on the %s connection" % name,
                   timeout=5)
            took = time.monotonic() - t_sig
            self.assertLess(took, 1.0, "GOAWAY on the %s connection after %.2f s" % (name, took))
            self.assertEqual(c.goaways[0][1], 0, "GOAWAY NO_ERROR")
        self.assertGreaterEqual(quiet.goaways[0][0], slow, "the in-flight stream is covered")
        self.assertGreaterEqual(busy.goaways[0][0], drip, "the in-flight stream is covered")
        idle.wait_eof(5)
        # A stream opened after GOAWAY is not served.
        late = quiet.request(host, "/after-goaway")
        quiet.wait(lambda: quiet.streams[slow].done, "the in-flight slow answer")
        busy.wait(lambda: busy.streams[drip].done, "the in-flight download")
        r = quiet.streams[slow]
        self.assertEqual((r.status, r.reset, bytes(r.data)), (200, None, self.be.hello()), r)
        r = busy.streams[drip]
        self.assertEqual((r.status, r.reset), (200, None), r)
        self.assertEqual(bytes(r.data).count(b"chunk "), 30)
        quiet.wait_eof(10)
        busy.wait_eof(10)
        late_st = quiet.streams[late]
        self.assertIsNone(late_st.headers, "a stream opened after GOAWAY was answered")
        self.assertIn(late_st.reset, (None, h2.errors.ErrorCodes.REFUSED_STREAM))
        self.assertEqual(self.be.records("/after-goaway"), [])
        self.assertEqual(self.daemon.wait_exit(20), 0, self.daemon.log_tail())
        self.daemon.check_log()

    def test_sigterm_stream_bounded_by_stop_timeout(self):
        host = self.start(stop_timeout="2s")
        c = H2Client(self.daemon.port, hold_goaway=True, timeout=20)
        self.addCleanup(c.close)
        drip = c.request(host, "/drip?n=200&ms=100")
        c.wait(lambda: b"chunk 0 " in c.streams[drip].data, "the first chunk")
        t_sig = time.monotonic()
        self.daemon.signal(signal.SIGTERM)
        c.wait(lambda: c.goaways, "GOAWAY after SIGTERM")
        c.wait_eof(15)
        took = time.monotonic() - t_sig
        self.assertGreaterEqual(took, 1.5, "cut after %.2f s, before the 2 s stop timeout" % took)
        self.assertLess(took, 8, "cut only after %.2f s" % took)
        self.assertFalse(c.streams[drip].ended, "a 20 s stream could not end within 2 s")
        self.assertEqual(self.daemon.wait_exit(20), 0, self.daemon.log_tail())
        self.daemon.check_log()


class H2cRelay:
    """An HTTP/1.1 server for pebble's HTTP-01 validations that asks haloyd for each
    answer over a prior-knowledge h2c connection (python3-h2) and hands it back; every
    exchange is recorded (host, path, status, body)."""

    def __init__(self):
        self.ls = listener.listen(16)
        self.port = self.ls.getsockname()[1]
        self.target = None      # haloyd's plain port
        self.records = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            try:
                c.settimeout(TIMEOUT)
                data = b""
                while b"\r\n\r\n" not in data:
                    b = c.recv(65536)
                    if not b:
                        return
                    data += b
                lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                path = lines[0].split()[1]
                host = [ln.split(":", 1)[1].strip() for ln in lines[1:]
                        if ln.lower().startswith("host:")][0]
                h2c = H2Client(self.target)
                try:
                    r = h2c.get(host, path)
                finally:
                    h2c.close()
                body = bytes(r.data)
                self.records.append({"host": host, "path": path, "status": r.status,
                                     "body": body})
                c.sendall(b"HTTP/1.1 %d Relayed\r\nContent-Length: %d\r\nConnection: close"
                          b"\r\n\r\n%s" % (r.status, len(body), body))
            except (OSError, AssertionError, IndexError) as e:
                self.records.append({"error": repr(e)})

    def close(self):
        self.ls.close()


class AcmeOverH2cTest(unittest.TestCase):
    """ACME HTTP-01 over HTTP/2 with prior knowledge: pebble's validations reach haloyd's
    plain listener through H2cRelay, so a certificate is issued only if haloyd answered
    the challenge over h2c."""

    def test_http01_challenge_answered_over_h2c(self):
        relay = H2cRelay()
        self.addCleanup(relay.close)
        pebble = Pebble(relay.port).start()     # validations go to the relay's port
        self.addCleanup(pebble.close)
        d = harness.Daemon(1, ["--listen-https", "127.0.0.1:%d" % harness.free_port(),
                               "--acme", "on", "--acme-directory", pebble.directory,
                               "--acme-ca-file", pebble.ca_file, "--acme-email", "ops@example.com",
                               "--acme-user", acme_user(), "--acme-backoff-max", "1h"])
        self.addCleanup(d.close)
        d.start()
        relay.target = d.port
        be = Backend("acme-h2c").start()
        self.addCleanup(be.stop)
        name = unique_host("acme-h2c")
        mark = d.log_size()
        d.ctl_ok("route", "add", name, be.addr)

        def valid():
            rc, out, _ = d.ctl("--json", "cert", "status", name)
            rows = json.loads(out) if rc == 0 else []
            return rows and rows[0]["state"] == "valid"
        wait_for(valid, 60, "a certificate for %s validated over h2c" % name,
                 lambda: "%r\n%s%s" % (relay.records, d.log_tail(), pebble.log_tail()))
        self.assertNotIn("error", [k for r in relay.records for k in r], relay.records)
        chal = [r for r in relay.records if r["path"].startswith("/.well-known/acme-challenge/")]
        self.assertTrue(chal, relay.records)
        for r in chal:
            token = r["path"].rsplit("/", 1)[1]
            self.assertEqual(r["status"], 200, r)
            self.assertRegex(r["body"].decode(), r"^%s\.[A-Za-z0-9_-]{43}$" % re.escape(token))
            self.assertEqual(r["host"].split(":")[0], name)
        lines = access_lines(d.log_text(mark), name)
        self.assertIn(("200", chal[0]["path"], "HTTP/2.0"),
                      [(e["STATUS"], e["PATH"], e["PROTO"]) for e in lines])
        self.assertEqual(be.records(), [], "the challenge never reached the backend")
        # Once issued, the answer is gone from the snapshot: 404 over h2c too.
        c = H2Client(d.port)
        self.addCleanup(c.close)
        r = wait_for(lambda: (lambda x: x if x.status == 404 else None)(
            c.get(name, chal[0]["path"])), 10, "the challenge to be withdrawn")
        self.assertEqual(r.status, 404)


class Http2UnreadClientTest(Http2Mixin, DaemonTestCase):
    """A client that opens windows of 2 GiB and never reads its socket: the worker's
    buffers fill, and it serves everyone else on."""

    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("unread")

    def test_unread_huge_window_client_does_not_stall_the_worker(self):
        host = self.route(self.be.addr, label="unread")
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
        conn.increment_flow_control_window((1 << 31) - 1 - 65535)
        conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", host),
                              (":path", "/big?bytes=%d&unread" % GIB)], end_stream=True)
        s.sendall(conn.data_to_send())
        wait_for(lambda: [r for r in self.be.records() if r["path"].endswith("&unread") and
                          r.get("sent", 0) >= MIB], TIMEOUT, "the download to be under way")
        # Another client of the same (only) worker is answered at once.
        r = harness.request(self.daemon.port, "/meanwhile", host=host, timeout=5)
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    unittest.main()
