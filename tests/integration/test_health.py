"""Integration tests of active health checks and least-in-flight balancing
over the shared backend table (issue 15, points 3 and 4), with the real
daemon and 4 workers, real backends and clients on loopback.

The backends are small servers of this file: GET /healthz answers the
status the test sets (and is counted, with its time, at the backend);
anything else answers 200 after the backend's delay.

Covered: probes counted at the backend, one per backend per interval (not
one per worker); a backend that starts failing its check is taken out
within fall x interval and put back within rise x interval, each change
logged once with HALOYD_BACKEND, shown by route show (text and --json)
and as haloyd_backend_up in stats; every backend down answers 503 with
Retry-After; least-in-flight gives a slow backend clearly fewer requests
than a fast one under concurrent load while round-robin splits evenly;
kill -9 of a worker under load leaves probing one per interval and the
in-flight counts back at zero.

Timed bounds have a margin of one interval plus scheduling slack (ASan).
"""
import http.client
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import listener
from .h2backend import H2Backend
from .harness import DaemonTestCase, unique_host, wait_for

TIMEOUT = 10.0
INTERVAL = 0.5  # --health-interval 500ms
RISE, FALL = 2, 3
SLACK = 1.5     # seconds over a bound: tick (100 ms), the ctl round trips, sanitizers


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        be = self.server.hb
        if self.path == "/healthz":
            with be.lock:
                be.probes.append(time.monotonic())
                code = be.health
            body = b"ok\n" if code < 400 else b"failing\n"
        else:
            with be.lock:
                be.served += 1
            if be.delay:
                time.sleep(be.delay)
            code, body = 200, ("backend %s\n" % be.name).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", be.name)
        self.end_headers()
        self.wfile.write(body)


class _Server(listener.PollAccept, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass


class HealthBackend:
    """A backend whose /healthz status the test sets; probes are counted here."""

    def __init__(self, name, delay=0.0):
        self.name = name
        self.delay = delay
        self.lock = threading.Lock()
        self.probes = []
        self.served = 0
        self.health = 200
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.hb = self
        self.addr = "127.0.0.1:%d" % self._srv.server_address[1]
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def set_health(self, code):
        with self.lock:
            self.health = code

    def probes_between(self, t0, t1):
        with self.lock:
            return [t for t in self.probes if t0 <= t < t1]

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()


def get(port, host, path="/"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders())
    finally:
        c.close()


def load(port, host, conns, seconds):
    """conns keep-alive clients sending GETs for seconds: {X-Backend or status: count}."""
    counts = {}
    lock = threading.Lock()
    t_end = time.monotonic() + seconds

    def run():
        mine = {}
        c = None
        while time.monotonic() < t_end:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            try:
                c.request("GET", "/", headers={"Host": host})
                r = c.getresponse()
                r.read()
                k = r.getheader("X-Backend") or r.status
                mine[k] = mine.get(k, 0) + 1
            except (OSError, http.client.HTTPException):
                c.close()
                c = None
                mine["reset"] = mine.get("reset", 0) + 1
        if c is not None:
            c.close()
        with lock:
            for k, v in mine.items():
                counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=run) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * TIMEOUT)
    return counts


