"""Integration tests of the PROXY protocol (issue 18, point 4), with the real
daemon, real backends and real clients on loopback.

Inbound: `listen_http ADDR proxy` and `listen_https ADDR proxy` beside the
plain listener; 127.0.0.2 is the trusted balancer (clients bind their source
address inside 127/8). curl's --haproxy-protocol (v1, its own addresses)
and a python client sending v1 and v2 headers for IPv4 and IPv6 clients over
HTTP and HTTPS: the backend sees the header's client in X-Forwarded-For and
the access entry has it (HALOYD_CLIENT); v2 LOCAL keeps the balancer's
address; a header in pieces; a peer outside trusted_proxies and a garbage
header are closed without an answer and the daemon serves on; the rate limit
is keyed by the header's address, not the balancer's (and our own 429's access
entry names it); max_connections_per_ip counts the header's client, not the
balancer.

Outbound: `route set --backend-proxy-protocol v1|v2` toward a python backend
that parses the header (and fails the request when it is missing or bad)
and echoes the address it got, over plain TCP and over TLS (the header
before the handshake); every request on one client keep-alive connection
gets a backend connection of its own (no pooling for such routes).
"""
import http.client
import socket
import ssl
import struct
import subprocess
import threading
import time

from . import listener
from . import harness
from .backend import header
from .harness import DaemonTestCase, unique_host, wait_for
from .test_datapath import access_lines
from .test_tls import CURL, Pki, client_ctx

TIMEOUT = 10.0
LB = "127.0.0.2"        # the trusted balancer
STRANGER = "127.0.0.3"  # not trusted
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pp_v1(src, dst, sport, dport):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def pp_v2(src, dst, sport, dport, local=False, tlvs=b""):
    if local:
        return V2SIG + b"\x20\x00" + struct.pack("!H", 0)
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        body = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    body += struct.pack("!HH", sport, dport) + tlvs
    return V2SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def read_all(s):
    out = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        out += b
    return out


