"""Integration tests of the response cache's later points (issue 17's rest):
the counters of `haloyd-ctl cache stats` and /metrics' figures, a fill that
goes on when its client leaves, compressed variants stored per encoding, and
a hit's body written from the map (pipelined hits, a slow client).

The knob backend is test_cache.py's. Every wait is bounded.
"""
import gzip
import json
import os
import socket
import threading
import time

import brotli
import zstandard

from . import listener
from .harness import request, wait_for
from .test_cache import CacheTestBase

EVENTS = ("hits", "misses", "revalidated_304", "revalidated_200", "stale", "stores",
          "evictions", "bypasses")


class CacheCountersTest(CacheTestBase):
    # A small budget, so a few 300 KiB entries evict the oldest.
    DAEMON_ARGS = ("--cache-max-size", "1m")

    def stats(self):
        return json.loads(self.daemon.ctl_ok("--json", "cache", "stats"))

    def route_row(self, host):
        rows = [r for r in self.stats()["routes"] if r["route"] == host]
        return rows[0] if rows else dict((e, 0) for e in EVENTS)

    def test_counters_per_route_and_total(self):
        host = self.croute("ccount")
        other = self.croute("ccount2")
        self.kb.set("/c1", [("Cache-Control", "max-age=600")], body=b"one")
        self.kb.set("/c2", [("Cache-Control", "no-cache"), ("ETag", '"v1"')], body=b"two",
                    revalidate=True)
        before = self.stats()
        self.get(host, "/c1")                                   # miss, store
        self.get(host, "/c1")                                   # hit
        self.get(host, "/c1", {"If-None-Match": "x"})           # hit (a 200: no match)
        self.get(host, "/c1", {"Cache-Control": "no-cache"})    # bypass, store
        self.get(host, "/c2")                                   # miss, store
        self.get(host, "/c2")                                   # 304 from the backend, store
        self.kb.set("/c2", [("Cache-Control", "no-cache"), ("ETag", '"v2"')], body=b"new")
        self.assertEqual(self.get(host, "/c2").body, b"new")    # a new 200, store
        self.get(other, "/c1")                                  # another route: its miss
        want = {"hits": 2, "misses": 2, "revalidated_304": 1, "revalidated_200": 1,
                "stale": 0, "stores": 5, "evictions": 0, "bypasses": 1}
        row = self.route_row(host)
        self.assertEqual(dict((e, row[e]) for e in EVENTS), want)
        self.assertEqual((self.route_row(other)["misses"], self.route_row(other)["stores"]),
                         (1, 1))
        after = self.stats()
        self.assertEqual(after["hits"] - before["hits"], 2)
        self.assertEqual(after["misses"] - before["misses"], 3)
        self.assertEqual(after["stores"] - before["stores"], 6)
        text = self.daemon.ctl_ok("cache", "stats")
        self.assertIn("route: %s" % host, text)
        self.assertIn("revalidated_304: ", text)
        metrics = json.loads(self.daemon.ctl_ok("--json", "stats"))
        got = dict((r["labels"], r["value"]) for r in metrics
                   if r["metric"] == "haloyd_cache_events_total")
        self.assertEqual(got['route="%s",event="hits"' % host], 2)
        self.assertEqual(got['route="%s",event="revalidated_200"' % host], 1)

    def test_evictions_counted(self):
        host = self.croute("cevict")
        for i in range(6):
            self.kb.set("/e%d" % i, [("Cache-Control", "max-age=600")], body=b"e" * 300000)
            self.assertEqual(self.get(host, "/e%d" % i).status, 200)
        row = self.route_row(host)
        self.assertEqual(row["stores"], 6)
        self.assertGreaterEqual(row["evictions"], 3)
        self.assertLessEqual(self.stats()["bytes"], 1 << 20)


class SlowBodyBackend:
    """An HTTP/1.1 backend whose body comes in 64 KiB pieces, 20 ms apart; it
    counts requests and records whether it could send each body to the end."""

    def __init__(self, size, headers=("Cache-Control: max-age=600",)):
        self.size = size
        self.headers = list(headers)
        self.lock = threading.Lock()
        self.count = 0
        self.finished = 0
        self.cut = 0
        self.sock = listener.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def body(self):
        return bytes(range(256)) * (self.size // 256)

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.sock)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(10)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                got = c.recv(4096)
                if not got:
                    return
                data += got
            with self.lock:
                self.count += 1
            head = "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\nConnection: close\r\n\r\n" % (
                self.size, "\r\n".join(self.headers))
            c.sendall(head.encode())
            body = self.body()
            for i in range(0, len(body), 65536):
                c.sendall(body[i:i + 65536])
                time.sleep(0.02)
            with self.lock:
                self.finished += 1
        except OSError:
            with self.lock:
                self.cut += 1
        finally:
            c.close()

    def stop(self):
        self.sock.close()


