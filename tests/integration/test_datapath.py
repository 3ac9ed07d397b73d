"""Integration tests of the HTTP/1.1 data path (issue 3): upstream pools,
streaming with back-pressure, header rules, upgrades, timeouts, limits,
smuggling defences, passive health, error pages and the access log.

The real haloyd from the build directory, real backends (backend.py, a
python3-websockets echo server, small raw-socket backends below) and real
clients (raw sockets, http.client, curl, python3-websockets), all on
127.0.0.1. Waits are bounded and wait for a condition; the only timed
windows are in tests whose subject is time (timeouts, down time, "no answer
yet"), with margins for a 2-core CI machine running ASan.

Memory bound: while 1 GiB streams through a worker, or a reader stalls, the
worker's VmRSS grows by less than RSS_GROWTH_MAX (64 MiB) over its value
before the transfer.
"""
import asyncio
import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

from . import listener
from .backend import Blackhole, UpgradeBackend, WebSocketEcho, header, websocket_echo_client
from .harness import DaemonTestCase, HTTP_TIMEOUT, KeepAlive, unique_host, wait_for

SMALL_PAGE = 4096               # an error page is at most this many bytes
RSS_GROWTH_MAX = 64 << 20       # worker VmRSS growth allowed during a transfer
GIB = 1 << 30
BLOCK = 1 << 20                 # client send/receive buffer for big transfers
PATTERN = b"0123456789abcdef"   # what backend.py's /big sends, repeated
TIMELY = 0.1                    # a chunk or SSE event reaches the client this fast
T_LO, T_HI = 0.9, 6.0           # a 1 s timeout fires in this window (ASan margin)


# --- small clients and backends

class RawResponse:
    def __init__(self, version, status, reason, headers):
        self.version, self.status, self.reason, self.headers = version, status, reason, headers
        self.body = b""
        self.trailers = []
        self.interim = []

    def header(self, name):
        vals = self.headers_named(name)
        return vals[0] if vals else None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def trailer(self, name):
        for k, v in self.trailers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<%s %d %r body=%r>" % (self.version, self.status, self.headers, self.body[:200])


class Conn:
    """A raw client connection to 127.0.0.1:port with a small HTTP/1.1 reader."""

    def __init__(self, port, timeout=HTTP_TIMEOUT, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.buf = bytearray()

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        b = self.s.recv(1 << 16)
        if not b:
            raise EOFError("the server closed the connection (buffered: %r)"
                           % bytes(self.buf[:200]))
        self.buf += b

    def read_line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > 65536:
                raise AssertionError("a line longer than 64 KiB")
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self):
        out = bytes(self.buf)
        self.buf.clear()
        while True:
            try:
                b = self.s.recv(1 << 16)
            except ConnectionResetError:
                return out
            if not b:
                return out
            out += b

    def read_head(self):
        line = self.read_line()
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("not a status line: %r" % line)
        headers = []
        while True:
            ln = self.read_line()
            if not ln:
                break
            k, v = ln.decode("latin-1").split(":", 1)
            headers.append((k.strip(), v.strip()))
        return RawResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers)

    def read_chunked(self, r):
        body = bytearray()
        while True:
            size = int(self.read_line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")
        while True:
            ln = self.read_line()
            if not ln:
                break
            k, v = ln.decode("latin-1").split(":", 1)
            r.trailers.append((k.strip(), v.strip()))
        r.body = bytes(body)

    def read_response(self, method="GET"):
        """The final response; 1xx heads before it are in r.interim."""
        interim = []
        while True:
            r = self.read_head()
            if 100 <= r.status < 200 and r.status != 101:
                interim.append(r)
                continue
            break
        r.interim = interim
        te = (r.header("Transfer-Encoding") or "").lower()
        if method == "HEAD" or r.status in (101, 204, 304):
            return r
        if te.endswith("chunked"):
            self.read_chunked(r)
        elif r.header("Content-Length") is not None:
            r.body = self.read_exact(int(r.header("Content-Length")))
        else:
            r.body = self.read_to_eof()
        return r

    def wait_closed(self, timeout):
        """Reads until the server closes; returns (seconds it took, bytes read).

        Fails when the connection is still open after timeout.
        """
        t0 = time.monotonic()
        out = bytes(self.buf)
        self.buf.clear()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the connection is still open after %.1f s (read %r)"
                                     % (timeout, out[:200]))
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                continue
            try:
                b = self.s.recv(1 << 16)
            except ConnectionResetError:
                b = b""
            if not b:
                return time.monotonic() - t0, out
            out += b

    def quiet_for(self, seconds):
        """True when nothing arrives (and the connection stays open) for seconds."""
        r, _, _ = select.select([self.s], [], [], seconds)
        return not r


def http_req(method, path, host, headers=(), body=b"", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, path, version), "Host: %s" % host]
    lines += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port, data, method="GET", timeout=HTTP_TIMEOUT):
    """Sends data on a fresh connection; returns the first response and the Conn."""
    c = Conn(port, timeout)
    c.send(data)
    return c.read_response(method), c


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


class RssWatch:
    """Samples the VmRSS of some processes every 20 ms; keeps each one's peak."""

    def __init__(self, pids):
        self.base = {p: vm_rss(p) for p in pids}
        self.peak = dict(self.base)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.02):
            self.sample()

    def sample(self):
        for p in self.base:
            try:
                self.peak[p] = max(self.peak[p], vm_rss(p))
            except (OSError, AssertionError):
                pass

    def growth(self):
        self.sample()
        return max(self.peak[p] - self.base[p] for p in self.base)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.growth()


def closed_port():
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, "127.0.0.1:%d" % s.getsockname()[1]


def recv_to_eof(s, prefix=b""):
    out = prefix
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return out
        if not b:
            return out
        out += b


class SniffBackend:
    """A raw backend that records every byte it receives, per connection, and
    answers each request head with a short 200 (bodies are not parsed)."""

    def __init__(self):
        self.ls = listener.listen(64)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self._lock = threading.Lock()
        self.conns = []     # bytearray per accepted connection
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            rec = bytearray()
            with self._lock:
                self.conns.append(rec)
            threading.Thread(target=self._serve, args=(c, rec), daemon=True).start()

    def _serve(self, c, rec):
        c.settimeout(60)
        pending = b""
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    return
                with self._lock:
                    rec += b
                pending += b
                while b"\r\n\r\n" in pending:
                    _, pending = pending.split(b"\r\n\r\n", 1)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except OSError:
            pass
        finally:
            c.close()

    def received(self):
        with self._lock:
            return b"".join(bytes(r) for r in self.conns)

    def close(self):
        self.ls.close()


def access_lines(text, host):
    """The access entries for host in a log text, as dicts of their fields."""
    out = []
    for ln in text.splitlines():
        if " access " not in ln or ("HALOYD_HOST=%s " % host) not in ln + " ":
            continue
        d = dict(re.findall(r"HALOYD_([A-Z_]+)=(\S*)", ln))
        m = re.search(r"haloyd\[(\d+)\] worker (\d+) ", ln)
        d["_pid"], d["_worker"] = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        d["_line"] = ln
        out.append(d)
    return out


class RouteMixin:
    def route(self, *backends, label="dp"):
        host = unique_host(label)
        args = ["route", "add", host, backends[0]]
        for be in backends[1:]:
            args += ["--backend", be]
        self.daemon.ctl_ok(*args)
        return host

    def fresh_backend(self, name):
        return self.backend(name)

    def worker_pids(self):
        return [w["pid"] for w in self.daemon.status()["workers"]]


