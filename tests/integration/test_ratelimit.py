"""Integration tests of per-client rate limits and connection limits across
workers (issue 15, point 2), with the real daemon, real backends and real
clients on loopback. Clients choose their address inside 127/8 (bound
source addresses), so each test is its own client and trusted_proxies can
name one of them.

Covered: precision over 4 workers (64 keep-alive connections for 10 s:
accepted within 5 % of rate x time + burst); delay (the burst waits its
turn in the worker's loop) against nodelay (it passes at once); 429 with
Retry-After and the refusal counted in `haloyd-ctl stats`; a gRPC call's
RESOURCE_EXHAUSTED; X-Forwarded-For keying only from trusted peers;
max_connections_per_ip across workers (closed at accept on the plain and
the TLS listener, before any handshake; freed when a connection ends and
when its worker is killed); dry run (haloyd.conf's default rate: nothing
refused, each would-be refusal logged and counted); a worker killed with
SIGKILL under load leaves the shared table usable and the limit enforced.

Timed bounds are only in the tests whose subject is time (the delays),
with ASan margins.
"""
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request

import grpc

from . import harness
from .harness import DaemonTestCase, unique_host, wait_for
from .test_grpc import ECHO, GrpcService, grpc_options
from .test_http2 import H2Client
from .test_tls import HttpsTestCase

