"""Integration tests of haloyd's own TLS 1.3 record layer (worker/tlsrec.c):
after a TLS 1.3 handshake a worker runs the records itself and frees the
SSL, and a connection idle through a whole tidy period (1 s timer) gives
its cipher contexts back until it moves again. The real daemon, a real
backend, python3 ssl clients held to TLS 1.3 (and one to TLS 1.2, which
stays on OpenSSL), every body checked byte for byte.

The unit suite tlsrec covers the records themselves; what only the real
worker shows: its tidy timer on idle keep-alive connections, many requests
and big bodies both ways through conn.c with the worker under seccomp.
"""
import http.client
import os
import socket
import ssl
import time

from .harness import unique_host
from .test_tls import HttpsTestCase

TIMEOUT = 20.0


class Client(http.client.HTTPConnection):
    """http.client on one TLS connection of the given version, kept alive."""

    def __init__(self, port, host, ca, version):
        super().__init__(host, timeout=TIMEOUT)
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ctx.maximum_version = version
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.version = self.sock.version()

    def connect(self):
        raise AssertionError("the keep-alive TLS connection was closed by the server")

    def call(self, method, path, body=None):
        self.request(method, path, body=body, headers={"Host": self.host})
        r = self.getresponse()
        return r.status, r.read()


class TLSRecordLayerTest(HttpsTestCase):
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.host = unique_host("tlsrec")
        cls.daemon.ctl_ok("route", "add", cls.host, cls.be.addr)
        cert, key, _ = cls.pki.leaf(cls.host, [cls.host])
        cls.daemon.ctl_ok("cert", "import", cls.host, "--cert", cert, "--key", key)

    def client(self, version=ssl.TLSVersion.TLSv1_3):
        deadline = time.monotonic() + TIMEOUT
        while True:  # the keyring reaches the worker after the import
            try:
                c = Client(self.https_port, self.host, self.pki.ca, version)
                break
            except (ssl.SSLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.addCleanup(c.close)
        return c

    def echo_round(self, c, n, size):
        for i in range(n):
            body = os.urandom(size + i)
            self.assertEqual(c.call("POST", "/echo?i=%d" % i, body), (200, body))

    def big_both_ways(self, c):
        up = os.urandom(1 << 20)
        self.assertEqual(c.call("POST", "/echo", up), (200, up))
        status, down = c.call("GET", "/big?bytes=%d" % (3 << 20))
        self.assertEqual(status, 200)
        self.assertEqual(down, b"0123456789abcdef" * ((3 << 20) // 16))

    def test_keepalive_requests_and_big_bodies(self):
        c = self.client()
        self.assertEqual(c.version, "TLSv1.3")
        self.echo_round(c, 200, 100)
        self.big_both_ways(c)
        self.echo_round(c, 50, 17000)  # bodies over one record each way

    def test_idle_past_the_tidy_period_then_reused(self):
        c = self.client()
        self.echo_round(c, 5, 1000)
        # Idle through two ticks of the 1 s tidy timer: the contexts go, and come back.
        for _ in range(3):
            time.sleep(2.5)
            self.echo_round(c, 5, 1000)
        time.sleep(2.5)
        self.big_both_ways(c)

    def test_many_connections_each_checked(self):
        clients = [self.client() for _ in range(20)]
        for round_ in range(3):
            for i, c in enumerate(clients):
                body = b"%d/%d " % (round_, i) * 200
                self.assertEqual(c.call("POST", "/echo", body), (200, body))

    def test_tls12_stays_on_openssl(self):
        c = self.client(ssl.TLSVersion.TLSv1_2)
        self.assertEqual(c.version, "TLSv1.2")
        self.echo_round(c, 20, 5000)
        self.big_both_ways(c)
