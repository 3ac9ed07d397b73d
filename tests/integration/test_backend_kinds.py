"""Integration tests of backends that are not IP:PORT (issue 18 point 2, issue
13 points 2-3, the worker side of the tunnel hop):

- unix:/path backends: GET and POST over one kept-alive backend connection
  (the backend counts what it accepted), the access entry names unix:/path,
  a missing socket is a 502 and is skipped by passive health as a refused
  TCP backend is;
- tunnel:NAME backends in route add / backend add / route list / route show
  (text and --json), bad forms refused each with its one-line reason and
  exit status 7, route set --balance;
- the worker side of the hop: with no listen_tunnel, or no tunnel process
  on RUNTIME_DIR/tunnel.sock, a tunnel route answers 503 with Retry-After
  while a route with an address beside the tunnel is served by it; a
  python3-h2 h2c stand-in for the tunnel process on RUNTIME_DIR/tunnel.sock
  receives `haloyd-tunnel: NAME` (and the balance field with --balance
  round-robin), X-Forwarded-For, never a client's own haloyd-tunnel field,
  and its answer (status, headers, body, trailers) reaches HTTP/1.1 and
  HTTP/2 clients; an upgrade to a tunnel is a 502 with a log line.
"""
import json
import os
import shutil
import socket
import tempfile

from .backend import Backend
from .h2backend import H2Backend
from . import testpki
from .harness import DaemonTestCase, KeepAlive, free_port, unique_host, wait_for
from .test_datapath import access_lines, assert_error_page, closed_port
from .test_h2backend import read_chunked_response
from .test_http2 import H2Client, run

CURL = shutil.which("curl") or "/usr/bin/curl"
TIMEOUT = 10.0
EINVAL_EXIT = 7


def private_dir(test):
    """A folder the workers (another user) can reach, removed after the test."""
    d = tempfile.mkdtemp(prefix="haloyd-ux-")
    os.chmod(d, 0o755)
    test.addCleanup(shutil.rmtree, d, True)
    return d


class KindsMixin:
    def route(self, *backends, label="bk", extra=()):
        host = unique_host(label)
        args = ["route", "add", host, backends[0]]
        for be in backends[1:]:
            args += ["--backend", be]
        self.daemon.ctl_ok(*(args + list(extra)))
        return host

    def unix_backend(self, name):
        be = Backend(name, unix_path=os.path.join(private_dir(self), name + ".sock")).start()
        self.addCleanup(be.stop)
        return be

    def log_since(self):
        return self.daemon.log_text(self._log_mark)


# --- unix sockets

class UnixBackendTest(KindsMixin, DaemonTestCase):
    WORKERS = 1
    DAEMON_ARGS = ("--connect-timeout", "1s", "--backend-down-time", "30s")

    def test_unix_get_post_keepalive(self):
        be = self.unix_backend("ux")
        host = self.route(be.addr, label="ux")
        c = KeepAlive(self.daemon.port)
        self.addCleanup(c.close)
        for i in range(4):
            r = c.request("/ux/%d" % i, host=host)
            self.assertEqual((r.status, r.body), (200, be.hello()), r)
        body = b"p" * 50000
        r = c.request("/echo", host=host, method="POST", body=body)
        self.assertEqual((r.status, r.body), (200, body))
        r = c.request("/chunked?n=5", host=host)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(be.records()), 6)
        self.assertEqual(be.accepted, 1, "six requests over one kept-alive unix connection")
        rec = be.records("/ux/0")[0]
        self.assertEqual(dict(rec["headers"]).get("X-Forwarded-For"), "127.0.0.1")

        def entries():
            e = access_lines(self.log_since(), host)
            return e if len(e) >= 6 else None
        got = wait_for(entries, TIMEOUT, "6 access entries", self.daemon.log_tail)
        self.assertEqual({e["BACKEND"] for e in got}, {be.addr}, got[0]["_line"])

    def test_unix_missing_socket_502_and_passive_health(self):
        gone = os.path.join(private_dir(self), "gone.sock")
        host = self.route("unix:" + gone, label="uxgone")
        r = self.daemon.get(host, "/gone")
        assert_error_page(self, r.status, r.headers, r.body, 502)
        self.assertIsNone(r.header("Retry-After"), "a dead unix backend is a plain 502")
        wait_for(lambda: "(unix:%s): connect: No such file or directory" % gone
                 in self.log_since(), TIMEOUT, "the connect failure logged with the path",
                 self.daemon.log_tail)
        # Beside a live backend: the missing socket is marked down and skipped, as TCP.
        live = self.unix_backend("uxlive")
        gone2 = os.path.join(private_dir(self), "gone2.sock")
        host = self.route("unix:" + gone2, live.addr, label="uxmix")
        for i in range(10):
            r = self.daemon.get(host, "/mix/%d" % i)
            self.assertEqual((r.status, r.body), (200, live.hello()), "request %d" % i)
        self.assertEqual(len(live.records()), 10)
        text = self.log_since()
        self.assertEqual(text.count("(unix:%s): connect:" % gone2), 1,
                         "tried once, then skipped while down:\n" + text[-3000:])
        self.assertIn("down for 30000 ms", text)

    def test_unix_refused_is_502(self):
        d = private_dir(self)
        path = os.path.join(d, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)          # a file that no one listens on: ECONNREFUSED
        os.chmod(path, 0o777)
        self.addCleanup(s.close)
        host = self.route("unix:" + path, label="uxref")
        r = self.daemon.get(host, "/refused")
        assert_error_page(self, r.status, r.headers, r.body, 502)
        self.assertIn("(unix:%s): connect: Connection refused" % path, self.log_since())


