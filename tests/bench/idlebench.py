"""Helpers of tests/bench/idle-bench: hold N idle client connections of one
kind to a proxy and print the RSS its process tree gained per connection
(one JSON line), and the final table.

  idlebench.py hold NAME KIND PORT PID COUNT     KIND: http tls h2c h2
  idlebench.py report RESULTS_FILE

Each connection gets one request answered in full (so whatever a first
request sets up is paid) and is then left idle; the RSS is read 2.5 s
after the last one (haloyd trims idle HTTP/2 sessions after a second)."""
import json
import os
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

REQ = b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n"
TARGETS = {"http": 512, "tls": 4096, "h2c": 8192, "h2": 8192}


def tls_ctx(alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


def h1_get(port, ctx):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    if ctx is not None:
        s = ctx.wrap_socket(s, server_hostname="bench.local")
    s.sendall(REQ)
    data = b""
    while b"backend" not in data:
        chunk = s.recv(4096)
        if not chunk or (data + chunk).startswith(b"HTTP/1.1 3"):
            raise SystemExit(f"port {port}: no answer from the backend: {(data + chunk)[:60]!r}")
        data += chunk
    return s


class PlainH2:
    """What benchlib.h2_get needs of a TLS socket, over plain TCP: the
    HTTP/2 preface is prior knowledge."""
    def __init__(self, raw):
        self.raw = raw

    def selected_alpn_protocol(self):
        return "h2"

    def __getattr__(self, name):
        return getattr(self.raw, name)


class PlainCtx:
    def wrap_socket(self, raw, server_hostname=None):
        return PlainH2(raw)


def h2c_get(port):
    return benchlib.h2_get(port, PlainCtx())


def opener(kind, port):
    if kind == "http":
        return lambda: h1_get(port, None)
    if kind == "tls":
        ctx = tls_ctx("http/1.1")
        return lambda: h1_get(port, ctx)
    if kind == "h2c":
        return lambda: h2c_get(port)
    ctx = tls_ctx("h2")
    return lambda: benchlib.h2_get(port, ctx)


def hold(name, kind, port, pid, count):
    count = int(count)
    open_one = opener(kind, port)
    for _ in range(8):  # whatever the first connections set up once
        open_one().close()
    time.sleep(0.5)
    before = benchlib.rss_kib(pid)
    socks = [open_one() for _ in range(count)]
    time.sleep(2.5)
    after = benchlib.rss_kib(pid)
    for s in socks:
        s.close()
    print(json.dumps({"proxy": name, "kind": kind, "conns": count, "rss_before_kib": before,
                      "rss_after_kib": after, "bytes_per_conn": (after - before) * 1024 / count}))
    return 0


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = {(r["proxy"], r["kind"]): r["bytes_per_conn"] for r in rows}
    kinds = [k for k in ("http", "tls", "h2c", "h2") if any(r["kind"] == k for r in rows)]
    print(f"{'idle connection':16} {'haloyd':>9} {'nginx':>9} {'haproxy':>9} "
          f"{'/nginx':>7} {'/haproxy':>8} {'target':>7}")
    for k in kinds:
        h, n, p = (by.get((x, k)) for x in ("haloyd", "nginx", "haproxy"))

        def cell(v):
            return f"{v:9.0f}" if v is not None else f"{'-':>9}"

        def ratio(a, b):
            return f"{a / b:7.2f}" if a is not None and b else f"{'-':>7}"
        met = "MET" if h is not None and h <= TARGETS[k] else "NOT MET"
        print(f"{k + ' (bytes)':16} {cell(h)} {cell(n)} {cell(p)} {ratio(h, n)} {ratio(h, p):>8} "
              f"{TARGETS[k]:>5} {met}")
    held = {}
    for r in rows:
        held.setdefault(r["proxy"], set()).add(r["conns"])
    print("connections held of each kind: " + ", ".join(
        f"{p} {'/'.join(str(c) for c in sorted(held[p]))}" for p in held))
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    sys.exit({"hold": hold, "report": report}[cmd](*args))