# --- 1, 2, 3, 4, 7, 8 (retries), 9, 10 on a daemon with default settings

class DataPathTest(RouteMixin, DaemonTestCase):
    WORKERS = 2

    # 1. upstream pools

    def test_pool_reuses_one_backend_connection(self):
        be = self.fresh_backend("pool")
        host = self.route(be.addr)
        c = KeepAlive(self.daemon.port)
        try:
            for i in range(20):
                r = c.request("/pool/%d" % i, host=host)
                self.assertEqual((r.status, r.body), (200, be.hello()), i)
        finally:
            c.close()
        self.assertEqual(be.accepted, 1, "20 sequential requests over one client connection "
                         "(one worker) used %d backend connections" % be.accepted)
        self.assertEqual({rec["conn"] for rec in be.records()}, {1})
        for i in range(20):
            self.assertEqual(self.daemon.get(host, "/fresh/%d" % i).status, 200)
        self.assertLessEqual(be.accepted, self.WORKERS,
                             "fresh client connections share each worker's pool")

    def test_pool_drops_connection_backend_closed(self):
        be = self.fresh_backend("closer")
        host = self.route(be.addr)
        c = KeepAlive(self.daemon.port)
        try:
            for i in range(10):
                r = c.request("/then-close", host=host)
                self.assertEqual((r.status, r.body), (200, be.hello()), "round %d" % i)
                r = c.request("/after-close/%d" % i, host=host)
                self.assertEqual((r.status, r.body), (200, be.hello()),
                                 "a request right after the backend closed its pooled "
                                 "connection (round %d)" % i)
        finally:
            c.close()
        self.assertEqual(len(be.records()), 20)
        # then-close on a pooled connection, after-close on a new one that the
        # next then-close reuses: 11 connections in all.
        self.assertEqual(be.accepted, 11, "backend connections for 10 rounds")

    def test_pool_stale_connection_retried_once(self):
        be = self.fresh_backend("stale")
        host = self.route(be.addr)
        c = KeepAlive(self.daemon.port)
        try:
            self.assertEqual(c.request("/close-next", host=host).status, 200)
            r = c.request("/after-stale", host=host)
        finally:
            c.close()
        self.assertEqual((r.status, r.body), (200, be.hello()),
                         "a pooled connection that died before answering is retried")
        recs = be.records("/after-stale")
        self.assertEqual(len(recs), 2, "dropped once on the stale connection, then answered")
        self.assertTrue(recs[0].get("dropped"))
        self.assertEqual(recs[0]["conn"], be.records("/close-next")[0]["conn"])
        self.assertNotEqual(recs[1]["conn"], recs[0]["conn"], "the retry used a fresh connection")

    # 2. streaming

    def warm_up(self, host):
        for i in range(8):  # fresh connections reach every worker's buffers
            self.assertEqual(self.daemon.get(host, "/big?bytes=%d" % (1 << 20)).status, 200)

    def test_stream_download_1gib_bounded_rss(self):
        be = self.fresh_backend("down")
        host = self.route(be.addr)
        self.warm_up(host)
        watch = RssWatch(self.worker_pids())
        c = Conn(self.daemon.port, timeout=60)
        t0 = time.monotonic()
        try:
            c.send(http_req("GET", "/big?bytes=%d" % GIB, host))
            r = c.read_head()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), str(GIB))
            got = read_pattern(c, GIB)
        finally:
            c.close()
            growth = watch.stop()
        self.assertEqual(got, GIB)
        self.assertLess(growth, RSS_GROWTH_MAX, "a worker's RSS grew by %d MiB during a 1 GiB "
                        "download" % (growth >> 20))
        print("\n  1 GiB download: %.1f s, worker RSS growth %.1f MiB"
              % (time.monotonic() - t0, growth / 1048576.0), end=" ")

    def test_stream_upload_1gib_bounded_rss(self):
        be = self.fresh_backend("up")
        host = self.route(be.addr)
        self.warm_up(host)
        block = bytes(range(256)) * (BLOCK // 256)
        crc = 0
        for _ in range(GIB // BLOCK):
            crc = zlib.crc32(block, crc)
        watch = RssWatch(self.worker_pids())
        c = Conn(self.daemon.port, timeout=60)
        t0 = time.monotonic()
        try:
            c.send(http_req("PUT", "/sink", host, [("Content-Length", str(GIB))]))
            for _ in range(GIB // BLOCK):
                c.send(block)
            r = c.read_response()
        finally:
            c.close()
            growth = watch.stop()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body), {"bytes": GIB, "crc32": crc})
        self.assertLess(growth, RSS_GROWTH_MAX, "a worker's RSS grew by %d MiB during a 1 GiB "
                        "upload" % (growth >> 20))
        print("\n  1 GiB upload: %.1f s, worker RSS growth %.1f MiB"
              % (time.monotonic() - t0, growth / 1048576.0), end=" ")

    def test_stream_chunked_upload(self):
        be = self.fresh_backend("chunkup")
        host = self.route(be.addr)
        n, size = 64, 1 << 20
        block = bytes(range(256)) * (size // 256)
        crc = 0
        c = Conn(self.daemon.port, timeout=60)
        try:
            c.send(http_req("POST", "/sink", host, [("Transfer-Encoding", "chunked")]))
            for i in range(n):
                piece = block[:size - i]  # uneven sizes
                crc = zlib.crc32(piece, crc)
                c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            c.send(b"0\r\n\r\n")
            r = c.read_response()
        finally:
            c.close()
        total = sum(size - i for i in range(n))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body), {"bytes": total, "crc32": crc})

    def test_stream_slow_reader_backpressure(self):
        be = self.fresh_backend("slowreader")
        host = self.route(be.addr)
        self.warm_up(host)
        total = 256 << 20
        watch = RssWatch(self.worker_pids())
        c = Conn(self.daemon.port, timeout=60, rcvbuf=64 << 10)
        try:
            c.send(http_req("GET", "/big?bytes=%d" % total, host))
            r = c.read_head()
            self.assertEqual(r.status, 200, r)
            got = read_pattern(c, 1 << 20)
            rec = be.wait_request("/big?bytes=%d" % total)
            sent = wait_stable(lambda: rec["sent"], "the backend to be held back by the "
                               "stalled reader")
            self.assertLess(sent - got, 32 << 20, "with the client not reading, %d MiB left the "
                            "backend (%d MiB read)" % (sent >> 20, got >> 20))
            print("\n  stalled reader: the backend stopped after %.1f MiB of %d MiB (%.1f MiB read)"
                  % (sent / 1048576.0, total >> 20, got / 1048576.0), end=" ")
            stalled_growth = watch.growth()
            for _ in range(50):  # a slow reader: 64 KiB every 20 ms
                got += read_pattern(c, 64 << 10, offset=got)
                time.sleep(0.02)
            self.assertLess(rec["sent"] - got, 32 << 20, "a slow reader let the backend run ahead")
            got += read_pattern(c, total - got, offset=got)
        finally:
            c.close()
            growth = watch.stop()
        self.assertEqual(got, total)
        self.assertLess(stalled_growth, RSS_GROWTH_MAX)
        self.assertLess(growth, RSS_GROWTH_MAX, "a worker's RSS grew by %d MiB with a slow reader"
                        % (growth >> 20))

    def read_timed_lines(self, c, marker):
        """Decodes a chunked body as it arrives; returns (line, arrival time) for
        each complete line that starts with marker."""
        out, pending = [], b""
        while True:
            size = int(c.read_line().split(b";", 1)[0].strip(), 16)
            if size == 0:
                while c.read_line():
                    pass
                return out
            pending += c.read_exact(size)
            c.read_exact(2)
            now = time.time()
            while b"\n" in pending:
                ln, pending = pending.split(b"\n", 1)
                if ln.startswith(marker):
                    out.append((ln, now))

    def test_stream_chunks_arrive_at_once(self):
        be = self.fresh_backend("drip")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/drip?n=6&ms=200", host))
            r = c.read_head()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Transfer-Encoding"), "chunked")
            lines = self.read_timed_lines(c, b"chunk ")
        finally:
            c.close()
        self.assertEqual(len(lines), 6, lines)
        delays = [now - float(ln.split()[2]) for ln, now in lines]
        self.assertLess(max(delays), TIMELY, "chunk delays through the proxy: %s"
                        % ", ".join("%.1f ms" % (d * 1000) for d in delays))

    def test_stream_sse_events_arrive_at_once(self):
        be = self.fresh_backend("sse")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/sse?n=6&ms=200", host, [("Accept", "text/event-stream")]))
            r = c.read_head()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Type"), "text/event-stream")
            events = self.read_timed_lines(c, b"data: event ")
        finally:
            c.close()
        self.assertEqual(len(events), 6, events)
        delays = [now - float(ln.split()[3]) for ln, now in events]
        print("\n  SSE event delays: %s" % ", ".join("%.1f ms" % (d * 1000) for d in delays),
              end=" ")
        self.assertLess(max(delays), TIMELY, "SSE event delays through the proxy: %s"
                        % ", ".join("%.1f ms" % (d * 1000) for d in delays))

    def test_stream_trailers_pass_through(self):
        be = self.fresh_backend("trailers")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("GET", "/trailers", host, [("TE", "trailers")]))
        c.close()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"body with trailers\n")
        self.assertEqual(r.trailer("X-Checksum"), "abc123", r.trailers)
        self.assertEqual(r.trailer("X-Backend-Trailer"), "trailers", r.trailers)

    def test_stream_1xx_forwarded(self):
        be = self.fresh_backend("early")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("GET", "/1xx", host))
        c.close()
        self.assertEqual([i.status for i in r.interim], [103], r)
        self.assertEqual(r.interim[0].header("Link"), "</style.css>; rel=preload; as=style")
        self.assertEqual((r.status, r.body), (200, be.hello()))
        # An HTTP/1.0 client cannot take an interim response.
        r, c = exchange(self.daemon.port, http_req("GET", "/1xx", host, version="HTTP/1.0"))
        c.close()
        self.assertEqual((r.interim, r.status, r.body), ([], 200, be.hello()))

    def test_stream_head_204_304_have_no_body(self):
        be = self.fresh_backend("nobody")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("HEAD", "/big?bytes=5000", host))
            r = c.read_response("HEAD")
            self.assertEqual((r.status, r.header("Content-Length")), (200, "5000"), r)
            for code in (204, 304):
                c.send(http_req("GET", "/status?code=%d" % code, host))
                r = c.read_response()
                self.assertEqual(r.status, code, r)
                self.assertIsNone(r.header("Transfer-Encoding"), r)
                self.assertIn(r.header("Content-Length"), (None, "0"), r)
            # Any stray body byte of the answers above would come before this status line.
            c.send(http_req("GET", "/after-nobody", host))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, be.hello()), r)
            self.assertEqual(bytes(c.buf), b"")
        finally:
            c.close()

    def test_stream_expect_100_continue_raw(self):
        be = self.fresh_backend("expect")
        host = self.route(be.addr)
        body = b"0123456789" * 1000
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("POST", "/echo", host, [("Content-Length", str(len(body))),
                                                    ("Expect", "100-continue")]))
            r = c.read_head()  # the body is not sent before this
            self.assertEqual(r.status, 100, r)
            c.send(body)
            r = c.read_response()
        finally:
            c.close()
        self.assertEqual((r.status, r.body), (200, body))

    def test_stream_expect_100_continue_curl(self):
        be = self.fresh_backend("curl")
        host = self.route(be.addr)
        tmp = tempfile.mkdtemp(prefix="dp-curl-")
        self.addCleanup(shutil.rmtree, tmp, True)
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        data = os.urandom(1 << 20) * 3
        with open(src, "wb") as f:
            f.write(data)
        t0 = time.monotonic()
        p = subprocess.run(["curl", "-sS", "-v", "--expect100-timeout", "30", "-o", dst,
                            "-w", "%{http_code}", "-H", "Host: " + host,
                            "-H", "Expect: 100-continue", "-H", "Content-Type: application/x-test",
                            "--data-binary", "@" + src,
                            "http://127.0.0.1:%d/echo" % self.daemon.port],
                           capture_output=True, timeout=60)
        took = time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual((p.returncode, p.stdout), (0, b"200"), err[-2000:])
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertLess(took, 20, "curl waited for its 30 s expect timeout")
        with open(dst, "rb") as f:
            self.assertTrue(f.read() == data, "the echoed body differs")

    # 3. headers

    def test_headers_hop_by_hop_removed(self):
        be = self.fresh_backend("hop")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("GET", "/hop", host, [
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Keep-Alive", "timeout=5, max=77"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "deflate"),
            ("Trailer", "X-Some-Trailer"),
            ("Upgrade", "h2c-not-an-upgrade"),
            ("X-Secret-Hop", "must-go"),
            ("X-Kept", "stays"),
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example.com"),
        ]))
        c.close()
        self.assertEqual((r.status, r.body), (200, be.hello()), r)
        rec = be.wait_request("/hop")
        for v in header(rec, "Connection"):
            self.assertNotIn("x-secret-hop", v.lower())
        for name, value in (("Keep-Alive", "max=77"), ("TE", "deflate"),
                            ("Trailer", "X-Some-Trailer"), ("Upgrade", "h2c-not-an-upgrade")):
            self.assertFalse([v for v in header(rec, name) if value in v],
                             "%s reached the backend: %r" % (name, rec["headers"]))
        self.assertEqual(header(rec, "Proxy-Connection"), [])
        self.assertEqual(header(rec, "X-Secret-Hop"), [], "a header named in Connection")
        self.assertEqual(header(rec, "X-Kept"), ["stays"])
        self.assertEqual(header(rec, "Host"), [host])
        self.assertEqual(xff(rec), ["127.0.0.1"], "X-Forwarded-For is replaced")
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header(rec, "X-Forwarded-Host"), [host])

    def test_headers_hop_by_hop_removed_from_response(self):
        srv = listener.listen(4)
        self.addCleanup(srv.close)

        def answer():
            c, _ = listener.accept(srv)
            with c:
                c.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                          b"Connection: X-Resp-Hop\r\nX-Resp-Hop: secret\r\nKeep-Alive: max=99\r\n"
                          b"Proxy-Connection: keep-alive\r\nX-Resp-Kept: yes\r\n\r\nok\n")
                try:
                    c.recv(1)  # until the proxy drops its pooled connection
                except OSError:
                    pass
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        host = self.route("127.0.0.1:%d" % srv.getsockname()[1])
        r, c = exchange(self.daemon.port, http_req("GET", "/resp-hop", host))
        c.close()
        t.join(10)
        self.assertEqual((r.status, r.body), (200, b"ok\n"), r)
        self.assertEqual(r.headers_named("X-Resp-Hop"), [])
        self.assertEqual(r.headers_named("Proxy-Connection"), [])
        self.assertFalse([v for v in r.headers_named("Keep-Alive") if "99" in v])
        self.assertEqual(r.headers_named("X-Resp-Kept"), ["yes"])

    # 4. upgrades

    def test_websocket_echo_1000_messages(self):
        ws_be = WebSocketEcho().start()
        self.addCleanup(ws_be.stop)
        host = self.route(ws_be.addr)
        result = asyncio.run(asyncio.wait_for(websocket_echo_client(self.daemon.port, host, 1000), 60))
        self.assertEqual(result["mismatches"], [], "echoed messages that differ")
        self.assertEqual(result["close_code"], 1000, "the client's clean close")
        sess = wait_for(lambda: ws_be.sessions and ws_be.sessions[0]["close_code"] is not None
                        and ws_be.sessions[0], 10, "the server side of the WebSocket to end")
        self.assertEqual(sess["messages"], 1000)
        self.assertEqual(sess["close_code"], 1000, "the server saw a clean close")
        self.assertEqual(sess["path"], "/ws-echo")
        names = {k.lower() for k, _ in sess["headers"]}
        self.assertIn("x-forwarded-for", names)

    def test_tunnel_half_close_client_first(self):
        def script(s, rest):
            got = recv_to_eof(s, rest)  # until the client's shutdown reaches us
            s.sendall(b"reply after your EOF: " + got)
            return got
        ub = UpgradeBackend(script)
        self.addCleanup(ub.close)
        host = self.route(ub.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/tunnel", host, [("Connection", "Upgrade"),
                                                      ("Upgrade", "test-proto")]))
            r = c.read_head()
            self.assertEqual(r.status, 101, r)
            c.send(b"hello from the client")
            c.s.shutdown(socket.SHUT_WR)
            got = ub.result()
            self.assertEqual(got, b"hello from the client")
            took, data = c.wait_closed(10)
        finally:
            c.close()
        self.assertEqual(data, b"reply after your EOF: hello from the client",
                         "the backend's direction kept flowing after the client's half-close")

    def test_tunnel_half_close_backend_first(self):
        def script(s, rest):
            s.sendall(b"hello from the backend")
            s.shutdown(socket.SHUT_WR)
            return recv_to_eof(s, rest)
        ub = UpgradeBackend(script)
        self.addCleanup(ub.close)
        host = self.route(ub.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/tunnel2", host, [("Connection", "upgrade"),
                                                       ("Upgrade", "test-proto")]))
            r = c.read_head()
            self.assertEqual(r.status, 101, r)
            _, data = c.wait_closed(10)  # the backend's EOF reaches us as a half-close
            self.assertEqual(data, b"hello from the backend")
            c.send(b"late data from the client")  # our direction is still open
            c.s.shutdown(socket.SHUT_WR)
            self.assertEqual(ub.result(), b"late data from the client")
        finally:
            c.close()

    # 6. limits that need no flag

    def test_limit_uri_too_long_414(self):
        be = self.fresh_backend("uri")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("GET", "/" + "a" * 9000, host))
        c.close()
        self.assertEqual(r.status, 414, r)
        self.assertEqual(self.daemon.get(host, "/" + "a" * 4000).status, 200,
                         "a 4000-byte URI is fine")
        self.assertEqual(len(be.records()), 1)

    def test_limit_huge_header_431(self):
        be = self.fresh_backend("bighdr")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("GET", "/", host, [("X-Big", "b" * 20000)]))
        c.close()
        self.assertEqual(r.status, 431, r)
        total = [("X-H%d" % i, "v" * 200) for i in range(90)]  # 18 KiB in many fields
        r, c = exchange(self.daemon.port, http_req("GET", "/", host, total))
        c.close()
        self.assertEqual(r.status, 431, r)
        self.assertEqual(be.records(), [])

    def test_limit_too_many_headers_431(self):
        be = self.fresh_backend("manyhdr")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port,
                        http_req("GET", "/", host, [("X-N%d" % i, "v") for i in range(150)]))
        c.close()
        self.assertEqual(r.status, 431, r)
        r, c = exchange(self.daemon.port,
                        http_req("GET", "/many-ok", host, [("X-N%d" % i, "v") for i in range(50)]))
        c.close()
        self.assertEqual(r.status, 200, "50 header fields are fine: %r" % r)

    # 7. smuggling

    def test_smuggling_vectors_400_and_close(self):
        sniff = SniffBackend()
        self.addCleanup(sniff.close)
        host = self.route(sniff.addr)
        hh = "Host: %s\r\n" % host
        follow = ("GET /follow HTTP/1.1\r\n%s\r\n" % hh).encode()
        vectors = [
            ("CL and TE", "POST /v HTTP/1.1\r\n%sContent-Length: 6\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nX" % hh),
            ("TE and CL", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n"
             "Content-Length: 6\r\n\r\n0\r\n\r\nX" % hh),
            ("two different CL", "POST /v HTTP/1.1\r\n%sContent-Length: 5\r\n"
             "Content-Length: 6\r\n\r\nhello!" % hh),
            ("CL list", "POST /v HTTP/1.1\r\n%sContent-Length: 5, 6\r\n\r\nhello!" % hh),
            ("CL plus sign", "POST /v HTTP/1.1\r\n%sContent-Length: +5\r\n\r\nhello" % hh),
            ("CL negative", "POST /v HTTP/1.1\r\n%sContent-Length: -5\r\n\r\nhello" % hh),
            ("CL hex", "POST /v HTTP/1.1\r\n%sContent-Length: 0x5\r\n\r\nhello" % hh),
            ("CL letters", "POST /v HTTP/1.1\r\n%sContent-Length: 5a\r\n\r\nhello" % hh),
            ("TE gzip", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: gzip\r\n\r\nhello" % hh),
            ("TE identity", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: identity\r\n\r\nhello" % hh),
            ("TE chunked not last", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked, gzip\r\n"
             "\r\n0\r\n\r\n" % hh),
            ("TE xchunked", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: xchunked\r\n\r\n"
             "0\r\n\r\n" % hh),
            ("TE chunked twice", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % hh),
            ("chunk size not hex", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
             "5x\r\nhello\r\n0\r\n\r\n" % hh),
            ("chunk size negative", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
             "-5\r\nhello\r\n0\r\n\r\n" % hh),
            ("chunk size overflow", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n"
             "1ffffffffffffffff5\r\nhello\r\n0\r\n\r\n" % hh),
            ("chunk longer than its size", "POST /v HTTP/1.1\r\n%sTransfer-Encoding: chunked"
             "\r\n\r\n3\r\nhello\r\n0\r\n\r\n" % hh),
            ("obs-fold", "GET /v HTTP/1.1\r\n%sX-Folded: a\r\n b\r\n\r\n" % hh),
            ("obs-fold tab", "GET /v HTTP/1.1\r\n%sX-Folded: a\r\n\tb\r\n\r\n" % hh),
            ("bare CR in a value", "GET /v HTTP/1.1\r\n%sX-Bad: a\rb\r\n\r\n" % hh),
            ("NUL in a value", "GET /v HTTP/1.1\r\n%sX-Bad: a\x00b\r\n\r\n" % hh),
            ("NUL in a name", "GET /v HTTP/1.1\r\n%sX-B\x00ad: a\r\n\r\n" % hh),
            ("space before colon", "POST /v HTTP/1.1\r\n%sContent-Length : 5\r\n\r\nhello" % hh),
            ("tab before colon", "GET /v HTTP/1.1\r\n%sX-Tabbed\t: a\r\n\r\n" % hh),
            ("absolute-form, other host", "GET http://other.example.com/v HTTP/1.1\r\n%s\r\n" % hh),
        ]
        for name, raw in vectors:
            with self.subTest(vector=name):
                c = Conn(self.daemon.port)
                try:
                    c.send(raw.encode("latin-1") + follow)
                    took, data = c.wait_closed(10)
                finally:
                    c.close()
                self.assertTrue(data.startswith(b"HTTP/1.1 400 "), "answer: %r" % data[:300])
                self.assertEqual(data.count(b"HTTP/1."), 1,
                                 "the request after it was answered too: %r" % data[:600])
                self.assertEqual(sniff.received(), b"", "bytes reached the backend")
        # The route works: the vectors were refused for what they are.
        r, c = exchange(self.daemon.port, follow)
        c.close()
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        r, c = exchange(self.daemon.port, ("GET http://%s/abs HTTP/1.1\r\n%s\r\n"
                                           % (host, hh)).encode())
        c.close()
        self.assertEqual(r.status, 200, "absolute-form naming the Host's host is served")

    def test_pipelined_requests_answered_in_order(self):
        be = self.fresh_backend("pipe")
        host = self.route(be.addr)
        reqs = [http_req("GET", "/path?ms=300&n=1", host),
                http_req("POST", "/echo", host, [("Content-Length", "5")], b"body2"),
                http_req("GET", "/path?ms=0&n=3", host),
                http_req("HEAD", "/path?ms=100&n=4", host),
                http_req("GET", "/path?ms=50&n=5", host)]
        c = Conn(self.daemon.port)
        try:
            c.send(b"".join(reqs))
            got = [c.read_response(m) for m in ("GET", "POST", "GET", "HEAD", "GET")]
        finally:
            c.close()
        self.assertEqual([r.status for r in got], [200] * 5, got)
        self.assertEqual([r.body for r in got], [b"/path?ms=300&n=1", b"body2", b"/path?ms=0&n=3",
                                                 b"", b"/path?ms=50&n=5"])
        self.assertEqual(got[3].header("Content-Length"), str(len("/path?ms=100&n=4")))

    # 8. retries of idempotent requests

    def test_retry_idempotent_get_once(self):
        be = self.fresh_backend("dropget")
        host = self.route(be.addr)
        r = self.daemon.get(host, "/drop-once?key=get")
        self.assertEqual((r.status, r.body), (200, be.hello()),
                         "a GET whose connection died before any answer byte is retried")
        recs = be.records("/drop-once?key=get")
        self.assertEqual([bool(x.get("dropped")) for x in recs], [True, False])
        self.assertNotEqual(recs[0]["conn"], recs[1]["conn"])

    def test_retry_at_most_once(self):
        be = self.fresh_backend("dropall")
        host = self.route(be.addr)
        r = self.daemon.get(host, "/drop")
        self.assertEqual(r.status, 502, r)
        # The backend's thread may record the retry just after the client got its 502.
        wait_for(lambda: len(be.records("/drop")) >= 2, 5, "the retry to reach the backend")
        self.assertEqual(self.daemon.get(host, "/after-drop").status, 200)
        self.assertEqual(len(be.records("/drop")), 2, "one try and one retry")

    def test_no_retry_of_post(self):
        be = self.fresh_backend("droppost")
        host = self.route(be.addr)
        r = self.daemon.get(host, "/drop-once?key=post", method="POST", body=b"payload",
                            headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 502, r)
        self.assertEqual(len(be.records("/drop-once?key=post")), 1, "a POST is not replayed")

    # 9. error pages (built-in)

    def test_error_pages_builtin_404_502(self):
        be = self.fresh_backend("pages")
        self.route(be.addr)
        r = self.daemon.get(unique_host("nowhere"), "/")
        assert_error_page(self, r.status, r.headers, r.body, 404)
        dead, addr = closed_port()
        self.addCleanup(dead.close)
        r = self.daemon.get(self.route(addr), "/")
        assert_error_page(self, r.status, r.headers, r.body, 502)

    # 10. access log

    def test_access_log_entry_per_request(self):
        be = self.fresh_backend("log")
        host = self.route(be.addr)
        mark = self.daemon.log_size()
        paths = ["/log/%d?q=%d" % (i, i) for i in range(5)]
        for p in paths:
            self.assertEqual(self.daemon.get(host, p).status, 200)
        post = b"x" * 1234
        self.assertEqual(self.daemon.get(host, "/echo", method="POST", body=post).status, 200)
        missing = unique_host("nolog")
        self.assertEqual(self.daemon.get(missing, "/absent").status, 404)
        dead, addr = closed_port()
        self.addCleanup(dead.close)
        dead_host = self.route(addr)
        self.assertEqual(self.daemon.get(dead_host, "/refused").status, 502)
        pids = set(self.worker_pids())

        def entries():
            e = access_lines(self.daemon.log_text(mark), host)
            return e if len(e) >= 6 else None
        got = wait_for(entries, 10, "6 access entries for %s" % host, self.daemon.log_tail)
        self.assertEqual(sorted(e["PATH"] for e in got), sorted(paths + ["/echo"]),
                         "one entry per request")
        for e in got:
            self.assertEqual(e["HOST"], host)
            self.assertIn(e["METHOD"], ("GET", "POST"))
            self.assertEqual(e["STATUS"], "200")
            self.assertEqual(e["BACKEND"], be.addr)
            self.assertRegex(e["DURATION_US"], r"^\d+$")
            self.assertRegex(e["BYTES_IN"], r"^\d+$")
            self.assertRegex(e["BYTES_OUT"], r"^\d+$")
            self.assertRegex(e["REQUEST_ID"], r"^[0-9A-Za-z-]{8,}$")
            self.assertIn(e["_pid"], pids, "the entry names the worker: %s" % e["_line"])
            self.assertIsNotNone(e["_worker"])
        by_path = {e["PATH"]: e for e in got}
        self.assertGreaterEqual(int(by_path["/echo"]["BYTES_IN"]), len(post))
        self.assertGreaterEqual(int(by_path["/echo"]["BYTES_OUT"]), len(post))
        self.assertGreaterEqual(int(by_path[paths[0]]["BYTES_OUT"]), len(be.hello()))
        for p in paths:
            rid = header(be.records(p)[0], "X-Request-Id")
            self.assertEqual(rid, [by_path[p]["REQUEST_ID"]], "the backend got the logged id")
        self.assertEqual(len({e["REQUEST_ID"] for e in got}), len(got), "request ids are unique")
        nf = wait_for(lambda: access_lines(self.daemon.log_text(mark), missing), 10,
                      "the 404's access entry", self.daemon.log_tail)
        self.assertEqual([(e["STATUS"], e["PATH"]) for e in nf], [("404", "/absent")])
        bad = wait_for(lambda: access_lines(self.daemon.log_text(mark), dead_host), 10,
                       "the 502's access entry", self.daemon.log_tail)
        self.assertEqual([(e["STATUS"], e["PATH"], e["BACKEND"]) for e in bad],
                         [("502", "/refused", addr)], "one entry for a 502:\n%s"
                         % "\n".join(e["_line"] for e in bad))

    # the slowloris part of 5 (default 30 s header timeout)

    def test_slowloris_1000_connections_do_not_block_others(self):
        be = self.fresh_backend("loris")
        host = self.route(be.addr)
        slow = []
        stop = threading.Event()
        try:
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode())
                slow.append(s)
            errors = []

            def drip():
                while not stop.wait(1.0):
                    for s in slow:
                        try:
                            s.send(b"z")
                        except OSError as e:
                            errors.append(e)
            t = threading.Thread(target=drip, daemon=True)
            t.start()
            worst = 0.0
            t_end = time.monotonic() + 3.5
            i = 0
            while time.monotonic() < t_end:
                t0 = time.monotonic()
                r = self.daemon.get(host, "/normal/%d" % i, timeout=10)
                worst = max(worst, time.monotonic() - t0)
                self.assertEqual((r.status, r.body), (200, be.hello()))
                i += 1
                time.sleep(0.05)
            stop.set()
            t.join(10)
        finally:
            stop.set()
            for s in slow:
                s.close()
        self.assertEqual(errors, [], "slowloris connections were cut before the header timeout")
        self.assertGreater(i, 10)
        self.assertLess(worst, 1.0, "a normal request took %.2f s next to 1000 slowloris "
                        "connections" % worst)
        self.assertEqual(be.records("/"), [], "no slowloris request reached the backend")


def read_pattern(c, n, offset=0):
    """Reads n body bytes of backend.py's /big stream at offset; checks every byte."""
    pat = PATTERN * (BLOCK // len(PATTERN) + 2)
    got = 0
    if c.buf:
        take = bytes(c.buf[:n])
        del c.buf[:len(take)]
        o = offset % len(PATTERN)
        if take != pat[o:o + len(take)]:
            raise AssertionError("body bytes differ at offset %d" % offset)
        got = len(take)
    buf = bytearray(BLOCK)
    mv = memoryview(buf)
    while got < n:
        k = c.s.recv_into(mv[:min(BLOCK, n - got)])
        if k == 0:
            raise AssertionError("the stream ended after %d of %d bytes" % (offset + got, n))
        o = (offset + got) % len(PATTERN)
        if buf[:k] != pat[o:o + k]:
            raise AssertionError("body bytes differ after offset %d" % (offset + got))
        got += k
    return got


def wait_stable(read, what, timeout=30, period=0.25, rounds=4):
    """Waits until read() returns the same value `rounds` times `period` apart."""
    deadline = time.monotonic() + timeout
    last, same = read(), 0
    while True:
        time.sleep(period)
        v = read()
        same = same + 1 if v == last else 0
        last = v
        if same >= rounds:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %d s waiting for %s (still moving: %r)"
                                 % (timeout, what, v))


def assert_window(tc, took, what):
    """A 1 s timeout fired neither early nor much later."""
    tc.assertGreaterEqual(took, T_LO, "%s after %.2f s: before its 1 s timeout" % (what, took))
    tc.assertLess(took, T_HI, "%s only after %.2f s" % (what, took))


def xff(rec):
    """Every X-Forwarded-For element the backend got, in order."""
    out = []
    for v in header(rec, "X-Forwarded-For"):
        out += [x.strip() for x in v.split(",")]
    return out


def assert_error_page(tc, status, headers, body, code, exact=None):
    tc.assertEqual(status, code, body[:300])
    ctype = [v for k, v in headers if k.lower() == "content-type"]
    tc.assertTrue(ctype and ctype[0].startswith("text/html"), headers)
    tc.assertTrue(0 < len(body) <= SMALL_PAGE, "a small page: %d bytes" % len(body))
    if exact is not None:
        tc.assertEqual(body, exact, "the override page is served as it is")
    else:
        tc.assertIn(b"<html", body.lower())
        tc.assertIn(str(code).encode(), body)


# --- 3. trusted proxies

class TrustedProxyTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--trusted-proxies", "127.0.0.1")

    def test_xff_appended_for_trusted_peer(self):
        be = self.backend("trusted")
        host = self.route(be.addr)
        r = self.daemon.get(host, "/xff1", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual(r.status, 200)
        self.assertEqual(xff(be.wait_request("/xff1")), ["203.0.113.7", "127.0.0.1"],
                         "a trusted peer's X-Forwarded-For is appended to")
        r = self.daemon.get(host, "/xff2", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
        self.assertEqual(xff(be.wait_request("/xff2")),
                         ["198.51.100.1", "203.0.113.7", "127.0.0.1"])
        r = self.daemon.get(host, "/xff3")
        self.assertEqual(xff(be.wait_request("/xff3")), ["127.0.0.1"])
        self.assertEqual(header(be.wait_request("/xff3"), "Host"), [host])


# --- 5. timeouts

class TimeoutTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--header-timeout", "1s", "--body-timeout", "1s", "--keepalive-timeout", "1s",
                   "--connect-timeout", "1s", "--response-timeout", "1s", "--idle-timeout", "1s",
                   "--tunnel-timeout", "1s")

    def test_timeout_old_setting_name_warned(self):
        # DAEMON_ARGS name the upgrade timeout by its old name, --tunnel-timeout:
        # test_timeout_tunnel_idle shows it works; the log says it was renamed.
        wait_for(lambda: "'tunnel_timeout' is now called 'upgrade_timeout'" in self.daemon.log_text(0),
                 10, "the renamed-setting warning", self.daemon.log_tail)

    def test_timeout_header_slowloris(self):
        be = self.backend("hdrto")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        t0 = time.monotonic()
        out = b""
        try:
            c.send(("GET /loris HTTP/1.1\r\nHost: %s\r\n" % host).encode())
            c.s.setblocking(False)
            closed = False
            while time.monotonic() - t0 < T_HI + 2 and not closed:
                r, _, _ = select.select([c.s], [], [], 0.2)
                if r:
                    try:
                        b = c.s.recv(65536)
                    except ConnectionResetError:
                        b = b""
                    out += b
                    closed = not b
                    continue
                try:
                    c.s.send(b"X")  # a header byte every 200 ms
                except (BrokenPipeError, ConnectionResetError):
                    pass
        finally:
            c.close()
        took = time.monotonic() - t0
        self.assertTrue(closed, "the slowloris connection is still open after %.1f s" % took)
        assert_window(self, took, "the header timeout")
        self.assertTrue(out == b"" or out.startswith(b"HTTP/1.1 408 "), out[:300])
        self.assertEqual(be.records(), [])

    def test_timeout_body_idle_408(self):
        be = self.backend("bodyto")
        host = self.route(be.addr)
        # The backend side's 1 s timeouts would fall due in the same millisecond as the
        # body's: which fired first hung on the timer heap's order (a 504 instead).
        self.daemon.ctl_ok("route", "set", host, "--response-timeout", "4s", "--idle-timeout", "4s")
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("POST", "/echo", host, [("Content-Length", "1000")], b"x" * 100))
            took, data = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 408 "), "answer to a stalled body: %r"
                        % data[:300])
        assert_window(self, took, "the body timeout")

    def test_timeout_keepalive_idle_close(self):
        be = self.backend("kato")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/ka", host))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.header("Connection") or "").lower(), "close")
            took, data = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertEqual(data, b"", "an idle keep-alive connection is closed without a word")
        assert_window(self, took, "the keep-alive timeout")

    def test_timeout_upstream_connect(self):
        bh = Blackhole()
        self.addCleanup(bh.close)
        host = self.route(bh.addr)
        t0 = time.monotonic()
        r = self.daemon.get(host, "/blackhole", timeout=T_HI + 4)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 502, "haloyd.conf(5): connect_timeout, then 502: %r" % r)
        assert_window(self, took, "the connect timeout")

    def test_timeout_upstream_response_504(self):
        be = self.backend("respto")
        host = self.route(be.addr)
        t0 = time.monotonic()
        r = self.daemon.get(host, "/slow?ms=8000", timeout=T_HI + 4)
        took = time.monotonic() - t0
        assert_error_page(self, r.status, r.headers, r.body, 504)
        assert_window(self, took, "the response timeout")

    def test_timeout_upstream_idle_mid_body(self):
        be = self.backend("idleto")
        host = self.route(be.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/stall-mid-body?ms=8000", host))
            r = c.read_head()
            self.assertEqual((r.status, r.header("Content-Length")), (200, "1000"), r)
            first = c.read_exact(100)
            took, rest = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertEqual(first, b"x" * 100)
        self.assertEqual(rest, b"", "the connection is cut, not completed")
        assert_window(self, took, "the upstream idle timeout")

    def test_timeout_tunnel_idle(self):
        def script(s, rest):
            s.settimeout(30)
            data = rest
            while True:
                try:
                    b = s.recv(65536)
                except ConnectionResetError:
                    b = b""
                if not b:
                    return ("eof", time.monotonic())
                data += b
                s.sendall(b)
        ub = UpgradeBackend(script)
        self.addCleanup(ub.close)
        host = self.route(ub.addr)
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/idle-tunnel", host, [("Connection", "Upgrade"),
                                                           ("Upgrade", "test-proto")]))
            self.assertEqual(c.read_head().status, 101)
            c.send(b"ping")
            self.assertEqual(c.read_exact(4), b"ping")
            t0 = time.monotonic()
            took, data = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertEqual(data, b"")
        assert_window(self, took, "the tunnel idle timeout")
        kind, when = ub.result()
        self.assertEqual(kind, "eof")
        self.assertLess(when - t0, T_HI, "the backend side of the tunnel was closed too")


