"""Upgrades that lose nothing (issue 21): `haloyd-ctl upgrade` re-executes the
binary at the path haloyd was started from; the new master takes the
listening sockets over the control socket, the old workers drain and the old
master exits last.

Under load (HTTP and HTTPS, keep-alive and new connections, counted one by
one), with open WebSockets echoing and a 200 MiB download read slowly, a
re-exec of the same binary refuses no connection and fails no request. A new
binary that fails `haloyd -t`, or that starts but dies after the old master
went read-only, leaves the old master serving (and writable):
`haloyd-ctl upgrade` exits non-zero with one line. Every wait is bounded.
"""
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import ssl
import tempfile
import threading
import time
import unittest

from . import harness
from .backend import Backend, WebSocketEcho
from .harness import Daemon, unique_host, wait_for
from .test_tls import Pki

DOWNLOAD_BYTES = 200 << 20
DOWNLOAD_RATE = 20 << 20     # bytes/s the client reads: ~10 s, in flight across the hand-over
LOAD_TIMEOUT = 10.0
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with the route's name as SNI."""

    def __init__(self, port, sni, ctx):
        super().__init__("127.0.0.1", port, timeout=LOAD_TIMEOUT, context=ctx)
        self.sni = sni

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.sni)


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = self.ok = self.refused = self.failed = self.stale_retries = 0
        self.errors = []
        self.stale = []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, what):
        with self.lock:
            self.failed += 1
            if len(self.errors) < 20:
                self.errors.append(what)


class Load:
    """Client threads: for each of HTTP and HTTPS, two keep-alive and two
    new-connection-per-request loops. A request on a reused keep-alive
    connection that the server closed before sending any byte of an answer
    (the idle-close race every HTTP/1.1 server has when it stops) is retried
    once on a new connection, as RFC 9112 9.3.1 allows for GET, and counted
    in stale_retries (the hand-over's drain closes no idle connection, so the
    test expects none); anything else that is not the expected 200 is failed."""

    def __init__(self, host, http_port, https_port, ctx):
        self.host, self.ports, self.ctx = host, (http_port, https_port), ctx
        self.c = Counts()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(tls, keep), daemon=True)
                        for tls in (False, True) for keep in (False, True) for _ in range(2)]

    def _conn(self, tls):
        if tls:
            return SNIConnection(self.ports[1], self.host, self.ctx)
        return http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=LOAD_TIMEOUT)

    def _one(self, conn):
        conn.request("GET", "/", headers={"Host": self.host})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or not body.startswith(b"backend up"):
            raise AssertionError("status %d body %r" % (r.status, body[:60]))

    def _run(self, tls, keep):
        conn, used = None, 0
        while not self.stop.is_set():
            self.c.add(sent=1)
            for attempt in (0, 1):
                if conn is None:
                    conn, used = self._conn(tls), 0
                try:
                    self._one(conn)
                    self.c.add(ok=1)
                    used += 1
                    break
                except ConnectionRefusedError:
                    self.c.add(refused=1)
                    conn = None
                    break
                except STALE as e:
                    conn.close()
                    stale = keep and used > 0 and attempt == 0
                    conn = None
                    if stale:
                        self.c.add(stale_retries=1)
                        with self.c.lock:
                            self.c.stale.append("%.3f %s: %r" % (time.monotonic(),
                                                                 "https" if tls else "http", e))
                        continue
                    self.c.error("%s %s: %r" % ("https" if tls else "http",
                                                "keep-alive" if keep else "new", e))
                    break
                except Exception as e:  # noqa: BLE001 - every other outcome is a failure
                    conn.close()
                    conn = None
                    self.c.error("%s %s: %r" % ("https" if tls else "http",
                                                "keep-alive" if keep else "new", e))
                    break
            if conn is not None and (not keep or conn.sock is None):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(LOAD_TIMEOUT * 3)
        return not any(t.is_alive() for t in self.threads)


