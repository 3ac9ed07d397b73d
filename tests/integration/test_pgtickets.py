"""Integration test of the shared session-ticket keys' lease (haloyd issue
20): when the node holding the "ticketkeys" lease dies, another node takes
the lease over, rotates the keys for every node, and a ticket issued by one
of the remaining nodes resumes on the other before and after that rotation.

Three nodes on pgcluster.py's PostgreSQL, without ACME, whose keys live
6 s: a node looks every 1.5 s and the lease lasts 3 s (half a lifetime,
master/ticketshare.c), so a dead holder's lease passes within seconds
without touching the store by hand.
"""
import time
import unittest

from .harness import unique_host, wait_for
from .pgcluster import PgClusterTest, psql
from .test_pgacme import tls13, tls13_context

LIFETIME = "6s"


class PgTicketLeaseTest(PgClusterTest):

    NODES = ("tk1", "tk2", "tk3")
    BACKEND = "pgtickets"

    @classmethod
    def node_args(cls, name):
        return cls.https_args() + ["--ticket-key-lifetime", LIFETIME]

    def logs(self):
        return "\n".join(n.log_tail(20) for n in self.nodes + self.dead)

    def lease(self):
        row = psql(self.pg, "SELECT holder, token FROM leases WHERE name = 'ticketkeys'")
        if not row:
            return None, 0
        holder, token = row.split("|")
        return holder, int(token)

    def current_key(self):
        return psql(self.pg, "SELECT secret FROM ticket_keys WHERE slot = 0")

    def resumes(self, ctx, host, a, b):
        """A ticket from node a resumes on node b."""
        sess, _, data = tls13(ctx, a.https_port, host)
        if b"backend pgtickets" not in data or not sess.has_ticket:
            return False
        _, reused, data = tls13(ctx, b.https_port, host, sess)
        return reused and b"backend pgtickets" in data

    def test_lease_moves_when_its_holder_dies(self):
        host = unique_host("pgtickets")
        self.nodes[0].ctl_ok("route", "add", host, self.be.addr)
        ctx = tls13_context()
        holder, token = wait_for(lambda: self.lease() if self.lease()[0] else None, 30,
                                 "a node to hold the ticketkeys lease", self.logs)
        dead = next(n for n in self.nodes if n.name == holder)
        rest = [n for n in self.nodes if n is not dead]
        wait_for(lambda: self.resumes(ctx, host, rest[0], rest[1]), 20,
                 "a ticket to resume across the nodes", self.logs)
        marks = {n.name: n.log_size() for n in rest}
        dead.kill()
        self.nodes.remove(dead)
        self.dead.append(dead)
        killed_at = time.monotonic()
        before = self.current_key()

        # Another node takes the lease over, with a higher fencing token.
        def taken():
            h, t = self.lease()
            return (h, t) if h != holder and t > token else None
        holder2, token2 = wait_for(taken, 30, "another node to take the ticketkeys lease",
                                   self.logs)
        self.assertIn(holder2, [n.name for n in rest])
        took = time.monotonic() - killed_at
        # ... and rotates for every node: a new current key, logged by it alone.
        wait_for(lambda: self.current_key() not in ("", before), 30,
                 "the new holder to rotate the keys", self.logs)
        new_holder = next(n for n in rest if n.name == holder2)
        wait_for(lambda: "session-ticket keys rotated for every node" in
                 new_holder.log_text(marks[new_holder.name]), 10,
                 "%s to log its rotation" % holder2, self.logs)
        for n in rest:
            if n is not new_holder:
                self.assertNotIn("session-ticket keys rotated",
                                 n.log_text(marks[n.name]))
        # Resumption across the remaining nodes, both ways, with the new key.
        after = self.current_key()
        for a, b in ((rest[0], rest[1]), (rest[1], rest[0])):
            wait_for(lambda: self.resumes(ctx, host, a, b), 20,
                     "a ticket from %s to resume on %s after the take-over" % (a.name, b.name),
                     self.logs)
        self.assertEqual(self.lease()[0], holder2)
        self.assertLess(took, 30)
        self.assertNotEqual(after, before)


if __name__ == "__main__":
    unittest.main()
