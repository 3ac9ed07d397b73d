"""Integration tests of backends by DNS name (issue 18 point 1).

Each class starts its own dnsmasq (Debian dnsmasq-base) on 127.0.0.1 and a
high port, answering only from a hosts file the test writes (--no-resolv
--no-hosts --addn-hosts, TTL 1 s with --local-ttl), and a haloyd whose
`resolver` is that dnsmasq. Backends listen on 127.0.0.2 / 127.0.0.3 on one
port, so a name's address can move from one to the other:

- a name backend serves; the record changed (hosts file rewritten, SIGHUP
  to dnsmasq) is followed without a restart within the TTL, logged
  "addresses now", shown by route show and --json;
- `localhost:PORT` works (c-ares reads /etc/hosts; dnsmasq has no hosts);
- a name that does not resolve: 502 with a log line, route show says
  "unresolved";
- with resolve_min_ttl 1h (no lookup of its own for an hour): `haloyd-ctl
  reload` re-resolves at once; dnsmasq stopped and reload: the lookup fails,
  is logged once with the name, and the last good answer still serves.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from .backend import Backend
from .harness import DaemonTestCase, free_port, request, unique_host, wait_for

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
TIMEOUT = 15.0


def free_port_on(*hosts):
    """A port free on 127.0.0.1 and on each of hosts."""
    for _ in range(50):
        port = free_port()
        try:
            for h in hosts:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on %s" % (hosts,))


class Dnsmasq:
    """dnsmasq on 127.0.0.1:port answering from a hosts file only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="haloyd-dns-")
        os.chmod(self.dir, 0o755)  # dnsmasq drops to its own user and reads the file again
        self.hosts = os.path.join(self.dir, "hosts")
        self.log = os.path.join(self.dir, "dnsmasq.log")
        self.port = free_port()
        self.records = {}
        self.proc = None
        self.write()

    def write(self):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            for name, addr in sorted(self.records.items()):
                f.write("%s %s\n" % (addr, name))
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.hosts)

    def set(self, name, addr):
        """Points name at addr; a running dnsmasq re-reads its hosts file on SIGHUP."""
        self.records[name] = addr
        self.write()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def start(self):
        argv = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                "--listen-address=127.0.0.1", "--bind-interfaces", "--port=%d" % self.port,
                "--addn-hosts=%s" % self.hosts, "--local-ttl=1", "--pid-file=",
                "--log-facility=%s" % self.log]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.answers, 10.0, "dnsmasq on port %d" % self.port, self.tail)
        return self

    def answers(self):
        """1 once dnsmasq answers a query (any answer) on its port."""
        if self.proc.poll() is not None:
            raise AssertionError("dnsmasq exited with %d\n%s" % (self.proc.returncode,
                                                                  self.tail()))
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", self.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def tail(self):
        try:
            with open(self.log) as f:
                return "--- dnsmasq log:\n" + "".join(f.readlines()[-20:])
        except OSError:
            return "--- no dnsmasq log"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, True)


class DnsMixin:
    DNS_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq().start()
        cls.DAEMON_ARGS = ("--resolver", "127.0.0.1:%d" % cls.dns.port,
                           "--connect-timeout", "1s") + cls.DNS_ARGS
        try:
            super().setUpClass()
        except BaseException:
            cls.dns.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.dns.close()

    def pair(self, label):
        """Two backends on one port, on 127.0.0.2 and 127.0.0.3."""
        port = free_port_on("127.0.0.2", "127.0.0.3")
        a = Backend(label + "-a", port=port, host="127.0.0.2").start()
        self.addCleanup(a.stop)
        b = Backend(label + "-b", port=port, host="127.0.0.3").start()
        self.addCleanup(b.stop)
        return a, b, port

    def name(self, label):
        return unique_host(label).replace(".example.com", ".haloyd.test")

    def served_by(self, host, be):
        r = request(self.daemon.port, "/", host=host)
        return r.status == 200 and r.body == be.hello()

    def wait_served_by(self, host, be, what):
        wait_for(lambda: self.served_by(host, be), TIMEOUT, what, self.detail)

    def detail(self):
        return self.daemon.log_tail() + "\n" + self.dns.tail()

    def show(self, host):
        return json.loads(self.daemon.ctl_ok("--json", "route", "show", host))

    def log_since(self):
        return self.daemon.log_text(self._log_mark)


