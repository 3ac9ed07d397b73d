"""Integration tests of PostgreSQL as a shared store (haloyd issue 20, first
slice): several haloyd nodes on one database.

A real PostgreSQL 15 of the test's own (pgcluster.py: initdb in a temporary
folder as `nobody`, a loopback port, stopped at the end). Three haloyd
nodes (their own state folders and ports) share its `postgres` database,
each named by the connection string's application_name. Every wait is
bounded and polls a condition.
"""
import json
import os
import socket
import subprocess
import threading
import time
import unittest

from . import listener
from .harness import Daemon, free_port, program, unique_host, wait_for
from .pgcluster import PgClusterTest

# A node reconnects with back-off up to 4 s (master/cluster.h), plus a 2-core ASan margin.
RECONNECT_TIMEOUT = 30.0


class FreezingProxy:
    """TCP between a node and PostgreSQL that can go silent: freeze() drops the
    open connections and then accepts new ones without ever answering (a
    server gone from the network, as seen from the node); thaw() forwards
    again."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = listener.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.frozen = False
        self.lock = threading.Lock()
        self.live, self.held = [], []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = listener.accept(self.lsock)
            except OSError:
                return
            with self.lock:
                if self.frozen:
                    self.held.append(c)
                    continue
                s = socket.create_connection(("127.0.0.1", self.target))
                self.live += [c, s]
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        a.close()

    def freeze(self):
        with self.lock:
            self.frozen = True
            for x in self.live:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.live = []

    def thaw(self):
        with self.lock:
            self.frozen = False
            for x in self.held:
                x.close()
            self.held = []

    def close(self):
        self.closed = True
        self.freeze()
        self.thaw()
        self.lsock.close()


class PgStoreTest(PgClusterTest):
    """Three nodes on one PostgreSQL store; a fourth joins later."""

    def serves(self, node, host):
        try:
            r = node.get(host, timeout=5)
        except OSError:
            return False
        return r.status == 200 and r.text == "backend pg\n"

    def add_route(self, node, host):
        node.ctl_ok("route", "add", host, self.be.addr)

    def test_1_route_added_on_one_node_is_served_by_all_when_ctl_returns(self):
        host = unique_host("pg-all")
        self.add_route(self.nodes[0], host)
        # No waiting: read-your-writes across nodes is the point.
        for n in self.nodes:
            self.assertTrue(self.serves(n, host), "%s does not serve %s\n%s"
                            % (n.base, host, n.log_tail()))
        # And a change made on another node comes back the same way.
        host2 = unique_host("pg-all")
        self.add_route(self.nodes[2], host2)
        for n in self.nodes:
            self.assertTrue(self.serves(n, host2))
        self.nodes[1].ctl_ok("route", "rm", host2)
        for n in self.nodes:
            self.assertFalse(self.serves(n, host2))

    def test_2_database_down_keeps_serving_and_changes_fail_then_resync(self):
        host = unique_host("pg-down")
        self.add_route(self.nodes[0], host)
        self.pg.stop()
        try:
            for n in self.nodes:
                self.assertTrue(self.serves(n, host))
            late = unique_host("pg-down")
            rc, out, err = self.nodes[0].ctl("route", "add", late, self.be.addr)
            self.assertNotEqual(rc, 0)
            lines = [l for l in (out + err).splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, out + err)
            self.assertIn("unreachable", lines[0])
            for n in self.nodes:
                self.assertTrue(self.serves(n, host))
                self.assertFalse(self.serves(n, late))
        finally:
            self.pg.start()
        # Back: a change made on node 2 (once it reconnected) reaches node 1.
        host3 = unique_host("pg-back")

        def added():
            rc, _, _ = self.nodes[1].ctl("route", "add", host3, self.be.addr)
            return rc == 0
        wait_for(added, RECONNECT_TIMEOUT, "node2 to take changes again",
                 self.nodes[1].log_tail)
        for n in self.nodes:
            wait_for(lambda: self.serves(n, host3), RECONNECT_TIMEOUT,
                     "%s to serve %s after the database came back" % (n.base, host3),
                     n.log_tail)
            self.assertTrue(self.serves(n, host))

    def test_3_node_started_later_serves_existing_routes(self):
        host = unique_host("pg-late")
        self.add_route(self.nodes[1], host)
        late = self.node("node4")
        self.nodes.append(late)
        self.assertTrue(self.serves(late, host))
        # And it is waited for like the others from now on.
        host2 = unique_host("pg-late")
        self.add_route(self.nodes[0], host2)
        self.assertTrue(self.serves(late, host2))

    def test_5_cluster_status_lists_every_node(self):
        rows = json.loads(self.nodes[0].ctl_ok("--json", "cluster", "status"))
        by_name = {r["node"]: r for r in rows}
        self.assertEqual(by_name["node1"]["state"], "self")
        self.assertEqual(by_name["node1"]["address"], "127.0.0.1:%d" % self.nodes[0].port)
        for name in ("node2", "node3"):
            self.assertEqual(by_name[name]["state"], "live")
            self.assertGreater(by_name[name]["served"], 0)
        table = self.nodes[1].ctl_ok("cluster", "status")
        self.assertIn("node3", table)
        # Without a shared store: one line saying so.
        d = Daemon(1)
        try:
            d.start()
            rc, out, err = d.ctl("cluster", "status")
            self.assertNotEqual(rc, 0)
            self.assertIn("no shared store", out + err)
        finally:
            d.close()

    def test_6_silent_database_does_not_hold_the_node(self):
        """Reconnection attempts to a server that never answers run beside the
        loop: the node answers ctl and serves while they time out."""
        proxy = FreezingProxy(self.pg.port)
        url = "postgresql://haloyd@127.0.0.1:%d/postgres?application_name=silent" % proxy.port
        d = Daemon(1, ("--store", url))
        try:
            d.start()
            host = unique_host("pg-silent")
            self.add_route(d, host)
            proxy.freeze()
            wait_for(lambda: "store is unreachable" in d.log_text(), RECONNECT_TIMEOUT,
                     "the node to notice the silent store", d.log_tail)
            # Several 3 s connection attempts go by; the loop keeps answering at once.
            until = time.monotonic() + 8
            while time.monotonic() < until:
                t0 = time.monotonic()
                d.ctl_ok("status")
                self.assertLess(time.monotonic() - t0, 2.5, d.log_tail())
                self.assertTrue(self.serves(d, host))
            rc, out, err = d.ctl("route", "add", unique_host("pg-silent"), self.be.addr)
            self.assertNotEqual(rc, 0)
            self.assertIn("unreachable", out + err)
            proxy.thaw()
            host2 = unique_host("pg-silent")

            def added():
                return d.ctl("route", "add", host2, self.be.addr)[0] == 0
            wait_for(added, RECONNECT_TIMEOUT, "the node to reconnect", d.log_tail)
            for n in self.nodes + [d]:
                self.assertTrue(self.serves(n, host2))
        finally:
            d.close()
            proxy.close()

    def test_7_every_kind_of_change_reads_the_same_on_every_node(self):
        """Settings, aliases, backends and an apply batch go through the
        PostgreSQL engine and come back the same from every node."""
        host = unique_host("pg-kinds")
        n1, n2, n3 = self.nodes[:3]
        self.add_route(n1, host)
        n2.ctl_ok("route", "set", host, "--connect-timeout", "5s", "--max-body", "5g",
                  "--hsts", "on", "--compress", "on", "--rate", "10r/s", "--burst", "5",
                  "--health-check", "/health", "--health-interval", "1s", "--cache", "on",
                  "--balance", "least-in-flight")
        n3.ctl_ok("alias", "add", host, "www." + host)
        n1.ctl_ok("backend", "add", host, "127.0.0.1:9")
        n2.ctl_ok("backend", "rm", host, "127.0.0.1:9")
        # route show also says each node's own health-check results: compare the settings.
        text = n3.ctl_ok("route", "show", host)
        self.assertIn("www." + host, text)
        self.assertIn("/health", text)
        exports = [n.ctl_ok("export") for n in self.nodes]
        self.assertTrue(all(e == exports[0] for e in exports))
        self.assertIn("--max-body 5g", exports[0])
        for n in self.nodes:
            self.assertTrue(self.serves(n, "www." + host))
        # One apply batch on node 3; a refused one changes nothing anywhere.
        a, b = unique_host("pg-apply"), unique_host("pg-apply")
        path = os.path.join(self.pg.base, "apply.txt")
        with open(path, "w") as f:
            f.write("route %s %s\nroute %s %s\n" % (a, self.be.addr, b, self.be.addr))
        n3.ctl_ok("apply", path)
        for n in self.nodes:
            self.assertTrue(self.serves(n, a) and self.serves(n, b))
        with open(path, "w") as f:
            f.write("route %s %s\nroute bad.apply.example 127.0.0.1:99999\n"
                    % (unique_host("pg-apply"), self.be.addr))
        before = n1.ctl_ok("export")
        rc, _, _ = n1.ctl("apply", path)
        self.assertNotEqual(rc, 0)
        for n in self.nodes:
            self.assertEqual(n.ctl_ok("export"), before)

    def test_4_config_check_reaches_the_database(self):
        conf = os.path.join(self.pg.base, "check.conf")
        with open(conf, "w") as f:
            f.write("# empty\n")

        def check(url):
            p = subprocess.run([program("haloyd"), "-c", conf, "-t", "--store", url],
                               capture_output=True, timeout=30)
            return p.returncode, p.stdout.decode() + p.stderr.decode()

        rc, out = check(self.pg.url("t"))
        self.assertEqual(rc, 0, out)
        bad = "postgresql://haloyd@127.0.0.1:%d/postgres" % free_port()
        rc, out = check(bad)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        self.assertIn("cannot connect", out)
        # A password file others may read is refused, with one line.
        pw = os.path.join(self.pg.base, "pgpass")
        with open(pw, "w") as f:
            f.write("*:*:*:*:secret\n")
        os.chmod(pw, 0o644)
        rc, out = check(self.pg.url("t") + "&passfile=" + pw)
        self.assertEqual(rc, 1)
        self.assertEqual(len(out.strip().splitlines()), 1, out)
        self.assertIn("chmod 600", out)
        os.chmod(pw, 0o600)
        rc, out = check(self.pg.url("t") + "&passfile=" + pw)
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
