"""Shared helpers of the integration suite: the real haloyd and haloyd-ctl
from the build directory ($HALOYD_BUILDDIR, as tests/run passes it), free
ports, a polling wait with a deadline, small HTTP clients, and a Daemon
class that starts haloyd in the foreground on temporary folders, waits
until every worker serves, stops it and fails the test on any sanitizer
report in its log. Every wait is bounded; nothing sleeps a fixed time.
"""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from . import backend as backend_mod

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
CTL_TIMEOUT = 40.0      # haloyd-ctl waits up to 30 s for one answer itself
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0


# --- build directory and programs

def builddir():
    d = os.environ.get("HALOYD_BUILDDIR")
    if not d:
        cwd = os.getcwd()
        if os.access(os.path.join(cwd, "haloyd"), os.X_OK):
            return cwd
        raise AssertionError("HALOYD_BUILDDIR is not set: run the suite through tests/run "
                             "--builddir DIR, or export HALOYD_BUILDDIR")
    return os.path.abspath(d)


def program(name):
    path = os.path.join(builddir(), name)
    if not os.access(path, os.X_OK):
        raise AssertionError("%s is missing: build it first (make haloyd haloyd-ctl)" % path)
    return path


def is_root():
    return os.geteuid() == 0


def as_user_prefix(user):
    """The command prefix that runs a program as user (needs root)."""
    if not is_root():
        raise AssertionError("running a program as %r needs root; the suite runs as root in CI"
                             % user)
    if shutil.which("runuser"):
        return [shutil.which("runuser"), "-u", user, "--"]
    if shutil.which("setpriv"):
        import pwd
        pw = pwd.getpwnam(user)
        return [shutil.which("setpriv"), "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--clear-groups", "--"]
    raise AssertionError("neither runuser nor setpriv is installed (util-linux)")


# --- ports and waiting

_ports_lock = threading.Lock()
_ports_given = set()


def _port_shard():
    """(i, n) from HALOYD_PORT_SHARD=i/n: tests/run's job slot i of n, whose
    test files run beside the other slots' and take only ports p with
    (p >> 1) % n == i (bind picks odd ports only, as Linux does), so a port
    one process found free is never handed out by another."""
    try:
        i, n = (int(x) for x in os.environ.get("HALOYD_PORT_SHARD", "0/1").split("/"))
    except ValueError:
        return 0, 1
    return (i, n) if 0 <= i < n else (0, 1)


# Ports come from below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default): there no bind(0) or connect() of another process (the other slot's backends and
# clients) can take one between the check here and the daemon's own bind, which CI saw fail
# with "Address already in use". 28280-28286 and up are the benchmarks' fixed ports.
_PORT_LO, _PORT_HI = 20000, 28000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on and this run never handed out."""
    shard, shards = _port_shard()
    hi = min(_PORT_HI, _ephemeral_low())
    with _ports_lock:
        for _ in range(4000 if hi - _PORT_LO >= 2000 else 0):
            port = random.randrange(_PORT_LO, hi)
            if port in _ports_given or (port >> 1) % shards != shard:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                s.close()
            _ports_given.add(port)
            return port
    return _free_ephemeral_port(shard, shards)


def _free_ephemeral_port(shard, shards):
    """free_port on a machine whose ephemeral range starts low: the kernel's choice."""
    held = []  # ports refused stay bound until the end, so bind() offers others
    try:
        with _ports_lock:
            for _ in range(200 * shards):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                if port not in _ports_given and port >= 1024 and (port >> 1) % shards == shard:
                    _ports_given.add(port)
                    return port
    finally:
        for s in held:
            s.close()
    raise AssertionError("no free port on 127.0.0.1")


def wait_for(pred, timeout, what, detail=None):
    """Polls pred() until it returns a true value (returned) or timeout passes.

    detail, a callable, adds context (a log tail) to the failure message.
    """
    deadline = time.monotonic() + timeout
    interval = 0.01
    while True:
        v = pred()
        if v:
            return v
        left = deadline - time.monotonic()
        if left <= 0:
            msg = "timed out after %.1f s waiting for %s" % (timeout, what)
            if detail is not None:
                msg += "\n" + detail()
            raise AssertionError(msg)
        time.sleep(min(interval, left))
        interval = min(interval * 2, 0.1)


_names_lock = threading.Lock()
_names_n = [0]


def unique_host(label):
    """A fresh host name, so tests sharing a daemon never collide."""
    with _names_lock:
        _names_n[0] += 1
        return "%s-%d-%d.example.com" % (label, os.getpid(), _names_n[0])


# --- HTTP clients

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), as received
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


def _exchange(conn, method, path, host, headers, body):
    h = dict(headers or {})
    if host is not None:
        h["Host"] = host
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, r.reason, r.getheaders(), data)