class Download(threading.Thread):
    """GET /big through haloyd, read at DOWNLOAD_RATE; the bytes it got."""

    def __init__(self, port, host):
        super().__init__(daemon=True)
        self.port, self.host = port, host
        self.got, self.status, self.error, self.done_at = 0, None, None, None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.sendall(("GET /big?bytes=%d HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (DOWNLOAD_BYTES, self.host)).encode())
            f = s.makefile("rb")
            self.status = f.readline()
            while f.readline() not in (b"\r\n", b""):
                pass
            start = time.monotonic()
            while True:
                b = f.read1(1 << 20)
                if not b:
                    break
                self.got += len(b)
                ahead = self.got / DOWNLOAD_RATE - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            s.close()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)
        self.done_at = time.monotonic()


class Sockets(threading.Thread):
    """n WebSockets, each sending a message every 50 ms and checking its echo."""

    def __init__(self, port, host, n):
        super().__init__(daemon=True)
        self.port, self.host, self.n = port, host, n
        self.stop = threading.Event()
        self.echoed = [0] * n
        self.echo_times = [[] for _ in range(n)]
        self.errors = []
        self.opened = threading.Event()
        self._open = 0

    async def _one(self, i):
        import websockets
        try:
            s = socket.create_connection(("127.0.0.1", self.port))
            async with websockets.connect("ws://%s/ws-echo" % self.host, sock=s,
                                          compression=None, open_timeout=10,
                                          close_timeout=10) as ws:
                self._open += 1
                if self._open == self.n:
                    self.opened.set()
                k = 0
                while not self.stop.is_set():
                    msg = "ws %d message %d" % (i, k)
                    await ws.send(msg)
                    back = await asyncio.wait_for(ws.recv(), 10)
                    if back != msg:
                        self.errors.append("ws %d: %r != %r" % (i, back, msg))
                        return
                    self.echoed[i] += 1
                    self.echo_times[i].append(time.monotonic())
                    k += 1
                    await asyncio.sleep(0.05)
                await ws.close()
                if ws.close_code != 1000:
                    self.errors.append("ws %d closed with %s" % (i, ws.close_code))
        except Exception as e:  # noqa: BLE001
            self.errors.append("ws %d: %r" % (i, e))

    def run(self):
        async def main():
            await asyncio.gather(*(self._one(i) for i in range(self.n)))
        asyncio.run(main())


class WrappedDaemon(Daemon):
    """haloyd started as a script at another path: what `haloyd-ctl upgrade`
    re-executes is whatever that path holds when it runs."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.wrapper = os.path.join(self.base, "bin", "haloyd")
        os.makedirs(os.path.dirname(self.wrapper), mode=0o755, exist_ok=True)
        self.write_wrapper("")

    def write_wrapper(self, body):
        """A bash script running the real haloyd as argv[0] = its own path, after body."""
        tmp = self.wrapper + ".new"
        with open(tmp, "w") as f:
            f.write("#!/bin/bash\n%s\nexec -a \"$0\" %s \"$@\"\n"
                    % (body, harness.program("haloyd")))
        os.chmod(tmp, 0o755)
        os.rename(tmp, self.wrapper)  # as dpkg replaces a file

    def argv(self):
        a = super().argv()
        a[a.index(harness.program("haloyd"))] = self.wrapper
        return a


class CopiedDaemon(Daemon):
    """haloyd started from a copy of the build at another path, which a test
    replaces (by rename, as dpkg does) with another binary before upgrading."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.binary = os.path.join(self.base, "sbin", "haloyd")
        os.makedirs(os.path.dirname(self.binary), mode=0o755, exist_ok=True)
        shutil.copy2(harness.program("haloyd"), self.binary)

    def replace_binary(self, old_version, new_version):
        """The build with its version string changed (same length): a rebuilt
        binary as far as the kernel and the log can tell. Its inode."""
        with open(harness.program("haloyd"), "rb") as f:
            data = f.read()
        # Ended by its NUL, not started by one: an optimised build keeps the version
        # only as the tail of a longer string ("haloyd/0.1.0"), which the linker shares.
        old, new = b"%s\0" % old_version.encode(), b"%s\0" % new_version.encode()
        assert len(old) == len(new) and data.count(old) >= 1, (old, new)
        tmp = self.binary + ".dpkg-new"
        with open(tmp, "wb") as f:
            f.write(data.replace(old, new))
        os.chmod(tmp, 0o755)
        os.rename(tmp, self.binary)
        return os.stat(self.binary).st_ino

    def argv(self):
        a = super().argv()
        a[a.index(harness.program("haloyd"))] = self.binary
        return a


class UpgradeBase(unittest.TestCase):
    DAEMON = Daemon

    def extra_args(self):
        return ()

    def setUp(self):
        self.https_port = harness.free_port()
        self.pki = Pki()
        self.addCleanup(self.pki.close)
        self.daemon = self.DAEMON(2, ("--listen-https", "127.0.0.1:%d" % self.https_port,
                                      "--upgrade-drain", "60s") + tuple(self.extra_args()))
        self.new_pid = None
        self.be = Backend("up").start()
        self.addCleanup(self.be.stop)
        try:
            self.daemon.start()
        except BaseException:
            self.daemon.close(check=False)
            raise
        self.addCleanup(self._close)
        self.host = unique_host("upgrade")
        self.daemon.ctl_ok("route", "add", self.host, self.be.addr)
        self.daemon.ctl_ok("route", "set", self.host, "--https-redirect", "off")
        cert, key, _ = self.pki.leaf(self.host, [self.host])
        self.daemon.ctl_ok("cert", "import", self.host, "--cert", cert, "--key", key)
        self.ctx = ssl.create_default_context(cafile=self.pki.ca)
        self.mark = self.daemon.log_size()

    def master_pid(self):
        return self.daemon.status()["master"]["pid"]

    def _close(self):
        if self.new_pid is not None and pid_alive(self.new_pid):
            os.kill(self.new_pid, signal.SIGTERM)
            try:
                wait_for(lambda: not pid_alive(self.new_pid), harness.STOP_TIMEOUT,
                         "the new master to stop", self.daemon.log_tail)
            finally:
                if pid_alive(self.new_pid):
                    os.kill(self.new_pid, signal.SIGKILL)
            self.daemon.proc.poll()
            self.daemon.check_log()
            self.daemon.close(check=False)
        else:
            self.daemon.close()

    def assert_serves(self, pid):
        r = self.daemon.get(self.host)
        self.assertEqual(r.status, 200)
        self.assertEqual(self.master_pid(), pid)


class UpgradeUnderLoadTest(UpgradeBase):

    def test_reexec_under_load_loses_nothing(self):
        ws_be = WebSocketEcho().start()
        self.addCleanup(ws_be.stop)
        ws_host = unique_host("ws")
        self.daemon.ctl_ok("route", "add", ws_host, ws_be.addr)
        old_pid = self.master_pid()

        load = Load(self.host, self.daemon.port, self.https_port, self.ctx).start()
        socks = Sockets(self.daemon.port, ws_host, 5)
        socks.start()
        dl = Download(self.daemon.port, self.host)
        dl.start()
        try:
            wait_for(lambda: socks.opened.is_set() or socks.errors, 20, "5 open WebSockets")
            wait_for(lambda: load.c.ok >= 100 and dl.got > 0, 30, "load and the download")
            t0 = time.monotonic()
            rc, out, err = self.daemon.ctl("upgrade")
            t1 = time.monotonic()
            self.assertEqual(rc, 0, "haloyd-ctl upgrade: %s %s\n%s"
                             % (out, err, self.daemon.log_tail()))
            self.new_pid = wait_for(lambda: (self.master_pid() != old_pid and
                                             self.master_pid()), 10, "the new master to answer")
            self.assertTrue(pid_alive(old_pid), "the old master drains, it has not exited")
            before = load.c.ok
            wait_for(lambda: load.c.ok >= before + 200, 60, "200 more requests after")
            ws_mark = [len(t) for t in socks.echo_times]
            wait_for(lambda: all(len(t) >= m + 5 for t, m in zip(socks.echo_times, ws_mark)),
                     20, "every WebSocket to echo 5 more messages after the upgrade")
        finally:
            finished = load.finish()
            socks.stop.set()
            socks.join(30)
        dl.join(120)
        self.assertTrue(finished, "load threads ended")
        self.assertFalse(dl.is_alive(), "the download ended within its bound")
        c = load.c
        print("\nupgrade under load: %d requests sent, %d ok, %d refused, %d failed, "
              "%d stale keep-alive retries; download %d bytes; WebSocket echoes %s; "
              "upgrade took %.2f s" % (c.sent, c.ok, c.refused, c.failed, c.stale_retries,
                                       dl.got, socks.echoed, t1 - t0))
        self.assertEqual(c.refused, 0, "refused connections")
        self.assertEqual(c.failed, 0, "failed requests: %s" % c.errors)
        # The drain closes no idle connection: not even a retryable close happened.
        self.assertEqual(c.stale_retries, 0, "keep-alive connections closed under a request: "
                         "%s (upgrade from %.3f to %.3f)" % (c.stale, t0, t1))
        self.assertEqual(c.ok + c.refused + c.failed, c.sent)
        self.assertIsNone(dl.error, "the download")
        self.assertTrue(dl.status.startswith(b"HTTP/1.1 200"), dl.status)
        self.assertEqual(dl.got, DOWNLOAD_BYTES, "the download's byte count")
        self.assertGreater(dl.done_at, t1, "the download was in flight across the hand-over")
        self.assertEqual(socks.errors, [])
        # The old master exits once its last connection is done, well before upgrade_drain.
        self.assertEqual(self.daemon.wait_exit(60), 0)
        log = self.daemon.log_text(self.mark)
        self.assertIn("listening sockets handed over", log)
        self.assertIn("inherited)", log)
        self.assert_serves(self.new_pid)
        # The new master writes the store: the old one is gone, nothing is read-only.
        self.daemon.ctl_ok("route", "add", unique_host("after"), self.be.addr)


class UpgradeToRebuiltBinaryTest(UpgradeBase):
    """The file at haloyd's path is replaced by another build (its version
    string changed) while it serves under load; `haloyd-ctl upgrade` hands
    over to that binary: the new master runs the new file and says its
    version, nothing is refused or failed, and WebSockets and a download in
    flight go on."""
    DAEMON = CopiedDaemon

    def version(self, path):
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().split()[-1]

    def test_handover_to_a_rebuilt_binary_under_load(self):
        old_version = self.version(self.daemon.binary)
        new_version = old_version[:-1] + ("9" if old_version[-1] != "9" else "8")
        ws_be = WebSocketEcho().start()
        self.addCleanup(ws_be.stop)
        ws_host = unique_host("ws")
        self.daemon.ctl_ok("route", "add", ws_host, ws_be.addr)
        old_pid = self.master_pid()
        old_ino = os.stat("/proc/%d/exe" % old_pid).st_ino

        load = Load(self.host, self.daemon.port, self.https_port, self.ctx).start()
        socks = Sockets(self.daemon.port, ws_host, 5)
        socks.start()
        dl = Download(self.daemon.port, self.host)
        dl.start()
        try:
            wait_for(lambda: socks.opened.is_set() or socks.errors, 20, "5 open WebSockets")
            wait_for(lambda: load.c.ok >= 100 and dl.got > 0, 30, "load and the download")
            new_ino = self.daemon.replace_binary(old_version, new_version)
            self.assertNotEqual(new_ino, old_ino)
            self.assertEqual(self.version(self.daemon.binary), new_version)
            before = load.c.ok
            wait_for(lambda: load.c.ok >= before + 50, 30, "load on the replaced file's master")
            rc, out, err = self.daemon.ctl("upgrade")
            self.assertEqual(rc, 0, "haloyd-ctl upgrade: %s %s\n%s"
                             % (out, err, self.daemon.log_tail()))
            self.new_pid = wait_for(lambda: (self.master_pid() != old_pid and
                                             self.master_pid()), 10, "the new master to answer")
            # The new master runs the new file; the old one its deleted inode.
            self.assertEqual(os.stat("/proc/%d/exe" % self.new_pid).st_ino, new_ino)
            before = load.c.ok
            wait_for(lambda: load.c.ok >= before + 200, 60, "200 more requests after")
            ws_mark = [len(t) for t in socks.echo_times]
            wait_for(lambda: all(len(t) >= m + 5 for t, m in zip(socks.echo_times, ws_mark)),
                     20, "every WebSocket to echo 5 more messages after the upgrade")
        finally:
            finished = load.finish()
            socks.stop.set()
            socks.join(30)
        dl.join(120)
        self.assertTrue(finished, "load threads ended")
        c = load.c
        print("\nupgrade to a rebuilt binary (%s -> %s) under load: %d requests sent, %d ok, "
              "%d refused, %d failed; download %d bytes; WebSocket echoes %s"
              % (old_version, new_version, c.sent, c.ok, c.refused, c.failed, dl.got,
                 socks.echoed))
        self.assertEqual(c.refused, 0, "refused connections")
        self.assertEqual(c.failed, 0, "failed requests: %s" % c.errors)
        self.assertEqual(c.stale_retries, 0, c.stale)
        self.assertIsNone(dl.error, "the download")
        self.assertEqual(dl.got, DOWNLOAD_BYTES, "the download's byte count")
        self.assertEqual(socks.errors, [])
        self.assertEqual(self.daemon.wait_exit(60), 0)
        log = self.daemon.log_text(self.mark)
        self.assertIn("haloyd %s starting" % new_version, log)
        self.assertIn("inherited)", log)
        self.assert_serves(self.new_pid)
        self.daemon.ctl_ok("route", "add", unique_host("after"), self.be.addr)


class Loop:
    """Threads calling one(conn) in a loop, each on a connection of its own
    (keep=True: reused until the server closes it; else one per call);
    refused connections and every other failure counted."""

    def __init__(self, connect, one, keep_threads=1, new_threads=1):
        self.connect, self.one = connect, one
        self.c = Counts()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(keep,), daemon=True)
                        for keep in [True] * keep_threads + [False] * new_threads]

    def _run(self, keep):
        conn = None
        while not self.stop.is_set():
            self.c.add(sent=1)
            try:
                if conn is None:
                    conn = self.connect()
                self.one(conn)
                self.c.add(ok=1)
            except ConnectionRefusedError:
                self.c.add(refused=1)
                conn = None
                continue
            except Exception as e:  # noqa: BLE001 - every other outcome is a failure
                self.c.error("%s: %r" % ("keep-alive" if keep else "new", e))
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if not keep or conn.sock is None:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(LOAD_TIMEOUT * 3)
        return not any(t.is_alive() for t in self.threads)


