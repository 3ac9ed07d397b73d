#!/usr/bin/python3
"""The tests' certificates, made with the openssl CLI: one module for every test.

A Pki is a CA in a folder (its files STEM.pem and STEM.key; several CAs may
share one folder under other stems). It issues leaf certificates with the
extensions given: server() (SANs), client() (a CN, clientAuth, as tunnel agents
present) and leaf() (names, ECDSA P-256 or RSA 2048, and the certificate's
SHA-256). Two Pki objects are two unrelated CAs (a "foreign" CA).
"""
import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


def openssl(*args, cwd=None):
    p = subprocess.run([OPENSSL] + list(args), cwd=cwd, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout


def san(name):
    """A SAN entry: an IP address becomes an IP SAN, anything else a DNS one."""
    return ("IP:" if name.replace(".", "").isdigit() or ":" in name else "DNS:") + name


class Pki:
    def __init__(self, name="haloyd test CA", base=None, folder=None, stem="ca", days=30):
        self.own = folder is None
        self.dir = folder or tempfile.mkdtemp(prefix="haloyd-pki-", dir=base)
        os.chmod(self.dir, 0o755)
        self.ca = os.path.join(self.dir, stem + ".pem")
        self.ca_key = os.path.join(self.dir, stem + ".key")
        self.stem, self.days = stem, days
        self._n = 0
        openssl("req", "-x509", *EC, "-nodes", "-keyout", self.ca_key, "-out", self.ca,
                "-days", str(days), "-subj", "/CN=" + name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        os.chmod(self.ca, 0o644)

    def issue(self, cn, ext_lines, stem=None, rsa=False, days=None, key_mode=0o600):
        """(cert path, key path) of a leaf signed by this CA; files STEM.pem/.key."""
        self._n += 1
        stem = os.path.join(self.dir, stem or "%s-leaf%d" % (self.stem, self._n))
        key, csr, crt, ext = stem + ".key", stem + ".csr", stem + ".pem", stem + ".ext"
        with open(ext, "w") as f:
            f.write("\n".join(["basicConstraints=CA:FALSE"] + ext_lines) + "\n")
        openssl("req", "-new", *(["-newkey", "rsa:2048"] if rsa else EC), "-nodes",
                "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-set_serial", str(secrets.randbits(62)), "-days", str(days or self.days),
                "-out", crt, "-extfile", ext)
        os.chmod(key, key_mode)
        os.chmod(crt, 0o644)
        return crt, key

    def server(self, cn, sans, stem=None):
        """A server certificate: sans like ["DNS:tunnel.test", "IP:127.0.0.1"]."""
        return self.issue(cn, ["keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth",
                               "subjectAltName=" + ",".join(sans)], stem)

    def client(self, cn, stem=None):
        """An agent's certificate; its CN names the tunnel."""
        return self.issue(cn, ["keyUsage=critical,digitalSignature",
                               "extendedKeyUsage=clientAuth"], stem)

    def leaf(self, cn, names, rsa=False, days=30):
        """(cert path, key path, SHA-256 of the certificate's DER) for names.

        The key is 0644: haloyd-ctl may run as another user; the test CA is throw-away."""
        crt, key = self.issue(cn, ["extendedKeyUsage=serverAuth",
                                   "subjectAltName=" + ",".join(san(n) for n in names)],
                              rsa=rsa, days=days, key_mode=0o644)
        der = openssl("x509", "-in", crt, "-outform", "DER")
        return crt, key, hashlib.sha256(der).hexdigest()

    def close(self):
        if self.own:
            shutil.rmtree(self.dir, ignore_errors=True)
