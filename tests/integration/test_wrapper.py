"""Integration tests of HALOYD_WORKER_WRAPPER (master/wrapper.c, issue 16
point 1): every worker is exec'd under the wrapper's command (here
/usr/bin/env, which sets a variable and runs the rest), runs without its
seccomp filter (a profiler makes calls the filter refuses), serves, and a
worker killed is respawned under the wrapper again. A wrapper that cannot
be found stops the start-up with one line.
"""
import os
import signal
import unittest

from .harness import Daemon, DaemonTestCase, unique_host, wait_for
from .test_sandbox import seccomp_mode

WRAP_ENV = {"HALOYD_WORKER_WRAPPER": "env HALOYD_WRAPPED_TEST=yes"}


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return f.read().split(b"\0")


class WrapperTest(DaemonTestCase):
    WORKERS = 1
    DAEMON_ENV = WRAP_ENV

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.be = cls.backend("wrapped")

    def worker_pid(self):
        return self.daemon.status()["workers"][0]["pid"]

    def test_worker_runs_under_the_wrapper(self):
        host = unique_host("wrapped")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        self.assertEqual(self.daemon.get(host, "/").status, 200)
        pid = self.worker_pid()
        self.assertIn(b"HALOYD_WRAPPED_TEST=yes", environ_of(pid))
        self.assertEqual(seccomp_mode(pid), 0)
        self.assertIn("workers run under /usr/bin/env (HALOYD_WORKER_WRAPPER), without their sandbox",
                      self.daemon.log_text())

    def test_respawned_worker_is_wrapped_too(self):
        host = unique_host("rewrapped")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        old = self.worker_pid()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: self.daemon.serving(self.daemon.status()) and
                 self.worker_pid() not in (0, old), 20, "a new worker", self.daemon.log_tail)
        self.assertIn(b"HALOYD_WRAPPED_TEST=yes", environ_of(self.worker_pid()))
        self.assertEqual(self.daemon.get(host, "/").status, 200)


class WrapperMissingTest(unittest.TestCase):
    """Starts its own daemon and expects it to refuse."""

    def test_missing_wrapper_stops_the_start(self):
        d = Daemon(1, env={"HALOYD_WORKER_WRAPPER": "no-such-profiler-here --x"})
        try:
            with self.assertRaises(Exception):
                d.start(timeout=10)
            wait_for(lambda: d.proc.poll() is not None, 10, "haloyd to exit", d.log_tail)
            self.assertNotEqual(d.proc.returncode, 0)
            self.assertIn("HALOYD_WORKER_WRAPPER: no-such-profiler-here is not on PATH",
                          d.log_text())
        finally:
            d.close(check=False)
