"""DNS-01 waits for every authoritative server of the zone (issue 19 point 3).

NS records carry no port, and named listens only on addresses an interface
has (127.0.0.1 alone here), so the two servers cannot share a port on two
loopback addresses: the test's primary named (the update server) listens on
127.0.0.1:P, its secondary (zone transfer from the primary, NOTIFY through
also-notify) on 127.0.0.1:Q, the zone's one NS is ns.example.test (glue
127.0.0.1 at the primary) or `localhost.` (outside the zone: the system
resolver), and the daemon gets `dns_ns_port Q`: it waits for the update server
on P and for the NS's address on Q, the secondary. A secondary started only
while the order waits: the CA is asked after it serves the TXT. A secondary
that never gets the record (no NOTIFY, an hour's refresh): the order fails
after its 2-minute bound, naming the lagging server.
"""
import base64
import os
import re
import tempfile
import unittest

from .harness import free_port, wait_for
from .test_dns01 import DIG, KEY_NAME, NAMED, ZONE, Bind, BindPebble, Dns01Case, write_key
from .test_acme import OPENSSL, PEBBLE
from . import harness

WAIT_MAX = 8  # s: dns_propagation_timeout of the test that waits it out


class ZoneBind(Bind):
    """named on 127.0.0.1:port: the primary of example.test (its one NS ns, an hour's
    refresh, NOTIFY to notify_port when given), or with primary_port its secondary (on ::1
    too: `localhost` as an NS may resolve to both)."""

    def __init__(self, port, primary_port=None, notify_port=None, ns=None):
        self.base = tempfile.mkdtemp(prefix="haloyd-bind-")
        os.chmod(self.base, 0o755)
        self.port = port
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.conf = os.path.join(self.base, "named.conf")
        zone_file = os.path.join(self.base, ZONE + ".db")
        if primary_port is None:
            glue = "ns IN A 127.0.0.1\n" if ns == "ns." + ZONE else ""
            with open(zone_file, "w") as f:
                f.write("$TTL 60\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 60\n"
                        "@ IN NS %s.\n%s" % (ZONE, ZONE, ns, glue))
            notify = ("notify explicit;\n also-notify { 127.0.0.1 port %d; };" % notify_port
                      if notify_port else "notify no;")
            zone = (' type primary;\n file "%s";\n update-policy { grant %s zonesub TXT; };\n'
                    ' allow-transfer { 127.0.0.1; };\n %s\n' % (zone_file, KEY_NAME, notify))
        else:
            zone = (' type secondary;\n primaries { 127.0.0.1 port %d; };\n file "%s";\n'
                    ' notify no;\n' % (primary_port, zone_file))
            self.FAMILY = []
        v6 = "::1" if primary_port is not None else "none"
        with open(self.conf, "w") as f:
            f.write(
                'options {\n directory "%(d)s";\n pid-file "%(d)s/named.pid";\n'
                ' session-keyfile "%(d)s/session.key";\n managed-keys-directory "%(d)s";\n'
                ' listen-on port %(p)d { 127.0.0.1; };\n listen-on-v6 port %(p)d { %(v6)s; };\n'
                ' recursion no;\n dnssec-validation no;\n};\n'
                'controls { };\n'
                'key "%(k)s" { algorithm hmac-sha256; secret "%(s)s"; };\n'
                'zone "%(z)s" {\n%(zone)s};\n'
                % {"d": self.base, "p": port, "v6": v6, "k": KEY_NAME, "s": self.secret,
                   "z": ZONE, "zone": zone})
        self.proc = None
        self.log_path = os.path.join(self.base, "named.log")
        self._log = None


@unittest.skipUnless(PEBBLE and OPENSSL and NAMED and DIG,
                     "needs pebble, openssl, bind9 (named) and bind9-dnsutils (dig)")