class CacheFillDetachTest(CacheTestBase):

    def stored(self, host):
        rows = json.loads(self.daemon.ctl_ok("--json", "cache", "stats"))["routes"]
        return sum(r["stores"] for r in rows if r["route"] == host)

    def leave_early(self, host, path, extra="", want=20000):
        """Reads the head and a few bytes of a GET, then goes away."""
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, extra)).encode())
        got = b""
        while len(got) < want or b"\r\n\r\n" not in got:
            part = s.recv(8192)
            self.assertTrue(part, "the response started")
            got += part
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
        s.close()

    def test_fill_goes_on_when_the_client_leaves(self):
        be = SlowBodyBackend(2 << 20)
        self.addCleanup(be.stop)
        host = self.croute("cdetach", "--cache-debug", "on", backend=be.addr)
        self.leave_early(host, "/big")
        # The backend is read to its end and the entry committed without a client.
        wait_for(lambda: be.finished == 1, 15, "the backend sent its whole body")
        wait_for(lambda: self.stored(host) == 1, 10, "the entry stored")
        r = self.get(host, "/big")
        self.assertEqual((r.status, r.header("X-Cache")), (200, "HIT"))
        self.assertEqual(r.body, be.body())
        self.assertEqual((be.count, be.cut), (1, 0))
        self.assertIn(" 499 ", self.daemon.log_text())

    def test_detached_fill_of_a_compressed_variant(self):
        be = SlowBodyBackend(1 << 20, headers=("Cache-Control: max-age=600",
                                               "Content-Type: text/html"))
        self.addCleanup(be.stop)
        host = self.croute("cdetz", "--compress", "on", "--cache-debug", "on",
                           backend=be.addr)
        self.leave_early(host, "/z", "Accept-Encoding: gzip\r\n", want=1)
        wait_for(lambda: be.finished == 1, 15, "the backend sent its whole body")
        wait_for(lambda: self.stored(host) == 1, 10, "the gzip variant stored")
        r = self.get(host, "/z", {"Accept-Encoding": "gzip"})
        self.assertEqual((r.status, r.header("X-Cache"), r.header("Content-Encoding")),
                         (200, "HIT", "gzip"))
        self.assertEqual(gzip.decompress(r.body), be.body())
        self.assertEqual(be.count, 1)

    def test_over_the_limit_the_exchange_ends(self):
        be = SlowBodyBackend(2 << 20)
        self.addCleanup(be.stop)
        host = self.croute("cdetlim", "--cache-max-object", "100k", backend=be.addr)
        self.leave_early(host, "/big")
        # Nobody wants the rest: the backend's connection is closed under it.
        wait_for(lambda: be.cut == 1, 15, "the backend cut off")
        self.assertEqual(be.finished, 0)
        r = self.get(host, "/big")
        self.assertEqual((r.status, len(r.body)), (200, 2 << 20))
        self.assertEqual(be.count, 2)


def decode(r):
    enc = r.header("Content-Encoding")
    if enc is None:
        return r.body
    if enc == "gzip":
        return gzip.decompress(r.body)
    if enc == "br":
        return brotli.decompress(r.body)
    if enc == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(r.body)
    raise AssertionError("unexpected Content-Encoding %r" % enc)


