"""Integration tests of ACME on several nodes sharing one PostgreSQL store
(haloyd issue 20): an order runs on one node at a time under a lease in the
store, and every node serves what it stored.

The PostgreSQL cluster, nodes and pebble are pgcluster.py's (pebble is
test_acme's). pebble runs with PEBBLE_VA_ALWAYS_VALID (its HTTP-01
port leads nowhere): which node the CA reaches is test_pgchal.py's concern,
where pebble validates for real through a node that does not order.
PgTicketRotationTest has its own PostgreSQL and two nodes without ACME whose
ticket keys rotate every 3 s.

PgAcmeTest and PgAcmeWaitTest (PgRolesCluster) set the roles up as an
operator would (haloyd.conf(5), acme_store): the cluster's superuser is
`postgres`; the nodes connect as `haloyd`, an ordinary role; the first start
makes the tables, then acme_account goes to `haloyd_admin` and
`haloyd_acme`, the ACME children's role (--acme-store), alone gets SELECT,
INSERT on it (PgAcmeWaitTest: only once its node's first order failed).
"""
import os
import re
import signal
import subprocess
import socket
import ssl
import time
import unittest

from .harness import Daemon, free_port, program, unique_host, wait_for
from .pgcluster import PgClusterTest, psql, psql_run
from .test_acme import Pebble

ISSUE_TIMEOUT = 120.0
# A node that finds the lease held looks again every 30 s (master/acmequeue.c).
TAKEOVER_TIMEOUT = 150.0


