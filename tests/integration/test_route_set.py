"""Integration tests of per-route settings: `haloyd-ctl route set`.

Each setting the worker already implements is shown to take effect in the
data path for its route only, while another route keeps haloyd.conf's
value; `default` goes back to that value; a bad value changes nothing and
exits 7 with one line; `route show` and `route list` print the settings;
the settings survive a restart. A change is served by every worker when
the command returns (checked with fresh connections right after it).

Timed windows are only in tests whose subject is a timeout; each compares
a short per-route value (about 1 s) with a much longer global one, with
margins for a 2-core CI machine running ASan.
"""
import json
import re
import select
import socket
import struct
import time
import unittest

from . import harness
from .backend import Blackhole, UpgradeBackend
from .harness import DaemonTestCase, unique_host
from .test_foundation import MSG_C_FAIL, MSG_C_OK, RawControl, one_line, wb_str

MSG_C_ROUTE_SET = 74            # share/msg.h
CTL_ENOENT, CTL_EINVAL, CTL_EUSAGE = 5, 7, 2
SETTINGS = ("connect_timeout", "response_timeout", "idle_timeout", "upgrade_timeout",
            "max_body", "https_redirect", "hsts")
DEFAULTS = {"connect_timeout": "default", "response_timeout": "default",
            "idle_timeout": "default", "upgrade_timeout": "default", "max_body": "default",
            "https_redirect": "on", "hsts": "off"}
FRESH = 8                       # fresh connections right after a change (both workers)


# --- small raw clients and backends

def read_to_eof(s, limit):
    """Everything s sends until it closes (or limit seconds pass): (data, seconds, closed)."""
    t0 = time.monotonic()
    data = b""
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            b = b""
        if not b:
            return data, time.monotonic() - t0, True
        data += b
    return data, time.monotonic() - t0, False






def echo_until_closed(c, rest):
    """An UpgradeBackend script: echoes bytes until the peer closes."""
    c.settimeout(60)
    if rest:
        c.sendall(rest)
    while True:
        b = c.recv(4096)
        if not b:
            return None
        c.sendall(b)


def open_tunnel(port, host):
    """A client connection through haloyd, upgraded, that echoed one message."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET /tunnel HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
               "Upgrade: test-proto\r\n\r\n" % host).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            raise AssertionError("haloyd closed the upgrade request: %r" % head)
        head += b
    if not head.startswith(b"HTTP/1.1 101 "):
        raise AssertionError("no 101 for the upgrade: %r" % head[:300])
    s.sendall(b"ping")
    got = b""
    while len(got) < 4:
        got += s.recv(4)
    if got != b"ping":
        raise AssertionError("the tunnel echoed %r" % got)
    return s


def parse_ok(out):
    """The generation of an OK line such as 'route x: settings changed (generation 9)'."""
    m = re.search(r"\(generation (\d+)\)\n$", out)
    if m is None:
        raise AssertionError("not an OK answer: %r" % out)
    return int(m.group(1))


class RouteSetCase(DaemonTestCase):
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("rs")

    def route(self, backend=None, label="rs"):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, backend or self.be.addr)
        return host

    def set(self, host, *args):
        """route set; returns the generation of its answer, served by every worker."""
        gen = parse_ok(self.daemon.ctl_ok("route", "set", host, *args))
        st = self.daemon.status()
        for w in st["workers"]:
            self.assertGreaterEqual(w["generation"], gen, "a worker lags after OK: %r" % st)
        return gen

    def show(self, host):
        return json.loads(self.daemon.ctl_ok("--json", "route", "show", host))

    def timed(self, fn):
        t0 = time.monotonic()
        r = fn()
        return r, time.monotonic() - t0

    def post(self, host, n, path="/echo"):
        return self.daemon.get(host, path, method="POST", body=b"b" * n,
                               headers={"Content-Type": "application/octet-stream"})

    def post_chunked(self, host, n, path="/echo"):
        """A chunked POST of n bytes in 512-byte chunks: the status line's code."""
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                        for c in (b"b" * min(512, n - i) for i in range(0, n, 512)))
        req = (b"POST %s HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n%s0\r\n\r\n" % (path.encode(), host.encode(), body))
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as s:
            try:
                s.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused early: the answer is still there to read
            data, _, closed = read_to_eof(s, 10)
        self.assertTrue(closed and data.startswith(b"HTTP/1.1 "), data[:200])
        return int(data[9:12])


