"""Integration tests of gRPC through haloyd (issue 12, points 3-5) with real
gRPC clients: python3-grpcio (generic handlers and raw-bytes messages, so no
protoc) over prior-knowledge h2c to the plain listener and over TLS with
the test CA, and python3-h2 where a test must see frames grpcio hides.

Backends are HTTP/1.1 until the HTTP/2 upstream lands, so the gRPC
"servers" behind haloyd here are HTTP/1.1 backends that answer with gRPC
framing in a chunked body and grpc-status in its trailers (GrpcH1Backend),
which haloyd turns into an HTTP/2 response with trailers.

Covered: haloyd's own failures as gRPC statuses (backend down: UNAVAILABLE
with its message, over h2c and TLS; unknown host: UNIMPLEMENTED; both with
HALOYD_GRPC_STATUS beside the HTTP status in the access entry; the HTTP
answer kept for HTTP/1.1 clients); grpc-timeout as a deadline (the
trailers-only DEADLINE_EXCEEDED within a bound, the header passed on
unchanged); gRPC calls not cut by a route's 1 s response timeout while a
plain request is (504), bounded by the idle timeout instead, and kept alive
by request bytes; TE: trailers reaching the backend from HTTP/1.1 and HTTP/2
clients; backend trailers (grpc-status, grpc-message) reaching HTTP/2 and
HTTP/1.1 clients unchanged.

GrpcService is the reusable grpcio test service (unary, server streaming,
client streaming, bidi; echo, sizes, sleeps, error statuses) as an h2c
backend on a high port. Until haloyd has an HTTP/2 upstream it is only
called directly (GrpcServiceTest), which proves the helper works.

Timed windows are only in tests whose subject is a timeout (T_LO..T_HI
around 1 s and DEADLINE_LO..DEADLINE_HI around 300 ms, with ASan margins).
"""
import concurrent.futures
import hashlib
import struct
import threading
import time
import unittest

import grpc

from . import backend as backend_mod
from . import harness
from .harness import unique_host, wait_for
from .test_datapath import access_lines, closed_port, exchange, http_req
from .test_http2 import H2Client
from .test_tls import HttpsTestCase

TIMEOUT = 10.0
T_LO, T_HI = 0.9, 6.0               # a 1 s timeout fires in this window (ASan margin)
DEADLINE_LO, DEADLINE_HI = 0.25, 3.0  # a 300 ms grpc-timeout expires in this window
MAX_MSG = 32 << 20                  # grpcio message limits: 16 MiB calls will fit
GRPC_CT = "application/grpc"
H1SVC = "/haloyd.test.Http1/"       # methods GrpcH1Backend serves
ECHO = "/haloyd.test.Echo/"         # methods GrpcService serves


def without_date(headers):
    """The headers but the one Date every response carries (RFC 9110 6.6.1), asserted there."""
    dates = [v for k, v in headers if k == "date"]
    assert len(dates) == 1 and dates[0].endswith(" GMT"), headers
    return [(k, v) for k, v in headers if k != "date"]


def grpc_frame(payload):
    """One length-prefixed gRPC message (uncompressed)."""
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def grpc_unframe(data):
    """The messages in a gRPC body."""
    out = []
    while data:
        if len(data) < 5:
            raise AssertionError("a truncated gRPC frame: %r" % data)
        n = struct.unpack(">I", data[1:5])[0]
        out.append(bytes(data[5:5 + n]))
        data = data[5 + n:]
    return out


# --- the reusable grpcio test service (an h2c backend)

