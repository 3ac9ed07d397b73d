"""Integration tests of ACME challenges on several nodes sharing one
PostgreSQL store (haloyd issue 20): the ordering node stores its HTTP-01 and
TLS-ALPN-01 answers, every node serves them before the CA is asked, so
pebble (without PEBBLE_VA_ALWAYS_VALID) validates through a node that is
not the ordering one; and the fenced save: a holder stalled past its lease
while another node finished has its certificate refused when it resumes.

pebble validates on one HTTP-01 and one TLS-ALPN-01 port: each is a
forwarder here that sends every validation to a node that does not hold the
order's lease (read from the store at each connection), and can hold the
validations back until the test lets them go.
"""
import os
import re
import signal
import socket
import threading
import unittest

from . import listener
from .harness import unique_host, wait_for
from .pgcluster import PgClusterTest, psql
from .test_acme import Pebble

ISSUE_TIMEOUT = 120.0


class Forwarder:
    """Sends each connection to the port pick(node_names) names; records
    (holder, node) per connection; while held, connections wait."""

    def __init__(self, pick):
        self.sock = listener.listen()
        self.port = self.sock.getsockname()[1]
        self.pick = pick
        self.sent = []          # (holder, node name) per validation
        self.held = []          # connections waiting for release()
        self.hold = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = listener.accept(self.sock)
            except OSError:
                return
            with self.lock:
                if self.hold:
                    self.held.append(c)
                    continue
            threading.Thread(target=self._forward, args=(c,), daemon=True).start()

    def release(self):
        with self.lock:
            self.hold = False
            held, self.held = self.held, []
        for c in held:
            threading.Thread(target=self._forward, args=(c,), daemon=True).start()

    def _forward(self, c):
        try:
            holder, node, port = self.pick()
            with self.lock:
                self.sent.append((holder, node))
            b = socket.create_connection(("127.0.0.1", port), timeout=10)
        except Exception:
            c.close()
            raise
        c.settimeout(20)
        b.settimeout(20)

        def pump(src, dst):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    dst.sendall(d)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        t = threading.Thread(target=pump, args=(b, c), daemon=True)
        t.start()
        pump(c, b)
        t.join(25)
        c.close()
        b.close()

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class PgChallengeTest(PgClusterTest):
    """Three nodes with `acme on` on one PostgreSQL store; pebble validates for real."""

    PEBBLE = True
    BACKEND = "pgchal"
    stalled = None      # a node whose master the test has stopped
    via = None          # the node every validation goes to, when a test says
    http_fwd = tls_fwd = None

    @classmethod
    def setup_extra(cls):
        cls.http_fwd = Forwarder(lambda: cls.pick("port"))
        cls.tls_fwd = Forwarder(lambda: cls.pick("https_port"))

    @classmethod
    def teardown_extra(cls):
        for f in (cls.http_fwd, cls.tls_fwd):
            if f is not None:
                f.close()

    @classmethod
    def make_pebble(cls):
        return Pebble(cls.http_fwd.port, cls.tls_fwd.port)

    @classmethod
    def node_args(cls, name):
        if name == "plain":     # test_4's node without acme
            return cls.https_args()
        return cls.https_args() + cls.acme_args(name)

    @classmethod
    def pick(cls, attr):
        """A node that does not hold the running order's lease (the first such, by name) and
        whose master runs: a stopped master's workers keep the snapshot from before the order,
        without its challenge, and the CA's validation through them would fail."""
        holder = psql(cls.pg, "SELECT holder FROM leases WHERE name LIKE 'acme:%' AND "
                      "expires > extract(epoch FROM now()) ORDER BY token DESC LIMIT 1")
        if cls.via is not None:
            return holder, cls.via.name, getattr(cls.via, attr)
        other = next(n for n in cls.nodes if n.name != holder and n is not cls.stalled)
        return holder, other.name, getattr(other, attr)

    # --- helpers

    def served_by(self, node, host):
        import ssl
        ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        try:
            with socket.create_connection(("127.0.0.1", node.https_port), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname=host) as t:
                    cert = t.getpeercert()
        except (OSError, ssl.SSLError):
            return None
        return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")

    def logs(self):
        return "\n".join(n.log_tail(40) for n in self.nodes) + self.pebble.log_tail()

    def wait_served(self, host, timeout=ISSUE_TIMEOUT):
        for n in self.nodes:
            wait_for(lambda: self.served_by(n, host) == [host], timeout,
                     "%s to serve pebble's certificate for %s" % (n.name, host), self.logs)

    def orderer(self, host, marks):
        line = re.compile(r"ordering a certificate for %s(\s|$)" % re.escape(host), re.M)
        found = [n for n in self.nodes if line.search(n.log_text(marks[n.name]))]
        return found[0] if found else None

    def pebble_log(self, since=0):
        with open(os.path.join(self.pebble.base, "pebble.log"), "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def pebble_mark(self):
        return os.path.getsize(os.path.join(self.pebble.base, "pebble.log"))

    def check_validated_elsewhere(self, fwd, before, host, marks):
        sent = fwd.sent[before:]
        self.assertTrue(sent, "pebble never validated through the forwarder\n" + self.logs())
        holder = self.orderer(host, marks)
        self.assertIsNotNone(holder, self.logs())
        for h, n in sent:
            self.assertEqual(h, holder.name, sent)  # the lease was held during the validation
            self.assertNotEqual(n, holder.name, sent)
        # The orderer asked the CA only once every node served the answer.
        self.assertIn("acme %s: every live node serves the challenge" % host,
                      holder.log_text(marks[holder.name]))
        return holder

    def check_rows_gone(self):
        wait_for(lambda: psql(self.pg, "SELECT count(*) FROM acme_challenges") == "0", 20,
                 "the order's challenge rows to be deleted", self.logs)

    # --- tests

    def test_1_http01_validated_through_another_node(self):
        host = unique_host("pgchal")
        marks = {n.name: n.log_size() for n in self.nodes}
        before = len(self.http_fwd.sent)
        pmark = self.pebble_mark()
        self.nodes[0].ctl_ok("route", "add", host, self.be.addr)
        self.wait_served(host)
        self.check_validated_elsewhere(self.http_fwd, before, host, marks)
        plog = self.pebble_log(pmark)
        self.assertEqual(plog.count("Issued certificate serial"), 1, plog)
        self.check_rows_gone()

    def test_2_tlsalpn01_validated_through_another_node(self):
        host = unique_host("pgchal-alpn")
        marks = {n.name: n.log_size() for n in self.nodes}
        before = len(self.tls_fwd.sent)
        self.nodes[1].ctl_ok("route", "add", host, self.be.addr, "--challenge", "tls-alpn-01")
        self.wait_served(host)
        self.check_validated_elsewhere(self.tls_fwd, before, host, marks)
        self.check_rows_gone()

    def test_3_stalled_holder_save_is_refused(self):
        """The holder's master stops after the CA was asked; another node takes the
        lease and stores its certificate; the first, resumed, is refused."""
        host = unique_host("pgchal-fence")
        marks = {n.name: n.log_size() for n in self.nodes}
        pmark = self.pebble_mark()
        self.http_fwd.hold = True  # the validation waits until the holder is stopped
        stopped = None
        try:
            self.nodes[2].ctl_ok("route", "add", host, self.be.addr)
            wait_for(lambda: self.http_fwd.held, 60, "pebble to validate", self.logs)
            first = self.orderer(host, marks)
            self.assertIsNotNone(first)
            os.kill(first.pid, signal.SIGSTOP)
            stopped = type(self).stalled = first
            self.http_fwd.release()
            # The first node's child gets its certificate; its master, stopped, has not read it.
            wait_for(lambda: self.pebble_log(pmark).count("Issued certificate serial") == 1, 60,
                     "pebble to issue the first node's certificate", self.logs)
            # As 120 s later: its lease has expired; another node is asked to renew now.
            self.assertEqual(psql(self.pg, "UPDATE leases SET expires = 1 WHERE name = 'acme:%s' "
                                  "AND holder = '%s' AND token = 1 RETURNING token"
                                  % (host, first.name)).splitlines()[0], "1")
            second = next(n for n in self.nodes if n is not first)
            second.ctl_ok("cert", "renew", host)
            others = [n for n in self.nodes if n is not first]
            for n in others:
                wait_for(lambda: self.served_by(n, host) == [host], ISSUE_TIMEOUT,
                         "%s to serve the second node's certificate" % n.name, self.logs)
            fp = re.search(r"acme %s: certificate installed, fingerprint ([0-9a-f]{64})"
                           % re.escape(host), second.log_text(marks[second.name]))
            self.assertIsNotNone(fp, second.log_tail(40))
        finally:
            self.http_fwd.release()
            if stopped is not None:
                os.kill(stopped.pid, signal.SIGCONT)
                type(self).stalled = None
        wait_for(lambda: "certificate not saved: another node took the order over"
                 in first.log_text(marks[first.name]), 30,
                 "the first node's save to be refused", self.logs)
        self.assertEqual(psql(self.pg, "SELECT holder, token FROM leases WHERE name = 'acme:%s'"
                              % host), "%s|2" % second.name)
        self.assertEqual(psql(self.pg, "SELECT fingerprint FROM certs WHERE domain = '%s'"
                              % host), fp.group(1))
        self.assertEqual(self.pebble_log(pmark).count("Issued certificate serial"), 2)
        self.assertNotIn("certificate installed", first.log_text(marks[first.name]))
        self.wait_served(host, 30)

    def test_4_node_without_acme_serves_the_other_nodes_challenges(self):
        """A node of the cluster with `acme off` (it orders nothing) serves the answers
        the ordering node stored: pebble validates through it alone, both types."""
        plain = self.node("plain")      # HTTPS, no --acme
        self.nodes.append(plain)
        type(self).via = plain
        try:
            for kind, fwd, extra in (("http-01", self.http_fwd, ()),
                                     ("tls-alpn-01", self.tls_fwd,
                                      ("--challenge", "tls-alpn-01"))):
                host = unique_host("pgchal-plain")
                marks = {n.name: n.log_size() for n in self.nodes}
                before = len(fwd.sent)
                self.nodes[0].ctl_ok("route", "add", host, self.be.addr, *extra)
                self.wait_served(host)
                sent = fwd.sent[before:]
                self.assertTrue(sent, kind + "\n" + self.logs())
                self.assertTrue(all(n == "plain" for _, n in sent), sent)
                holder = self.check_validated_elsewhere(fwd, before, host, marks)
                self.assertNotEqual(holder.name, "plain")
                self.assertNotIn("ordering a certificate", plain.log_text(marks["plain"]))
                self.check_rows_gone()
        finally:
            type(self).via = None


if __name__ == "__main__":
    unittest.main()
