"""gRPC through haloyd to HTTP/2 backends (issue 12, points 3 and 4): the four
call kinds from a python3-grpcio client over prior-knowledge h2c and over TLS
h2, to a grpcio server spoken to as h2c (`--proto h2c`) and as h2 over TLS
(`--proto h2` with the test CA); deadlines, cancellation, error statuses,
16 MiB messages, long streams past the response timeout, and a backend whose
certificate the route's CA did not sign."""
import hashlib
import threading
import time

import grpc

from .harness import unique_host, wait_for
from .test_grpc import ECHO, MAX_MSG, TIMEOUT, GrpcService, echo_calls, grpc_options
from .test_tls import HttpsTestCase

BIG = 16 << 20


class CancelAwareService(GrpcService):
    """GrpcService whose server streams note when the client went away."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cancelled = threading.Event()
        self.sent = 0

    def _server_stream(self, request, context):
        self._record("ServerStream", context)
        n, size, ms = (int(x) for x in request.split(b":"))
        try:
            for i in range(n):
                if i and ms:
                    time.sleep(ms / 1000.0)
                if not context.is_active():
                    return
                self.sent = i + 1
                yield (b"%d:" % i + b"m" * size)[:max(size, 1)]
        finally:
            # A cancel that lands while a message is being sent ends the call
            # inside grpcio, which then closes this generator at its yield
            # instead of asking for the next message: both ways count.
            if self.sent < n:
                self.cancelled.set()


class GrpcBackendTest(HttpsTestCase):
    """grpcio client -> haloyd -> grpcio server over h2c or h2 with TLS."""
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.svc = CancelAwareService().start()
        # The same service behind TLS: a certificate of the test CA for its name.
        cls.tls_name = "grpc-backend.test"
        cert, key, _ = cls.pki.leaf(cls.tls_name, [cls.tls_name])
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        cls.tls_svc = CancelAwareService()
        port = cls.tls_svc.server.add_secure_port("127.0.0.1:0", creds)
        cls.tls_addr = "127.0.0.1:%d" % port
        cls.tls_svc.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.svc.stop()
            cls.tls_svc.stop()
        finally:
            super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.channels = []

    def tearDown(self):
        for ch in self.channels:
            ch.close()
        super().tearDown()

    # --- helpers

    def route(self, label, addr, *settings):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, addr, *settings)
        return host

    def h2c(self, host):
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.daemon.port, options=grpc_options(host))
        self.channels.append(ch)
        return echo_calls(ch)

    def tls(self, host):
        cert, key, _ = self.pki.leaf(host, [host])
        self.daemon.ctl_ok("cert", "import", host, "--cert", cert, "--key", key)
        with open(self.pki.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        ch = grpc.secure_channel("127.0.0.1:%d" % self.https_port, creds,
                                 options=grpc_options(host) +
                                 [("grpc.ssl_target_name_override", host)])
        self.channels.append(ch)
        return echo_calls(ch)

    def four_kinds(self, call):
        self.assertEqual(call["Unary"](b"echo:hello", timeout=TIMEOUT), b"hello")
        msgs = list(call["ServerStream"](b"5:1000:10", timeout=TIMEOUT))
        self.assertEqual([m[:2] for m in msgs], [b"%d:" % i for i in range(5)])
        self.assertTrue(all(len(m) == 1000 for m in msgs))
        parts = [bytes([i]) * (i * 1000 + 1) for i in range(20)]
        want = hashlib.sha256(b"".join(parts)).hexdigest().encode()
        self.assertEqual(call["ClientStream"](iter(parts), timeout=TIMEOUT),
                         b"%d %d %s" % (len(parts), sum(map(len, parts)), want))
        parts = [b"m%d" % i * (i + 1) for i in range(50)]
        self.assertEqual(list(call["Bidi"](iter(parts), timeout=TIMEOUT)), parts)

    # --- the call kinds, every way in and out

    def test_four_call_kinds_h2c_client_h2c_backend(self):
        self.four_kinds(self.h2c(self.route("g-h2c", self.svc.addr, "--proto", "h2c")))

    def test_four_call_kinds_tls_client_h2c_backend(self):
        self.four_kinds(self.tls(self.route("g-tls", self.svc.addr, "--proto", "h2c")))

    def test_four_call_kinds_tls_backend_with_route_ca(self):
        host = self.route("g-h2", self.tls_addr, "--proto", "h2", "--backend-ca", self.pki.ca,
                          "--backend-sni", self.tls_name)
        self.four_kinds(self.h2c(host))
        self.four_kinds(self.tls(host))

    def test_tls_backend_signed_by_another_ca_refused(self):
        # Its certificate chains to the test CA; the route trusts only the system roots.
        host = self.route("g-h2-noca", self.tls_addr, "--proto", "h2",
                          "--backend-sni", self.tls_name)
        mark = self.daemon.log_size()
        with self.assertRaises(grpc.RpcError) as cm:
            self.h2c(host)["Unary"](b"echo:x", timeout=TIMEOUT)
        # haloyd's own gRPC answer, not an HTTP error page the client has to guess from.
        self.assertEqual((cm.exception.code(), cm.exception.details()),
                         (grpc.StatusCode.UNAVAILABLE, "haloyd: no backend available"))
        wait_for(lambda: "certificate verify failed" in self.daemon.log_text(mark), TIMEOUT,
                 "the verification failure in the log", self.daemon.log_tail)

    # --- statuses, deadlines, cancellation, sizes, long streams

    def test_error_status_and_message_unchanged(self):
        call = self.h2c(self.route("g-err", self.svc.addr, "--proto", "h2c"))
        with self.assertRaises(grpc.RpcError) as cm:
            call["Unary"](b"fail:7:not for you", timeout=TIMEOUT)
        self.assertEqual((cm.exception.code(), cm.exception.details()),
                         (grpc.StatusCode.PERMISSION_DENIED, "not for you"))

    def test_deadline_passes_and_expires(self):
        call = self.h2c(self.route("g-dl", self.svc.addr, "--proto", "h2c"))
        n = len(self.svc.calls)
        call["Unary"](b"echo:x", timeout=5)
        rec = self.svc.calls[n]
        self.assertTrue(3.0 < rec["time_remaining"] <= 5.1, rec)  # grpc-timeout reached it
        t0 = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            call["Unary"](b"sleep:3000", timeout=0.3)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_client_cancel_reaches_backend(self):
        call = self.h2c(self.route("g-cancel", self.svc.addr, "--proto", "h2c"))
        self.svc.cancelled.clear()
        it = call["ServerStream"](b"1000:10:50", timeout=30)
        self.assertEqual(next(it)[:2], b"0:")
        self.assertEqual(next(it)[:2], b"1:")
        it.cancel()
        wait_for(self.svc.cancelled.is_set, TIMEOUT, "the backend to see the cancel")
        self.assertLess(self.svc.sent, 200)

    def test_16_mib_messages_both_ways(self):
        call = self.h2c(self.route("g-big", self.svc.addr, "--proto", "h2c"))
        self.assertEqual(len(call["Unary"](b"size:%d" % BIG, timeout=60)), BIG)
        payload = b"echo:" + bytes(range(256)) * (BIG // 256)
        self.assertEqual(call["Unary"](payload, timeout=60), payload[5:])
        self.assertLess(BIG, MAX_MSG)

    def test_long_stream_outlives_response_timeout(self):
        host = self.route("g-long", self.svc.addr, "--proto", "h2c")
        self.daemon.ctl_ok("route", "set", host, "--response-timeout", "1s")
        t0 = time.monotonic()
        msgs = list(self.h2c(host)["ServerStream"](b"6:10:400", timeout=TIMEOUT))
        self.assertEqual(len(msgs), 6)
        self.assertGreater(time.monotonic() - t0, 1.5)
