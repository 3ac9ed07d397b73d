"""Integration tests of the tunnel process (haloyd issue 13, points 1, 3, 4, 6).

haloyd runs with `listen_tunnel`; agents are written here with python3-h2
in the rhttp dialect (reference/reverse-http.md 7.2): a TLS client with a
client certificate that writes the 24-byte HTTP/2 client magic itself and
then runs a *server-side* h2 connection that does not expect one. The
certificates are made by the test with the openssl CLI (a CA, the
listener's certificate, agents app1/app2, one from a foreign CA, one whose
CN is no tunnel name).

The worker side of the hop is another part of issue 13, so requests go
straight to RUNTIME_DIR/tunnel.sock as h2c from a python3-h2 client with
`haloyd-tunnel: NAME`, the way a worker sends them.

Covered: attach (seen in `tunnel list`), a request reaching the agent on
streams 1, 3, 5 with :authority and the internal fields removed, 1 MiB
both ways; no agent -> 503 + Retry-After; foreign CA, no certificate and
a bad CN refused; least-in-flight spreads slow concurrent requests over
two agents, round-robin alternates; REFUSED_STREAM retried on the other
agent; an agent silent to PING dropped; an agent that opens a stream gets
GOAWAY PROTOCOL_ERROR; an agent killed mid-response resets the hop stream;
an agent killed before its head: the hop stream is reset too.
"""
import json
import os
import select
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import hpack
import hyperframe.frame

from . import testpki
from .harness import Daemon, as_user_prefix, free_port, program, request, wait_for

MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MIB = 1024 * 1024
STEP = 10  # seconds: the bound of every wait here


