"""Integration tests of TLS termination (issue 4): the real haloyd with an
HTTPS listener and 4 workers, certificates made here by a throw-away CA
(openssl), imported with haloyd-ctl cert import, and real clients:
openssl s_client, curl --resolve --cacert, python3 ssl and websockets.

Covered: the certificate each name gets (exact, alias, wildcard, no SNI,
unknown name) checked by the served subject; session resumption across
workers; TLS 1.1 refused with a debug line at most; port-80 redirects
(301 GET/HEAD, 308 others, ACME challenges and --https-redirect off
excepted); HSTS; X-Forwarded-Proto; a certificate imported while a
keep-alive TLS connection is open; WebSocket over TLS.
"""
import asyncio
import hashlib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import unittest
import warnings

from . import harness
from .backend import WebSocketEcho, header, websocket_echo_client
from .harness import DaemonTestCase, unique_host, wait_for
from .testpki import Pki

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
CURL = shutil.which("curl") or "/usr/bin/curl"
TIMEOUT = 10.0
DEFAULT_CN = "haloyd-default"


def run(cmd, input=None, timeout=30):
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)


def client_ctx(ca=None, maximum=None):
    if ca is not None:
        ctx = ssl.create_default_context(cafile=ca)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def tls_connect(port, host, ctx, session=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return ctx.wrap_socket(s, server_hostname=host, session=session)
    except BaseException:
        s.close()
        raise


class HTTPSOnSocket(http.client.HTTPConnection):
    """http.client over a TLS socket we made (SNI and verification our own)."""

    def __init__(self, tls_sock, host):
        super().__init__(host, timeout=TIMEOUT)
        self.sock = tls_sock

    def connect(self):
        raise AssertionError("the TLS connection was closed by the server")


def https_request(port, host, ca, path="/", method="GET", headers=None, body=None):
    conn = HTTPSOnSocket(tls_connect(port, host, client_ctx(ca)), host)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}, Host=host))
        r = conn.getresponse()
        return harness.Response(r.status, r.reason, r.getheaders(), r.read())
    finally:
        conn.close()