def raw(port, pieces, host, src=LB, tls_ctx=None, path="/"):
    """Connects from src, sends pieces (the header, maybe split) then one GET
    (over TLS when tls_ctx) with Connection: close; returns the raw answer
    (b"" when the server closed without one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT, source_address=(src, 0))
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, p in enumerate(pieces):
            if i > 0:
                time.sleep(0.05)  # separate segments, so the header arrives in pieces
            s.sendall(p)
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()
        if tls_ctx is not None:
            try:
                s = tls_ctx.wrap_socket(s, server_hostname=host)
            except (ssl.SSLError, ConnectionResetError, OSError):
                return b""
        try:
            s.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return read_all(s)
    finally:
        s.close()


def status_of(resp):
    if not resp.startswith(b"HTTP/1.1 "):
        return None
    return int(resp[9:12])


class ProxyProtoInTest(DaemonTestCase):
    """A plain listener, an HTTP and an HTTPS listener marked proxy; 127.0.0.2 trusted."""
    WORKERS = 2

    @classmethod
    def _start_daemon(cls):
        cls.pp_port = harness.free_port()
        cls.pps_port = harness.free_port()
        cls.DAEMON_ARGS = ("--trusted-proxies", LB,
                           "--listen-http", "127.0.0.1:%d proxy" % cls.pp_port,
                           "--listen-https", "127.0.0.1:%d proxy" % cls.pps_port)
        super()._start_daemon()

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        try:
            super().setUpClass()
            cls.be = cls.backend("pp")
        except BaseException:
            cls.pki.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pki.close()

    def site(self, label, *settings, cert=False):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        if settings:
            self.daemon.ctl_ok("route", "set", host, *settings)
        if cert:
            c, k, _ = self.pki.leaf(host, [host])
            self.daemon.ctl_ok("cert", "import", host, "--cert", c, "--key", k)
        return host

    def xff_of(self, path):
        rec = self.be.wait_request(path, TIMEOUT)
        return header(rec, "X-Forwarded-For")

    def client_logged(self, mark, host, client):
        wait_for(lambda: any(e.get("CLIENT") == client
                             for e in access_lines(self.daemon.log_text(mark), host)),
                 TIMEOUT, "an access entry for %s with HALOYD_CLIENT=%s" % (host, client),
                 self.daemon.log_tail)

    def test_v1_and_v2_over_http(self):
        """IPv4 and IPv6 clients in v1 and v2 headers: X-Forwarded-For and the access log."""
        host = self.site("pp-http")
        mark = self.daemon.log_size()
        cases = [("/v1-4", pp_v1("203.0.113.7", "192.0.2.1", 40000, 80), "203.0.113.7"),
                 ("/v1-6", pp_v1("2001:db8::7", "2001:db8::1", 40001, 80), "2001:db8::7"),
                 ("/v2-4", pp_v2("203.0.113.8", "192.0.2.1", 40002, 80), "203.0.113.8"),
                 ("/v2-6", pp_v2("2001:db8::8", "2001:db8::1", 40003, 80,
                                 tlvs=b"\x01\x00\x02h2\x04\x00\x01\x00"), "2001:db8::8")]
        for path, hdr, client in cases:
            resp = raw(self.pp_port, [hdr], host, path=path)
            self.assertEqual(status_of(resp), 200, resp[:200])
            self.assertEqual(self.xff_of(path), [client])
            self.client_logged(mark, host, client)

    def test_v1_and_v2_over_https(self):
        """The header first, then TLS: the handshake and the request see the real client."""
        host = self.site("pp-https", cert=True)
        ctx = client_ctx(self.pki.ca)
        mark = self.daemon.log_size()
        for path, hdr, client in [
                ("/s1", pp_v1("198.51.100.20", "192.0.2.1", 5000, 443), "198.51.100.20"),
                ("/s2", pp_v2("2001:db8::20", "2001:db8::1", 5001, 443), "2001:db8::20")]:
            resp = raw(self.pps_port, [hdr], host, tls_ctx=ctx, path=path)
            self.assertEqual(status_of(resp), 200, resp[:200])
            self.assertEqual(self.xff_of(path), [client])
            self.client_logged(mark, host, client)

    def test_curl_haproxy_protocol(self):
        """curl --haproxy-protocol (v1, its own addresses) from the balancer is served;
        the same from a stranger is closed."""
        host = self.site("pp-curl")
        url = "http://%s:%d/curl" % (host, self.pp_port)
        resolve = "%s:%d:127.0.0.1" % (host, self.pp_port)
        p = subprocess.run([CURL, "-sS", "--max-time", "10", "--haproxy-protocol",
                            "--interface", LB, "--resolve", resolve, "-o", "/dev/null",
                            "-w", "%{http_code}", url], capture_output=True, timeout=30)
        self.assertEqual(p.stdout.decode(), "200", p.stderr.decode())
        self.assertEqual(self.xff_of("/curl"), [LB])
        p = subprocess.run([CURL, "-sS", "--max-time", "10", "--haproxy-protocol",
                            "--interface", STRANGER, "--resolve", resolve, "-o", "/dev/null",
                            "-w", "%{http_code}", url + "2"], capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout.decode(), "000")

    def test_header_in_pieces(self):
        """A v2 header in four segments, a v1 line in three: both taken."""
        host = self.site("pp-pieces")
        h2 = pp_v2("203.0.113.30", "192.0.2.1", 1, 80)
        resp = raw(self.pp_port, [h2[:5], h2[5:13], h2[13:17], h2[17:]], host, path="/p2")
        self.assertEqual(status_of(resp), 200, resp[:200])
        self.assertEqual(self.xff_of("/p2"), ["203.0.113.30"])
        h1 = pp_v1("203.0.113.31", "192.0.2.1", 2, 80)
        resp = raw(self.pp_port, [h1[:3], h1[3:20], h1[20:]], host, path="/p1")
        self.assertEqual(status_of(resp), 200, resp[:200])
        self.assertEqual(self.xff_of("/p1"), ["203.0.113.31"])

    def test_local_keeps_the_balancer(self):
        """v2 LOCAL and v1 UNKNOWN: the balancer's own address is the client."""
        host = self.site("pp-local")
        for path, hdr in [("/l2", pp_v2(None, None, 0, 0, local=True)),
                          ("/l1", b"PROXY UNKNOWN\r\n")]:
            resp = raw(self.pp_port, [hdr], host, path=path)
            self.assertEqual(status_of(resp), 200, resp[:200])
            self.assertEqual(self.xff_of(path), [LB])

    def test_stranger_and_garbage_closed(self):
        """A peer outside trusted_proxies, a request without a header, a bad header, an
        over-long v1 line and an oversized v2 length: closed without an answer; the
        daemon serves on."""
        host = self.site("pp-bad")
        mark = self.daemon.log_size()
        good = pp_v1("203.0.113.40", "192.0.2.1", 1, 80)
        self.assertEqual(raw(self.pp_port, [good], host, src=STRANGER, path="/x"), b"")
        self.assertEqual(raw(self.pps_port, [good], host, src=STRANGER, path="/x",
                             tls_ctx=client_ctx(self.pki.ca)), b"")
        for bad in [b"", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"PROXY " + b"A" * 120,
                    V2SIG + b"\x21\x11\xff\xff", V2SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,
                    b"\x00" * 40]:
            self.assertEqual(raw(self.pp_port, [bad] if bad else [], host, path="/x"), b"",
                             bad)
        self.assertEqual(self.be.records("/x"), [])
        # Refusals are logged at most once a second per worker: strangers keep coming
        # until one is logged (the ones before were counted).
        wait_for(lambda: raw(self.pp_port, [good], host, src=STRANGER, path="/x") == b"" and
                 "peer not in trusted_proxies" in self.daemon.log_text(mark), TIMEOUT,
                 "the refusal logged", self.daemon.log_tail)
        resp = raw(self.pp_port, [good], host, path="/after")
        self.assertEqual(status_of(resp), 200)
        self.assertEqual(self.daemon.get(host, "/plain").status, 200)

    def test_rate_limit_keyed_by_proxy_address(self):
        """One request a minute per client: a second from the same PROXY client is 429, a
        first from another client through the same balancer passes."""
        host = self.site("pp-rate", "--rate", "1r/m", "--burst", "0")
        a = pp_v1("203.0.113.50", "192.0.2.1", 1, 80)
        b = pp_v2("203.0.113.51", "192.0.2.1", 1, 80)
        mark = self.daemon.log_size()
        self.assertEqual(status_of(raw(self.pp_port, [a], host, path="/r1")), 200)
        self.assertEqual(status_of(raw(self.pp_port, [a], host, path="/r2")), 429)
        self.assertEqual(status_of(raw(self.pp_port, [b], host, path="/r3")), 200)
        # Our own 429 names the client too.
        wait_for(lambda: any(e.get("STATUS") == "429" and e.get("CLIENT") == "203.0.113.50"
                             for e in access_lines(self.daemon.log_text(mark), host)),
                 TIMEOUT, "the 429's access entry with its client", self.daemon.log_tail)