# --- the backend forms in haloyd-ctl

class BackendFormsTest(KindsMixin, DaemonTestCase):
    WORKERS = 1

    def test_tunnel_route_listed_and_shown(self):
        host = unique_host("x")
        self.daemon.ctl_ok("route", "add", host, "tunnel:office")
        self.daemon.ctl_ok("backend", "add", host, "unix:/run/app/app.sock")
        self.daemon.ctl_ok("backend", "add", host, "127.0.0.1:3000")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["tunnel:office", "unix:/run/app/app.sock",
                                            "127.0.0.1:3000"])
        self.assertEqual(show["balance"], "least-in-flight")
        rows = [r for r in json.loads(self.daemon.ctl_ok("--json", "route", "list"))
                if r["name"] == host]
        self.assertEqual(rows[0]["backends"], show["backends"])
        text = self.daemon.ctl_ok("route", "show", host)
        self.assertIn("tunnel:office", text)
        self.assertIn("unix:/run/app/app.sock", text)
        self.assertIn("tunnel:office", self.daemon.ctl_ok("route", "list"))
        # --balance is stored and shown; route list names it once it is not the default.
        out = self.daemon.ctl_ok("route", "set", host, "--balance", "round-robin")
        self.assertIn("balance=round-robin", out)
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["balance"], "round-robin")
        rows = [r for r in json.loads(self.daemon.ctl_ok("--json", "route", "list"))
                if r["name"] == host]
        self.assertIn("balance=round-robin", rows[0]["settings"])
        self.daemon.ctl_ok("route", "set", host, "--balance", "default")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["balance"], "least-in-flight")
        self.daemon.ctl_ok("backend", "rm", host, "tunnel:office")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["unix:/run/app/app.sock", "127.0.0.1:3000"])

    def test_hosts_named_unix_or_tunnel_stay_hosts(self):
        # The store keeps "tunnel.:8080", not "tunnel:8080", which reads back as the tunnel
        # named 8080 (found by fuzz_applyfile through export's lines).
        host = unique_host("kindname")
        self.daemon.ctl_ok("route", "add", host, "Tunnel.:8080")
        self.daemon.ctl_ok("backend", "add", host, "UNIX:9")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["tunnel.:8080", "unix.:9"])
        # Added again in the stored form: the same backend, not a second one.
        rc, out, err = self.daemon.ctl("backend", "add", host, "tunnel.:8080")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["tunnel.:8080", "unix.:9"], (rc, out, err))
        r = self.daemon.get(host, "/kindname")
        self.assertIn(r.status, (502, 503))
        self.assertNotIn("tunnel hop", self.log_since())
        # Removed by any spelling of the same host; the tunnel of that name is another backend.
        rc, out, err = self.daemon.ctl("backend", "rm", host, "tunnel:8080")
        self.assertNotEqual(rc, 0, (out, err))
        self.daemon.ctl_ok("backend", "rm", host, "TUNNEL.:8080")
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["unix.:9"])

    def test_bad_forms_refused(self):
        host = unique_host("bad")
        self.daemon.ctl_ok("route", "add", host, "127.0.0.1:1")
        cases = [
            ("unix:run/app.sock", "the unix socket path must be absolute"),
            ("unix:/" + "a" * 107, "the unix socket path is 108 bytes, at most 107"),
            ("tunnel:Office", "a tunnel name is 1 to 63 characters of a-z, 0-9, '.' and '-'"),
            ("tunnel:-x", "starting with a letter or digit"),
            ("tunnel:" + "n" * 64, "a tunnel name is 1 to 63 characters"),
            ("localhost:0", "use IP:PORT, [IPv6]:PORT, HOST:PORT, unix:/PATH or tunnel:NAME"),
        ]
        for be, why in cases:
            for args in (("route", "add", unique_host("bad"), be),
                         ("backend", "add", host, be)):
                rc, out, err = self.daemon.ctl(*args)
                self.assertEqual(rc, EINVAL_EXIT, (args, out, err))
                self.assertIn(why, err, args)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
        rc, _, err = self.daemon.ctl("route", "set", host, "--balance", "random")
        self.assertEqual(rc, EINVAL_EXIT, err)
        self.assertIn("balance: invalid value 'random': use round-robin, least-in-flight or "
                      "default", err)
        # Nothing of it reached the store.
        show = json.loads(self.daemon.ctl_ok("--json", "route", "show", host))
        self.assertEqual(show["backends"], ["127.0.0.1:1"])

    def test_tunnel_without_listen_tunnel_is_503(self):
        host = self.route("tunnel:office", label="nohop")
        r = self.daemon.get(host, "/nohop")
        assert_error_page(self, r.status, r.headers, r.body, 503)
        self.assertEqual(r.header("Retry-After"), "5")
        self.assertIn("(tunnel:office): the tunnel hop (none): listen_tunnel is not set",
                      self.log_since())


