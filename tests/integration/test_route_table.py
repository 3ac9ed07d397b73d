"""Integration tests of the master's in-memory route table (master/rtable.c,
haloyd issue 16: route changes among many routes without reading every
route back from the store).

One daemon holds N_ROUTES routes loaded with one apply; then every kind of
route change made with haloyd-ctl — route add, alias add (a wildcard and
exact names, which mostly fall in other snapshot shards than their route's)
and rm, backend add and rm, route set, a path-prefix route, a wildcard
route, route rm of a route with aliases — is served by every one of 4
workers when haloyd-ctl returns (fresh connections, more than workers),
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
WORKERS = 4
FRESH = 10  # fresh connections per check: more than the workers


class RouteTableTest(unittest.TestCase):

    def setUp(self):
        self.be = backend_mod.Backend("rt1").start()
        self.be2 = backend_mod.Backend("rt2").start()
        self.addCleanup(self.be.stop)
        self.addCleanup(self.be2.stop)
        self.d = Daemon(WORKERS)
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
        aliases = ["a%d.alias.example" % i for i in range(8)]
        for a in aliases:
            d.ctl_ok("alias", "add", "new.rt.example", a)
            self.served(d, a, h1)
        for a in aliases[4:]:
            d.ctl_ok("alias", "rm", "new.rt.example", a)
            self.gone(d, a)
        d.ctl_ok("route", "add", "*.wild.rt.example", self.be2.addr)
        self.served(d, "any.wild.rt.example", h2)
        # A route removed takes its aliases with it, whichever shard they fall in.
        d.ctl_ok("route", "add", "doomed.rt.example", self.be.addr)
        for a in ("doomed-alias.example", "*.doomed.example"):
            d.ctl_ok("alias", "add", "doomed.rt.example", a)
        self.served(d, "x.doomed.example", h1)
        d.ctl_ok("route", "rm", "doomed.rt.example")
        for h in ("doomed.rt.example", "doomed-alias.example", "x.doomed.example"):
            self.gone(d, h)
        # Backends: the second one added, the first removed: only the second answers.
        d.ctl_ok("backend", "add", "new.rt.example", self.be2.addr)
        d.ctl_ok("backend", "rm", "new.rt.example", self.be.addr)
        self.served(d, "new.rt.example", h2)
        self.served(d, "x.new.rt.example", h2)
        self.served(d, aliases[0], h2)
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
        self.assertEqual(d.status()["master"]["routes"], N_ROUTES + 2)

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
        self.served(d, "a0.alias.example", self.be2.hello())
        self.served(d, "any.wild.rt.example", self.be2.hello())
        self.gone(d, "a7.alias.example")
        self.old_routes_serve(d)

    def restart(self):
        self.again = Daemon(WORKERS)
        self.again.state_dir = self.d.state_dir  # the same store
        self.stopped = True
        self.d.close(keep=True)  # checked (exit 0, clean log); its store stays for the restart
        self.again.start()
        a = self.again
        self.assertEqual(a.status()["master"]["routes"], N_ROUTES + 3)
        self.served(a, "new.rt.example", self.be2.hello())
        self.served(a, "a3.alias.example", self.be2.hello())
        self.served(a, "any.wild.rt.example", self.be2.hello())
        self.gone(a, "doomed-alias.example")
        self.served(a, "x.new.rt.example", self.be2.hello())
        self.served(a, "r00007.rt.example", self.be2.hello(), "/api")
        self.gone(a, "r00008.rt.example")
        self.old_routes_serve(a)
        # And changes go on from the table the new master loaded.
        a.ctl_ok("route", "rm", "late.rt.example")
        self.gone(a, "late.rt.example")
        a.ctl_ok("reload")
        self.assertEqual(a.status()["master"]["routes"], N_ROUTES + 2)
        self.served(a, "new.rt.example", self.be2.hello())
        self.served(a, "a1.alias.example", self.be2.hello())

    def test_changes_among_many_routes_served_at_once(self):
        self.load()
        self.changes()
        self.respawn()
        self.restart()


if __name__ == "__main__":
    unittest.main()
