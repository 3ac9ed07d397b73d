"""Integration tests of HTTP/2 abuse bounds (issue 11, point 5): each flood
or trick, sent with python3-h2 over a prior-knowledge connection, ends with
GOAWAY (ENHANCE_YOUR_CALM, or the PROTOCOL_ERROR / REFUSED_STREAM the RFC
names) and a closed connection, while a well-behaved HTTP/2 client of the same
single worker keeps getting answers within WELL_BEHAVED_S.

The bounds themselves are in worker/h2server.c and ARCHITECTURE.md ("HTTP/2").
"""
import socket
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
import hyperframe.frame

from .harness import DaemonTestCase, unique_host

WELL_BEHAVED_S = 2.0      # a concurrent honest request is answered within this
ATTACK_S = 10.0           # an attack is ended within this


def h2_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=ATTACK_S)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding="utf-8"))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def request_headers(host, path="/"):
    return [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", host)]


def send_raw(s, data):
    """Sends all it can; the server may close in the middle of a flood."""
    try:
        s.sendall(data)
        return True
    except OSError:
        return False


def recv_until_closed(s, limit=ATTACK_S):
    """What the server sends until it closes (or limit seconds pass); the last item is
    True when it closed, False when time ran out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            yield True
            return
        if not d:
            yield True
            return
        yield d
    yield False


def wait_goaway(s, c, limit=ATTACK_S):
    """Reads through the h2 client until GOAWAY and EOF: (error code or None, closed)."""
    code = None
    for d in recv_until_closed(s, limit):
        if isinstance(d, bool):
            return code, d
        try:
            events = c.receive_data(d)
        except h2.exceptions.ProtocolError:
            continue
        for e in events:
            if isinstance(e, h2.events.ConnectionTerminated):
                code = e.error_code
    return code, False


def raw_goaway(s, limit=ATTACK_S):
    """Parses raw frames from the server until GOAWAY and EOF: (error code or None, closed)."""
    buf, code = b"", None
    for d in recv_until_closed(s, limit):
        if isinstance(d, bool):
            return code, d
        buf += d
        while len(buf) >= 9:
            f, length = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            if isinstance(f, hyperframe.frame.GoAwayFrame):
                f.parse_body(memoryview(buf[9:9 + length]))
                code = f.error_code
            buf = buf[9 + length:]
    return code, False


class WellBehaved:
    """A second HTTP/2 client, asking one request after another on its own connection."""

    def __init__(self, port, host):
        self.port, self.host = port, host
        self.worst, self.answered, self.failed = 0.0, 0, None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(ATTACK_S)

    def _run(self):
        try:
            s, c = h2_client(self.port)
            with s:
                while not self._stop.is_set():
                    t0 = time.monotonic()
                    sid = c.get_next_available_stream_id()
                    c.send_headers(sid, request_headers(self.host), end_stream=True)
                    s.sendall(c.data_to_send())
                    done = False
                    while not done:
                        d = s.recv(65536)
                        if not d:
                            raise AssertionError("the well-behaved connection was closed")
                        for e in c.receive_data(d):
                            if isinstance(e, h2.events.DataReceived):
                                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                            if isinstance(e, h2.events.StreamEnded) and e.stream_id == sid:
                                done = True
                        s.sendall(c.data_to_send())
                    self.worst = max(self.worst, time.monotonic() - t0)
                    self.answered += 1
                    time.sleep(0.02)
        except Exception as e:  # reported by check()
            self.failed = e

    def check(self, tc):
        tc.assertIsNone(self.failed, "the well-behaved client failed: %r" % self.failed)
        tc.assertGreater(self.answered, 0, "the well-behaved client got no answer")
        tc.assertLess(self.worst, WELL_BEHAVED_S,
                      "a well-behaved request took %.2f s during the attack" % self.worst)


class Http2AbuseTest(DaemonTestCase):
    WORKERS = 1     # attacker and honest client share the worker

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("h2abuse")
        cls.host = unique_host("h2abuse")
        cls.daemon.ctl_ok("route", "add", cls.host, cls.be.addr)

    def attack(self, build, expect=(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,), raw=False):
        """Runs build(s, c) -> bytes to send, beside a well-behaved client; checks the end."""
        with WellBehaved(self.daemon.port, self.host) as good:
            s, c = h2_client(self.daemon.port)
            with s:
                send_raw(s, build(s, c))
                code, closed = raw_goaway(s) if raw else wait_goaway(s, c)
            time.sleep(0.3)     # the honest client keeps asking meanwhile
        self.assertIn(code, expect, "GOAWAY error code")
        self.assertTrue(closed, "the connection was not closed after GOAWAY")
        good.check(self)
        # The worker lives on and serves a fresh connection.
        self.assertEqual(self.daemon.get(self.host, "/after").status, 200)

    def test_ping_flood(self):
        def build(s, c):
            for i in range(3000):
                c.ping(i.to_bytes(8, "big"))
            return c.data_to_send()
        self.attack(build)

    def test_settings_flood(self):
        def build(s, c):
            for _ in range(3000):
                c.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
            return c.data_to_send()
        self.attack(build)

    def test_rapid_reset(self):
        # CVE-2023-44487: open a stream and reset it at once, thousands of times.
        def build(s, c):
            for _ in range(3000):
                sid = c.get_next_available_stream_id()
                c.send_headers(sid, request_headers(self.host))
                c.reset_stream(sid)
            return c.data_to_send()
        self.attack(build)

    def test_priority_flood(self):
        def build(s, c):
            out = b""
            for i in range(3000):
                f = hyperframe.frame.PriorityFrame(1 + 2 * (i % 50))
                f.depends_on, f.stream_weight = 0, 16
                out += f.serialize()
            return c.data_to_send() + out
        self.attack(build, raw=True)

    def test_window_update_flood(self):
        def build(s, c):
            out = b""
            for _ in range(3000):
                out += hyperframe.frame.WindowUpdateFrame(0, window_increment=1).serialize()
            return c.data_to_send() + out
        self.attack(build, expect=(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                                   h2.errors.ErrorCodes.FLOW_CONTROL_ERROR), raw=True)

    def test_empty_data_flood(self):
        def build(s, c):
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                                 (":authority", self.host)])
            out = c.data_to_send()
            for _ in range(3000):
                out += hyperframe.frame.DataFrame(sid, b"").serialize()
            return out
        self.attack(build, raw=True)

    def test_continuation_flood(self):
        # CVE-2024-27316 family: HEADERS without END_HEADERS, then CONTINUATION after CONTINUATION.
        def build(s, c):
            enc = hpack.Encoder()
            block = enc.encode(request_headers(self.host))
            h = hyperframe.frame.HeadersFrame(1, block)
            h.flags.add("END_STREAM")
            out = c.data_to_send() + h.serialize()
            for i in range(200):
                out += hyperframe.frame.ContinuationFrame(
                    1, enc.encode([("x-filler-%d" % i, "v" * 100)])).serialize()
            return out
        self.attack(build, expect=(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                                   h2.errors.ErrorCodes.PROTOCOL_ERROR), raw=True)

    def test_hpack_bomb(self):
        # One big field in the dynamic table, then a block of one-byte references to it.
        def build(s, c):
            enc = hpack.Encoder()
            first = enc.encode(request_headers(self.host) + [("x-bomb", "b" * 4000)])
            h = hyperframe.frame.HeadersFrame(1, first)
            h.flags.add("END_STREAM")
            h.flags.add("END_HEADERS")
            out = c.data_to_send() + h.serialize()
            # The entry just added is dynamic index 62: 0x80|62 names it in one byte. The
            # request's own fields go unindexed (sensitive) so nothing evicts it first.
            refs = bytes([0x80 | 62]) * 8000
            block = enc.encode([(n, v, True) for n, v in request_headers(self.host)]) + refs
            h = hyperframe.frame.HeadersFrame(3, block)
            h.flags.add("END_STREAM")
            h.flags.add("END_HEADERS")
            return out + h.serialize()
        self.attack(build, raw=True)

    def test_more_streams_than_advertised(self):
        # Past SETTINGS_MAX_CONCURRENT_STREAMS (100): refused or a connection error.
        with WellBehaved(self.daemon.port, self.host) as good:
            s, c = h2_client(self.daemon.port)
            with s:
                enc = hpack.Encoder()
                out = b""
                for i in range(150):
                    h = hyperframe.frame.HeadersFrame(1 + 2 * i, enc.encode(
                        [(":method", "POST"), (":path", "/slow"), (":scheme", "http"),
                         (":authority", self.host)]))
                    h.flags.add("END_HEADERS")   # no END_STREAM: every stream stays open
                    out += h.serialize()
                send_raw(s, out)
                refused, code, t0, buf = 0, None, time.monotonic(), b""
                while time.monotonic() - t0 < 3:
                    try:
                        d = s.recv(65536)
                    except socket.timeout:
                        break
                    if not d:
                        break
                    buf += d
                    while len(buf) >= 9:
                        f, n = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
                        if len(buf) < 9 + n:
                            break
                        f.parse_body(memoryview(buf[9:9 + n]))
                        if isinstance(f, hyperframe.frame.RstStreamFrame):
                            refused += 1
                        if isinstance(f, hyperframe.frame.GoAwayFrame):
                            code = f.error_code
                        buf = buf[9 + n:]
            time.sleep(0.3)
        self.assertTrue(refused >= 50 or code is not None,
                        "50 streams past the limit were neither refused nor ended the connection "
                        "(%d resets, GOAWAY %r)" % (refused, code))
        good.check(self)

    def test_zero_window_client_bounded(self):
        # A client that never opens its window: its streams stall, the worker does not grow,
        # and others are served.
        with WellBehaved(self.daemon.port, self.host) as good:
            s, c = h2_client(self.daemon.port)
            with s:
                c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
                for _ in range(20):
                    sid = c.get_next_available_stream_id()
                    c.send_headers(sid, request_headers(self.host, "/big?bytes=4194304"),
                                   end_stream=True)
                send_raw(s, c.data_to_send())
                time.sleep(1.0)
            time.sleep(0.3)
        good.check(self)
        self.assertEqual(self.daemon.get(self.host, "/after-zero-window").status, 200)