def children(pid):
    """The pids whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return out


def tls13_context():
    """A client context for tls13 (a session resumes only through the context that made it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def tls13(ctx, port, host, session=None):
    """A TLS 1.3 connection with one request; (session, reused, response bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=host, session=session) as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                      % host.encode())
            data = b""
            while True:  # TLS 1.3 tickets come after the handshake: read to the end
                d = t.recv(65536)
                if not d:
                    break
                data += d
            return t.session, t.session_reused, data


class PgRolesCluster(PgClusterTest):
    """Nodes with `acme on` on one PostgreSQL store whose roles are set up as an operator
    would, and one pebble (no test of its own)."""

    PEBBLE = True
    BACKEND = "pgacme"
    SUPERUSER = "postgres"

    GRANT = True
    TLS = False     # the ACME role's connection over TLS (sslmode=require)

    @classmethod
    def prepare_db(cls):
        """The operator's set-up: roles; one start of a node makes the tables; the
        account key's table handed to the admin role, granted to the ACME role alone
        (unless GRANT is off: a test grants it later)."""
        for sql in ("CREATE ROLE haloyd LOGIN", "GRANT CREATE ON SCHEMA public TO haloyd",
                    "CREATE ROLE haloyd_acme LOGIN", "CREATE ROLE haloyd_admin NOLOGIN"):
            psql(cls.pg, sql)
        d = Daemon(1, ["--store", cls.pg.url("setup")])
        try:
            d.start()
        finally:
            d.close()
        for sql in ("ALTER TABLE acme_account OWNER TO haloyd_admin",
                    # What the set-up node left: it is no node of the cluster.
                    "DELETE FROM nodes WHERE name = 'setup'", "DELETE FROM leases",
                    "DELETE FROM ticket_keys"):
            psql(cls.pg, sql)
        if cls.GRANT:
            psql(cls.pg, "GRANT SELECT, INSERT ON acme_account TO haloyd_acme")
        if cls.TLS:
            cls.pg.enable_tls()

    @classmethod
    def acme_store_url(cls, name):
        url = cls.pg.url(name + "-acme", user="haloyd_acme")
        return url + "&sslmode=require" if cls.TLS else url

    @classmethod
    def make_pebble(cls):
        pebble = Pebble(free_port())
        pebble.env["PEBBLE_VA_ALWAYS_VALID"] = "1"
        return pebble

    @classmethod
    def node_args(cls, name):
        return cls.https_args() + cls.acme_args(name)

    # --- helpers

    def served_by(self, node, host):
        """The names of the pebble-issued certificate node serves for host, or None."""
        ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        try:
            with socket.create_connection(("127.0.0.1", node.https_port), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname=host) as t:
                    cert = t.getpeercert()
        except (OSError, ssl.SSLError):
            return None
        return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")

    def wait_served(self, nodes, host, timeout):
        for n in nodes:
            wait_for(lambda: self.served_by(n, host) == [host], timeout,
                     "%s to serve pebble's certificate for %s" % (n.name, host),
                     lambda: "\n".join(x.log_tail(30) for x in nodes) + self.pebble.log_tail())

    @staticmethod
    def orders(nodes, host, marks=None):
        """Nodes that logged an order for host (since marks[name]), one entry per order."""
        line = re.compile(r"ordering a certificate for %s(\s|$)" % re.escape(host), re.M)
        out = []
        for n in nodes:
            out += [n.name] * len(line.findall(n.log_text(marks[n.name] if marks else 0)))
        return out

    def pebble_log(self, since=0):
        with open(os.path.join(self.pebble.base, "pebble.log"), "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def accounts(self):
        """The account URLs the nodes registered (or found) at pebble."""
        found = set()
        for n in self.nodes + self.dead:
            found |= set(re.findall(r"ACME account (\S+) registered", n.log_text()))
        return found


class PgAcmeTest(PgRolesCluster):
    """Three nodes with `acme on` on one PostgreSQL store and one pebble."""

    def test_1_route_added_once_is_ordered_once_and_served_by_every_node(self):
        host = unique_host("pgacme")
        pmark = os.path.getsize(os.path.join(self.pebble.base, "pebble.log"))
        self.nodes[0].ctl_ok("route", "add", host, self.be.addr)
        self.wait_served(self.nodes, host, ISSUE_TIMEOUT)
        # Every node's schedule saw the route (a remote change ticks it); one ordered.
        self.assertEqual(len(self.orders(self.nodes, host)), 1,
                         "\n".join(n.log_tail(30) for n in self.nodes))
        plog = self.pebble_log(pmark)
        self.assertEqual(plog.count("Issued certificate serial"), 1, plog)
        holder, expires, token = self.psql(
            "SELECT holder, expires, token FROM leases WHERE name = 'acme:%s'" % host).split("|")
        self.assertIn(holder, ("node1", "node2", "node3"))
        self.assertEqual(expires, "0")  # released at the order's end
        self.assertEqual(token, "1")

    def tls13(self, ctx, node, host, session=None):
        sess, reused, data = tls13(ctx, node.https_port, host, session)
        self.assertIn(b"backend pgacme", data)
        return sess, reused

    def test_2_session_ticket_from_one_node_resumes_on_the_others(self):
        host = unique_host("pgacme-tix")
        self.nodes[0].ctl_ok("route", "add", host, self.be.addr)
        ctx = tls13_context()
        sess, reused = self.tls13(ctx, self.nodes[0], host)
        self.assertFalse(reused)
        self.assertTrue(sess.has_ticket)
        for n in self.nodes[1:]:
            _, reused = self.tls13(ctx, n, host, sess)
            self.assertTrue(reused, "a ticket from node1 did not resume on %s" % n.name)
        # One node rotates for all: the store has the keys, the lease one holder.
        self.assertEqual(self.psql("SELECT count(*) FROM ticket_keys"), "1")
        holder = self.psql("SELECT holder FROM leases WHERE name = 'ticketkeys'")
        self.assertIn(holder, ("node1", "node2", "node3"))
        rotated = [n.name for n in self.nodes
                   if "session-ticket keys made for every node" in n.log_text()]
        self.assertEqual(rotated, [holder])
        # The keys are secrets: in the store, never in a log.
        secret = self.psql("SELECT secret FROM ticket_keys WHERE slot = 0")
        self.assertEqual(len(secret), 160)
        for n in self.nodes:
            self.assertNotIn(secret, n.log_text())

    def test_3_account_key_is_the_stores_on_every_node(self):
        key = self.psql("SELECT key_pem FROM acme_account")
        self.assertIn("PRIVATE KEY", key)
        for n in self.nodes:
            with open(os.path.join(n.state_dir, "acme", "account.key")) as f:
                self.assertEqual(f.read().strip(), key.strip(), n.name)
            for line in key.splitlines()[1:-1]:
                self.assertNotIn(line, n.log_text())
        # One child made and added it; the others read it.
        made = [n.name for n in self.nodes
                if "added the account key every node shares" in n.log_text()]
        self.assertEqual(len(made), 1, made)
        self.assertEqual(len(self.accounts()), 1, self.accounts())

    def test_4_only_the_acme_role_reads_the_account_key(self):
        # Nothing was refused so far: the masters never ask for the key.
        self.assertNotIn("permission denied", self.pg.log_text())
        # The nodes' role (the masters') is refused; the ACME children's reads it.
        rc, out, err = psql_run(self.pg, "SELECT key_pem FROM acme_account", user="haloyd")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("permission denied for table acme_account", err)
        self.assertEqual(psql(self.pg, "SELECT key_pem FROM acme_account", user="haloyd_acme"),
                         self.psql("SELECT key_pem FROM acme_account"))
        # ... and cannot change it: SELECT, INSERT only.
        rc, _, err = psql_run(self.pg, "DELETE FROM acme_account", user="haloyd_acme")
        self.assertNotEqual(rc, 0)
        self.assertIn("permission denied", err)

    def test_5_config_check_says_when_the_masters_role_reads_the_key(self):
        conf = os.path.join(self.pg.base, "check.conf")
        with open(conf, "w") as f:
            f.write("# empty\n")

        def check(user):
            p = subprocess.run([program("haloyd"), "-c", conf, "-t", "--store",
                                self.pg.url("t", user=user)], capture_output=True, timeout=30)
            return p.returncode, p.stdout.decode() + p.stderr.decode()
        rc, out = check("haloyd")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("acme_account", out)
        # A superuser may read every table: one line says so (the check still passes).
        rc, out = check("postgres")
        self.assertEqual(rc, 0, out)
        warn = [l for l in out.splitlines() if "acme_account" in l]
        self.assertEqual(len(warn), 1, out)
        self.assertIn("role postgres can read acme_account", warn[0])

    def test_6_acme_role_refused_means_one_line_and_no_other_key(self):
        """A child whose role has no grant: one clear line at its start, and no key of
        its own in its folder (that would be another account); orders wait."""
        psql(self.pg, "CREATE ROLE haloyd_acme2 LOGIN")
        d = Daemon(1, ["--store", self.pg.url("refused")] + self.https_args() + self.acme_args(
            "refused", self.pg.url("refused-acme", user="haloyd_acme2")))
        try:
            d.start()
            line = ("no account key from acme_store (cannot read acme_account: ERROR:  "
                    "permission denied for table acme_account); orders wait and are retried")
            wait_for(lambda: line in d.log_text(), 30, "the child's line", d.log_tail)
            # An ARI request or order of this node's (the cluster has routes) tries again
            # first and fails the same way: the same reason, never another key.
            lines = [l for l in d.log_text().splitlines() if "acme_store" in l]
            self.assertTrue(all(line in l for l in lines), lines)
            self.assertFalse(os.path.exists(os.path.join(d.state_dir, "acme", "account.key")))
        finally:
            d.close()

    def test_9_holder_killed_mid_order_another_node_finishes(self):
        """Runs last: it kills a node."""
        host = unique_host("pgacme-kill")
        os.kill(self.pebble.pebble.pid, signal.SIGSTOP)  # every order hangs at the CA
        try:
            marks = {n.name: n.log_size() for n in self.nodes}
            self.nodes[1].ctl_ok("route", "add", host, self.be.addr)
            holder = wait_for(lambda: (self.orders(self.nodes, host, marks) or [None])[0], 60,
                              "a node to start the order for %s" % host,
                              lambda: "\n".join(n.log_tail(30) for n in self.nodes))
            dead = next(n for n in self.nodes if n.name == holder)
            # The node dies as a whole (a machine lost): its ACME child too.
            kids = children(dead.pid)
            dead.kill()
            for pid in kids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.nodes.remove(dead)
            self.dead.append(dead)
            row = self.psql("SELECT holder, token FROM leases WHERE name = 'acme:%s'" % host)
            self.assertEqual(row, "%s|1" % holder)
            # As 120 s later: the dead holder's lease has expired (the unit suite
            # checks the expiry itself; this spares the test two minutes).
            self.psql("UPDATE leases SET expires = 1 WHERE name = 'acme:%s'" % host)
        finally:
            os.kill(self.pebble.pebble.pid, signal.SIGCONT)
        self.wait_served(self.nodes, host, TAKEOVER_TIMEOUT)
        after = self.orders(self.nodes, host, marks)
        # One surviving node takes the order over; it may start it again after an attempt
        # that met the CA still stopped (CI saw ['node3', 'node3']): never two nodes.
        self.assertEqual(len(set(after)), 1, after)
        self.assertNotEqual(after[0], holder)
        holder2, token = self.psql(
            "SELECT holder, token FROM leases WHERE name = 'acme:%s'" % host).split("|")
        self.assertEqual(holder2, after[0])
        self.assertEqual(token, "2")  # the take-over's fencing token
        # Both orders went through the one account of the shared key.
        self.assertEqual(len(self.accounts()), 1, self.accounts())



class PgAcmeWaitTest(PgRolesCluster):
    """One node whose ACME role gets its grant only later: its order fails with the
    child's line, and once the grant is there the order goes through with the key the
    child then adds. One node, so it always holds the order's lease. The child connects
    over TLS (its libpq looks for a client certificate in its user's home, not root's)."""

    NODES = ("solo",)
    GRANT = False
    TLS = True
    def test_order_waits_for_the_key_then_goes_through(self):
        solo = self.nodes[0]
        why = "no account key from acme_store (cannot read acme_account"
        wait_for(lambda: why in solo.log_text(), 30, "the child's line", solo.log_tail)
        host = unique_host("pgacme-wait")
        solo.ctl_ok("route", "add", host, self.be.addr)

        def failed():
            rc, out, _ = solo.ctl("--json", "cert", "status", host)
            return rc == 0 and why in out
        wait_for(failed, 60, "the order to fail with the child's reason", solo.log_tail)
        self.assertFalse(os.path.exists(os.path.join(solo.state_dir, "acme", "account.key")))
        self.assertEqual(self.psql("SELECT count(*) FROM acme_account"), "0")
        psql(self.pg, "GRANT SELECT, INSERT ON acme_account TO haloyd_acme")
        solo.ctl_ok("cert", "renew", host)
        self.wait_served(self.nodes, host, ISSUE_TIMEOUT)
        self.assertIn("added the account key every node shares", solo.log_text())
        key = self.psql("SELECT key_pem FROM acme_account")
        with open(os.path.join(solo.state_dir, "acme", "account.key")) as f:
            self.assertEqual(f.read().strip(), key.strip())
        acme_conns = [l for l in self.pg.log_text().splitlines()
                      if "connection authorized: user=haloyd_acme" in l]
        self.assertTrue(acme_conns)
        self.assertTrue(all("SSL enabled" in l for l in acme_conns), acme_conns)


class PgTicketRotationTest(PgClusterTest):
    """Two nodes whose ticket keys rotate every 3 s: they keep sharing them."""

    NODES = ("rot1", "rot2")
    BACKEND = "pgacme"

    @classmethod
    def node_args(cls, name):
        return cls.https_args() + ["--ticket-key-lifetime", "3s"]

    def test_tickets_resume_across_nodes_after_rotations(self):
        host = unique_host("pgacme-rot")
        self.nodes[0].ctl_ok("route", "add", host, self.be.addr)
        ctx = tls13_context()
        seen = set()

        def resumes():
            sess, _, _ = tls13(ctx, self.nodes[0].https_port, host)
            return tls13(ctx, self.nodes[1].https_port, host, sess)[1]
        # Each rotation reaches the other node at its notice: a ticket made with
        # the new key resumes there (polled: the notice takes a moment).
        deadline = time.monotonic() + 90
        while len(seen) < 3:
            self.assertLess(time.monotonic(), deadline, "fewer than 3 keys in 90 s: %s" % seen)
            seen.add(psql(self.pg, "SELECT secret FROM ticket_keys WHERE slot = 0"))
            wait_for(resumes, 20, "a ticket from rot1 to resume on rot2",
                     lambda: "\n".join(n.log_tail(20) for n in self.nodes))
        self.assertEqual(psql(self.pg, "SELECT count(*) FROM ticket_keys"), "2")
        rotated = [n.name for n in self.nodes
                   if "session-ticket keys rotated for every node" in n.log_text()]
        self.assertEqual(len(rotated), 1, rotated)  # one holder rotates for both


if __name__ == "__main__":
    unittest.main()
