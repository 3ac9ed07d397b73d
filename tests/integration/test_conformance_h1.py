"""RFC 9112 and RFC 9110 requirements on a server, a gateway and an
intermediary, one test per requirement, named after its section
(test_rfc9112_6_3_... is RFC 9112 section 6.3). tests/conformance/http1.md
is the table: section, requirement, test, result, and the requirements we
deliberately do not follow, with why. Requirements that older test files
already prove are listed there with their test's name, not repeated here.

Real haloyd, real sockets: a raw client sends the exact bytes, and a raw
backend (ScriptBackend) records the exact bytes it got and answers with
exact bytes, so a test sees both what reaches a backend and what a client
receives. "Refused" means a 4xx answer, the connection closed, and nothing
reaching the backend.
"""
import re
import socket
import threading
import unittest

from . import listener
from .harness import DaemonTestCase, HTTP_TIMEOUT, wait_for
from .test_datapath import Conn, RouteMixin, exchange, http_req

OK = b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 3\r\n\r\nok\n"


def _body_length(head):
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    return int(m.group(1)) if m else 0


class ScriptBackend:
    """A raw HTTP/1.1 backend: records every request head (and its
    Content-Length body) and answers each with answer(head) -> bytes; an
    answer ending in CLOSE closes the connection after it."""

    CLOSE = b"<close>"

    def __init__(self, answer=lambda head: OK):
        self.answer = answer
        self.ls = listener.listen(64)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self._lock = threading.Lock()
        self.heads = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = listener.accept(self.ls)
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                head, buf = buf.split(b"\r\n\r\n", 1)
                if re.search(rb"\r\ntransfer-encoding:[^\r]*chunked", head, re.I):
                    while not (buf.startswith(b"0\r\n\r\n") or b"\r\n0\r\n\r\n" in buf):
                        b = c.recv(65536)
                        if not b:
                            return
                        buf += b
                    n = buf.find(b"0\r\n\r\n") if buf.startswith(b"0\r\n") else \
                        buf.find(b"\r\n0\r\n\r\n") + 2
                    n += 5
                else:
                    n = _body_length(head)
                while len(buf) < n:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                body, buf = buf[:n], buf[n:]
                with self._lock:
                    self.heads.append((head + b"\r\n\r\n", body))
                out = self.answer(head)
                close = out.endswith(self.CLOSE)
                c.sendall(out[:-len(self.CLOSE)] if close else out)
                if close:
                    return
        except OSError:
            pass
        finally:
            c.close()

    def requests(self):
        with self._lock:
            return list(self.heads)

    def header_values(self, i, name):
        head = self.requests()[i][0].decode("latin-1")
        return [v.strip() for k, v in re.findall(r"\r\n([^:\r\n]+):([^\r\n]*)", head)
                if k.lower() == name.lower()]

    def close(self):
        self.ls.close()


