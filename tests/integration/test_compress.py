"""Integration tests of on-the-fly response compression (issue 17, point 5):
`route set --compress on|off` and what a client gets with it.

The real haloyd, backend.py's /page (a big text body, headers as asked) and
/sse knobs, and real clients: curl --compressed, http.client (HTTP/1.1, the
raw encoded bytes) and test_http2's H2Client (HTTP/2 with prior knowledge),
decoded with python's gzip (zlib), brotli and zstandard. Waits are bounded.
"""
import http.client
import json
import random
import shutil
import subprocess
import time
import zlib

import brotli
import zstandard

from . import test_http2 as h2t
from .h2backend import H2Backend
from .harness import DaemonTestCase, HTTP_TIMEOUT, unique_host
from .test_datapath import RouteMixin

CURL = shutil.which("curl") or "/usr/bin/curl"
PAGE = 200000                   # the /page body used by most tests
SSE_GAP_MS = 3000               # between the two events of the streaming check


def page_bytes(n):
    unit = b'<div class="row">{"id": 12345, "name": "haloyd", "ok": true}</div>\n'
    return (unit * (n // len(unit) + 1))[:n]


def decode(enc, data):
    if enc == "gzip":
        return zlib.decompress(data, 16 + 15)
    if enc == "br":
        return brotli.decompress(data)
    if enc == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise AssertionError("unexpected content-encoding %r" % enc)


class Decoder:
    """A streaming decoder: bytes in as they arrive, text out as far as it goes."""

    def __init__(self, enc):
        self.enc = enc
        if enc == "gzip":
            self.d = zlib.decompressobj(16 + 15)
        elif enc == "br":
            self.d = brotli.Decompressor()
        else:
            self.d = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data):
        if self.enc == "br":
            return self.d.process(data)
        return self.d.decompress(data)


class H1:
    """One HTTP/1.1 response: status, lower-cased headers, the raw (encoded) body."""

    def __init__(self, port, host, path, headers=(), method="GET"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            c.request(method, path, headers=dict([("Host", host)] + list(headers)))
            r = c.getresponse()
            self.status = r.status
            self.headers = [(k.lower(), v) for k, v in r.getheaders()]
            self.body = r.read()
        finally:
            c.close()

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None


class CompressTest(RouteMixin, DaemonTestCase):
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("cz")

    def croute(self, label, on=True):
        host = self.route(self.be.addr, label=label)
        if on:
            self.daemon.ctl_ok("route", "set", host, "--compress", "on")
        return host

    def h2(self):
        c = h2t.H2Client(self.daemon.port)
        self.addCleanup(c.close)
        return c

    def get(self, host, path, ae, headers=(), method="GET"):
        hdrs = list(headers) + ([("Accept-Encoding", ae)] if ae is not None else [])
        return H1(self.daemon.port, host, path, hdrs, method)

    # --- the setting

    def test_setting_shown_and_default_off(self):
        host = self.croute("czset", on=False)

        def shown():
            return json.loads(self.daemon.ctl_ok("--json", "route", "show", host))["compress"]

        def listed():
            rows = json.loads(self.daemon.ctl_ok("--json", "route", "list"))
            return [r for r in rows if r["name"] == host][0]["settings"]
        self.assertEqual((shown(), listed()), ("off", []))
        self.assertEqual(self.get(host, "/page", "gzip").header("content-encoding"), None)
        self.daemon.ctl_ok("route", "set", host, "--compress", "on")
        self.assertEqual((shown(), listed()), ("on", ["compress=on"]))
        self.assertIn("compress: on", self.daemon.ctl_ok("route", "show", host).splitlines())
        self.assertEqual(self.get(host, "/page", "gzip").header("content-encoding"), "gzip")
        self.daemon.ctl_ok("route", "set", host, "--compress", "off")
        self.assertEqual(shown(), "off")
        self.assertEqual(self.get(host, "/page", "gzip").header("content-encoding"), None)

    # --- each encoding, HTTP/1.1 and HTTP/2

    def test_each_encoding_http11(self):
        host = self.croute("czh1")
        for enc in ("gzip", "br", "zstd"):
            for path in ("/page?bytes=%d" % PAGE, "/page?bytes=%d&chunked=1" % PAGE):
                r = self.get(host, path, enc)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("content-encoding"), enc, (path, r.headers))
                self.assertIsNone(r.header("content-length"))
                self.assertEqual(r.header("transfer-encoding"), "chunked")
                self.assertEqual(r.header("vary"), "Accept-Encoding")
                self.assertLess(len(r.body), PAGE // 4)
                self.assertEqual(decode(enc, r.body), page_bytes(PAGE), (enc, path))

    def test_each_encoding_http2(self):
        host = self.croute("czh2")
        c = self.h2()
        for enc in ("gzip", "br", "zstd"):
            st = c.get(host, "/page?bytes=%d" % PAGE, extra=[("accept-encoding", enc)])
            self.assertEqual(st.status, 200)
            self.assertEqual(st.header("content-encoding"), enc)
            self.assertIsNone(st.header("content-length"))
            self.assertEqual(st.header("vary"), "Accept-Encoding")
            self.assertEqual(decode(enc, bytes(st.data)), page_bytes(PAGE), enc)

    def test_negotiation_prefers_zstd_then_br(self):
        host = self.croute("czneg")
        cases = [("gzip, deflate, br, zstd", "zstd"), ("gzip, br", "br"),
                 ("br;q=0.5, gzip", "gzip"), ("zstd;q=0, *", "br"),
                 ("identity", None), ("gzip;q=0", None)]
        for ae, want in cases:
            r = self.get(host, "/page", ae)
            self.assertEqual(r.header("content-encoding"), want, ae)
            if want is None:
                self.assertEqual(r.body, page_bytes(100000), ae)

    def test_curl_compressed(self):
        host = self.croute("czcurl")
        for extra in (["-H", "Accept-Encoding: gzip"], []):
            cmd = [CURL, "-sS", "--compressed", "--max-time", "30", "-D", "-", "-o", "-",
                   "-H", "Host: %s" % host] + extra + [
                   "http://127.0.0.1:%d/page?bytes=%d" % (self.daemon.port, PAGE)]
            p = subprocess.run(cmd, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            head, _, body = p.stdout.partition(b"\r\n\r\n")
            self.assertIn(b"content-encoding: ", head.lower())
            if extra:
                self.assertIn(b"content-encoding: gzip", head.lower())
            self.assertEqual(body, page_bytes(PAGE))

    def test_big_body_through_back_pressure(self):
        """16 MiB that compress only 2x: the sink fills, the stage waits, nothing is lost."""
        host = self.croute("czbig")
        n = 16 << 20
        want = random.Random(n).randbytes(n // 2).hex().encode()
        path = "/page?bytes=%d&hex=1" % n
        for enc in ("gzip", "br", "zstd"):
            c = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=30)
            self.addCleanup(c.close)
            c.request("GET", path, headers={"Host": host, "Accept-Encoding": enc})
            r = c.getresponse()
            self.assertEqual(r.getheader("content-encoding"), enc)
            d, got = Decoder(enc), bytearray()
            while True:
                chunk = r.read1(1 << 16)
                if not chunk:
                    break
                got += d.feed(chunk)
            self.assertEqual(bytes(got), want, enc)
            c.close()
        c = self.h2()
        st = c.get(host, path, extra=[("accept-encoding", "zstd")], timeout=60)
        self.assertEqual(st.header("content-encoding"), "zstd")
        self.assertEqual(decode("zstd", bytes(st.data)), want)

    def test_h2c_backend_body_and_trailers(self):
        """From an HTTP/2 backend: the body compressed, its trailers after it unchanged."""
        be = H2Backend("czh2c").start()
        self.addCleanup(be.stop)
        host = unique_host("czh2c")
        self.daemon.ctl_ok("route", "add", host, be.addr, "--proto", "h2c")
        self.daemon.ctl_ok("route", "set", host, "--compress", "on")
        body = page_bytes(300000)
        c = self.h2()
        for enc in ("gzip", "br", "zstd"):
            st = c.get(host, "/echo", method="POST", body=body, extra=[
                ("content-type", "text/plain"), ("accept-encoding", enc)], timeout=30)
            self.assertEqual(st.status, 200)
            self.assertEqual(st.header("content-encoding"), enc)
            self.assertEqual(decode(enc, bytes(st.data)), body, enc)
            self.assertIn(("grpc-status", "0"), st.trailers or [], st.trailers)

    # --- not compressed

    def test_not_compressed_when_it_must_not_be(self):
        host = self.croute("czno")
        off = self.route(self.be.addr, label="czoff")
        cases = [
            (host, "/page?ce=gzip", ()),                        # encoded already
            (host, "/page?cc=no-transform", ()),                # no-transform
            (host, "/page", [("Range", "bytes=0-99")]),         # a range request
            (host, "/page?bytes=100", ()),                      # small
            (host, "/page?type=image/png", ()),                 # not a text type
            (host, "/page?type=application/octet-stream", ()),
            (off, "/page", ()),                                 # route off
        ]
        for h, path, extra in cases:
            r = self.get(h, path, "gzip, br, zstd", extra)
            self.assertEqual(r.status, 200)
            ce = r.header("content-encoding")
            self.assertEqual(ce, "gzip" if "ce=gzip" in path else None, (path, r.headers))
            self.assertIsNotNone(r.header("content-length"), path)
        r = self.get(host, "/page", "gzip", method="HEAD")
        self.assertIsNone(r.header("content-encoding"))
        for code in (204, 304):
            r = self.get(host, "/status?code=%d" % code, "gzip")
            self.assertEqual(r.status, code)
            self.assertIsNone(r.header("content-encoding"))

    def test_vary_merged_and_etag_weakened(self):
        host = self.croute("czhdr")
        r = self.get(host, "/page?etag=%22v1%22&vary=Origin", "gzip")
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(r.header("etag"), 'W/"v1"')
        self.assertEqual(r.header("vary"), "Origin, Accept-Encoding")
        r = self.get(host, "/page?etag=W/%22v1%22", "gzip")
        self.assertEqual(r.header("etag"), 'W/"v1"')
        # Not accepted by this client: the same body, strong ETag, and Vary still.
        r = self.get(host, "/page?etag=%22v1%22", None)
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.header("etag"), '"v1"')
        self.assertEqual(r.header("vary"), "Accept-Encoding")

    # --- streaming

    def test_sse_events_not_held_http11(self):
        host = self.croute("czsse1")
        for enc in ("gzip", "br", "zstd"):
            c = http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=HTTP_TIMEOUT)
            self.addCleanup(c.close)
            c.request("GET", "/sse?n=2&ms=%d" % SSE_GAP_MS,
                      headers={"Host": host, "Accept-Encoding": enc})
            r = c.getresponse()
            self.assertEqual(r.getheader("content-encoding"), enc)
            d, text = Decoder(enc), b""
            deadline = time.time() + HTTP_TIMEOUT
            while b"event 0" not in text or not text.endswith(b"\n\n"):
                self.assertLess(time.time(), deadline, "the first event did not arrive")
                text += d.feed(r.read1(65536))
            sent0 = float(text.split(b"event 0 ")[1].split(b"\n")[0])
            # The second event is sent SSE_GAP_MS after the first: it cannot be here yet.
            self.assertLess(time.time(), sent0 + SSE_GAP_MS / 1000.0, enc)
            self.assertNotIn(b"event 1", text)
            c.close()

    def test_sse_events_not_held_http2(self):
        host = self.croute("czsse2")
        c = self.h2()
        for enc in ("gzip", "br", "zstd"):
            sid = c.request(host, "/sse?n=2&ms=%d" % SSE_GAP_MS, extra=[("accept-encoding", enc)])
            st = c.streams[sid]
            d = Decoder(enc)

            def first_event():
                text = d.feed(bytes(st.data))
                st.data.clear()
                first_event.text += text
                return b"event 0" in first_event.text and first_event.text.endswith(b"\n\n")
            first_event.text = b""
            c.wait(first_event, "the first event")
            self.assertEqual(st.header("content-encoding"), enc)
            sent0 = float(first_event.text.split(b"event 0 ")[1].split(b"\n")[0])
            self.assertLess(time.time(), sent0 + SSE_GAP_MS / 1000.0, enc)
            c.response(sid, timeout=HTTP_TIMEOUT)