class RouteSettingsTest(RouteMixin, DaemonTestCase):
    """`haloyd-ctl route set` overrides haloyd.conf's timeouts and body limit
    for one route; other routes keep the (long) global values."""

    WORKERS = 1

    def test_route_set_response_timeout(self):
        be = self.backend("rs-resp")
        host, other = self.route(be.addr), self.route(be.addr)
        self.daemon.ctl_ok("route", "set", host, "--response-timeout", "1s")
        t0 = time.monotonic()
        r = self.daemon.get(host, "/slow?ms=8000", timeout=T_HI + 4)
        took = time.monotonic() - t0
        assert_error_page(self, r.status, r.headers, r.body, 504)
        assert_window(self, took, "the route's response timeout")
        r = self.daemon.get(other, "/slow?ms=1500", timeout=T_HI + 4)
        self.assertEqual(r.status, 200, "another route keeps the global 60 s")
        self.daemon.ctl_ok("route", "set", host, "--response-timeout", "default")
        self.assertEqual(self.daemon.get(host, "/slow?ms=1500", timeout=T_HI + 4).status, 200,
                         "`default` goes back to the global timeout")

    def test_route_set_idle_timeout(self):
        be = self.backend("rs-idle")
        host = self.route(be.addr)
        self.daemon.ctl_ok("route", "set", host, "--idle-timeout", "1s")
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/stall-mid-body?ms=8000", host))
            self.assertEqual(c.read_head().status, 200)
            c.read_exact(100)
            took, rest = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertEqual(rest, b"")
        assert_window(self, took, "the route's idle timeout")

    def test_route_set_connect_timeout(self):
        bh = Blackhole()
        self.addCleanup(bh.close)
        host = self.route(bh.addr)
        self.daemon.ctl_ok("route", "set", host, "--connect-timeout", "1s")
        t0 = time.monotonic()
        r = self.daemon.get(host, "/", timeout=T_HI + 4)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 502, r)
        assert_window(self, took, "the route's connect timeout")

    def test_route_set_tunnel_timeout(self):
        def script(s, rest):
            return recv_to_eof(s, rest)
        ub = UpgradeBackend(script)
        self.addCleanup(ub.close)
        host = self.route(ub.addr)
        self.daemon.ctl_ok("route", "set", host, "--tunnel-timeout", "1s")
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("GET", "/t", host, [("Connection", "Upgrade"),
                                                 ("Upgrade", "test-proto")]))
            self.assertEqual(c.read_head().status, 101)
            c.send(b"some bytes")
            took, data = c.wait_closed(T_HI + 4)
        finally:
            c.close()
        self.assertEqual(data, b"")
        assert_window(self, took, "the route's tunnel timeout")
        self.assertEqual(ub.result(), b"some bytes")

    def test_route_set_max_body(self):
        be = self.backend("rs-body")
        host, other = self.route(be.addr), self.route(be.addr)
        self.daemon.ctl_ok("route", "set", host, "--max-body", "1k")
        body = b"m" * 2048
        r, c = exchange(self.daemon.port, http_req("POST", "/echo", host,
                                                    [("Content-Length", "2048")], body))
        c.close()
        assert_error_page(self, r.status, r.headers, r.body, 413)
        r = self.daemon.get(other, "/echo", method="POST", body=body)
        self.assertEqual((r.status, r.body), (200, body), "another route has no limit")
        self.daemon.ctl_ok("route", "set", host, "--max-body", "unlimited")
        r = self.daemon.get(host, "/echo", method="POST", body=body)
        self.assertEqual((r.status, r.body), (200, body))