def request(port, path="/", host=None, method="GET", headers=None, body=None,
            timeout=HTTP_TIMEOUT):
    """One request on a fresh connection to 127.0.0.1:port, closed afterwards."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return _exchange(conn, method, path, host, headers, body)
    finally:
        conn.close()


class KeepAlive:
    """Several requests over one client connection (so one worker)."""

    def __init__(self, port, timeout=HTTP_TIMEOUT):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock

    def request(self, path="/", host=None, method="GET", headers=None, body=None):
        r = _exchange(self.conn, method, path, host, headers, body)
        if self.conn.sock is not self.sock:
            raise AssertionError("the client connection was not kept alive")
        return r

    def close(self):
        self.conn.close()


def raw_request(port, data, timeout=HTTP_TIMEOUT):
    """Sends raw bytes and returns everything read until the server closes."""
    out = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                return bytes(out)
            out += b


# --- the daemon

def _scrubbed_env():
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC",
              "WATCHDOG_PID", "HALOYD_CONTROL"):
        env.pop(k, None)
    return env


def sanitizer_report(text):
    """The first sanitizer report in text, with some context, or None."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            start = text.rfind("\n", 0, max(0, i - 200)) + 1
            return text[start:i + 3000]
    return None


# CapabilityBoundingSet= of share/systemd/haloyd.service: as root, the suite
# runs the master with no other capability, as the packaged service does.
UNIT_CAPABILITIES = ("net_bind_service", "setuid", "setgid", "chown", "kill")


def unit_capabilities_prefix():
    if not is_root():
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise AssertionError("setpriv (util-linux) is missing: .ci/run installs it")
    return [setpriv, "--bounding-set=-all," + ",".join("+" + c for c in UNIT_CAPABILITIES)]


