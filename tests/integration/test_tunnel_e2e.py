#!/usr/bin/python3
"""Reverse tunnels end to end (issue 13's tests): the real haloyd-tunnel
agent dials the real haloyd's tunnel listener with a client certificate,
and public requests for a `tunnel:NAME` route reach a backend.py app
behind the agent: through a worker, the local hop, the tunnel worker, the
tunnel and the agent's HTTP/1.1 pool.
"""
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from tests.integration import backend as backend_mod
from tests.integration import testpki
from tests.integration.harness import (Daemon, DaemonTestCase, free_port, program,
                                       request, unique_host, wait_for)

TUNNEL_SNI = "tunnel.test"


class Agent:
    """One haloyd-tunnel process; its log is kept for the failure messages."""

    def __init__(self, base, proxy_port, cert, key, ca, to, conns=1):
        self.log_path = os.path.join(base, "agent-%d.log" % id(self))
        self.argv = [program("haloyd-tunnel"), "--proxy", "127.0.0.1:%d" % proxy_port,
                     "--cert", cert, "--key", key, "--ca", ca, "--sni", TUNNEL_SNI,
                     "--to", to, "--conns", str(conns), "-v"]
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGKILL, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
            raise AssertionError("haloyd-tunnel did not exit within %d s after signal %d\n%s"
                                 % (timeout, sig, self.log()))
        finally:
            self._log.close()
        return rc


class TunnelE2ETest(DaemonTestCase):
    WORKERS = 2

    @classmethod
    def _start_daemon(cls):
        if not hasattr(cls, "pki"):
            cls.pki = testpki.Pki()
            cls.foreign = testpki.Pki("another CA")
            cls.server_cert = cls.pki.server(TUNNEL_SNI, ["DNS:" + TUNNEL_SNI])
            cls.tunnel_port = free_port()
        cls.daemon = Daemon(cls.WORKERS, [
            "--listen-tunnel", "127.0.0.1:%d" % cls.tunnel_port,
            "--tunnel-ca-file", cls.pki.ca,
            "--tunnel-cert", cls.server_cert[0], "--tunnel-key", cls.server_cert[1]])
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.close(check=False, keep=True)
            raise

    def setUp(self):
        super().setUp()
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.stop()
        super().tearDown()

    # --- helpers

    def agent(self, name, app, conns=1, pki=None):
        cert, key = (pki or self.pki).client(name)
        a = Agent(self.daemon.base, self.tunnel_port, cert, key, self.pki.ca, app.addr,
                  conns).start()
        self.agents.append(a)
        return a

    def tunnels(self, name=None):
        rc, out, err = self.daemon.ctl("--json", "tunnel", "list")
        if rc != 0:  # the tunnel process is (re)starting: nothing attached yet
            self.assertIn("tunnel", err)
            return []
        rows = json.loads(out)
        if isinstance(rows, dict):
            rows = rows.get("tunnels", [])
        return [t for t in rows if name is None or t.get("name") == name]

    def wait_attached(self, name, n=1, agent=None):
        def attached():
            if agent is not None and agent.proc.poll() is not None:
                raise AssertionError("haloyd-tunnel exited with %d\n%s"
                                     % (agent.proc.returncode, agent.log()))
            return len(self.tunnels(name)) >= n
        wait_for(attached, 30, "%d tunnel(s) named %s" % (n, name),
                 lambda: self.daemon.log_tail() + ("\n--- agent:\n" + agent.log()
                                                   if agent is not None else ""))

    def route(self, label, tunnel):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, "tunnel:" + tunnel)
        return host

    # --- the tests

    def test_get_through_the_tunnel(self):
        app = self.backend("office-app")
        host = self.route("get", "office")
        a = self.agent("office", app)
        self.wait_attached("office", agent=a)
        r = self.daemon.get(host, "/hello?x=1")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.body, app.hello())
        rec = app.wait_request("/hello?x=1")
        headers = {k.lower(): v for k, v in rec["headers"]}
        self.assertEqual(headers.get("host"), host)
        self.assertEqual(headers.get("x-forwarded-for"), "127.0.0.1")
        self.assertNotIn("haloyd-tunnel", headers)
        t = self.tunnels("office")[0]
        self.assertGreaterEqual(t.get("served", 0), 1, t)
        # One access line, the worker's: the tunnel process relays it without a second.
        lines = wait_for(lambda: [l for l in self.daemon.log_text().splitlines()
                                  if " access " + host + " GET /hello?x=1 " in l],
                         10, "the access line")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("HALOYD_BACKEND=tunnel:office", lines[0])

    def test_one_mebibyte_both_ways(self):
        app = self.backend("big-app")
        host = self.route("big", "bigbody")
        a = self.agent("bigbody", app)
        self.wait_attached("bigbody", agent=a)
        body = os.urandom(1 << 20)
        r = self.daemon.get(host, "/echo", method="POST", body=body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, body)
        r = self.daemon.get(host, "/big?bytes=%d" % (1 << 20))
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 1 << 20)

    def test_twenty_requests_spread_over_four_tunnels(self):
        app = self.backend("spread-app")
        host = self.route("spread", "spread")
        a = self.agent("spread", app, conns=4)
        self.wait_attached("spread", 4, agent=a)
        before = {t["peer"] if "peer" in t else i: t.get("served", 0)
                  for i, t in enumerate(self.tunnels("spread"))}
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            rs = list(ex.map(lambda i: self.daemon.get(host, "/slow?ms=800&i=%d" % i), range(20)))
        self.assertEqual([r.status for r in rs], [200] * 20)
        after = self.tunnels("spread")
        served = [t.get("served", 0) - before.get(t["peer"] if "peer" in t else i, 0)
                  for i, t in enumerate(after)]
        self.assertEqual(sum(served), 20, after)
        # Least-in-flight with 20 slow requests at once over 4 tunnels: 5 each.
        self.assertLessEqual(max(served) - min(served), 2, after)

    def test_events_arrive_unbuffered(self):
        app = self.backend("sse-app")
        host = self.route("sse", "sse")
        a = self.agent("sse", app)
        self.wait_attached("sse", agent=a)
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
        s.sendall(("GET /drip?n=5&ms=300 HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
        got, buf, deadline = [], b"", time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            buf += b
            now = time.time()
            while b"chunk " in buf:
                i = buf.index(b"chunk ")
                j = buf.find(b"\n", i)
                if j < 0:
                    break
                sent = float(buf[i:j].split()[2])
                got.append(now - sent)
                buf = buf[j + 1:]
        s.close()
        self.assertEqual(len(got), 5, got)
        # Each chunk is read within a fraction of the 300 ms between chunks.
        self.assertLess(max(got), 0.25, got)

    def test_agent_killed_503_then_served_after_reconnect(self):
        app = self.backend("gone-app")
        host = self.route("gone", "gone")
        a = self.agent("gone", app)
        self.wait_attached("gone", agent=a)
        self.assertEqual(self.daemon.get(host).status, 200)
        a.stop(signal.SIGKILL)
        self.agents.remove(a)

        def refused():
            r = self.daemon.get(host)
            return r if r.status == 503 else None
        r = wait_for(refused, 30, "503 once the agent is gone", self.daemon.log_tail)
        self.assertTrue(r.header("Retry-After"), r.headers)
        self.assertEqual(self.tunnels("gone"), [])
        a2 = self.agent("gone", app)
        self.wait_attached("gone", agent=a2)
        self.assertEqual(self.daemon.get(host).status, 200)

    def test_certificate_from_another_ca_refused(self):
        app = self.backend("foreign-app")
        host = self.route("foreign", "intruder")
        a = self.agent("intruder", app, pki=self.foreign)
        # Refused at the handshake: the agent reads the alert (TLS 1.3 client
        # certificates are checked after the client's Finished).
        wait_for(lambda: "alert unknown ca" in a.log(), 30, "the agent to see its refusal",
                 a.log)
        self.assertEqual(self.tunnels("intruder"), [])
        self.assertEqual(self.daemon.get(host).status, 503)

    def test_agent_sigterm_lets_a_slow_response_complete(self):
        app = self.backend("drain-app")
        host = self.route("drain", "drain")
        a = self.agent("drain", app)
        self.wait_attached("drain", agent=a)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "r", self.daemon.get(host, "/slow?ms=2000", timeout=30)))
        t.start()
        app.wait_request("/slow?ms=2000")
        a.proc.send_signal(signal.SIGTERM)
        t.join(30)
        self.assertEqual(out["r"].status, 200)
        self.assertEqual(a.stop(signal.SIGTERM), 0, a.log())
        self.agents.remove(a)


