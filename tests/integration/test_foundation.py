"""Integration tests of the foundation (issue 2): the real haloyd with its
workers, haloyd-ctl, and HTTP/1.1 proxying to real backends.

Each class shares one daemon (tests use their own host names, so they do
not see each other's routes); GracefulStopTest starts one per test, as it
stops it.
"""
import json
import os
import pwd
import signal
import socket
import struct
import threading
import time
import unittest

from . import harness
from .backend import Backend, header
from .harness import DaemonTestCase, unique_host, wait_for

# share/msg.h and share/ipc.h, as the control socket speaks them
MSG_HELLO = 1
MSG_C_ROUTE_ADD = 64
MSG_C_ROUTE_LIST = 66
MSG_C_STATUS = 72
MSG_C_ROW, MSG_C_END, MSG_C_OK, MSG_C_FAIL = 96, 97, 98, 99
ROLE_WORKER, ROLE_CTL = 2, 5
PROTO = 2                       # HALOYD_PROTO_VERSION
IPC_F_FD = 1
HDR = struct.Struct("=HHIII")  # type, flags, len, seq, gen
HELLO = struct.Struct("=IIII")  # proto, role, index, pid
CTL_EUSAGE, CTL_EINVAL = 2, 7

SMALL_PAGE = 4096  # an error page is at most this many bytes


def one_line(err):
    return err.endswith("\n") and err.count("\n") == 1 and err.startswith("haloyd-ctl: ")