class NsCase(Dns01Case):
    """A primary and its secondary on one port; the daemon asks the NS set on it."""

    NOTIFY = True
    START_SECONDARY = True
    NS = "ns." + ZONE  # in the zone: its address is the glue at the primary
    PROPAGATION = "2m"  # dns_propagation_timeout (the default)

    @classmethod
    def setUpClass(cls):
        port, ns_port = free_port(), free_port()
        cls.bind = ZoneBind(port, notify_port=ns_port if cls.NOTIFY else None, ns=cls.NS).start()
        cls.secondary = ZoneBind(ns_port, primary_port=port)
        cls.keydir = tempfile.mkdtemp(prefix="haloyd-tsig-")
        cls.key_file = write_key(cls.keydir, cls.bind.secret)
        cls.http_port = free_port()
        try:
            if cls.START_SECONDARY:
                cls.secondary.start()
            cls.pebble = BindPebble(cls.http_port, cls.bind.port).start()
            cls.daemon = None
            cls.start_daemon()
        except BaseException:
            cls.secondary.close()
            cls.bind.close()
            raise
        cls.backend = harness.backend_mod.Backend("dns01ns").start()

    @classmethod
    def daemon_args(cls):
        return super(Dns01Case, cls).daemon_args() + [
            "--dns-update-server", "127.0.0.1:%d" % cls.bind.port, "--dns-tsig-key", cls.key_file,
            "--dns-ns-port", str(cls.secondary.port),
            "--dns-propagation-timeout", cls.PROPAGATION]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.secondary.close()

    def ns_server(self):
        return "%s 127.0.0.1:%d" % (self.NS, self.secondary.port)

    def assert_servers(self, log, record):
        """The order's line naming the servers it waits for: the primary and the secondary
        (a `localhost` NS may add [::1], where the secondary listens too)."""
        head = ("added TXT %s in zone %s at 127.0.0.1:%d; waiting until it is served by "
                % (record, ZONE, self.bind.port))
        self.assertIn(head, log)
        line = log[log.index(head):].split("\n")[0]
        servers = line.split(": update server 127.0.0.1:%d, " % self.bind.port, 1)
        self.assertEqual(len(servers), 2, line)
        self.assertRegex(servers[1], r"(^|, )%s(,| |$)" % re.escape(self.ns_server()))

    def log_detail(self):
        return (self.daemon.log_tail(40) + self.bind.log_tail() + self.secondary.log_tail())


class NsLateSecondaryTest(NsCase):
    """The secondary starts only while the order waits: the CA is asked once it serves. Its NS
    name is outside the zone (`localhost.`): the ACME child resolves it with the system
    resolver, under its filter."""

    START_SECONDARY = False
    NS = "localhost"

    def test_order_waits_for_the_secondary(self):
        name = "late." + ZONE
        record = "_acme-challenge." + name
        ns = self.ns_server()
        self.daemon.ctl_ok("route", "add", name, self.backend.addr, "--challenge", "dns-01")
        # The primary serves the record; the secondary (down) lags, and the log says so.
        wait_for(lambda: "%s not served yet by %s: cannot connect" % (record, ns)
                 in self.daemon.log_text(self._mark), 30, "the lag line", self.log_detail)
        log = self.daemon.log_text(self._mark)
        self.assert_servers(log, record)
        self.assertIn("%s is served by update server 127.0.0.1:%d" % (record, self.bind.port),
                      log)
        self.assertNotIn("asking the CA to validate", log)
        self.assertIsNone(self.cert_row(name))
        # Started now, it transfers the zone with the record; the order goes on.
        self.secondary.start()
        c = self.wait_cert(name, [name])
        self.verify_chain(c["chain"])
        log = self.daemon.log_text(self._mark)
        served = log.index("%s is served by %s" % (record, ns))
        self.assertLess(served, log.index("is served by every server; asking the CA to validate"))
        # The delete reaches the secondary too (NOTIFY from the primary).
        wait_for(lambda: self.bind.dig(record, "TXT") == [] and
                 self.secondary.dig(record, "TXT") == [], 30,
                 "the record to be deleted on both servers", self.log_detail)


class NsSecondaryNeverServesTest(NsCase):
    """No NOTIFY and an hour's refresh: the secondary never gets the record; the order fails."""

    NOTIFY = False
    PROPAGATION = "%ds" % WAIT_MAX

    def test_order_fails_after_the_bound_naming_the_server(self):
        name = "never." + ZONE
        record = "_acme-challenge." + name
        self.daemon.ctl_ok("route", "add", name, self.backend.addr, "--challenge", "dns-01")
        wait_for(lambda: self.bind.dig(record, "TXT") != [], 30, "the record at the primary",
                 self.log_detail)
        self.assertEqual(self.secondary.dig(record, "TXT"), [])

        def failed():
            st = self.status(name)
            return st if st is not None and st["state"] == "failed" else None
        st = wait_for(failed, WAIT_MAX + 60, "the order to fail", self.log_detail)
        want = ("TXT %s not served after %d s by %s (does not serve the TXT yet)"
                % (record, WAIT_MAX, self.ns_server()))
        self.assertIn(want, st["last_error"])
        log = self.daemon.log_text(self._mark)
        self.assertIn("order failed: dns: " + want, log)
        self.assert_servers(log, record)
        self.assertIn("waiting until it is served by 2 servers", log)
        self.assertNotIn("asking the CA to validate", log)
        self.assertIsNone(self.cert_row(name))
        # The failed order deleted its record (the log: a retry may add it again later).
        wait_for(lambda: "deleted TXT " + record in self.daemon.log_text(self._mark), 30,
                 "the record to be deleted", self.log_detail)


if __name__ == "__main__":
    unittest.main()
