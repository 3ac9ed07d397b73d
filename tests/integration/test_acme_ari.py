"""ARI (RFC 9773) and certificate profiles (issue 19 points 1 and 5).

Debian's pebble 2.4 predates both, so a small HTTPS directory front runs
in the test: it proxies every request to pebble (keeping the Host header,
so pebble's URLs point back at the front), adds `renewalInfo` and
`meta.profiles` to the directory, answers renewalInfo with the window the
test chooses (and a Retry-After), and records what the ACME child sends
(the ARI ids it asks about, the payload of each order pebble created,
with `replaces` and `profile`).
"""
import base64
import http.client
import http.server
import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import threading
import time
import unittest

from . import listener
from .harness import free_port, unique_host, wait_for
from .test_acme import CHALLTESTSRV, OPENSSL, PEBBLE, AcmeCase

RETRY_AFTER = 1800


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Front:
    """The directory front on a loopback port, with pebble's TLS certificate."""

    def __init__(self, pebble):
        self.pebble = pebble
        self.port = free_port()
        self.lock = threading.Lock()
        self.ari_ids = []       # ARI ids the child asked about, in order
        self.orders = []        # newOrder payloads (JSON)
        self.new_order_path = None
        self.refuse_replaces = False  # answer newOrder with replaces: alreadyReplaced
        self.refused = 0
        # Called with the ARI id: (start, end) unix seconds of the window to serve.
        self.window = lambda ari_id: (time.time() + 3600, time.time() + 7200)
        self.profiles = {"shortlived": "6-day certificates", "classic": "90 days"}
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                front.proxy(self, None)

            def do_GET(self):
                if self.path.startswith("/renewal-info/"):
                    front.renewal_info(self)
                else:
                    front.proxy(self, None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n) if n > 0 else b""
                if self.path == front.new_order_path and front.refuse_replaces and \
                        "replaces" in json.loads(b64u_decode(json.loads(body)["payload"])):
                    front.refused += 1
                    problem = json.dumps({
                        "type": "urn:ietf:params:acme:error:alreadyReplaced",
                        "detail": "already replaced"}).encode()
                    front._send(self, 409, [("Content-Type", "application/problem+json")],
                                problem)
                    return
                status = front.proxy(self, body)
                # Orders pebble created (not a badNonce pebble makes the child retry).
                if self.path == front.new_order_path and status == 201:
                    payload = json.loads(body)["payload"]
                    with front.lock:
                        front.orders.append(json.loads(b64u_decode(payload)))

        self.server = listener.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pebble.ca_file, os.path.join(pebble.base, "pebble.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _send(self, h, status, headers, body):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def proxy(self, h, body):
        ctx = ssl.create_default_context(cafile=self.pebble.ca_file)
        c = http.client.HTTPSConnection("127.0.0.1", self.pebble.port, context=ctx, timeout=30)
        try:
            headers = {k: v for k, v in h.headers.items()
                       if k.lower() not in ("connection", "content-length")}
            c.request(h.command, h.path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            out = [(k, v) for k, v in r.getheaders()
                   if k.lower() not in ("connection", "content-length", "transfer-encoding")]
        finally:
            c.close()
        if h.path == "/dir" and h.command == "GET" and r.status == 200:
            d = json.loads(data)
            self.new_order_path = "/" + d["newOrder"].split("/", 3)[3]
            d["renewalInfo"] = "https://127.0.0.1:%d/renewal-info" % self.port
            d.setdefault("meta", {})["profiles"] = self.profiles
            data = json.dumps(d).encode()
        self._send(h, r.status, out, data)
        return r.status

    def renewal_info(self, h):
        ari_id = h.path[len("/renewal-info/"):]
        with self.lock:
            self.ari_ids.append(ari_id)
        start, end = self.window(ari_id)
        body = json.dumps({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)},
                           "explanationURL": "https://ca.example/why"}).encode()
        self._send(h, 200, [("Content-Type", "application/json"),
                            ("Retry-After", str(RETRY_AFTER))], body)


@unittest.skipUnless(PEBBLE and CHALLTESTSRV and OPENSSL,
                     "needs Debian's pebble package (pebble, pebble-challtestsrv) and openssl")
