#!/usr/bin/python3
"""A real HTTP/1.1 test backend for the integration suite.

Threaded, keep-alive, HTTP/1.1. Every answer names the backend (body
"backend NAME\n" on plain requests, header X-Backend: NAME on all), and
every request it saw is recorded (method, path, headers, body, times) so
tests can check what the proxy forwarded.

Knobs, by path (query parameters as shown):
  /slow?ms=N          answers after N ms
  /chunked?n=N        N chunks, Transfer-Encoding: chunked
  /trailers           a chunked body followed by trailer fields
  /sse?n=N&ms=M       text/event-stream, N events M ms apart, each flushed
  /echo               echoes the request body (Content-Length or chunked)
  /status?code=N      answers with status N
  /1xx                103 Early Hints, then 200
  /close-mid-body     announces 1000 bytes, sends 100, closes
  /big?bytes=N        streams N bytes with a Content-Length
  /headers            the request headers as a JSON list of [name, value]
  /sink               reads the body as it streams (any size), discards it and
                      answers JSON {"bytes": N, "crc32": C}
  /drip?n=N&ms=M      text/plain chunked, N chunks M ms apart, each flushed and
                      holding "chunk I T" (T = time.time() when sent)
  /then-close         a complete keep-alive answer, then the backend closes
  /close-next         a normal answer; the next request on the same connection
                      is read, recorded ("dropped") and the connection closed
  /drop-once?key=K    the first request for K is recorded and the connection
                      closed without an answer; later ones are answered
  /drop               every request is recorded and dropped like that
  /stall-mid-body?ms=N  announces 1000 bytes, sends 100, waits N ms, sends the rest
  /path?ms=N          answers the request path after N ms
  /page?bytes=N&type=T  N bytes of repetitive HTML/JSON-like text (compresses
                      well) as type T (default text/html); chunked=1 sends it
                      chunked; etag=, vary=, cc= (Cache-Control) and ce=
                      (Content-Encoding) add those headers as given; hex=1: the
                      body is random hex digits instead (compresses only 2x),
                      random.Random(N).randbytes(N // 2).hex()
  anything else       200 "backend NAME\n"

Backend(name, unix_path=PATH) listens on a unix stream socket instead (mode
0777, so workers running as another user connect); its addr is "unix:PATH".

Every record also holds "conn", the number of the backend connection it came
on (Backend.accepted counts accepted connections); /big records "sent" as
it goes.

TLSBackend is the same over TLS (a certificate and key given; ALPN
http/1.1); it records the server name each handshake sent (snis), the ALPN
protocol each connection agreed (alpns), whether it resumed a session
(resumed) and counts failed handshakes.

In-process:  b = Backend("a"); b.start(); ... b.addr ... b.stop()
As a script: backend.py --name a [--port N]   (prints "listening PORT")
"""
import argparse
import asyncio
import json
import os
import queue
import random
import select
import socket
import socketserver
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

try:
    from . import listener
except ImportError:  # run as a script (python3 backend.py ...)
    import listener