class GrpcService:
    """A grpcio server on 127.0.0.1 (h2c) with the four call kinds under
    haloyd.test.Echo, messages as raw bytes:

      Unary         b"echo:DATA" -> DATA; b"size:N" -> N bytes; b"sleep:MS" ->
                    b"slept" after MS ms; b"fail:CODE:TEXT" -> status CODE
                    (a number) with details TEXT
      ServerStream  b"N:SIZE:MS" -> N messages of SIZE bytes, MS ms apart
      ClientStream  any messages -> b"COUNT BYTES SHA256HEX" of them all
      Bidi          each message echoed as it comes

    Every call is recorded (method, metadata, time remaining, peer) in
    .calls, so tests can check what a proxy passed on.
    """

    def __init__(self, workers=16):
        self.calls = []
        self._lock = threading.Lock()
        self.server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers),
            options=[("grpc.max_receive_message_length", MAX_MSG),
                     ("grpc.max_send_message_length", MAX_MSG)])
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "haloyd.test.Echo", {
                "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
                "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
                "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
                "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
            }),))
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % harness.free_port())
        if self.port == 0:
            raise AssertionError("grpcio could not bind its test port")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop(grace=None).wait(10)

    def _record(self, method, context):
        with self._lock:
            self.calls.append({"method": method, "metadata": list(context.invocation_metadata()),
                               "time_remaining": context.time_remaining(),
                               "peer": context.peer()})

    def _unary(self, request, context):
        self._record("Unary", context)
        op, _, arg = request.partition(b":")
        if op == b"echo":
            return arg
        if op == b"size":
            return b"s" * int(arg)
        if op == b"sleep":
            time.sleep(int(arg) / 1000.0)
            return b"slept"
        if op == b"fail":
            code, _, text = arg.partition(b":")
            status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
            context.abort(status, text.decode())
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown op %r" % op)

    def _server_stream(self, request, context):
        self._record("ServerStream", context)
        n, size, ms = (int(x) for x in request.split(b":"))
        for i in range(n):
            if i and ms:
                time.sleep(ms / 1000.0)
            yield (b"%d:" % i + b"m" * size)[:max(size, 1)]

    def _client_stream(self, request_iterator, context):
        self._record("ClientStream", context)
        count, total, h = 0, 0, hashlib.sha256()
        for m in request_iterator:
            count += 1
            total += len(m)
            h.update(m)
        return b"%d %d %s" % (count, total, h.hexdigest().encode())

    def _bidi(self, request_iterator, context):
        self._record("Bidi", context)
        for m in request_iterator:
            yield m


def echo_calls(channel):
    """The four call kinds of GrpcService on channel: callables taking bytes."""
    return {
        "Unary": channel.unary_unary(ECHO + "Unary"),
        "ServerStream": channel.unary_stream(ECHO + "ServerStream"),
        "ClientStream": channel.stream_unary(ECHO + "ClientStream"),
        "Bidi": channel.stream_stream(ECHO + "Bidi"),
    }


def grpc_options(authority=None):
    opts = [("grpc.max_receive_message_length", MAX_MSG),
            ("grpc.max_send_message_length", MAX_MSG),
            ("grpc.enable_retries", 0)]
    if authority is not None:
        opts.append(("grpc.default_authority", authority))
    return opts