class TunnelRestartTest(unittest.TestCase):
    """haloyd restarted: the agents reattach by themselves."""

    def test_agents_reattach_after_a_restart(self):
        pki = testpki.Pki()
        cert = pki.server(TUNNEL_SNI, ["DNS:" + TUNNEL_SNI])
        port = free_port()
        args = ["--listen-tunnel", "127.0.0.1:%d" % port, "--tunnel-ca-file", pki.ca,
                "--tunnel-cert", cert[0], "--tunnel-key", cert[1]]
        app = backend_mod.Backend("restart-app").start()
        d = Daemon(1, args)
        d.start()
        ccert, ckey = pki.client("homebox")
        agent = Agent(d.base, port, ccert, ckey, pki.ca, app.addr, conns=2).start()
        d2 = None
        try:
            d.ctl_ok("route", "add", "home.example.com", "tunnel:homebox")
            wait_for(lambda: d.get("home.example.com").status == 200, 30, "served", d.log_tail)
            d.close()
            d2 = Daemon(1, args)
            d2.start()
            d2.ctl_ok("route", "add", "home.example.com", "tunnel:homebox")
            # The agent's back-off starts at 1 s and doubles: well inside 30 s.
            wait_for(lambda: d2.get("home.example.com").status == 200, 30,
                     "the agent to reattach", lambda: d2.log_tail() + "\n" + agent.log())
            self.assertIsNone(agent.proc.poll())
        finally:
            agent.stop()
            app.stop()
            if d2 is not None:
                d2.close()


if __name__ == "__main__":
    unittest.main()