class UpgradeEveryListenerTest(UpgradeBase):
    """listen_metrics and listen_tunnel are handed over like the HTTP ones:
    a scrape loop and requests through an attached haloyd-tunnel agent go on
    across the upgrade without one refused connection or failed request; the
    agent reattaches to the new tunnel process."""

    def extra_args(self):
        from .test_tunnel_e2e import TUNNEL_SNI
        self.metrics_port = harness.free_port()
        self.tunnel_port = harness.free_port()
        cert, key = self.pki.server(TUNNEL_SNI, ["DNS:" + TUNNEL_SNI])[:2]
        return ("--listen-metrics", "127.0.0.1:%d" % self.metrics_port,
                "--listen-tunnel", "127.0.0.1:%d" % self.tunnel_port,
                "--tunnel-ca-file", self.pki.ca, "--tunnel-cert", cert, "--tunnel-key", key)

    def attached(self, name):
        rc, out, _ = self.daemon.ctl("--json", "tunnel", "list")
        if rc != 0:
            return 0
        rows = json.loads(out)
        rows = rows.get("tunnels", []) if isinstance(rows, dict) else rows
        return sum(1 for t in rows if t.get("name") == name)

    def scrape(self, conn):
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or b"haloyd_snapshot_generation" not in body:
            raise AssertionError("scrape: status %d body %r" % (r.status, body[:60]))

    def test_metrics_and_tunnel_listeners_handed_over(self):
        from .test_tunnel_e2e import Agent
        app = Backend("office-app").start()
        self.addCleanup(app.stop)
        cert, key = self.pki.client("office")
        agent = Agent(self.daemon.base, self.tunnel_port, cert, key, self.pki.ca,
                      app.addr).start()
        self.addCleanup(agent.stop)
        thost = unique_host("tun")
        self.daemon.ctl_ok("route", "add", thost, "tunnel:office")
        self.daemon.ctl_ok("route", "set", thost, "--https-redirect", "off")
        wait_for(lambda: self.attached("office") >= 1, 30, "the agent to attach",
                 lambda: self.daemon.log_tail() + "\n--- agent:\n" + agent.log())
        old_pid = self.master_pid()

        def via_tunnel(conn):
            conn.request("GET", "/t", headers={"Host": thost})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or body != app.hello():
                raise AssertionError("tunnel: status %d body %r" % (r.status, body[:80]))

        mport, dport = self.metrics_port, self.daemon.port
        scrapes = Loop(lambda: http.client.HTTPConnection("127.0.0.1", mport,
                                                          timeout=LOAD_TIMEOUT),
                       self.scrape, keep_threads=0, new_threads=2).start()
        tun = Loop(lambda: http.client.HTTPConnection("127.0.0.1", dport, timeout=LOAD_TIMEOUT),
                   via_tunnel, keep_threads=2, new_threads=2).start()
        try:
            wait_for(lambda: scrapes.c.ok >= 20 and tun.c.ok >= 50, 30, "scrapes and tunnel load")
            rc, out, err = self.daemon.ctl("upgrade")
            self.assertEqual(rc, 0, "haloyd-ctl upgrade: %s %s\n%s"
                             % (out, err, self.daemon.log_tail()))
            self.new_pid = wait_for(lambda: (self.master_pid() != old_pid and
                                             self.master_pid()), 10, "the new master to answer")
            wait_for(lambda: self.attached("office") >= 1, 30,
                     "the agent to attach to the new tunnel process",
                     lambda: self.daemon.log_tail() + "\n--- agent:\n" + agent.log())
            s0, t0 = scrapes.c.ok, tun.c.ok
            wait_for(lambda: scrapes.c.ok >= s0 + 20 and tun.c.ok >= t0 + 100, 30,
                     "scrapes and tunnel requests after the upgrade")
        finally:
            fin = scrapes.finish() and tun.finish()
        self.assertTrue(fin, "load threads ended")
        print("\nupgrade with metrics and a tunnel: scrapes %d ok %d refused %d failed; "
              "tunnel requests %d ok %d refused %d failed"
              % (scrapes.c.ok, scrapes.c.refused, scrapes.c.failed,
                 tun.c.ok, tun.c.refused, tun.c.failed))
        for name, c in (("tunnel requests", tun.c), ("scrapes", scrapes.c)):
            self.assertEqual(c.refused, 0, "refused %s" % name)
            self.assertEqual(c.failed, 0, "failed %s: %s" % (name, c.errors))
        self.assertEqual(self.daemon.wait_exit(60), 0)
        log = self.daemon.log_text(self.mark)
        self.assertIn("listening on 127.0.0.1:%d (1 sockets, 1 inherited)" % self.metrics_port,
                      log)
        self.assertIn("listening on 127.0.0.1:%d (1 sockets, 1 inherited)" % self.tunnel_port,
                      log)
        self.assertIsNone(agent.proc.poll(), "the agent still runs")