class TunnelPki:
    """Two CAs in one folder (ca, foreign), the listener's certificate and agents'."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="haloyd-tunpki-")
        main = testpki.Pki("haloyd test ca", folder=self.dir, stem="ca", days=2)
        foreign = testpki.Pki("haloyd test foreign", folder=self.dir, stem="foreign", days=2)
        main.server("127.0.0.1", ["IP:127.0.0.1"], stem="server")
        for name in ("app1", "app2", "Bad_Name"):
            main.client(name, stem=name)
        foreign.client("app1", stem="foreign-app1")

    def path(self, name):
        return os.path.join(self.dir, name)


class Agent(threading.Thread):
    """A tunnel agent: TLS + magic, then a server-side h2 connection.

    answer(agent, sid, headers, body) returns None (answer now: 200 with the
    request body echoed), a dict {status, body, delay, cut, refuse, silent,
    headers} or is None for the default echo.
    """

    def __init__(self, port, pki, cert="app1", answer=None, max_streams=100,
                 alpn=("h2",), ca="ca", verify=True):
        super().__init__(daemon=True)
        self.port, self.pki, self.cert, self.alpn = port, pki, cert, alpn
        self.ca_name = ca
        self.verify = verify
        self.answer = answer
        self.max_streams = max_streams
        self.requests = []          # (sid, headers dict, body) as they completed
        self.streams = {}           # sid -> [headers, bytearray]
        self.out = {}               # sid -> [bytearray, end]
        self.timers = []            # (at, fn)
        self.active = 0
        self.max_active = 0
        self.resets = []            # (sid, code) from haloyd
        self.terminated = None      # GOAWAY error code from haloyd
        self.closed = threading.Event()
        self.error = None
        self.silent = False
        self.stop_flag = False
        self.lock = threading.Lock()
        self.sock = None

    # --- set-up

    def connect(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.verify:
            ctx.load_verify_locations(self.pki.path("ca.pem"))
        else:  # haloyd's self-signed default certificate
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert is not None:
            ctx.load_cert_chain(self.pki.path(self.cert + ".pem"),
                                self.pki.path(self.cert + ".key"))
        if self.alpn:
            ctx.set_alpn_protocols(list(self.alpn))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=STEP)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        # Read here, before the loop's thread shares the SSL object.
        self.peer_der = self.sock.getpeercert(binary_form=True)
        self.sock.sendall(MAGIC)
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.incoming_buffer = h2.frame_buffer.FrameBuffer(server=False)
        self.conn.local_settings = h2.settings.Settings(
            client=False, initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            })
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.setblocking(False)
        return self

    def start_agent(self):
        self.connect()
        self.start()
        return self

    # --- the loop

    def run(self):
        try:
            while not self.stop_flag:
                r, _, _ = select.select([self.sock], [], [], 0.05)
                if self.silent:
                    continue
                if r:
                    try:
                        data = self.sock.recv(65536)
                    except ssl.SSLWantReadError:
                        data = None
                    except (ConnectionError, OSError, ssl.SSLError):
                        break
                    if data == b"":
                        break
                    if data:
                        with self.lock:
                            for ev in self.conn.receive_data(data):
                                self.event(ev)
                if getattr(self, "die", False):
                    self.kill()
                    break
                self.run_timers()
                self.flush()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.closed.set()

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.streams[ev.stream_id] = [dict(ev.headers), bytearray()]
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id][1] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            headers, body = self.streams[ev.stream_id]
            self.requests.append((ev.stream_id, headers, bytes(body)))
            self.respond(ev.stream_id, headers, bytes(body))
        elif isinstance(ev, h2.events.StreamReset):
            self.resets.append((ev.stream_id, ev.error_code))
            self.out.pop(ev.stream_id, None)
            self.active -= 1
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev.error_code

    def respond(self, sid, headers, body):
        a = self.answer(self, sid, headers, body) if self.answer else None
        a = a or {}
        if a.get("refuse"):
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            self.active -= 1
            return
        if a.get("silent"):
            self.silent = True
            return
        if a.get("die"):
            self.die = True
            return

        def send():
            if any(r[0] == sid for r in self.resets):
                return
            out = a.get("body", body)
            self.conn.send_headers(sid, [(":status", str(a.get("status", 200))),
                                         ("content-length", str(len(out)))] +
                                   list(a.get("headers", [])))
            if a.get("cut"):
                self.out[sid] = [bytearray(out[:a["cut"]]), False]
                self.cut_after = True
            else:
                self.out[sid] = [bytearray(out), True]
        if a.get("delay"):
            self.timers.append((time.monotonic() + a["delay"], send))
        else:
            send()

    def run_timers(self):
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        self.timers = [t for t in self.timers if t[0] > now]
        for _, fn in due:
            with self.lock:
                fn()

    def flush(self):
        with self.lock:
            for sid in list(self.out):
                buf, end = self.out[sid]
                while buf:
                    try:
                        n = min(len(buf), self.conn.local_flow_control_window(sid),
                                self.conn.max_outbound_frame_size)
                    except h2.exceptions.StreamClosedError:
                        buf.clear()
                        break
                    if n <= 0:
                        break
                    self.conn.send_data(sid, bytes(buf[:n]))
                    del buf[:n]
                if not buf:
                    del self.out[sid]
                    if end:
                        self.conn.end_stream(sid)
                        self.active -= 1
            data = self.conn.data_to_send()
        if data:
            self.sock.setblocking(True)
            try:
                self.sock.sendall(data)
            finally:
                self.sock.setblocking(False)
        if getattr(self, "cut_after", False) and not self.out:
            self.kill()

    def send_raw(self, data):
        with self.lock:
            self.sock.setblocking(True)
            self.sock.sendall(data)
            self.sock.setblocking(False)

    def kill(self):
        """The agent dies: the socket closes without a word."""
        self.stop_flag = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self):
        self.kill()
        self.join(STEP)


class HopClient:
    """What a worker does on the hop: h2c over RUNTIME_DIR/tunnel.sock."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(STEP)
        self.sock.connect(path)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(16 * MIB)
        self.sock.sendall(self.conn.data_to_send())
        self.resp = {}      # sid -> {"headers", "body", "done", "reset"}
        self.goaway = None
        self.out = {}

    def request(self, tunnel="app1", path="/", method="GET", body=b"", authority="app.test",
                extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":authority", authority),
                   (":path", path)]
        if tunnel is not None:
            headers.append(("haloyd-tunnel", tunnel))
        headers += list(extra)
        if body:
            headers.append(("content-length", str(len(body))))
        self.conn.send_headers(sid, headers, end_stream=not body)
        self.resp[sid] = {"headers": None, "body": bytearray(), "done": False, "reset": None}
        if body:
            self.out[sid] = bytearray(body)
        self.pump(0)
        return sid

    def pump(self, timeout):
        for sid in list(self.out):
            buf = self.out[sid]
            while buf:
                n = min(len(buf), self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n <= 0:
                    break
                self.conn.send_data(sid, bytes(buf[:n]))
                del buf[:n]
            if not buf:
                del self.out[sid]
                self.conn.end_stream(sid)
        self.send()
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("the hop connection closed")
        for ev in self.conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                self.resp[ev.stream_id]["headers"] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                self.resp[ev.stream_id]["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.resp[ev.stream_id]["done"] = True
            elif isinstance(ev, h2.events.StreamReset):
                self.resp[ev.stream_id]["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                # python-h2 ends the connection at any GOAWAY; a worker's nghttp2
                # finishes the streams below its last id, and so does this.
                self.goaway = ev
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        self.send()

    def send(self):
        try:
            self.sock.sendall(self.conn.data_to_send())
        except OSError:
            pass  # closed after its last answer (a stop): what was read still counts

    def wait(self, sids, timeout=STEP, detail=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.resp[s]["done"] or self.resp[s]["reset"] is not None for s in sids):
                return [self.resp[s] for s in sids]
            try:
                self.pump(0.05)
            except AssertionError as e:
                raise AssertionError("%s\n%s" % (e, detail() if detail else ""))
        raise AssertionError("no answer on the hop within %d s: %r\n%s" % (timeout, {
            s: (self.resp[s]["headers"], len(self.resp[s]["body"]), self.resp[s]["reset"])
            for s in sids}, detail() if detail else ""))

    def get(self, **kw):
        return self.wait([self.request(**kw)])[0]

    def close(self):
        self.sock.close()


class TunnelTestCase(unittest.TestCase):
    """One daemon with a tunnel listener for the class (short PING times)."""

    @classmethod
    def setUpClass(cls):
        cls.pki = TunnelPki()
        cls.tport = free_port()
        cls.daemon = Daemon(1, [
            "--listen-tunnel", "127.0.0.1:%d" % cls.tport,
            "--tunnel-ca-file", cls.pki.path("ca.pem"),
            "--tunnel-cert", cls.pki.path("server.pem"),
            "--tunnel-key", cls.pki.path("server.key"),
            "--tunnel-ping-interval", "1s", "--tunnel-ping-timeout", "1s",
            "--connect-timeout", "2s", "--response-timeout", "3s"])
        try:
            cls.daemon.start()
            # Started means the workers serve; the tunnel process may still be on its way
            # (its HELLO can come after the workers' acks): each test begins with it up.
            wait_for(lambda: cls.daemon.ctl("--json", "tunnel", "list")[0] == 0, STEP,
                     "the tunnel process to answer tunnel list", cls.daemon.log_tail)
        except BaseException:
            cls.daemon.close(check=False, keep=True)
            raise
        cls.hop_path = os.path.join(cls.daemon.run_dir, "tunnel.sock")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()

    def setUp(self):
        self.agents = []
        self.hops = []
        self.mark = self.daemon.log_size()
        wait_for(lambda: self.tunnels() == [], STEP, "no tunnel left from the last test")

    def tearDown(self):
        for a in self.agents:
            a.close()
        for h in self.hops:
            h.close()
        self.daemon.check_log(self.mark)
        if self.daemon.proc.poll() is not None:
            self.fail("haloyd died\n" + self.daemon.log_tail())

    def tunnels(self):
        return json.loads(self.daemon.ctl_ok("--json", "tunnel", "list"))

    def agent(self, name="app1", **kw):
        a = Agent(self.tport, self.pki, cert=name, **kw).start_agent()
        self.agents.append(a)
        return a

    def attached(self, n, name="app1"):
        return wait_for(lambda: len([t for t in self.tunnels() if t["name"] == name]) >= n or None,
                        STEP, "%d tunnel(s) %s attached" % (n, name), self.daemon.log_tail)

    def hop(self):
        h = HopClient(self.hop_path)
        self.hops.append(h)
        return h

    def log_has(self, text):
        return text in self.daemon.log_text(self.mark) or None


class TestAttach(TunnelTestCase):

    def test_request_through_the_tunnel(self):
        a = self.agent()
        self.attached(1)
        row = self.tunnels()[0]
        self.assertEqual(row["name"], "app1")
        self.assertIn("CN=app1", row["subject"])
        self.assertTrue(row["peer"].startswith("127.0.0.1:"))
        hop = self.hop()
        for i in range(3):
            r = hop.get(path="/p%d?q=1" % i, extra=[("haloyd-tunnel-balance", "round-robin"),
                                                    ("x-keep", "yes")])
            self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual([sid for sid, _, _ in a.requests], [1, 3, 5])
        sid, headers, _ = a.requests[1]
        self.assertEqual(headers[":authority"], "app.test")
        self.assertEqual(headers[":path"], "/p1?q=1")
        self.assertEqual(headers["x-keep"], "yes")
        self.assertFalse([k for k in headers if k.startswith("haloyd-tunnel")])
        row = self.tunnels()[0]
        self.assertEqual(row["served"], 3)
        self.assertEqual(row["in_flight"], 0)
        self.assertEqual(row["state"], "ready")
        # Silent for tunnel_ping_interval (1 s here): a PING, and its round trip shown.
        wait_for(lambda: self.tunnels()[0]["ping_rtt_us"] > 0 or None, STEP, "a PING round trip")

    def test_one_mib_both_ways(self):
        body = os.urandom(MIB)
        self.agent()
        self.attached(1)
        r = self.hop().get(method="POST", path="/upload", body=body)
        self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(len(r["body"]), MIB)
        self.assertEqual(bytes(r["body"]), body)

    def test_the_worker_user_reaches_the_hop(self):
        """The hop is the worker user's (0600) and RUNTIME_DIR lets it through."""
        st = os.stat(self.hop_path)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        code = ("import socket; s = socket.socket(socket.AF_UNIX); s.connect(%r); "
                "print('connected')" % self.hop_path)
        # Not root: the workers run as the test's own user, as this does.
        prefix = as_user_prefix(self.daemon.user) if self.daemon.user else []
        p = subprocess.run(prefix + ["/usr/bin/python3", "-c", code], capture_output=True,
                           timeout=STEP)
        self.assertEqual(p.stdout.strip(), b"connected", p.stderr)

    def test_no_agent_is_503_with_retry_after(self):
        r = self.hop().get(tunnel="nobody")
        self.assertEqual(r["headers"][":status"], "503")
        self.assertEqual(r["headers"]["retry-after"], "5")

    def test_refused_certificates(self):
        for cert, ca in (("foreign-app1", "ca"), (None, "ca"), ("Bad_Name", "ca")):
            a = Agent(self.tport, self.pki, cert=cert, ca=ca)
            try:
                a.connect()
                a.sock.setblocking(True)
                a.sock.settimeout(STEP)
                # TLS 1.3: the refusal arrives after the client's Finished.
                data = a.sock.recv(100)
                self.assertEqual(data, b"", cert)
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            finally:
                a.kill()
        wait_for(lambda: self.log_has("CN is not a tunnel name"), STEP, "bad CN logged",
                 self.daemon.log_tail)
        self.assertEqual(self.daemon.log_text(self.mark).count(" refused: "), 3)
        self.assertEqual(self.tunnels(), [])

    def test_agent_opening_a_stream_gets_goaway(self):
        a = self.agent()
        self.attached(1)
        enc = hpack.Encoder()
        f = hyperframe.frame.HeadersFrame(1)
        f.data = enc.encode([(":method", "GET"), (":scheme", "https"), (":path", "/"),
                             (":authority", "x")])
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        a.send_raw(f.serialize())
        wait_for(lambda: a.terminated is not None or None, STEP, "GOAWAY from haloyd")
        self.assertEqual(a.terminated, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        wait_for(lambda: self.tunnels() == [] or None, STEP, "the tunnel gone")


class TestPublicInterop(TunnelTestCase):
    """The python3-h2 agent above (code independent of haloyd-tunnel) serves
    public requests: client -> worker -> hop -> tunnel process -> agent."""

    def test_public_requests_through_a_python_agent(self):
        a = self.agent()
        self.attached(1)
        self.daemon.ctl_ok("route", "add", "pyagent.example.com", "tunnel:app1")
        for i in range(3):
            r = request(self.daemon.port, "/pub%d" % i, host="pyagent.example.com",
                        method="POST", body=b"hello %d" % i)
            self.assertEqual((r.status, r.body), (200, b"hello %d" % i))
        self.assertEqual([sid for sid, _, _ in a.requests], [1, 3, 5])
        _, headers, _ = a.requests[0]
        self.assertEqual(headers[":authority"], "pyagent.example.com")
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")
        self.assertFalse([k for k in headers if k.startswith("haloyd-tunnel")])
        self.daemon.ctl_ok("route", "rm", "pyagent.example.com")


class TestSelection(TunnelTestCase):

    def test_least_in_flight_spreads_slow_requests(self):
        slow = lambda agent, sid, h, b: {"delay": 0.5}  # noqa: E731
        a1 = self.agent(answer=slow)
        a2 = self.agent(answer=slow)
        self.attached(2)
        hop = self.hop()
        sids = [hop.request(path="/%d" % i) for i in range(6)]
        for r in hop.wait(sids):
            self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(len(a1.requests), 3)
        self.assertEqual(len(a2.requests), 3)

    def test_round_robin_alternates(self):
        a1 = self.agent()
        a2 = self.agent()
        self.attached(2)
        hop = self.hop()
        seq = []
        for i in range(6):
            before = len(a1.requests)
            r = hop.get(path="/%d" % i, extra=[("haloyd-tunnel-balance", "round-robin")])
            self.assertEqual(r["headers"][":status"], "200")
            seq.append(1 if len(a1.requests) > before else 2)
        self.assertEqual(len(a1.requests), 3)
        self.assertEqual(len(a2.requests), 3)
        self.assertTrue(all(seq[i] != seq[i + 1] for i in range(5)), seq)

    def test_refused_stream_is_retried_on_the_other_agent(self):
        refuse = lambda agent, sid, h, b: {"refuse": True}  # noqa: E731
        a1 = self.agent(answer=refuse)
        a2 = self.agent()
        self.attached(2)
        hop = self.hop()
        for i in range(4):
            r = hop.get(method="POST", path="/%d" % i, body=b"x" * 100)
            self.assertEqual(r["headers"][":status"], "200")
            self.assertEqual(bytes(r["body"]), b"x" * 100)
        self.assertEqual(len(a2.requests), 4)
        self.assertGreaterEqual(len(a1.requests), 1)  # it was asked, and refused

    def test_max_concurrent_streams_bounds_a_tunnel(self):
        slow = lambda agent, sid, h, b: {"delay": 0.3}  # noqa: E731
        a = self.agent(answer=slow, max_streams=1)
        self.attached(1)
        hop = self.hop()
        sids = [hop.request(path="/%d" % i) for i in range(3)]
        for r in hop.wait(sids):
            self.assertEqual(r["headers"][":status"], "200")
        self.assertEqual(a.max_active, 1)


class TestFailure(TunnelTestCase):

    def test_agent_silent_to_ping_is_dropped(self):
        a = self.agent()
        self.attached(1)
        a.silent = True
        wait_for(lambda: self.tunnels() == [] or None, STEP, "the silent tunnel dropped",
                 self.daemon.log_tail)
        self.assertTrue(self.log_has("no answer to PING"))
        r = self.hop().get()
        self.assertEqual(r["headers"][":status"], "503")

    def test_agent_killed_mid_response_resets_the_hop_stream(self):
        self.agent(answer=lambda agent, sid, h, b: {"body": b"y" * 100000, "cut": 1000})
        self.attached(1)
        r = self.hop().get()
        self.assertEqual(r["headers"][":status"], "200")
        self.assertIsNotNone(r["reset"])
        self.assertFalse(r["done"])

    def test_agent_killed_before_the_head_resets_the_hop_stream(self):
        self.agent(answer=lambda agent, sid, h, b: {"die": True})
        self.attached(1)
        r = self.hop().get()
        self.assertIsNone(r["headers"])
        self.assertEqual(r["reset"], h2.errors.ErrorCodes.INTERNAL_ERROR)

    def test_hop_stream_reset_cancels_the_agents_stream(self):
        a = self.agent(answer=lambda agent, sid, h, b: {"delay": 5})
        self.attached(1)
        hop = self.hop()
        sid = hop.request()
        wait_for(lambda: a.active > 0 or None, STEP, "the request at the agent")
        hop.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        hop.pump(0)
        wait_for(lambda: a.resets or None, STEP, "RST_STREAM at the agent", self.daemon.log_tail)
        self.assertEqual(a.resets[0], (1, h2.errors.ErrorCodes.CANCEL))

    def test_no_head_in_time_is_504(self):
        self.agent(answer=lambda agent, sid, h, b: {"delay": 6})
        self.attached(1)
        r = self.hop().get()
        self.assertEqual(r["headers"][":status"], "504")


class TestProcess(unittest.TestCase):
    """The process itself: configuration, status, the graceful stop (a daemon each)."""

    def test_listen_tunnel_needs_a_ca(self):
        p = subprocess.run([program("haloyd"), "-t", "-c", "/dev/null", "--listen-tunnel",
                            "127.0.0.1:1"], capture_output=True, timeout=STEP)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"listen_tunnel needs tunnel_ca_file", p.stderr)

    def test_status_lists_it_and_stop_drains(self):
        pki = TunnelPki()
        port = free_port()
        d = Daemon(1, ["--listen-tunnel", "127.0.0.1:%d" % port,
                       "--tunnel-ca-file", pki.path("ca.pem"),
                       "--tunnel-cert", pki.path("server.pem"),
                       "--tunnel-key", pki.path("server.key")])
        d.start()
        a = None
        try:
            st = wait_for(lambda: [c for c in d.status().get("children", [])
                                   if c["role"] == "tunnel" and c["pid"] > 0] or None,
                          STEP, "the tunnel process in haloyd-ctl status", d.log_tail)
            self.assertEqual(len(d.status()["workers"]), 1)
            self.assertNotEqual(st[0]["pid"], d.pid)
            a = Agent(port, pki, answer=lambda agent, sid, h, b: {"delay": 1.5,
                                                                   "body": b"z" * 50000})
            a.start_agent()
            wait_for(lambda: json.loads(d.ctl_ok("--json", "tunnel", "list")) or None, STEP,
                     "the agent attached", d.log_tail)
            hop = HopClient(os.path.join(d.run_dir, "tunnel.sock"))
            sid = hop.request()
            wait_for(lambda: a.active > 0 or None, STEP, "the request at the agent")
            d.signal(15)
            r = hop.wait([sid], detail=d.log_tail)[0]
            self.assertEqual(r["headers"][":status"], "200")
            self.assertEqual(bytes(r["body"]), b"z" * 50000)
            self.assertTrue(r["done"])
            self.assertIsNotNone(hop.goaway)  # the hop connection drains too
            wait_for(lambda: a.terminated is not None or None, STEP, "GOAWAY at the agent")
            self.assertEqual(a.terminated, h2.errors.ErrorCodes.NO_ERROR)
            self.assertIsNone(a.error)
            self.assertEqual(d.wait_exit(), 0)
            d.check_log()
            self.assertIn("detached: haloyd is stopping", d.log_text())
            hop.close()
        finally:
            if a is not None:
                a.close()
            d.close(check=False)

    def test_killed_tunnel_process_is_respawned(self):
        pki = TunnelPki()
        port = free_port()
        d = Daemon(1, ["--listen-tunnel", "127.0.0.1:%d" % port,
                       "--tunnel-ca-file", pki.path("ca.pem"),
                       "--tunnel-cert", pki.path("server.pem"),
                       "--tunnel-key", pki.path("server.key")])
        d.start()
        agents = []

        def tunnel_pid():
            kids = [c for c in d.status().get("children", []) if c["role"] == "tunnel"]
            return kids[0]["pid"] if kids and kids[0]["pid"] > 0 else None
        try:
            pid = wait_for(tunnel_pid, STEP, "the tunnel process", d.log_tail)
            agents.append(Agent(port, pki).start_agent())
            wait_for(lambda: json.loads(d.ctl_ok("--json", "tunnel", "list")) or None, STEP,
                     "the agent attached", d.log_tail)
            os.kill(pid, 9)
            wait_for(lambda: (tunnel_pid() or pid) != pid or None, STEP, "a new tunnel process",
                     d.log_tail)
            agents[0].closed.wait(STEP)
            self.assertTrue(agents[0].closed.is_set())  # its tunnel went with the process
            agents.append(Agent(port, pki).start_agent())  # an agent reconnects
            wait_for(lambda: json.loads(d.ctl_ok("--json", "tunnel", "list")) or None, STEP,
                     "the agent attached again", d.log_tail)
            hop = HopClient(os.path.join(d.run_dir, "tunnel.sock"))
            self.assertEqual(hop.get()["headers"][":status"], "200")
            hop.close()
        finally:
            for a in agents:
                a.close()
            d.close()

    def test_reload_gives_the_tunnel_process_new_timeouts(self):
        pki = TunnelPki()
        port = free_port()
        d = Daemon(1, ["--listen-tunnel", "127.0.0.1:%d" % port,
                       "--tunnel-ca-file", pki.path("ca.pem"),
                       "--tunnel-cert", pki.path("server.pem"),
                       "--tunnel-key", pki.path("server.key")])
        with open(d.conf_path, "w") as f:
            f.write("response_timeout 30s\n")
        d.start()
        a = None
        try:
            a = Agent(port, pki, answer=lambda agent, sid, h, b: {"delay": 4}).start_agent()
            wait_for(lambda: json.loads(d.ctl_ok("--json", "tunnel", "list")) or None, STEP,
                     "the agent attached", d.log_tail)
            with open(d.conf_path, "w") as f:
                f.write("response_timeout 1s\n")
            d.ctl_ok("reload")
            hop = HopClient(os.path.join(d.run_dir, "tunnel.sock"))
            t0 = time.monotonic()
            r = hop.get()
            self.assertEqual(r["headers"][":status"], "504")
            self.assertLess(time.monotonic() - t0, 3.5)
            hop.close()
        finally:
            if a is not None:
                a.close()
            d.close()

    def test_without_tunnel_cert_the_keyring_serves(self):
        pki = TunnelPki()
        port = free_port()
        d = Daemon(1, ["--listen-tunnel", "127.0.0.1:%d" % port,
                       "--tunnel-ca-file", pki.path("ca.pem")])
        d.start()
        a = None
        try:
            # The tunnel process answers `tunnel list` once it runs: dial after that.
            wait_for(lambda: d.ctl("--json", "tunnel", "list")[0] == 0, STEP,
                     "the tunnel process", d.log_tail)
            a = Agent(port, pki, verify=False).start_agent()
            der = a.peer_der
            p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                               input=der, capture_output=True, timeout=STEP)
            self.assertIn(b"haloyd-default", p.stdout)
            wait_for(lambda: json.loads(d.ctl_ok("--json", "tunnel", "list")) or None, STEP,
                     "the agent attached", d.log_tail)
            hop = HopClient(os.path.join(d.run_dir, "tunnel.sock"))
            r = hop.get()
            self.assertEqual(r["headers"][":status"], "200")
            hop.close()
        finally:
            if a is not None:
                a.close()
            d.close()


if __name__ == "__main__":
    unittest.main()
