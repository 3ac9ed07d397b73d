"""Integration tests of haloyd-tunnel, the agent (issue 13, point 5), against a
stand-in PROXY written here with python3-h2: a TLS server that requires and
verifies a client certificate, reads the agent's 24-byte magic itself, then
runs a CLIENT-side h2 connection whose own first 24 output bytes (its magic)
are dropped, and opens streams 1, 3, 5... toward the agent the way HAProxy's
rhttp edge does (reference/reverse-http.md sections 2, 5.2 and 7.2). The
agent forwards them to a real backend.py app over HTTP/1.1.

Certificates are made with the openssl CLI at module start. Every wait is
bounded; nothing sleeps a fixed time.
"""
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.events
import h2.settings

from . import listener
from . import testpki
from .backend import Backend
from .harness import free_port, program, sanitizer_report, wait_for

MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MIB = 1 << 20
WAIT = 20.0          # any single wait; generous for the ASan build on 2 CPUs
_pki = {}


def setUpModule():
    d = tempfile.mkdtemp(prefix="haloyd-tunagent-")
    ca = testpki.Pki("tunnel test CA", folder=d, stem="ca", days=2)
    ca.server("localhost", ["IP:127.0.0.1", "DNS:localhost"], stem="proxy")
    ca.client("app1", stem="agent")
    _pki["dir"] = d
    for n in ("ca", "proxy", "agent"):
        _pki[n] = os.path.join(d, n + ".pem")
        _pki[n + "_key"] = os.path.join(d, n + ".key")


def tearDownModule():
    subprocess.run(["rm", "-rf", _pki["dir"]], check=False)


# --- the stand-in proxy

class Stream:
    """One stream the proxy opened: what came back, with arrival times."""

    def __init__(self, sid):
        self.sid = sid
        self.headers = None
        self.trailers = None
        self.chunks = []          # (time.time() at arrival, bytes)
        self.ended = threading.Event()
        self.reset = None

    @property
    def status(self):
        return int(dict(self.headers)[b":status"]) if self.headers else None

    def header(self, name):
        for k, v in self.headers or ():
            if k == name.encode():
                return v.decode()
        return None

    @property
    def body(self):
        return b"".join(c for _, c in self.chunks)

    def wait(self, timeout=WAIT):
        if not self.ended.wait(timeout):
            raise AssertionError("stream %d did not end within %.0f s" % (self.sid, timeout))
        return self