class HealthTest(DaemonTestCase):
    WORKERS = 4

    def setUp(self):
        super().setUp()
        self.bes = []

    def tearDown(self):
        for b in self.bes:
            b.stop()
        super().tearDown()

    def hb(self, name, delay=0.0):
        b = HealthBackend(name, delay)
        self.bes.append(b)
        return b

    def site(self, label, backends, *settings):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, backends[0].addr)
        for b in backends[1:]:
            self.daemon.ctl_ok("backend", "add", host, b.addr)
        if settings:
            self.daemon.ctl_ok("route", "set", host, *settings)
        return host

    def checked_site(self, label, backends, *more):
        return self.site(label, backends, "--health-check", "/healthz", "--health-interval",
                         "500ms", "--health-timeout", "300ms", "--health-rise", str(RISE),
                         "--health-fall", str(FALL), *more)

    def health(self, host):
        """{backend addr: its route show health line}."""
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        return dict((line.split(": ", 1)[0], line) for line in show["health"])

    def state(self, host, be):
        line = self.health(host).get(be.addr, "")
        return "down" if ": down" in line else "up" if ": up" in line else None

    def wait_probing(self, *bes):
        wait_for(lambda: all(len(b.probes_between(0, 1e12)) >= 2 for b in bes), 10,
                 "the first probes", self.daemon.log_tail)

    def test_one_probe_per_backend_per_interval(self):
        """Counted at the backend: one probe per interval, whatever the number of workers."""
        a, b = self.hb("pa"), self.hb("pb")
        host = self.checked_site("hc-once", [a, b])
        self.wait_probing(a, b)
        t0 = time.monotonic()
        time.sleep(4 * INTERVAL + 0.05)  # the window the probes are counted in (the subject)
        t1 = time.monotonic()
        for be in (a, b):
            got = be.probes_between(t0, t1)
            # 4 intervals: 4 probes (5 when the window's edges fall just so), never 4 x 4.
            self.assertIn(len(got), (4, 5), "%s: %d probes in %.2f s" % (be.name, len(got),
                                                                        t1 - t0))
            gaps = [y - x for x, y in zip(got, got[1:])]
            self.assertTrue(all(g > INTERVAL * 0.6 for g in gaps), gaps)
        text = self.daemon.ctl_ok("route", "show", host)
        self.assertIn(a.addr + ": up, last check", text)

    def test_out_within_fall_back_within_rise(self):
        a, b = self.hb("oa"), self.hb("ob")
        host = self.checked_site("hc-flip", [a, b])
        self.wait_probing(a, b)
        mark = self.daemon.log_size()
        a.set_health(500)
        t0 = time.monotonic()
        wait_for(lambda: self.state(host, a) == "down", FALL * INTERVAL + SLACK + INTERVAL,
                 "backend a taken out", self.daemon.log_tail)
        self.assertLessEqual(time.monotonic() - t0, FALL * INTERVAL + INTERVAL + SLACK)
        # Out: every request goes to b, from every worker.
        counts = load(self.daemon.port, host, 8, 1.0)
        self.assertEqual(counts.get("oa", 0), 0, counts)
        self.assertGreater(counts.get("ob", 0), 0, counts)
        m = self.metrics()
        self.assertEqual(m[("haloyd_backend_up", host, a.addr)], 0)
        self.assertEqual(m[("haloyd_backend_up", host, b.addr)], 1)
        a.set_health(204)
        t0 = time.monotonic()
        wait_for(lambda: self.state(host, a) == "up", RISE * INTERVAL + SLACK + INTERVAL,
                 "backend a put back", self.daemon.log_tail)
        self.assertLessEqual(time.monotonic() - t0, RISE * INTERVAL + INTERVAL + SLACK)
        wait_for(lambda: load(self.daemon.port, host, 4, 0.3).get("oa", 0) > 0, 10,
                 "requests to a again")
        # Each change logged once (by one worker), with the journal field.
        log = self.daemon.log_text(mark)
        field = "HALOYD_BACKEND=" + a.addr
        downs = [ln for ln in log.splitlines() if field in ln and ": down:" in ln]
        ups = [ln for ln in log.splitlines() if field in ln and ": up:" in ln]
        self.assertEqual((len(downs), len(ups)), (1, 1), log)

    def metrics(self):
        """{(metric, route, backend): value} of the backend families in stats --json."""
        out = {}
        for r in json.loads(self.daemon.ctl_ok("--json", "stats")):
            if r["metric"].startswith(("haloyd_backend_up", "haloyd_health_checks")):
                lab = dict(kv.split("=", 1) for kv in r["labels"].split(","))
                key = (r["metric"], lab["route"].strip('"'), lab["backend"].strip('"'))
                if "result" in lab:
                    key += (lab["result"].strip('"'),)
                out[key] = float(r["value"])
        return out

    def test_all_down_503_retry_after(self):
        a = self.hb("da")
        a.set_health(503)
        host = self.checked_site("hc-all", [a])
        wait_for(lambda: self.state(host, a) == "down", FALL * INTERVAL + 2 * SLACK + INTERVAL,
                 "the only backend down", self.daemon.log_tail)
        served = a.served
        status, headers = get(self.daemon.port, host)
        self.assertEqual(status, 503)
        self.assertIn("retry-after", headers)
        self.assertEqual(a.served, served)  # never sent to the backend
        m = self.metrics()
        self.assertGreaterEqual(m[("haloyd_health_checks_total", host, a.addr, "fail")], FALL)
        a.set_health(200)
        wait_for(lambda: get(self.daemon.port, host)[0] == 200, RISE * INTERVAL + 2 * SLACK,
                 "the route answering again")

    def test_least_in_flight_vs_round_robin(self):
        slow, fast = self.hb("slow", delay=0.2), self.hb("fast")
        lif = self.site("lif", [slow, fast], "--balance", "least-in-flight")
        counts = load(self.daemon.port, lif, 16, 3.0)
        s, f = counts.get("slow", 0), counts.get("fast", 0)
        # The slow one holds its requests 200 ms; the fast one takes the rest.
        self.assertGreater(f, 3 * s, counts)
        self.assertGreater(s, 0, counts)
        slow2, fast2 = self.hb("slow2", delay=0.2), self.hb("fast2")
        rr = self.site("rr", [slow2, fast2])
        counts = load(self.daemon.port, rr, 16, 3.0)
        s, f = counts.get("slow2", 0), counts.get("fast2", 0)
        self.assertLessEqual(abs(s - f), max(4, 0.1 * (s + f)), counts)

    def test_kill9_worker_leaves_probing_and_counts(self):
        slow, fast = self.hb("ks", delay=0.3), self.hb("kf", delay=0.05)
        host = self.checked_site("hc-kill", [slow, fast], "--balance", "least-in-flight")
        self.wait_probing(slow, fast)
        st = self.daemon.status()
        victims = [w["pid"] for w in st["workers"][:2]]
        done = []

        def kill():
            # While requests are in flight on every worker.
            wait_for(lambda: any(" 0 in flight" not in ln for ln in self.health(host).values()),
                     10, "requests in flight")
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            done.append(1)
        t = threading.Thread(target=kill)
        t.start()
        load(self.daemon.port, host, 16, 2.5)
        t.join(15)
        self.assertEqual(done, [1])

        def respawned():
            s = self.daemon.try_status()
            return s if s and self.daemon.serving(s) and not set(victims) & set(
                w["pid"] for w in s["workers"]) else None
        wait_for(respawned, 30, "the workers to respawn", self.daemon.log_tail)
        # No request of the dead workers stays counted in flight.
        wait_for(lambda: all(" 0 in flight" in ln for ln in self.health(host).values()), 10,
                 "in-flight counts back at 0", lambda: str(self.health(host)))
        # Probing goes on, one per backend per interval.
        t0 = time.monotonic()
        time.sleep(4 * INTERVAL + 0.05)
        t1 = time.monotonic()
        for be in (slow, fast):
            self.assertIn(len(be.probes_between(t0, t1)), (4, 5), be.name)
        # And least-in-flight still prefers the fast one.
        counts = load(self.daemon.port, host, 8, 1.5)
        self.assertGreater(counts.get("kf", 0), 2 * counts.get("ks", 0), counts)

    def test_h2c_backend_probed_over_http2(self):
        """The probe speaks the route's backend protocol: HTTP/2 to an h2c backend."""
        h2 = H2Backend("hz").start()
        self.addCleanup(h2.stop)
        host = unique_host("hc-h2c")
        self.daemon.ctl_ok("route", "add", host, h2.addr)
        self.daemon.ctl_ok("route", "set", host, "--proto", "h2c", "--health-check", "/hz",
                           "--health-interval", "500ms", "--health-timeout", "300ms",
                           "--health-fall", str(FALL))
        wait_for(lambda: len(h2.records("/hz")) >= 2, 10, "probes over HTTP/2",
                 self.daemon.log_tail)
        rec = h2.records("/hz")[0]
        self.assertEqual(rec["method"], "GET")
        wait_for(lambda: ": up, last check" in self.health(host)[h2.addr], 10, "a passed check")
        self.assertIn(": 200,", self.health(host)[h2.addr])
        # /trailers?status=500 answers 500: the backend goes down.
        self.daemon.ctl_ok("route", "set", host, "--health-check", "/trailers?status=500")
        wait_for(lambda: ": down" in self.health(host)[h2.addr],
                 FALL * INTERVAL + INTERVAL + SLACK, "the h2c backend taken out",
                 self.daemon.log_tail)
        self.assertEqual(get(self.daemon.port, host)[0], 503)

    def test_settings_shown_and_off(self):
        a = self.hb("sa")
        host = self.checked_site("hc-set", [a])
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["health_check"], "/healthz")
        self.assertEqual(show["health_interval"], "500ms")
        self.assertEqual(show["health_rise"], str(RISE))
        self.daemon.ctl_ok("route", "set", host, "--health-check", "off")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["health_check"], "off")
        self.assertNotEqual(self.daemon.ctl("route", "set", host, "--health-check",
                                            "healthz")[0], 0)
        self.assertNotEqual(self.daemon.ctl("route", "set", host, "--health-fall", "0")[0], 0)
        # Off: no more probes reach the backend.
        time.sleep(2 * INTERVAL)  # let a probe in flight finish
        n = len(a.probes_between(0, 1e12))
        time.sleep(3 * INTERVAL)  # the subject: nothing happens over intervals
        self.assertEqual(len(a.probes_between(0, 1e12)), n)
