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
  anything else       200 "backend NAME\n"

In-process:  b = Backend("a"); b.start(); ... b.addr ... b.stop()
As a script: backend.py --name a [--port N]   (prints "listening PORT")
"""
import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 64 << 20  # what a request body may be before the backend refuses it
BLOCK = 64 << 10


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "haloyd-test-backend"
    timeout = 60  # an idle keep-alive connection is dropped after this

    # --- plumbing

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
        block = b"0123456789abcdef" * (BLOCK // 16)
        while n > 0:
            self.wfile.write(block[:min(n, BLOCK)])
            n -= min(n, BLOCK)

    def k_headers(self, q, rec):
        self._send(200, json.dumps(rec["headers"]).encode(), "application/json")

    KNOBS = {
        "/slow": k_slow, "/chunked": k_chunked, "/trailers": k_trailers, "/sse": k_sse,
        "/echo": k_echo, "/status": k_status, "/1xx": k_1xx,
        "/close-mid-body": k_close_mid_body, "/big": k_big, "/headers": k_headers,
    }

    def _serve(self):
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            self._send(400, b"bad request body\n", headers=[("Connection", "close")])
            return
        rec = self._record(body)
        knob = self.KNOBS.get(urlsplit(self.path).path)
        if knob is not None:
            knob(self, self._query(), rec)
        else:
            rec["t_reply"] = time.monotonic()
            self._send(200, self.server.backend.hello())
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class Backend:
    """One backend on 127.0.0.1, serving from a thread of this process."""

    def __init__(self, name, port=0, host="127.0.0.1"):
        self.name = name
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._records = []
        self._server = _Server((host, port), _Handler, bind_and_activate=True)
        self._server.backend = self
        self._thread = None
        self.host, self.port = self._server.server_address[:2]

    @property
    def addr(self):
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


def header(rec, name):
    """The values of header name in a record, in order (case-insensitive)."""
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


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