# --- the data path

class RouteSetTimeoutTest(RouteSetCase):
    """Timeouts: the route's own value, and haloyd.conf's for the others."""

    DAEMON_ARGS = ("--connect-timeout", "3s")

    def test_response_timeout_504_then_default(self):
        host, other = self.route(label="resp"), self.route(label="respother")
        self.set(host, "--response-timeout", "1s")
        r, took = self.timed(lambda: self.daemon.get(host, "/slow?ms=4000", timeout=20))
        self.assertEqual(r.status, 504, r)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3.5, "the route's 1 s response timeout fired after %.2f s" % took)
        # The other route keeps haloyd.conf's 60 s: the slow answer arrives.
        r, took = self.timed(lambda: self.daemon.get(other, "/slow?ms=3000", timeout=20))
        self.assertEqual((r.status, r.body), (200, self.be.hello()))
        self.assertGreaterEqual(took, 2.9)

        self.set(host, "--response-timeout", "default")
        self.assertEqual(self.show(host)["response_timeout"], "default")
        r, took = self.timed(lambda: self.daemon.get(host, "/slow?ms=3000", timeout=20))
        self.assertEqual((r.status, r.body), (200, self.be.hello()), "after default: %r" % r)

    def test_connect_timeout_then_default(self):
        bh = Blackhole()
        self.addCleanup(bh.close)
        host = self.route(bh.addr, "conn")
        self.set(host, "--connect-timeout", "300ms")
        r, took = self.timed(lambda: self.daemon.get(host, "/", timeout=20))
        self.assertEqual(r.status, 502, r)
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 2.0, "the route's 300 ms connect timeout fired after %.2f s" % took)

        # A fresh blackhole (the first one is now marked down) and the
        # global 3 s again.
        bh2 = Blackhole()
        self.addCleanup(bh2.close)
        self.daemon.ctl_ok("backend", "add", host, bh2.addr)
        self.daemon.ctl_ok("backend", "rm", host, bh.addr)
        self.set(host, "--connect-timeout", "default")
        r, took = self.timed(lambda: self.daemon.get(host, "/", timeout=20))
        self.assertEqual(r.status, 502, r)
        self.assertGreaterEqual(took, 2.9, "haloyd.conf's 3 s connect timeout after default")
        self.assertLess(took, 8)

    def test_idle_timeout_cuts_a_stalled_response(self):
        host, other = self.route(label="idle"), self.route(label="idleother")
        self.set(host, "--idle-timeout", "1s")
        req = ("GET /sse?n=2&ms=4000 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as s:
            s.sendall((req % host).encode())
            data, took, closed = read_to_eof(s, 15)
        self.assertTrue(closed)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
        self.assertIn(b"event 0", data)
        self.assertNotIn(b"event 1", data, "the stalled response was cut, not completed")
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3.5, "the route's 1 s idle timeout fired after %.2f s" % took)
        # haloyd.conf's 60 s on the other route: the 4 s gap is fine.
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10) as s:
            s.sendall((req % other).encode())
            data, took, closed = read_to_eof(s, 15)
        self.assertTrue(closed)
        self.assertIn(b"event 1", data)
        self.assertTrue(data.endswith(b"0\r\n\r\n"), data[-100:])
        self.assertGreaterEqual(took, 3.9)

    def test_upgrade_timeout_old_name(self):
        # "tunnel" means reverse tunnels now; the old option still works, with a warning.
        host = self.route(label="oldname")
        rc, out, err = self.daemon.ctl("route", "set", host, "--tunnel-timeout", "90m")
        self.assertEqual(rc, 0, err)
        self.assertIn("--tunnel-timeout is now --upgrade-timeout", err)
        self.assertEqual(self.show(host)["upgrade_timeout"], "90m")

    def test_upgrade_timeout(self):
        tb = UpgradeBackend(echo_until_closed)
        self.addCleanup(tb.close)
        host, other = self.route(tb.addr, "tun"), self.route(tb.addr, "tunother")
        self.set(host, "--upgrade-timeout", "1s")
        s = open_tunnel(self.daemon.port, host)
        with s:
            data, took, closed = read_to_eof(s, 10)
        self.assertTrue(closed, "the idle tunnel is still open after %.1f s" % took)
        self.assertEqual(data, b"")
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3.5, "the route's 1 s upgrade timeout fired after %.2f s" % took)
        # The other route keeps haloyd.conf's hour: still open after 3 s.
        s = open_tunnel(self.daemon.port, other)
        with s:
            data, took, closed = read_to_eof(s, 3)
            self.assertFalse(closed, "the other route's tunnel closed after %.1f s" % took)
            s.sendall(b"pong")
            self.assertEqual(s.recv(4), b"pong")


