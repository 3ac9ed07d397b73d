"""Integration tests of the shared response cache (issue 17, points 1-3):
`route set --cache on`, RFC 9111 storing, freshness, Vary, revalidation,
conditional answers, stale-if-error, invalidation, the object size limit,
entries kept across a restart and a corrupt entry read as a miss.

The backend is a knob backend (KnobBackend below): the test sets, per path,
the status, headers and body it answers, and reads how many requests each
path got and with which headers. Every wait is bounded.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler

from . import listener
from .harness import DaemonTestCase, request, unique_host, wait_for


def http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


class _KnobHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _serve(self):
        kb = self.server.knobs
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path
        with kb.lock:
            kb.counts[path] += 1
            kb.seen.append((self.command, path, dict((k.lower(), v) for k, v in
                                                      self.headers.items())))
            k = kb.knobs.get(path, {"status": 200, "headers": [], "body": b"default\n"})
        status, headers, body = k["status"], list(k["headers"]), k["body"]
        if k.get("delay"):
            time.sleep(k["delay"])
        etag = dict((h.lower(), v) for h, v in headers).get("etag")
        # If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x".
        inm = (self.headers.get("If-None-Match") or "").replace("W/", "")
        if k.get("revalidate") and etag and inm == etag.replace("W/", ""):
            status, body = 304, b""
        self.send_response(status)
        for h, v in headers:
            self.send_header(h, v)
        if status != 304 or k.get("cl304"):
            # A 304 may name the stored representation's length (RFC 9110 8.6).
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status != 304:
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = _serve


class KnobBackend:
    """An HTTP/1.1 backend whose answers the test sets per path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.knobs = {}
        self.counts = collections.Counter()
        self.seen = []
        self.srv = listener.ThreadingHTTPServer(("127.0.0.1", 0), _KnobHandler)
        self.srv.daemon_threads = True
        self.srv.knobs = self
        self.addr = "127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def set(self, path, headers=(), body=b"body\n", status=200, revalidate=False, delay=0,
            cl304=False):
        with self.lock:
            self.knobs[path] = {"status": status, "headers": list(headers), "body": body,
                                "revalidate": revalidate, "delay": delay, "cl304": cl304}

    def count(self, path):
        with self.lock:
            return self.counts[path]

    def last(self, path):
        with self.lock:
            return [s for s in self.seen if s[1] == path][-1]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class CacheTestBase(DaemonTestCase):
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.kb = KnobBackend()

    @classmethod
    def tearDownClass(cls):
        cls.kb.stop()
        super().tearDownClass()

    def croute(self, label, *extra, backend=None):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, backend or self.kb.addr)
        self.daemon.ctl_ok("route", "set", host, "--cache", "on", *extra)
        return host

    def get(self, host, path, headers=None, method="GET"):
        return request(self.daemon.port, path, host=host, headers=headers, method=method)

    def access(self, path, since):
        """The cache field of the access entries of path, in order."""
        text = self.daemon.log_text(since)
        return re.findall(r"access \S+ \S+ %s \d+ cache=(\w+)" % re.escape(path), text)