class ProxyConn:
    """One tunnel the agent dialed: the rhttp dialect's acceptor side."""

    def __init__(self, proxy, sock):
        self.proxy, self.sock = proxy, sock
        self.wire = bytearray()      # every byte the agent sent, magic included
        self.pending = bytearray()   # the start of a frame not complete yet
        self.lock = threading.Condition()
        self.streams = {}
        self.ready = threading.Event()      # the agent's SETTINGS arrived
        self.closed = threading.Event()
        self.goaways = []                   # (last stream id, error code)
        self.pings_from_agent = 0
        self.ack_pings = proxy.ack_pings    # False: the agent's PINGs are swallowed
        self.ack_data = True                # False: no WINDOW_UPDATE for the agent's DATA
        self.body_sent = {}                 # stream id -> request body bytes sent
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        threading.Thread(target=self._run, daemon=True).start()

    def _read_magic(self):
        while len(self.wire) < len(MAGIC):
            b = self.sock.recv(65536)
            if not b:
                return b""
            self.wire += b
        if bytes(self.wire[:24]) != MAGIC:
            raise AssertionError("the agent's first bytes are not the magic: %r" % self.wire[:24])
        return bytes(self.wire[24:])

    def _run(self):
        try:
            rest = self._read_magic()
            with self.lock:
                self.conn.initiate_connection()
                out = self.conn.data_to_send()
                # A client connection always writes the magic first: the acceptor must not.
                assert out[:24] == MAGIC
                self.sock.sendall(out[24:])
            if rest:
                self._feed(rest)
            while True:
                b = self.sock.recv(65536)
                if not b:
                    break
                self.wire += b
                self._feed(b)
        except (OSError, ssl.SSLError, AssertionError) as e:
            self.proxy.errors.append(repr(e))
        finally:
            self.closed.set()
            with self.lock:
                for s in self.streams.values():
                    s.ended.set()
                self.lock.notify_all()

    def _feed(self, b):
        # python-h2 closes its connection on any GOAWAY, where an rhttp edge (HAProxy)
        # keeps reading the streams at or below its last id: GOAWAY frames are taken
        # out of the byte stream here and recorded.
        self.pending += b
        keep = bytearray()
        while len(self.pending) >= 9:
            n = 9 + int.from_bytes(self.pending[:3], "big")
            if len(self.pending) < n:
                break
            f, self.pending = self.pending[:n], self.pending[n:]
            if f[3] == 7:
                last, code = struct.unpack(">II", bytes(f[9:17]))
                self.goaways.append((last & 0x7FFFFFFF, code))
            elif f[3] == 6 and not f[4] & 1 and not self.ack_pings:
                self.pings_from_agent += 1
            else:
                keep += f
        with self.lock:
            events = self.conn.receive_data(bytes(keep))
            for ev in events:
                self._event(ev)
            out = self.conn.data_to_send()
            if out:
                self.sock.sendall(out)
            self.lock.notify_all()

    def _event(self, ev):
        s = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.ready.set()
        elif isinstance(ev, h2.events.ResponseReceived):
            s.headers = ev.headers
        elif isinstance(ev, h2.events.DataReceived):
            s.chunks.append((time.time(), ev.data))
            if self.ack_data:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            s.trailers = ev.headers
        elif isinstance(ev, h2.events.StreamEnded):
            s.ended.set()
        elif isinstance(ev, h2.events.StreamReset):
            s.reset = ev.error_code
            s.ended.set()
        elif isinstance(ev, h2.events.PingReceived):
            self.pings_from_agent += 1

    def request(self, path, method="GET", body=None, headers=None, authority="app.example.com",
                length=True, trailers=None):
        """Opens the next odd stream; sends the body under flow control from a thread."""
        h = [(b":method", method.encode()), (b":scheme", b"https"), (b":path", path.encode())]
        if authority is not None:
            h.append((b":authority", authority.encode()))
        for k, v in headers or ():
            h.append((k.encode(), v.encode()))
        if body is not None and length:
            h.append((b"content-length", str(len(body)).encode()))
        with self.lock:
            sid = self.conn.get_next_available_stream_id()
            s = self.streams[sid] = Stream(sid)
            self.conn.send_headers(sid, h, end_stream=body is None)
            self.sock.sendall(self.conn.data_to_send())
        if body is not None:
            threading.Thread(target=self._send_body, args=(sid, body, trailers),
                             daemon=True).start()
        return s

    def _send_body(self, sid, body, trailers=None):
        try:
            self._send_body_locked(sid, body, trailers)
        except OSError:
            pass    # the test dropped the tunnel under a body being sent: its point

    def _send_body_locked(self, sid, body, trailers):
        at = 0
        with self.lock:
            while at < len(body):
                n = min(self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size, len(body) - at)
                if n <= 0:
                    if self.closed.is_set() or not self.lock.wait(WAIT):
                        return
                    continue
                self.conn.send_data(sid, body[at:at + n])
                at += n
                self.body_sent[sid] = at
                self.sock.sendall(self.conn.data_to_send())
            if trailers:
                self.conn.send_headers(sid, [(k.encode(), v.encode()) for k, v in trailers],
                                       end_stream=True)
            else:
                self.conn.end_stream(sid)
            self.sock.sendall(self.conn.data_to_send())

    def goaway(self, last):
        """A raw GOAWAY(last, NO_ERROR): python-h2 would close its side at once."""
        with self.lock:
            self.sock.sendall(struct.pack(">I", 8)[1:] + b"\x07\x00" + struct.pack(">III", 0, last, 0))

    def reset(self, sid):
        with self.lock:
            self.conn.reset_stream(sid, 8)   # CANCEL, as a proxy whose client left
            self.sock.sendall(self.conn.data_to_send())

    def drop(self):
        """A plain close without GOAWAY (HAProxy's reload does this)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class StandInProxy:
    """The TLS listener: client certificate required and verified against the test CA."""

    def __init__(self, ack_pings=True):
        self.ack_pings = ack_pings
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(_pki["proxy"], _pki["proxy_key"])
        ctx.load_verify_locations(_pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["h2"])
        self.ctx = ctx
        self.port = free_port()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self.lsock.listen(16)
        self.conns = []
        self.peer_cns = []
        self.errors = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _ = listener.accept(self.lsock)
            except OSError:
                return
            try:
                raw.settimeout(WAIT)
                tls = self.ctx.wrap_socket(raw, server_side=True)
                tls.settimeout(None)
                cert = tls.getpeercert()
                self.peer_cns.append(dict(x[0] for x in cert["subject"])["commonName"])
                tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, ssl.SSLError) as e:
                self.errors.append(repr(e))
                raw.close()
                continue
            self.conns.append(ProxyConn(self, tls))

    def ready_conns(self):
        return [c for c in self.conns if c.ready.is_set() and not c.closed.is_set()]

    def wait_ready(self, n=1, since=0):
        return wait_for(lambda: len([c for c in self.conns[since:] if c.ready.is_set()
                                     and not c.closed.is_set()]) >= n and self.ready_conns(),
                        WAIT, "%d tunnel(s) from the agent" % n)

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.drop()


# --- the agent

class Agent:
    def __init__(self, proxy_port, app_port, *extra, cert=True, proxy_host="127.0.0.1"):
        self.log = tempfile.NamedTemporaryFile(prefix="haloyd-tunnel-", suffix=".log",
                                               delete=False)
        argv = [program("haloyd-tunnel"), "--proxy", "%s:%d" % (proxy_host, proxy_port),
                "--ca", _pki["ca"], "--to", "127.0.0.1:%d" % app_port, "-v",
                "--drain-timeout", "3s"]
        if cert:
            argv += ["--cert", _pki["agent"], "--key", _pki["agent_key"]]
        self.proc = subprocess.Popen(argv + list(extra), stdout=self.log, stderr=self.log)

    def text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def wait_exit(self, timeout=WAIT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the agent did not exit within %.0f s:\n%s"
                                 % (timeout, self.text()[-3000:]))

    def close(self):
        """Stops the agent as systemd would (SIGTERM): its exit status and its log.

        A graceful exit is also when LeakSanitizer looks: every test checks for leaks.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(WAIT)
        text = self.text()
        os.unlink(self.log.name)
        self.rc = self.proc.returncode
        return text