TIMEOUT = 10.0
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(port, host, src, headers=None, path="/"):
    """One request on a fresh connection from source address src: (status, headers)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT, source_address=(src, 0))
    try:
        h = {"Host": host}
        h.update(headers or {})
        c.request("GET", path, headers=h)
        r = c.getresponse()
        r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        c.close()


def stats(daemon):
    """{(metric, ((label, value), ...)): float} from haloyd-ctl --json stats."""
    out = {}
    for r in json.loads(daemon.ctl_ok("--json", "stats")):
        out[(r["metric"], tuple(sorted(LABEL.findall(r["labels"]))))] = float(r["value"])
    return out


def load(port, host, src, conns, seconds, on_tick=None):
    """conns keep-alive connections from src sending GETs as fast as they can
    for seconds; returns {status: count} of the requests sent in that window.
    A connection the server closes (a killed worker) is opened again."""
    counts = {}
    lock = threading.Lock()
    t_end = time.monotonic() + seconds
    errors = []

    def run():
        mine = {}
        c = None
        try:
            while time.monotonic() < t_end:
                if c is None:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT,
                                                   source_address=(src, 0))
                try:
                    c.request("GET", "/", headers={"Host": host})
                    r = c.getresponse()
                    r.read()
                    mine[r.status] = mine.get(r.status, 0) + 1
                except (OSError, http.client.HTTPException):
                    c.close()
                    c = None
                    mine["reset"] = mine.get("reset", 0) + 1
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)
        finally:
            if c is not None:
                c.close()
            with lock:
                for k, v in mine.items():
                    counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=run) for _ in range(conns)]
    for t in threads:
        t.start()
    if on_tick is not None:
        on_tick()
    for t in threads:
        t.join(seconds + 2 * TIMEOUT)
    if errors:
        raise errors[0]
    return counts


class RateLimitTest(DaemonTestCase):
    """Route rate limits over 4 workers; 127.0.0.2 is a trusted proxy."""
    WORKERS = 4

    @classmethod
    def _start_daemon(cls):
        cls.metrics_port = harness.free_port()
        cls.DAEMON_ARGS = ("--trusted-proxies", "127.0.0.2",
                           "--listen-metrics", "127.0.0.1:%d" % cls.metrics_port)
        super()._start_daemon()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("rl")

    def site(self, label, *settings):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        if settings:
            self.daemon.ctl_ok("route", "set", host, *settings)
        return host

    def workers_with_connections(self):
        m = stats(self.daemon)
        return sum(1 for (k, labels), v in m.items() if k == "haloyd_connections" and v > 0)

    def test_precision_across_workers(self):
        """64 connections over 4 workers for 10 s: rate x time + burst, not 4 times it."""
        host = self.site("rl-prec", "--rate", "20r/s", "--burst", "10", "--nodelay")
        spread = []
        counts = load(self.daemon.port, host, "127.0.0.11", 64, 10.0,
                      on_tick=lambda: (time.sleep(2), spread.append(
                          self.workers_with_connections())))
        want = 20 * 10 + 10
        self.assertGreaterEqual(spread[0], 3, "the 64 connections did not spread over workers")
        self.assertGreater(counts.get(429, 0), 1000, counts)
        self.assertLessEqual(abs(counts.get(200, 0) - want), want * 0.05, counts)
        m = stats(self.daemon)
        self.assertEqual(m[("haloyd_rate_limited_total", (("route", host),))], counts[429])

    def test_delay_and_nodelay(self):
        """burst 3 at 2r/s, 5 requests at once: delayed, the 4th passes 1.5 s later; nodelay:
        at once; the 5th is refused either way."""
        for nodelay in (False, True):
            extra = ("--nodelay",) if nodelay else ()
            host = self.site("rl-delay", "--rate", "2r/s", "--burst", "3", *extra)
            src = "127.0.0.%d" % (21 + nodelay)
            done = []
            lock = threading.Lock()
            t0 = time.monotonic()

            def one():
                st, _ = get(self.daemon.port, host, src)
                with lock:
                    done.append((st, time.monotonic() - t0))
            threads = [threading.Thread(target=one) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
            self.assertEqual(sorted(st for st, _ in done), [200] * 4 + [429], done)
            times = [t for st, t in done if st == 200]
            refused = [t for st, t in done if st == 429]
            self.assertLess(refused[0], 1.0, done)  # refused at once, never delayed
            if nodelay:
                self.assertLess(max(times), 1.0, done)
            else:
                # 0, 0.5, 1.0 and 1.5 s: each waits its turn (on the worker's timer).
                self.assertGreaterEqual(max(times), 1.4, done)
                self.assertLess(min(times), 0.4, done)
                self.assertLess(max(times), 4.0, done)

    def test_delay_over_http2(self):
        """Streams of one HTTP/2 connection wait their turn too; a delayed POST's body
        waits in its stream and reaches the backend whole."""
        host = self.site("rl-h2", "--rate", "2r/s", "--burst", "3")
        body = b"0123456789" * 1000
        c = H2Client(self.daemon.port)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        sids = [c.request(host, "/a"), c.request(host, "/b"),
                c.request(host, "/echo", method="POST", body=body,
                          extra=[("content-length", str(len(body)))]),
                c.request(host, "/c"), c.request(host, "/d")]
        got = [c.response(sid, timeout=TIMEOUT) for sid in sids]
        self.assertEqual([r.status for r in got], [200, 200, 200, 200, 429])
        self.assertEqual(bytes(got[2].data), body)
        self.assertGreaterEqual(got[2].t_end - t0, 0.9)
        self.assertGreaterEqual(got[3].t_end - t0, 1.4)
        self.assertLess(got[4].t_end - t0, 1.0)  # refused at once
        self.assertLess(got[0].t_end - t0, 0.5)

    def test_429_retry_after_and_counted(self):
        host = self.site("rl-429", "--rate", "1r/m")
        self.assertEqual(get(self.daemon.port, host, "127.0.0.31")[0], 200)
        st, h = get(self.daemon.port, host, "127.0.0.31")
        self.assertEqual(st, 429)
        self.assertGreaterEqual(int(h["retry-after"]), 55)
        self.assertLessEqual(int(h["retry-after"]), 60)
        out = self.daemon.ctl_ok("route", "show", host)
        self.assertRegex(out, r"rate:\s+1r/m")
        wait_for(lambda: stats(self.daemon).get(
            ("haloyd_rate_limited_total", (("route", host),))) == 1, TIMEOUT,
            "the refusal counted")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=TIMEOUT) as r:
            text = r.read().decode()
        self.assertIn("# TYPE haloyd_rate_limited_total counter", text)
        self.assertIn('haloyd_rate_limited_total{route="%s"} 1' % host, text)
        # Another client has its own bucket; --rate off lifts the limit.
        self.assertEqual(get(self.daemon.port, host, "127.0.0.32")[0], 200)
        self.daemon.ctl_ok("route", "set", host, "--rate", "off")
        self.assertEqual(get(self.daemon.port, host, "127.0.0.31")[0], 200)

    def test_grpc_resource_exhausted(self):
        svc = GrpcService().start()
        self.addCleanup(svc.stop)
        host = unique_host("rl-grpc")
        self.daemon.ctl_ok("route", "add", host, svc.addr)
        self.daemon.ctl_ok("route", "set", host, "--proto", "h2c", "--rate", "1r/m")
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.daemon.port, options=grpc_options(host))
        self.addCleanup(ch.close)
        call = ch.unary_unary(ECHO + "Unary")
        self.assertEqual(call(b"echo:hi", timeout=TIMEOUT), b"hi")
        with self.assertRaises(grpc.RpcError) as cm:
            call(b"echo:again", timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(cm.exception.details(), "haloyd: too many requests")

    def test_xff_keys_only_from_trusted_peers(self):
        host = self.site("rl-xff", "--rate", "1r/m")
        p = self.daemon.port

        def xff(src, addr):
            return get(p, host, src, {"X-Forwarded-For": addr})[0]
        # Through the trusted proxy 127.0.0.2: each forwarded client its own bucket.
        self.assertEqual(xff("127.0.0.2", "198.51.100.1"), 200)
        self.assertEqual(xff("127.0.0.2", "198.51.100.2"), 200)
        self.assertEqual(xff("127.0.0.2", "198.51.100.1"), 429)
        # The first untrusted address from the right: a client-sent chain cannot pick one.
        self.assertEqual(xff("127.0.0.2", "6.6.6.6, 198.51.100.2"), 429)
        # IPv6 clients by /64.
        self.assertEqual(xff("127.0.0.2", "2001:db8:1:2::1"), 200)
        self.assertEqual(xff("127.0.0.2", "2001:db8:1:2::ffff"), 429)
        # From an untrusted peer the header is ignored: the peer is the client.
        self.assertEqual(xff("127.0.0.41", "198.51.100.3"), 200)
        self.assertEqual(xff("127.0.0.41", "198.51.100.4"), 429)

    def test_worker_killed_under_load(self):
        """SIGKILL of a worker while it updates buckets: no lock held, the limit still holds."""
        host = self.site("rl-kill", "--rate", "50r/s", "--nodelay")
        st = self.daemon.status()
        victim = st["workers"][1]["pid"]

        def kill():
            time.sleep(1.0)
            os.kill(victim, signal.SIGKILL)
        load(self.daemon.port, host, "127.0.0.51", 16, 3.0, on_tick=kill)

        def respawned():
            s = self.daemon.try_status()
            return s if s and self.daemon.serving(s) and victim not in [
                w["pid"] for w in s["workers"]] else None
        wait_for(respawned, 30, "the worker to respawn", self.daemon.log_tail)
        # The same client after the kill: still limited to the rate over all workers.
        counts = load(self.daemon.port, host, "127.0.0.51", 16, 4.0)
        want = 50 * 4
        self.assertLessEqual(abs(counts.get(200, 0) - want), want * 0.1, counts)
        self.assertGreater(counts.get(429, 0), 0, counts)
        # New clients get new entries, limited as before.
        h2 = self.site("rl-kill2", "--rate", "1r/m")
        self.assertEqual(get(self.daemon.port, h2, "127.0.0.52")[0], 200)
        self.assertEqual(get(self.daemon.port, h2, "127.0.0.52")[0], 429)


class DryRunTest(DaemonTestCase):
    """haloyd.conf's default rate with rate_limit_dry_run on."""
    WORKERS = 2
    DAEMON_ARGS = ("--rate-limit", "1r/m", "--rate-limit-dry-run", "on")

    def test_dry_run_refuses_nothing_and_logs(self):
        be = self.backend("dry")
        host = unique_host("rl-dry")
        self.daemon.ctl_ok("route", "add", host, be.addr)
        mark = self.daemon.log_size()
        for _ in range(5):
            self.assertEqual(get(self.daemon.port, host, "127.0.0.61")[0], 200)
        lines = wait_for(lambda: [ln for ln in self.daemon.log_text(mark).splitlines()
                                  if "client 127.0.0.61" in ln and "would refuse" in ln
                                  and "(dry run)" in ln] or None,
                         TIMEOUT, "the dry-run log lines", self.daemon.log_tail)
        self.assertEqual(len(lines), 4, lines)
        m = stats(self.daemon)
        self.assertEqual(m[("haloyd_rate_limit_dry_run_total", (("route", host),))], 4)
        self.assertEqual(m[("haloyd_rate_limited_total", (("route", host),))], 0)