class CacheTest(CacheTestBase):

    def twice(self, label, path, headers, req_headers=None, extra=()):
        host = self.croute(label, *extra)
        self.kb.set(path, headers, body=b"payload " + path.encode())
        a = self.get(host, path, req_headers)
        b = self.get(host, path, req_headers)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(a.body, b"payload " + path.encode())
        self.assertEqual(b.body, a.body)
        return host, a, b

    # --- storing and freshness

    def test_setting_shown(self):
        host = self.croute("cset", "--cache-max-object", "1m")
        shown = self.daemon.ctl_ok("route", "show", host)
        self.assertIn("cache: on", shown)
        self.assertIn("cache_max_object: 1m", shown)
        rc, _, err = self.daemon.ctl("route", "set", host, "--cache-max-object", "2g")
        self.assertNotEqual(rc, 0, err)

    def test_max_age_hit_has_age(self):
        mark = self.daemon.log_size()
        _, a, b = self.twice("cmax", "/max-age", [("Cache-Control", "max-age=60")])
        self.assertEqual(self.kb.count("/max-age"), 1)
        self.assertIsNone(a.header("Age"))
        self.assertIsNotNone(b.header("Age"))
        self.assertEqual(b.header("Cache-Control"), "max-age=60")
        wait_for(lambda: self.access("/max-age", mark) == ["MISS", "HIT"], 5,
                 "the access entries MISS then HIT", self.daemon.log_tail)

    def test_off_by_default(self):
        host = unique_host("coff")
        self.daemon.ctl_ok("route", "add", host, self.kb.addr)
        self.kb.set("/off", [("Cache-Control", "max-age=60")])
        self.get(host, "/off")
        self.get(host, "/off")
        self.assertEqual(self.kb.count("/off"), 2)

    def test_s_maxage_and_expires(self):
        self.twice("csmax", "/smax", [("Cache-Control", "s-maxage=60")])
        self.assertEqual(self.kb.count("/smax"), 1)
        self.twice("cexp", "/exp", [("Expires", http_date(time.time() + 120)),
                                    ("Date", http_date(time.time()))])
        self.assertEqual(self.kb.count("/exp"), 1)
        self.twice("cexp0", "/exp0", [("Expires", "0")])
        self.assertEqual(self.kb.count("/exp0"), 2)

    def test_age_from_backend_counts(self):
        """A response 100 s old with max-age=60 is stale at once."""
        self.twice("cage", "/aged", [("Cache-Control", "max-age=60"), ("Age", "100")])
        self.assertEqual(self.kb.count("/aged"), 2)

    def test_heuristic_freshness_only_with_last_modified(self):
        self.twice("cheur", "/heur", [("Last-Modified", http_date(time.time() - 86400 * 10))])
        self.assertEqual(self.kb.count("/heur"), 1)
        self.twice("cheur2", "/noheur", [])
        self.assertEqual(self.kb.count("/noheur"), 2)
        # 302 is not heuristically cacheable.
        host = self.croute("cheur3")
        self.kb.set("/h302", [("Last-Modified", http_date(time.time() - 86400)),
                              ("Location", "/x")], status=302)
        self.get(host, "/h302")
        self.get(host, "/h302")
        self.assertEqual(self.kb.count("/h302"), 2)

    def test_404_and_301_cached(self):
        for path, st in (("/gone404", 404), ("/moved301", 301)):
            host = self.croute("cst")
            self.kb.set(path, [("Cache-Control", "max-age=60"), ("Location", "/x")],
                        status=st)
            self.assertEqual(self.get(host, path).status, st)
            self.assertEqual(self.get(host, path).status, st)
            self.assertEqual(self.kb.count(path), 1, path)

    def test_no_store_private_no_cache(self):
        for path, cc in (("/nostore", "no-store"), ("/private", "private, max-age=60")):
            self.twice("cno", path, [("Cache-Control", cc)])
            self.assertEqual(self.kb.count(path), 2, path)
        # no-cache: stored, but every use is validated with the backend.
        self.kb.set("/nocache", [("Cache-Control", "no-cache"), ("ETag", '"nc1"')],
                    revalidate=True)
        host = self.croute("cnoc")
        self.get(host, "/nocache")
        r = self.get(host, "/nocache")
        self.assertEqual((r.status, r.body), (200, b"body\n"))
        self.assertEqual(self.kb.count("/nocache"), 2)
        self.assertEqual(self.kb.last("/nocache")[2].get("if-none-match"), '"nc1"')

    def test_request_no_cache_and_no_store(self):
        host = self.croute("creq")
        self.kb.set("/req", [("Cache-Control", "max-age=60")])
        self.get(host, "/req")
        self.get(host, "/req", {"Cache-Control": "no-cache"})
        self.assertEqual(self.kb.count("/req"), 2)
        self.get(host, "/req")
        self.assertEqual(self.kb.count("/req"), 2)

    def test_authorization_and_set_cookie(self):
        self.twice("cauth", "/auth", [("Cache-Control", "max-age=60")],
                   {"Authorization": "Basic eDp5"})
        self.assertEqual(self.kb.count("/auth"), 2)
        self.twice("cauth2", "/authpub", [("Cache-Control", "public, max-age=60")],
                   {"Authorization": "Basic eDp5"})
        self.assertEqual(self.kb.count("/authpub"), 1)
        self.twice("ccook", "/cookie", [("Cache-Control", "max-age=60"), ("Set-Cookie", "a=b")])
        self.assertEqual(self.kb.count("/cookie"), 2)
        self.twice("ccook2", "/cookiepub", [("Cache-Control", "public, max-age=60"),
                                            ("Set-Cookie", "a=b")])
        self.assertEqual(self.kb.count("/cookiepub"), 1)

    def test_vary(self):
        host = self.croute("cvary")
        self.kb.set("/vary", [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")])
        for lang in ("en", "fr", "en", "fr", "de"):
            self.assertEqual(self.get(host, "/vary", {"Accept-Language": lang}).status, 200)
        self.assertEqual(self.kb.count("/vary"), 3)
        self.kb.set("/vstar", [("Cache-Control", "max-age=60"), ("Vary", "*")])
        self.get(host, "/vstar")
        self.get(host, "/vstar")
        self.assertEqual(self.kb.count("/vstar"), 2)

    def test_head_from_stored_get(self):
        host = self.croute("chead")
        self.kb.set("/head", [("Cache-Control", "max-age=60")], body=b"0123456789")
        self.get(host, "/head")
        r = self.get(host, "/head", method="HEAD")
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"", "10"))
        self.assertEqual(self.kb.count("/head"), 1)

    # --- validation

    def test_stale_revalidated_with_304(self):
        host = self.croute("creval")
        lm = http_date(time.time() - 3600)
        self.kb.set("/reval", [("Cache-Control", "max-age=0"), ("ETag", '"v1"'),
                               ("Last-Modified", lm), ("X-Version", "one")],
                    body=b"stored body", revalidate=True)
        self.get(host, "/reval")
        # The 304 carries a new field: the stored head takes it.
        self.kb.set("/reval", [("Cache-Control", "max-age=60"), ("ETag", '"v1"'),
                               ("X-Version", "two")], body=b"never sent", revalidate=True)
        r = self.get(host, "/reval")
        self.assertEqual((r.status, r.body, r.header("X-Version")), (200, b"stored body", "two"))
        seen = self.kb.last("/reval")[2]
        self.assertEqual((seen.get("if-none-match"), seen.get("if-modified-since")), ('"v1"', lm))
        # Fresh now (max-age=60 from the 304): no third request.
        r = self.get(host, "/reval")
        self.assertEqual((r.body, self.kb.count("/reval")), (b"stored body", 2))

    def test_client_conditional_answered_304(self):
        host = self.croute("ccond")
        lm = http_date(time.time() - 3600)
        self.kb.set("/cond", [("Cache-Control", "max-age=60"), ("ETag", '"c1"'),
                              ("Last-Modified", lm)])
        self.get(host, "/cond")
        r = self.get(host, "/cond", {"If-None-Match": '"c1"'})
        self.assertEqual((r.status, r.body, r.header("ETag")), (304, b"", '"c1"'))
        r = self.get(host, "/cond", {"If-None-Match": 'W/"c1", "c2"'})
        self.assertEqual(r.status, 304)
        r = self.get(host, "/cond", {"If-Modified-Since": http_date(time.time())})
        self.assertEqual(r.status, 304)
        r = self.get(host, "/cond", {"If-None-Match": '"other"'})
        self.assertEqual(r.status, 200)
        self.assertEqual(self.kb.count("/cond"), 1)

    def test_stale_while_revalidate(self):
        host = self.croute("cswr", "--cache-debug", "on")
        self.kb.set("/swr", [("Cache-Control", "max-age=1, stale-while-revalidate=60")],
                    body=b"old")
        self.get(host, "/swr")
        wait_for(lambda: self.get(host, "/swr").header("X-Cache") == "STALE", 10,
                 "the entry to turn stale")
        self.kb.set("/swr", [("Cache-Control", "max-age=60, stale-while-revalidate=60")],
                    body=b"new")
        # Served stale at once; the background refresh stores the new answer.
        r = self.get(host, "/swr")
        self.assertIn(r.body, (b"old", b"new"))
        wait_for(lambda: self.get(host, "/swr").body == b"new", 10, "the refreshed entry")
        n = self.kb.count("/swr")
        self.assertEqual(self.get(host, "/swr").header("X-Cache"), "HIT")
        self.assertEqual(self.kb.count("/swr"), n)
        self.assertEqual(self.kb.last("/swr")[2].get("if-none-match"), None)

    def test_stale_if_error_on_500(self):
        host = self.croute("csie")
        self.kb.set("/sie", [("Cache-Control", "max-age=0, stale-if-error=60"),
                             ("ETag", '"s1"')], body=b"good")
        self.get(host, "/sie")
        self.kb.set("/sie", [], body=b"bad", status=500)
        r = self.get(host, "/sie")
        self.assertEqual((r.status, r.body), (200, b"good"))
        # Without stale-if-error the error goes through.
        self.kb.set("/nosie", [("Cache-Control", "max-age=0"), ("ETag", '"s2"')], body=b"good")
        self.get(host, "/nosie")
        self.kb.set("/nosie", [], body=b"bad", status=500)
        self.assertEqual(self.get(host, "/nosie").status, 500)

    def test_stale_if_error_backend_stopped(self):
        kb = KnobBackend()
        self.addCleanup(lambda: kb.srv.server_close())
        host = self.croute("csie2", backend=kb.addr)
        kb.set("/down", [("Cache-Control", "max-age=0, stale-if-error=60"), ("ETag", '"d"')],
               body=b"kept")
        self.get(host, "/down")
        kb.srv.shutdown()
        kb.srv.server_close()
        r = self.get(host, "/down")
        self.assertEqual((r.status, r.body), (200, b"kept"))

    # --- no thundering herd

    def herd(self, path, headers, n=100):
        host = self.croute("cherd")
        self.kb.set(path, headers, body=b"herd " * 1000, delay=1.0)
        results, errors = [], []

        def one():
            try:
                results.append(self.get(host, path))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), n)
        self.assertTrue(all(r.status == 200 and r.body == b"herd " * 1000 for r in results))

    def test_concurrent_misses_one_backend_request(self):
        self.herd("/herd", [("Cache-Control", "max-age=60")])
        self.assertEqual(self.kb.count("/herd"), 1)

    def test_concurrent_misses_uncacheable_all_served(self):
        """The lock goes with the fill; the waiters then go themselves, none waits 5 s."""
        t0 = time.monotonic()
        self.herd("/herdns", [("Cache-Control", "no-store")], n=20)
        self.assertGreaterEqual(self.kb.count("/herdns"), 2)
        self.assertLess(time.monotonic() - t0, 4.5)

    # --- invalidation and limits

    def test_unsafe_method_invalidates(self):
        host = self.croute("cinv")
        self.kb.set("/inv", [("Cache-Control", "max-age=60")])
        self.kb.set("/other", [("Cache-Control", "max-age=60")])
        self.get(host, "/inv")
        self.get(host, "/other")
        self.kb.set("/post", [("Location", "/other")], status=201)
        self.get(host, "/inv", method="POST")
        self.get(host, "/post", method="POST")
        self.get(host, "/inv")
        self.get(host, "/other")
        self.assertEqual((self.kb.count("/inv") - 1, self.kb.count("/other")), (2, 2))
        # PUT is idempotent but unsafe: it invalidates too; OPTIONS does not.
        self.get(host, "/inv", method="PUT")
        self.get(host, "/inv")
        self.assertEqual(self.kb.count("/inv") - 2, 3)
        self.get(host, "/inv", method="OPTIONS")
        self.get(host, "/inv")
        self.assertEqual(self.kb.count("/inv") - 3, 3)

    def test_larger_than_limit_streams_uncached(self):
        host = self.croute("cbig", "--cache-max-object", "1k")
        big = os.urandom(5000)
        self.kb.set("/big", [("Cache-Control", "max-age=60")], body=big)
        self.assertEqual(self.get(host, "/big").body, big)
        self.assertEqual(self.get(host, "/big").body, big)
        self.assertEqual(self.kb.count("/big"), 2)
        self.kb.set("/small", [("Cache-Control", "max-age=60")], body=b"s" * 500)
        self.get(host, "/small")
        self.get(host, "/small")
        self.assertEqual(self.kb.count("/small"), 1)

    def test_http2_hit_and_compressed_hit(self):
        """A hit through an HTTP/2 client; on a --compress route the gzip variant is its own
        entry (test_cache_more.py CacheCompressedVariantTest): a miss, then a hit."""
        from . import test_http2 as h2t
        host = self.croute("ch2", "--compress", "on")
        text = b"<p>cached and compressed</p>\n" * 400
        self.kb.set("/h2", [("Cache-Control", "max-age=60"), ("Content-Type", "text/html")],
                    body=text)
        c = h2t.H2Client(self.daemon.port)
        self.addCleanup(c.close)
        a = c.get(host, "/h2")
        c.get(host, "/h2", extra=[("accept-encoding", "gzip")])
        b = c.get(host, "/h2", extra=[("accept-encoding", "gzip")])
        self.assertEqual((a.status, bytes(a.data)), (200, text))
        self.assertEqual((b.status, b.header("content-encoding")), (200, "gzip"))
        self.assertEqual(zlib.decompress(bytes(b.data), 16 + 15), text)
        self.assertIsNotNone(b.header("age"))
        self.assertEqual(self.kb.count("/h2"), 2)

    def test_large_hit_streams_whole(self):
        host = self.croute("clarge")
        big = os.urandom(3 << 20)
        self.kb.set("/large", [("Cache-Control", "max-age=60")], body=big)
        self.assertEqual(self.get(host, "/large").body, big)
        r = self.get(host, "/large")
        self.assertEqual((len(r.body), r.body == big), (len(big), True))
        self.assertEqual(self.kb.count("/large"), 1)