class UpgradeRefusedTest(UpgradeBase):
    DAEMON = WrappedDaemon

    def test_failed_config_check_keeps_the_old_master(self):
        pid = self.master_pid()
        self.daemon.write_wrapper('for a in "$@"; do [ "$a" = -t ] && '
                                  '{ echo "haloyd: bad.conf:3: unknown setting nonsense" >&2; '
                                  'exit 1; }; done')
        rc, out, err = self.daemon.ctl("upgrade")
        self.assertNotEqual(rc, 0)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("-t failed", lines[0])
        self.assertIn("unknown setting nonsense", lines[0])
        self.assert_serves(pid)
        self.daemon.ctl_ok("route", "add", unique_host("still"), self.be.addr)
        self.assertIn("keeps serving", self.daemon.log_text(self.mark))

    def test_new_master_dying_after_takeover_rolls_back(self):
        pid = self.master_pid()
        # -t passes; with --takeover it takes the sockets, then cannot bind an
        # address no interface has and exits: the old master was read-only by then.
        self.daemon.write_wrapper('for a in "$@"; do [ "$a" = --takeover ] && '
                                  'exec -a "$0" %s "$@" --listen-http 192.0.2.1:9; done'
                                  % harness.program("haloyd"))
        load = Load(self.host, self.daemon.port, self.https_port, self.ctx).start()
        try:
            wait_for(lambda: load.c.ok >= 50, 30, "load")
            rc, out, err = self.daemon.ctl("upgrade")
            before = load.c.ok
            wait_for(lambda: load.c.ok >= before + 100, 30, "100 more requests after")
        finally:
            finished = load.finish()
        self.assertTrue(finished)
        self.assertNotEqual(rc, 0)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("upgrade failed", lines[0])
        c = load.c
        print("\nfailed upgrade under load: %d requests sent, %d refused, %d failed, "
              "%d stale keep-alive retries" % (c.sent, c.refused, c.failed, c.stale_retries))
        self.assertEqual(c.refused, 0)
        self.assertEqual(c.failed, 0, c.errors)
        log = self.daemon.log_text(self.mark)
        self.assertIn("listening sockets handed over", log)
        self.assertIn("keeps serving", log)
        # Writable again, the control socket is its own again, ACME (off) aside.
        self.assert_serves(pid)
        self.daemon.ctl_ok("route", "add", unique_host("back"), self.be.addr)


