"""On-demand TLS (haloyd issue 19, point 4) against Debian's pebble: with
`acme_on_demand on`, a handshake whose SNI name no certificate covers asks
the acme_ask URL (a small server here, counting its calls) and, when it
says 200, waits while the ACME child orders the certificate, so the client
sees the issued certificate on its first handshake. A refused name gets the
default certificate and no order; a burst of 1 000 unknown names makes at
most acme_on_demand_rate asks and orders while haloyd keeps serving; an
allowed name survives a restart and is listed by `cert status`.
"""
import http.server
import math
import os
import shutil
import socket
import ssl
import threading
import time
import unittest
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from . import harness
from . import listener
from .harness import free_port, unique_host, wait_for
from .test_acme import AcmeCase

WAIT = 25  # acme_on_demand_wait of the main case, seconds


class AskServer:
    """acme_ask: 200 for the names in allowed (or every name with allow_all), 403 else."""

    def __init__(self):
        self.allowed = set()
        self.allow_all = False
        self.calls = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                name = q.get("domain", [""])[0]
                with owner.lock:
                    owner.calls.append(name)
                    ok = owner.allow_all or name in owner.allowed
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = listener.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = "http://127.0.0.1:%d/ask" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, name=None):
        with self.lock:
            return len(self.calls) if name is None else self.calls.count(name)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class OnDemandCase(AcmeCase):
    RATE = 20
    WAIT_ARG = "%ds" % WAIT

    @classmethod
    def setUpClass(cls):
        cls.ask = AskServer()
        try:
            super().setUpClass()
            # A wildcard route covers the on-demand names (unique_host: one label under
            # example.com); on-demand gives them certificates, the route their backend.
            cls.daemon.ctl_ok("route", "add", "*.example.com", cls.backend.addr)
        except BaseException:
            cls.ask.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.ask.close()

    @classmethod
    def daemon_args(cls):
        return super().daemon_args() + [
            "--acme-on-demand", "on", "--acme-ask", cls.ask.url,
            "--acme-on-demand-rate", str(cls.RATE), "--acme-on-demand-wait", cls.WAIT_ARG,
            "--acme-on-demand-backoff", "1h"]

    def handshake(self, name, verify=False, timeout=WAIT + 20):
        """One handshake for name: the SAN DNS names of the certificate served, sorted."""
        if verify:
            ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=timeout) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                der = t.getpeercert(binary_form=True)
                cert = t.getpeercert() if verify else None
        if verify:
            return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")
        return der

    def default_der(self):
        """The default certificate: what a handshake without SNI gets."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                return t.getpeercert(binary_form=True)

    def https_get(self, name):
        ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                t.sendall(("GET /od HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                           % name).encode())
                data = b""
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        return data
                    data += chunk

    def orders_for(self, name, daemon=None):
        return (daemon or self.daemon).log_text().count("ordering a certificate for %s" % name)


class OnDemandTest(OnDemandCase):
    """An allowed name on its first handshake; a refused one; a restart."""

    def test_allowed_name_gets_its_certificate_on_first_handshake(self):
        name = unique_host("od-ok")
        self.ask.allowed.add(name)
        t0 = time.monotonic()
        sans = self.handshake(name, verify=True)  # verified against pebble's root: not default
        elapsed = time.monotonic() - t0
        self.assertEqual(sans, [name], self.daemon.log_tail())
        self.assertLess(elapsed, WAIT, "the first client waited past acme_on_demand_wait")
        self.assertEqual(self.ask.count(name), 1)
        self.assertEqual(self.orders_for(name), 1)
        # The wildcard route serves it; `cert status` lists the name.
        self.assertTrue(self.https_get(name).startswith(b"HTTP/1.1 200"))
        st = self.status(name)
        self.assertIsNotNone(st, self.daemon.log_tail())
        self.assertEqual(st["state"], "valid")
        # A second handshake neither asks nor orders again.
        self.assertEqual(self.handshake(name, verify=True), [name])
        self.assertEqual(self.ask.count(name), 1)

        # The name survives a restart: stored, served, listed, not asked or ordered again.
        old = self.daemon
        old.close(keep=True)
        try:
            d = type(self).start_daemon(args=(), state_from=old.state_dir)
        finally:
            shutil.rmtree(old.base, ignore_errors=True)
        self._mark = 0
        wait_for(lambda: self.status(name) is not None, 10, "cert status to list " + name,
                 d.log_tail)
        self.assertEqual(self.handshake(name, verify=True, timeout=10), [name])
        self.assertEqual(self.status(name)["state"], "valid")
        rc, out, _ = d.ctl("cert", "status")
        self.assertEqual(rc, 0)
        self.assertIn(name, out)
        self.assertEqual(self.ask.count(name), 1)
        self.assertEqual(self.orders_for(name, d), 0, d.log_tail())

        # `cert rm` forgets the name with its certificate: no longer listed, and the
        # next handshake asks again (the ask server still allows it: a new order).
        out = d.ctl_ok("cert", "rm", name)
        self.assertIn("on-demand", out)
        self.assertIsNone(self.status(name))
        # The restored folder's files were root's (a copy made as root): the master gave
        # them to the ACME user, or this order would fail on account.key.
        self.assertEqual(self.handshake(name, verify=True), [name], d.log_tail())
        self.assertEqual(self.ask.count(name), 2)
        rc, out, err = d.ctl("cert", "rm", "never-" + name)
        self.assertNotEqual(rc, 0)
        self.assertIn("not found", out + err)

    def test_refused_name_gets_default_certificate_and_no_order(self):
        default = self.default_der()
        name = unique_host("od-no")
        t0 = time.monotonic()
        self.assertEqual(self.handshake(name), default)
        # The refusal releases the waiting handshake: no need to wait for the bound.
        self.assertLess(time.monotonic() - t0, WAIT / 2)
        self.assertEqual(self.ask.count(name), 1)
        self.assertEqual(self.orders_for(name), 0)
        self.assertIsNone(self.status(name))
        # Backing off: the next handshake is answered at once, without an ask.
        t0 = time.monotonic()
        self.assertEqual(self.handshake(name), default)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.ask.count(name), 1)

    def test_route_names_and_bad_names_are_not_asked(self):
        name = unique_host("od-route")
        self.daemon.ctl_ok("route", "add", name, self.backend.addr)
        before = self.ask.count()
        self.handshake("127.0.0.1")  # an address is no SNI name (Python sends none)
        self.handshake("localhost")  # a single-label name no public CA issues for
        self.handshake(name)         # a route's own name: its route's order covers it
        self.assertEqual(self.ask.count(), before)


class OnDemandBurstTest(OnDemandCase):
    """1 000 unknown names at once: at most the rate's asks and orders; haloyd keeps serving."""

    RATE = 5
    WAIT_ARG = "3s"

    def test_burst_of_unknown_names(self):
        self.ask.allow_all = True
        default = self.default_der()
        names = [unique_host("burst") for _ in range(1000)]
        errors = []

        def one(name):
            try:
                self.handshake(name, timeout=30)
            except (OSError, ssl.SSLError) as e:
                errors.append("%s: %s" % (name, e))

        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as ex:
            list(ex.map(one, names))
        # Still serving while the orders run: plain HTTP and a TLS handshake.
        r = harness.request(self.daemon.port, "/", host="nothing.invalid")
        self.assertIn(r.status, (404, 421), r)
        self.assertEqual(self.default_der(), default)
        self.assertEqual(errors, [])
        # The ACME child asks on its own time (it may still be busy with the CA): wait for
        # the first ask, then for the orders the asks allowed to finish (or fail).
        wait_for(lambda: self.ask.count() >= 1, 60, "the first on-demand ask",
                 self.daemon.log_tail)
        asked = set(self.ask.calls)

        def settled():
            rows = [self.status(n) for n in asked]
            return all(r is not None and r["state"] in ("valid", "failed") for r in rows)
        wait_for(settled, 120, "every allowed on-demand name's order to end",
                 self.daemon.log_tail)
        elapsed = time.monotonic() - t0
        bound = self.RATE + math.ceil(self.RATE * elapsed / 60.0)
        self.assertLessEqual(self.ask.count(), bound)
        self.assertGreaterEqual(self.ask.count(), 1)
        orders = self.daemon.log_text().count("ordering a certificate for burst-")
        self.assertLessEqual(orders, self.ask.count())
        self.assertGreaterEqual(orders, 1)


if __name__ == "__main__":
    unittest.main()