def field(rec, name):
    """A request field backend.py recorded (a list of [name, value])."""
    for k, v in rec["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def frames(wire):
    """(type, flags, stream id, payload) of every frame after the magic."""
    out, at = [], 24
    while at + 9 <= len(wire):
        length = int.from_bytes(wire[at:at + 3], "big")
        ftype, flags = wire[at + 3], wire[at + 4]
        sid = int.from_bytes(wire[at + 5:at + 9], "big") & 0x7FFFFFFF
        if at + 9 + length > len(wire):
            break
        out.append((ftype, flags, sid, bytes(wire[at + 9:at + 9 + length])))
        at += 9 + length
    return out


def wait_stable(get, hold, what):
    """Waits until get() has not changed for hold seconds; returns its value."""
    last = [get(), time.monotonic()]

    def stable():
        v = get()
        if v != last[0]:
            last[0], last[1] = v, time.monotonic()
        return time.monotonic() - last[1] >= hold

    wait_for(stable, WAIT, what)
    return last[0]


class ProbeApp:
    """A one-connection app: answers a head and a first chunk, then waits for EOF.

    With read_body False it reads the request head only and then nothing more.
    """

    def __init__(self, read_body=True):
        self.read_body = read_body
        self.done = threading.Event()
        self.lsock = listener.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.got_request = threading.Event()
        self.saw_eof = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = listener.accept(self.lsock)
        c.settimeout(WAIT * 2)
        data = b""
        while b"\r\n\r\n" not in data:
            data += c.recv(4096)
        self.got_request.set()
        if not self.read_body:
            self.done.wait(WAIT * 3)
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        try:
            while c.recv(4096):
                pass
            self.saw_eof.set()
        except OSError:
            self.saw_eof.set()
        c.close()

    def close(self):
        self.done.set()
        self.lsock.close()


class RecordingApp:
    """A one-request app that keeps the raw bytes of a chunked request, then answers 200."""

    def __init__(self):
        self.lsock = listener.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.raw = b""
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = listener.accept(self.lsock)
        c.settimeout(WAIT)
        try:
            # The end of a chunked body with trailers: the last chunk, fields, an empty line.
            while not (b"\r\n0\r\n" in self.raw and self.raw.endswith(b"\r\n\r\n")):
                b = c.recv(65536)
                if not b:
                    break
                self.raw += b
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        finally:
            self.done.set()
            c.close()

    def close(self):
        self.lsock.close()


class TunnelAgentCase(unittest.TestCase):
    conns = 1
    agent_args = ()
    ack_pings = True

    def setUp(self):
        self.app = Backend("app")
        self.app.start()
        self.proxy = StandInProxy(self.ack_pings)
        self.agent = Agent(self.proxy.port, self.app.port, "--conns", str(self.conns),
                           *self.agent_args)
        self.proxy.wait_ready(self.conns)

    def tearDown(self):
        text = self.agent.close()
        self.proxy.close()
        self.app.stop()
        report = sanitizer_report(text)
        self.assertIsNone(report, report)
        self.assertEqual(self.agent.rc, 0, text[-3000:])

    def conn(self):
        return self.proxy.ready_conns()[0]


class TestTunnelAgentWire(TunnelAgentCase):
    def test_get(self):
        s = self.conn().request("/hello?x=1").wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(s.body, b"backend app\n")
        self.assertEqual(s.header("x-backend"), "app")
        rec = self.app.wait_request("/hello?x=1")
        self.assertEqual(field(rec, "Host"), "app.example.com")
        self.assertEqual(self.proxy.peer_cns, ["app1"])

    def test_host_field_without_authority(self):
        # HAProxy sends an HTTP/1.1 client's request with host and no :authority.
        s = self.conn().request("/h1", authority=None, headers=[("host", "h1.example.com")]).wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(field(self.app.wait_request("/h1"), "Host"), "h1.example.com")

    def test_wire_bytes(self):
        c = self.conn()
        for _ in range(3):
            self.assertEqual(c.request("/w").wait().status, 200)
        wire = bytes(c.wire)
        self.assertEqual(wire[:24], MAGIC)
        fr = frames(wire)
        ftype, flags, sid, payload = fr[0]
        self.assertEqual((ftype, flags & 1, sid), (4, 0, 0), "first frame: a non-ACK SETTINGS")
        settings = dict(struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6))
        self.assertNotEqual(settings.get(2), 1, "ENABLE_PUSH=1")
        self.assertEqual(settings.get(3), 100)
        self.assertEqual(settings.get(6), 65536)
        opened = set(c.streams)
        self.assertEqual(opened, {1, 3, 5})
        for ftype, flags, sid, _ in fr:
            self.assertNotEqual(ftype, 5, "PUSH_PROMISE from the agent")
            if ftype in (0, 1, 3):   # DATA, HEADERS, RST_STREAM only on our streams
                self.assertIn(sid, opened)

    def test_fields_passed_and_hop_by_hop_dropped(self):
        s = self.conn().request("/headers", headers=[("te", "trailers"), ("x-keep", "1")]).wait()
        self.assertEqual(s.status, 200)
        fields = dict((k.lower(), v) for k, v in json.loads(s.body))
        self.assertEqual(fields.get("x-keep"), "1")
        self.assertEqual(fields.get("te"), "trailers")   # the one TE HTTP/2 allows
        self.assertEqual(fields.get("host"), "app.example.com")
        # A chunked answer: its Transfer-Encoding stays on the app's hop.
        s = self.conn().request("/chunked?n=3").wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(s.body, b"chunk 0\nchunk 1\nchunk 2\n")
        for k, _ in s.headers:
            self.assertNotIn(k, (b"connection", b"keep-alive", b"transfer-encoding"))