class CacheControlTest(CacheTestBase):
    """haloyd-ctl cache purge / stats and route set --cache-debug."""

    def test_purge_url_and_route(self):
        host = self.croute("cpurge")
        for p in ("/p1", "/p2", "/p3"):
            self.kb.set(p, [("Cache-Control", "max-age=600")])
            self.get(host, p)
        out = self.daemon.ctl_ok("cache", "purge", "http://%s/p1" % host.upper())
        self.assertIn("1 entry purged", out)
        self.get(host, "/p1")
        self.get(host, "/p2")
        self.assertEqual((self.kb.count("/p1"), self.kb.count("/p2")), (2, 1))
        out = self.daemon.ctl_ok("cache", "purge", "--route", host)
        self.assertIn("3 entries purged", out)
        self.get(host, "/p2")
        self.get(host, "/p3")
        self.assertEqual((self.kb.count("/p2"), self.kb.count("/p3")), (2, 2))
        rc, _, err = self.daemon.ctl("cache", "purge")
        self.assertEqual(rc, 2, err)
        rc, _, err = self.daemon.ctl("cache", "purge", "ftp://x/")
        self.assertEqual(rc, 7, err)
        rc, _, err = self.daemon.ctl("cache", "purge", "--route", "nosuch.example")
        self.assertNotEqual(rc, 0, err)

    def test_stats(self):
        host = self.croute("cstats")
        self.kb.set("/st", [("Cache-Control", "max-age=600")], body=b"x" * 1000)
        self.get(host, "/st")
        st = json.loads(self.daemon.ctl_ok("--json", "cache", "stats"))
        self.assertGreaterEqual(st["entries"], 1)
        self.assertGreaterEqual(st["bytes"], 1000)
        self.assertEqual(st["max_bytes"], 256 << 20)
        self.assertIn("entries:", self.daemon.ctl_ok("cache", "stats"))

    def test_debug_header(self):
        host = self.croute("cdbg", "--cache-debug", "on")
        self.kb.set("/dbg", [("Cache-Control", "max-age=600"), ("ETag", '"d"')])
        self.assertEqual(self.get(host, "/dbg").header("X-Cache"), "MISS")
        self.assertEqual(self.get(host, "/dbg").header("X-Cache"), "HIT")
        r = self.get(host, "/dbg", {"If-None-Match": '"d"'})
        self.assertEqual((r.status, r.header("X-Cache")), (304, "HIT"))
        self.daemon.ctl_ok("route", "set", host, "--cache-debug", "off")
        self.assertIsNone(self.get(host, "/dbg").header("X-Cache"))


