#!/usr/bin/python3
"""A real HTTP/2 (h2c, prior knowledge) test backend on python3-h2, in the
style of backend.py: one thread per connection, every request recorded
(headers, body, trailers, the connection it came on), connections counted.

Knobs, by path:
  /echo               answers the request body, then the trailers
                      "x-echo-trailers: NAME=VALUE,..." (the request's) and
                      "grpc-status: 0"
  /trailers?status=N  status N (default 200), x-answer: from-h2, "body with
                      trailers\n", then trailers x-checksum: abc123 and
                      grpc-message: fine
  /slow?ms=N          answers after N ms (the connection serves on meanwhile)
  /headers            the request headers as a JSON list of [name, value]
  /big?bytes=N        N bytes of "b" with a content-length, as the windows allow
  /trailers-only      one HEADERS with END_STREAM: :status 200, content-type
                      application/grpc, grpc-status 5, grpc-message "not here"
  anything else       200 "h2 backend NAME\n" with a content-length

goaway_every = N: after the Nth request on a connection the backend sends
GOAWAY naming that request's stream as the last it processes; requests the
client had already sent on higher streams are not answered (the client must
retry them), those at or below it are, then the connection closes.

In-process:  b = H2Backend("a").start(); ... b.addr ... b.stop()
(unix_path=PATH: on a unix stream socket, mode 0777; addr is "unix:PATH")
"""
import json
import os
import select
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from . import listener

MAX_BODY = 16 << 20


class _Stream:
    def __init__(self, sid, headers):
        self.id = sid
        self.headers = headers
        self.body = bytearray()
        self.trailers = []
        self.due = None         # when to answer (monotonic)
        self.out = None         # (headers, body, trailers) being sent
        self.sent = 0