# --- the tunnel hop, worker side

class TunnelHopTest(KindsMixin, DaemonTestCase):
    """listen_tunnel is set, so the workers dial RUNTIME_DIR/tunnel.sock. The
    test unlinks the socket the master bound for the tunnel process (which
    keeps serving the unlinked one, unreachable) and binds its own stand-in
    at that path when a test wants one: the worker's side of the hop alone."""
    WORKERS = 1

    @classmethod
    def _start_daemon(cls):
        if not hasattr(cls, "pki"):
            cls.pki = testpki.Pki()
        cls.DAEMON_ARGS = ("--listen-tunnel", "127.0.0.1:%d" % free_port(),
                           "--tunnel-ca-file", cls.pki.ca)
        super()._start_daemon()
        cls.hop_path = os.path.join(cls.daemon.run_dir, "tunnel.sock")
        wait_for(lambda: os.path.exists(cls.hop_path), TIMEOUT, "the hop socket",
                 cls.daemon.log_tail)
        os.unlink(cls.hop_path)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.live = Backend("beside").start()
        cls._backends.append(cls.live)

    def hop(self):
        h = H2Backend("hop", unix_path=self.hop_path).start()
        self.addCleanup(h.stop)
        return h

    def curl(self, host, path, extra=()):
        fd, out = tempfile.mkstemp(prefix="haloyd-bk-")
        os.close(fd)
        self.addCleanup(os.unlink, out)
        cmd = [CURL, "-sS", "--max-time", "20", "-o", out, "-D", "-",
               "-w", "\n%{http_version} %{http_code}",
               "--resolve", "%s:%d:127.0.0.1" % (host, self.daemon.port)] + list(extra)
        cmd.append("http://%s:%d%s" % (host, self.daemon.port, path))
        p = run(cmd, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        text, _, last = p.stdout.decode("latin-1").rpartition("\n")
        headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in text.splitlines()
                   if ":" in ln and not ln.startswith("HTTP/")]
        with open(out, "rb") as f:
            return last.split(), [(k.lower(), v) for k, v in headers], f.read()

    def test_no_tunnel_process_503_then_address_beside(self):
        self.assertFalse(os.path.exists(self.hop_path))
        host = self.route("tunnel:office", label="down")
        r = self.daemon.get(host, "/down")
        assert_error_page(self, r.status, r.headers, r.body, 503)
        self.assertEqual(r.header("Retry-After"), "5")
        self.assertIn("(tunnel:office): the tunnel hop %s: No such file or directory"
                      % self.hop_path, self.log_since())
        # An address beside the tunnel is tried next: every request is served.
        host = self.route("tunnel:office", self.live.addr, label="beside")
        for i in range(4):
            r = self.daemon.get(host, "/beside/%d" % i)
            self.assertEqual((r.status, r.body), (200, self.live.hello()), i)
        # HTTP/2 clients get the same 503 with Retry-After.
        c = H2Client(self.daemon.port)
        self.addCleanup(c.close)
        r = c.get(self.route("tunnel:office", label="down2"), "/down2")
        self.assertEqual((r.status, r.header("retry-after")), (503, "5"))

    def test_hop_receives_and_answers(self):
        hop = self.hop()
        host = self.route("tunnel:office", label="hop")
        r = self.daemon.get(host, "/headers?h1", headers={
            "Haloyd-Tunnel": "evil", "haloyd-tunnel-balance": "round-robin",
            "X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(r.status, 200, r)
        got = json.loads(r.body)
        names = [k for k, _ in got]
        self.assertEqual(names.count("haloyd-tunnel"), 1, got)
        self.assertIn(["haloyd-tunnel", "office"], got)
        self.assertNotIn("haloyd-tunnel-balance", names, "least-in-flight sends no field")
        self.assertIn(["x-forwarded-for", "127.0.0.1"], got, "the untrusted XFF replaced")
        self.assertIn(["x-forwarded-proto", "http"], got)
        self.assertIn([":authority", host], got)
        self.assertEqual(hop.accepted, 1)
        # The answer, status, fields, body and trailers, to HTTP/1.1 and HTTP/2 clients.
        (ver, code), headers, body = self.curl(host, "/trailers?status=201")
        self.assertEqual((ver, code, body), ("1.1", "201", b"body with trailers\n"))
        self.assertIn(("x-answer", "from-h2"), headers)
        (ver, code), headers, body = self.curl(host, "/trailers?status=201",
                                               ["--http2-prior-knowledge"])
        self.assertEqual((ver, code, body), ("2", "201", b"body with trailers\n"))
        self.assertIn(("x-answer", "from-h2"), headers)
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT) as s:
            s.sendall(("GET /trailers?raw HTTP/1.1\r\nHost: %s\r\nTE: trailers\r\n\r\n"
                       % host).encode())
            head, body, trailers = read_chunked_response(s)
        self.assertTrue(head.startswith("HTTP/1.1 200"), head)
        self.assertEqual(body, b"body with trailers\n")
        self.assertIn("x-checksum: abc123", [t.lower() for t in trailers])
        c = H2Client(self.daemon.port)
        self.addCleanup(c.close)
        r = c.get(host, "/trailers?status=202")
        self.assertEqual((r.status, bytes(r.data)), (202, b"body with trailers\n"))
        self.assertEqual(r.header("x-answer"), "from-h2")
        self.assertIn(("x-checksum", "abc123"), r.trailers or [])
        # A POST body over the hop, and the access entry names the tunnel.
        r = self.daemon.get(host, "/echo?post", method="POST", body=b"z" * 70000)
        self.assertEqual((r.status, r.body), (200, b"z" * 70000))
        self.assertEqual(hop.accepted, 1, "one hop session serves every stream")

        def entries():
            e = access_lines(self.log_since(), host)
            return e if len(e) >= 6 else None
        got = wait_for(entries, TIMEOUT, "6 access entries", self.daemon.log_tail)
        self.assertEqual({e["BACKEND"] for e in got}, {"tunnel:office"})

    def test_balance_round_robin_field(self):
        hop = self.hop()
        host = self.route("tunnel:nas.lan", label="rr")
        self.daemon.ctl_ok("route", "set", host, "--balance", "round-robin")
        r = self.daemon.get(host, "/headers?rr")
        got = json.loads(r.body)
        self.assertIn(["haloyd-tunnel", "nas.lan"], got)
        self.assertIn(["haloyd-tunnel-balance", "round-robin"], got)
        # Whatever the route's protocol: the hop is HTTP/2 with prior knowledge.
        h1 = self.route("tunnel:nas.lan", label="tls", extra=("--proto", "https"))
        self.assertEqual(self.daemon.get(h1, "/x").body, b"h2 backend hop\n")
        self.assertTrue(hop.records("/x"))

    def test_upgrade_to_tunnel_is_502(self):
        self.hop()
        host = self.route("tunnel:office", label="ws")
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=TIMEOUT) as s:
            s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" % host).encode())
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        self.assertTrue(data.startswith(b"HTTP/1.1 502"), data[:200])
        self.assertIn("(tunnel:office): no WebSocket or other upgrade over a tunnel: 502",
                      self.log_since())
