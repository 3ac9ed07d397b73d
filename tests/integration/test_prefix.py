"""Integration tests of path-prefix routes (haloyd issue 18 point 5): the real
haloyd with a plain and an HTTPS listener and three real backends per site,
one for the host's route (/), one for example.com/api and one for
example.com/api/v2.

Covered: the longest prefix wins on a segment boundary (/api, /api/, /api/x
but not /apix), the host's route is the fallback, over HTTP/1.1 and over
HTTP/2 with TLS (the same lookup); --strip-prefix on and off with query
strings kept; the request's path normalised before matching (dot segments,
escapes of unreserved characters; an escaped '/' is data); the host's
certificate serves a prefix route (no certificate of its own) and its port-80
redirect; route rm of a prefix route (its paths fall back) and of a host route
that still has prefix routes (refused); invalid prefixes and misplaced
prefixes refused with a one-line reason; route show and route list.
"""
import hashlib
import json
import socket

from .backend import Backend
from .harness import request, unique_host
from .test_http2 import Http2Mixin, alpn_ctx
from .test_tls import HttpsTestCase

TIMEOUT = 10.0


class PrefixTest(Http2Mixin, HttpsTestCase):
    WORKERS = 2
    BACKEND = "front"

    def site(self, label):
        """host, with / on a fresh front backend, /api and /api/v2 on two more."""
        host = unique_host(label)
        bes = {}
        for name in ("front", "api", "v2"):
            b = Backend("%s-%s" % (name, label)).start()
            self.addCleanup(b.stop)
            bes[name] = b
        self.daemon.ctl_ok("route", "add", host, bes["front"].addr)
        self.daemon.ctl_ok("route", "add", host + "/api", bes["api"].addr)
        self.daemon.ctl_ok("route", "add", host + "/api/v2", bes["v2"].addr)
        return host, bes

    def get1(self, host, path):
        """HTTP/1.1 on the plain listener: (status, the backend that answered)."""
        r = request(self.daemon.port, path, host=host)
        return r.status, r.header("X-Backend")

    def expect(self, host, bes, cases, get):
        """cases: (path, backend key, the path the backend must see)."""
        for path, key, seen in cases:
            status, who = get(host, path)
            self.assertEqual((status, who), (200, bes[key].name), path)
            rec = bes[key].wait_request(seen, timeout=TIMEOUT)
            self.assertEqual(rec["path"], seen, path)

    # --- routing

    def test_longest_prefix_wins_over_http1(self):
        host, bes = self.site("pfx1")
        self.expect(host, bes, [
            ("/", "front", "/"),
            ("/apix", "front", "/apix"),
            ("/ap", "front", "/ap"),
            ("/API/x", "front", "/API/x"),
            ("/api", "api", "/api"),
            ("/api/", "api", "/api/"),
            ("/api/x?q=1&r=/api/v2", "api", "/api/x?q=1&r=/api/v2"),
            ("/api/v20", "api", "/api/v20"),
            ("/api/v2", "v2", "/api/v2"),
            ("/api/v2/users?id=7", "v2", "/api/v2/users?id=7"),
            # Matched on the normalised path, forwarded as sent.
            ("/x/../api/v2/a", "v2", "/x/../api/v2/a"),
            ("/%61pi/b", "api", "/%61pi/b"),
            ("/./api//c", "api", "/./api//c"),
            # An escaped '/' is data: no prefix route gets it.
            ("/api%2Fv2/d", "front", "/api%2Fv2/d"),
            ("/apix%2Fe", "front", "/apix%2Fe"),
        ], self.get1)

    def test_longest_prefix_wins_over_http2_tls(self):
        host, bes = self.site("pfx2")
        c = self.client(tls=True, sni=host)

        def get2(h, path):
            s = c.get(h, path)
            return s.status, s.header("x-backend")
        self.expect(host, bes, [
            ("/", "front", "/"),
            ("/apix/1", "front", "/apix/1"),
            ("/api", "api", "/api"),
            ("/api/x?q=2", "api", "/api/x?q=2"),
            ("/api/v2", "v2", "/api/v2"),
            ("/api/v2/y?z=3", "v2", "/api/v2/y?z=3"),
        ], get2)
        self.daemon.ctl_ok("route", "set", host + "/api", "--strip-prefix", "on")
        self.expect(host, bes, [
            ("/api/s2?q=4", "api", "/s2?q=4"),
            ("/api?only=query", "api", "/?only=query"),
            ("/api/v2/t2", "v2", "/api/v2/t2"),
        ], get2)

    def test_strip_prefix(self):
        host, bes = self.site("strip")
        out = self.daemon.ctl_ok("route", "set", host + "/api", "--strip-prefix", "on")
        self.assertIn("strip_prefix=on", out)
        self.expect(host, bes, [
            ("/api/x?q=1&r=/api", "api", "/x?q=1&r=/api"),
            ("/api", "api", "/"),
            ("/api/", "api", "/"),
            ("/api?a=b", "api", "/?a=b"),
            ("/api/u/../w", "api", "/w"),
            ("/api/v2/k", "v2", "/api/v2/k"),
            ("/apix", "front", "/apix"),
        ], self.get1)
        self.daemon.ctl_ok("route", "set", host + "/api/v2", "--strip-prefix", "on")
        self.expect(host, bes, [("/api/v2/k2?s=1", "v2", "/k2?s=1"),
                                ("/api/v2", "v2", "/")], self.get1)
        self.daemon.ctl_ok("route", "set", host + "/api", "--strip-prefix", "off")
        self.expect(host, bes, [("/api/off1", "api", "/api/off1")], self.get1)
        # route add takes it too.
        assets = Backend("assets-strip").start()
        self.addCleanup(assets.stop)
        self.daemon.ctl_ok("route", "add", host + "/assets", assets.addr, "--strip-prefix", "on")
        bes["assets"] = assets
        self.expect(host, bes, [("/assets/app.js?v=3", "assets", "/app.js?v=3")], self.get1)

    def test_location_is_not_rewritten(self):
        host, bes = self.site("loc")
        self.daemon.ctl_ok("route", "set", host + "/api", "--strip-prefix", "on")
        r = request(self.daemon.port, "/api/status?code=302", host=host)
        self.assertEqual((r.status, r.header("X-Backend")), (302, bes["api"].name))
        self.assertIsNone(r.header("Location"))  # the backend sent none; none is invented

    # --- certificates

    def test_host_certificate_serves_prefix_routes(self):
        host, bes = self.site("cert")
        cert, key, fp = self.pki.leaf(host, [host])
        self.daemon.ctl_ok("cert", "import", host, "--cert", cert, "--key", key)
        # TLS is chosen by SNI before any path: the host's certificate serves /api.
        sock = alpn_ctx(["http/1.1"]).wrap_socket(
            socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT),
            server_hostname=host)
        try:
            der = sock.getpeercert(binary_form=True)
            self.assertEqual(hashlib.sha256(der).hexdigest(), fp)
            sock.sendall(("GET /api/c1 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                          % host).encode())
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        self.assertIn(b"X-Backend: " + bes["api"].name.encode(), data)
        # Port 80 redirects for the prefix route too: the certificate is the host's;
        # the Location keeps the path the client asked for, stripped route or not.
        self.daemon.ctl_ok("route", "set", host + "/api/v2", "--strip-prefix", "on")
        r = request(self.daemon.port, "/api/v2/r?x=1", host=host)
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"),
                         "https://%s:%d/api/v2/r?x=1" % (host, self.https_port))
        out = self.daemon.ctl_ok("--json", "cert", "list")
        self.assertNotIn(host + "/api", out)

    # --- changes

    def test_route_rm(self):
        host, bes = self.site("rm")
        rc, _, err = self.daemon.ctl("route", "rm", host)
        self.assertNotEqual(rc, 0)
        self.assertEqual(err.strip().count("\n"), 0, err)
        self.assertIn("2 path-prefix routes", err)
        self.assertIn("remove them first", err)
        self.daemon.ctl_ok("route", "rm", host + "/api")
        self.expect(host, bes, [("/api/gone", "front", "/api/gone"),
                                ("/api/v2/kept", "v2", "/api/v2/kept")], self.get1)
        rc, _, err = self.daemon.ctl("route", "rm", host + "/api")
        self.assertNotEqual(rc, 0)
        self.assertIn("not found", err)
        self.daemon.ctl_ok("route", "rm", host + "/api/v2")
        self.daemon.ctl_ok("route", "rm", host)
        self.assertEqual(request(self.daemon.port, "/api/v2/x", host=host).status, 404)

    def test_invalid_prefixes_refused(self):
        host, _ = self.site("bad")
        be = self.be.addr
        cases = [
            (host + "/api/", "does not end with '/'"),
            (host + "/a//b", "no empty segment"),
            (host + "/api/../x", "'.' or '..' segment"),
            (host + "/./x", "'.' or '..' segment"),
            (host + "/a%2Fb", "no percent-escapes"),
            (host + "/a?b", "only letters"),
            (host + "/" + "p" * 128, "at most 128 bytes"),
            ("*.wild.example.com/api", "not a wildcard"),
            ("missing.example.com/api", "no route missing.example.com"),
        ]
        for name, why in cases:
            rc, out, err = self.daemon.ctl("route", "add", name, be)
            self.assertNotEqual(rc, 0, name)
            self.assertIn(why, err, name)
            self.assertEqual(err.strip().count("\n"), 0, err)
        for args, why in [
            (("route", "add", host + "/w", be, "--alias", "w." + host), "has no aliases"),
            (("alias", "add", host + "/api", "w." + host), "has no aliases"),
            (("route", "set", host, "--strip-prefix", "on"), "only for a path-prefix route"),
            (("route", "add", "s." + host, be, "--strip-prefix", "on"),
             "only for a path-prefix route"),
            (("route", "set", host + "/api", "--strip-prefix", "maybe"), "use on, off"),
        ]:
            rc, out, err = self.daemon.ctl(*args)
            self.assertNotEqual(rc, 0, args)
            self.assertIn(why, err, args)
            self.assertEqual(err.strip().count("\n"), 0, err)
        names = [r["name"] for r in json.loads(self.daemon.ctl_ok("--json", "route", "list"))]
        self.assertEqual(sorted(n for n in names if n.startswith(host)),
                         [host, host + "/api", host + "/api/v2"])

    def test_route_show_and_list(self):
        host, bes = self.site("show")
        self.daemon.ctl_ok("route", "set", host + "/api", "--strip-prefix", "on")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host + "/api"))
        self.assertEqual(show["name"], host + "/api")
        self.assertEqual(show["backends"], [bes["api"].addr])
        self.assertEqual(show["strip_prefix"], "on")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertNotIn("strip_prefix", show)
        text = self.daemon.ctl_ok("route", "show", host + "/api/v2")
        self.assertIn("strip_prefix", text)
        rows = json.loads(self.daemon.ctl_ok("--json", "route", "list"))
        mine = {r["name"]: r for r in rows if r["name"].startswith(host)}
        self.assertEqual(sorted(mine), [host, host + "/api", host + "/api/v2"])
        self.assertIn("strip_prefix=on", mine[host + "/api"]["settings"])
        self.assertEqual(mine[host + "/api/v2"]["settings"], [])
        # Backends are added to a prefix route by its name like any route's.
        extra = Backend("extra-show").start()
        self.addCleanup(extra.stop)
        self.daemon.ctl_ok("backend", "add", host + "/api/v2", extra.addr)
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host + "/api/v2"))
        self.assertEqual(show["backends"], [bes["v2"].addr, extra.addr])