class NotifySocket:
    """A datagram socket in place of systemd's notify socket, read by a thread
    (a full queue would block the master's sd_notify); the lines are kept."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)  # gVisor: a closed socket does not wake recv
        self.lines = []
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data, _, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(4 * 253))
            except socket.timeout:
                continue
            except OSError:
                return
            self.lines.extend(data.decode(errors="replace").splitlines())

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def reap(pid):
    """A sibling master is our child: collect it once it exited."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class UpgradeUnderSystemdTest(UpgradeBase):
    """With NOTIFY_SOCKET the new master is started as the old one's sibling
    (CLONE_PARENT): systemd, the parent of the old master, must be the parent
    of the MAINPID= it is told, or it takes it for an alien process and a stop
    SIGKILLs it (tests/systemd/run shows it under a real systemd). Here this
    test process plays systemd's part."""
    DAEMON = WrappedDaemon

    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="haloyd-notify-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.notify = NotifySocket(self.folder)
        self.addCleanup(self.notify.close)
        env = {"NOTIFY_SOCKET": self.notify.path}
        orig = self.DAEMON

        class WithNotify(orig):
            def __init__(self, *a, **kw):
                kw.setdefault("env", env)
                super().__init__(*a, **kw)
        self.DAEMON = WithNotify
        super().setUp()

    def test_new_master_is_the_old_masters_sibling(self):
        old = self.master_pid()
        rc, out, err = self.daemon.ctl("upgrade")
        self.assertEqual(rc, 0, err)
        self.new_pid = self.master_pid()
        self.addCleanup(reap, self.new_pid)
        self.assertNotEqual(self.new_pid, old)
        with open("/proc/%d/stat" % self.new_pid) as f:
            ppid = int(f.read().split(")")[-1].split()[1])
        self.assertEqual(ppid, os.getpid(), "the new master's parent is not the old one's")
        wait_for(lambda: "MAINPID=%d" % self.new_pid in self.notify.lines, 10,
                 "MAINPID= of the new master", lambda: "\n".join(self.notify.lines))
        wait_for(lambda: not pid_alive(old), 60, "the old master to exit")
        self.assert_serves(self.new_pid)

    def test_sibling_exiting_before_takeover_rolls_back_at_once(self):
        pid = self.master_pid()
        # -t passes; with --takeover it exits before it connects: only its
        # pidfd tells the old master (else it would wait HANDOVER_READY_MS, 20 s).
        self.daemon.write_wrapper('for a in "$@"; do [ "$a" = --takeover ] && exit 3; done')
        t = time.monotonic()
        rc, out, err = self.daemon.ctl("upgrade")
        took = time.monotonic() - t
        self.assertNotEqual(rc, 0)
        self.assertIn("upgrade failed: the new master exited", err)
        self.assertLess(took, 10, "the rollback waited for the ready timeout")
        self.assert_serves(pid)
        self.daemon.ctl_ok("route", "add", unique_host("back"), self.be.addr)


if __name__ == "__main__":
    unittest.main()