class CacheRestartTest(CacheTestBase):
    WORKERS = 1

    def cache_dir(self):
        return os.path.join(self.daemon.state_dir, "cache")

    def test_restart_keeps_entries(self):
        host = self.croute("crst")
        self.kb.set("/keep", [("Cache-Control", "max-age=600")], body=b"kept across")
        self.get(host, "/keep")
        self.daemon.stop()
        self.daemon.start()
        r = self.get(host, "/keep")
        self.assertEqual((r.status, r.body), (200, b"kept across"))
        self.assertEqual(self.kb.count("/keep"), 1)

    def test_corrupt_entry_is_a_miss(self):
        host = self.croute("ccor")
        body = b"CORRUPTME" * 10
        self.kb.set("/corrupt", [("Cache-Control", "max-age=600")], body=body)
        self.get(host, "/corrupt")
        self.daemon.stop()
        dump = subprocess.run([shutil.which("mdb_dump") or "/usr/bin/mdb_dump", "-s", "obj",
                               self.cache_dir()], capture_output=True, timeout=30, check=True)
        marker = body[:9].hex()
        lines = dump.stdout.decode().split("\n")
        hit = [i for i, l in enumerate(lines) if marker in l]
        self.assertTrue(hit, "the entry is in the dump")
        i = hit[0]
        j = lines[i].index(marker)
        lines[i] = lines[i][:j] + ("00" if lines[i][j:j + 2] != "00" else "11") + lines[i][j + 2:]
        subprocess.run([shutil.which("mdb_load") or "/usr/bin/mdb_load", "-s", "obj",
                        self.cache_dir()], input="\n".join(lines).encode(), timeout=30,
                       check=True, capture_output=True)
        self.daemon.start()
        r = self.get(host, "/corrupt")
        self.assertEqual((r.status, r.body), (200, body))
        self.assertEqual(self.kb.count("/corrupt"), 2)
        wait_for(lambda: "a corrupt entry" in self.daemon.log_text(), 5,
                 "the corrupt entry logged", self.daemon.log_tail)
