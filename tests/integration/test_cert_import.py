"""Integration tests of certificate import (issue 4): haloyd-ctl cert import,
list, show and rm against the real daemon, every refusal (exit 7, one
line), and the keyring reaching the workers: each worker logs the keyring's
generation and certificates, acks the generation that carries it, and
serves the imported certificate on its HTTPS listener.

Certificates are made here with the openssl command: a test CA signs
leaves with chosen names and dates (`openssl ca` takes any start and end
date, so expired and not-yet-valid certificates are real ones).
"""
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from . import harness
from .harness import DaemonTestCase, wait_for

CTL_ENOENT, CTL_EINVAL, CTL_EUSAGE = 5, 7, 2

CA_CONF = """
[ca]
default_ca = test_ca
[test_ca]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/issued
certificate = {dir}/ca.pem
private_key = {dir}/ca.key
rand_serial = yes
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
[any_policy]
commonName = supplied
"""


def one_line(err):
    return err.endswith("\n") and err.count("\n") == 1 and err.startswith("haloyd-ctl: ")


class CertFactory:
    """A test CA in a temporary folder that signs leaves on demand."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="haloyd-certs-")
        os.makedirs(os.path.join(self.dir, "issued"))
        open(os.path.join(self.dir, "index.txt"), "w").close()
        self.conf = os.path.join(self.dir, "ca.cnf")
        with open(self.conf, "w") as f:
            f.write(CA_CONF.format(dir=self.dir))
        self.n = 0
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.path("ca.key"), "-out", self.path("ca.pem"),
                     "-subj", "/CN=haloyd Test CA", "-days", "3650")

    def path(self, name):
        return os.path.join(self.dir, name)

    def openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr))
        return p.stdout

    def key(self, rsa=False):
        self.n += 1
        k = self.path("key%d.pem" % self.n)
        if rsa:
            self.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                         "-out", k)
        else:
            self.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-out", k)
        return k

    def leaf(self, names, start="-1d", end="+90d", rsa=False, key=None):
        """(chain path, key path) for a leaf naming names, valid from start to end.

        start and end are "+Nd" / "-Nd" from now. The chain file holds the
        leaf then the CA, as a real full chain does.
        """
        key = key or self.key(rsa)
        self.n += 1
        csr, crt, ext = (self.path("%s%d" % (p, self.n)) for p in ("csr", "crt", "ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % ",".join("DNS:" + n for n in names))
        self.openssl("req", "-new", "-key", key, "-subj", "/CN=" + names[0], "-out", csr)
        self.openssl("ca", "-batch", "-notext", "-config", self.conf, "-in", csr, "-out", crt,
                     "-startdate", self.date(start), "-enddate", self.date(end),
                     "-extfile", ext)
        chain = self.path("chain%d.pem" % self.n)
        with open(chain, "w") as f, open(crt) as leaf, open(self.path("ca.pem")) as ca:
            f.write(leaf.read() + ca.read())
        return chain, key

    @staticmethod
    def date(rel):
        import datetime
        days = int(rel[:-1])
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
        return t.strftime("%Y%m%d%H%M%SZ")

    def fingerprint(self, chain):
        out = self.openssl("x509", "-in", chain, "-noout", "-fingerprint", "-sha256")
        return out.strip().split("=", 1)[1].replace(":", "").lower()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class CertImportTest(DaemonTestCase):
    """Import, list, show, rm and refusals on one daemon with an HTTPS listener."""

    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.https_port = harness.free_port()
        cls.DAEMON_ARGS = ("-v", "--listen-https", "127.0.0.1:%d" % cls.https_port)
        cls.ca = CertFactory()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.ca.close()

    def ctl_json(self, *args):
        return json.loads(self.daemon.ctl_ok("--json", *args))

    def refused(self, want, *args):
        rc, out, err = self.daemon.ctl(*args)
        self.assertEqual(rc, CTL_EINVAL, "exit %d: %s%s" % (rc, out, err))
        self.assertTrue(one_line(err), repr(err))
        self.assertIn(want, err)
        return err

    def import_ok(self, domain, chain, key, *extra):
        return self.daemon.ctl_ok("cert", "import", domain, "--cert", chain, "--key", key,
                                  *extra)

    def cert_rows(self):
        return {r["domain"]: r for r in self.ctl_json("cert", "list")}

    def served_fingerprint(self, sni):
        """SHA-256 of the certificate the HTTPS listener presents for sni (None: no SNI)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=sni) as t:
                der = t.getpeercert(binary_form=True)
        import hashlib
        return hashlib.sha256(der).hexdigest()

    # --- the default certificate

    def test_default_certificate_exists(self):
        rows = self.cert_rows()
        self.assertIn("(default)", rows)
        d = rows["(default)"]
        self.assertEqual(d["source"], "default")
        self.assertEqual(d["issuer"], "CN=haloyd-default")
        self.assertEqual(d["names"], [])
        self.assertEqual(d["state"], "valid")

    # --- the life of one certificate

    def test_import_list_show_rm(self):
        domain = "app-%d.example.test" % os.getpid()
        chain, key = self.ca.leaf([domain, "www." + domain])
        mark = self.daemon.log_size()
        out = self.import_ok(domain, chain, key)
        self.assertIn("certificate for %s imported" % domain, out)
        self.assertIn("EC P-256", out)
        row = self.cert_rows()[domain]
        self.assertEqual(row["names"], [domain, "www." + domain])
        self.assertEqual(row["issuer"], "CN=haloyd Test CA")
        self.assertEqual(row["source"], "imported")
        self.assertEqual(row["state"], "valid")
        self.assertRegex(row["not_after"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
        show = self.ctl_json("cert", "show", domain)
        self.assertEqual(show["fingerprint"], self.ca.fingerprint(chain))
        self.assertIn(show["days_left"], (88, 89, 90))
        text = self.daemon.ctl_ok("cert", "show", domain)
        self.assertIn("fingerprint: " + show["fingerprint"], text)
        self.assert_keyring_reached_workers(mark, certificates=2)
        # Imported again: replaced, with a new id and fingerprint.
        chain2, key2 = self.ca.leaf([domain], rsa=True)
        self.assertIn("RSA 2048", self.import_ok(domain, chain2, key2))
        show2 = self.ctl_json("cert", "show", domain)
        self.assertNotEqual(show2["id"], show["id"])
        self.assertEqual(show2["fingerprint"], self.ca.fingerprint(chain2))
        self.assertEqual(len(self.cert_rows()), 2)
        mark = self.daemon.log_size()
        self.assertIn("removed", self.daemon.ctl_ok("cert", "rm", domain))
        self.assertNotIn(domain, self.cert_rows())
        self.assert_keyring_reached_workers(mark, certificates=1)
        rc, _, err = self.daemon.ctl("cert", "show", domain)
        self.assertEqual(rc, CTL_ENOENT, err)
        rc, _, err = self.daemon.ctl("cert", "rm", domain)
        self.assertEqual(rc, CTL_ENOENT, err)
        self.assertTrue(one_line(err), repr(err))

    def assert_keyring_reached_workers(self, mark, certificates):
        """The master built a keyring with that many certificates; every worker took it."""
        log = self.daemon.log_text(mark)
        m = re.search(r"keyring (\d+) built: %d certificates" % certificates, log)
        self.assertIsNotNone(m, "no keyring built in:\n" + log)
        gen = int(m.group(1))
        pat = re.compile(r"worker\S* .*keyring %d: %d certificates" % (gen, certificates))
        wait_for(lambda: len(pat.findall(self.daemon.log_text(mark))) >= self.WORKERS, 10,
                 "every worker to log keyring %d" % gen, self.daemon.log_tail)
        st = self.daemon.status()
        self.assertTrue(all(w["generation"] >= gen for w in st["workers"]), st)

    # --- wildcards

    def test_wildcard(self):
        base = "wild-%d.example.test" % os.getpid()
        chain, key = self.ca.leaf(["*." + base])
        self.import_ok("*." + base, chain, key)
        self.assertEqual(self.cert_rows()["*." + base]["names"], ["*." + base])
        # One label only: a.b.base and base itself are not covered.
        self.refused("does not cover a.b.%s" % base,
                     "cert", "import", "a.b." + base, "--cert", chain, "--key", key)
        self.refused("does not cover %s (it covers *.%s)" % (base, base),
                     "cert", "import", base, "--cert", chain, "--key", key)
        # An exact name under the wildcard may be imported with it.
        self.import_ok("x." + base, chain, key)
        self.daemon.ctl_ok("cert", "rm", "x." + base)
        self.daemon.ctl_ok("cert", "rm", "*." + base)

    # --- end to end: the workers present what was imported

    def test_served_after_import(self):
        domain = "served-%d.example.test" % os.getpid()
        base = "swild-%d.example.test" % os.getpid()
        default = self.served_fingerprint(None)  # no SNI: still a handshake
        self.assertEqual(self.served_fingerprint(domain), default)
        chain, key = self.ca.leaf([domain, "www." + domain])
        self.import_ok(domain, chain, key)
        wchain, wkey = self.ca.leaf(["*." + base])
        self.import_ok("*." + base, wchain, wkey)
        fp, wfp = self.ca.fingerprint(chain), self.ca.fingerprint(wchain)
        # Every worker serves them as soon as the import returned (new connections
        # land on either worker), the alias and the one-label wildcard included.
        for _ in range(2 * self.WORKERS):
            self.assertEqual(self.served_fingerprint(domain), fp)
            self.assertEqual(self.served_fingerprint("www." + domain), fp)
            self.assertEqual(self.served_fingerprint("a." + base), wfp)
        self.assertEqual(self.served_fingerprint("a.b." + base), default)
        self.assertEqual(self.served_fingerprint("unknown.example.test"), default)
        self.daemon.ctl_ok("cert", "rm", domain)
        self.daemon.ctl_ok("cert", "rm", "*." + base)
        for _ in range(2 * self.WORKERS):
            self.assertEqual(self.served_fingerprint(domain), default)

    # --- refusals: exit 7 and one line each

    def test_refusals(self):
        domain = "refused-%d.example.test" % os.getpid()
        chain, key = self.ca.leaf([domain])
        other_chain, other_key = self.ca.leaf([domain])
        garbage = self.ca.path("garbage.pem")
        with open(garbage, "w") as f:
            f.write("this is not PEM at all\n")
        self.refused("no PEM certificate found",
                     "cert", "import", domain, "--cert", garbage, "--key", key)
        self.refused("key: no usable PEM private key",
                     "cert", "import", domain, "--cert", chain, "--key", garbage)
        self.refused("the key does not match the certificate",
                     "cert", "import", domain, "--cert", chain, "--key", other_key)
        self.refused("does not cover other.example.test",
                     "cert", "import", "other.example.test", "--cert", chain, "--key", key)
        self.refused("cannot read",
                     "cert", "import", domain, "--cert", chain, "--key", self.ca.path("nope"))
        binary = self.ca.path("binary.der")
        self.ca.openssl("x509", "-in", chain, "-outform", "DER", "-out", binary)
        self.refused("not a PEM file",
                     "cert", "import", domain, "--cert", binary, "--key", key)
        encrypted = self.ca.path("encrypted.pem")
        self.ca.openssl("pkey", "-in", key, "-aes128", "-passout", "pass:secret",
                        "-out", encrypted)
        self.refused("the key is encrypted",
                     "cert", "import", domain, "--cert", chain, "--key", encrypted)
        self.assertNotIn(domain, self.cert_rows())
        # Bad command lines are usage errors, not refusals.
        rc, _, err = self.daemon.ctl("cert", "import", domain, "--cert", chain)
        self.assertEqual(rc, CTL_EUSAGE, err)
        rc, _, err = self.daemon.ctl("cert", "list", "--force")
        self.assertEqual(rc, CTL_EUSAGE, err)

    def test_dates(self):
        domain = "dates-%d.example.test" % os.getpid()
        chain, key = self.ca.leaf([domain], start="-90d", end="-1d")
        self.refused("the certificate expired on",
                     "cert", "import", domain, "--cert", chain, "--key", key)
        self.assertNotIn(domain, self.cert_rows())
        out = self.import_ok(domain, chain, key, "--force")
        self.assertIn("imported", out)
        self.assertEqual(self.cert_rows()[domain]["state"], "expired")
        self.daemon.ctl_ok("cert", "rm", domain)
        chain, key = self.ca.leaf([domain], start="+2d", end="+90d")
        self.refused("is not valid before",
                     "cert", "import", domain, "--cert", chain, "--key", key)

    def test_json_refusal(self):
        domain = "json-%d.example.test" % os.getpid()
        chain, _ = self.ca.leaf([domain])
        _, other_key = self.ca.leaf([domain])
        rc, out, err = self.daemon.ctl("--json", "cert", "import", domain, "--cert", chain,
                                       "--key", other_key)
        self.assertEqual(rc, CTL_EINVAL)
        doc = json.loads(out)
        self.assertFalse(doc["ok"])
        self.assertIn("does not match", json.dumps(doc))


class TicketKeyRotationTest(DaemonTestCase):
    """ticket_key_lifetime: each rotation ships a keyring with current + previous keys."""

    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        cls.DAEMON_ARGS = ("-v", "--listen-https", "127.0.0.1:%d" % harness.free_port(),
                           "--ticket-key-lifetime", "1s")
        super().setUpClass()

    def test_rotation_reaches_workers(self):
        mark = self.daemon.log_size()
        built = re.compile(r"keyring (\d+) built: 1 certificates, 2 ticket keys")

        def two_rotations():
            gens = [int(g) for g in built.findall(self.daemon.log_text(mark))]
            return gens if len(gens) >= 2 else None
        gens = wait_for(two_rotations, 15, "two key rotations", self.daemon.log_tail)
        self.assertLess(gens[0], gens[1])
        log = self.daemon.log_text(mark)
        self.assertGreaterEqual(log.count("session-ticket key rotated"), 2)
        # Each went to every worker, which serves its generation (or a later one).
        for gen in gens[:2]:
            pat = re.compile(r"keyring %d: .*2 ticket keys" % gen)
            wait_for(lambda: len(pat.findall(self.daemon.log_text(mark))) >= self.WORKERS, 10,
                     "every worker to take keyring %d" % gen, self.daemon.log_tail)
        wait_for(lambda: all(w["generation"] >= gens[1]
                             for w in self.daemon.status()["workers"]), 10,
                 "every worker to serve generation %d" % gens[1], self.daemon.log_tail)


class CertPersistTest(unittest.TestCase):
    """The store keeps certificates and the default across restarts, with the key private."""

    def test_restart_keeps_certificates(self):
        ca = CertFactory()
        args = ("--listen-https", "127.0.0.1:%d" % harness.free_port())
        d, again = harness.Daemon(1, args), harness.Daemon(1, args)
        again.state_dir = d.state_dir  # the second daemon opens the first one's store
        try:
            d.start()
            domain = "persist-%d.example.test" % os.getpid()
            chain, key = ca.leaf([domain])
            d.ctl_ok("cert", "import", domain, "--cert", chain, "--key", key)
            before = {r["domain"]: r for r in json.loads(d.ctl_ok("--json", "cert", "list"))}
            self.assertEqual(set(before), {domain, "(default)"})
            d.close(keep=True)  # the store stays for the second daemon
            again.start()
            after = {r["domain"]: r for r in json.loads(again.ctl_ok("--json", "cert", "list"))}
            self.assertEqual(before, after)
            self.assert_key_only_in_store(again, d.state_dir, key)
        finally:
            again.close()
            d.close(check=False)
            shutil.rmtree(d.base, ignore_errors=True)
            ca.close()

    def assert_key_only_in_store(self, d, state_dir, key):
        """The store is 0600 in a folder nobody else may list or write (0711 since the
        workers reach the response cache inside it), and no other file holds the key."""
        db = os.path.join(state_dir, "haloyd.db")
        self.assertEqual(os.stat(db).st_mode & 0o777, 0o600)
        self.assertIn(os.stat(state_dir).st_mode & 0o777, (0o700, 0o711))
        with open(key) as f:
            body = [line.strip() for line in f if not line.startswith("-----")]
        for root, _, files in os.walk(d.base):
            for name in files:
                p = os.path.join(root, name)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                with open(p, "rb") as f:
                    data = f.read()
                for line in body:
                    self.assertNotIn(line.encode(), data, p)


if __name__ == "__main__":
    unittest.main()