# --- 6. limits that need flags

# --- 6. limits that need flags

class MaxBodyTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--max-body", "1k")

    def test_max_body_content_length_413(self):
        be = self.backend("maxbody")
        host = self.route(be.addr)
        r, c = exchange(self.daemon.port, http_req("POST", "/echo", host,
                                                    [("Content-Length", "2048")], b"a" * 2048))
        c.close()
        assert_error_page(self, r.status, r.headers, r.body, 413)
        self.assertEqual(be.records(), [], "a body announced too large is refused before "
                         "the backend sees the request")
        r = self.daemon.get(host, "/echo", method="POST", body=b"b" * 1000)
        self.assertEqual((r.status, r.body), (200, b"b" * 1000), "1000 bytes are within 1k")

    def test_max_body_chunked_413(self):
        be = self.backend("maxchunk")
        host = self.route(be.addr)
        body = b"".join(b"200\r\n" + b"c" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
        c = Conn(self.daemon.port)
        try:
            c.send(http_req("POST", "/echo", host, [("Transfer-Encoding", "chunked")], body))
            r = c.read_response()
        finally:
            c.close()
        assert_error_page(self, r.status, r.headers, r.body, 413)
        self.assertEqual([x for x in be.records() if x["body"]], [],
                         "no complete over-size body reached the backend")
        small = b"100\r\n" + b"d" * 256 + b"\r\n" + b"0\r\n\r\n"
        r, c = exchange(self.daemon.port, http_req("POST", "/echo", host,
                                                    [("Transfer-Encoding", "chunked")], small))
        c.close()
        self.assertEqual((r.status, r.body), (200, b"d" * 256))


class MaxConnectionsTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--max-connections", "5")

    def test_max_connections_wait_then_served(self):
        be = self.backend("maxconn")
        host = self.route(be.addr)
        held = []
        waiting = []
        try:
            for i in range(5):
                c = Conn(self.daemon.port)
                c.send(http_req("GET", "/held/%d" % i, host))
                self.assertEqual(c.read_response().status, 200)
                held.append(c)
            for i in range(20):
                c = Conn(self.daemon.port, timeout=20)
                c.send(http_req("GET", "/waiting/%d" % i, host))
                waiting.append(c)
            self.assertTrue(waiting[0].quiet_for(1.0), "a 6th connection was served while 5 "
                            "were open")
            self.assertEqual(be.records("/waiting/0"), [])
            st = self.daemon.status()
            self.assertLessEqual(st["workers"][0]["connections"], 5, st)
            held[0].close()
            r = waiting[0].read_response()
            self.assertEqual(r.status, 200, "the waiting connection is served once one closed")
            for c in held + waiting:
                c.close()
            held, waiting = [], []
            for i in range(10):  # the worker is fine and serves new connections
                self.assertEqual(self.daemon.get(host, "/after/%d" % i).status, 200)
        finally:
            for c in held + waiting:
                c.close()

    def test_max_connections_queue_drains(self):
        be = self.backend("drain")
        host = self.route(be.addr)
        conns = []
        try:
            for i in range(25):
                c = Conn(self.daemon.port, timeout=30)
                c.send(http_req("GET", "/q/%d" % i, host, [("Connection", "close")]))
                conns.append(c)
            for i, c in enumerate(conns):
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, be.hello()), i)
        finally:
            for c in conns:
                c.close()