class FrontCase(AcmeCase):
    """A daemon whose ACME directory is the front."""

    @classmethod
    def setUpClass(cls):
        cls.front = None
        super().setUpClass()

    @classmethod
    def start_daemon(cls, args=None, state_from=None):
        if cls.front is None:
            cls.front = Front(cls.pebble).start()
        return super().start_daemon(args, state_from)

    @classmethod
    def daemon_args(cls):
        args = super().daemon_args()
        args[args.index("--acme-directory") + 1] = cls.front.directory
        return args

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.front is not None:
                cls.front.close()

    def order_row(self, name):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.daemon.state_dir, "haloyd.db"),
                             uri=True, timeout=10)
        try:
            db.row_factory = sqlite3.Row
            r = db.execute("SELECT o.* FROM acme_orders o JOIN routes r ON r.id = o.route_id "
                           "WHERE r.name = ?", (name,)).fetchone()
            return dict(r) if r is not None else None
        finally:
            db.close()

    def ari_id_of(self, chain):
        """RFC 9773 section 4.1 from openssl's view of the leaf: AKI keyid "." serial."""
        leaf = chain[:chain.index("-----END CERTIFICATE-----") + 25] + "\n"
        p = subprocess.run([OPENSSL, "x509", "-noout", "-serial", "-ext",
                            "authorityKeyIdentifier"], input=leaf, capture_output=True,
                           text=True, check=True)
        lines = [l.strip() for l in p.stdout.splitlines()]
        serial = bytes.fromhex([l for l in lines if l.startswith("serial=")][0][7:])
        if serial[0] & 0x80:
            serial = b"\0" + serial  # the DER INTEGER's content octets
        kid = [l for l in lines if ":" in l and not l.startswith(("serial", "X509"))][0]
        kid = bytes.fromhex(kid.replace("keyid:", "").replace(":", ""))

        def enc(b):
            return base64.urlsafe_b64encode(b).decode().rstrip("=")
        return enc(kid) + "." + enc(serial)


class AriTest(FrontCase):
    """The window is fetched, the renewal drawn inside it and kept; a past window renews with replaces."""

    def test_renewal_scheduled_inside_window_and_kept_across_restart(self):
        name = unique_host("ari")
        now = time.time()
        start, end = int(now) + 10 * 86400, int(now) + 11 * 86400
        self.front.window = lambda ari_id: (start, end)
        self.add_route(name)
        c = self.wait_cert(name, [name])
        ari_id = self.ari_id_of(c["chain"])

        def windowed():
            st = self.status(name)
            return st if st is not None and st["ari_end_unix"] > 0 else None
        st = wait_for(windowed, 30, "the ARI window of %s" % name, self.daemon.log_tail)
        t_poll = time.time()
        self.assertIn(ari_id, self.front.ari_ids)
        self.assertEqual((st["ari_start_unix"], st["ari_end_unix"]), (start, end))
        self.assertGreaterEqual(st["next_renewal_unix"], start)
        self.assertLessEqual(st["next_renewal_unix"], end)
        self.assertNotEqual(st["ari_window"], "-")
        row = self.order_row(name)
        self.assertEqual(row["ari_id"], ari_id)
        # Retry-After is the next poll.
        self.assertAlmostEqual(row["ari_next_poll"], t_poll + RETRY_AFTER, delta=15)
        self.assertIn("explanation: https://ca.example/why", self.daemon.log_text(self._mark))
        # The first order replaced nothing.
        self.assertNotIn("replaces", [o for o in self.front.orders
                                      if o["identifiers"][0]["value"] == name][0])
        # A restart keeps the drawn time: the window is stored, not fetched again.
        renew_at = st["next_renewal_unix"]
        asked = len(self.front.ari_ids)
        old = self.daemon
        old.close(keep=True)
        try:
            type(self).start_daemon(args=(), state_from=old.state_dir)
        finally:
            shutil.rmtree(old.base, ignore_errors=True)
        self._mark = 0
        self.assertEqual(self.status(name)["next_renewal_unix"], renew_at)
        time.sleep(2)  # the schedule runs at start-up: give it the chance to ask again
        self.assertEqual(self.status(name)["next_renewal_unix"], renew_at)
        self.assertEqual(len(self.front.ari_ids), asked)

    def test_past_window_renews_with_replaces(self):
        name = unique_host("arinow")
        seen = {}

        def window(ari_id):
            # The first certificate's window is over: renew now; the next one's is far away.
            if not seen:
                seen["first"] = ari_id
                return time.time() - 7200, time.time() - 3600
            return time.time() + 30 * 86400, time.time() + 31 * 86400
        self.front.window = window
        self.add_route(name)
        first = self.wait_cert(name, [name])
        second = self.wait_cert(name, [name], other_than=first["fingerprint"])
        self.verify_chain(second["chain"])
        mine = [o for o in self.front.orders if o["identifiers"][0]["value"] == name]
        self.assertEqual(len(mine), 2, "%r\n%s" % (mine, self.daemon.log_text(self._mark)))
        self.assertNotIn("replaces", mine[0])
        self.assertEqual(mine[1]["replaces"], self.ari_id_of(first["chain"]))
        self.assertEqual(seen["first"], self.ari_id_of(first["chain"]))


