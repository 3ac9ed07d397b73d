"""Integration tests of the seccomp sandboxes (share/sandbox.c, issue 14
point 5): every worker runs under its filter once it serves; a worker that
makes a forbidden call is killed with SIGSYS, the master logs it as a
sandbox kill and respawns it, and service continues; `sandbox off` runs the
workers without a filter. The tunnel process likewise: filtered once it has
its listeners (MSG_T_START), killed by a forbidden call, respawned, and the
agent reattaches.

The forbidden call comes from a test-only hook (HALOYD_TESTING, compiled in
by --enable-test-hooks, the default of a --enable-sanitizers build): with
HALOYD_TEST_SANDBOX_SIGUSR1 in its environment at start, a worker calls
execve on SIGUSR1 (the tunnel process too: it runs the worker's loop).
Other builds have no such code.
"""
import json
import os
import re
import signal
import threading

from . import harness
from . import testpki
from .harness import Daemon, DaemonTestCase, free_port, unique_host, wait_for
from .test_tunnel_e2e import TUNNEL_SNI, Agent

HOOK_ENV = {"HALOYD_TEST_SANDBOX_SIGUSR1": "1"}


def seccomp_mode(pid):
    """The Seccomp: field of /proc/PID/status (0 none, 2 filter)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Seccomp:"):
                return int(line.split()[1])
    raise AssertionError("no Seccomp: line for pid %d" % pid)


def assert_test_hooks_built(test):
    path = os.path.join(harness.builddir(), "config.h")
    with open(path) as f:
        test.assertIn("#define HALOYD_TESTING 1", f.read(),
                      "%s: this build has no test hooks; configure it with --enable-test-hooks "
                      "(the default with --enable-sanitizers)" % path)


class _Load:
    """Requests on fresh connections from a thread until stopped; counts outcomes."""

    def __init__(self, daemon, host):
        self.daemon, self.host = daemon, host
        self.ok = self.failed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            try:
                r = self.daemon.get(self.host, "/load", timeout=5)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
            except Exception:  # reset, refused, a bad status line: all failures
                self.failed += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)


class SandboxKillTest(DaemonTestCase):
    """Sandbox on (the default), test hook armed."""

    WORKERS = 2
    DAEMON_ENV = HOOK_ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("sb")

    def worker_pids(self):
        st = self.daemon.status()
        return {w["index"]: w["pid"] for w in st["workers"]}

    def test_every_worker_is_filtered(self):
        for index, pid in self.worker_pids().items():
            self.assertEqual(seccomp_mode(pid), 2, "worker %d (pid %d)" % (index, pid))

    def test_forbidden_call_kills_and_respawns(self):
        assert_test_hooks_built(self)
        host = unique_host("sandbox")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        before = self.worker_pids()
        victim = before[0]
        mark = self.daemon.log_size()
        with _Load(self.daemon, host) as load:
            wait_for(lambda: load.ok >= 20, 20, "requests before the kill")
            os.kill(victim, signal.SIGUSR1)
            line = re.compile(r"worker 0 \(pid %d\) killed by the sandbox \(SIGSYS\)" % victim)
            wait_for(lambda: line.search(self.daemon.log_text(mark)), 20,
                     "the master to log the sandbox kill", self.daemon.log_tail)
            # Respawned, on the current generation, and filtered again.
            wait_for(lambda: (self.daemon.serving(self.daemon.status()) and
                              self.worker_pids()[0] not in (0, victim)), 20,
                     "worker 0 to be respawned", self.daemon.log_tail)
            after = self.worker_pids()
            self.assertEqual(after[1], before[1], "the other worker was not touched")
            self.assertEqual(seccomp_mode(after[0]), 2)
            served = load.ok
            wait_for(lambda: load.ok >= served + 20, 20, "requests after the respawn")
        self.assertIn("respawning worker 0", self.daemon.log_text(mark))
        # Only what the killed worker held could fail: one connection at a time here.
        self.assertLessEqual(load.failed, 1, "%d ok, %d failed" % (load.ok, load.failed))
        for _ in range(10):
            self.assertEqual(self.daemon.get(host, "/").status, 200)


class SandboxOffTest(DaemonTestCase):
    """`sandbox off`: no filter, and the hook's execve just fails."""

    WORKERS = 1
    DAEMON_ARGS = ("--sandbox", "off")
    DAEMON_ENV = HOOK_ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("nosb")

    def test_no_filter_and_the_hook_is_harmless(self):
        assert_test_hooks_built(self)
        host = unique_host("nosandbox")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        pid = self.daemon.status()["workers"][0]["pid"]
        self.assertEqual(seccomp_mode(pid), 0)
        self.assertIn("running without a sandbox (sandbox off)", self.daemon.log_text())
        mark = self.daemon.log_size()
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: "calling execve on purpose" in self.daemon.log_text(mark), 10,
                 "the hook to run", self.daemon.log_tail)
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        self.assertEqual(self.daemon.status()["workers"][0]["pid"], pid)
        self.assertNotIn("killed", self.daemon.log_text(mark))


