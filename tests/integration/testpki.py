#!/usr/bin/python3
"""Certificates for the reverse-tunnel tests, made with the openssl CLI.

A Pki is a folder with a CA; it issues server certificates (SANs given)
and client certificates (subject CN given, extended key usage clientAuth),
each as (cert path, key path) with the key mode 0600, as haloyd-tunnel
insists on. Two Pki objects are two unrelated CAs (a "foreign" CA).
"""
import os
import subprocess
import tempfile


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), p.stderr.decode()))


class Pki:
    def __init__(self, name="haloyd test tunnel CA", base=None):
        self.dir = tempfile.mkdtemp(prefix="haloyd-pki-", dir=base)
        os.chmod(self.dir, 0o755)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self._n = 0
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "30",
                 "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.ca, 0o644)

    def _issue(self, cn, ext_lines):
        self._n += 1
        stem = os.path.join(self.dir, "leaf%d" % self._n)
        key, csr, crt, ext = stem + ".key", stem + ".csr", stem + ".pem", stem + ".ext"
        with open(ext, "w") as f:
            f.write("\n".join(["basicConstraints=CA:FALSE",
                               "keyUsage=critical,digitalSignature"] + ext_lines) + "\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=self.dir)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", crt, "-days", "30", "-extfile", ext, cwd=self.dir)
        os.chmod(key, 0o600)
        os.chmod(crt, 0o644)
        return crt, key

    def server(self, cn, sans):
        """A server certificate: sans like ["DNS:tunnel.test", "IP:127.0.0.1"]."""
        return self._issue(cn, ["extendedKeyUsage=serverAuth",
                                "subjectAltName=" + ",".join(sans)])

    def client(self, cn):
        """An agent's certificate; its CN names the tunnel."""
        return self._issue(cn, ["extendedKeyUsage=clientAuth"])