class AlreadyReplacedTest(FrontCase):
    """A CA that refuses replaces (alreadyReplaced) gets the order again without it."""

    def test_already_replaced_orders_without_replaces(self):
        name = unique_host("arirep")
        seen = []

        def window(ari_id):
            seen.append(ari_id)
            if len(seen) == 1:
                return time.time() - 7200, time.time() - 3600
            return time.time() + 30 * 86400, time.time() + 31 * 86400
        self.front.window = window
        self.front.refuse_replaces = True
        self.add_route(name)
        first = self.wait_cert(name, [name])
        self.wait_cert(name, [name], other_than=first["fingerprint"])
        self.assertEqual(self.front.refused, 1)
        mine = [o for o in self.front.orders if o["identifiers"][0]["value"] == name]
        self.assertEqual(len(mine), 2, mine)
        self.assertNotIn("replaces", mine[1])
        self.assertIn("refused replaces", self.daemon.log_text(self._mark))
        self.assertEqual(self.status(name)["state"], "valid")


class WithoutAriTest(AcmeCase):
    """pebble's own directory has no renewalInfo: the lifetime rule stays, no window."""

    def test_no_renewal_info_keeps_lifetime_rule(self):
        name = unique_host("noari")
        self.add_route(name)
        self.wait_cert(name, [name])

        def polled():
            st = self.status(name)
            return st if st is not None and st["next_renewal_unix"] > 0 else None
        st = wait_for(polled, 20, "a next renewal for %s" % name)
        self.assertEqual(st["ari_window"], "-")
        self.assertEqual(st["ari_end_unix"], 0)
        self.assertEqual(st["challenge"], "http-01")
        self.assertEqual(st["profile"], "-")
        # A third of the lifetime before the end (acme_renew_before 33%).
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.daemon.state_dir,
                                                              "haloyd.db"), uri=True, timeout=10)
        try:
            nb, na = db.execute("SELECT not_before, not_after FROM certs WHERE domain = ?",
                                (name,)).fetchone()
        finally:
            db.close()
        self.assertAlmostEqual(st["next_renewal_unix"], na - (na - nb) * 33 // 100, delta=2)


class ProfileTest(FrontCase):
    """acme_profile goes into newOrder when the directory lists it; else a warning and none."""

    ARGS = ("--acme-profile", "shortlived")

    def test_profile_sent_and_shown(self):
        name = unique_host("prof")
        self.add_route(name)
        self.wait_cert(name, [name])
        order = [o for o in self.front.orders if o["identifiers"][0]["value"] == name][0]
        self.assertEqual(order["profile"], "shortlived")
        st = wait_for(lambda: self.status(name), 10, "the status of %s" % name)
        self.assertEqual(st["profile"], "shortlived")
        self.assertGreater(st["next_renewal_unix"], 0)

    def test_unlisted_profile_warns_and_orders_without(self):
        self.front.profiles = {"classic": "90 days"}
        try:
            # The child keeps the directory it read: a new daemon reads it afresh.
            old = self.daemon
            old.close()
            type(self).start_daemon()
            self._mark = 0
            name = unique_host("noprof")
            self.add_route(name)
            self.wait_cert(name, [name])
            order = [o for o in self.front.orders if o["identifiers"][0]["value"] == name][0]
            self.assertNotIn("profile", order)
            self.assertIn("the CA does not offer profile shortlived", self.daemon.log_text())
            self.assertEqual(self.status(name)["profile"], "-")
        finally:
            self.front.profiles = {"shortlived": "6-day certificates", "classic": "90 days"}


if __name__ == "__main__":
    unittest.main()