class GrpcServiceTest(unittest.TestCase):
    """The helper service called directly, without haloyd."""

    @classmethod
    def setUpClass(cls):
        cls.svc = GrpcService().start()
        cls.channel = grpc.insecure_channel(cls.svc.addr, options=grpc_options())
        cls.call = echo_calls(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.svc.stop()

    def test_unary_echo_size_sleep(self):
        self.assertEqual(self.call["Unary"](b"echo:hello", timeout=TIMEOUT), b"hello")
        self.assertEqual(len(self.call["Unary"](b"size:%d" % (1 << 20), timeout=TIMEOUT)),
                         1 << 20)
        t0 = time.monotonic()
        self.assertEqual(self.call["Unary"](b"sleep:200", timeout=TIMEOUT), b"slept")
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_unary_error_status(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call["Unary"](b"fail:7:not for you", timeout=TIMEOUT)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(cm.exception.details(), "not for you")

    def test_deadline_expires(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.call["Unary"](b"sleep:3000", timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_server_stream(self):
        msgs = list(self.call["ServerStream"](b"5:1000:20", timeout=TIMEOUT))
        self.assertEqual(len(msgs), 5)
        self.assertEqual([m[:2] for m in msgs], [b"%d:" % i for i in range(5)])
        self.assertTrue(all(len(m) == 1000 for m in msgs))

    def test_client_stream(self):
        parts = [bytes([i]) * (i * 1000 + 1) for i in range(20)]
        got = self.call["ClientStream"](iter(parts), timeout=TIMEOUT)
        want = hashlib.sha256(b"".join(parts)).hexdigest()
        self.assertEqual(got, b"%d %d %s" % (len(parts), sum(map(len, parts)), want.encode()))

    def test_bidi_echo(self):
        parts = [b"m%d" % i * (i + 1) for i in range(50)]
        self.assertEqual(list(self.call["Bidi"](iter(parts), timeout=TIMEOUT)), parts)

    def test_calls_recorded_with_metadata(self):
        self.call["Unary"](b"echo:x", timeout=5, metadata=[("x-test", "rec")])
        rec = wait_for(lambda: [c for c in self.svc.calls
                                if ("x-test", "rec") in c["metadata"]],
                       TIMEOUT, "the call to be recorded")[0]
        self.assertEqual(rec["method"], "Unary")
        self.assertTrue(0 < rec["time_remaining"] <= 5.1, rec)  # the client's 5 s, as sent


# --- an HTTP/1.1 backend that speaks gRPC framing, for haloyd's HTTP/1.1 upstream

class _GrpcH1Handler(backend_mod._Handler):
    """backend.py's handler plus gRPC methods under /haloyd.test.Http1/:

      Hang      reads the request, never answers (until the backend stops)
      Drip      the head after 1.4 s, then a message every 0.4 s until 3 s,
                then trailers grpc-status 0
      Trailers  one message, then trailers grpc-status 7 and a grpc-message
                with percent-encoded bytes
      Count     one message: b"COUNT BYTES" of the request's messages
    """

    def _grpc_head(self):
        self._head(200, [("Content-Type", GRPC_CT), ("Transfer-Encoding", "chunked"),
                         ("Trailer", "grpc-status, grpc-message")])
        self.wfile.flush()

    def _grpc_end(self, status, message):
        self.wfile.write(b"0\r\ngrpc-status: %d\r\ngrpc-message: %s\r\n\r\n" % (status, message))
        self.wfile.flush()

    def k_hang(self, q, rec):
        self.server.backend.release.wait(30)
        self.close_connection = True

    def k_drip(self, q, rec):
        t0 = time.monotonic()
        time.sleep(1.4)
        self._grpc_head()
        i = 0
        while True:
            self._chunk(grpc_frame(b"drip %d %.3f" % (i, time.monotonic() - t0)))
            i += 1
            if time.monotonic() - t0 >= 3.0:
                break
            time.sleep(0.4)
        self._grpc_end(0, b"")

    def k_trailers(self, q, rec):
        self._grpc_head()
        self._chunk(grpc_frame(b"before the trailers"))
        self._grpc_end(7, b"denied%20here%21 %E2%9C%93")

    def k_count(self, q, rec):
        msgs = grpc_unframe(rec["body"])
        self._grpc_head()
        self._chunk(grpc_frame(b"%d %d" % (len(msgs), sum(map(len, msgs)))))
        self._grpc_end(0, b"")

    KNOBS = dict(backend_mod._Handler.KNOBS, **{
        H1SVC + "Hang": k_hang, H1SVC + "Drip": k_drip, H1SVC + "Trailers": k_trailers,
        H1SVC + "Count": k_count,
    })


class GrpcH1Backend(backend_mod.Backend):
    def __init__(self, name):
        super().__init__(name)
        self.release = threading.Event()  # ends every Hang
        self._server.RequestHandlerClass = _GrpcH1Handler

    def stop(self):
        self.release.set()
        super().stop()


# --- through haloyd

class GrpcProxyTest(HttpsTestCase):
    """gRPC clients through haloyd (plain listener: h2c prior knowledge; HTTPS: TLS h2)."""
    WORKERS = 2
    BACKEND = "grpc-h1"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gbe = GrpcH1Backend("g1").start()
        cls._backends.append(cls.gbe)

    def setUp(self):
        super().setUp()
        self.channels = []

    def tearDown(self):
        for ch in self.channels:
            ch.close()
        super().tearDown()

    # --- helpers

    def route(self, addr, label="grpc", *settings):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, addr)
        if settings:
            self.daemon.ctl_ok("route", "set", host, *settings)
        return host

    def h2c(self, host):
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.daemon.port,
                                   options=grpc_options(host))
        self.channels.append(ch)
        return ch

    def tls(self, host):
        with open(self.pki.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        ch = grpc.secure_channel("127.0.0.1:%d" % self.https_port, creds,
                                 options=grpc_options(host) +
                                 [("grpc.ssl_target_name_override", host)])
        self.channels.append(ch)
        return ch

    def rpc_error(self, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            r = fn(*args, **kw)
            if hasattr(r, "__iter__") and not isinstance(r, bytes):
                list(r)
        return cm.exception

    def access(self, host, mark):
        return wait_for(lambda: access_lines(self.daemon.log_text(mark), host), TIMEOUT,
                        "the access entry for %s" % host, self.daemon.log_tail)

    def h2_call(self, host, method, extra=(), body=b"", ctype=GRPC_CT, timeout=TIMEOUT):
        """A gRPC-shaped POST over python-h2 (prior knowledge): the finished stream."""
        c = H2Client(self.daemon.port)
        try:
            sid = c.request(host, method, method="POST",
                            extra=[("content-type", ctype), ("te", "trailers")] + list(extra),
                            body=grpc_frame(body))
            return c.response(sid, timeout=timeout)
        finally:
            c.close()

    # --- haloyd's own failures as gRPC statuses

    def test_backend_down_unavailable_h2c(self):
        s, addr = closed_port()
        self.addCleanup(s.close)
        host = self.route(addr, "down")
        mark = self.daemon.log_size()
        err = self.rpc_error(self.h2c(host).unary_unary(ECHO + "Unary"), b"echo:x",
                             timeout=TIMEOUT)
        self.assertEqual(err.code(), grpc.StatusCode.UNAVAILABLE, err)
        self.assertEqual(err.details(), "haloyd: no backend available")
        e = self.access(host, mark)[0]
        self.assertEqual((e["STATUS"], e.get("GRPC_STATUS"), e["PROTO"]),
                         ("502", "14", "HTTP/2.0"), e["_line"])

    def test_backend_down_unavailable_tls(self):
        s, addr = closed_port()
        self.addCleanup(s.close)
        host = self.route(addr, "down-tls")
        cert, key, _ = self.pki.leaf(host, [host])
        self.daemon.ctl_ok("cert", "import", host, "--cert", cert, "--key", key)
        err = self.rpc_error(self.tls(host).unary_unary(ECHO + "Unary"), b"echo:x",
                             timeout=TIMEOUT)
        self.assertEqual(err.code(), grpc.StatusCode.UNAVAILABLE, err)
        self.assertEqual(err.details(), "haloyd: no backend available")
        # The same call kinds that stream get the same status.
        err = self.rpc_error(self.tls(host).unary_stream(ECHO + "ServerStream"), b"1:1:0",
                             timeout=TIMEOUT)
        self.assertEqual((err.code(), err.details()),
                         (grpc.StatusCode.UNAVAILABLE, "haloyd: no backend available"))

    def test_unknown_host_unimplemented(self):
        host = unique_host("nowhere")
        mark = self.daemon.log_size()
        err = self.rpc_error(self.h2c(host).unary_unary(ECHO + "Unary"), b"echo:x",
                             timeout=TIMEOUT)
        self.assertEqual(err.code(), grpc.StatusCode.UNIMPLEMENTED, err)
        self.assertEqual(err.details(), "haloyd: no route for this host")
        e = self.access(host, mark)[0]
        self.assertEqual((e["STATUS"], e.get("GRPC_STATUS")), ("404", "12"), e["_line"])

    def test_trailers_only_frame(self):
        """The answer is one HEADERS frame with END_STREAM: :status 200 and the status."""
        s, addr = closed_port()
        self.addCleanup(s.close)
        host = self.route(addr, "frame")
        st = self.h2_call(host, ECHO + "Unary", body=b"echo:x")
        self.assertTrue(st.ended, st)
        self.assertEqual(without_date(st.headers), [(":status", "200"),
                                                    ("content-type", GRPC_CT),
                                                    ("grpc-status", "14"),
                                                    ("grpc-message", "haloyd: no backend available")])
        self.assertIsNone(st.trailers)
        self.assertEqual(bytes(st.data), b"")

    def test_http1_client_keeps_http_answer(self):
        """gRPC needs HTTP/2: an HTTP/1.1 client with a gRPC content-type gets the 502 page."""
        s, addr = closed_port()
        self.addCleanup(s.close)
        host = self.route(addr, "h1")
        mark = self.daemon.log_size()
        r = self.daemon.get(host, ECHO + "Unary", method="POST", body=grpc_frame(b"x"),
                            headers={"Content-Type": GRPC_CT, "TE": "trailers"})
        self.assertEqual(r.status, 502)
        self.assertIn("text/html", r.header("Content-Type"))
        self.assertIsNone(r.header("grpc-status"))
        e = self.access(host, mark)[0]
        self.assertEqual(e["STATUS"], "502")
        self.assertNotIn("GRPC_STATUS", e)

    # --- deadlines

    def test_grpc_timeout_deadline_exceeded(self):
        host = self.route(self.gbe.addr, "deadline")
        mark = self.daemon.log_size()
        t0 = time.monotonic()
        st = self.h2_call(host, H1SVC + "Hang", extra=[("grpc-timeout", "300m")], body=b"q")
        took = time.monotonic() - t0
        self.assertTrue(DEADLINE_LO <= took <= DEADLINE_HI,
                        "the 300 ms grpc-timeout expired after %.2f s" % took)
        self.assertEqual(without_date(st.headers), [(":status", "200"),
                                                    ("content-type", GRPC_CT),
                                                    ("grpc-status", "4"),
                                                    ("grpc-message", "haloyd: deadline exceeded")])
        rec = self.gbe.wait_request(H1SVC + "Hang")
        self.assertEqual(backend_mod.header(rec, "grpc-timeout"), ["300m"])
        self.assertEqual(backend_mod.header(rec, "TE"), ["trailers"])
        e = self.access(host, mark)[0]
        self.assertEqual((e["STATUS"], e.get("GRPC_STATUS")), ("504", "4"), e["_line"])

    def test_grpcio_deadline_within_bound(self):
        """A grpcio client's own 300 ms timeout: DEADLINE_EXCEEDED in time, whoever ends it."""
        host = self.route(self.gbe.addr, "deadline-io")
        t0 = time.monotonic()
        err = self.rpc_error(self.h2c(host).unary_unary(H1SVC + "Hang"), b"q", timeout=0.3)
        took = time.monotonic() - t0
        self.assertEqual(err.code(), grpc.StatusCode.DEADLINE_EXCEEDED, err)
        self.assertTrue(DEADLINE_LO <= took <= DEADLINE_HI, "took %.2f s" % took)
        # What grpcio sent as its deadline reached the backend as it was.
        rec = wait_for(lambda: [r for r in self.gbe.records(H1SVC + "Hang")
                                if any("grpc-python" in v
                                       for v in backend_mod.header(r, "User-Agent"))],
                       TIMEOUT, "grpcio's call at the backend")[0]
        timeouts = backend_mod.header(rec, "grpc-timeout")
        self.assertEqual(len(timeouts), 1, rec["headers"])
        self.assertRegex(timeouts[0], r"^[0-9]{1,8}[HMSmun]$")

    def test_invalid_grpc_timeout_ignored(self):
        """"300ms" is no grpc-timeout: no deadline; the header still passes unchanged."""
        host = self.route(self.gbe.addr, "badtimeout", "--idle-timeout", "1s")
        t0 = time.monotonic()
        st = self.h2_call(host, H1SVC + "Hang", extra=[("grpc-timeout", "300ms")], body=b"q")
        took = time.monotonic() - t0
        # The idle timeout ended it (1 s), not a 300 ms deadline.
        self.assertTrue(T_LO <= took <= T_HI, "took %.2f s" % took)
        self.assertEqual(st.header("grpc-status"), "4")
        recs = [r for r in self.gbe.records(H1SVC + "Hang")
                if backend_mod.header(r, "grpc-timeout") == ["300ms"]]
        self.assertEqual(len(recs), 1)

    # --- long streams: the idle timeout, not the response timeout

    def test_slow_stream_not_cut_for_grpc_but_504_for_plain(self):
        host = self.route(self.gbe.addr, "slow", "--response-timeout", "1s")
        t0 = time.monotonic()
        msgs = list(self.h2c(host).unary_stream(H1SVC + "Drip")(b"go", timeout=TIMEOUT))
        took = time.monotonic() - t0
        self.assertGreaterEqual(len(msgs), 4, msgs)
        self.assertTrue(all(m.startswith(b"drip ") for m in msgs), msgs)
        self.assertGreaterEqual(took, 2.9)
        # A plain request to the same backend: the 1 s response timeout cuts it.
        t0 = time.monotonic()
        r = self.daemon.get(host, H1SVC + "Drip", method="POST", body=b"plain",
                            headers={"Content-Type": "text/plain"}, timeout=TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504)
        self.assertTrue(T_LO <= took <= T_HI, "the 1 s response timeout fired after %.2f s"
                        % took)
        # And a plain HTTP/2 request too.
        st = self.h2_call(host, H1SVC + "Drip", ctype="text/plain")
        self.assertEqual(st.status, 504)

    def test_idle_timeout_still_bounds_grpc(self):
        host = self.route(self.gbe.addr, "idle", "--idle-timeout", "1s",
                          "--response-timeout", "60s")
        t0 = time.monotonic()
        err = self.rpc_error(self.h2c(host).unary_unary(H1SVC + "Hang"), b"q", timeout=TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual((err.code(), err.details()),
                         (grpc.StatusCode.DEADLINE_EXCEEDED, "haloyd: deadline exceeded"))
        self.assertTrue(T_LO <= took <= T_HI, "the 1 s idle timeout fired after %.2f s" % took)

    def test_client_stream_bytes_keep_call_alive(self):
        """Request messages every 0.3 s for 2.4 s, no response byte: idle and response
        timeouts of 1 s do not end the call."""
        host = self.route(self.gbe.addr, "upstream", "--idle-timeout", "1s",
                          "--response-timeout", "1s")

        def slow_messages():
            for i in range(8):
                if i:
                    time.sleep(0.3)
                yield b"part %d" % i
        t0 = time.monotonic()
        got = self.h2c(host).stream_unary(H1SVC + "Count")(slow_messages(), timeout=TIMEOUT)
        self.assertEqual(got, b"8 %d" % sum(len(b"part %d" % i) for i in range(8)))
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)

    # --- TE and trailers

    def test_te_trailers_reaches_backend(self):
        host = self.route(self.be.addr, "te")
        r = self.daemon.get(host, "/te-h1", headers={"TE": "trailers"})
        self.assertEqual(r.status, 200)
        self.assertEqual(backend_mod.header(self.be.wait_request("/te-h1"), "TE"), ["trailers"])
        # "TE: trailers, deflate" keeps only trailers (the rest is hop-by-hop).
        r = self.daemon.get(host, "/te-h1-more", headers={"TE": "trailers, deflate"})
        self.assertEqual(r.status, 200)
        self.assertEqual(backend_mod.header(self.be.wait_request("/te-h1-more"), "TE"),
                         ["trailers"])
        c = H2Client(self.daemon.port)
        try:
            st = c.get(host, "/te-h2", extra=[("te", "trailers")])
        finally:
            c.close()
        self.assertEqual(st.status, 200)
        self.assertEqual(backend_mod.header(self.be.wait_request("/te-h2"), "TE"), ["trailers"])

    def test_backend_trailers_to_h2_client_unchanged(self):
        host = self.route(self.gbe.addr, "trailers")
        st = self.h2_call(host, H1SVC + "Trailers", body=b"q")
        self.assertEqual(st.status, 200, st)
        self.assertEqual(st.header("content-type"), GRPC_CT)
        self.assertEqual(grpc_unframe(bytes(st.data)), [b"before the trailers"])
        self.assertEqual(st.trailers, [("grpc-status", "7"),
                                       ("grpc-message", "denied%20here%21 %E2%9C%93")])
        # grpcio reads them as the call's status.
        err = self.rpc_error(self.h2c(host).unary_unary(H1SVC + "Trailers"), b"q",
                             timeout=TIMEOUT)
        self.assertEqual(err.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertEqual(err.details(), "denied here! \u2713")

    def test_backend_trailers_to_h1_client_with_te(self):
        host = self.route(self.gbe.addr, "trailers-h1")
        r, c = exchange(self.daemon.port, http_req(
            "POST", H1SVC + "Trailers", host,
            [("TE", "trailers"), ("Content-Type", GRPC_CT), ("Content-Length", "6")],
            grpc_frame(b"q")), method="POST")
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(grpc_unframe(r.body), [b"before the trailers"])
        self.assertEqual(r.trailers, [("grpc-status", "7"),
                                      ("grpc-message", "denied%20here%21 %E2%9C%93")])


if __name__ == "__main__":
    unittest.main()