class TestTunnelAgentBodies(TunnelAgentCase):
    def test_1mib_download(self):
        s = self.conn().request("/big?bytes=%d" % MIB).wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(len(s.body), MIB)

    def test_1mib_upload_echo(self):
        body = os.urandom(MIB)
        s = self.conn().request("/echo", method="POST", body=body).wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(hashlib.sha256(s.body).hexdigest(), hashlib.sha256(body).hexdigest())

    def test_request_trailers(self):
        app = RecordingApp()
        agent = Agent(self.proxy.port, app.port, "--conns", "1")
        try:
            before = len(self.proxy.conns)
            c = wait_for(lambda: [x for x in self.proxy.conns[before:] if x.ready.is_set()],
                         WAIT, "the second agent's tunnel")[0]
            s = c.request("/up", method="POST", body=b"a" * 40000, length=False,
                          trailers=[("x-sum", "abc"), ("x-count", "1")]).wait()
            self.assertEqual((s.status, s.body), (200, b"ok\n"))
            head, _, body = app.raw.partition(b"\r\n\r\n")
            self.assertIn(b"\r\nTransfer-Encoding: chunked", head)
            self.assertTrue(body.endswith(b"\r\n0\r\nx-sum: abc\r\nx-count: 1\r\n\r\n"), body[-80:])
        finally:
            text = agent.close()
            app.close()
        self.assertIsNone(sanitizer_report(text))

    def test_1mib_upload_chunked(self):
        # No content-length: the agent sends the body chunked as it arrives.
        body = os.urandom(MIB)
        s = self.conn().request("/echo", method="POST", body=body, length=False).wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(hashlib.sha256(s.body).hexdigest(), hashlib.sha256(body).hexdigest())
        rec = self.app.wait_request("/echo")
        self.assertEqual(field(rec, "Transfer-Encoding"), "chunked")

    def test_20_concurrent_streams(self):
        c = self.conn()
        t0 = time.monotonic()
        streams = [c.request("/slow?ms=500") for _ in range(20)]
        for s in streams:
            self.assertEqual(s.wait().status, 200)
        self.assertEqual([s.sid for s in streams], list(range(1, 41, 2)))
        # One after the other would take 10 s.
        self.assertLess(time.monotonic() - t0, 5.0)

    def test_sse_unbuffered(self):
        s = self.conn().request("/sse?n=5&ms=400")
        s.wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(s.header("content-type"), "text/event-stream")
        events = []
        for t, data in s.chunks:
            for part in data.split(b"\n\n"):
                if part.startswith(b"id:"):
                    sent = float(part.split()[-1])
                    events.append((t, sent))
        self.assertEqual(len(events), 5)
        for arrived, sent in events:
            self.assertLess(arrived - sent, 0.3, "an event held back %.3f s" % (arrived - sent))
        self.assertGreater(events[-1][0] - events[0][0], 1.2)

    def test_chunked_trailers(self):
        s = self.conn().request("/trailers").wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(s.body, b"body with trailers\n")
        self.assertEqual(dict(s.trailers).get(b"x-checksum"), b"abc123")
        self.assertEqual(dict(s.trailers).get(b"x-backend-trailer"), b"app")

    def test_app_refused_502(self):
        # No request before: no kept-alive connection to the app outlives its listener.
        self.app.stop()
        dead = self.conn().request("/y").wait()
        self.assertEqual(dead.status, 502)
        self.assertIn(b"refused", dead.body)


