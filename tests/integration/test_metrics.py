"""Integration tests of the shared region's counters and the metrics endpoint
(issue 15, points 1 and 5): the real haloyd with 2 workers, a plain, an
HTTPS and a metrics listener, real backends and clients (http.client,
python3 ssl, the h2 client of test_http2 over TLS and prior knowledge).

Covered: requests by route, status class and protocol summed over both
workers and equal to what the test sent; TLS handshakes full, resumed and
failed; the open-connections gauge; a worker killed with SIGKILL respawns
and no counter goes backwards (restarts counted); `haloyd-ctl --json
stats` gives the same figures; OpenMetrics on request; the endpoint's
refusals (method, path, oversized head); and a real Prometheus server
(Debian package prometheus) scraping haloyd every second, read back
through its HTTP query API.
"""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from . import harness
from .harness import unique_host, wait_for
from .test_http2 import H2Client
from .test_tls import HttpsTestCase

TIMEOUT = 10.0
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of a text exposition."""
    out = {}
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = SAMPLE.match(ln)
        if m is None:
            raise AssertionError("not a sample line: %r" % ln)
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def http_get(port, path, headers=None, timeout=TIMEOUT):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class MetricsTestCase(HttpsTestCase):
    WORKERS = 2
    BACKEND = "metrics"

    @classmethod
    def _start_daemon(cls):
        cls.https_port = harness.free_port()
        cls.metrics_port = harness.free_port()
        cls.DAEMON_ARGS = ("--listen-https", "127.0.0.1:%d" % cls.https_port,
                           "--listen-metrics", "127.0.0.1:%d" % cls.metrics_port)
        super(HttpsTestCase, cls)._start_daemon()

    def scrape(self, headers=None):
        status, hdrs, body = http_get(self.metrics_port, "/metrics", headers)
        self.assertEqual(status, 200, body)
        return parse_metrics(body.decode()), hdrs

    def metrics(self):
        return self.scrape()[0]

    def value(self, m, name, **labels):
        return m.get((name, tuple(sorted(labels.items()))), 0.0)

    def route_requests(self, m, route):
        """{(code, proto): n} of one route."""
        out = {}
        for (name, labels), v in m.items():
            d = dict(labels)
            if name == "haloyd_requests_total" and d.get("route") == route:
                out[(d["code"], d["proto"])] = v
        return out

    def site(self, label):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        # Port 80 serves rather than redirects: plain requests count as the route's 2xx.
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "off")
        cert, key, _ = self.pki.leaf(host, [host])
        self.daemon.ctl_ok("cert", "import", host, "--cert", cert, "--key", key)
        return host

    def tls_ctx(self, alpn=None):
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def https_get(self, host, path="/", ctx=None, session=None):
        """One HTTP/1.1 request over a fresh TLS connection; (status, session, reused)."""
        ctx = ctx or self.tls_ctx()
        raw = socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname=host, session=session) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, host)).encode())
            data = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            return int(data.split(b" ", 2)[1]), s.session, s.session_reused

    def wait_metrics(self, pred, what, timeout=TIMEOUT):
        def check():
            m = self.metrics()
            return m if pred(m) else None
        return wait_for(check, timeout, what, lambda: json.dumps(
            {"%s%s" % (k[0], dict(k[1])): v for k, v in self.metrics().items()
             if k[0].startswith("haloyd_requests") or k[0].startswith("haloyd_tls")}, indent=1))


class MetricsTest(MetricsTestCase):

    def test_requests_by_route_status_and_protocol(self):
        host = self.site("m-req")
        for _ in range(5):
            self.assertEqual(self.daemon.get(host).status, 200)
        for _ in range(3):
            self.assertEqual(self.daemon.get(host, "/status?code=404").status, 404)
        self.assertEqual(self.daemon.get(host, "/status?code=503").status, 503)
        for _ in range(4):
            self.assertEqual(self.https_get(host)[0], 200)
        for tls in (True, False):
            c = H2Client(self.https_port if tls else self.daemon.port, tls=tls, sni=host)
            try:
                for _ in range(3):
                    self.assertEqual(c.get(host).status, 200)
                self.assertEqual(c.get(host, "/status?code=201").status, 201)
            finally:
                c.close()
        want = {("2xx", "HTTP/1.1"): 9, ("4xx", "HTTP/1.1"): 3, ("5xx", "HTTP/1.1"): 1,
                ("2xx", "HTTP/2"): 8}
        m = self.wait_metrics(lambda m: self.route_requests(m, host) == want,
                              "requests of %s to be %r" % (host, want))
        # Both workers served: the figures are sums of the two slots.
        self.assertEqual(self.route_requests(m, host), want)
        self.assertGreaterEqual(self.value(m, "haloyd_request_duration_seconds_count"), 21)
        self.assertGreater(self.value(m, "haloyd_response_body_bytes_total"), 0)

    def test_unknown_host_counted_without_route(self):
        before = self.value(self.metrics(), "haloyd_requests_total", route="-", code="4xx",
                            proto="HTTP/1.0")
        r = harness.raw_request(self.daemon.port, b"GET / HTTP/1.0\r\nHost: nowhere.invalid\r\n\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 404"), r[:40])
        self.wait_metrics(lambda m: self.value(m, "haloyd_requests_total", route="-", code="4xx",
                                               proto="HTTP/1.0") == before + 1,
                          "an HTTP/1.0 404 without a route")

    def test_local_answers_counted_under_their_route(self):
        host = self.site("m-local")
        self.daemon.ctl_ok("route", "set", host, "--https-redirect", "on")
        for _ in range(2):
            self.assertEqual(self.daemon.get(host).status, 301)
        r = self.https_get(host, "/")   # served
        self.assertEqual(r[0], 200)
        # 413 from the request step (Content-Length past the route's max_body), over h2c.
        self.daemon.ctl_ok("route", "set", host, "--max-body", "10", "--https-redirect", "off")
        c = H2Client(self.daemon.port)
        try:
            st = c.get(host, "/", method="POST", body=b"x" * 100,
                       extra=[("content-length", "100")])
            self.assertEqual(st.status, 413)
        finally:
            c.close()
        want = {("3xx", "HTTP/1.1"): 2, ("2xx", "HTTP/1.1"): 1, ("4xx", "HTTP/2"): 1}
        self.wait_metrics(lambda m: self.route_requests(m, host) == want,
                          "local answers counted under %s" % host)

    def test_connect_failures_and_retries(self):
        dead = "127.0.0.1:%d" % harness.free_port()     # nothing listens there

        def delta(m, m0, k):
            return self.value(m, k) - self.value(m0, k)
        # Only the dead backend: one failure, nothing to retry on, a 502 of the route.
        alone = unique_host("m-dead")
        self.daemon.ctl_ok("route", "add", alone, dead)
        m0 = self.metrics()
        self.assertEqual(self.daemon.get(alone).status, 502)
        self.wait_metrics(lambda m: delta(m, m0, "haloyd_upstream_connect_failures_total") == 1
                          and self.route_requests(m, alone) == {("5xx", "HTTP/1.1"): 1},
                          "a connect failure and a 502 counted")
        # Dead and live: on one connection (one worker) round-robin offers each first once;
        # the dead one fails once (then it is skipped as down) and the request is retried.
        both = unique_host("m-retry")
        self.daemon.ctl_ok("route", "add", both, dead, "--backend", self.be.addr)
        m0 = self.metrics()
        ka = self.daemon.keepalive()
        try:
            for _ in range(4):
                self.assertEqual(ka.request(host=both).status, 200)
        finally:
            ka.close()
        self.wait_metrics(lambda m: (delta(m, m0, "haloyd_upstream_connect_failures_total"),
                                     delta(m, m0, "haloyd_upstream_retries_total"),
                                     self.route_requests(m, both)) ==
                          (1, 1, {("2xx", "HTTP/1.1"): 4}), "one failure, one retry, 4 answers")

    def test_tls_handshakes_full_resumed_failed(self):
        host = self.site("m-tls")
        m0 = self.metrics()
        ctx = self.tls_ctx()
        sess = None
        reused = 0
        for _ in range(3):
            status, s, r = self.https_get(host, ctx=ctx)
            self.assertEqual(status, 200)
            sess = sess or s
        for _ in range(3):
            status, _, r = self.https_get(host, ctx=ctx, session=sess)
            self.assertEqual(status, 200)
            reused += int(r)
        self.assertGreater(reused, 0, "python never resumed a session: nothing to count")
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")   # not a ClientHello
            s.settimeout(TIMEOUT)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass

        def delta(m, k):
            return (self.value(m, "haloyd_tls_handshakes_total", result=k) -
                    self.value(m0, "haloyd_tls_handshakes_total", result=k))
        self.wait_metrics(lambda m: (delta(m, "full"), delta(m, "resumed"), delta(m, "failed"))
                          == (6 - reused, reused, 1), "handshakes: %d full, %d resumed, 1 failed"
                          % (6 - reused, reused))

    def test_open_connections_gauge(self):
        host = self.site("m-conn")

        def total(m):
            return sum(v for (n, _), v in m.items() if n == "haloyd_connections")
        self.wait_metrics(lambda m: total(m) == 0, "no open connection")
        ka = [self.daemon.keepalive() for _ in range(3)]
        try:
            for k in ka:
                self.assertEqual(k.request(host=host).status, 200)
            self.wait_metrics(lambda m: total(m) == 3, "3 open connections")
        finally:
            for k in ka:
                k.close()
        self.wait_metrics(lambda m: total(m) == 0, "the connections closed")

    def test_ctl_stats_json_matches_metrics(self):
        host = self.site("m-ctl")
        for _ in range(4):
            self.assertEqual(self.daemon.get(host).status, 200)
        want = {("2xx", "HTTP/1.1"): 4}
        m = self.wait_metrics(lambda m: self.route_requests(m, host) == want, "4 requests")
        rows = json.loads(self.daemon.ctl_ok("--json", "stats"))
        got = {}
        for r in rows:
            labels = tuple(sorted(LABEL.findall(r["labels"])))
            got[(r["metric"], labels)] = float(r["value"])
        key = ("haloyd_requests_total", tuple(sorted(
            {"route": host, "code": "2xx", "proto": "HTTP/1.1"}.items())))
        self.assertEqual(got[key], 4)
        for k in ("haloyd_snapshot_generation", "haloyd_worker_restarts_total"):
            self.assertEqual(got[(k, ())], m[(k, ())], k)
        text = self.daemon.ctl_ok("stats")
        self.assertRegex(text, r"haloyd_requests_total\s+route=\"%s\",code=\"2xx\",proto=\"HTTP/1.1\"\s+4"
                         % re.escape(host))

    def test_openmetrics_on_request(self):
        status, hdrs, body = http_get(self.metrics_port, "/metrics", {
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("application/openmetrics-text"))
        text = body.decode()
        self.assertTrue(text.endswith("# EOF\n"))
        self.assertIn("# TYPE haloyd_requests counter\n", text)
        _, hdrs = self.scrape()
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain; version=0.0.4"))

    def test_endpoint_refusals(self):
        self.assertEqual(http_get(self.metrics_port, "/other")[0], 404)
        r = harness.raw_request(self.metrics_port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 405"), r[:40])
        # A head that fills the 4 KiB bound without ending: answered 431 (exactly 4096 bytes
        # are sent, so none is left unread to turn the close into a reset).
        head = b"GET /metrics HTTP/1.1\r\nX: "
        head += b"a" * (4096 - len(head))
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=TIMEOUT) as s:
            s.sendall(head)
            r = bytearray()
            while True:
                b = s.recv(4096)
                if not b:
                    break
                r += b
        self.assertTrue(r.startswith(b"HTTP/1.1 431"), r[:40])
        # A client that sends nothing is cut off by the 5 s bound, not kept.
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=15) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(10), b"")
            self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.scrape()[0] != {}, True)   # still serving

    def test_worker_killed_counters_never_go_backwards(self):
        host = self.site("m-kill")
        for _ in range(6):
            self.assertEqual(self.daemon.get(host).status, 200)
        self.wait_metrics(lambda m: sum(self.route_requests(m, host).values()) == 6, "6 requests")
        before = self.metrics()
        st = self.daemon.status()
        victim = st["workers"][0]["pid"]
        os.kill(victim, signal.SIGKILL)

        def respawned():
            s = self.daemon.try_status()
            return s if s and self.daemon.serving(s) and victim not in [
                w["pid"] for w in s["workers"]] else None
        # Scrape all along: no counter may drop at any moment of the respawn.
        deadline = time.monotonic() + 30
        while True:
            now = self.metrics()
            for k, v in before.items():
                if k[0].endswith("_total") or k[0].endswith("_bucket") or k[0].endswith("_count"):
                    self.assertGreaterEqual(now.get(k, 0.0), v, k)
            if respawned():
                break
            self.assertLess(time.monotonic(), deadline, "the worker did not respawn within 30 s")
            time.sleep(0.05)
        for _ in range(4):
            self.assertEqual(self.daemon.get(host).status, 200)
        m = self.wait_metrics(lambda m: sum(self.route_requests(m, host).values()) == 10,
                              "10 requests after the respawn")
        self.assertEqual(self.value(m, "haloyd_worker_restarts_total"),
                         self.value(before, "haloyd_worker_restarts_total") + 1)


class PrometheusTest(MetricsTestCase):
    """A real Prometheus scrapes haloyd every second; values read back with /api/v1/query."""

    def setUp(self):
        super().setUp()
        self.assertTrue(os.access(PROMETHEUS, os.X_OK),
                        "prometheus is missing: apt-get install prometheus (packages.txt)")
        self.pdir = tempfile.mkdtemp(prefix="haloyd-prom-")
        self.addCleanup(shutil.rmtree, self.pdir, True)
        self.pport = harness.free_port()
        conf = os.path.join(self.pdir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: haloyd\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.metrics_port)
        self.plog = open(os.path.join(self.pdir, "prometheus.log"), "wb")
        self.addCleanup(self.plog.close)
        self.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file", conf, "--storage.tsdb.path",
             os.path.join(self.pdir, "data"), "--web.listen-address",
             "127.0.0.1:%d" % self.pport, "--log.level", "warn"],
            stdin=subprocess.DEVNULL, stdout=self.plog, stderr=subprocess.STDOUT,
            cwd=self.pdir, start_new_session=True)
        self.addCleanup(self._stop_prometheus)

    def _stop_prometheus(self):
        if self.prom.poll() is None:
            self.prom.terminate()
            try:
                self.prom.wait(15)
            except subprocess.TimeoutExpired:
                self.prom.kill()
                self.prom.wait(5)

    def plog_tail(self):
        with open(os.path.join(self.pdir, "prometheus.log"), "rb") as f:
            return f.read()[-3000:].decode("utf-8", "replace")

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.pport,
                                                       urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
                d = json.loads(r.read())
        except OSError:
            return None
        if d.get("status") != "success":
            return None
        return d["data"]["result"]

    def test_prometheus_scrapes_request_counts(self):
        host = self.site("m-prom")
        for _ in range(7):
            self.assertEqual(self.daemon.get(host).status, 200)
        for _ in range(2):
            self.assertEqual(self.daemon.get(host, "/status?code=404").status, 404)
        self.assertEqual(self.https_get(host)[0], 200)

        def value(q):
            def get():
                if self.prom.poll() is not None:
                    raise AssertionError("prometheus exited\n" + self.plog_tail())
                r = self.query(q)
                return float(r[0]["value"][1]) if r else None
            return get
        q = 'sum(haloyd_requests_total{job="haloyd",route="%s",code="2xx"})' % host
        wait_for(lambda: value(q)() == 8.0, 60, "Prometheus to report 8 2xx requests for %s" % host,
                 lambda: "last value %r\n%s" % (value(q)(), self.plog_tail()))
        q404 = 'haloyd_requests_total{route="%s",code="4xx",proto="HTTP/1.1"}' % host
        wait_for(lambda: value(q404)() == 2.0, 30, "Prometheus to report 2 404s",
                 lambda: self.plog_tail())
        up = self.query('up{job="haloyd"}')
        self.assertEqual(float(up[0]["value"][1]), 1.0)
        full = self.query('haloyd_tls_handshakes_total{result="full"}')
        self.assertGreaterEqual(float(full[0]["value"][1]), 1.0)


if __name__ == "__main__":
    unittest.main()