class DnsNameTest(DnsMixin, DaemonTestCase):
    WORKERS = 2

    def test_name_followed_without_restart(self):
        a, b, port = self.pair("follow")
        name = self.name("app")
        self.dns.set(name, "127.0.0.2")
        host = unique_host("dnsf")
        self.daemon.ctl_ok("route", "add", host, "%s:%d" % (name.upper(), port))
        self.wait_served_by(host, a, "the name's first address serving")
        shown = self.show(host)
        self.assertEqual(shown["backends"], ["%s:%d" % (name, port)], shown)
        self.assertEqual(shown["resolved"], ["%s:%d: 127.0.0.2:%d" % (name, port, port)], shown)
        self.assertIn("backend %s:%d: addresses now 127.0.0.2:%d" % (name, port, port),
                      self.log_since())
        self.dns.set(name, "127.0.0.3")
        self.wait_served_by(host, b, "the changed record followed (TTL 1 s)")
        self.assertIn("backend %s:%d: addresses now 127.0.0.3:%d" % (name, port, port),
                      self.log_since())
        text = self.daemon.ctl_ok("route", "show", host)
        self.assertIn("127.0.0.3:%d" % port, text)
        self.assertNotIn("127.0.0.2:%d" % port, text)
        # Every request after the change went to b, and the access entries say so.
        for _ in range(4):
            self.assertTrue(self.served_by(host, b))
        self.assertIn("HALOYD_BACKEND=%s:%d(127.0.0.3)" % (name, port), self.log_since())

    def test_localhost_without_dns(self):
        be = Backend("lh").start()
        self.addCleanup(be.stop)
        host = unique_host("dnslh")
        self.daemon.ctl_ok("route", "add", host, "localhost:%d" % be.port)
        # c-ares answers a hosts-file name inside the call: the generation route add
        # waited for already has the addresses.
        self.assertTrue(self.served_by(host, be), self.detail())
        shown = self.show(host)
        self.assertIn("127.0.0.1:%d" % be.port, shown["resolved"][0], shown)

    def test_unresolved_name_is_502(self):
        name = self.name("nosuch")
        host = unique_host("dnsnx")
        self.daemon.ctl_ok("route", "add", host, "%s:8080" % name)
        # The master's lookup fails (dnsmasq knows no such name): logged with the name.
        wait_for(lambda: ("backend %s:8080: lookup failed" % name) in self.log_since(),
                 TIMEOUT, "the failed lookup logged", self.detail)
        r = request(self.daemon.port, "/", host=host)
        self.assertEqual(r.status, 502, r)
        wait_for(lambda: "the master has no address for this name yet" in self.log_since(),
                 TIMEOUT, "the worker's 502 log line", self.detail)
        text = self.daemon.ctl_ok("route", "show", host)
        self.assertIn("%s:8080: unresolved" % name, text)
        self.assertIn("unresolved", self.show(host)["resolved"][0])

    def test_removed_route_name_no_longer_looked_up(self):
        """A route removed takes its backend's name out of the lookups, though the build
        that removes it builds only the route's snapshot shard."""
        a, b, port = self.pair("gone")
        gone, kept = self.name("gone"), self.name("kept")
        self.dns.set(gone, "127.0.0.2")
        self.dns.set(kept, "127.0.0.2")
        hg, hk = unique_host("dnsgone"), unique_host("dnskept")
        self.daemon.ctl_ok("route", "add", hg, "%s:%d" % (gone, port))
        self.daemon.ctl_ok("route", "add", hk, "%s:%d" % (kept, port))
        self.wait_served_by(hg, a, "the removed route's name serving first")
        self.wait_served_by(hk, a, "the kept route's name serving first")
        self.daemon.ctl_ok("route", "rm", hg)
        mark = self.daemon.log_size()
        self.dns.set(gone, "127.0.0.3")
        self.dns.set(kept, "127.0.0.3")
        # The kept name's next lookups see the change; the removed one is not asked again.
        self.wait_served_by(hk, b, "the kept name's change followed (TTL 1 s)")
        changed = "backend %s:%d: addresses now 127.0.0.3" % (kept, port)
        wait_for(lambda: changed in self.daemon.log_text(mark), TIMEOUT, changed, self.detail)
        self.assertNotIn("backend %s:%d: addresses now" % (gone, port),
                         self.daemon.log_text(mark))

    def test_bad_names_refused(self):
        host = unique_host("dnsbad")
        for bad in ("exa mple.com:80", "example.com:0", "example.com:70000", "example.com",
                    "bad-.example.com:80", "10.0.0.256:80", "a" * 64 + ".com:80"):
            rc, out, err = self.daemon.ctl("route", "add", host, bad)
            self.assertEqual(rc, 7, (bad, out, err))
            self.assertIn("invalid backend", err)


class DnsNameReloadTest(DnsMixin, DaemonTestCase):
    """No lookup of its own for an hour: only reload asks again."""
    WORKERS = 1
    DNS_ARGS = ("--resolve-min-ttl", "1h")

    def test_reload_re_resolves_at_once(self):
        a, b, port = self.pair("reload")
        name = self.name("rl")
        self.dns.set(name, "127.0.0.2")
        host = unique_host("dnsrl")
        self.daemon.ctl_ok("route", "add", host, "%s:%d" % (name, port))
        self.wait_served_by(host, a, "the first address")
        self.dns.set(name, "127.0.0.3")
        self.daemon.ctl_ok("reload")
        self.wait_served_by(host, b, "the new address after reload")

    def test_resolver_down_keeps_last_good(self):
        a, _, port = self.pair("down")
        name = self.name("dn")
        self.dns.set(name, "127.0.0.2")
        host = unique_host("dnsdn")
        self.daemon.ctl_ok("route", "add", host, "%s:%d" % (name, port))
        self.wait_served_by(host, a, "the first address")
        self.dns.stop()
        self.addCleanup(self.dns.start)
        self.daemon.ctl_ok("reload")
        wait_for(lambda: ("backend %s:%d: lookup failed" % (name, port)) in self.log_since(),
                 TIMEOUT, "the failed lookup logged", self.detail)
        self.assertIn("keeping the last good addresses 127.0.0.2:%d" % port, self.log_since())
        for _ in range(4):
            self.assertTrue(self.served_by(host, a))
        self.assertIn("lookup failing", self.show(host)["resolved"][0])
        # Failing again the same way is not logged again.
        self.daemon.ctl_ok("reload")
        wait_for(lambda: self.log_since().count("configuration reloaded") >= 2, TIMEOUT,
                 "the second reload")
        self.assertTrue(self.served_by(host, a))


if __name__ == "__main__":
    unittest.main()