class CacheCompressedVariantTest(CacheTestBase):

    def test_each_encoding_its_own_hit(self):
        host = self.croute("cczv", "--compress", "on", "--cache-debug", "on")
        page = b"<html>" + b"a cacheable page, compressed once per encoding. " * 400 + b"</html>"
        self.kb.set("/page", [("Cache-Control", "max-age=600"), ("Content-Type", "text/html"),
                              ("ETag", '"p1"')], body=page)
        clients = (("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"), ("identity", None))
        for ae, want in clients:
            for attempt in ("MISS", "HIT"):
                r = self.get(host, "/page", {"Accept-Encoding": ae})
                self.assertEqual((r.status, r.header("X-Cache")), (200, attempt), (ae, r))
                self.assertEqual(r.header("Content-Encoding"), want, ae)
                self.assertEqual(decode(r), page, ae)
                self.assertIn("accept-encoding", (r.header("Vary") or "").lower())
                if want is not None:
                    self.assertEqual(r.header("ETag"), 'W/"p1"')
                    self.assertLess(len(r.body), len(page) // 4)
        self.assertEqual(self.kb.count("/page"), 4)
        # Another way of asking for gzip shares gzip's variant: keyed by the choice.
        r = self.get(host, "/page", {"Accept-Encoding": "deflate, gzip;q=0.9, br;q=0.1"})
        self.assertEqual((r.header("X-Cache"), r.header("Content-Encoding")), ("HIT", "gzip"))
        self.assertEqual(decode(r), page)
        r = self.get(host, "/page")
        self.assertEqual((r.header("X-Cache"), r.header("Content-Encoding")), ("HIT", None))
        self.assertEqual(self.kb.count("/page"), 4)

    def test_encoded_variant_revalidated(self):
        host = self.croute("cczr", "--compress", "on", "--cache-debug", "on")
        page = b"revalidate me " * 200
        self.kb.set("/rv", [("Cache-Control", "no-cache"), ("Content-Type", "text/plain"),
                            ("ETag", '"r1"')], body=page, revalidate=True)
        r = self.get(host, "/rv", {"Accept-Encoding": "gzip"})
        self.assertEqual((r.header("X-Cache"), r.header("Content-Encoding")), ("MISS", "gzip"))
        self.assertEqual(self.kb.last("/rv")[2].get("if-none-match"), None)
        r = self.get(host, "/rv", {"Accept-Encoding": "gzip"})
        # The stored variant's validator went to the backend; its 304 serves the stored bytes.
        self.assertEqual(r.header("X-Cache"), "REVALIDATED")
        self.assertEqual((r.header("Content-Encoding"), r.header("ETag")), ("gzip", 'W/"r1"'))
        self.assertEqual(decode(r), page)


class CacheConformanceMoreTest(CacheTestBase):
    """The defects the http-tests/cache-tests run found (issue 17 point 4)."""

    def test_backend_304_with_content_length(self):
        # RFC 9112 6.3: a 304 ends at its head; its Content-Length is the stored body's.
        host = self.croute("c304cl", "--cache-debug", "on")
        self.kb.set("/cl", [("Cache-Control", "no-cache"), ("ETag", '"c"')],
                    body=b"thirty-six bytes of a stored body..\n", revalidate=True, cl304=True)
        self.assertEqual(self.get(host, "/cl").status, 200)
        r = self.get(host, "/cl")
        self.assertEqual((r.status, r.header("X-Cache")), (200, "REVALIDATED"))
        self.assertEqual(r.body, b"thirty-six bytes of a stored body..\n")
        # The backend connection was not left waiting for a body: the next request is quick.
        t = time.monotonic()
        self.assertEqual(self.get(host, "/cl").status, 200)
        self.assertLess(time.monotonic() - t, 2)

    def test_cdn_cache_control_rules(self):
        host = self.croute("ccdn", "--cache-debug", "on")
        self.kb.set("/a", [("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=600")])
        self.kb.set("/b", [("Cache-Control", "max-age=600"), ("CDN-Cache-Control", "private")])
        self.kb.set("/c", [("Cache-Control", "no-store"),
                           ("CDN-Cache-Control", "max-age=600, &&&")])
        for path, second in (("/a", "HIT"), ("/b", "MISS"), ("/c", "MISS")):
            self.assertEqual(self.get(host, path).header("X-Cache"), "MISS", path)
            self.assertEqual(self.get(host, path).header("X-Cache"), second, path)


def read_response(sock, buf, head_only=False):
    """One HTTP/1.1 response with Content-Length off sock: (head, body, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        part = sock.recv(65536)
        if not part:
            raise AssertionError("connection closed in a head: %r" % buf[:200])
        buf += part
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head_only:
        return head, b"", buf
    while len(buf) < length:
        part = sock.recv(65536)
        if not part:
            raise AssertionError("connection closed after %d of %d bytes" % (len(buf), length))
        buf += part
    return head, buf[:length], buf[length:]


class CacheHitWriteTest(CacheTestBase):
    """A hit's body goes from the map to the socket in one write behind the
    buffered head (cacheserve.c, conn_write_direct): pipelined answers stay in
    order, and a slow client keeps its body while the entry is replaced."""

    def test_pipelined_hits_in_order(self):
        host = self.croute("cpipe")
        body = os.urandom(100 << 10)
        self.kb.set("/p", [("Cache-Control", "max-age=600")], body=body)
        self.assertEqual(self.get(host, "/p").body, body)
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        self.addCleanup(s.close)
        req = "%s /p HTTP/1.1\r\nHost: %s\r\n\r\n"
        s.sendall(((req % ("GET", host)) + (req % ("HEAD", host)) + (req % ("GET", host))).encode())
        buf = b""
        for method in ("GET", "HEAD", "GET"):
            head, got, buf = read_response(s, buf, head_only=method == "HEAD")
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:100])
            self.assertIn(b"\r\nAge: ", head)
            self.assertEqual((method, len(got), got == body),
                             (method, 0 if method == "HEAD" else len(body), method != "HEAD"))
        self.assertEqual((buf, self.kb.count("/p")), (b"", 1))

    def test_slow_client_keeps_its_body(self):
        host = self.croute("cslow")
        old, new = os.urandom(3 << 20), os.urandom(3 << 20)
        self.kb.set("/s", [("Cache-Control", "max-age=600")], body=old)
        self.assertEqual(self.get(host, "/s").body, old)
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(15)
        s.connect(("127.0.0.1", self.daemon.port))
        s.sendall(("GET /s HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
        first = s.recv(4096)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:100])
        # The entry replaced under the slow response: its pages are reused.
        self.daemon.ctl_ok("cache", "purge", "http://%s/s" % host)
        self.kb.set("/s", [("Cache-Control", "max-age=600")], body=new)
        wait_for(lambda: self.get(host, "/s").body == new, 10, "the new body served")
        self.assertEqual((self.get(host, "/s").body == new, self.kb.count("/s")), (True, 2))
        _, got, rest = read_response(s, first)
        self.assertEqual((len(got), got == old, rest), (len(old), True, b""))