class ProxyTest(DaemonTestCase):
    """Routing by Host and forwarding to the route's backends."""

    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.backend("a")
        cls.b = cls.backend("b")

    def add_route(self, host, *backends, aliases=()):
        args = ["route", "add", host, backends[0]]
        for al in aliases:
            args += ["--alias", al]
        for be in backends[1:]:
            args += ["--backend", be]
        self.daemon.ctl_ok(*args)

    def test_route_add_proxies(self):
        host = unique_host("app")
        self.add_route(host, self.a.addr)
        r = self.daemon.get(host, "/hello?x=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.a.hello())
        rec = self.a.wait_request("/hello?x=1")
        self.assertEqual(rec["method"], "GET")
        self.assertEqual(header(rec, "Host"), [host], "Host is preserved")
        self.assertEqual(header(rec, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header(rec, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header(rec, "X-Forwarded-Host"), [host])

    def test_post_body_reaches_backend(self):
        host = unique_host("post")
        self.add_route(host, self.a.addr)
        body = b"name=value&" * 100
        r = self.daemon.get(host, "/echo", method="POST", body=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body)

    def test_host_upper_case_and_port(self):
        host = unique_host("case")
        self.add_route(host, self.a.addr)
        sent = host.upper().replace("EXAMPLE", "Example") + ":8080"
        r = self.daemon.get(sent, "/case")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, self.a.hello())
        rec = self.a.wait_request("/case")
        self.assertEqual(header(rec, "Host"), [sent], "Host is preserved as the client sent it")
        r = self.daemon.get(host + ".", "/case-dot")
        self.assertEqual(r.status, 200, "a trailing dot names the same host: %r" % r)

    def test_alias_on_route_add(self):
        host, alias = unique_host("main"), unique_host("www")
        self.add_route(host, self.a.addr, aliases=[alias])
        for i, h in enumerate((host, alias, alias.upper())):
            path = "/alias-on-add/%s/%d" % (host, i)
            r = self.daemon.get(h, path)
            self.assertEqual((r.status, r.body), (200, self.a.hello()), h)
            self.assertEqual(header(self.a.wait_request(path), "Host"), [h])

    def test_alias_add_rm(self):
        host, alias = unique_host("route"), unique_host("other")
        self.add_route(host, self.a.addr)
        self.assertEqual(self.daemon.get(alias).status, 404)
        self.daemon.ctl_ok("alias", "add", host, alias)
        r = self.daemon.get(alias, "/via-alias")
        self.assertEqual((r.status, r.body), (200, self.a.hello()))
        rec = self.a.wait_request("/via-alias")
        self.assertEqual(header(rec, "Host"), [alias])
        self.assertEqual(header(rec, "X-Forwarded-Host"), [alias])
        self.daemon.ctl_ok("alias", "rm", host, alias)
        self.assertEqual(self.daemon.get(alias).status, 404)
        self.assertEqual(self.daemon.get(host).status, 200, "the route itself stays")

    def test_route_rm_gives_404(self):
        host = unique_host("gone")
        self.add_route(host, self.a.addr)
        self.assertEqual(self.daemon.get(host).status, 200)
        self.daemon.ctl_ok("route", "rm", host)
        r = self.daemon.get(host, "/after-rm")
        self.assertEqual(r.status, 404, r)
        self.assertTrue(0 < len(r.body) <= SMALL_PAGE, "a small 404 page: %r" % r)
        self.assertEqual(self.a.records("/after-rm"), [], "nothing reaches the backend")

    def test_unknown_host_404(self):
        self.add_route(unique_host("known"), self.a.addr)
        r = self.daemon.get(unique_host("unknown"), "/nobody-home")
        self.assertEqual(r.status, 404, r)
        self.assertTrue(0 < len(r.body) <= SMALL_PAGE, r)
        self.assertEqual(self.a.records("/nobody-home") + self.b.records("/nobody-home"), [])

    def test_keepalive_connection_sees_route_rm(self):
        host = unique_host("ka")
        self.add_route(host, self.a.addr)
        c = self.daemon.keepalive()
        try:
            self.assertEqual(c.request("/1", host=host).status, 200)
            self.daemon.ctl_ok("route", "rm", host)
            self.assertEqual(c.request("/2", host=host).status, 404,
                             "the next request on a kept-alive connection uses the new map")
        finally:
            c.close()

    def test_backend_down_502(self):
        dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        self.addCleanup(dead.close)
        host = unique_host("down")
        self.add_route(host, "127.0.0.1:%d" % dead.getsockname()[1])
        r = self.daemon.get(host, "/")
        self.assertEqual(r.status, 502, r)
        self.assertTrue(0 < len(r.body) <= SMALL_PAGE, r)
        self.assertEqual(self.daemon.get(host).status, 502, "the worker survives and answers again")

    def test_two_backends_alternate(self):
        host = unique_host("rr")
        self.add_route(host, self.a.addr)
        self.daemon.ctl_ok("backend", "add", host, self.b.addr)
        c = self.daemon.keepalive()  # one connection: one worker, one round-robin
        try:
            seen = [c.request("/rr/%d" % i, host=host).body for i in range(8)]
        finally:
            c.close()
        self.assertEqual(set(seen), {self.a.hello(), self.b.hello()}, seen)
        for i in range(1, len(seen)):
            self.assertNotEqual(seen[i], seen[i - 1], "round-robin alternates: %r" % seen)
        fresh = {self.daemon.get(host, "/rr-fresh").body for _ in range(20)}
        self.assertEqual(fresh, {self.a.hello(), self.b.hello()})

    def test_route_add_with_two_backends(self):
        host = unique_host("rr2")
        self.add_route(host, self.a.addr, self.b.addr)
        c = self.daemon.keepalive()
        try:
            seen = [c.request("/", host=host).body for _ in range(4)]
        finally:
            c.close()
        self.assertEqual(set(seen), {self.a.hello(), self.b.hello()}, seen)

    def test_backend_rm(self):
        host = unique_host("berm")
        self.add_route(host, self.a.addr, self.b.addr)
        self.daemon.ctl_ok("backend", "rm", host, self.a.addr)
        bodies = {self.daemon.get(host).body for _ in range(10)}
        self.assertEqual(bodies, {self.b.hello()})


class DefaultPageTest(DaemonTestCase):
    """A daemon without any route answers with the page that says how to add one."""

    WORKERS = 1

    def test_no_route_at_all(self):
        self.assertEqual(self.daemon.status()["master"]["routes"], 0)
        r = self.daemon.get("anything.example.com", "/")
        self.assertIn(r.status, (200, 404), r)
        self.assertIn(b"haloyd-ctl route add", r.body, r)
        self.assertTrue(len(r.body) <= SMALL_PAGE, r)


class ReadYourWritesTest(DaemonTestCase):
    """When `route add` returns, every worker serves the route."""

    WORKERS = 4
    N = 200

    def fresh_statuses(self, host, path):
        return [self.daemon.get(host, "%s/%d" % (path, i)).status for i in range(self.N)]

    def test_route_add_then_200_on_fresh_connections(self):
        be = self.backend("ryw")
        # Another route stays, so an unknown host gets the 404 page, not the default page.
        self.daemon.ctl_ok("route", "add", unique_host("keeper"), be.addr)
        before = {w["index"]: w["requests"] for w in self.daemon.status()["workers"]}
        for rnd in range(2):
            host = unique_host("ryw")
            self.daemon.ctl_ok("route", "add", host, be.addr)
            got = self.fresh_statuses(host, "/ryw%d" % rnd)
            bad = [(i, s) for i, s in enumerate(got) if s != 200]
            self.assertEqual(bad, [], "requests right after `route add` that were not 200")
            self.daemon.ctl_ok("route", "rm", host)
            got = self.fresh_statuses(host, "/rm%d" % rnd)
            bad = [(i, s) for i, s in enumerate(got) if s != 404]
            self.assertEqual(bad, [], "requests right after `route rm` that were not 404")
        after = {w["index"]: w["requests"] for w in self.daemon.status()["workers"]}
        idle = [i for i in after if after[i] <= before.get(i, 0)]
        self.assertEqual(idle, [], "workers that served none of %d fresh connections: %r -> %r"
                         % (4 * self.N, before, after))


class RespawnTest(DaemonTestCase):
    """A worker killed with SIGKILL is respawned; requests keep succeeding."""

    WORKERS = 2

    def test_kill_9_worker(self):
        be = self.backend("respawn")
        host = unique_host("respawn")
        self.daemon.ctl_ok("route", "add", host, be.addr)
        st = self.daemon.status()
        victim = st["workers"][0]
        others = {w["index"]: w["pid"] for w in st["workers"] if w["index"] != victim["index"]}
        os.kill(victim["pid"], signal.SIGKILL)
        for i in range(30):
            r = self.daemon.get(host, "/during/%d" % i)
            self.assertEqual((r.status, r.body), (200, be.hello()), "request %d after the kill\n%s"
                             % (i, self.daemon.log_tail(15)))

        def respawned():
            s = self.daemon.status()
            w = [x for x in s["workers"] if x["index"] == victim["index"]]
            return s if (w and w[0]["pid"] not in (0, victim["pid"]) and
                         self.daemon.serving(s)) else None
        st = wait_for(respawned, 20, "worker %d to be respawned" % victim["index"],
                      self.daemon.log_tail)
        self.assertEqual({w["index"]: w["pid"] for w in st["workers"]
                          if w["index"] != victim["index"]}, others,
                         "the other workers were left alone")
        for i in range(50):
            r = self.daemon.get(host, "/after/%d" % i)
            self.assertEqual((r.status, r.body), (200, be.hello()), "request %d after respawn" % i)


class GracefulStopTest(unittest.TestCase):
    """SIGTERM lets an in-flight request finish, then the master exits 0."""

    def setUp(self):
        self.be = Backend("slow").start()
        self.addCleanup(self.be.stop)
        self.daemon = harness.Daemon(workers=2)
        self.addCleanup(self.daemon.close, check=False)
        self.daemon.start()

    def test_sigterm_with_slow_request_in_flight(self):
        host = unique_host("slow")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        path = "/slow?ms=1500"
        result = {}

        def client():
            try:
                result["r"] = self.daemon.get(host, path, timeout=20)
                result["t"] = time.monotonic()
            except Exception as e:  # reported by the assertions below
                result["e"] = e
        t = threading.Thread(target=client, daemon=True)
        t.start()
        rec = self.be.wait_request(path)
        self.daemon.signal(signal.SIGTERM)
        rc = self.daemon.wait_exit(30)
        t_exit = time.monotonic()
        t.join(20)
        self.assertFalse(t.is_alive(), "the client is still waiting")
        self.assertNotIn("e", result, "the in-flight request failed: %r\n%s"
                         % (result.get("e"), self.daemon.log_tail()))
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertEqual(result["r"].body, self.be.hello())
        self.assertIsNotNone(rec["t_reply"])
        self.assertGreaterEqual(t_exit, rec["t_reply"],
                                "the master exited before the backend answered")
        self.assertEqual(rc, 0, "master exit status\n" + self.daemon.log_tail())
        # Not run by systemd: no drain scope, and one line says why (master/drainscope.h).
        self.assertIn("the workers stop with the master: not run by systemd",
                      self.daemon.log_text())
        self.daemon.check_log()


class RawControl:
    """A hand-made control-socket client, for messages haloyd-ctl never sends."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.s.settimeout(5)
        self.s.connect(path)

    def close(self):
        self.s.close()

    def send_bytes(self, data, fds=None):
        """Sends one message; the master may already have hung up (ignored)."""
        try:
            if fds:
                socket.send_fds(self.s, [data], fds)
            else:
                self.s.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send(self, mtype, payload=b"", seq=0, flags=0, length=None, fds=None):
        n = len(payload) if length is None else length
        self.send_bytes(HDR.pack(mtype, flags, n, seq, 0) + payload, fds)

    def recv(self):
        """One message as (type, flags, seq, gen, payload), or None when closed."""
        resets = 0
        while True:
            try:
                data = self.s.recv(1 << 17)
            except ConnectionResetError:
                resets += 1
                if resets > 1:
                    return None
                continue
            except socket.timeout:
                raise AssertionError("the master neither answered nor closed within 5 s")
            if not data:
                return None
            if len(data) < HDR.size:
                raise AssertionError("short message from the master: %r" % data)
            t, f, n, seq, gen = HDR.unpack_from(data)
            if n != len(data) - HDR.size:
                raise AssertionError("bad length in a message from the master")
            return t, f, seq, gen, data[HDR.size:]

    def hello(self):
        self.send(MSG_HELLO, HELLO.pack(PROTO, ROLE_CTL, 0, os.getpid()))
        m = self.recv()
        if m is None or m[0] != MSG_HELLO:
            raise AssertionError("no HELLO from the master: %r" % (m,))

    def expect_closed(self, fail_code=None):
        """The master hangs up, sending at most FAIL messages first."""
        got = []
        while True:
            m = self.recv()
            if m is None:
                break
            got.append(m)
            if m[0] != MSG_C_FAIL:
                raise AssertionError("expected FAIL and a close, got message type %d" % m[0])
        if fail_code is not None:
            if not got:
                raise AssertionError("the master closed without a FAIL")
            self_code = struct.unpack_from("=I", got[0][4])[0]
            if self_code != fail_code:
                raise AssertionError("FAIL code %d, expected %d" % (self_code, fail_code))


def wb_str(s):
    b = s.encode()
    return struct.pack("=H", len(b)) + b


def route_add_payload(name, backend, trailing=b""):
    return (wb_str(name) + struct.pack("=H", 0) + struct.pack("=H", 1) + wb_str(backend) +
            trailing)


class ControlSocketTest(DaemonTestCase):
    """Who may use the control socket, and what a bad client cannot do."""

    WORKERS = 1

    def assert_refused(self, user):
        rc, out, err = self.daemon.ctl("status", user=user)
        self.assertEqual(rc, 4, "haloyd-ctl as %s: stdout %r stderr %r" % (user, out, err))
        self.assertTrue(one_line(err), "one line on stderr: %r" % err)
        self.assertIn("permission denied", err)
        self.assertEqual(out, "")

    def test_nobody_refused(self):
        self.assert_refused("nobody")

    def test_peer_check_refuses_non_admin(self):
        # Open the file-system path so that the master's SO_PEERCRED check is what refuses.
        os.chmod(self.daemon.run_dir, 0o755)
        os.chmod(self.daemon.sock, 0o666)
        self.addCleanup(os.chmod, self.daemon.run_dir, 0o700)
        self.addCleanup(os.chmod, self.daemon.sock, 0o660)
        other = [u for u in ("daemon", "bin", "sys") if self._user_exists(u)]
        self.assertTrue(other, "no unprivileged system user (daemon, bin, sys) to test with")
        for user in ("nobody", other[0]):
            with self.subTest(user=user):
                self.assert_refused(user)
                uid = pwd.getpwnam(user).pw_uid
                wait_for(lambda: ("uid %d refused" % uid) in self.daemon.log_text(), 5,
                         "the refusal of uid %d in the log" % uid, self.daemon.log_tail)
        self.daemon.ctl_ok("status")

    @staticmethod
    def _user_exists(name):
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    def assert_master_fine(self):
        self.assertIsNone(self.daemon.proc.poll(), "the master died\n" + self.daemon.log_tail())
        st = self.daemon.status()
        self.assertEqual(st["master"]["pid"], self.daemon.pid)

    def test_malformed_messages(self):
        vectors = [
            ("short header", lambda c: (c.send_bytes(b"\x01\x00\x10"), c.expect_closed())),
            ("command before HELLO", lambda c: (c.send(MSG_C_STATUS), c.expect_closed())),
            ("unknown type before HELLO", lambda c: (c.send(9999), c.expect_closed())),
            ("length larger than the message",
             lambda c: (c.send(MSG_HELLO, b"\0" * 16, length=0xFFFFFFF0), c.expect_closed())),
            ("length smaller than the message",
             lambda c: (c.send(MSG_HELLO, HELLO.pack(PROTO, ROLE_CTL, 0, 1), length=4),
                        c.expect_closed())),
            ("oversize message",
             lambda c: (c.send(MSG_HELLO, b"\xff" * 70000), c.expect_closed())),
            ("HELLO of the wrong size",
             lambda c: (c.send(MSG_HELLO, b"\1\0\0\0\5\0\0\0"), c.expect_closed())),
            ("HELLO with a worker role",
             lambda c: (c.send(MSG_HELLO, HELLO.pack(PROTO, ROLE_WORKER, 0, 1)), c.expect_closed())),
            ("HELLO with another protocol",
             lambda c: (c.send(MSG_HELLO, HELLO.pack(99, ROLE_CTL, 0, 1)), c.expect_closed(1))),
            ("HELLO carrying an fd", self._hello_with_fd),
            ("fd without the fd flag", self._fd_without_flag),
            ("unknown type after HELLO",
             lambda c: (c.hello(), c.send(9999, b"x", seq=1), c.expect_closed(CTL_EUSAGE))),
            ("reply type sent to the master",
             lambda c: (c.hello(), c.send(MSG_C_OK, wb_str("x"), seq=1),
                        c.expect_closed(CTL_EUSAGE))),
            ("status with a payload",
             lambda c: (c.hello(), c.send(MSG_C_STATUS, b"junk", seq=1),
                        c.expect_closed(CTL_EUSAGE))),
            ("string longer than the payload",
             lambda c: (c.hello(), c.send(MSG_C_ROUTE_ADD, struct.pack("=H", 200) + b"abcde",
                                          seq=1), c.expect_closed(CTL_EUSAGE))),
            ("huge alias count",
             lambda c: (c.hello(), c.send(MSG_C_ROUTE_ADD, wb_str("a.example.com") +
                                          struct.pack("=H", 65535) + b"\0" * 8, seq=1),
                        c.expect_closed(CTL_EUSAGE))),
            ("trailing bytes after a route add",
             lambda c: (c.hello(), c.send(MSG_C_ROUTE_ADD,
                                          route_add_payload("trailing.example.com",
                                                            "127.0.0.1:9", b"zz"), seq=1),
                        c.expect_closed(CTL_EUSAGE))),
            ("command carrying an fd", self._command_with_fd),
            ("hang up at once", lambda c: None),
            ("hang up after HELLO", lambda c: c.hello()),
        ]
        for name, run in vectors:
            if self.daemon.proc.poll() is not None:
                break  # the vector that killed it has failed already
            with self.subTest(vector=name):
                c = RawControl(self.daemon.sock)
                try:
                    run(c)
                finally:
                    c.close()
                self.assert_master_fine()
        rc, out, _ = self.daemon.ctl("route", "list")
        self.assertEqual(rc, 0)
        self.assertNotIn("trailing.example.com", out, "a malformed route add changed the store")

    def _hello_with_fd(self, c):
        with open(os.devnull, "rb") as f:
            c.send(MSG_HELLO, HELLO.pack(PROTO, ROLE_CTL, 0, 1), flags=IPC_F_FD, fds=[f.fileno()])
        c.expect_closed()

    def _fd_without_flag(self, c):
        with open(os.devnull, "rb") as f:
            c.send(MSG_HELLO, HELLO.pack(PROTO, ROLE_CTL, 0, 1), fds=[f.fileno()])
        c.expect_closed()

    def _command_with_fd(self, c):
        c.hello()
        with open(os.devnull, "rb") as f:
            c.send(MSG_C_STATUS, seq=1, flags=IPC_F_FD, fds=[f.fileno()])
        c.expect_closed(CTL_EUSAGE)

    def test_idle_client_does_not_block_others(self):
        c = RawControl(self.daemon.sock)
        try:
            self.daemon.ctl_ok("status")
            c.hello()
            self.daemon.ctl_ok("route", "list")
        finally:
            c.close()

    def test_invalid_name_from_a_raw_client(self):
        # haloyd-ctl checks names itself: the master must check them again.
        c = RawControl(self.daemon.sock)
        try:
            c.hello()
            c.send(MSG_C_ROUTE_ADD, route_add_payload("bad!name.example.com", "127.0.0.1:9"), seq=7)
            m = c.recv()
            self.assertIsNotNone(m)
            self.assertEqual((m[0], m[2]), (MSG_C_FAIL, 7))
            self.assertEqual(struct.unpack_from("=I", m[4])[0], CTL_EINVAL)
            c.send(MSG_C_ROUTE_ADD, route_add_payload("ok.example.com", "127.0.0.1:99999"), seq=8)
            m = c.recv()
            self.assertEqual((m[0], m[2]), (MSG_C_FAIL, 8))
            self.assertEqual(struct.unpack_from("=I", m[4])[0], CTL_EINVAL)
            c.send(MSG_C_ROUTE_LIST, seq=9)  # the connection still works
            types = []
            while not types or types[-1] != MSG_C_END:
                m = c.recv()
                self.assertIsNotNone(m)
                types.append(m[0])
            self.assertTrue(all(t == MSG_C_ROW for t in types[:-1]))
        finally:
            c.close()
        self.assert_master_fine()


class CtlTest(DaemonTestCase):
    """haloyd-ctl's commands, output (table, blocks, --json) and exit codes."""

    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("ctl")
        cls.be2 = cls.backend("ctl2")

    def route_rows(self):
        return json.loads(self.daemon.ctl_ok("--json", "route", "list"))

    def test_route_add_output(self):
        host = unique_host("out")
        out = self.daemon.ctl_ok("route", "add", host, self.be.addr)
        self.assertRegex(out, r"^route %s added \(generation \d+\)\n$" % host.replace(".", r"\."))
        g1 = int(out.split("generation ")[1].rstrip(")\n"))
        out = self.daemon.ctl_ok("alias", "add", host, unique_host("al"), "--json")
        js = json.loads(out)
        self.assertIs(js["ok"], True)
        self.assertGreater(js["generation"], g1)
        self.assertIn(host, js["message"])
        self.assertGreaterEqual(self.daemon.status()["master"]["generation"], js["generation"])

    def test_names_are_normalised(self):
        host = unique_host("norm")
        self.daemon.ctl_ok("route", "add", host.upper() + ".", self.be.addr)
        names = [r["name"] for r in self.route_rows()]
        self.assertIn(host, names)
        self.assertNotIn(host.upper(), names)
        rc, _, err = self.daemon.ctl("route", "add", host, self.be.addr)
        self.assertEqual(rc, 6, err)

    def test_route_list_and_show(self):
        host, al1, al2 = unique_host("list"), unique_host("la"), unique_host("lb")
        self.daemon.ctl_ok("route", "add", host, self.be.addr, "--alias", al1, "--alias", al2,
                           "--backend", self.be2.addr)
        lines = self.daemon.ctl_ok("route", "list").splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "ALIASES", "BACKENDS", "PROTO", "ID",
                                            "SETTINGS"])
        row = [ln.split() for ln in lines[1:] if ln.split()[0] == host]
        self.assertEqual(len(row), 1, lines)
        name, aliases, backends, proto, rid, settings = row[0]
        self.assertEqual(proto, "http1")
        self.assertEqual(settings, "-")  # nothing overridden
        self.assertEqual(set(aliases.split(",")), {al1, al2})
        self.assertEqual(set(backends.split(",")), {self.be.addr, self.be2.addr})
        self.assertTrue(rid.isdigit())
        starts = {lines[0].index(col) for col in ("ALIASES", "BACKENDS", "PROTO", "ID",
                                                  "SETTINGS")}
        for ln in lines[1:]:
            for s in starts:
                self.assertEqual(ln[s - 2:s], "  ", "columns line up:\n" + "\n".join(lines))

        js = [r for r in self.route_rows() if r["name"] == host]
        self.assertEqual(len(js), 1)
        self.assertEqual(set(js[0]["aliases"]), {al1, al2})
        self.assertEqual(set(js[0]["backends"]), {self.be.addr, self.be2.addr})
        self.assertEqual(js[0]["id"], int(rid))

        show = self.daemon.ctl_ok("route", "show", host)
        kv = dict(ln.split(": ", 1) for ln in show.splitlines())
        self.assertEqual(kv["name"], host)
        self.assertEqual(set(kv["aliases"].split(",")), {al1, al2})
        self.assertEqual(set(kv["backends"].split(",")), {self.be.addr, self.be2.addr})
        self.assertEqual(kv["id"], rid)
        shown = json.loads(self.daemon.ctl_ok("route", "show", host, "--json"))
        common = set(shown) & set(js[0])
        self.assertTrue({"name", "aliases", "backends", "proto", "id"} <= common)
        self.assertEqual({k: shown[k] for k in common}, {k: js[0][k] for k in common})

    def test_route_without_alias_prints_dash(self):
        host = unique_host("dash")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        lines = self.daemon.ctl_ok("route", "list").splitlines()
        row = [ln.split() for ln in lines[1:] if ln.split()[0] == host]
        self.assertEqual(row[0][1], "-")
        js = [r for r in self.route_rows() if r["name"] == host][0]
        self.assertEqual(js["aliases"], [])

    def test_status_output(self):
        st = self.daemon.status()
        m = st["master"]
        self.assertEqual(m["role"], "master")
        self.assertEqual(m["pid"], self.daemon.pid)
        self.assertEqual(m["workers"], self.WORKERS)
        for k in ("generation", "uptime_s", "routes"):
            self.assertIsInstance(m[k], int, k)
        self.assertEqual(sorted(w["index"] for w in st["workers"]), list(range(self.WORKERS)))
        for w in st["workers"]:
            self.assertEqual(w["role"], "worker")
            self.assertNotEqual(w["pid"], self.daemon.pid)
            self.assertEqual(w["generation"], m["generation"])
            for k in ("requests", "connections"):
                self.assertIsInstance(w[k], int, k)
            with open("/proc/%d/stat" % w["pid"]) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            self.assertEqual(ppid, self.daemon.pid, "workers are the master's children")
        self.assertEqual(m["routes"], len(self.route_rows()))

        text = self.daemon.ctl_ok("status")
        blocks = [b for b in text.strip().split("\n\n")]
        self.assertEqual(len(blocks), 1 + self.WORKERS, text)
        first = dict(ln.split(": ", 1) for ln in blocks[0].splitlines())
        self.assertEqual(first["role"], "master")
        self.assertEqual(first["pid"], str(self.daemon.pid))
        pids = {str(w["pid"]) for w in st["workers"]}
        for b in blocks[1:]:
            kv = dict(ln.split(": ", 1) for ln in b.splitlines())
            self.assertEqual(kv["role"], "worker")
            self.assertIn(kv["pid"], pids)
            for k in ("index", "generation", "requests", "connections"):
                self.assertIn(k, kv)

    def test_status_counts_requests(self):
        host = unique_host("count")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        before = sum(w["requests"] for w in self.daemon.status()["workers"])
        for _ in range(5):
            self.assertEqual(self.daemon.get(host).status, 200)
        after = sum(w["requests"] for w in self.daemon.status()["workers"])
        self.assertGreaterEqual(after - before, 5)

    def test_workers_run_unprivileged(self):
        self.assertTrue(harness.is_root(), "the daemon runs as root in this suite (CI)")
        nobody = pwd.getpwnam("nobody")
        for w in self.daemon.status()["workers"]:
            with open("/proc/%d/status" % w["pid"]) as f:
                fields = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
            self.assertEqual(fields["Uid"].split(), [str(nobody.pw_uid)] * 4)
            self.assertEqual(fields["Gid"].split(), [str(nobody.pw_gid)] * 4)
            self.assertIn(fields["Groups"].split(), ([], [str(nobody.pw_gid)]))

    def test_socket_from_environment(self):
        rc, out, err = self.daemon.ctl("status", sock=False,
                                       env={"HALOYD_CONTROL": self.daemon.sock})
        self.assertEqual(rc, 0, err)
        self.assertIn("role: master", out)

    def assert_code(self, code, *args, **kw):
        rc, out, err = self.daemon.ctl(*args, **kw)
        self.assertEqual(rc, code, "haloyd-ctl %s: stdout %r stderr %r" % (" ".join(args), out, err))
        self.assertTrue(one_line(err), "one line on stderr for %r: %r" % (args, err))
        self.assertEqual(out, "", args)
        return err

    def test_unknown_route_exit_5(self):
        host = unique_host("known5")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        missing = unique_host("missing")
        self.assert_code(5, "route", "rm", missing)
        self.assert_code(5, "route", "show", missing)
        self.assert_code(5, "backend", "add", missing, self.be2.addr)
        self.assert_code(5, "alias", "add", missing, unique_host("x"))
        self.assert_code(5, "alias", "rm", host, unique_host("notalias"))
        self.assert_code(5, "backend", "rm", host, self.be2.addr)

    def test_duplicate_exit_6(self):
        host, other, al = unique_host("dup"), unique_host("dup2"), unique_host("dupal")
        self.daemon.ctl_ok("route", "add", host, self.be.addr, "--alias", al)
        self.daemon.ctl_ok("route", "add", other, self.be.addr)
        self.assert_code(6, "route", "add", host, self.be2.addr)
        self.assert_code(6, "route", "add", al, self.be2.addr)
        self.assert_code(6, "alias", "add", other, al)
        self.assert_code(6, "alias", "add", other, host)
        self.assert_code(6, "backend", "add", host, self.be.addr)
        js = [r for r in self.route_rows() if r["name"] == host][0]
        self.assertEqual(js["backends"], [self.be.addr], "a refused change changed nothing")
        self.assertEqual(js["aliases"], [al])

    def test_invalid_exit_7(self):
        host = unique_host("inv")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        for name in ("bad!name.example.com", "a.-lead.example.com", "a..b.example.com",
                     "x" * 64 + ".example.com", "trail-.example.com", "sp ace.example.com"):
            self.assert_code(7, "route", "add", name, self.be.addr)
            self.assert_code(7, "alias", "add", host, name)
        for be in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "300.1.1.1:80",
                   "127.0.0.1:http", "[::1:80"):
            self.assert_code(7, "route", "add", unique_host("badbe"), be)
            self.assert_code(7, "backend", "add", host, be)

    def test_no_daemon_exit_3(self):
        missing = os.path.join(self.daemon.base, "no-such.sock")
        self.assert_code(3, "-s", missing, "status", sock=False)
        self.assert_code(3, "-s", self.daemon.conf_path, "route", "list", sock=False)

    def test_usage_exit_2(self):
        for args in (["frobnicate"], ["route"], ["route", "frob"], ["route", "add", "only.example.com"],
                     ["--bogus", "status"], ["route", "list", "extra"],
                     ["status", "--alias", "a.example.com"], ["status", "-s"]):
            self.assert_code(2, *args)
        rc, out, err = self.daemon.ctl(sock=False)
        self.assertEqual(rc, 2)
        self.assertIn("usage:", err)

    def test_json_errors(self):
        rc, out, err = self.daemon.ctl("--json", "route", "rm", unique_host("nojs"))
        self.assertEqual(rc, 5)
        self.assertTrue(one_line(err), err)
        js = json.loads(out)
        self.assertEqual((js["ok"], js["code"]), (False, 5))
        self.assertIsInstance(js["error"], str)

    def test_help(self):
        rc, out, err = self.daemon.ctl("help", sock=False)
        self.assertEqual(rc, 0, err)
        for word in ("route add", "alias add", "backend rm", "status", "exit status"):
            self.assertIn(word, out)


if __name__ == "__main__":
    unittest.main()
