"""DNS-01 through RFC 2136 (issue 19 point 3) against a real BIND 9 and
Debian's pebble: the test starts named on a loopback port, as a non-root
user, with its own named.conf in a temporary folder and a dynamic zone
example.test that a TSIG key may update (TXT records only); pebble
resolves through that named. The daemon gets dns_update_server and
dns_tsig_key, orders `*.example.test` and a plain name with dns-01, serves
the wildcard certificate for a name under it, and deletes its TXT records
afterwards; a wrong secret fails the order with a clear line.
"""
import base64
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from . import harness
from .harness import Daemon, free_port, wait_for
from .test_acme import OPENSSL, PEBBLE, AcmeCase, Pebble

NAMED = shutil.which("named") or (os.path.exists("/usr/sbin/named") and "/usr/sbin/named")
DIG = shutil.which("dig")
KEY_NAME = "haloyd-dns01"
ZONE = "example.test"


class Bind:
    """named on 127.0.0.1:port, authoritative for example.test, updates signed with a key."""

    FAMILY = ["-4"]

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="haloyd-bind-")
        os.chmod(self.base, 0o755)
        self.port = free_port()
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.conf = os.path.join(self.base, "named.conf")
        zone_file = os.path.join(self.base, ZONE + ".db")
        with open(zone_file, "w") as f:
            f.write("$TTL 60\n@ IN SOA ns.%s. admin.%s. 1 60 60 600 60\n"
                    "@ IN NS ns.%s.\nns IN A 127.0.0.1\n" % (ZONE, ZONE, ZONE))
        with open(self.conf, "w") as f:
            f.write(
                'options {\n directory "%(d)s";\n pid-file "%(d)s/named.pid";\n'
                ' session-keyfile "%(d)s/session.key";\n managed-keys-directory "%(d)s";\n'
                ' listen-on port %(p)d { 127.0.0.1; };\n listen-on-v6 { none; };\n'
                ' recursion no;\n dnssec-validation no;\n notify no;\n};\n'
                'controls { };\n'
                'key "%(k)s" { algorithm hmac-sha256; secret "%(s)s"; };\n'
                'zone "%(z)s" {\n type primary;\n file "%(f)s";\n'
                ' update-policy { grant %(k)s zonesub TXT; };\n};\n'
                % {"d": self.base, "p": self.port, "k": KEY_NAME, "s": self.secret, "z": ZONE,
                   "f": zone_file})
        self.proc = None
        self.log_path = os.path.join(self.base, "named.log")
        self._log = None

    def start(self):
        prefix = []
        if harness.is_root():
            # named is not to run as root: the folder (its journal) is nobody's.
            for root, dirs, files in os.walk(self.base):
                for n in [root] + [os.path.join(root, x) for x in files]:
                    shutil.chown(n, "nobody", "nogroup")
            prefix = harness.as_user_prefix("nobody")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(prefix + [NAMED, "-g"] + self.FAMILY + ["-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.dig(ZONE, "SOA") or None, 20, "named to serve " + ZONE,
                 self.log_tail)
        return self

    def dig(self, name, rtype):
        """The answer's records, one string each (dig +short over TCP)."""
        p = subprocess.run([DIG, "+short", "+tcp", "+time=2", "+tries=1", "-p", str(self.port),
                            "@127.0.0.1", name, rtype], capture_output=True, text=True,
                           timeout=10)
        return [line for line in p.stdout.splitlines() if line and not line.startswith(";")]

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return "--- named log:\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.base, ignore_errors=True)


class BindPebble(Pebble):
    """pebble resolving every name through the test's named (no challtestsrv)."""

    def __init__(self, http_port, dns_port):
        super().__init__(http_port)
        self.dns = dns_port

    def start(self):
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1")
        self.pebble = self._spawn([PEBBLE, "-config", self.conf, "-dnsserver",
                                   "127.0.0.1:%d" % self.dns], "pebble", env)
        wait_for(lambda: self._root() is not None, 20, "pebble to serve its root", self.log_tail)
        self.root_file = os.path.join(self.base, "root.pem")
        with open(self.root_file, "w") as f:
            f.write(self._root())
        return self


def write_key(folder, secret, mode=0o600, name="tsig.key"):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' % (KEY_NAME, secret))
    os.chmod(path, mode)
    return path


@unittest.skipUnless(PEBBLE and OPENSSL and NAMED and DIG,
                     "needs pebble, openssl, bind9 (named) and bind9-dnsutils (dig)")
class Dns01Case(AcmeCase):
    """A daemon ordering with dns-01 through the test's named."""

    SECRET = None  # None: the right one

    @classmethod
    def setUpClass(cls):
        cls.bind = Bind().start()
        cls.keydir = tempfile.mkdtemp(prefix="haloyd-tsig-")
        cls.key_file = write_key(cls.keydir, cls.SECRET or cls.bind.secret)
        cls.http_port = free_port()
        try:
            cls.pebble = BindPebble(cls.http_port, cls.bind.port).start()
            cls.daemon = None
            cls.start_daemon()
        except BaseException:
            cls.bind.close()
            raise
        cls.backend = harness.backend_mod.Backend("dns01").start()

    @classmethod
    def daemon_args(cls):
        # NS records carry no port: the zone's NS set (ns.example.test, 127.0.0.1) is asked
        # on the test's named's port.
        return super().daemon_args() + ["--dns-update-server", "127.0.0.1:%d" % cls.bind.port,
                                        "--dns-tsig-key", cls.key_file,
                                        "--dns-ns-port", str(cls.bind.port)]

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.bind.close()
            shutil.rmtree(cls.keydir, ignore_errors=True)

    def txt(self, base):
        return self.bind.dig("_acme-challenge." + base, "TXT")

    def acme_pid(self):
        with open("/proc/%d/task/%d/children" % (self.daemon.pid, self.daemon.pid)) as f:
            for pid in map(int, f.read().split()):
                with open("/proc/%d/cmdline" % pid, "rb") as c:
                    if c.read().split(b"\0")[1:3] == [b"-R", b"acme"]:
                        return pid
        self.fail("no ACME child under the master")

    def served_name(self, name):
        """The certificate served for name (verified against pebble's root), or None."""
        try:
            return self.served_cert(name)
        except ssl.SSLError:
            return None


class Dns01IssuanceTest(Dns01Case):

    def test_wildcard_and_plain_name_over_dns01(self):
        wild, plain = "*." + ZONE, "www." + ZONE
        self.daemon.ctl_ok("route", "add", wild, self.backend.addr)
        self.daemon.ctl_ok("route", "add", plain, self.backend.addr, "--challenge", "dns-01")
        w = self.wait_cert(wild, [wild])
        p = self.wait_cert(plain, [plain])
        self.verify_chain(w["chain"])
        self.verify_chain(p["chain"])
        self.assertEqual(self.status(wild)["challenge"], "dns-01")
        self.assertEqual(self.status(plain)["challenge"], "dns-01")
        log = self.daemon.log_text(self._mark)
        self.assertIn("added TXT _acme-challenge.%s in zone %s" % (ZONE, ZONE), log)
        self.assertIn("added TXT _acme-challenge.%s in zone %s" % (plain, ZONE), log)
        self.assertNotIn("http-01", log)
        # Both orders are over: their records are gone from the zone.
        wait_for(lambda: self.txt(ZONE) == [] and self.txt(plain) == [], 10,
                 "the TXT records to be deleted", lambda: self.daemon.log_tail(40))
        self.assertIn("deleted TXT _acme-challenge.%s" % ZONE, self.daemon.log_text(self._mark))
        # A name under the wildcard is served with the wildcard certificate (curl --resolve).
        name = "any." + ZONE
        wait_for(lambda: self.served_name(name) == [wild], 10,
                 "HTTPS to serve the wildcard certificate for " + name,
                 lambda: self.daemon.log_tail(60))
        self.assertEqual(self.served_cert(plain), [plain])
        curl = shutil.which("curl")
        r = subprocess.run([curl, "-sS", "--max-time", "10", "--cacert", self.pebble.root_file,
                            "--resolve", "%s:%d:127.0.0.1" % (name, self.https_port),
                            "https://%s:%d/hello" % (name, self.https_port)],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Two labels under the wildcard are not its names: the default certificate, not this one.
        self.assertRaises(ssl.SSLError, self.served_cert, "a.b." + ZONE)

    def test_wildcard_with_its_base_name_in_one_order(self):
        # Two authorisations, one record name: _acme-challenge.alias.example.test gets two
        # values, each added, waited for and deleted on its own.
        wild, base = "*.alias." + ZONE, "alias." + ZONE
        self.daemon.ctl_ok("route", "add", wild, self.backend.addr, "--alias", base)
        c = self.wait_cert(wild, [wild, base])
        self.verify_chain(c["chain"])
        log = self.daemon.log_text(self._mark)
        self.assertEqual(log.count("added TXT _acme-challenge.%s in zone" % base), 2, log)
        wait_for(lambda: self.txt(base) == [], 10, "both TXT values to be deleted",
                 lambda: self.daemon.log_tail(40))
        wait_for(lambda: self.served_name(base) == sorted([wild, base]), 10,
                 "HTTPS to serve the certificate for " + base, lambda: self.daemon.log_tail(40))
        self.assertEqual(self.served_name("x." + base), sorted([wild, base]))

    def test_acme_child_stays_under_its_sandbox(self):
        name = "sandbox." + ZONE
        self.daemon.ctl_ok("route", "add", name, self.backend.addr, "--challenge", "dns-01")
        self.wait_cert(name, [name])
        # Its DNS exchanges (TCP to named) ran under the filter: still filtered, never killed.
        pid = self.acme_pid()
        with open("/proc/%d/status" % pid) as f:
            mode = [line.split()[1] for line in f if line.startswith("Seccomp:")][0]
        self.assertEqual(mode, "2", "the ACME child (pid %d) runs in seccomp filter mode" % pid)
        self.assertNotIn("killed by the sandbox", self.daemon.log_text())


class Dns01BadKeyTest(Dns01Case):
    """A secret named does not know: the UPDATE is refused, the order fails and says why."""

    SECRET = base64.b64encode(b"\x01" * 32).decode()

    def test_bad_tsig_key_fails_the_order(self):
        wild = "*.bad." + ZONE
        self.daemon.ctl_ok("route", "add", wild, self.backend.addr)

        def failed():
            st = self.status(wild)
            return st if st is not None and st["state"] == "failed" else None
        st = wait_for(failed, 30, "the order to fail", lambda: self.daemon.log_tail(40))
        self.assertIn("BADSIG", st["last_error"])
        self.assertIn("_acme-challenge.bad.%s" % ZONE, st["last_error"])
        log = self.daemon.log_text(self._mark)
        self.assertIn("order failed: dns: adding TXT _acme-challenge.bad.%s at 127.0.0.1:%d: "
                      "the server refused our TSIG: BADSIG" % (ZONE, self.bind.port), log)
        self.assertEqual(self.txt("bad." + ZONE), [])
        self.assertIsNone(self.cert_row(wild))


@unittest.skipUnless(PEBBLE and OPENSSL, "needs pebble and openssl")
class Dns01ConfigTest(unittest.TestCase):
    """Start-up refusals and a wildcard without DNS settings."""

    def test_world_readable_key_is_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="haloyd-tsig-")
        try:
            key = write_key(d, base64.b64encode(b"k" * 32).decode(), mode=0o644)
            daemon = Daemon(1, ["--acme", "on", "--acme-directory", "https://127.0.0.1:1/dir",
                                "--dns-update-server", "127.0.0.1", "--dns-tsig-key", key])
            try:
                with self.assertRaises(AssertionError):
                    daemon.start(timeout=10)
                daemon.wait_exit(10)
                self.assertIn("dns_tsig_key %s: every user may read it" % key, daemon.log_text())
            finally:
                daemon.close(check=False)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class Dns01UnconfiguredTest(AcmeCase):
    """`acme on` without dns_update_server: a wildcard route gets no order; cert status says why."""

    def test_wildcard_without_dns_settings(self):
        wild = "*.nodns.example.com"
        out = self.daemon.ctl_ok("route", "add", wild, self.backend.addr)
        self.assertIn("needs DNS-01", out)
        st = self.status(wild)
        self.assertEqual(st["state"], "failed")
        self.assertIn("dns_update_server", st["last_error"])
        self.assertNotIn("ordering a certificate for " + wild, self.daemon.log_text(self._mark))


if __name__ == "__main__":
    unittest.main()