class TestTunnelAgentLifecycle(TunnelAgentCase):
    conns = 2

    def test_reconnect_after_drop(self):
        before = len(self.proxy.conns)
        for c in list(self.proxy.conns):
            c.drop()
        self.proxy.wait_ready(2, since=before)
        s = self.proxy.ready_conns()[0].request("/again").wait()
        self.assertEqual(s.status, 200)

    def test_goaway_from_proxy(self):
        old = self.conn()
        before = len(self.proxy.conns)
        s = old.request("/slow?ms=1000")
        self.app.wait_request("/slow?ms=1000")
        # Its last stream id counts streams the agent opened: none (the dialect's rule;
        # nghttp2 refuses an odd one from the proxy as a protocol error).
        old.goaway(0)
        # A replacement is dialed at once; the stream in flight finishes on the old one.
        self.proxy.wait_ready(1, since=before)
        self.assertEqual(s.wait().status, 200, self.agent.text()[-3000:])
        wait_for(old.closed.is_set, WAIT, "the agent closing the drained tunnel")
        new = [c for c in self.proxy.conns[before:] if c.ready.is_set()][0]
        self.assertEqual(new.request("/next").wait().status, 200)

    def test_tunnel_lost_with_streams_in_flight(self):
        # Streams with app connections open, bodies half sent: all freed with the tunnel.
        old = list(self.proxy.conns)
        for c in old:
            for _ in range(10):
                c.request("/slow?ms=2000")
                c.request("/echo", method="POST", body=os.urandom(200000), length=False)
        wait_for(lambda: len(self.app.records("/slow?ms=2000")) >= 20, WAIT,
                 "the app holding the slow requests")
        for c in old:
            c.drop()
        wait_for(lambda: all(c.closed.is_set() for c in old), WAIT, "the old tunnels closing")
        self.proxy.wait_ready(2, since=len(old))
        self.assertEqual(self.proxy.ready_conns()[0].request("/after").wait().status, 200)

    def test_sigterm_drain_timeout(self):
        # A proxy that takes no more DATA: the streams cannot finish; the drain timeout ends them.
        for c in self.proxy.ready_conns():
            c.ack_data = False
            for _ in range(5):
                c.request("/big?bytes=%d" % (4 * MIB))
        wait_for(lambda: len(self.app.records("/big?bytes=%d" % (4 * MIB))) >= 10, WAIT,
                 "the app answering")
        t0 = time.monotonic()
        self.agent.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.agent.wait_exit(), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 2.5)   # --drain-timeout 3s
        self.assertIn("drain timeout", self.agent.text())

    def test_sigterm_during_slow_response(self):
        c = self.conn()
        s = c.request("/slow?ms=1500")
        self.app.wait_request("/slow?ms=1500")
        self.agent.proc.send_signal(signal.SIGTERM)
        self.assertEqual(s.wait().status, 200)
        self.assertEqual(s.body, b"backend app\n")
        self.assertEqual(self.agent.wait_exit(), 0)
        # The shutdown notice (2^31-1), then the GOAWAY naming the last stream.
        self.assertIn((2 ** 31 - 1, 0), [(l, int(e)) for l, e in c.goaways])
        self.assertIn((s.sid, 0), [(l, int(e)) for l, e in c.goaways])