class Daemon:
    """haloyd in the foreground on 127.0.0.1:port with temporary folders."""

    def __init__(self, workers=2, args=(), stop_timeout="10s", env=None):
        self.workers = workers
        self.env = dict(env or {})  # added to the environment haloyd starts with
        self.extra_args = list(args)
        self.stop_timeout = stop_timeout
        self.base = tempfile.mkdtemp(prefix="haloyd-it-")
        os.chmod(self.base, 0o755)  # so `nobody` can reach the copied haloyd-ctl
        self.state_dir = os.path.join(self.base, "state")
        self.run_dir = os.path.join(self.base, "run")
        self.sock = os.path.join(self.run_dir, "control.sock")
        self.log_path = os.path.join(self.base, "haloyd.log")
        self.conf_path = os.path.join(self.base, "haloyd.conf")
        with open(self.conf_path, "w") as f:
            f.write("# empty: every setting comes from the command line\n")
        self.port = free_port()
        self.proc = None
        self._log = None
        self.worker_pids = set()
        self.user = "nobody" if is_root() else None

    @property
    def pid(self):
        return self.proc.pid

    def argv(self):
        a = unit_capabilities_prefix() + [program("haloyd"), "-c", self.conf_path,
             "--listen-http", "127.0.0.1:%d" % self.port,
             "--workers", str(self.workers),
             "--state-dir", self.state_dir,
             "--runtime-dir", self.run_dir,
             "--log-target", "stderr",
             "--stop-timeout", self.stop_timeout]
        if self.user:
            a += ["--user", self.user]
        return a + self.extra_args

    def start(self, timeout=START_TIMEOUT):
        self._log = open(self.log_path, "ab")
        env = _scrubbed_env()
        env.update(self.env)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env,
                                     cwd=self.base, start_new_session=True)
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    # --- the log

    def log_text(self, since=0):
        """The log from byte offset since on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "--- haloyd log (%s), last %d lines:\n%s" % (
            self.log_path, min(n, len(lines)), "\n".join(lines[-n:]))

    def check_log(self, since=0):
        """Fails on a sanitizer report in the log (from byte offset since on)."""
        rep = sanitizer_report(self.log_text(since))
        if rep is not None:
            raise AssertionError("sanitizer report in the haloyd log %s:\n%s"
                                 % (self.log_path, rep))

    # --- haloyd-ctl

    def ctl_path(self, user=None):
        """haloyd-ctl, copied where user can run it when user is given."""
        if user is None:
            return program("haloyd-ctl")
        dst = os.path.join(self.base, "bin", "haloyd-ctl")
        if not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
            shutil.copy2(program("haloyd-ctl"), dst)
            os.chmod(dst, 0o755)
        return dst

    def ctl(self, *args, user=None, sock=True, env=None, timeout=CTL_TIMEOUT):
        """Runs haloyd-ctl [-s SOCK] ARGS; returns (rc, stdout, stderr)."""
        cmd = [self.ctl_path(user)]
        if sock:
            cmd += ["-s", self.sock]
        cmd += list(args)
        if user is not None:
            cmd = as_user_prefix(user) + cmd
        e = _scrubbed_env()
        e.update(env or {})
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=e,
                               cwd=self.base, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("haloyd-ctl %s did not answer within %.0f s\n%s"
                                 % (" ".join(args), timeout, self.log_tail()))
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        rep = sanitizer_report(err)
        if rep is not None:
            raise AssertionError("sanitizer report from haloyd-ctl %s:\n%s" % (" ".join(args), rep))
        return p.returncode, out, err

    def ctl_ok(self, *args, **kw):
        rc, out, err = self.ctl(*args, **kw)
        if rc != 0:
            raise AssertionError("haloyd-ctl %s: exit %d\nstdout: %s\nstderr: %s\n%s"
                                 % (" ".join(args), rc, out, err, self.log_tail()))
        return out

    def try_status(self):
        rc, out, _ = self.ctl("--json", "status", timeout=CTL_TIMEOUT)
        if rc != 0:
            return None
        st = json.loads(out)
        for w in st.get("workers", []):
            if w.get("pid", 0) > 0:
                self.worker_pids.add(w["pid"])
        return st

    def status(self):
        st = self.try_status()
        if st is None:
            self.ctl_ok("--json", "status")  # raises with the details
        return st

    def serving(self, st, workers=None):
        """True when st shows every worker running and on the master's generation."""
        ws = st["workers"]
        n = self.workers if workers is None else workers
        gen = st["master"]["generation"]
        return (len(ws) == n and gen > 0 and
                all(w["pid"] > 0 and w["generation"] == gen for w in ws))

    def wait_ready(self, timeout=START_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("haloyd exited with status %d during start-up\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if not os.path.exists(self.sock):
                return None
            st = self.try_status()
            return st if st is not None and self.serving(st) else None
        return wait_for(ready, timeout, "haloyd to serve with %d workers" % self.workers,
                        self.log_tail)

    # --- HTTP through the daemon

    def get(self, host, path="/", **kw):
        return request(self.port, path, host=host, **kw)

    def keepalive(self):
        return KeepAlive(self.port)

    # --- stopping

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("haloyd did not exit within %.0f s\n%s"
                                 % (timeout, self.log_tail()))

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then waits (bounded); returns the master's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def _is_our_worker(self, pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return len(argv) > 2 and argv[1] == b"-R" and argv[0].endswith(b"haloyd")

    def kill(self):
        """SIGKILL for the master and the workers it reported: a last resort."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.worker_pids:
            if self._is_our_worker(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def close(self, check=True, keep=False):
        """Stops the daemon; with check, fails unless it exited 0 with a clean log.

        The temporary folder (with the log) is removed unless keep is set or
        the check failed.
        """
        failure = None
        try:
            if self.proc is not None:
                was_running = self.proc.poll() is None
                rc = self.stop()
                if check and not was_running:
                    failure = "haloyd had already exited with status %d" % rc
                elif check and rc != 0:
                    failure = "haloyd exited with status %d after SIGTERM" % rc
        except AssertionError as e:
            failure = str(e)
        finally:
            self.kill()
            if self._log is not None:
                self._log.close()
                self._log = None
        if check:
            rep = sanitizer_report(self.log_text())
            if rep is not None:
                failure = (failure + "\n" if failure else "") + "sanitizer report:\n" + rep
        if failure is not None and check:
            raise AssertionError("%s\n%s" % (failure, self.log_tail()))
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)


# --- test cases

class DaemonTestCase(unittest.TestCase):
    """One daemon for the whole class; backends started with cls.backend()."""

    WORKERS = 2
    DAEMON_ARGS = ()
    DAEMON_ENV = None

    @classmethod
    def setUpClass(cls):
        cls._backends = []
        cls._start_daemon()

    @classmethod
    def _start_daemon(cls):
        cls.daemon = Daemon(cls.WORKERS, cls.DAEMON_ARGS, env=cls.DAEMON_ENV)
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.close(check=False, keep=True)
            raise

    @classmethod
    def tearDownClass(cls):
        for b in cls._backends:
            b.stop()
        cls.daemon.close()

    @classmethod
    def backend(cls, name):
        b = backend_mod.Backend(name).start()
        cls._backends.append(b)
        return b

    def setUp(self):
        if self.daemon.proc.poll() is not None:
            # The test that killed it has failed for it; a fresh daemon keeps
            # this test independent of that one. The old log stays on disk.
            self.daemon.close(check=False, keep=True)
            type(self)._start_daemon()
        self._log_mark = self.daemon.log_size()

    def tearDown(self):
        self.daemon.check_log(self._log_mark)
        if self.daemon.proc.poll() is not None:
            self.fail("haloyd died during this test (status %d)\n%s"
                      % (self.daemon.proc.returncode, self.daemon.log_tail()))
