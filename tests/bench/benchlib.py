#!/usr/bin/python3
"""Helpers for the benchmarks in tests/bench: wait for a port, parse wrk's
output, measure the memory of idle keep-alive connections, print the table
with the ratios haloyd/nginx and haloyd/HAProxy."""
import json
import os
import re
import socket
import statistics
import sys
import time


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=0.5).close()
            return 0
        except OSError:
            time.sleep(0.05)
    print(f"port {port} never opened", file=sys.stderr)
    return 1


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000}[m.group(2)]


def parse_wrk(name, workers):
    text = sys.stdin.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    print(json.dumps({"kind": "wrk", "proxy": name, "workers": int(workers), "rps": rps,
                      "p50": p50, "p99": p99, "non2xx": int(errors.group(1)) if errors else 0}))
    return 0


def tree_pids(pid):
    """pid and every descendant, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def idle_rss(name, workers, port, pid, count):
    count = int(count)
    req = b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n"
    before = rss_kib(pid)
    socks = []
    # In batches, so the backend never sees thousands of upstream connections
    # at once: what is measured is idle client connections, not a connect storm.
    for first in range(0, count, 500):
        batch = []
        for _ in range(min(500, count - first)):
            s = socket.create_connection(("127.0.0.1", int(port)))
            s.sendall(req)
            batch.append(s)
        for s in batch:  # one full answer each: idle keep-alive from now on
            s.settimeout(30)
            data = b""
            while b"backend" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    raise SystemExit(f"{name}: connection closed before its answer")
                data += chunk
        socks += batch
    time.sleep(1.0)
    after = rss_kib(pid)
    for s in socks:
        s.close()
    per = (after - before) * 1024 / count
    print(json.dumps({"kind": "idle", "proxy": name, "workers": int(workers), "conns": count,
                      "rss_before_kib": before, "rss_after_kib": after, "bytes_per_conn": per}))
    return 0


def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print(f"{'workers':>7} {'proxy':>8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non2xx':>7}")
    summary = {}
    for w in sorted({r["workers"] for r in rows}):
        for p in ("haloyd", "nginx", "haproxy"):
            rs = [r for r in rows if r["kind"] == "wrk" and r["workers"] == w and r["proxy"] == p]
            if not rs:
                continue
            s = {k: statistics.median([r[k] for r in rs]) for k in ("rps", "p50", "p99")}
            s["non2xx"] = sum(r["non2xx"] for r in rs)
            summary[(w, p)] = s
            print(f"{w:>7} {p:>8} {s['rps']:>10.0f} {s['p50']:>8.3f} {s['p99']:>8.3f} {s['non2xx']:>7}")
    print()
    for w in sorted({r["workers"] for r in rows}):
        h = summary.get((w, "haloyd"))
        for p in ("nginx", "haproxy"):
            o = summary.get((w, p))
            if h and o:
                print(f"workers={w} haloyd/{p}: req/s {h['rps'] / o['rps']:.2f}, "
                      f"p99 {h['p99'] / o['p99']:.2f} (lower is better)")
    print()
    for r in rows:
        if r["kind"] == "idle":
            print(f"workers={r['workers']} {r['proxy']:>8}: {r['conns']} idle keep-alive connections, "
                  f"RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB, "
                  f"{r['bytes_per_conn']:.0f} bytes per connection")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"wait-port": wait_port, "parse-wrk": parse_wrk, "idle-rss": idle_rss, "report": report}[cmd]
    sys.exit(fn(*args))
