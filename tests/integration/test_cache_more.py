"""Integration tests of the response cache's later points (issue 17's rest):
the counters of `haloyd-ctl cache stats` and /metrics' figures, a fill that
goes on when its client leaves, and compressed variants stored per encoding.

The knob backend is test_cache.py's. Every wait is bounded.
"""
import json
import socket
import time

from .harness import request, wait_for
from .test_cache import CacheTestBase

EVENTS = ("hits", "misses", "revalidated_304", "revalidated_200", "stale", "stores",
          "evictions", "bypasses")


class CacheCountersTest(CacheTestBase):
    # A small budget, so a few 300 KiB entries evict the oldest.
    DAEMON_ARGS = ("--cache-max-size", "1m")

    def stats(self):
        return json.loads(self.daemon.ctl_ok("--json", "cache", "stats"))

    def route_row(self, host):
        rows = [r for r in self.stats()["routes"] if r["route"] == host]
        return rows[0] if rows else dict((e, 0) for e in EVENTS)

    def test_counters_per_route_and_total(self):
        host = self.croute("ccount")
        other = self.croute("ccount2")
        self.kb.set("/c1", [("Cache-Control", "max-age=600")], body=b"one")
        self.kb.set("/c2", [("Cache-Control", "no-cache"), ("ETag", '"v1"')], body=b"two",
                    revalidate=True)
        before = self.stats()
        self.get(host, "/c1")                                   # miss, store
        self.get(host, "/c1")                                   # hit
        self.get(host, "/c1", {"If-None-Match": "x"})           # hit (a 200: no match)
        self.get(host, "/c1", {"Cache-Control": "no-cache"})    # bypass, store
        self.get(host, "/c2")                                   # miss, store
        self.get(host, "/c2")                                   # 304 from the backend, store
        self.kb.set("/c2", [("Cache-Control", "no-cache"), ("ETag", '"v2"')], body=b"new")
        self.assertEqual(self.get(host, "/c2").body, b"new")    # a new 200, store
        self.get(other, "/c1")                                  # another route: its miss
        want = {"hits": 2, "misses": 2, "revalidated_304": 1, "revalidated_200": 1,
                "stale": 0, "stores": 5, "evictions": 0, "bypasses": 1}
        row = self.route_row(host)
        self.assertEqual(dict((e, row[e]) for e in EVENTS), want)
        self.assertEqual((self.route_row(other)["misses"], self.route_row(other)["stores"]),
                         (1, 1))
        after = self.stats()
        self.assertEqual(after["hits"] - before["hits"], 2)
        self.assertEqual(after["misses"] - before["misses"], 3)
        self.assertEqual(after["stores"] - before["stores"], 6)
        text = self.daemon.ctl_ok("cache", "stats")
        self.assertIn("route: %s" % host, text)
        self.assertIn("revalidated_304: ", text)
        metrics = json.loads(self.daemon.ctl_ok("--json", "stats"))
        got = dict((r["labels"], r["value"]) for r in metrics
                   if r["metric"] == "haloyd_cache_events_total")
        self.assertEqual(got['route="%s",event="hits"' % host], 2)
        self.assertEqual(got['route="%s",event="revalidated_200"' % host], 1)

    def test_evictions_counted(self):
        host = self.croute("cevict")
        for i in range(6):
            self.kb.set("/e%d" % i, [("Cache-Control", "max-age=600")], body=b"e" * 300000)
            self.assertEqual(self.get(host, "/e%d" % i).status, 200)
        row = self.route_row(host)
        self.assertEqual(row["stores"], 6)
        self.assertGreaterEqual(row["evictions"], 3)
        self.assertLessEqual(self.stats()["bytes"], 1 << 20)