class ConformanceTest(RouteMixin, DaemonTestCase):
    WORKERS = 2

    def script(self, answer=lambda head: OK):
        be = ScriptBackend(answer)
        self.addCleanup(be.close)
        return be, self.route(be.addr, label="rfc")

    def refused(self, raw, status=400, close=True):
        """Sends raw: asserts one answer with status (then the close, when
        close) and that nothing reached the backend; returns the answer."""
        be, host = self.script()
        c = Conn(self.daemon.port)
        try:
            c.send(raw.replace(b"HOST", host.encode()))
            if close:
                _, data = c.wait_closed(10)
            else:
                r = c.read_response()
                data = b"%s %d " % (r.version.encode(), r.status)
        finally:
            c.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 %d " % status), "answer: %r" % data[:300])
        self.assertEqual(data.count(b"HTTP/1."), 1, "more than one answer: %r" % data[:600])
        self.assertEqual(be.requests(), [], "the request reached the backend")
        return data

    def served(self, raw, answer=lambda head: OK, method="GET"):
        """Sends raw to a fresh route (HOST in raw is replaced by its name);
        returns (client's response, backend, Conn)."""
        be, host = self.script(answer)
        r, c = exchange(self.daemon.port, raw.replace(b"HOST", host.encode()), method)
        self.addCleanup(c.close)
        return r, be, c

    # --- RFC 9112 §2: message format

    def test_rfc9112_2_2_empty_line_before_request_line_ignored(self):
        r, be, _ = self.served(b"\r\nGET /x HTTP/1.1\r\nHost: HOST\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertTrue(be.requests()[0][0].startswith(b"GET /x HTTP/1.1\r\n"))

    def test_rfc9112_2_2_whitespace_before_first_field_refused(self):
        self.refused(b"GET / HTTP/1.1\r\n Host: HOST\r\n\r\n")
        self.refused(b"GET / HTTP/1.1\r\n\tX-A: 1\r\nHost: HOST\r\n\r\n")

    def test_rfc9112_2_3_unsupported_major_version_505(self):
        self.refused(b"GET / HTTP/2.0\r\nHost: HOST\r\n\r\n", 505)
        self.refused(b"GET / HTTP/3.1\r\nHost: HOST\r\n\r\n", 505)

    def test_rfc9112_2_3_version_syntax_refused(self):
        for line in (b"GET / HTTP/1.10", b"GET / HTTP/01.1", b"GET / http/1.1", b"GET / HTTP/1"):
            with self.subTest(line=line):
                self.refused(line + b"\r\nHost: HOST\r\n\r\n")

    def test_rfc9110_2_5_higher_minor_version_served_as_1_1(self):
        r, be, _ = self.served(b"GET /m HTTP/1.2\r\nHost: HOST\r\n\r\n")
        self.assertEqual((r.version, r.status), ("HTTP/1.1", 200))

    def test_rfc9110_2_5_response_version_is_1_1_for_http10(self):
        r, be, _ = self.served(b"GET /v HTTP/1.0\r\nHost: HOST\r\n\r\n")
        self.assertEqual((r.version, r.status), ("HTTP/1.1", 200))

    # --- RFC 9112 §3: request line and target

    def test_rfc9112_3_invalid_request_line_refused(self):
        for line in (b"GET /", b"GET / HTTP/1.1 x", b"G(T / HTTP/1.1",
                     b" GET / HTTP/1.1", b"GET / HTTP/1.1 "):
            with self.subTest(line=line):
                self.refused(line + b"\r\nHost: HOST\r\n\r\n")

    def test_rfc9110_9_1_unknown_method_501(self):
        self.refused(b"FROBNICATE / HTTP/1.1\r\nHost: HOST\r\n\r\n", 501)

    def test_rfc9112_3_long_method_501(self):
        self.refused(b"X" * 100 + b" / HTTP/1.1\r\nHost: HOST\r\n\r\n", 501)

    def test_rfc9112_3_long_target_414(self):
        self.refused(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: HOST\r\n\r\n", 414)

    def test_rfc9112_3_2_host_missing_400(self):
        self.refused(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n")

    def test_rfc9112_3_2_two_hosts_400(self):
        self.refused(b"GET / HTTP/1.1\r\nHost: HOST\r\nHost: HOST\r\n\r\n")

    def test_rfc9112_3_2_invalid_host_400(self):
        for v in (b"HOST extra", b"user@HOST", b"HOST/path", b"HOST:port", b"HOST:99999"):
            with self.subTest(host=v):
                self.refused(b"GET / HTTP/1.1\r\nHost: " + v + b"\r\n\r\n")

    def test_rfc9112_3_2_1_origin_form_starts_with_slash(self):
        self.refused(b"GET x/y HTTP/1.1\r\nHost: HOST\r\n\r\n")

    def test_rfc9112_3_2_2_absolute_form_sent_as_origin_form(self):
        r, be, _ = self.served(b"GET http://HOST/abs?q=1 HTTP/1.1\r\nHost: HOST\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertTrue(be.requests()[0][0].startswith(b"GET /abs?q=1 HTTP/1.1\r\n"),
                        be.requests()[0][0][:100])

    def test_rfc9112_3_2_3_authority_form_only_for_connect(self):
        self.refused(b"GET HOST:80 HTTP/1.1\r\nHost: HOST\r\n\r\n")

    def test_rfc9112_3_2_4_asterisk_form_only_for_options(self):
        self.refused(b"GET * HTTP/1.1\r\nHost: HOST\r\n\r\n")

    def test_rfc9110_9_3_6_connect_not_forwarded(self):
        """Deliberate: a reverse proxy is no forward proxy: 501, not a tunnel."""
        self.refused(b"CONNECT HOST:443 HTTP/1.1\r\nHost: HOST:443\r\n\r\n", 501, close=False)

    # --- RFC 9112 §5: field syntax

    def test_rfc9110_5_1_field_names_case_insensitive(self):
        r, be, _ = self.served(b"GET /c HTTP/1.1\r\nhOsT: HOST\r\n\r\n")
        self.assertEqual(r.status, 200)

    def test_rfc9110_5_6_2_field_name_not_a_token_refused(self):
        for name in (b"X@Y", b"X Y", b"X(Y)", b"", b"X\"Y"):
            with self.subTest(name=name):
                self.refused(b"GET / HTTP/1.1\r\nHost: HOST\r\n" + name + b": 1\r\n\r\n")

    def test_rfc9110_5_3_field_line_order_kept(self):
        r, be, _ = self.served(b"GET /o HTTP/1.1\r\nHost: HOST\r\nX-M: a\r\nX-O: z\r\n"
                               b"X-M: b\r\nX-M: c\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(be.header_values(0, "X-M"), ["a", "b", "c"])

    def test_rfc9112_5_1_whitespace_before_colon_in_response(self):
        """A proxy MUST remove it before forwarding (or refuse the response)."""
        r, be, _ = self.served(b"GET /w HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\nX-Ws : v\r\nContent-Length: 3\r\n\r\nok\n")
        if r.status == 200:
            self.assertEqual(r.header("X-Ws"), "v")
        else:
            self.assertEqual(r.status, 502)

    def test_rfc9112_5_2_obs_fold_in_response(self):
        """A proxy MUST replace obs-fold with SP or answer 502."""
        r, be, _ = self.served(b"GET /f HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\nContent-Length: 3\r\n\r\nok\n")
        if r.status == 200:
            self.assertEqual(re.sub(r"\s+", " ", r.header("X-F")), "a b")
        else:
            self.assertEqual(r.status, 502)

    def test_rfc9110_5_5_cr_lf_nul_in_response_value_refused(self):
        for bad in (b"a\rb", b"a\x00b"):
            with self.subTest(value=bad):
                r, be, _ = self.served(b"GET /n HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h, bad=bad:
                                       b"HTTP/1.1 200 OK\r\nX-N: " + bad +
                                       b"\r\nContent-Length: 3\r\n\r\nok\n")
                self.assertEqual(r.status, 502)

    # --- RFC 9112 §6: message body framing

    def test_rfc9112_6_1_transfer_encoding_in_http10_request_refused(self):
        self.refused(b"POST / HTTP/1.0\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"0\r\n\r\n")

    def test_rfc9112_6_1_no_chunked_response_to_http10(self):
        def chunked(h):
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n0\r\n\r\n")
        r, be, c = self.served(b"GET /t HTTP/1.0\r\nHost: HOST\r\n\r\n", chunked)
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(r.body, b"hello")

    def test_rfc9112_6_1_unknown_transfer_coding_501(self):
        self.refused(b"POST / HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: foo, chunked\r\n\r\n"
                     b"0\r\n\r\n", 501)

    def test_rfc9112_6_1_no_transfer_encoding_in_204(self):
        r, be, _ = self.served(b"GET /e HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("Transfer-Encoding"))

    def test_rfc9112_6_3_response_with_te_and_cl(self):
        """An intermediary that forwards it MUST remove the Content-Length first."""
        r, be, _ = self.served(b"GET /b HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        if r.status == 200:
            self.assertIsNone(r.header("Content-Length"))
            self.assertEqual(r.body, b"hello")
        else:
            self.assertEqual(r.status, 502)

    def test_rfc9112_6_3_invalid_content_length_in_response_502(self):
        for cl in (b"abc", b"5, 6", b"-1", b"+5"):
            with self.subTest(cl=cl):
                r, be, _ = self.served(b"GET /l HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h, cl=cl:
                                       b"HTTP/1.1 200 OK\r\nContent-Length: " + cl +
                                       b"\r\n\r\nhello")
                self.assertEqual(r.status, 502)

    def test_rfc9112_6_3_request_without_length_has_no_body(self):
        be, host = self.script()
        c = Conn(self.daemon.port)
        self.addCleanup(c.close)
        c.send(b"POST /a HTTP/1.1\r\nHost: %s\r\n\r\nGET /b HTTP/1.1\r\nHost: %s\r\n\r\n"
               % (host.encode(), host.encode()))
        self.assertEqual(c.read_response().status, 200)
        self.assertEqual(c.read_response().status, 200)
        got = [h.split(b"\r\n", 1)[0] for h, _ in be.requests()]
        self.assertEqual(got, [b"POST /a HTTP/1.1", b"GET /b HTTP/1.1"])

    def test_rfc9112_6_3_response_shorter_than_content_length_closes(self):
        """The message is incomplete: the client must not see it complete."""
        be, host = self.script(lambda h: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                               b"0123456789" + ScriptBackend.CLOSE)
        c = Conn(self.daemon.port)
        self.addCleanup(c.close)
        c.send(http_req("GET", "/s", host))
        r = c.read_head()
        self.assertEqual(r.header("Content-Length"), "100")
        _, rest = c.wait_closed(10)
        self.assertLess(len(rest), 100)

    def test_rfc9112_6_3_close_delimited_response_forwarded(self):
        r, be, c = self.served(b"GET /cd HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\n\r\nuntil close" + ScriptBackend.CLOSE)
        self.assertEqual((r.status, r.body), (200, b"until close"))

    # --- RFC 9112 §7: chunked coding

    def test_rfc9112_7_1_1_chunk_extensions_ignored(self):
        r, be, _ = self.served(b"POST /x HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n5;name=value;n2=\"q\"\r\nhello\r\n0;last\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertIn(b"hello", be.requests()[0][1])

    def test_rfc9112_7_1_1_chunk_extension_length_bounded(self):
        self.refused(b"POST /x HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;" + b"e" * 20000 + b"\r\nhello\r\n0\r\n\r\n")

    # --- RFC 9112 §9: connection management

    def test_rfc9112_9_6_close_in_request_ends_connection(self):
        be, host = self.script()
        c = Conn(self.daemon.port)
        self.addCleanup(c.close)
        c.send(b"GET /1 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
               b"GET /2 HTTP/1.1\r\nHost: %s\r\n\r\n" % (host.encode(), host.encode()))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertIn("close", (r.header("Connection") or "").lower())
        _, rest = c.wait_closed(10)
        self.assertEqual(rest, b"")
        self.assertEqual(len(be.requests()), 1)

    def test_rfc9112_9_3_http10_closes_without_keep_alive(self):
        r, be, c = self.served(b"GET /k HTTP/1.0\r\nHost: HOST\r\n\r\n")
        self.assertEqual(r.status, 200)
        c.wait_closed(10)

    # --- RFC 9110 §6.6.1 Date

    def test_rfc9110_6_6_1_date_added_when_backend_sends_none(self):
        r, be, _ = self.served(b"GET /d HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        self.assertEqual(r.status, 200)
        self.assertRegex(r.header("Date") or "", r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertEqual(len(r.headers_named("Date")), 1)

    def test_rfc9110_6_6_1_backend_date_kept(self):
        r, be, _ = self.served(b"GET /d2 HTTP/1.1\r\nHost: HOST\r\n\r\n")
        self.assertEqual(r.headers_named("Date"), ["Thu, 01 Jan 2026 00:00:00 GMT"])

    def test_rfc9110_6_6_1_generated_response_has_date(self):
        r, c = exchange(self.daemon.port, http_req("GET", "/", "no-such-route.example"))
        c.close()
        self.assertEqual(r.status, 404)
        self.assertRegex(r.header("Date") or "", r"GMT$")

    # --- RFC 9110 §7.6: intermediaries

    def test_rfc9110_7_6_1_connection_options_removed(self):
        r, be, _ = self.served(b"GET /h HTTP/1.1\r\nHost: HOST\r\nConnection: X-Hop, keep-alive\r\n"
                               b"X-Hop: 1\r\nX-End: 2\r\n\r\n", lambda h:
                               b"HTTP/1.1 200 OK\r\nConnection: X-Back\r\nX-Back: 1\r\n"
                               b"Content-Length: 3\r\n\r\nok\n")
        self.assertEqual(be.header_values(0, "X-Hop"), [])
        self.assertEqual(be.header_values(0, "X-End"), ["2"])
        self.assertIsNone(r.header("X-Back"))

    def test_rfc9110_7_6_2_max_forwards_zero_answered_by_proxy(self):
        be, host = self.script()
        for target in (b"/mf", b"*"):
            r, c = exchange(self.daemon.port, b"OPTIONS " + target + b" HTTP/1.1\r\nHost: "
                            + host.encode() + b"\r\nMax-Forwards: 0\r\n\r\n")
            c.close()
            self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(be.requests(), [], "forwarded with Max-Forwards: 0")

    def test_rfc9112_3_2_4_options_asterisk_forwarded(self):
        r, be, _ = self.served(b"OPTIONS * HTTP/1.1\r\nHost: HOST\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertTrue(be.requests()[0][0].startswith(b"OPTIONS * HTTP/1.1\r\n"))

    def test_rfc9110_7_6_2_max_forwards_decremented(self):
        r, be, _ = self.served(b"OPTIONS /mf HTTP/1.1\r\nHost: HOST\r\nMax-Forwards: 5\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(be.header_values(0, "Max-Forwards"), ["4"])

    def test_rfc9110_7_6_3_via_added_to_request(self):
        r, be, _ = self.served(b"GET /via HTTP/1.1\r\nHost: HOST\r\nVia: 1.0 edge\r\n\r\n")
        vias = ", ".join(be.header_values(0, "Via"))
        self.assertRegex(vias, r"^1\.0 edge, 1\.1 \S+")
        r, be, _ = self.served(b"GET /via HTTP/1.0\r\nHost: HOST\r\n\r\n")
        self.assertRegex(", ".join(be.header_values(0, "Via")), r"^1\.0 \S+$")

    # --- RFC 9110 §7.8 Upgrade, §15.2 1xx

    def test_rfc9110_7_8_upgrade_ignored_in_http10(self):
        r, be, _ = self.served(b"GET /u HTTP/1.0\r\nHost: HOST\r\nConnection: Upgrade\r\n"
                               b"Upgrade: websocket\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(be.header_values(0, "Upgrade"), [])

    def test_rfc9110_7_8_upgrade_without_connection_option_ignored(self):
        r, be, _ = self.served(b"GET /u HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\n\r\n")
        self.assertEqual(r.status, 200)
        self.assertEqual(be.header_values(0, "Upgrade"), [])

    def test_rfc9110_15_2_2_switch_not_requested_502(self):
        r, be, _ = self.served(b"GET /sw HTTP/1.1\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                               b"Upgrade: websocket\r\n\r\n")
        self.assertEqual(r.status, 502)

    def test_rfc9110_15_2_no_1xx_to_http10_client(self):
        r, be, _ = self.served(b"GET /i HTTP/1.0\r\nHost: HOST\r\n\r\n", lambda h:
                               b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.interim, [])

    def test_rfc9110_10_1_1_expect_100_ignored_for_http10(self):
        be, host = self.script()
        c = Conn(self.daemon.port)
        self.addCleanup(c.close)
        c.send(b"POST /e HTTP/1.0\r\nHost: %s\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\nhello" % host.encode())
        r = c.read_response()
        self.assertEqual((r.status, r.interim), (200, []))

    def test_rfc9110_10_1_1_unknown_expectation_417(self):
        self.refused(b"GET / HTTP/1.1\r\nHost: HOST\r\nExpect: teapot\r\n\r\n", 417, close=False)

    def test_rfc9110_9_3_8_trace_refused(self):
        """Deliberate: TRACE would echo cookies to a script (cross-site tracing)."""
        self.refused(b"TRACE / HTTP/1.1\r\nHost: HOST\r\n\r\n", 501, close=False)


if __name__ == "__main__":
    unittest.main()