class _Conn:
    def __init__(self, backend, sock, conn_id):
        self.b = backend
        self.sock = sock
        self.id = conn_id
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(cfg)
        self.streams = {}
        self.requests = 0
        self.last_id = None     # set once GOAWAY went out
        self.max_seen = 0

    def run(self):
        self.h2.initiate_connection()
        self.h2.update_settings({
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.b.max_streams})
        self.flush()
        try:
            while not self.b.stopping:
                if self.last_id is not None and not self.pending():
                    return  # GOAWAY sent and everything it kept is answered
                r, _, _ = select.select([self.sock], [], [], self.wait_time())
                if r:
                    data = self.sock.recv(65536)
                    if not data:
                        return
                    for ev in self.h2.receive_data(data):
                        self.event(ev)
                self.answer_due()
                self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.sock.close()

    def flush(self):
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def pending(self):
        return [s for s in self.streams.values() if s.id <= self.last_id]

    def ignored(self, sid):
        return self.last_id is not None and sid > self.last_id

    def wait_time(self):
        dues = [s.due for s in self.streams.values() if s.due is not None]
        if any(s.out is not None for s in self.streams.values()):
            return 0.01
        return max(0.0, min(dues) - time.monotonic()) if dues else 0.2

    def event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            if self.last_id is None:
                self.max_seen = max(self.max_seen, ev.stream_id)
            self.streams[ev.stream_id] = _Stream(ev.stream_id, list(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            s = self.streams.get(ev.stream_id)
            if s is not None and len(s.body) + len(ev.data) <= MAX_BODY:
                s.body += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                s.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            s = self.streams.get(ev.stream_id)
            if s is not None:
                self.request_done(s)
        elif isinstance(ev, h2.events.StreamReset):
            self.b.note_reset(ev.stream_id, ev.error_code)
            self.streams.pop(ev.stream_id, None)

    def request_done(self, s):
        if self.ignored(s.id):
            return  # past our GOAWAY: never processed, the client retries it
        self.requests += 1
        path = dict(s.headers).get(":path", "/")
        self.b.add_record({"conn": self.id, "stream": s.id, "headers": s.headers,
                           "path": path, "body": bytes(s.body), "trailers": s.trailers,
                           "method": dict(s.headers).get(":method")})
        q = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
        s.due = time.monotonic() + int(q.get("ms", "0")) / 1000.0 \
            if path.startswith("/slow") else time.monotonic()
        if self.b.goaway_every and self.last_id is None and \
                self.requests % self.b.goaway_every == 0:
            self.goaway()

    def goaway(self):
        """GOAWAY naming the highest stream seen: later ones were not processed. Written
        past h2's state machine, which would refuse the frames still to come on the
        streams it keeps."""
        self.last_id = self.max_seen
        self.flush()
        self.sock.sendall(hyperframe.frame.GoAwayFrame(
            stream_id=0, last_stream_id=self.last_id, error_code=0).serialize())
        self.b.note_goaway(self.id, self.last_id)

    def response(self, s):
        path = dict(s.headers).get(":path", "/")
        hdrs = [(":status", "200"), ("x-backend", self.b.name)]
        if path.startswith("/echo"):
            ct = dict(s.headers).get("content-type", "application/octet-stream")
            tr = ",".join("%s=%s" % kv for kv in s.trailers)
            return (hdrs + [("content-type", ct)], bytes(s.body),
                    [("x-echo-trailers", tr), ("grpc-status", "0")])
        if path.startswith("/trailers-only"):
            return (hdrs + [("content-type", "application/grpc"), ("grpc-status", "5"),
                            ("grpc-message", "not here")], None, None)
        if path.startswith("/trailers"):
            q = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
            hdrs[0] = (":status", q.get("status", "200"))
            return (hdrs + [("x-answer", "from-h2")], b"body with trailers\n",
                    [("x-checksum", "abc123"), ("grpc-message", "fine")])
        if path.startswith("/headers"):
            body = json.dumps(s.headers).encode()
        elif path.startswith("/big"):
            q = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
            body = b"b" * min(int(q.get("bytes", "0")), 64 << 20)
        else:
            body = ("h2 backend %s\n" % self.b.name).encode()
        return hdrs + [("content-length", str(len(body)))], body, None

    def answer_due(self):
        now = time.monotonic()
        for s in list(self.streams.values()):
            if s.out is None and s.due is not None and s.due <= now:
                s.due = None
                s.out = self.response(s)
                self.h2.send_headers(s.id, s.out[0], end_stream=s.out[1] is None)
                if s.out[1] is None:
                    del self.streams[s.id]
                    continue
            if s.out is not None:
                self.send_some(s)

    def send_some(self, s):
        hdrs, body, trailers = s.out
        while s.sent < len(body):
            n = min(self.h2.local_flow_control_window(s.id), self.h2.max_outbound_frame_size,
                    len(body) - s.sent)
            if n <= 0:
                return
            self.h2.send_data(s.id, body[s.sent:s.sent + n])
            s.sent += n
        if trailers:
            self.h2.send_headers(s.id, trailers, end_stream=True)
        else:
            self.h2.end_stream(s.id)
        del self.streams[s.id]


class H2Backend:
    def __init__(self, name, max_streams=100, unix_path=None):
        self.name = name
        self.max_streams = max_streams
        self.goaway_every = 0
        self.stopping = False
        self.accepted = 0
        self.resets = []        # (stream id, error code) of RST_STREAMs received
        self.goaways = []       # (connection, last stream id) of GOAWAYs sent
        self._records = []
        self._lock = threading.Lock()
        self.unix_path = unix_path
        if unix_path is not None:
            # h2c on a unix socket any user may connect to (the tunnel hop's stand-in).
            self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.ls.bind(unix_path)
            os.chmod(unix_path, 0o777)
            self.ls.listen(128)
            self.port = None
            self.addr = "unix:" + unix_path
            return
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.stopping = True
        self.ls.close()
        if self.unix_path is not None:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                n = self.accepted
            if self.unix_path is None:
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_Conn(self, c, n).run, daemon=True).start()

    def add_record(self, rec):
        with self._lock:
            self._records.append(rec)

    def note_reset(self, sid, code):
        with self._lock:
            self.resets.append((sid, code))

    def note_goaway(self, conn, last_id):
        with self._lock:
            self.goaways.append((conn, last_id))

    def records(self, path=None):
        with self._lock:
            return [r for r in self._records if path is None or r["path"] == path]