# --- 8. passive health

class PassiveHealthTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DOWN = 3.0
    DAEMON_ARGS = ("--connect-timeout", "1s", "--backend-down-time", "3s")

    def test_health_refused_backend_skipped(self):
        be = self.backend("alive")
        dead, addr = closed_port()
        self.addCleanup(dead.close)
        host = self.route(addr, be.addr)
        for i in range(20):
            r = self.daemon.get(host, "/h/%d" % i)
            self.assertEqual((r.status, r.body), (200, be.hello()), "request %d" % i)
        self.assertEqual(len(be.records()), 20)

    def test_health_down_time(self):
        be = self.backend("alive2")
        bh = Blackhole()
        self.addCleanup(bh.close)
        host = self.route(bh.addr, be.addr)
        c = KeepAlive(self.daemon.port, timeout=20)
        self.addCleanup(c.close)

        def timed(path):
            t0 = time.monotonic()
            r = c.request(path, host=host)
            self.assertEqual((r.status, r.body), (200, be.hello()), path)
            return time.monotonic() - t0
        took = [timed("/first/%d" % i) for i in range(2)]
        self.assertEqual(len([t for t in took if t >= T_LO]), 1,
                         "one of two round-robin requests waited for the connect timeout, "
                         "then went to the live backend: %r" % took)
        t_fail = time.monotonic()
        fast = [timed("/during/%d" % i) for i in range(6)]
        self.assertLess(time.monotonic() - t_fail, self.DOWN - 0.5, "the test was too slow")
        self.assertLess(max(fast), 0.5, "the down backend was tried again within its down time: "
                        "%r" % fast)
        time.sleep(max(0.0, t_fail + self.DOWN + 0.5 - time.monotonic()))  # the subject is time
        after = [timed("/after/%d" % i) for i in range(2)]
        self.assertEqual(len([t for t in after if t >= T_LO]), 1,
                         "after its down time the backend is tried again: %r" % after)

    def test_health_all_down_502(self):
        d1, a1 = closed_port()
        d2, a2 = closed_port()
        self.addCleanup(d1.close)
        self.addCleanup(d2.close)
        host = self.route(a1, a2)
        for i in range(3):
            r = self.daemon.get(host, "/all-down/%d" % i)
            assert_error_page(self, r.status, r.headers, r.body, 502)


