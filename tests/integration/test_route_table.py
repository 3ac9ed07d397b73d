"""Integration tests of the master's in-memory route table (master/rtable.c,
haloyd issue 16: route changes among many routes without reading every
route back from the store).

One daemon holds N_ROUTES routes loaded with one apply; then every kind of
route change made with haloyd-ctl — route add, alias add (a wildcard),
backend add and rm, route set, a path-prefix route, route rm — is served by
every worker when haloyd-ctl returns (fresh connections, more than workers),
while routes loaded earlier keep serving. The table then survives a worker
killed with SIGKILL (the respawned worker serves the latest change) and a
restart of haloyd on the same store (the new master loads it whole), and
`haloyd-ctl reload` reads the store again.
"""
import os
import shutil
import signal
import unittest

from . import backend as backend_mod
from .harness import Daemon, wait_for

N_ROUTES = 3000
FRESH = 6  # fresh connections per check: more than the 2 workers


class RouteTableTest(unittest.TestCase):

    def setUp(self):
        self.be = backend_mod.Backend("rt1").start()
        self.be2 = backend_mod.Backend("rt2").start()
        self.addCleanup(self.be.stop)
        self.addCleanup(self.be2.stop)
        self.d = Daemon(2)
        self.again = None
        self.stopped = False
        try:
            self.d.start()
        except BaseException:
            self.d.close(check=False, keep=True)
            raise

    def tearDown(self):
        if self.again is not None:
            self.again.close()
        if self.stopped:
            shutil.rmtree(self.d.base, ignore_errors=True)
        else:
            self.d.close()

    def served(self, d, host, body, path="/"):
        for i in range(FRESH):
            r = d.get(host, path)
            self.assertEqual((r.status, r.body), (200, body), "%s%s, connection %d\n%s"
                             % (host, path, i, d.log_tail(10)))

    def gone(self, d, host):
        for i in range(FRESH):
            self.assertEqual(d.get(host, "/").status, 404, "%s, connection %d" % (host, i))

    def load(self):
        lines = ["route r%05d.rt.example %s" % (i, self.be.addr) for i in range(N_ROUTES)]
        path = os.path.join(self.d.base, "many.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.d.ctl_ok("apply", path)
        self.assertEqual(self.d.status()["master"]["routes"], N_ROUTES)

    def old_routes_serve(self, d):
        for i in (0, 1, N_ROUTES // 2, N_ROUTES - 1):
            self.served(d, "r%05d.rt.example" % i, self.be.hello())

    def changes(self):
        d, h1, h2 = self.d, self.be.hello(), self.be2.hello()
        d.ctl_ok("route", "add", "new.rt.example", self.be.addr)
        self.served(d, "new.rt.example", h1)
        d.ctl_ok("alias", "add", "new.rt.example", "*.new.rt.example")
        self.served(d, "x.new.rt.example", h1)
        # Backends: the second one added, the first removed: only the second answers.
        d.ctl_ok("backend", "add", "new.rt.example", self.be2.addr)
        d.ctl_ok("backend", "rm", "new.rt.example", self.be.addr)
        self.served(d, "new.rt.example", h2)
        self.served(d, "x.new.rt.example", h2)
        d.ctl_ok("route", "set", "new.rt.example", "--max-body", "1k")
        for i in range(FRESH):
            r = d.get("new.rt.example", "/", method="POST", body=b"x" * 2048)
            self.assertEqual(r.status, 413, "connection %d: %r" % (i, r))
        # A path-prefix route on a route loaded by apply.
        d.ctl_ok("route", "add", "r00007.rt.example/api", self.be2.addr)
        self.served(d, "r00007.rt.example", h2, "/api/x")
        self.served(d, "r00007.rt.example", h1, "/other")
        d.ctl_ok("route", "rm", "r00008.rt.example")
        self.gone(d, "r00008.rt.example")
        self.old_routes_serve(d)
        self.assertEqual(d.status()["master"]["routes"], N_ROUTES + 1)

    def respawn(self):
        st = self.d.status()
        victim = st["workers"][0]
        d = self.d
        d.ctl_ok("route", "add", "late.rt.example", self.be.addr)
        os.kill(victim["pid"], signal.SIGKILL)

        def respawned():
            s = d.status()
            w = [x for x in s["workers"] if x["index"] == victim["index"]]
            return s if (w and w[0]["pid"] not in (0, victim["pid"]) and d.serving(s)) else None
        wait_for(respawned, 20, "worker %d to be respawned" % victim["index"], d.log_tail)
        self.served(d, "late.rt.example", self.be.hello())
        self.served(d, "new.rt.example", self.be2.hello())
        self.old_routes_serve(d)

    def restart(self):
        self.again = Daemon(2)
        self.again.state_dir = self.d.state_dir  # the same store
        self.stopped = True
        self.d.close(keep=True)  # checked (exit 0, clean log); its store stays for the restart
        self.again.start()
        a = self.again
        self.assertEqual(a.status()["master"]["routes"], N_ROUTES + 2)
        self.served(a, "new.rt.example", self.be2.hello())
        self.served(a, "x.new.rt.example", self.be2.hello())
        self.served(a, "r00007.rt.example", self.be2.hello(), "/api")
        self.gone(a, "r00008.rt.example")
        self.old_routes_serve(a)
        # And changes go on from the table the new master loaded.
        a.ctl_ok("route", "rm", "late.rt.example")
        self.gone(a, "late.rt.example")
        a.ctl_ok("reload")
        self.assertEqual(a.status()["master"]["routes"], N_ROUTES + 1)
        self.served(a, "new.rt.example", self.be2.hello())

    def test_changes_among_many_routes_served_at_once(self):
        self.load()
        self.changes()
        self.respawn()
        self.restart()


if __name__ == "__main__":
    unittest.main()