class RouteSetMaxBodyTest(RouteSetCase):
    """max_body: the route's limit, none, or haloyd.conf's 4 KiB."""

    DAEMON_ARGS = ("--max-body", "4k")

    def test_route_limit_and_default(self):
        host, other = self.route(label="mb"), self.route(label="mbother")
        self.set(host, "--max-body", "1k")
        for _ in range(FRESH):
            r = self.post(host, 2048)
            self.assertEqual(r.status, 413, "a fresh connection right after OK: %r" % r)
        self.assertEqual(self.post_chunked(host, 2048), 413, "a chunked body over the limit")
        self.assertEqual(self.post_chunked(host, 1024), 200)
        r = self.post(host, 1024)
        self.assertEqual((r.status, r.body), (200, b"b" * 1024))
        # The other route has haloyd.conf's 4 KiB.
        self.assertEqual(self.post(other, 2048).status, 200)
        self.assertEqual(self.post(other, 8192).status, 413)

        self.set(host, "--max-body", "default")
        for _ in range(FRESH):
            self.assertEqual(self.post(host, 2048).status, 200)
        self.assertEqual(self.post(host, 8192).status, 413)

    def test_unlimited_lifts_the_global_limit(self):
        host = self.route(label="mbunl")
        self.set(host, "--max-body", "unlimited")
        self.assertEqual(self.show(host)["max_body"], "unlimited")
        r = self.post(host, 64 << 10)
        self.assertEqual((r.status, len(r.body)), (200, 64 << 10))
        self.set(host, "--max-body", "0")
        self.assertEqual(self.show(host)["max_body"], "unlimited")
        self.assertEqual(self.post_chunked(host, 64 << 10), 200)
        self.set(host, "--max-body", "default")
        self.assertEqual(self.post(host, 8192).status, 413)


# --- the command itself

