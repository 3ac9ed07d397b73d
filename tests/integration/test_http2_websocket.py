"""Integration tests of WebSocket over HTTP/2 (RFC 8441, issue 11 point 7):
an HTTP/2 client's extended CONNECT (:protocol websocket) reaches an
HTTP/1.1 WebSocket backend (python3-websockets) as an Upgrade, and frames
flow both ways through the exchange's upgrade mode, with the close handshake
and END_STREAM at the end.
"""
import os
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

from .backend import WebSocketEcho
from .harness import DaemonTestCase, unique_host, wait_for

T = 10.0


def ws_frame(opcode, payload):
    """A client frame: FIN, masked (RFC 6455 5.3)."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(buf):
    """One unmasked server frame from buf: (opcode, payload, rest) or None."""
    if len(buf) < 2:
        return None
    opcode, n, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < off + n:
        return None
    return opcode, buf[off:off + n], buf[off + n:]


def raw_status(s, sid, limit=T):
    """The :status of the response HEADERS on stream sid, read as raw frames."""
    import hpack
    import hyperframe.frame
    dec, buf, t0 = hpack.Decoder(), b"", time.monotonic()
    while time.monotonic() - t0 < limit:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
        while len(buf) >= 9:
            f, n = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + n:
                break
            f.parse_body(memoryview(buf[9:9 + n]))
            buf = buf[9 + n:]
            if isinstance(f, hyperframe.frame.HeadersFrame) and f.stream_id == sid:
                return dict(dec.decode(f.data)).get(":status")
    return None


class H2WebSocket:
    def __init__(self, port, host):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=T)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                      header_encoding="utf-8"))
        self.c.initiate_connection()
        self.s.sendall(self.c.data_to_send())
        self.host, self.data, self.ended, self.status, self.sid = host, b"", False, None, None
        self.enable_connect = None

    def pump(self, until, limit=T):
        t0 = time.monotonic()
        while not until() and time.monotonic() - t0 < limit:
            d = self.s.recv(65536)
            if not d:
                break
            for e in self.c.receive_data(d):
                if isinstance(e, h2.events.RemoteSettingsChanged):
                    v = e.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    if v is not None:
                        self.enable_connect = v.new_value
                elif isinstance(e, h2.events.ResponseReceived):
                    self.status = dict(e.headers)[":status"]
                elif isinstance(e, h2.events.DataReceived):
                    self.data += e.data
                    self.c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                elif isinstance(e, h2.events.StreamEnded):
                    self.ended = True
            self.s.sendall(self.c.data_to_send())
        return until()

    def connect(self, path="/ws-echo"):
        self.pump(lambda: self.enable_connect is not None)
        self.sid = self.c.get_next_available_stream_id()
        self.c.send_headers(self.sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                       (":scheme", "http"), (":path", path),
                                       (":authority", self.host),
                                       ("sec-websocket-version", "13")])
        self.s.sendall(self.c.data_to_send())
        self.pump(lambda: self.status is not None)

    def send(self, data, end=False):
        """DATA in frames the peer's window and frame size allow, waiting for WINDOW_UPDATE."""
        while True:
            n = min(len(data), self.c.max_outbound_frame_size,
                    self.c.local_flow_control_window(self.sid))
            if data and n == 0:
                if not self.pump(lambda: self.c.local_flow_control_window(self.sid) > 0):
                    raise AssertionError("the proxy never opened its window")
                continue
            chunk, data = data[:n], data[n:]
            self.c.send_data(self.sid, chunk, end_stream=end and not data)
            self.s.sendall(self.c.data_to_send())
            if not data:
                return

    def recv_frame(self):
        got = []

        def one():
            f = ws_parse(self.data)
            if f is not None:
                got.append(f[:2])
                self.data = f[2]
            return bool(got)
        self.pump(one)
        return got[0] if got else None


class Http2WebSocketTest(DaemonTestCase):
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ws = WebSocketEcho().start()
        cls.host = unique_host("h2ws")
        cls.daemon.ctl_ok("route", "add", cls.host, cls.ws.addr)

    @classmethod
    def tearDownClass(cls):
        cls.ws.stop()
        super().tearDownClass()

    def test_settings_offer_extended_connect(self):
        w = H2WebSocket(self.daemon.port, self.host)
        with w.s:
            self.assertTrue(w.pump(lambda: w.enable_connect is not None))
        self.assertEqual(w.enable_connect, 1, "SETTINGS_ENABLE_CONNECT_PROTOCOL")

    def test_echo_over_http2(self):
        w = H2WebSocket(self.daemon.port, self.host)
        with w.s:
            w.connect()
            self.assertEqual(w.status, "200", "RFC 8441: the upgrade is a 200 on the stream")
            for i, size in enumerate((5, 200, 70000)):
                msg = bytes((i + j) % 256 for j in range(size))
                op = 0x2 if i else 0x1
                payload = b"hello" if i == 0 else msg
                w.send(ws_frame(op, payload))
                f = w.recv_frame()
                self.assertEqual(f, (op, payload), "echo of message %d" % i)
            # The close handshake, then END_STREAM both ways.
            w.send(ws_frame(0x8, struct.pack("!H", 1000)))
            f = w.recv_frame()
            self.assertEqual(f[0], 0x8)
            self.assertEqual(struct.unpack("!H", f[1][:2])[0], 1000)
            w.send(b"", end=True)
            self.assertTrue(w.pump(lambda: w.ended), "the stream ends after the close")
        sess = self.ws.sessions[-1]
        self.assertEqual(sess["messages"], 3)
        self.assertEqual(sess["path"], "/ws-echo")
        names = {k.lower() for k, _ in sess["headers"]}
        self.assertIn("sec-websocket-key", names, "the backend got a real WebSocket handshake")
        self.assertIn("x-forwarded-for", names)
        # The backend's handler notes the close code as it finishes, just after our END_STREAM.
        wait_for(lambda: sess["close_code"] is not None, 5, "the backend's close code")
        self.assertEqual(sess["close_code"], 1000)

    def test_plain_connect_refused(self):
        # CONNECT without :protocol is not a tunnel we offer: 501, the connection lives on.
        w = H2WebSocket(self.daemon.port, self.host)
        with w.s:
            w.pump(lambda: w.enable_connect is not None)
            sid = w.c.get_next_available_stream_id()
            # h2 (the library) refuses to build this request; hpack and a raw frame do.
            import hpack
            import hyperframe.frame
            f = hyperframe.frame.HeadersFrame(sid, hpack.Encoder().encode(
                [(":method", "CONNECT"), (":authority", self.host)]))
            f.flags.add("END_HEADERS")
            f.flags.add("END_STREAM")
            w.s.sendall(f.serialize())
            w.c = None
            w.status = raw_status(w.s, sid)
        self.assertEqual(w.status, "501")