class TestTunnelAgentErrors(TunnelAgentCase):
    agent_args = ("--app-timeout", "700ms")

    def test_app_timeout_504(self):
        s = self.conn().request("/slow?ms=3000").wait()
        self.assertEqual(s.status, 504)

    def test_broken_after_head_is_reset(self):
        s = self.conn().request("/close-mid-body").wait()
        self.assertEqual(s.status, 200)
        self.assertEqual(s.reset, 2)    # INTERNAL_ERROR

    def test_proxy_reset_closes_the_app_connection(self):
        probe = ProbeApp()
        agent = Agent(self.proxy.port, probe.port, "--conns", "1")
        try:
            before = len(self.proxy.conns)
            c = wait_for(lambda: [x for x in self.proxy.conns[before:] if x.ready.is_set()],
                         WAIT, "the second agent's tunnel")[0]
            s = c.request("/probe")
            wait_for(lambda: s.headers is not None and s.chunks, WAIT, "the probe's first chunk")
            c.reset(s.sid)
            self.assertTrue(probe.saw_eof.wait(WAIT), "the agent kept the app's connection")
        finally:
            text = agent.close()
            probe.close()
        self.assertIsNone(sanitizer_report(text))

class TestTunnelAgentBackPressure(TunnelAgentCase):
    """HTTP/2 flow control end to end: what the agent holds stays bounded both ways."""

    def test_slow_proxy_stalls_the_app(self):
        c = self.conn()
        c.ack_data = False      # the proxy's client reads nothing: no WINDOW_UPDATE
        total = 256 * MIB
        s = c.request("/big?bytes=%d" % total)
        rec = self.app.wait_request("/big?bytes=%d" % total)
        sent = wait_stable(lambda: rec.get("sent", 0), 1.0, "the app's writes stalling")
        # The proxy's window (64 KiB), what the agent queues (96 KiB) and the kernel's
        # loopback socket buffers (about 3 MiB measured); far from the whole body.
        self.assertLess(sent, 8 * MIB)
        self.assertLessEqual(len(s.body), 65535)

    def test_slow_app_stalls_the_proxy(self):
        probe = ProbeApp(read_body=False)
        agent = Agent(self.proxy.port, probe.port, "--conns", "1")
        try:
            before = len(self.proxy.conns)
            c = wait_for(lambda: [x for x in self.proxy.conns[before:] if x.ready.is_set()],
                         WAIT, "the second agent's tunnel")[0]
            total = 64 * MIB
            s = c.request("/upload", method="POST", body=b"u" * total)
            self.assertTrue(probe.got_request.wait(WAIT))
            sent = wait_stable(lambda: c.body_sent.get(s.sid, 0), 1.0,
                               "the proxy's sending stalling")
            self.assertLess(sent, 8 * MIB)
        finally:
            text = agent.close()
            probe.close()
        self.assertIsNone(sanitizer_report(text))


