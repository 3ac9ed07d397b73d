"""Helpers of tests/bench/cert-bench.

  certbench.py gen DIR COUNT          COUNT certificates (c0.bench.test ...) signed by
                                      one CA, EC P-256 keys, as DIR/certs.json
  certbench.py store DB DIR COUNT     the first COUNT of them written into haloyd's store
                                      (as `cert import` would: source 1, the names)
  certbench.py measure NAME COUNT DIR PORT PID ROUNDS
                                      waits until the last name gets its own certificate,
                                      then one JSON line: the worker's RSS, the master's,
                                      and the median time of a full TLS 1.3 handshake with
                                      the SNI of a name picked at random (cold: first use
                                      since start; warm: the same names again)
"""
import datetime
import hashlib
import json
import os
import random
import socket
import sqlite3
import ssl
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def gen(d, count):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    count = int(count)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cert-bench CA")])
    out = []
    for i in range(count):
        k = ec.generate_private_key(ec.SECP256R1())
        name = f"c{i}.bench.test"
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name).public_key(k.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=60))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
                .sign(ca_key, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        out.append({"name": name,
                    "chain": cert.public_bytes(serialization.Encoding.PEM).decode(),
                    "key": k.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode(),
                    "fp": hashlib.sha256(der).hexdigest(),
                    "nb": int((now - datetime.timedelta(days=1)).timestamp()),
                    "na": int((now + datetime.timedelta(days=60)).timestamp())})
    with open(os.path.join(d, "certs.json"), "w") as f:
        json.dump(out, f)
    return 0


def store(db, d, count):
    certs = json.load(open(os.path.join(d, "certs.json")))[:int(count)]
    con = sqlite3.connect(db, timeout=30)
    with con:
        for c in certs:
            cur = con.execute(
                "INSERT INTO certs (domain, source, chain_pem, key_pem, not_before, not_after, "
                "fingerprint, issuer, created) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (c["name"], c["chain"], c["key"], c["nb"], c["na"], c["fp"], "CN=cert-bench CA",
                 int(time.time())))
            con.execute("INSERT INTO cert_names (cert_id, name) VALUES (?, ?)",
                        (cur.lastrowid, c["name"]))
    con.close()
    return 0


def handshake_us(port, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    t0 = time.perf_counter()
    s = ctx.wrap_socket(raw, server_hostname=name)
    us = (time.perf_counter() - t0) * 1e6
    cn = s.getpeercert(binary_form=True)
    s.close()
    return us, cn


def worker_pids(pid):
    out = []
    for p in benchlib.tree_pids(pid):
        try:
            if b"\0worker\0" in open(f"/proc/{p}/cmdline", "rb").read():
                out.append(p)
        except OSError:
            pass
    return out


def rss_one(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(name, count, d, port, pid, rounds):
    count, rounds = int(count), int(rounds)
    certs = json.load(open(os.path.join(d, "certs.json")))[:count]
    # The keyring is installed once the last certificate serves its name.
    deadline = time.time() + 180
    if certs:
        want = bytes.fromhex(certs[-1]["fp"])
        while True:
            try:
                if hashlib.sha256(handshake_us(port, certs[-1]["name"])[1]).digest() == want:
                    break
            except OSError:  # a worker busy installing the keyring: the handshake times out
                pass
            if time.time() > deadline:  # e.g. a worker killed for not acking in time, again and again
                print(json.dumps({"build": name, "certs": count, "failed":
                                  f"{certs[-1]['name']} never got its certificate in 180 s"}))
                return 0
            time.sleep(0.5)
    time.sleep(1.0)
    workers = worker_pids(pid)
    wrss = sum(rss_one(p) for p in workers)
    trss = benchlib.rss_kib(pid)
    pick = random.Random(1)
    names = [pick.choice(certs)["name"] if certs else "nothing.bench.test" for _ in range(rounds)]
    cold = sorted(handshake_us(port, n)[0] for n in names)
    warm = sorted(handshake_us(port, n)[0] for n in names)
    line = json.dumps({"build": name, "certs": count, "worker_rss_kib": wrss, "tree_rss_kib": trss,
                      "workers": len(workers), "hs_cold_us": statistics.median(cold),
                      "hs_warm_us": statistics.median(warm)})
    print(line)
    print(line, file=sys.stderr)
    return 0


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    base = {r["build"]: r for r in rows if r["certs"] == 0 and "failed" not in r}
    print(f"{'build':10} {'certs':>6} {'worker RSS':>11} {'per cert':>9} {'tree RSS':>10} "
          f"{'hs cold':>9} {'hs warm':>9}")
    for r in rows:
        if "failed" in r:
            print(f"{r['build']:10} {r['certs']:6d} FAILED: {r['failed']}")
            continue
        b = base.get(r["build"])
        per = ((r["worker_rss_kib"] - b["worker_rss_kib"]) * 1024 / r["certs"]
               if b and r["certs"] else float("nan"))
        print(f"{r['build']:10} {r['certs']:6d} {r['worker_rss_kib']:8d} KiB {per:7.0f} B "
              f"{r['tree_rss_kib']:7d} KiB {r['hs_cold_us']:6.0f} us {r['hs_warm_us']:6.0f} us")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"gen": gen, "store": store, "measure": measure, "report": report}[cmd](*args))