class ConnLimitTest(HttpsTestCase):
    """max_connections_per_ip 3 over 4 workers, plain and TLS listeners."""
    WORKERS = 4
    BACKEND = "cl"
    LIMIT = 3

    @classmethod
    def _start_daemon(cls):
        cls.https_port = harness.free_port()
        cls.DAEMON_ARGS = ("--listen-https", "127.0.0.1:%d" % cls.https_port,
                           "--max-connections-per-ip", str(cls.LIMIT))
        DaemonTestCase._start_daemon.__func__(cls)

    def open_conns(self, port, src, n):
        """n connections from src, each given time to be accepted; (open, closed at once).
        Each sends the start of what its listener expects, then nothing: the accept waits
        for a client's first bytes (TCP_DEFER_ACCEPT, master/listeners.c)."""
        first = b"\x16\x03\x01" if port == self.https_port else b"GET / HTTP/1.1\r\n"
        opened, closed = [], 0
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT,
                                         source_address=(src, 0))
            s.sendall(first)
            s.settimeout(0.5)
            try:
                data = s.recv(1)  # an accepted idle connection says nothing
            except socket.timeout:
                opened.append(s)
                continue
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"")
            closed += 1
            s.close()
        self.addCleanup(lambda: [c.close() for c in opened])
        return opened, closed

    def test_cap_across_workers_plain_and_tls(self):
        before = stats(self.daemon).get(("haloyd_connections_limited_total", ()), 0)
        for port, src in ((self.daemon.port, "127.0.0.71"), (self.https_port, "127.0.0.72")):
            opened, closed = self.open_conns(port, src, 10)
            # Per worker it would be 3 each (up to 12): across workers it is 3.
            self.assertEqual((len(opened), closed), (self.LIMIT, 10 - self.LIMIT))
        m = stats(self.daemon)
        self.assertEqual(m[("haloyd_connections_limited_total", ())] - before, 14)

    def test_freed_on_close_and_on_worker_death(self):
        host = unique_host("cl")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        opened, _ = self.open_conns(self.daemon.port, "127.0.0.73", self.LIMIT)
        self.assertEqual(len(opened), self.LIMIT)
        # Full: a request on a new connection fails; one closed frees a place.
        self.assertRaises(OSError, get, self.daemon.port, host, "127.0.0.73")
        opened.pop().close()
        wait_for(lambda: self._try(host, "127.0.0.73"), TIMEOUT, "a freed place")
        # Every worker killed with the connections it counted: nothing leaks. (The place
        # _try's connection held comes back once its worker has seen it close.)
        wait_for(lambda: self.open_conns(self.daemon.port, "127.0.0.73", 1)[0], TIMEOUT,
                 "the third place again")
        old = [w["pid"] for w in self.daemon.status()["workers"]]
        for pid in old:
            os.kill(pid, signal.SIGKILL)

        def respawned():
            s = self.daemon.try_status()
            return s if s and self.daemon.serving(s) and not set(old) & {
                w["pid"] for w in s["workers"]} else None
        wait_for(respawned, 30, "the workers to respawn", self.daemon.log_tail)
        opened, closed = self.open_conns(self.daemon.port, "127.0.0.73", self.LIMIT + 1)
        self.assertEqual((len(opened), closed), (self.LIMIT, 1))

    def _try(self, host, src):
        try:
            return get(self.daemon.port, host, src)[0] == 200
        except (OSError, http.client.HTTPException):
            return False