class RouteSetCtlTest(RouteSetCase):
    """Output, `default`, errors and exit codes."""

    WORKERS = 1

    def assert_code(self, code, *args):
        rc, out, err = self.daemon.ctl(*args)
        self.assertEqual(rc, code, "haloyd-ctl %s: stdout %r stderr %r" % (" ".join(args), out, err))
        self.assertTrue(one_line(err), "one line on stderr for %r: %r" % (args, err))
        self.assertEqual(out, "")
        return err

    def test_show_list_and_default(self):
        host = self.route(label="show")
        self.assertEqual({k: self.show(host)[k] for k in SETTINGS}, DEFAULTS)
        self.set(host, "--connect-timeout", "2s", "--response-timeout", "5m", "--idle-timeout",
                 "90s", "--upgrade-timeout", "2h", "--max-body", "10m", "--https-redirect", "off",
                 "--hsts", "on")
        want = {"connect_timeout": "2s", "response_timeout": "5m", "idle_timeout": "90s",
                "upgrade_timeout": "2h", "max_body": "10m", "https_redirect": "off",
                "hsts": "on"}
        shown = self.show(host)
        self.assertEqual({k: shown[k] for k in SETTINGS}, want)
        self.assertEqual(shown["name"], host)
        self.assertEqual(shown["backends"], [self.be.addr])

        text = self.daemon.ctl_ok("route", "show", host)
        kv = dict(ln.split(": ", 1) for ln in text.splitlines())
        for k in SETTINGS:
            self.assertEqual(kv[k], want[k], text)

        rows = json.loads(self.daemon.ctl_ok("--json", "route", "list"))
        row = [r for r in rows if r["name"] == host][0]
        self.assertEqual(row["settings"], ["%s=%s" % (k, want[k]) for k in SETTINGS])
        lines = self.daemon.ctl_ok("route", "list").splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ALIASES", "BACKENDS", "PROTO", "ID",
                                            "SETTINGS"])
        mine = [ln.split() for ln in lines[1:] if ln.split()[0] == host][0]
        self.assertEqual(mine[3], "http1")
        self.assertEqual(mine[5], ",".join("%s=%s" % (k, want[k]) for k in SETTINGS))

        # Normalised spellings: a bare number is seconds, 1024k is 1m.
        self.set(host, "--connect-timeout", "60", "--max-body", "1024k", "--idle-timeout",
                 "1500ms")
        shown = self.show(host)
        self.assertEqual((shown["connect_timeout"], shown["max_body"], shown["idle_timeout"]),
                         ("1m", "1m", "1500ms"))

        # default, one at a time, leaves the others alone; the last of a repeat counts.
        self.set(host, "--response-timeout", "default", "--hsts", "off", "--hsts", "default")
        shown = self.show(host)
        self.assertEqual((shown["response_timeout"], shown["hsts"], shown["upgrade_timeout"]),
                         ("default", "off", "2h"))
        self.set(host, *[a for k in SETTINGS for a in ("--" + k.replace("_", "-"), "default")])
        self.assertEqual({k: self.show(host)[k] for k in SETTINGS}, DEFAULTS)
        row = [r for r in json.loads(self.daemon.ctl_ok("--json", "route", "list"))
               if r["name"] == host][0]
        self.assertEqual(row["settings"], [])

    def test_edges_of_the_ranges(self):
        host = self.route(label="edge")
        for opt, lo, hi in (("--connect-timeout", "10ms", "1h"),
                            ("--response-timeout", "100ms", "24h"),
                            ("--idle-timeout", "100ms", "24h"),
                            ("--upgrade-timeout", "1s", "168h")):
            key = opt[2:].replace("-", "_")
            self.set(host, opt, lo)
            self.assertEqual(self.show(host)[key], lo)
            self.set(host, opt, hi)
            self.assertEqual(self.show(host)[key], hi)

    def test_bad_values_exit_7_and_change_nothing(self):
        host = self.route(label="bad")
        self.set(host, "--response-timeout", "5m", "--max-body", "1k")
        before = self.show(host)
        bad = [("--connect-timeout", "9ms"), ("--connect-timeout", "61m"),
               ("--connect-timeout", "2x"), ("--connect-timeout", "1.5s"),
               ("--connect-timeout", "-1"), ("--connect-timeout", "0"),
               ("--response-timeout", "99ms"), ("--response-timeout", "25h"),
               ("--idle-timeout", "50ms"), ("--idle-timeout", "86401s"),
               ("--upgrade-timeout", "999ms"), ("--upgrade-timeout", "169h"),
               ("--upgrade-timeout", "7d"), ("--max-body", "1t"), ("--max-body", "1kb"),
               ("--max-body", "99999999999g"), ("--max-body", "k"),
               ("--https-redirect", "yes"), ("--https-redirect", "1"), ("--hsts", "true"),
               ("--hsts", "On "), ("--hsts", "x" * 40), ("--response-timeout", ""),
               ("--challenge", "auto"), ("--challenge", "HTTP-01"), ("--challenge", "http-02"),
               ("--backend-proxy-protocol", "v3"), ("--backend-proxy-protocol", "V1"),
               ("--backend-proxy-protocol", "on")]
        for opt, val in bad:
            err = self.assert_code(CTL_EINVAL, "route", "set", host, opt, val)
            self.assertIn(opt[2:].replace("-", "_"), err.replace("-", "_"), (opt, val))
            self.assertIn("invalid value", err)
        # A good value next to a bad one is not applied either.
        self.assert_code(CTL_EINVAL, "route", "set", host, "--hsts", "on", "--connect-timeout",
                         "2h")
        self.assertEqual(self.show(host), before)

    def test_unknown_route_and_usage(self):
        host = self.route(label="use")
        self.assert_code(CTL_ENOENT, "route", "set", unique_host("nosuch"), "--hsts", "on")
        alias = unique_host("alias")
        self.daemon.ctl_ok("alias", "add", host, alias)
        self.assert_code(CTL_ENOENT, "route", "set", alias, "--hsts", "on")
        self.assert_code(CTL_EINVAL, "route", "set", "bad!name.example.com", "--hsts", "on")
        for args in (["route", "set", host], ["route", "set"],
                     ["route", "set", host, "--hsts"], ["route", "set", host, "--color", "on"],
                     ["route", "show", host, "--hsts", "on"],
                     ["route", "add", unique_host("x"), self.be.addr, "--max-body", "1k"],
                     ["route", "set", host, "extra", "--hsts", "on"]):
            self.assert_code(CTL_EUSAGE, *args)
        self.assertEqual({k: self.show(host)[k] for k in SETTINGS}, DEFAULTS)
        rc, out, err = self.daemon.ctl("--json", "route", "set", host, "--idle-timeout", "1d")
        self.assertEqual(rc, CTL_EINVAL)
        js = json.loads(out)
        self.assertEqual((js["ok"], js["code"]), (False, CTL_EINVAL))
        self.assertIn("idle_timeout", js["error"])

    def test_help_and_json_ok(self):
        out = self.daemon.ctl_ok("help", sock=False)
        for word in ("route set", "--connect-timeout", "--max-body", "--hsts", "default"):
            self.assertIn(word, out)
        host = self.route(label="js")
        js = json.loads(self.daemon.ctl_ok("--json", "route", "set", host, "--hsts", "on"))
        self.assertIs(js["ok"], True)
        self.assertIn(host, js["message"])

    def raw_set(self, payload):
        c = RawControl(self.daemon.sock)
        try:
            c.hello()
            c.send(MSG_C_ROUTE_SET, payload, seq=1)
            return c.recv()
        finally:
            c.close()

    def test_master_checks_what_a_raw_client_sends(self):
        """The master parses and range-checks values itself: haloyd-ctl only
        checks their shape, and a raw client skips even that."""
        host = self.route(label="raw")

        def pairs(*kv):
            return (wb_str(host) + struct.pack("=H", len(kv)) +
                    b"".join(wb_str(k) + wb_str(v) for k, v in kv))
        for kv in ((("connect_timeout", "5ms"),), (("color", "on"),),
                   (("hsts", "on"), ("max_body", "1 k")), (("response_timeout", "10s\n"),), ()):
            m = self.raw_set(pairs(*kv))
            self.assertIsNotNone(m, "the master hung up on %r" % (kv,))
            self.assertEqual(m[0], MSG_C_FAIL, kv)
            self.assertEqual(struct.unpack_from("=I", m[4])[0], CTL_EINVAL, kv)
        self.assertEqual({k: self.show(host)[k] for k in SETTINGS}, DEFAULTS)
        m = self.raw_set(pairs(("idle_timeout", "2m"), ("idle_timeout", "3m")))
        self.assertEqual(m[0], MSG_C_OK)
        self.assertEqual(self.show(host)["idle_timeout"], "3m")
        self.assertEqual(self.daemon.proc.poll(), None)


