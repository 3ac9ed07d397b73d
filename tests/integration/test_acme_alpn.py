"""TLS-ALPN-01 (RFC 8737, issue 19 point 2) against Debian's pebble: a
daemon with `listen_http none` (HTTPS only) gets its certificates over
TLS-ALPN-01 on its own HTTPS port (pebble's tlsPort), then serves them; a
ClientHello offering only acme-tls/1 for a name without a pending
challenge fails the handshake and the connection closes; `route set
--challenge tls-alpn-01` chooses it on a daemon that has an HTTP
listener too.
"""
import socket
import ssl
import time
import unittest

from . import harness
from .harness import free_port, unique_host, wait_for
from .test_acme import CHALLTESTSRV, OPENSSL, PEBBLE, AcmeCase, Pebble


@unittest.skipUnless(PEBBLE and CHALLTESTSRV and OPENSSL,
                     "needs Debian's pebble package (pebble, pebble-challtestsrv) and openssl")
class AlpnCase(AcmeCase):
    """pebble validates TLS-ALPN-01 against the daemon's HTTPS port."""

    NO_HTTP = True

    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.https_port = free_port()
        cls.pebble = Pebble(cls.http_port, tls_port=cls.https_port).start()
        cls.daemon = None
        cls.start_daemon()
        cls.backend = harness.backend_mod.Backend("acme-alpn").start()

    @classmethod
    def daemon_args(cls):
        args = super().daemon_args()
        if cls.NO_HTTP:
            args += ["--listen-http", "none"]
        return args

    def acme_hello(self, name, alpn=("acme-tls/1",)):
        """A handshake offering alpn for name; the certificate's DER and the protocol."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(list(alpn))
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                der = t.getpeercert(binary_form=True)
                proto = t.selected_alpn_protocol()
                # The server closes after the handshake: a read sees EOF, never data.
                t.settimeout(10)
                try:
                    rest = t.recv(1)
                except (ssl.SSLError, OSError):
                    rest = b""
                return der, proto, rest


class AlpnIssuanceTest(AlpnCase):
    """No HTTP listener: TLS-ALPN-01 is chosen, and the certificate is served."""

    def test_issued_over_tls_alpn_then_served(self):
        name = unique_host("alpn")
        self.add_route(name)
        c = self.wait_cert(name, [name])
        self.verify_chain(c["chain"])
        log = self.daemon.log_text(self._mark)
        self.assertIn("publishing the tls-alpn-01 answer for %s" % name, log)
        self.assertNotIn("http-01", log)
        wait_for(lambda: self.served_cert(name) == [name], 10,
                 "HTTPS to serve the pebble certificate for %s" % name)
        self.assertEqual(self.status(name)["challenge"], "tls-alpn-01")
        # A normal HTTPS request with the issued certificate, verified against pebble's root.
        ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                t.sendall(("GET /hello HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % name).encode())
                data = b""
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        # The order is over: its challenge certificate left the keyring.
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            self.acme_hello(name)

    def test_acme_tls_without_challenge_fails_cleanly(self):
        name = unique_host("nochal")
        t0 = time.monotonic()
        with self.assertRaises(ssl.SSLError) as cm:
            self.acme_hello(name)
        self.assertIn("NO_APPLICATION_PROTOCOL", str(cm.exception).upper().replace(" ", "_"))
        self.assertLess(time.monotonic() - t0, 5)
        # The same name with acme-tls/1 among other protocols is a normal handshake.
        der, proto, _ = self.acme_hello(name, alpn=("acme-tls/1", "http/1.1"))
        self.assertEqual(proto, "http/1.1")
        self.assertTrue(der)


class AlpnRouteSettingTest(AlpnCase):
    """With an HTTP listener, `route set --challenge tls-alpn-01` still picks TLS-ALPN-01."""

    NO_HTTP = False

    def test_route_set_challenge(self):
        name = unique_host("alpnset")
        # The setting first (the route add orders at once): on an unknown route it is refused.
        rc, _, err = self.daemon.ctl("route", "set", name, "--challenge", "tls-alpn-01")
        self.assertNotEqual(rc, 0)
        self.daemon.ctl_ok("route", "add", name, self.backend.addr, "--challenge", "tls-alpn-01")
        out = self.daemon.ctl_ok("route", "show", name)
        self.assertIn("tls-alpn-01", out)
        self.wait_cert(name, [name])
        log = self.daemon.log_text(self._mark)
        self.assertIn("publishing the tls-alpn-01 answer for %s" % name, log)
        rc, _, err = self.daemon.ctl("route", "set", name, "--challenge", "dns-02")
        self.assertNotEqual(rc, 0)
        self.assertIn("challenge", err)


if __name__ == "__main__":
    unittest.main()