class TestTunnelAgentPing(TunnelAgentCase):
    agent_args = ("--ping-idle", "300ms", "--ping-timeout", "500ms")

    def test_ping_when_idle(self):
        c = self.conn()
        wait_for(lambda: c.pings_from_agent >= 3, WAIT, "PINGs from an idle agent")
        self.assertFalse(c.closed.is_set())


class TestTunnelAgentPingLost(TunnelAgentCase):
    agent_args = ("--ping-idle", "300ms", "--ping-timeout", "500ms")
    ack_pings = False

    def test_dropped_without_ping_ack(self):
        c = self.conn()
        wait_for(c.closed.is_set, WAIT, "the agent dropping a tunnel whose PING is unanswered")
        self.assertGreaterEqual(c.pings_from_agent, 1)
        self.proxy.wait_ready(1, since=1)
        self.assertIn("no PING ACK", self.agent.text())


class TestTunnelAgentVerify(unittest.TestCase):
    """The proxy's certificate is verified, its name checked; the proxy named by a host name."""

    def setUp(self):
        self.app = Backend("verify")
        self.app.start()
        self.proxy = StandInProxy()
        self.agent = None

    def tearDown(self):
        text = self.agent.close() if self.agent else ""
        self.proxy.close()
        self.app.stop()
        self.assertIsNone(sanitizer_report(text))

    def test_proxy_by_host_name(self):
        self.agent = Agent(self.proxy.port, self.app.port, "--conns", "1", proxy_host="localhost")
        self.proxy.wait_ready(1)
        self.assertEqual(self.proxy.ready_conns()[0].request("/named").wait().status, 200)

    def test_wrong_name_refused(self):
        self.agent = Agent(self.proxy.port, self.app.port, "--conns", "1", "--sni",
                           "other.example.com")
        wait_for(lambda: "the proxy's certificate" in self.agent.text(), WAIT,
                 "the agent refusing the proxy's certificate", lambda: self.agent.text())
        self.assertIn("hostname mismatch", self.agent.text())
        self.assertEqual(self.proxy.ready_conns(), [])

    def test_other_ca_refused(self):
        self.agent = Agent(self.proxy.port, self.app.port, "--conns", "1", "--ca",
                           _pki["agent"])
        wait_for(lambda: "the proxy's certificate" in self.agent.text(), WAIT,
                 "the agent refusing the proxy's certificate", lambda: self.agent.text())
        self.assertEqual(self.proxy.ready_conns(), [])