class ProxyProtoConnLimitTest(DaemonTestCase):
    """max_connections_per_ip 1 behind a balancer: the header's client is counted, not the
    balancer (a daemon of its own: sequential connections elsewhere would race the count)."""

    @classmethod
    def _start_daemon(cls):
        cls.pp_port = harness.free_port()
        cls.DAEMON_ARGS = ("--trusted-proxies", LB, "--max-connections-per-ip", "1",
                           "--header-timeout", "1s",
                           "--listen-http", "127.0.0.1:%d proxy" % cls.pp_port)
        super()._start_daemon()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("ppc")

    def site(self, label):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        return host

    def keepalive_via_lb(self, client, host):
        """A keep-alive connection from the balancer for client, one request answered."""
        s = socket.create_connection(("127.0.0.1", self.pp_port), timeout=TIMEOUT,
                                     source_address=(LB, 0))
        s.sendall(pp_v2(client, "192.0.2.1", 1234, 80))
        c = http.client.HTTPConnection("127.0.0.1", self.pp_port, timeout=TIMEOUT)
        c.sock = s
        self.addCleanup(c.close)
        c.request("GET", "/ka", headers={"Host": host})
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        return c

    def test_connection_limit_counts_the_proxy_client(self):
        """max_connections_per_ip 1: the balancer holds two connections for two clients; a
        second one for the same client is closed once its header names it."""
        host = self.site("pp-conns")
        self.keepalive_via_lb("203.0.113.70", host)
        self.keepalive_via_lb("203.0.113.71", host)
        resp = raw(self.pp_port, [pp_v1("203.0.113.70", "192.0.2.1", 1, 80)], host, path="/c")
        self.assertEqual(resp, b"")
        self.assertEqual(self.be.records("/c"), [])

    def test_header_timeout(self):
        """Half a header, then nothing: closed after header_timeout (1 s here), logged."""
        mark = self.daemon.log_size()
        s = socket.create_connection(("127.0.0.1", self.pp_port), timeout=TIMEOUT,
                                     source_address=(LB, 0))
        self.addCleanup(s.close)
        s.sendall(b"PROXY TCP4 203.0.113.80 ")
        t0 = time.monotonic()
        self.assertEqual(read_all(s), b"")
        self.assertLess(time.monotonic() - t0, 5.0)
        wait_for(lambda: "no complete header within header_timeout" in
                 self.daemon.log_text(mark), TIMEOUT, "the timeout logged", self.daemon.log_tail)