class SandboxTunnelTest(DaemonTestCase):
    """The tunnel process under its own filter (SANDBOX_TUNNEL), test hook armed."""

    WORKERS = 1

    @classmethod
    def _start_daemon(cls):
        if not hasattr(cls, "pki"):
            cls.pki = testpki.Pki()
            cls.server_cert = cls.pki.server(TUNNEL_SNI, ["DNS:" + TUNNEL_SNI])
            cls.tunnel_port = free_port()
        cls.daemon = Daemon(cls.WORKERS, cls.tunnel_args(cls.tunnel_port), env=HOOK_ENV)
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.close(check=False, keep=True)
            raise

    @classmethod
    def tunnel_args(cls, port):
        return ["--listen-tunnel", "127.0.0.1:%d" % port,
                "--tunnel-ca-file", cls.pki.ca,
                "--tunnel-cert", cls.server_cert[0], "--tunnel-key", cls.server_cert[1]]

    def setUp(self):
        super().setUp()
        self.agents = []

    def tearDown(self):
        for a in self.agents:
            a.stop()
        super().tearDown()

    def tunnel_pid(self, daemon=None):
        kids = [c for c in (daemon or self.daemon).status().get("children", [])
                if c["role"] == "tunnel"]
        return kids[0]["pid"] if kids and kids[0]["pid"] > 0 else None

    def attached(self, name, agent):
        if agent.proc.poll() is not None:
            raise AssertionError("haloyd-tunnel exited with %d\n%s"
                                 % (agent.proc.returncode, agent.log()))
        rc, out, _ = self.daemon.ctl("--json", "tunnel", "list")
        if rc != 0:  # the tunnel process is (re)starting
            return False
        rows = json.loads(out)
        if isinstance(rows, dict):
            rows = rows.get("tunnels", [])
        return any(t.get("name") == name for t in rows)

    def filtered_pid(self):
        """The tunnel process's pid once its filter is in (MSG_T_START comes after HELLO)."""
        pid = self.tunnel_pid()
        return pid if pid is not None and seccomp_mode(pid) == 2 else None

    def test_tunnel_process_is_filtered(self):
        wait_for(self.filtered_pid, 20, "the tunnel process under its filter",
                 self.daemon.log_tail)
        self.assertNotIn("running without a sandbox", self.daemon.log_text())

    def test_reload_rereads_error_pages_under_the_filter(self):
        pid = wait_for(self.filtered_pid, 20, "the tunnel process under its filter",
                       self.daemon.log_tail)
        pages = os.path.join(self.daemon.base, "pages")
        os.makedirs(pages, exist_ok=True)
        with open(os.path.join(pages, "503.html"), "w") as f:
            f.write("<p>tunnel down</p>\n")
        os.chmod(pages, 0o755)
        mark = self.daemon.log_size()
        self.addCleanup(self.restore_conf)
        with open(self.daemon.conf_path, "w") as f:
            f.write("error_pages %s\n" % pages)
        self.daemon.ctl_ok("reload")
        # T_LIST_REQ follows the reload's W_CONFIG on its channel: past it when answered.
        wait_for(lambda: self.daemon.ctl("tunnel", "list")[0] == 0, 20,
                 "a tunnel list answer after the reload", self.daemon.log_tail)
        self.assertEqual(self.tunnel_pid(), pid)
        self.assertEqual(seccomp_mode(pid), 2)
        self.assertNotIn("killed", self.daemon.log_text(mark))

    def restore_conf(self):
        with open(self.daemon.conf_path, "w") as f:
            f.write("# empty: every setting comes from the command line\n")
        self.daemon.ctl_ok("reload")

    def test_forbidden_call_kills_respawns_and_the_agent_reattaches(self):
        assert_test_hooks_built(self)
        app = self.backend("sbtun-app")
        host = unique_host("sbtun")
        self.daemon.ctl_ok("route", "add", host, "tunnel:sbtun")
        cert, key = self.pki.client("sbtun")
        agent = Agent(self.daemon.base, self.tunnel_port, cert, key, self.pki.ca, app.addr)
        self.agents.append(agent.start())
        wait_for(lambda: self.attached("sbtun", agent), 30, "the agent attached",
                 self.daemon.log_tail)
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        worker = self.daemon.status()["workers"][0]["pid"]
        victim = wait_for(self.filtered_pid, 20, "the filtered tunnel process")
        mark = self.daemon.log_size()
        os.kill(victim, signal.SIGUSR1)
        line = re.compile(r"tunnel process \(pid %d\) killed by the sandbox \(SIGSYS\)" % victim)
        wait_for(lambda: line.search(self.daemon.log_text(mark)), 20,
                 "the master to log the sandbox kill", self.daemon.log_tail)
        # Respawned and filtered again; the agent reattaches by itself.
        pid = wait_for(lambda: (self.filtered_pid() or victim) != victim and self.filtered_pid(),
                       30, "the tunnel process to be respawned under its filter",
                       self.daemon.log_tail)
        self.assertIn("respawning tunnel process", self.daemon.log_text(mark))
        wait_for(lambda: self.attached("sbtun", agent), 30, "the agent attached again",
                 lambda: self.daemon.log_tail() + "\n--- agent:\n" + agent.log())
        for _ in range(10):
            self.assertEqual(self.daemon.get(host, "/").status, 200)
        self.assertEqual(self.daemon.status()["workers"][0]["pid"], worker,
                         "the worker was not touched")
        self.assertEqual(self.tunnel_pid(), pid)

    def test_sandbox_off_leaves_it_unfiltered(self):
        assert_test_hooks_built(self)
        d = Daemon(1, self.tunnel_args(free_port()) + ["--sandbox", "off"], env=HOOK_ENV)
        d.start()
        try:
            pid = wait_for(lambda: self.tunnel_pid(d), 20, "the tunnel process", d.log_tail)
            # T_LIST_REQ follows T_START on its channel: an answer means the start is past.
            wait_for(lambda: d.ctl("tunnel", "list")[0] == 0, 20, "a tunnel list answer",
                     d.log_tail)
            self.assertEqual(seccomp_mode(pid), 0)
            self.assertIn("tunnel warning: running without a sandbox (sandbox off)", d.log_text())
            mark = d.log_size()
            os.kill(pid, signal.SIGUSR1)
            wait_for(lambda: "calling execve on purpose" in d.log_text(mark), 10,
                     "the hook to run", d.log_tail)
            self.assertEqual(self.tunnel_pid(d), pid)
            self.assertNotIn("killed", d.log_text(mark))
        finally:
            d.close()