# --- 9. error pages with overrides

class ErrorPageTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    OVERRIDES = {404: b"<html><body>custom not found</body></html>\n",
                 413: b"<html><body>custom too large</body></html>\n",
                 502: b"<html><body>custom bad gateway</body></html>\n"}

    @classmethod
    def setUpClass(cls):
        cls.pages = tempfile.mkdtemp(prefix="haloyd-pages-")
        os.chmod(cls.pages, 0o755)
        for code, body in cls.OVERRIDES.items():
            path = os.path.join(cls.pages, "%d.html" % code)
            with open(path, "wb") as f:
                f.write(body)
            os.chmod(path, 0o644)
        cls.DAEMON_ARGS = ("--header-timeout", "1s", "--response-timeout", "1s",
                           "--max-body", "1k", "--error-pages", cls.pages)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.pages, ignore_errors=True)

    def page(self, data, method="GET"):
        r, c = exchange(self.daemon.port, data, method)
        c.close()
        return r

    def test_error_pages(self):
        be = self.backend("pages")
        host = self.route(be.addr)
        dead, addr = closed_port()
        self.addCleanup(dead.close)
        dead_host = self.route(addr)
        cases = [
            (400, b"GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n"),
            (404, http_req("GET", "/", unique_host("unknown"))),
            (413, http_req("POST", "/echo", host, [("Content-Length", "4096")], b"e" * 4096)),
            (414, http_req("GET", "/" + "u" * 9000, host)),
            (431, http_req("GET", "/", host, [("X-Big", "h" * 20000)])),
            (502, http_req("GET", "/", dead_host)),
            (504, http_req("GET", "/slow?ms=8000", host)),
        ]
        for code, data in cases:
            with self.subTest(code=code):
                r = self.page(data)
                assert_error_page(self, r.status, r.headers, r.body, code,
                                  self.OVERRIDES.get(code))
        with self.subTest(code=408):
            c = Conn(self.daemon.port)
            try:
                c.send(("GET / HTTP/1.1\r\nHost: %s\r\n" % host).encode())
                _, data = c.wait_closed(T_HI + 4)
            finally:
                c.close()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            hdrs = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]]
            self.assertTrue(lines[0].startswith("HTTP/1.1 408 "), data[:300])
            assert_error_page(self, 408, hdrs, body, 408)
        with self.subTest(what="HEAD gets the head of a page"):
            r = self.page(http_req("HEAD", "/", unique_host("unknown")), "HEAD")
            self.assertEqual(r.status, 404)