class HeaderBackend:
    """A backend that expects a PROXY header (v1 or v2) on each connection, then
    one HTTP/1.1 request (over TLS when ctx), and answers with the client
    address the header named; a connection without a valid header is closed."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        self.sock = listener.listen(64)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.conns = 0
        self.headers = []  # (version, src, sport, dst, dport)
        self.errors = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = listener.accept(self.sock)
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _exact(c, n):
        b = b""
        while len(b) < n:
            x = c.recv(n - len(b))
            if not x:
                raise ValueError("EOF inside the header")
            b += x
        return b

    def _header(self, c):
        first = self._exact(c, 16)
        if first[:12] == V2SIG:
            ln = struct.unpack("!H", first[14:16])[0]
            body = self._exact(c, ln)
            if first[12] != 0x21 or first[13] not in (0x11, 0x21):
                raise ValueError("v2 command/family %x %x" % (first[12], first[13]))
            af, n = (socket.AF_INET, 4) if first[13] == 0x11 else (socket.AF_INET6, 16)
            src = socket.inet_ntop(af, body[:n])
            dst = socket.inet_ntop(af, body[n:2 * n])
            sp, dp = struct.unpack("!HH", body[2 * n:2 * n + 4])
            return (2, src, sp, dst, dp)
        line = first
        while not line.endswith(b"\r\n"):
            if len(line) > 107:
                raise ValueError("v1 line too long")
            line += self._exact(c, 1)
        f = line[:-2].decode().split(" ")
        if f[0] != "PROXY" or f[1] not in ("TCP4", "TCP6") or len(f) != 6:
            raise ValueError("bad v1 line %r" % line)
        return (1, f[2], int(f[4]), f[3], int(f[5]))

    def _serve(self, c):
        try:
            c.settimeout(TIMEOUT)
            h = self._header(c)
            self.headers.append(h)
            if self.ctx is not None:
                c = self.ctx.wrap_socket(c, server_side=True)
            req = b""
            while b"\r\n\r\n" not in req:
                x = c.recv(4096)
                if not x:
                    return
                req += x
            body = ("v%d %s\n" % (h[0], h[1])).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            # Keep-alive on our side: a second request here would show up as a
            # second header-less request, which the test would see as a 502.
            try:
                x = c.recv(4096)
            except ssl.SSLError:
                x = b""  # closed without close_notify: the end all the same
            if x:
                self.errors.append("a second request on a PROXY connection: %r" % x[:60])
        except (ValueError, OSError) as e:
            self.errors.append(str(e))
        finally:
            c.close()

    def stop(self):
        self._stop = True
        self.sock.close()


class ProxyProtoOutTest(DaemonTestCase):
    """Routes whose backends want a PROXY header; 127.0.0.2 is a trusted balancer on a
    proxy listener, so the client the header names may be one it told us."""

    @classmethod
    def _start_daemon(cls):
        cls.pp_port = harness.free_port()
        cls.DAEMON_ARGS = ("--trusted-proxies", LB,
                           "--listen-http", "127.0.0.1:%d proxy" % cls.pp_port)
        super()._start_daemon()

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        try:
            super().setUpClass()
        except BaseException:
            cls.pki.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pki.close()

    def hbackend(self, ctx=None):
        b = HeaderBackend(ctx)
        self.addCleanup(b.stop)
        return b

    def test_v1_and_v2_to_backend(self):
        for ver in ("v1", "v2"):
            be = self.hbackend()
            host = unique_host("ppout-" + ver)
            self.daemon.ctl_ok("route", "add", host, be.addr)
            self.daemon.ctl_ok("route", "set", host, "--backend-proxy-protocol", ver)
            self.assertIn("backend_proxy_protocol", self.daemon.ctl_ok("route", "show", host))
            # Through the proxy listener: the balancer's client goes on.
            resp = raw(self.pp_port, [pp_v1("203.0.113.60", "192.0.2.1", 7, 80)], host)
            self.assertEqual(status_of(resp), 200, resp[:300])
            self.assertTrue(resp.endswith(("%s 203.0.113.60\n" % ver).encode()), resp)
            self.assertEqual(be.headers[-1][1:4], ("203.0.113.60", 7, "192.0.2.1"))
            # A direct client: its own address, and the listener's as the destination.
            r = self.daemon.get(host, "/direct")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, ("%s 127.0.0.1\n" % ver).encode())
            self.assertEqual(be.headers[-1][3:], ("127.0.0.1", self.daemon.port))
            self.assertEqual(be.errors, [])

    def test_no_pooling(self):
        """Three requests on one keep-alive client connection: three backend connections,
        each with its header; nothing reused for another client."""
        be = self.hbackend()
        host = unique_host("ppout-pool")
        self.daemon.ctl_ok("route", "add", host, be.addr)
        self.daemon.ctl_ok("route", "set", host, "--backend-proxy-protocol", "v2")
        ka = self.daemon.keepalive()
        for i in range(3):
            r = ka.request("/k%d" % i, host=host)
            self.assertEqual(r.status, 200)
        ka.close()
        r = self.daemon.get(host, "/other")
        self.assertEqual(r.status, 200)
        wait_for(lambda: be.conns == 4, TIMEOUT, "4 backend connections")
        self.assertEqual(len(be.headers), 4)
        self.assertEqual(be.errors, [])

    def test_tls_backend_header_before_handshake(self):
        """proto https: the header, then TLS, then the request."""
        cert, key, _ = self.pki.leaf("127.0.0.1", ["127.0.0.1"])
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(cert, key)
        be = self.hbackend(sctx)
        host = unique_host("ppout-tls")
        self.daemon.ctl_ok("route", "add", host, be.addr, "--proto", "https",
                           "--backend-ca", self.pki.ca)
        self.daemon.ctl_ok("route", "set", host, "--backend-proxy-protocol", "v1")
        resp = raw(self.pp_port, [pp_v2("2001:db8::61", "2001:db8::1", 9, 443)], host)
        self.assertEqual(status_of(resp), 200, resp[:300])
        self.assertTrue(resp.endswith(b"v1 2001:db8::61\n"), resp)
        self.assertEqual(be.errors, [])

    def test_bad_value_refused_and_off(self):
        """v3 is refused, as is an HTTP/2 backend protocol; off sends no header."""
        be = self.hbackend()
        host = unique_host("ppout-off")
        self.daemon.ctl_ok("route", "add", host, be.addr)
        rc, _, err = self.daemon.ctl("route", "set", host, "--backend-proxy-protocol", "v3")
        self.assertNotEqual(rc, 0)
        self.assertIn("use v1, v2, off", err)
        self.daemon.ctl_ok("route", "set", host, "--backend-proxy-protocol", "v2")
        # HTTP/2 sessions carry many clients: refused both ways round.
        rc, _, err = self.daemon.ctl("route", "set", host, "--proto", "h2c")
        self.assertNotEqual(rc, 0)
        self.assertIn("needs proto http1 or https", err)
        self.daemon.ctl_ok("route", "set", host, "--backend-proxy-protocol", "off")
        self.daemon.ctl_ok("route", "set", host, "--proto", "h2c")
        rc, _, err = self.daemon.ctl("route", "set", host, "--backend-proxy-protocol", "v1")
        self.assertNotEqual(rc, 0)
        self.daemon.ctl_ok("route", "set", host, "--proto", "http1")
        # Off again: no header, so this backend refuses the request (502).
        self.assertEqual(self.daemon.get(host, "/off").status, 502)


if __name__ == "__main__":
    import unittest
    unittest.main()
