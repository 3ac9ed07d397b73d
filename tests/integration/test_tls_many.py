"""Integration tests of the certificate choice among many (issue 16, point 6):
a worker holds one TLS context and puts the certificate its SNI name gets on
each connection in the ClientHello callback, from DER bytes parsed on first
use (worker/tlscert.c, a cache of 256 parsed). 300 certificates imported, so
some are parsed again after leaving the cache.

Covered: each of the 300 names gets its own certificate (verified clients,
more names than the cache holds, twice round); the wildcard and the default
among them; HTTP/2 and HTTP/1.1 by ALPN on such a name; certificates
re-imported while 8 threads make new verified connections to the changing
name and to the others: no handshake fails and the new certificate is seen.
"""
import datetime
import hashlib
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .harness import unique_host, wait_for
from .test_tls import DEFAULT_CN, HttpsTestCase, client_ctx, served_subject_cn, tls_connect

MANY = 300


def served_fp(port, host, ctx):
    """The served certificate's SHA-256 and the protocol ALPN chose."""
    s = tls_connect(port, host, ctx)
    try:
        return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest(), s.selected_alpn_protocol()
    finally:
        s.close()


class SignedCertsTestCase(HttpsTestCase):
    """A daemon and leaves signed by the test CA, imported with haloyd-ctl."""
    made = 0  # certificates written into the PKI's folder

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(cls.pki.ca_key, "rb") as f:
            cls.ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(cls.pki.ca, "rb") as f:
            cls.ca_cert = x509.load_pem_x509_certificate(f.read())

    @classmethod
    def make_cert(cls, cn, names, days=30, valid_from=None):
        """(cert path, key path, SHA-256 of the DER) of a leaf signed by the test CA, valid
        from valid_from (an hour ago by default) for days."""
        k = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start = valid_from if valid_from is not None else now - datetime.timedelta(hours=1)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(cls.ca_cert.subject).public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .sign(cls.ca_key, hashes.SHA256()))
        cls.made += 1
        base = "%s/many%d" % (cls.pki.dir, cls.made)
        with open(base + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(base + ".key", "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
        return base + ".pem", base + ".key", hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    @classmethod
    def import_cert(cls, domain, names, days=30, valid_from=None):
        cert, key, fp = cls.make_cert(domain, names, days, valid_from)
        # A certificate not valid yet is refused without --force.
        force = ["--force"] if valid_from is not None else []
        cls.daemon.ctl_ok("cert", "import", domain, "--cert", cert, "--key", key, *force)
        return fp


class ManyCertificatesTest(SignedCertsTestCase):
    WORKERS = 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.names, cls.fps = [], {}
        suffix = unique_host("many")
        for i in range(MANY):
            name = "n%d.%s" % (i, suffix)
            cls.names.append(name)
            cls.fps[name] = cls.import_cert(name, [name])

    def test_each_name_gets_its_own(self):
        ctx = client_ctx(self.pki.ca)
        for _ in range(2):  # the second round finds most of them out of the cache
            for name in self.names:
                self.assertEqual(served_fp(self.https_port, name, ctx)[0], self.fps[name], name)

    def test_wildcard_and_default_among_many(self):
        suffix = unique_host("wildmany")
        fp = self.import_cert("*." + suffix, ["*." + suffix])
        self.assertEqual(served_fp(self.https_port, "a." + suffix, client_ctx(self.pki.ca))[0], fp)
        self.assertEqual(served_subject_cn(self.https_port, "a.b." + suffix), DEFAULT_CN)
        self.assertEqual(served_subject_cn(self.https_port, unique_host("nobody")), DEFAULT_CN)
        self.assertEqual(served_subject_cn(self.https_port, None), DEFAULT_CN)

    def test_alpn_on_a_chosen_certificate(self):
        name = self.names[7]
        for offer, want in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")):
            ctx = client_ctx(self.pki.ca)
            ctx.set_alpn_protocols(offer)
            self.assertEqual(served_fp(self.https_port, name, ctx), (self.fps[name], want))

    def test_reimport_under_load_drops_no_handshake(self):
        target = self.names[3]
        seen, failures, stop = set(), [], threading.Event()
        lock = threading.Lock()

        def client(k):
            ctx = client_ctx(self.pki.ca)
            i = 0
            while not stop.is_set():
                name = target if i % 2 == 0 else self.names[(k * 31 + i) % MANY]
                i += 1
                try:
                    fp = served_fp(self.https_port, name, ctx)[0]
                except (OSError, ssl.SSLError) as e:
                    with lock:
                        failures.append("%s: %r" % (name, e))
                    continue
                with lock:
                    if name == target:
                        seen.add(fp)
                    elif fp != self.fps[name]:
                        failures.append("%s: served %s" % (name, fp))

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        fps = []
        try:
            for d in range(10):  # each expires later, so each wins the name
                fps.append(self.import_cert(target, [target], days=40 + d))
            wait_for(lambda: fps[-1] in seen, 20, "the last certificate served under load")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(failures, [])
        self.assertIn(fps[-1], seen)
        self.assertGreaterEqual(len(seen), 2, "the clients saw the certificate change")
        self.fps[target] = fps[-1]


class CertificateTurnsValidTest(SignedCertsTestCase):
    """Which certificate a routed host gets is worked out when its snapshot image is built;
    a certificate that becomes valid (or one that expires) changes it with no change made by
    anyone: the master builds every image again then."""
    WORKERS = 2

    def test_a_certificate_valid_later_takes_over_when_it_becomes_valid(self):
        host = unique_host("turnsvalid")
        self.daemon.ctl_ok("route", "add", host, self.be.addr)
        now = datetime.datetime.now(datetime.timezone.utc)
        ctx = client_ctx(self.pki.ca)
        first = self.import_cert(host, [host], days=10)
        # Valid in 3 s (X.509 times are whole seconds), and for longer: the better one then.
        other = "other-" + host  # its own row in the store, listing host too
        later = self.import_cert(other, [other, host], days=20,
                                 valid_from=now.replace(microsecond=0) + datetime.timedelta(seconds=4))
        self.assertEqual(served_fp(self.https_port, host, ctx)[0], first)
        wait_for(lambda: served_fp(self.https_port, host, ctx)[0] == later, 20,
                 "the certificate valid from now on to be served", self.daemon.log_tail)