def s_client(port, servername=None, extra=(), request_host=None, timeout=20):
    """openssl s_client; with request_host it sends one request and reads the answer."""
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port]
    cmd += ["-servername", servername] if servername else ["-noservername"]
    cmd += list(extra)
    data = b""
    if request_host is not None:
        cmd.append("-ign_eof")
        data = ("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % request_host).encode()
    p = run(cmd, input=data, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def served_subject_cn(port, servername=None):
    rc, out = s_client(port, servername, ["-showcerts"])
    m = re.search(r"^subject=.*?CN\s*=\s*([^,/\n]+)", out, re.M)
    if m is None:
        raise AssertionError("no server certificate for %r (s_client exit %d):\n%s"
                             % (servername, rc, out[-2000:]))
    return m.group(1).strip()


def served_fingerprint(port, host):
    s = tls_connect(port, host, client_ctx())
    try:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    finally:
        s.close()


class HttpsTestCase(DaemonTestCase):
    """A daemon with an HTTPS listener (cls.https_port) beside its plain one, a test PKI
    (cls.pki) and a backend called BACKEND (cls.be)."""
    BACKEND = "tls"

    @classmethod
    def _start_daemon(cls):
        cls.https_port = harness.free_port()
        cls.DAEMON_ARGS = ("--listen-https", "127.0.0.1:%d" % cls.https_port)
        super()._start_daemon()

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        try:
            super().setUpClass()
            cls.be = cls.backend(cls.BACKEND)
        except BaseException:
            cls.pki.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pki.close()


class TLSTest(HttpsTestCase):
    WORKERS = 4

    # --- helpers

    def route(self, name, aliases=(), addr=None):
        args = ["route", "add", name, addr or self.be.addr]
        for a in aliases:
            args += ["--alias", a]
        self.daemon.ctl_ok(*args)

    def cert(self, domain, names=None, rsa=False, days=30, cn=None):
        cert, key, fp = self.pki.leaf(cn or domain, names or [domain], rsa=rsa, days=days)
        self.daemon.ctl_ok("cert", "import", domain, "--cert", cert, "--key", key)
        return fp

    def site(self, label, aliases=(), rsa=False):
        """A route with a certificate of its own covering its aliases too."""
        host = unique_host(label)
        al = [a % host for a in aliases]
        self.route(host, al)
        self.cert(host, [host] + al, rsa=rsa)
        return host

    def curl(self, host, path="/", extra=()):
        p = run([CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10",
                 "--resolve", "%s:%d:127.0.0.1" % (host, self.https_port),
                 "--cacert", self.pki.ca] + list(extra) +
                ["https://%s:%d%s" % (host, self.https_port, path)])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        body, _, code = p.stdout.decode().rpartition("\n")
        return int(code), body

    # --- certificate selection

    def test_selection_exact_alias_wildcard_default(self):
        host = self.site("exact", aliases=["www.%s"])
        alias_only = unique_host("alias")  # an alias no certificate covers
        self.daemon.ctl_ok("alias", "add", host, alias_only)
        wild_suffix = unique_host("wild")
        self.route("*." + wild_suffix)
        self.cert("*." + wild_suffix)
        rsa_host = self.site("rsa", rsa=True)

        self.assertEqual(served_subject_cn(self.https_port, host), host)
        self.assertEqual(served_subject_cn(self.https_port, "www." + host), host)
        self.assertEqual(served_subject_cn(self.https_port, rsa_host), rsa_host)
        self.assertEqual(served_subject_cn(self.https_port, "a." + wild_suffix), "*." + wild_suffix)
        # One label only, like routing: a.b.SUFFIX is not covered.
        self.assertEqual(served_subject_cn(self.https_port, "a.b." + wild_suffix), DEFAULT_CN)
        self.assertEqual(served_subject_cn(self.https_port, alias_only), DEFAULT_CN)
        self.assertEqual(served_subject_cn(self.https_port, unique_host("unknown")), DEFAULT_CN)
        self.assertEqual(served_subject_cn(self.https_port, None), DEFAULT_CN)

        # Verified clients: curl and python ssl with the CA.
        code, body = self.curl(host, "/hello")
        self.assertEqual((code, body), (200, "backend tls\n"))
        code, body = self.curl("www." + host, "/")
        self.assertEqual(code, 200)
        r = https_request(self.https_port, "x." + wild_suffix, self.pki.ca, "/wild")
        self.assertEqual(r.status, 200, r)

    def test_forwarded_proto_https(self):
        host = self.site("proto")
        r = https_request(self.https_port, host, self.pki.ca, "/proto-check")
        self.assertEqual(r.status, 200, r)
        rec = self.be.wait_request("/proto-check")
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header(rec, "Host"), [host])
        plain = unique_host("proto-plain")  # no certificate: served on port 80
        self.route(plain)
        self.assertEqual(self.daemon.get(plain, "/proto-plain").status, 200)
        rec = self.be.wait_request("/proto-plain")
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["http"])

    def test_ecdsa_and_rsa_both_usable(self):
        for rsa in (False, True):
            host = self.site("kt", rsa=rsa)
            s = tls_connect(self.https_port, host, client_ctx(self.pki.ca))
            try:
                # TLS 1.3 with AES-128-GCM, though OpenSSL's client lists AES-256 first.
                self.assertEqual(s.cipher()[:2], ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
                self.assertEqual(s.selected_alpn_protocol(), None)
            finally:
                s.close()
            # A client that asks for ChaCha20 first gets it (no AES instructions on phones).
            rc, out = s_client(self.https_port, host, ["-ciphersuites",
                               "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"])
            self.assertIn("Cipher is TLS_CHACHA20_POLY1305_SHA256", out)
            ctx = client_ctx(self.pki.ca)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            s = tls_connect(self.https_port, host, ctx)
            try:
                # HTTP/2 is on by default (haloyd.conf http2): ALPN prefers h2.
                self.assertEqual(s.selected_alpn_protocol(), "h2")
            finally:
                s.close()
            ctx = client_ctx(self.pki.ca)
            ctx.set_alpn_protocols(["http/1.1"])
            s = tls_connect(self.https_port, host, ctx)
            try:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
            finally:
                s.close()
            # TLS 1.2 with only forward-secret AEAD suites.
            s = tls_connect(self.https_port, host, client_ctx(self.pki.ca, ssl.TLSVersion.TLSv1_2))
            try:
                name, version, _ = s.cipher()
                self.assertEqual(version, "TLSv1.2")
                self.assertTrue(name.startswith("ECDHE-"), name)
                self.assertTrue("GCM" in name or "CHACHA20" in name, name)
                self.assertIn("RSA" if rsa else "ECDSA", name)
            finally:
                s.close()

    # --- resumption across workers

    def worker_requests(self):
        return {w["index"]: w["requests"] for w in self.daemon.status()["workers"]}

    def test_resumption_50_reconnects_all_reused(self):
        host = self.site("resume")
        sess = os.path.join(self.pki.dir, "resume-%s.sess" % host)
        rc, out = s_client(self.https_port, host, ["-sess_out", sess, "-CAfile", self.pki.ca],
                           request_host=host)
        self.assertIn("HTTP/1.1 200", out)
        self.assertIn("Verify return code: 0", out)
        self.assertIn("New, TLSv1.3", out)
        before = self.worker_requests()
        for i in range(50):
            rc, out = s_client(self.https_port, host, ["-sess_in", sess], request_host=host)
            self.assertIn("Reused, TLSv1.3", out, "reconnect %d was not resumed:\n%s"
                          % (i, out[-1500:]))
            self.assertIn("HTTP/1.1 200", out)
        after = self.worker_requests()
        served = [i for i in after if after[i] > before.get(i, 0)]
        self.assertGreaterEqual(len(served), 2, "the 50 connections reached workers %r" % served)

    def test_resumption_tls12_and_python(self):
        host = self.site("resume12")
        sess = os.path.join(self.pki.dir, "resume12-%s.sess" % host)
        rc, out = s_client(self.https_port, host, ["-tls1_2", "-sess_out", sess])
        self.assertIn("New, TLSv1.2", out)
        for i in range(10):
            rc, out = s_client(self.https_port, host, ["-tls1_2", "-sess_in", sess])
            self.assertIn("Reused, TLSv1.2", out, "reconnect %d:\n%s" % (i, out[-1500:]))
        # python ssl, TLS 1.3: the ticket comes after the handshake, with the answer.
        ctx = client_ctx(self.pki.ca)
        session = None
        for i in range(20):
            conn = HTTPSOnSocket(tls_connect(self.https_port, host, ctx, session), host)
            if i > 0:
                self.assertTrue(conn.sock.session_reused, "python reconnect %d" % i)
            conn.request("GET", "/py-%d" % i, headers={"Host": host})
            self.assertEqual(conn.getresponse().read(), b"backend tls\n")
            session = conn.sock.session
            conn.close()

    # --- protocol versions and failed handshakes

    def test_tls11_refused_quietly(self):
        host = self.site("old")
        mark = self.daemon.log_size()
        rc, out = s_client(self.https_port, host, ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"])
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"alert protocol version|unsupported protocol|wrong version",
                         "the server refused TLS 1.1:\n" + out[-1500:])
        ctx = client_ctx()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_connect(self.https_port, host, ctx).close()
        # Garbage instead of a ClientHello, 20 times.
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    s.recv(100)
                except OSError:
                    pass
        # Still serving, and no warning about any of it (failures are debug lines).
        self.assertEqual(self.curl(host)[0], 200)
        log = self.daemon.log_text(mark)
        noisy = [l for l in log.splitlines() if "TLS" in l or "handshake" in l or "SSL" in l]
        self.assertEqual(noisy, [], "failed handshakes logged above debug level")

    # --- port 80

    def test_redirects(self):
        host = self.site("redir")
        port = self.https_port
        loc = "https://%s:%d/a/b?c=d" % (host, port)
        r = self.daemon.get(host, "/a/b?c=d")
        self.assertEqual((r.status, r.header("Location")), (301, loc), r)
        r = self.daemon.get(host, "/a/b?c=d", method="HEAD")
        self.assertEqual((r.status, r.header("Location")), (301, loc), r)
        r = self.daemon.get(host, "/a/b?c=d", method="POST", body=b"x=1",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((r.status, r.header("Location")), (308, loc), r)
        r = self.daemon.get(host, "/x", method="DELETE")
        self.assertEqual(r.status, 308, r)
        # Keep-alive survives a redirect.
        ka = self.daemon.keepalive()
        try:
            self.assertEqual(ka.request("/1", host=host).status, 301)
            self.assertEqual(ka.request("/2", host=host).status, 301)
        finally:
            ka.close()
        # ACME challenges stay on port 80.
        r = self.daemon.get(host, "/.well-known/acme-challenge/tok123")
        self.assertNotIn(r.status, (301, 308), r)
        # Routes without a certificate of their own are served on port 80.
        plain = unique_host("plain")
        self.route(plain)
        r = self.daemon.get(plain, "/")
        self.assertEqual((r.status, r.body), (200, b"backend tls\n"))
        # Opting out.
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "off")
        r = self.daemon.get(host, "/after-opt-out")
        self.assertEqual((r.status, r.body), (200, b"backend tls\n"), r)
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "on")
        self.assertEqual(self.daemon.get(host, "/").status, 301)

    def test_hsts(self):
        host = self.site("hsts")
        r = https_request(self.https_port, host, self.pki.ca, "/")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Strict-Transport-Security"))
        self.daemon.ctl_ok("route", "set", host, "--hsts", "on")
        r = https_request(self.https_port, host, self.pki.ca, "/")
        self.assertEqual((r.status, r.body), (200, b"backend tls\n"))
        self.assertEqual(r.header("Strict-Transport-Security"), "max-age=31536000")
        r = https_request(self.https_port, host, self.pki.ca, "/status?code=404")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("Strict-Transport-Security"), "max-age=31536000")
        # Not on plain HTTP (where it would mean nothing).
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "off")
        r = self.daemon.get(host, "/")
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Strict-Transport-Security"))

    # --- certificate changes under load

    def test_import_while_keepalive_connection_open(self):
        host = unique_host("swap")
        self.route(host)
        fp1 = self.cert(host, days=30)
        self.assertEqual(served_fingerprint(self.https_port, host), fp1)
        conn = HTTPSOnSocket(tls_connect(self.https_port, host, client_ctx(self.pki.ca)), host)
        try:
            sock = conn.sock
            conn.request("GET", "/before", headers={"Host": host})
            self.assertEqual(conn.getresponse().read(), b"backend tls\n")
            self.assertEqual(hashlib.sha256(sock.getpeercert(True)).hexdigest(), fp1)
            fp2 = self.cert(host, days=60)  # expires later: it wins the name
            self.assertNotEqual(fp1, fp2)
            for _ in range(8):  # new connections, any worker
                self.assertEqual(served_fingerprint(self.https_port, host), fp2)
            for i in range(3):
                conn.request("GET", "/after-%d" % i, headers={"Host": host})
                self.assertEqual(conn.getresponse().read(), b"backend tls\n")
            self.assertIs(conn.sock, sock, "the old connection was kept alive")
        finally:
            conn.close()

    # --- WebSocket over TLS

    def test_websocket_over_tls(self):
        ws_be = WebSocketEcho().start()
        self.addCleanup(ws_be.stop)
        host = unique_host("wss")
        self.route(host, addr=ws_be.addr)
        self.cert(host)
        result = asyncio.run(asyncio.wait_for(self.wss_client(host, 300), 60))
        self.assertEqual(result["mismatches"], [])
        self.assertEqual(result["close_code"], 1000)
        sess = wait_for(lambda: ws_be.sessions and ws_be.sessions[0]["close_code"] is not None
                        and ws_be.sessions[0], 10, "the server side of the WebSocket to end")
        self.assertEqual(sess["messages"], 300)
        self.assertEqual(sess["close_code"], 1000)
        proto = [v for k, v in sess["headers"] if k.lower() == "x-forwarded-proto"]
        self.assertEqual(proto, ["https"])

    async def wss_client(self, host, n):
        return await websocket_echo_client(self.https_port, host, n, client_ctx(self.pki.ca))


if __name__ == "__main__":
    unittest.main()