MAX_BODY = 64 << 20  # what a request body may be before the backend refuses it
BLOCK = 64 << 10


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "haloyd-test-backend"
    timeout = 60  # an idle keep-alive connection is dropped after this

    # --- plumbing

    def setup(self):
        super().setup()
        self.conn_id = self.server.backend.conn_opened()
        self.drop_next = False

    def log_message(self, fmt, *args):  # quiet: the tests read the records
        pass

    def _query(self):
        q = parse_qs(urlsplit(self.path).query)
        return {k: v[-1] for k, v in q.items()}

    def _int(self, q, key, default, lo=0, hi=1 << 40):
        try:
            v = int(q.get(key, default))
        except ValueError:
            v = default
        return max(lo, min(hi, v))

    def _read_chunked(self):
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("eof in chunk size")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise ValueError("body too large")
            body += self.rfile.read(size)
            self.rfile.readline(16)

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower().strip().endswith("chunked"):
            return self._read_chunked()
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def _record(self, body):
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": list(self.headers.items()),
            "body": body,
            "client": self.client_address,
            "t_start": time.monotonic(),
            "t_reply": None,
            "conn": getattr(self, "conn_id", 0),
        }
        self.server.backend.add_record(rec)
        return rec

    def _head(self, code, headers=(), length=None):
        self.send_response(code)
        self.send_header("X-Backend", self.server.backend.name)
        for k, v in headers:
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, code, body, ctype="text/plain", headers=()):
        if code in (204, 304) or code < 200:
            self._head(code, [("Content-Type", ctype)] + list(headers))
            return
        if self.command == "HEAD":
            self._head(code, [("Content-Type", ctype)] + list(headers), len(body))
            return
        self._head(code, [("Content-Type", ctype)] + list(headers), len(body))
        self.wfile.write(body)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    # --- knobs

    def k_slow(self, q, rec):
        time.sleep(self._int(q, "ms", 1000, 0, 600000) / 1000.0)
        rec["t_reply"] = time.monotonic()
        self._send(200, self.server.backend.hello())

    def k_chunked(self, q, rec):
        self._head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")])
        for i in range(self._int(q, "n", 3, 0, 100000)):
            self._chunk(b"chunk %d\n" % i)
        self.wfile.write(b"0\r\n\r\n")

    def k_trailers(self, q, rec):
        self._head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                         ("Trailer", "X-Checksum, X-Backend-Trailer")])
        self._chunk(b"body with trailers\n")
        name = self.server.backend.name.encode()
        self.wfile.write(b"0\r\nX-Checksum: abc123\r\nX-Backend-Trailer: " + name + b"\r\n\r\n")

    def k_sse(self, q, rec):
        n, ms = self._int(q, "n", 3, 0, 100000), self._int(q, "ms", 100, 0, 60000)
        self._head(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                         ("Transfer-Encoding", "chunked")])
        for i in range(n):
            if i:
                time.sleep(ms / 1000.0)
            self._chunk(b"id: %d\ndata: event %d %.6f\n\n" % (i, i, time.time()))
        self.wfile.write(b"0\r\n\r\n")

    def k_echo(self, q, rec):
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        self._send(200, rec["body"], ctype)

    def k_status(self, q, rec):
        code = self._int(q, "code", 200, 100, 599)
        self._send(code, b"status %d from backend %s\n" % (code, self.server.backend.name.encode()))

    def k_1xx(self, q, rec):
        self.send_response_only(103, "Early Hints")
        self.send_header("Link", "</style.css>; rel=preload; as=style")
        self.end_headers()
        self._send(200, self.server.backend.hello())

    def k_close_mid_body(self, q, rec):
        self._head(200, [("Content-Type", "application/octet-stream")], 1000)
        self.wfile.write(b"x" * 100)
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def k_big(self, q, rec):
        n = self._int(q, "bytes", 1 << 20, 0, 1 << 40)
        self._head(200, [("Content-Type", "application/octet-stream")], n)
        if self.command == "HEAD":
            return
        block = memoryview(b"0123456789abcdef" * (BLOCK // 16))
        rec["sent"] = 0
        while n > 0:
            k = min(n, BLOCK)
            self.wfile.write(block[:k])
            n -= k
            rec["sent"] += k

    def k_page(self, q, rec):
        n = self._int(q, "bytes", 100000, 0, 1 << 30)
        ctype = q.get("type", "text/html; charset=utf-8")
        unit = b'<div class="row">{"id": 12345, "name": "haloyd", "ok": true}</div>\n'
        body = (unit * (n // len(unit) + 1))[:n]
        if q.get("hex") == "1":
            body = random.Random(n).randbytes(n // 2).hex().encode()
        headers = [(name, q[key]) for key, name in (
            ("etag", "ETag"), ("vary", "Vary"), ("cc", "Cache-Control"), ("ce", "Content-Encoding"))
            if key in q]
        if q.get("chunked") != "1":
            self._send(200, body, ctype, headers)
            return
        self._head(200, [("Content-Type", ctype), ("Transfer-Encoding", "chunked")] + headers)
        for i in range(0, n, 10000):
            self._chunk(body[i:i + 10000])
        self.wfile.write(b"0\r\n\r\n")

    def k_headers(self, q, rec):
        self._send(200, json.dumps(rec["headers"]).encode(), "application/json")

    def k_drip(self, q, rec):
        n, ms = self._int(q, "n", 5, 0, 100000), self._int(q, "ms", 100, 0, 60000)
        self._head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")])
        for i in range(n):
            if i:
                time.sleep(ms / 1000.0)
            self._chunk(b"chunk %d %.6f\n" % (i, time.time()))
        self.wfile.write(b"0\r\n\r\n")

    def k_then_close(self, q, rec):
        self._send(200, self.server.backend.hello())
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def k_close_next(self, q, rec):
        self.drop_next = True
        self._send(200, self.server.backend.hello())

    def k_drop_once(self, q, rec):
        if self.server.backend.first_time(q.get("key", "")):
            self._drop(rec)
            return
        self._send(200, self.server.backend.hello())

    def k_drop(self, q, rec):
        self._drop(rec)

    def k_stall_mid_body(self, q, rec):
        self._head(200, [("Content-Type", "application/octet-stream")], 1000)
        self.wfile.write(b"x" * 100)
        self.wfile.flush()
        time.sleep(self._int(q, "ms", 5000, 0, 600000) / 1000.0)
        try:
            self.wfile.write(b"y" * 900)
        except OSError:
            self.close_connection = True

    def k_path(self, q, rec):
        time.sleep(self._int(q, "ms", 0, 0, 600000) / 1000.0)
        self._send(200, self.path.encode())

    def _drop(self, rec):
        """Closes the connection without a byte of answer."""
        rec["dropped"] = True
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- streaming knobs: they read the request body themselves

    def _read_stream(self, sink):
        """Passes the body to sink(memoryview) as it arrives; returns its size."""
        buf = bytearray(1 << 20)
        mv = memoryview(buf)
        total = 0
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower().strip().endswith("chunked"):
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += self._read_exact(size, mv, sink)
                self.rfile.readline(16)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self._read_exact(n, mv, sink)

    def _read_exact(self, n, mv, sink):
        got = 0
        while got < n:
            k = self.rfile.readinto1(mv[:min(n - got, len(mv))])
            if not k:
                raise ConnectionError("eof in body")
            sink(mv[:k])
            got += k
        return got

    def k_sink(self, q, rec):
        crc = [0]

        def sink(b):
            crc[0] = zlib.crc32(b, crc[0])
            rec["received"] += len(b)
        rec["received"] = 0
        try:
            n = self._read_stream(sink)
        except (ValueError, ConnectionError, OSError):
            self.close_connection = True
            return
        rec["t_reply"] = time.monotonic()
        self._send(200, json.dumps({"bytes": n, "crc32": crc[0]}).encode(), "application/json")

    STREAMING = {"/sink": k_sink}

    KNOBS = {
        "/slow": k_slow, "/chunked": k_chunked, "/trailers": k_trailers, "/sse": k_sse,
        "/echo": k_echo, "/status": k_status, "/1xx": k_1xx,
        "/close-mid-body": k_close_mid_body, "/big": k_big, "/headers": k_headers,
        "/drip": k_drip, "/then-close": k_then_close, "/close-next": k_close_next,
        "/drop-once": k_drop_once, "/drop": k_drop, "/stall-mid-body": k_stall_mid_body,
        "/path": k_path, "/page": k_page,
    }

    def _serve(self):
        stream = self.STREAMING.get(urlsplit(self.path).path)
        if stream is not None:
            stream(self, self._query(), self._record(None))
            self.wfile.flush()
            return
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            self._send(400, b"bad request body\n", headers=[("Connection", "close")])
            return
        rec = self._record(body)
        if self.drop_next:
            self._drop(rec)
            return
        knob = self.KNOBS.get(urlsplit(self.path).path)
        if knob is not None:
            knob(self, self._query(), rec)
        else:
            rec["t_reply"] = time.monotonic()
            self._send(200, self.server.backend.hello())
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class _Server(listener.PollAccept, ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # The proxy cutting a connection is what some tests are about: no traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _UnixServer(listener.PollAccept, socketserver.ThreadingMixIn,
                  socketserver.UnixStreamServer):
    """The same handler on a unix stream socket (a unix:/path backend)."""
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _TLSServer(_Server):
    """The handshake runs in the connection's own thread, so a client that
    aborts it costs only that thread."""

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            tls = self.tls_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.backend.handshake_failed()
            return
        try:
            self.backend.tls_done(tls.selected_alpn_protocol(), tls.session_reused)
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class Backend:
    """One backend on 127.0.0.1, serving from a thread of this process."""

    server_class = _Server

    def __init__(self, name, port=0, host="127.0.0.1", unix_path=None):
        self.name = name
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._records = []
        self._keys = set()
        self.accepted = 0  # connections accepted so far
        self.unix_path = unix_path
        if unix_path is not None:
            # Any user may connect: haloyd's workers run as another user than the tests.
            self._server = _UnixServer(unix_path, _Handler, bind_and_activate=True)
            os.chmod(unix_path, 0o777)
            self.host, self.port = None, None
        else:
            self._server = self.server_class((host, port), _Handler, bind_and_activate=True)
            self.host, self.port = self._server.server_address[:2]
        self._server.backend = self
        self._thread = None

    @property
    def addr(self):
        if self.unix_path is not None:
            return "unix:" + self.unix_path
        return "%s:%d" % (self.host, self.port)

    def hello(self):
        return ("backend %s\n" % self.name).encode()

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="backend-" + self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
        if self.unix_path is not None:
            try:
                os.unlink(self.unix_path)
            except OSError:
                pass

    def conn_opened(self):
        with self._lock:
            self.accepted += 1
            return self.accepted

    def first_time(self, key):
        """True the first time key is asked about."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def add_record(self, rec):
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()

    def records(self, path=None):
        """Requests seen so far (all, or those for exactly this path)."""
        with self._lock:
            return [r for r in self._records if path is None or r["path"] == path]

    def wait_request(self, path, timeout=10.0):
        """Waits until a request for path arrived; returns its record."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self._records:
                    if r["path"] == path:
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("backend %s saw no request for %s within %.1f s"
                                         % (self.name, path, timeout))
                self._cond.wait(left)

    def clear(self):
        with self._lock:
            self._records.clear()


async def websocket_echo_client(port, host, n, ssl_ctx=None):
    """Sends n messages of varied sizes (text and binary) to a WebSocketEcho
    through the proxy on port (wss with ssl_ctx), checks each echo, closes."""
    import websockets
    s = socket.create_connection(("127.0.0.1", port))
    mismatches = []
    tls = {} if ssl_ctx is None else {"ssl": ssl_ctx, "server_hostname": host}
    async with websockets.connect("%s://%s/ws-echo" % ("ws" if ssl_ctx is None else "wss", host),
                                  sock=s, compression=None, max_size=1 << 20, open_timeout=10,
                                  close_timeout=10, **tls) as ws:
        for i in range(n):
            size = (1, 100, 1000, 20000, 70000)[i % 5]
            msg = (("m%d " % i) * size)[:size]
            if i % 2:
                msg = msg.encode()
            await ws.send(msg)
            back = await asyncio.wait_for(ws.recv(), 10)
            if back != msg:
                mismatches.append(i)
        await ws.close()
        code = ws.close_code
    return {"mismatches": mismatches, "close_code": code}


class WebSocketEcho:
    """A python3-websockets server on 127.0.0.1 echoing every message, in its
    own thread and event loop. Records each connection's request path and
    headers and, once it ended, the close code it saw."""

    def __init__(self):
        import asyncio
        self._asyncio = asyncio
        self.loop = asyncio.new_event_loop()
        self.sessions = []  # {"path", "headers", "messages", "close_code"}
        self._lock = threading.Lock()
        self._server = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ws-echo", daemon=True)
        self.port = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    async def _echo(self, ws, path=None):
        sess = {"path": ws.path, "headers": list(ws.request_headers.raw_items()),
                "messages": 0, "close_code": None}
        with self._lock:
            self.sessions.append(sess)
        try:
            async for msg in ws:
                sess["messages"] += 1
                await ws.send(msg)
        except Exception:  # a broken connection ends the session; close_code tells
            pass
        sess["close_code"] = ws.close_code

    async def _start(self):
        import websockets
        self._server = await websockets.serve(self._echo, "127.0.0.1", 0, max_size=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    def _run(self):
        self._asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    def start(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the WebSocket echo server did not start within 10 s")
        return self

    def stop(self):
        async def shutdown():
            self._server.close()
            await self._server.wait_closed()
        if self._thread.is_alive():
            fut = self._asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
            try:
                fut.result(10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
        self.loop.close()


class TLSBackend(Backend):
    """A Backend over TLS with certfile/keyfile (PEM)."""

    server_class = _TLSServer

    def __init__(self, name, certfile, keyfile, port=0, host="127.0.0.1"):
        super().__init__(name, port, host)
        self.snis = []          # the server name of each handshake (None: none sent)
        self.alpns = []         # the ALPN protocol of each connection that got through
        self.resumed = []       # whether each such connection resumed a session
        self.failed_handshakes = 0
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.sni_callback = self._on_sni
        self._server.tls_ctx = ctx

    def _on_sni(self, sslobj, name, ctx):
        with self._lock:
            self.snis.append(name)

    def handshake_failed(self):
        with self._lock:
            self.failed_handshakes += 1

    def tls_done(self, alpn, resumed):
        with self._lock:
            self.alpns.append(alpn)
            self.resumed.append(resumed)


class Mute:
    """Accepts connections and never says a word (a TLS handshake hangs)."""

    def __init__(self):
        self.ls = listener.listen(64)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.conns = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.ls.close()
        for c in self.conns:
            c.close()


def header(rec, name):
    """The values of header name in a record, in order (case-insensitive)."""
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]



class Blackhole:
    """A listening socket that never accepts, its accept queue filled, so a
    connect to it hangs (the SYN is dropped) without needing any network."""

    def __init__(self):
        self.ls = listener.listen(0)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.fillers = []
        for _ in range(64):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(self.ls.getsockname())
            self.fillers.append(c)
            _, w, _ = select.select([], [c], [], 0.5)
            if not w:
                return  # this connect hangs: the queue is full
        raise AssertionError("could not fill the accept queue of a listen(0) socket")

    def close(self):
        for c in self.fillers:
            c.close()
        self.ls.close()


class UpgradeBackend:
    """A raw backend that answers any request head with 101 and then runs
    script(sock, leftover) on the connection in a thread; what a script
    returns is put on .results. With tls_ctx (a server SSLContext) it
    speaks TLS."""

    def __init__(self, script, tls_ctx=None):
        self.script = script
        self.tls_ctx = tls_ctx
        self.results = queue.Queue()
        self.ls = listener.listen(16)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.heads = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        data = b""
        try:
            if self.tls_ctx is not None:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            while b"\r\n\r\n" not in data:
                b = c.recv(65536)
                if not b:
                    return
                data += b
            head, rest = data.split(b"\r\n\r\n", 1)
            self.heads.append(head)
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: test-proto\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            self.results.put(self.script(c, rest))
        except Exception as e:  # reported through results
            self.results.put(e)
        finally:
            c.close()

    def result(self, timeout=15):
        try:
            r = self.results.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the upgrade backend's script did not end within %d s" % timeout)
        if isinstance(r, Exception):
            raise AssertionError("the upgrade backend failed: %r" % r)
        return r

    def close(self):
        self.ls.close()


def main():
    ap = argparse.ArgumentParser(description="haloyd integration-test backend")
    ap.add_argument("--name", default="b")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    b = Backend(a.name, a.port, a.host)
    print("listening %d" % b.port, flush=True)
    try:
        b._server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    b._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
