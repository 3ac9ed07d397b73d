"""Integration tests of a route's backend protocol and TLS toward its backends.

`haloyd-ctl route add ... --proto P` and `route set --proto P --backend-ca FILE
--backend-sni NAME --backend-verify on|off`: what `route list`, `route show`
and `--json` print, how the settings are cleared, and every refusal (one
line, exit 7 or 2, nothing changed). The CA file is read by haloyd-ctl and
checked by the master.

Then the data path for --proto https against TLS backends (python3 ssl,
certificates from a test CA made with openssl here): see BackendTLSTest.
"""
import json
import os
import socket
import ssl
import struct
import time

from . import backend as backend_mod
from .backend import header
from .harness import DaemonTestCase, unique_host, wait_for
from .test_foundation import MSG_C_FAIL, RawControl, one_line, wb_str
from .test_route_set import echo_until_closed, open_tunnel, read_to_eof
from .test_tls import Pki

MSG_C_ROUTE_ADD, MSG_C_ROUTE_SET = 64, 74   # share/msg.h
CTL_EUSAGE, CTL_EINVAL = 2, 7
CA_SUBJECT = "CN=haloyd test CA"


class BackendProtoCtlTest(DaemonTestCase):
    """route add/set/show/list for --proto and the --backend-* settings."""

    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("bp")
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.pki.close()
        super().tearDownClass()

    def file(self, name, data):
        path = os.path.join(self.pki.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def show(self, host):
        return json.loads(self.daemon.ctl_ok("--json", "route", "show", host))

    def list_row(self, host):
        rows = json.loads(self.daemon.ctl_ok("--json", "route", "list"))
        return [r for r in rows if r["name"] == host][0]

    def assert_code(self, code, *args):
        rc, out, err = self.daemon.ctl(*args)
        self.assertEqual(rc, code, "haloyd-ctl %s: stdout %r stderr %r" % (" ".join(args), out, err))
        self.assertTrue(one_line(err), "one line on stderr for %r: %r" % (args, err))
        self.assertEqual(out, "")
        return err

    def test_add_with_proto_and_tls(self):
        host = unique_host("bpadd")
        out = self.daemon.ctl_ok("route", "add", host, self.be.addr, "--proto", "https",
                                 "--backend-ca", self.pki.ca, "--backend-sni",
                                 "Internal.Example.NET.")
        self.assertIn("backend protocol https", out)
        shown = self.show(host)
        self.assertEqual((shown["proto"], shown["backend_ca"], shown["backend_sni"],
                          shown["backend_verify"]),
                         ("https", CA_SUBJECT, "internal.example.net", "on"))
        row = self.list_row(host)
        self.assertEqual(row["proto"], "https")
        self.assertEqual(row["settings"], ["backend_ca=custom",
                                           "backend_sni=internal.example.net"])
        text = self.daemon.ctl_ok("route", "show", host)
        kv = dict(ln.split(": ", 1) for ln in text.splitlines())
        self.assertEqual((kv["proto"], kv["backend_ca"]), ("https", CA_SUBJECT))
        lines = self.daemon.ctl_ok("route", "list").splitlines()
        mine = [ln.split() for ln in lines[1:] if ln.split()[0] == host][0]
        self.assertEqual(mine[3], "https")

        # A plain route shows no TLS settings at all; h2c is plain.
        plain = unique_host("bpplain")
        self.daemon.ctl_ok("route", "add", plain, self.be.addr, "--proto", "h2c")
        shown = self.show(plain)
        self.assertEqual(shown["proto"], "h2c")
        self.assertFalse({"backend_ca", "backend_sni", "backend_verify"} & set(shown), shown)

    def test_set_clear_and_insecure(self):
        host = unique_host("bpset")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        self.assertEqual(self.show(host)["proto"], "http1")
        self.assertEqual(self.list_row(host)["proto"], "http1")
        self.daemon.ctl_ok("route", "set", host, "--proto", "h2", "--backend-ca", self.pki.ca)
        shown = self.show(host)
        self.assertEqual((shown["proto"], shown["backend_ca"], shown["backend_sni"]),
                         ("h2", CA_SUBJECT, "none"))

        out = self.daemon.ctl_ok("route", "set", host, "--backend-verify", "off")
        self.assertIn("INSECURE", out)
        self.assertEqual(self.show(host)["backend_verify"], "off (INSECURE)")
        text = self.daemon.ctl_ok("route", "show", host)
        self.assertIn("backend_verify: off (INSECURE)", text.splitlines())
        self.assertIn("backend_verify=off", self.list_row(host)["settings"])

        # '' and default clear; verify goes back on.
        self.daemon.ctl_ok("route", "set", host, "--backend-ca", "", "--backend-sni", "a.example",
                           "--backend-verify", "on")
        shown = self.show(host)
        self.assertEqual((shown["backend_ca"], shown["backend_sni"], shown["backend_verify"]),
                         ("system roots", "a.example", "on"))
        self.daemon.ctl_ok("route", "set", host, "--backend-sni", "default", "--backend-ca",
                           self.pki.ca)
        self.assertEqual(self.show(host)["backend_sni"], "none")

        # A bundle: the first subject and how many follow; comments are dropped.
        leaf, _, _ = self.pki.leaf("other", ["other.example"])
        with open(self.pki.ca, "rb") as f:
            ca = f.read()
        with open(leaf, "rb") as f:
            bundle = b"# our CA\n" + ca + b"\nsome text\n" + f.read()
        self.daemon.ctl_ok("route", "set", host, "--backend-ca", self.file("bundle.pem", bundle))
        self.assertEqual(self.show(host)["backend_ca"], CA_SUBJECT + " (+1 more)")
        # A bundle near the 32 KiB bound travels in one request.
        copies = min(60, 32000 // len(ca))
        path = self.file("many.pem", ca * copies)
        self.assertGreater(os.path.getsize(path), 24000)
        self.daemon.ctl_ok("route", "set", host, "--backend-ca", path)
        self.assertEqual(self.show(host)["backend_ca"], CA_SUBJECT + " (+%d more)" % (copies - 1))

        # Back to a plain protocol: the TLS settings go, and the answer says so.
        out = self.daemon.ctl_ok("route", "set", host, "--proto", "http1")
        self.assertIn("backend TLS settings cleared", out)
        self.daemon.ctl_ok("route", "set", host, "--proto", "https")
        shown = self.show(host)
        self.assertEqual((shown["backend_ca"], shown["backend_sni"], shown["backend_verify"]),
                         ("system roots", "none", "on"))
        self.assertEqual(self.list_row(host)["settings"], [])
        self.daemon.ctl_ok("route", "set", host, "--proto", "default")
        self.assertEqual(self.show(host)["proto"], "http1")

    def test_refusals_change_nothing(self):
        host = unique_host("bpbad")
        self.daemon.ctl_ok("route", "add", host, self.be.addr, "--proto", "https")
        before = self.show(host)
        garbage = self.file("garbage.pem", b"not a certificate\n")
        damaged = self.file("damaged.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n"
                                           b"-----END CERTIFICATE-----\n")
        big = self.file("big.pem", b"#" * (32768 + 1))
        with open(self.pki.ca_key, "rb") as f:
            key_only = self.file("key.pem", f.read())
        for args, code, word in (
                (("--proto", "ftp"), CTL_EINVAL, "proto"),
                (("--proto", "HTTPS"), CTL_EINVAL, "proto"),
                (("--backend-ca", garbage), CTL_EINVAL, "backend CA"),
                (("--backend-ca", damaged), CTL_EINVAL, "backend CA"),
                (("--backend-ca", key_only), CTL_EINVAL, "backend CA"),
                (("--backend-ca", big), CTL_EINVAL, "larger than"),
                (("--backend-ca", "/nonexistent/ca.pem"), CTL_EINVAL, "cannot read"),
                (("--backend-sni", "*.example.com"), CTL_EINVAL, "backend-sni"),
                (("--backend-sni", "10.0.0.1"), CTL_EINVAL, "backend-sni"),
                (("--backend-sni", "bad_name!"), CTL_EINVAL, "backend-sni"),
                (("--backend-verify", "maybe"), CTL_EINVAL, "backend_verify"),
                (("--proto", "http1", "--backend-sni", "a.example"), CTL_EINVAL,
                 "needs proto https or h2"),
                (("--proto", "h2c", "--backend-verify", "off"), CTL_EINVAL,
                 "needs proto https or h2")):
            err = self.assert_code(code, "route", "set", host, *args)
            self.assertIn(word, err, args)
        self.assertEqual(self.show(host), before)

        # On a plain route, TLS settings alone are refused too.
        plain = unique_host("bpbadplain")
        self.daemon.ctl_ok("route", "add", plain, self.be.addr)
        err = self.assert_code(CTL_EINVAL, "route", "set", plain, "--backend-ca", self.pki.ca)
        self.assertIn("backend_ca needs proto https or h2 (the route's is http1)", err)
        # route add: the same rule, and the route is not added.
        other = unique_host("bpbadadd")
        self.assert_code(CTL_EINVAL, "route", "add", other, self.be.addr, "--backend-verify",
                         "off")
        self.assert_code(CTL_EINVAL, "route", "add", other, self.be.addr, "--proto", "h2c",
                         "--backend-ca", self.pki.ca)
        names = [r["name"] for r in json.loads(self.daemon.ctl_ok("--json", "route", "list"))]
        self.assertNotIn(other, names)
        # Only the backend settings go with route add; none go elsewhere.
        err = self.assert_code(CTL_EUSAGE, "route", "add", other, self.be.addr, "--hsts", "on")
        self.assertIn("'route set' only", err)
        err = self.assert_code(CTL_EUSAGE, "alias", "add", host, other, "--proto", "h2")
        self.assertIn("'route set' and 'route add' only", err)

    def raw(self, type_, payload):
        c = RawControl(self.daemon.sock)
        try:
            c.hello()
            c.send(type_, payload, seq=1)
            return c.recv()
        finally:
            c.close()

    def test_master_checks_what_a_raw_client_sends(self):
        """haloyd-ctl checks shapes only: the master checks the CA, the name
        and the rule itself, and a raw route add cannot carry route set's
        other settings."""
        host = unique_host("bpraw")
        self.daemon.ctl_ok("route", "add", host, self.be.addr, "--proto", "https")
        before = self.show(host)

        def pairs(*kv):
            return (wb_str(host) + struct.pack("=H", len(kv)) +
                    b"".join(wb_str(k) + wb_str(v) for k, v in kv))
        for kv in ((("backend_ca", "x" * 2000),), (("backend_sni", "*.a.example"),),
                   (("backend_sni", "1.2.3.4"),), (("proto", "h3"),),
                   (("proto", "http1"), ("backend_verify", "off"))):
            m = self.raw(MSG_C_ROUTE_SET, pairs(*kv))
            self.assertIsNotNone(m, "the master hung up on %r" % (kv,))
            self.assertEqual(m[0], MSG_C_FAIL, kv)
            self.assertEqual(struct.unpack_from("=I", m[4])[0], CTL_EINVAL, kv)
        self.assertEqual(self.show(host), before)

        other = unique_host("bprawadd")
        payload = (wb_str(other) + struct.pack("=H", 0) + struct.pack("=H", 1) +
                   wb_str(self.be.addr) + struct.pack("=H", 1) + wb_str("max_body") +
                   wb_str("1k"))
        m = self.raw(MSG_C_ROUTE_ADD, payload)
        self.assertEqual(m[0], MSG_C_FAIL)
        self.assertIn(b"unknown route add setting", m[4])
        self.assertEqual(self.daemon.proc.poll(), None)


# --- TLS to backends: proto https

VERIFY_FAILED = "certificate verify failed: unable to get local issuer certificate"


class BackendTLSTest(DaemonTestCase):
    """Routes with --proto https to python3 ssl backends whose certificates
    come from a test CA made here: verification against --backend-ca, the
    system roots, the address or --backend-sni, --backend-verify off, the
    pool kept apart per TLS configuration, and the connect timeout over the
    handshake. One worker, so its one pool is what the backends see."""

    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki, cls.other_pki = Pki(), Pki()
        cert, key, _ = cls.pki.leaf("backend", ["127.0.0.1", "backend.test"])
        cls.be_ip = cls.tls_backend("tls-ip", cert, key)
        cert, key, _ = cls.pki.leaf("internal", ["internal.test"])
        cls.be_named = cls.tls_backend("tls-named", cert, key)

    @classmethod
    def tls_backend(cls, name, cert, key):
        b = backend_mod.TLSBackend(name, cert, key).start()
        cls._backends.append(b)
        return b

    @classmethod
    def tearDownClass(cls):
        cls.pki.close()
        cls.other_pki.close()
        super().tearDownClass()

    def route(self, be, *args, label="tls"):
        host = unique_host(label)
        self.daemon.ctl_ok("route", "add", host, be.addr, *args)
        return host

    def log_since(self):
        return self.daemon.log_text(self._log_mark)

    def wait_log(self, text):
        wait_for(lambda: text in self.log_since(), 10, "log line %r" % text,
                 lambda: self.log_since()[-3000:])

    def test_get_post_and_keepalive_reuse(self):
        host = self.route(self.be_ip, "--proto", "https", "--backend-ca", self.pki.ca,
                          label="tlsok")
        before, alpns, snis = self.be_ip.accepted, len(self.be_ip.alpns), len(self.be_ip.snis)
        for _ in range(5):
            r = self.daemon.get(host, "/")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"backend tls-ip\n")
        body = bytes(range(256)) * 400     # 100 KiB, more than one buffer
        r = self.daemon.get(host, "/echo", method="POST", body=body)
        self.assertEqual((r.status, r.body), (200, body))
        rec = self.be_ip.records("/echo")[-1]
        self.assertEqual(rec["method"], "POST")
        self.assertEqual(rec["body"], body)
        # Six requests, one backend connection: the pooled TLS connection was reused.
        self.assertEqual(self.be_ip.accepted - before, 1)
        self.assertEqual(self.be_ip.alpns[alpns:], ["http/1.1"])
        self.assertEqual(rec["conn"], self.be_ip.records("/")[-1]["conn"])
        # Without --backend-sni no name is sent: the address is what was checked.
        self.assertEqual(self.be_ip.snis[snis:], [None])

    def test_next_connection_resumes_the_session(self):
        host = self.route(self.be_ip, "--proto", "https", "--backend-ca", self.pki.ca,
                          label="tlsresume")
        n = len(self.be_ip.resumed)
        # The backend closes after each answer: every request needs a new connection.
        for _ in range(3):
            self.assertEqual(self.daemon.get(host, "/then-close").status, 200)
        wait_for(lambda: len(self.be_ip.resumed) >= n + 3, 10, "three TLS connections")
        self.assertEqual(self.be_ip.resumed[n:], [False, True, True])

    def test_wrong_ca_refused_with_reason(self):
        host = self.route(self.be_ip, "--proto", "https", "--backend-ca", self.other_pki.ca,
                          label="tlswrongca")
        n = len(self.be_ip.records())
        r = self.daemon.get(host, "/")
        self.assertEqual(r.status, 502, r)
        self.wait_log("TLS handshake failed: " + VERIFY_FAILED)
        line = [ln for ln in self.log_since().splitlines() if VERIFY_FAILED in ln][0]
        self.assertIn("backend ", line)
        self.assertIn("(%s)" % self.be_ip.addr, line)
        self.assertEqual(len(self.be_ip.records()), n, "no request reached the backend")
        # The system roots do not hold the test CA either.
        host = self.route(self.be_ip, "--proto", "https", label="tlssysroots")
        self.assertEqual(self.daemon.get(host, "/").status, 502)

    def test_verify_off_works_and_is_loud(self):
        host = self.route(self.be_ip, "--proto", "https", "--backend-ca", self.other_pki.ca,
                          "--backend-verify", "off", label="tlsinsecure")
        r = self.daemon.get(host, "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"backend tls-ip\n")
        shown = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(shown["backend_verify"], "off (INSECURE)")
        self.assertIn("backend_verify: off (INSECURE)",
                      self.daemon.ctl_ok("route", "show", host))

    def test_sni_reaches_the_backend_and_is_checked(self):
        host = self.route(self.be_named, "--proto", "https", "--backend-ca", self.pki.ca,
                          "--backend-sni", "internal.test", label="tlssni")
        r = self.daemon.get(host, "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"backend tls-named\n")
        self.assertEqual(self.be_named.snis[-1], "internal.test")
        # The client's Host still goes to the backend as it was.
        self.assertEqual(header(self.be_named.records("/")[-1], "host"), [host])

    def test_name_or_address_mismatch_refused(self):
        # The certificate names internal.test only: the address check fails...
        host = self.route(self.be_named, "--proto", "https", "--backend-ca", self.pki.ca,
                          label="tlsnoname")
        self.assertEqual(self.daemon.get(host, "/").status, 502)
        self.wait_log("certificate verify failed: IP address mismatch")
        # ...and so does another name.
        host = self.route(self.be_named, "--proto", "https", "--backend-ca", self.pki.ca,
                          "--backend-sni", "other.test", label="tlsmismatch")
        self.assertEqual(self.daemon.get(host, "/").status, 502)
        self.wait_log("certificate verify failed: hostname mismatch")
        self.assertEqual(self.be_named.snis[-1], "other.test")

    def test_pool_kept_apart_per_configuration(self):
        host = self.route(self.be_ip, "--proto", "https", "--backend-ca", self.pki.ca,
                          label="tlspool")
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        accepted = self.be_ip.accepted
        # Plain HTTP now: the idle TLS connection must not carry it.
        self.daemon.ctl_ok("route", "set", host, "--proto", "http1")
        failed = self.be_ip.failed_handshakes
        self.assertEqual(self.daemon.get(host, "/").status, 502)
        wait_for(lambda: self.be_ip.failed_handshakes > failed, 10,
                 "the plain request hitting the TLS backend")
        # TLS again with other settings: a new connection, not the first one (the
        # backend counts connections whose handshake went through).
        first = self.be_ip.records("/")[-1]["conn"]
        self.daemon.ctl_ok("route", "set", host, "--proto", "https", "--backend-verify", "off")
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        self.assertEqual(self.be_ip.accepted, accepted + 1)
        self.assertNotEqual(self.be_ip.records("/")[-1]["conn"], first)

    def test_handshake_inside_the_connect_timeout(self):
        mute = backend_mod.Mute()
        self.addCleanup(mute.close)
        host = self.route(mute, "--proto", "https", label="tlsmute")
        self.daemon.ctl_ok("route", "set", host, "--connect-timeout", "1s")
        t0 = time.monotonic()
        r = self.daemon.get(host, "/", timeout=20)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 502, r)
        self.assertLess(took, 5)
        self.wait_log("TLS handshake timed out")

    def test_upgrade_pipe_over_tls(self):
        """A 101 turns the TLS connection into the byte pipe; half-closes cross it."""
        cert, key, _ = self.pki.leaf("ws", ["127.0.0.1"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        ub = backend_mod.UpgradeBackend(echo_until_closed, tls_ctx=ctx)
        self.addCleanup(ub.close)
        host = self.route(ub, "--proto", "https", "--backend-ca", self.pki.ca, label="tlsws")
        s = open_tunnel(self.daemon.port, host)
        self.addCleanup(s.close)
        data = bytes(range(256)) * 1000
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < len(data) and time.monotonic() < deadline:
            got += s.recv(65536)
        self.assertEqual(got, data)
        # Our half-close reaches the backend (close_notify, then FIN); its close comes back.
        s.shutdown(socket.SHUT_WR)
        self.assertIsNone(ub.result())
        rest, _, closed = read_to_eof(s, 10)
        self.assertEqual((rest, closed), (b"", True))
        self.assertIn(b"Upgrade: test-proto", ub.heads[-1])

    def test_h2c_and_h2_not_silently_http1(self):
        # An HTTP/1.1-only TLS backend: h2c gets no SETTINGS, h2 no ALPN h2.
        for args, line in ((("--proto", "h2c"),
                            "no HTTP/2 session: closed before the backend's SETTINGS"),
                           (("--proto", "h2", "--backend-ca", self.pki.ca),
                            "TLS: the backend did not agree on h2 (ALPN)")):
            n = len(self.be_ip.records())
            host = self.route(self.be_ip, *args, label="tls" + args[1])
            t0 = time.monotonic()
            self.assertEqual(self.daemon.get(host, "/").status, 502)
            self.assertLess(time.monotonic() - t0, 4, "answered at once, not at a timeout")
            self.wait_log(line)
            self.assertEqual(len(self.be_ip.records()), n)
