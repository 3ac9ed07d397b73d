"""Integration tests of ACME (issue 5) against a real ACME server: Debian's
pebble, with pebble-challtestsrv answering DNS for every test name with
127.0.0.1, both started by the tests on loopback ports. pebble's HTTP-01
validations go to haloyd's HTTP listener (its config's httpPort); the
tests trust pebble's root as its management interface hands it out.

pebble forgets everything (accounts, orders, even its root) when it
restarts; the daemon copes (it registers again), and the tests compare
fingerprints rather than issuers across restarts.
"""
import json
import os
import pwd
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from . import harness
from .harness import Daemon, free_port, unique_host, wait_for

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
OPENSSL = shutil.which("openssl")
ISSUE_TIMEOUT = 60.0


def acme_user():
    """The ACME child's user: haloyd-acme when the package created it."""
    for name in ("haloyd-acme", "daemon"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    raise AssertionError("neither haloyd-acme nor daemon exists")


class Pebble:
    """pebble + pebble-challtestsrv on loopback ports, in a temporary folder."""

    def __init__(self, http_port, tls_port=None):
        self.base = tempfile.mkdtemp(prefix="haloyd-pebble-")
        os.chmod(self.base, 0o755)  # the ACME child reads the CA file as its own user
        self.http_port = http_port
        self.port = free_port()
        self.mgmt = free_port()
        self.dns = free_port()
        self.chall_mgmt = free_port()
        self.tls_port = tls_port or free_port()  # where TLS-ALPN-01 validations go
        self.ca_file = os.path.join(self.base, "pebble.crt")
        key = os.path.join(self.base, "pebble.key")
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", self.ca_file,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(self.ca_file, 0o644)
        self.conf = os.path.join(self.base, "pebble.json")
        with open(self.conf, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.port,
                "managementListenAddress": "127.0.0.1:%d" % self.mgmt,
                "certificate": self.ca_file, "privateKey": key,
                "httpPort": http_port, "tlsPort": self.tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.pebble = None
        self.chall = None
        self._logs = []
        self.env = {}  # more of pebble's environment (test_pgacme: PEBBLE_VA_ALWAYS_VALID)

    @property
    def directory(self):
        return "https://127.0.0.1:%d/dir" % self.port

    def _spawn(self, argv, name, env=None):
        log = open(os.path.join(self.base, name + ".log"), "ab")
        self._logs.append(log)
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.base)

    def start(self):
        if self.chall is None:
            self.chall = self._spawn([CHALLTESTSRV, "-defaultIPv4", "127.0.0.1",
                                      "-defaultIPv6", "", "-dns01", "127.0.0.1:%d" % self.dns,
                                      "-http01", "", "-https01", "", "-tlsalpn01", "",
                                      "-management", "127.0.0.1:%d" % self.chall_mgmt],
                                     "challtestsrv")
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", **self.env)
        self.pebble = self._spawn([PEBBLE, "-config", self.conf, "-dnsserver",
                                   "127.0.0.1:%d" % self.dns], "pebble", env)
        wait_for(lambda: self._root() is not None, 20, "pebble to serve its root", self.log_tail)
        self.root_file = os.path.join(self.base, "root.pem")
        with open(self.root_file, "w") as f:
            f.write(self._root())
        return self

    def _root(self):
        ctx = ssl.create_default_context(cafile=self.ca_file)
        try:
            with urllib.request.urlopen("https://127.0.0.1:%d/roots/0" % self.mgmt,
                                        context=ctx, timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def stop_pebble(self):
        if self.pebble is not None and self.pebble.poll() is None:
            self.pebble.terminate()
            self.pebble.wait(10)

    def set_a(self, host, addr):
        """Makes challtestsrv answer A queries for host with addr."""
        req = urllib.request.Request("http://127.0.0.1:%d/add-a" % self.chall_mgmt,
                                     data=json.dumps({"host": host, "addresses": [addr]}).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def log_tail(self):
        try:
            with open(os.path.join(self.base, "pebble.log")) as f:
                return "--- pebble log:\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def close(self):
        self.stop_pebble()
        if self.chall is not None:
            self.chall.terminate()
            self.chall.wait(10)
        for log in self._logs:
            log.close()
        shutil.rmtree(self.base, ignore_errors=True)


@unittest.skipUnless(PEBBLE and CHALLTESTSRV and OPENSSL,
                     "needs Debian's pebble package (pebble, pebble-challtestsrv) and openssl")
class AcmeCase(unittest.TestCase):
    """A daemon with `acme on` pointed at its own pebble; helpers to read the outcome."""

    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.http_port = free_port()
        cls.pebble = Pebble(cls.http_port).start()
        cls.daemon = None
        cls.start_daemon()
        cls.backend = harness.backend_mod.Backend("acme").start()

    @classmethod
    def start_daemon(cls, args=None, state_from=None):
        d = Daemon(2, list(cls.daemon_args()) + list(args if args is not None else cls.ARGS))
        d.port = cls.http_port  # pebble's httpPort must be our HTTP listener
        if state_from is not None:
            shutil.copytree(state_from, d.state_dir)
        try:
            d.start()
        except BaseException:
            d.close(check=False, keep=True)
            raise
        cls.daemon = d
        return d

    @classmethod
    def daemon_args(cls):
        cls.https_port = getattr(cls, "https_port", None) or free_port()
        return ["--listen-https", "127.0.0.1:%d" % cls.https_port, "--acme", "on",
                "--acme-directory", cls.pebble.directory, "--acme-ca-file", cls.pebble.ca_file,
                "--acme-email", "ops@example.com", "--acme-user", acme_user(),
                "--acme-backoff-max", "1h"]

    @classmethod
    def tearDownClass(cls):
        cls.backend.stop()
        try:
            if cls.daemon is not None:
                cls.daemon.close()
        finally:
            cls.pebble.close()

    def setUp(self):
        self._mark = self.daemon.log_size()

    def tearDown(self):
        self.daemon.check_log(self._mark)

    # --- reading the outcome

    def status(self, name):
        rc, out, _ = self.daemon.ctl("--json", "cert", "status", name)
        if rc != 0:
            return None
        rows = json.loads(out)
        return rows[0] if rows else None

    def cert_row(self, name):
        """The store's certificate row for name: (fingerprint, chain PEM, names)."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.daemon.state_dir, "haloyd.db"),
                             uri=True, timeout=10)
        try:
            r = db.execute("SELECT id, fingerprint, chain_pem, source FROM certs WHERE domain = ?",
                           (name,)).fetchone()
            if r is None:
                return None
            names = sorted(n for (n,) in db.execute(
                "SELECT name FROM cert_names WHERE cert_id = ?", (r[0],)))
            return {"fingerprint": r[1], "chain": r[2], "source": r[3], "names": names}
        finally:
            db.close()

    def wait_cert(self, name, names, other_than=None, timeout=ISSUE_TIMEOUT):
        def ready():
            c = self.cert_row(name)
            if c is None or c["names"] != sorted(names):
                return None
            return c if other_than is None or c["fingerprint"] != other_than else None
        return wait_for(ready, timeout, "an ACME certificate for %s" % ", ".join(names),
                        lambda: self.daemon.log_tail(60) + self.pebble.log_tail())

    def verify_chain(self, chain):
        """openssl verify: the leaf chains to pebble's root through the chain's intermediates."""
        d = tempfile.mkdtemp(prefix="haloyd-chain-")
        try:
            parts = chain.split("-----END CERTIFICATE-----")
            certs = [p + "-----END CERTIFICATE-----\n" for p in parts if "BEGIN" in p]
            with open(os.path.join(d, "leaf.pem"), "w") as f:
                f.write(certs[0].lstrip())
            with open(os.path.join(d, "rest.pem"), "w") as f:
                f.write("".join(c.lstrip() for c in certs[1:]))
            p = subprocess.run([OPENSSL, "verify", "-CAfile", self.pebble.root_file, "-untrusted",
                                os.path.join(d, "rest.pem"), os.path.join(d, "leaf.pem")],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def served_cert(self, name):
        """The certificate HTTPS serves for name (verified against pebble's root) as a dict."""
        ctx = ssl.create_default_context(cafile=self.pebble.root_file)
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                cert = t.getpeercert()
        return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")

    def add_route(self, name, *aliases):
        args = ["route", "add", name, self.backend.addr]
        for a in aliases:
            args += ["--alias", a]
        return self.daemon.ctl_ok(*args)


class IssuanceTest(AcmeCase):
    """Orders on route add and alias add, the CA's refusals, the account key."""

    def test_route_add_issues_certificate(self):
        name = unique_host("acme")
        t0 = time.monotonic()
        self.add_route(name)
        c = self.wait_cert(name, [name])
        took = time.monotonic() - t0
        print("\n[acme] first issuance against pebble (PEBBLE_VA_NOSLEEP=1): %.2f s" % took)
        if took > 5:
            print(self.daemon.log_text(self._mark))
        self.assertEqual(c["source"], 2)  # enum keyring_source: acme
        self.verify_chain(c["chain"])
        st = self.status(name)
        self.assertEqual(st["state"], "valid")
        self.assertEqual(st["last_error"], "")
        rc, out, _ = self.daemon.ctl("--json", "cert", "list")
        self.assertEqual(rc, 0)
        row = [r for r in json.loads(out) if r["domain"] == name][0]
        self.assertEqual(row["names"], [name])
        self.assertEqual(row["source"], "acme")
        self.assertIn("Pebble", row["issuer"])
        # The log follows the order step by step, with the domain as a field.
        log = self.daemon.log_text(self._mark)
        for step in ("ordering a certificate", "publishing the http-01 answer",
                     "asking the CA to validate", "finalizing", "certificate installed"):
            self.assertIn(step, log)
        self.assertIn("HALOYD_DOMAIN=%s" % name, log)

    def test_acme_child_runs_under_its_sandbox(self):
        # After an order (HTTPS to the CA, the account key written), still filtered, alive.
        name = unique_host("sandboxed")
        self.add_route(name)
        self.wait_cert(name, [name])
        pid = self.acme_pid()
        with open("/proc/%d/status" % pid) as f:
            mode = [line.split()[1] for line in f if line.startswith("Seccomp:")][0]
        self.assertEqual(mode, "2", "the ACME child (pid %d) runs in seccomp filter mode" % pid)
        self.assertNotIn("killed by the sandbox", self.daemon.log_text())

    def acme_pid(self):
        with open("/proc/%d/task/%d/children" % (self.daemon.pid, self.daemon.pid)) as f:
            for pid in map(int, f.read().split()):
                with open("/proc/%d/cmdline" % pid, "rb") as c:
                    if c.read().split(b"\0")[1:3] == [b"-R", b"acme"]:
                        return pid
        self.fail("no ACME child under the master")

    def test_https_serves_issued_certificate(self):
        name = unique_host("served")
        self.add_route(name)
        self.wait_cert(name, [name])
        wait_for(lambda: self.served_cert(name) == [name], 10,
                 "HTTPS to serve the pebble certificate for %s" % name)

    def test_route_rm_removes_its_certificate(self):
        name = unique_host("gone")
        self.add_route(name)
        self.wait_cert(name, [name])
        self.daemon.ctl_ok("route", "rm", name)
        # Gone from the store when rm returns, and from every worker's keyring.
        self.assertIsNone(self.cert_row(name))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                der = t.getpeercert(binary_form=True)
        self.assertNotIn(name.encode(), der, "the removed route's certificate is still served")

    def test_alias_add_replaces_certificate_without_failed_requests(self):
        name, alias = unique_host("alias"), unique_host("www")
        self.add_route(name)
        first = self.wait_cert(name, [name])
        stop, failures, done = threading.Event(), [], [0]

        def loop():
            while not stop.is_set():
                try:
                    r = self.daemon.get(name, "/loop")
                    if r.status >= 500 or r.status == 404:
                        failures.append(r.status)
                except OSError as e:
                    failures.append(repr(e))
                done[0] += 1

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        try:
            self.daemon.ctl_ok("alias", "add", name, alias)
            second = self.wait_cert(name, [name, alias], other_than=first["fingerprint"])
            wait_for(lambda: done[0] > 20, 10, "the client loop to run")
        finally:
            stop.set()
            t.join(10)
        self.assertEqual(failures, [])
        self.verify_chain(second["chain"])

    def test_unvalidatable_challenge_fails_with_ca_reason(self):
        name = unique_host("bad")
        self.pebble.set_a(name, "127.0.0.2")  # nothing of ours answers there
        self.add_route(name)

        def failed():
            st = self.status(name)
            return st if st is not None and st["state"] == "failed" else None
        st = wait_for(failed, ISSUE_TIMEOUT, "the order for %s to fail" % name,
                      self.daemon.log_tail)
        self.assertTrue(st["last_error"].startswith("connection:"), st)
        self.assertIn("127.0.0.2", st["last_error"])  # pebble's own detail
        self.assertGreaterEqual(st["attempts"], 1)
        self.assertGreater(st["next_attempt_unix"], time.time())
        self.assertIsNone(self.cert_row(name))

    def test_non_public_name_warns_and_orders_nothing(self):
        out = self.daemon.ctl_ok("route", "add", "intranet", self.backend.addr)
        self.assertIn("no ACME certificate for intranet", out)
        rc, _, err = self.daemon.ctl("cert", "status", "intranet")
        self.assertEqual(rc, 5, err)  # CTL_ENOENT: no order

    def test_account_key_is_private_to_the_acme_user(self):
        name = unique_host("key")
        self.add_route(name)
        self.wait_cert(name, [name])
        key = os.path.join(self.daemon.state_dir, "acme", "account.key")
        st = os.stat(key)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        if harness.is_root():
            self.assertEqual(st.st_uid, pwd.getpwnam(acme_user()).pw_uid)
            # The workers' user cannot read it.
            p = subprocess.run(harness.as_user_prefix(self.daemon.user) + ["cat", key],
                               capture_output=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertNotIn(b"PRIVATE KEY", p.stdout)


class RenewalTest(AcmeCase):
    """A due certificate is renewed; a restart with a valid one orders nothing."""

    ARGS = ("--acme-renew-before", "100%")  # every certificate is always due

    def test_due_certificate_renewed_then_restart_orders_nothing(self):
        name = unique_host("renew")
        self.add_route(name)
        first = self.wait_cert(name, [name])
        second = self.wait_cert(name, [name], other_than=first["fingerprint"])
        self.verify_chain(second["chain"])
        # Restart with the normal window: the valid certificate stays, no order.
        old_daemon = self.daemon
        old_daemon.close(keep=True)
        try:
            d = type(self).start_daemon(args=(), state_from=old_daemon.state_dir)
        finally:
            shutil.rmtree(old_daemon.base, ignore_errors=True)
        self._mark = 0
        before = self.cert_row(name)["fingerprint"]
        time.sleep(3)  # the schedule runs at start-up: give it the chance to misbehave
        self.assertNotIn("ordering a certificate", d.log_text(), d.log_tail())
        self.assertEqual(self.cert_row(name)["fingerprint"], before)
        self.assertEqual(self.status(name)["state"], "valid", d.log_tail())


class OutageTest(AcmeCase):
    """The CA down: orders fail and back off, the old certificate stays, then it works."""

    def test_ca_down_backs_off_and_recovers(self):
        name = unique_host("outage")
        self.add_route(name)
        old = self.wait_cert(name, [name])
        self.pebble.stop_pebble()
        self.daemon.ctl_ok("cert", "renew", name)

        def failed_after(n):
            st = self.status(name)
            return st if st and st["state"] == "failed" and st["attempts"] >= n else None
        st1 = wait_for(lambda: failed_after(1), 30, "the first failure", self.daemon.log_tail)
        t1 = time.time()
        st2 = wait_for(lambda: failed_after(2), 30, "the second failure", self.daemon.log_tail)
        t2 = time.time()
        self.assertTrue(st1["last_error"].startswith("connection:"), st1)
        # The wait after the second failure is longer than after the first.
        self.assertGreater(st2["next_attempt_unix"] - t2, st1["next_attempt_unix"] - t1 - 1)
        self.assertGreater(st2["next_attempt_unix"], st1["next_attempt_unix"])
        # The old certificate keeps serving: it is still the route's.
        self.assertEqual(self.cert_row(name)["fingerprint"], old["fingerprint"])
        self.pebble.start()
        new = self.wait_cert(name, [name], other_than=old["fingerprint"], timeout=60)
        self.verify_chain(new["chain"])
        self.assertEqual(self.status(name)["state"], "valid")


if __name__ == "__main__":
    unittest.main()