class TestTunnelAgentConfigFile(unittest.TestCase):
    def test_config_file(self):
        app = Backend("conf")
        app.start()
        proxy = StandInProxy()
        d = tempfile.mkdtemp(prefix="haloyd-tunagent-conf-")
        conf = os.path.join(d, "office.conf")
        with open(conf, "w") as f:
            f.write("# like /etc/haloyd-tunnel/office.conf\nproxy 127.0.0.1:%d\nto 127.0.0.1:%d\n"
                    "ca %s\ncert %s\nkey %s\nconns 1\n" % (proxy.port, app.port, _pki["ca"],
                                                           _pki["agent"], _pki["agent_key"]))
        p = subprocess.Popen([program("haloyd-tunnel"), "--config", conf],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proxy.wait_ready(1)
            self.assertEqual(proxy.ready_conns()[0].request("/conf").wait().status, 200)
            p.send_signal(signal.SIGTERM)
            err = p.communicate(timeout=WAIT)[1].decode(errors="replace")
            self.assertEqual(p.returncode, 0, err)
            self.assertIsNone(sanitizer_report(err))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
            proxy.close()
            app.stop()
            subprocess.run(["rm", "-rf", d], check=False)


class TestTunnelAgentRefuses(unittest.TestCase):
    def run_agent(self, *args):
        p = subprocess.run([program("haloyd-tunnel")] + list(args), capture_output=True,
                           text=True, timeout=WAIT)
        return p.returncode, p.stderr

    def test_no_cert(self):
        rc, err = self.run_agent("--proxy", "127.0.0.1:1", "--to", "127.0.0.1:2")
        self.assertNotEqual(rc, 0)
        self.assertIn("client certificate is required", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_key_readable_by_others(self):
        d = tempfile.mkdtemp(prefix="haloyd-tunagent-key-")
        key = os.path.join(d, "k.pem")
        with open(_pki["agent_key"], "rb") as src, open(key, "wb") as dst:
            dst.write(src.read())
        os.chmod(key, 0o644)
        rc, err = self.run_agent("--proxy", "127.0.0.1:1", "--to", "127.0.0.1:2",
                                 "--cert", _pki["agent"], "--key", key)
        subprocess.run(["rm", "-rf", d], check=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("readable by group or others", err)

    def test_cert_key_mismatch(self):
        rc, err = self.run_agent("--proxy", "127.0.0.1:1", "--to", "127.0.0.1:2",
                                 "--cert", _pki["proxy"], "--key", _pki["agent_key"])
        self.assertNotEqual(rc, 0)
        self.assertIn("mismatch", err)

    def test_bad_flag(self):
        rc, err = self.run_agent("--conns", "0")
        self.assertNotEqual(rc, 0)
        self.assertIn("--conns", err)


if __name__ == "__main__":
    unittest.main()