# --- restart

class RouteSetRestartTest(unittest.TestCase):
    """The settings are in the store: a restarted daemon serves them."""

    def test_settings_survive_restart(self):
        be = harness.backend_mod.Backend("restart").start()
        self.addCleanup(be.stop)
        d = harness.Daemon(workers=2)
        try:
            d.start()
            host, other = unique_host("rst"), unique_host("rstother")
            d.ctl_ok("route", "add", host, be.addr)
            d.ctl_ok("route", "add", other, be.addr)
            d.ctl_ok("route", "set", host, "--response-timeout", "1s", "--max-body", "1k",
                     "--upgrade-timeout", "90m", "--https-redirect", "off")
            before = json.loads(d.ctl_ok("--json", "route", "show", host))
            d.close(keep=True)  # checks the exit status and the log, keeps the store
            d.start()
            after = json.loads(d.ctl_ok("--json", "route", "show", host))
            self.assertEqual(after, before)
            self.assertEqual((after["response_timeout"], after["max_body"],
                              after["upgrade_timeout"], after["https_redirect"]),
                             ("1s", "1k", "90m", "off"))
            t0 = time.monotonic()
            r = d.get(host, "/slow?ms=4000", timeout=20)
            took = time.monotonic() - t0
            self.assertEqual(r.status, 504, r)
            self.assertLess(took, 3.5)
            r = d.get(host, "/echo", method="POST", body=b"x" * 2048)
            self.assertEqual(r.status, 413, r)
            self.assertEqual(d.get(other, "/echo", method="POST", body=b"x" * 2048).status, 200)
        except BaseException:
            d.close(check=False, keep=True)
            raise
        d.close()


if __name__ == "__main__":
    unittest.main()