# --- 10. access log switched off and sampled

class AccessLogOffTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--access-log", "off")

    def test_access_log_off(self):
        be = self.backend("nolog")
        host = self.route(be.addr)
        mark = self.daemon.log_size()
        for i in range(20):
            self.assertEqual(self.daemon.get(host, "/quiet/%d" % i).status, 200)
        self.assertEqual(self.daemon.get(unique_host("quiet404"), "/").status, 404)
        # An entry is written before its response completes: none can come later.
        self.assertEqual(len(be.records()), 20)
        text = self.daemon.log_text(mark)
        self.assertEqual([ln for ln in text.splitlines() if " access " in ln], [],
                         "access entries with --access-log off")


class AccessLogSampleTest(RouteMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--access-log-sample", "10")
    N = 300

    def test_access_log_sampled(self):
        be = self.backend("sample")
        host = self.route(be.addr)
        mark = self.daemon.log_size()
        c = KeepAlive(self.daemon.port)
        try:
            for i in range(self.N):
                self.assertEqual(c.request("/s/%d" % i, host=host).status, 200)
        finally:
            c.close()
        n = len(access_lines(self.daemon.log_text(mark), host))
        # 1 in 10 of 300: 30 expected; a random sample stays in [10, 55] but for ~1e-5.
        self.assertTrue(10 <= n <= 55, "%d of %d requests were logged with --access-log-sample 10"
                        % (n, self.N))


if __name__ == "__main__":
    unittest.main()
