#!/usr/bin/python3
"""Helpers for the benchmarks in tests/bench: wait for a port, run wrk or
h2load and count the CPU the proxy spent per request, measure the memory of
idle keep-alive connections (HTTP/1.1 or HTTP/2 over TLS) and of in-flight
requests, print the tables with the ratios haloyd/haloyd-base, haloyd/nginx
and haloyd/HAProxy."""
import asyncio
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time


def wait_port(port, timeout=15.0):
    deadline = time.monotonic() + float(timeout)
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


def parse_wrk_text(text):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = to_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": rps, "p50": p50, "p99": p99, "requests": requests,
            "non2xx": int(errors.group(1)) if errors else 0,
            "sockerr": sum(int(x) for x in sock.groups()) if sock else 0}


def parse_wrk(name, workers):
    r = parse_wrk_text(sys.stdin.read())
    print(json.dumps({"kind": "wrk", "proxy": name, "workers": int(workers), **r}))
    return 0


def run_wrk(name, workers, pid, *cmd):
    """Run wrk (cmd, after a "--") and count the CPU time the proxy tree of pid
    spent meanwhile: utime+stime of the master, its workers and every other
    descendant, divided by the requests wrk completed."""
    cmd = list(cmd[1:] if cmd and cmd[0] == "--" else cmd)
    before = cpu_ticks(pid)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    after = cpu_ticks(pid)
    r = parse_wrk_text(out)
    ticks = after - before
    us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / r["requests"] if r["requests"] else float("nan")
    print(json.dumps({"kind": "wrk", "proxy": name, "workers": int(workers), **r,
                      "cpu_ticks": ticks, "cpu_us_per_req": us}))
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


def schedstat(pids):
    """(ns on a CPU, ns runnable in a run queue, processes) summed over the main thread
    of each of pids (the one that serves in a proxy's worker), from /proc/PID/schedstat."""
    ran = queued = n = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/schedstat") as f:
                v = f.read().split()
            ran, queued, n = ran + int(v[0]), queued + int(v[1]), n + 1
        except (OSError, IndexError, ValueError):
            pass
    return ran, queued, n


def cpu_ticks(pid):
    """utime+stime, in clock ticks, of pid and its descendants (each one's
    /proc/PID/stat counts all its threads)."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def children_cpu():
    """User and system CPU us of this process's children that have been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1e6


def cpu_busy(since=None):
    """Per CPU ("cpu0"...), (total, idle) jiffies from /proc/stat; with since (an earlier
    reading), each CPU's busy share in per cent over the time between."""
    now = {}
    with open("/proc/stat") as f:
        for line in f:
            v = line.split()
            if v[0].startswith("cpu") and v[0][3:].isdigit():
                n = [int(x) for x in v[1:]]
                now[v[0]] = (sum(n), n[3] + n[4])  # idle and iowait
    if since is None:
        return now
    return {c: 100.0 * (1 - (now[c][1] - since[c][1]) / max(1, now[c][0] - since[c][0]))
            for c in now if c in since}


def affinity(pid):
    """The CPUs every thread of pid and its descendants may run on, one line
    per distinct set: the check that --pin reached the whole tree."""
    sets = {}
    for p in tree_pids(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                cpus = os.sched_getaffinity(int(t))
            except OSError:
                continue
            sets.setdefault(",".join(map(str, sorted(cpus))), []).append(int(t))
    print(" ".join(sorted(sets)))
    return 0


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


SLOW_BODY = b"from the slow backend\n"


def slow_answer(close):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: %s\r\n\r\n%s" % (len(SLOW_BODY), b"close" if close else b"keep-alive",
                                              SLOW_BODY))


class SlowBackend:
    """The backend of the in-flight test: answers at once until hold(), then
    keeps every request it reads unanswered (and counts them) until release()."""

    def __init__(self):
        self.holding = False
        self.held = []
        self.more = asyncio.Event()

    async def serve(self, reader, writer):
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # a GET: no body
                if not self.holding:
                    writer.write(slow_answer(False))
                    await writer.drain()
                    continue
                go = asyncio.get_running_loop().create_future()
                self.held.append(go)
                self.more.set()
                await go
                writer.write(slow_answer(True))
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def release(self):
        for go in self.held:
            if not go.done():
                go.set_result(None)


async def slow_get(port, timeout=10.0):
    """One GET for slow.local through the proxy; returns the open streams."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    w.write(b"GET /slow HTTP/1.1\r\nHost: slow.local\r\n\r\n")
    await w.drain()
    return r, w


async def read_answer(r, timeout=30.0):
    data = await asyncio.wait_for(r.readuntil(SLOW_BODY), timeout)
    return data.startswith(b"HTTP/1.1 200")


async def inflight(name, workers, port, pid, count, slow_port):
    be = SlowBackend()
    server = await asyncio.start_server(be.serve, "127.0.0.1", slow_port, backlog=4096)
    conns = []
    try:
        for _ in range(4):  # the route's first requests, whatever they set up once
            r, w = await slow_get(port)
            if not await read_answer(r):
                raise SystemExit(f"{name}: the slow route does not answer 200")
            w.close()
        await asyncio.sleep(0.5)
        before = rss_kib(pid)
        be.holding = True
        # In batches, like the idle test: no connect storm.
        for first in range(0, count, 250):
            conns += await asyncio.gather(*(slow_get(port) for _ in range(min(250, count - first))))
        deadline = time.monotonic() + 30
        while len(be.held) < count and time.monotonic() < deadline:
            be.more.clear()
            try:
                await asyncio.wait_for(be.more.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        held = len(be.held)
        await asyncio.sleep(1.0)  # the proxy holds them all: let its RSS settle
        after = rss_kib(pid)
        be.release()
        answers = await asyncio.gather(*(read_answer(r) for r, _ in conns), return_exceptions=True)
        ok = sum(1 for a in answers if a is True)
    finally:
        be.release()
        for _, w in conns:
            w.close()
        server.close()
    if held < count or ok < count:
        print(f"{name}: {held} of {count} requests reached the slow backend, {ok} answered",
              file=sys.stderr)
    return {"kind": "inflight", "proxy": name, "workers": int(workers), "requests": count,
            "held": held, "answered": ok, "rss_before_kib": before, "rss_after_kib": after,
            "bytes_per_req": (after - before) * 1024 / count}


def inflight_rss(name, workers, port, pid, count, slow_port):
    """Memory per in-flight small request: count clients each send one GET
    for slow.local, which the proxy forwards to the slow backend on slow_port
    (served here); once the backend holds them all, the RSS of the proxy tree
    against its RSS before, then every request answered and closed."""
    r = asyncio.run(inflight(name, workers, int(port), pid, int(count), int(slow_port)))
    print(json.dumps(r))
    return 0


PROXIES = ("haloyd", "haloyd-base", "nginx", "haproxy")


def fmt(v, spec):
    return format(v, spec) if v is not None and v == v else "-"


def report(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    summary = {}
    for r in rows:
        if r["kind"] in ("idle", "inflight"):
            summary.setdefault((r["workers"], r["proxy"]), {})[r["kind"]] = r
    for w in sorted({r["workers"] for r in rows}):
        for p in PROXIES:
            rs = [r for r in rows if r["kind"] == "wrk" and r["workers"] == w and r["proxy"] == p]
            if not rs:
                continue
            s = summary.setdefault((w, p), {})
            for k in ("rps", "p50", "p99", "cpu_us_per_req"):
                vals = [r[k] for r in rs if r.get(k) is not None]
                s[k] = statistics.median(vals) if vals else None
            s["spread"] = (max(r["rps"] for r in rs) - min(r["rps"] for r in rs)) * 100 / s["rps"]
            s["errors"] = sum(r["non2xx"] + r.get("sockerr", 0) for r in rs)
            s["runs"] = len(rs)
    for s in summary.values():
        if "idle" in s:
            s["idle_b"] = s["idle"]["bytes_per_conn"]
        if "inflight" in s:
            s["inflight_b"] = s["inflight"]["bytes_per_req"]
    print(f"{'workers':>7} {'proxy':<11} {'req/s':>9} {'±%':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us/req':>10} {'errors':>6} {'idle B/conn':>11} {'inflight B/req':>14}")
    for (w, p) in sorted(summary, key=lambda k: (k[0], PROXIES.index(k[1]))):
        s = summary[(w, p)]
        print(f"{w:>7} {p:<11} {fmt(s.get('rps'), '9.0f')} {fmt(s.get('spread'), '5.1f')} "
              f"{fmt(s.get('p50'), '7.3f')} {fmt(s.get('p99'), '7.3f')} "
              f"{fmt(s.get('cpu_us_per_req'), '10.1f')} {fmt(s.get('errors'), '6d')} "
              f"{fmt(s.get('idle_b'), '11.0f')} {fmt(s.get('inflight_b'), '14.0f')}")
    print("±%: spread of req/s over the rounds (max-min)/median; errors: non-2xx answers and socket errors")
    print()
    print("haloyd / other: req/s higher is better; p99, CPU per request and bytes lower is better")
    print(f"{'workers':>7} {'other':<11} {'req/s':>6} {'p99':>6} {'CPU/req':>7} "
          f"{'idle B/conn':>11} {'inflight B/req':>14}")

    def ratio(h, o, k):
        a, b = h.get(k), o.get(k)
        return a / b if a is not None and b and a == a and b == b else None
    for w in sorted({k[0] for k in summary}):
        h = summary.get((w, "haloyd"))
        for p in PROXIES[1:]:
            o = summary.get((w, p))
            if h and o:
                print(f"{w:>7} {p:<11} {fmt(ratio(h, o, 'rps'), '6.2f')} "
                      f"{fmt(ratio(h, o, 'p99'), '6.2f')} {fmt(ratio(h, o, 'cpu_us_per_req'), '7.2f')} "
                      f"{fmt(ratio(h, o, 'idle_b'), '11.2f')} {fmt(ratio(h, o, 'inflight_b'), '14.2f')}")
    print()
    for r in rows:
        if r["kind"] == "idle":
            print(f"workers={r['workers']} {r['proxy']:>11}: {r['conns']} idle keep-alive connections, "
                  f"RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB, "
                  f"{r['bytes_per_conn']:.0f} bytes per connection")
        elif r["kind"] == "inflight":
            short = "" if r["held"] == r["requests"] == r["answered"] else \
                f" (only {r['held']} reached the backend, {r['answered']} answered)"
            print(f"workers={r['workers']} {r['proxy']:>11}: {r['requests']} in-flight requests, "
                  f"RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB, "
                  f"{r['bytes_per_req']:.0f} bytes per request{short}")
    return 0


# --- HTTP/2 over TLS (h2-bench)

def parse_h2load_text(text):
    """The numbers h2load prints: req/s, requests done, failures, status
    classes, and what TLS and ALPN negotiated."""
    def num(pattern, default=None):
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else default
    req = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    if not req or not codes:
        raise SystemExit("h2load printed no request counts:\n" + text)
    done, failed = int(req.group(3)), int(req.group(5))
    return {"rps": float(num(r"^finished in \S+, ([\d.]+) req/s", "nan")),
            "requests": done, "failed": failed, "non2xx": sum(int(x) for x in codes.groups()[1:]),
            "2xx": int(codes.group(1)), "tls": num(r"^TLS Protocol: (\S+)", "-"),
            "cipher": num(r"^Cipher: (\S+)", "-"), "alpn": num(r"^Application protocol: (\S+)", "-")}


def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, -(-len(sorted_vals) * q // 100) - 1))
    return sorted_vals[int(k)]


def h2load_latency(path):
    """p50 and p99 in ms from h2load's --log-file: one line per request, tab
    separated: start (us since the epoch), status (-1: failed), us until the
    end of the response. Failed requests are left out."""
    times = []
    with open(path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) >= 3 and cols[1] != "-1":
                times.append(int(cols[2]))
    times.sort()
    return len(times), percentile(times, 50) / 1000, percentile(times, 99) / 1000


def socket_inodes(pid):
    """The socket inodes open in pid and its descendants."""
    inodes = set()
    for p in tree_pids(pid):
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{p}/fd/{fd}"))
                if m:
                    inodes.add(m.group(1))
        except OSError:
            pass
    return inodes


def established_from(pid, port):
    """TCP connections that the process tree of pid holds established to
    127.0.0.1:port (/proc/net/tcp: remote port, state 01, the socket's inode
    among the tree's descriptors). Counting every connection to the port, as
    this did first, also counted the idle pools of the other proxies of the
    same run (41 to 125 where haloyd held 4)."""
    mine, n = socket_inodes(pid), 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if cols[3] == "01" and cols[2] == f"0100007F:{int(port):04X}" and cols[9] in mine:
                n += 1
    return n


class ConnSampler:
    """The most connections the process tree of pid held to a port while a run lasts."""
    def __init__(self, pid, port):
        import threading
        self.pid, self.port, self.peak, self.done = pid, port, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        if port:
            self.t.start()

    def run(self):
        while not self.done.wait(0.2):
            self.peak = max(self.peak, established_from(self.pid, self.port))

    def stop(self):
        self.done.set()
        if self.port:
            self.t.join()
        return self.peak


def run_h2load(name, scenario, pid, log, *cmd):
    """Run h2load (cmd, after a "--"; --log-file=log is added) and count the
    CPU time the proxy tree of pid spent meanwhile (utime+stime of every
    process and thread, as run-wrk does), divided by the requests h2load
    completed. Latency percentiles come from the per-request log. With
    BACKEND_PORT in the environment, also the most connections the proxy held
    to the backend meanwhile."""
    cmd = list(cmd[1:] if cmd and cmd[0] == "--" else cmd) + [f"--log-file={log}"]
    sampler = ConnSampler(int(pid), int(os.environ.get("BACKEND_PORT", "0")))
    before = cpu_ticks(pid)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    after = cpu_ticks(pid)
    backend_conns = sampler.stop()
    if p.returncode != 0:
        raise SystemExit(f"{name}: h2load exited with {p.returncode}:\n{p.stdout}")
    r = parse_h2load_text(p.stdout)
    if r["alpn"] != "h2":
        raise SystemExit(f"{name}: h2load negotiated {r['alpn']}, not h2:\n{p.stdout}")
    logged, r["p50"], r["p99"] = h2load_latency(log)
    os.unlink(log)
    ticks = after - before
    us = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / r["requests"] if r["requests"] else float("nan")
    print(json.dumps({"kind": "h2load", "proxy": name, "scenario": scenario, **r,
                      "logged": logged, "cpu_ticks": ticks, "cpu_us_per_req": us,
                      "backend_conns": backend_conns}))
    return 0


def h2_get(port, ctx, authority="bench.local", timeout=30.0):
    """A TLS connection with ALPN h2 to port: the client preface and SETTINGS,
    one GET for / answered in full (every frame the server sent by then
    acknowledged as HTTP/2 requires), and the socket left open."""
    import h2.config
    import h2.connection
    import h2.events
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    s = ctx.wrap_socket(raw, server_hostname=authority)
    if s.selected_alpn_protocol() != "h2":
        raise SystemExit(f"port {port}: ALPN chose {s.selected_alpn_protocol()}, not h2")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", authority),
                          (":path", "/")], end_stream=True)
    s.sendall(conn.data_to_send())
    status, body, ended = None, b"", False
    while not ended:
        data = s.recv(65536)
        if not data:
            raise SystemExit(f"port {port}: connection closed before the answer")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers).get(b":status")
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise SystemExit(f"port {port}: {ev}")
        out = conn.data_to_send()
        if out:
            s.sendall(out)
    if status != b"200" or b"backend" not in body:
        raise SystemExit(f"port {port}: answer {status} {body[:80]!r}, not the backend's 200")
    return s


def idle_h2_rss(name, port, pid, count, warm=8):
    """Memory per idle HTTP/2 connection over TLS: after warm connections
    that each get one answer and close (whatever the first ones set up once),
    count connections, one after the other, each with one GET answered in
    full and then idle; the RSS of the proxy tree before and after."""
    import ssl
    count, warm = int(count), int(warm)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    for _ in range(warm):
        h2_get(port, ctx).close()
    time.sleep(0.5)
    before = rss_kib(pid)
    socks = [h2_get(port, ctx) for _ in range(count)]
    time.sleep(2.5)  # idle is idle for more than a second: haloyd trims after one
    after = rss_kib(pid)
    alive = 0
    for s in socks:  # still open: nothing to read, no EOF
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""
        except ssl.SSLWantReadError:
            alive += 1
        except OSError:
            pass
        s.close()
    print(json.dumps({"kind": "h2idle", "proxy": name, "conns": count, "alive": alive,
                      "rss_before_kib": before, "rss_after_kib": after,
                      "bytes_per_conn": (after - before) * 1024 / count}))
    return 0


H2_PROXIES = ("haloyd", "nginx", "haproxy")
IDLE_TARGET = 16 * 1024


def h2_report(path):
    """The tables of h2-bench: per scenario (CxM: connections x streams) the
    median over the rounds of each proxy, the ratios haloyd/nginx and
    haloyd/HAProxy, the idle connections, and the issue's targets."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows if r["kind"] == "h2load"))
    summary = {}
    for sc in scenarios:
        for p in H2_PROXIES:
            rs = [r for r in rows if r["kind"] == "h2load" and r["scenario"] == sc and r["proxy"] == p]
            if not rs:
                continue
            s = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "cpu_us_per_req")}
            s["spread"] = (max(r["rps"] for r in rs) - min(r["rps"] for r in rs)) * 100 / s["rps"]
            s["errors"] = sum(r["failed"] + r["non2xx"] for r in rs)
            s["tls"] = ",".join(sorted({f"{r['tls']} {r['cipher']} {r['alpn']}" for r in rs}))
            summary[(sc, p)] = s
    idle = {r["proxy"]: r for r in rows if r["kind"] == "h2idle"}
    print(f"{'conns x streams':<15} {'proxy':<8} {'req/s':>9} {'±%':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us/req':>10} {'errors':>6}  negotiated")
    for (sc, p), s in summary.items():
        print(f"{sc:<15} {p:<8} {fmt(s['rps'], '9.0f')} {fmt(s['spread'], '5.1f')} "
              f"{fmt(s['p50'], '7.3f')} {fmt(s['p99'], '7.3f')} {fmt(s['cpu_us_per_req'], '10.1f')} "
              f"{s['errors']:>6}  {s['tls']}")
    print("±%: spread of req/s over the rounds (max-min)/median; p50, p99: of h2load's per-request "
          "log (--log-file); errors: failed streams and non-2xx answers")
    print()
    print(f"{'proxy':<8} {'idle h2 conns':>13} {'RSS before KiB':>14} {'after KiB':>9} {'B/conn':>7}")
    for p in H2_PROXIES:
        if p in idle:
            r = idle[p]
            print(f"{p:<8} {r['conns']:>13} {r['rss_before_kib']:>14} {r['rss_after_kib']:>9} "
                  f"{r['bytes_per_conn']:>7.0f}" + ("" if r["alive"] == r["conns"] else
                                                   f"  (only {r['alive']} still open at the end)"))
    print()
    print("haloyd / other: req/s higher is better; p99, CPU per request and bytes lower is better")
    print(f"{'conns x streams':<15} {'other':<8} {'req/s':>6} {'p99':>6} {'CPU/req':>7}")

    def ratio(a, b):
        return a / b if a is not None and b and a == a and b == b else None
    for sc in scenarios:
        h = summary.get((sc, "haloyd"))
        for p in H2_PROXIES[1:]:
            o = summary.get((sc, p))
            if h and o:
                print(f"{sc:<15} {p:<8} {fmt(ratio(h['rps'], o['rps']), '6.2f')} "
                      f"{fmt(ratio(h['p99'], o['p99']), '6.2f')} "
                      f"{fmt(ratio(h['cpu_us_per_req'], o['cpu_us_per_req']), '7.2f')}")
    for p in H2_PROXIES[1:]:
        if "haloyd" in idle and p in idle:
            print(f"{'idle h2 conn':<15} {p:<8} bytes per connection "
                  f"{fmt(ratio(idle['haloyd']['bytes_per_conn'], idle[p]['bytes_per_conn']), '.2f')}")
    print()
    print("targets:")
    unmet = 0

    def target(what, ok):
        nonlocal unmet
        unmet += not ok
        print(f"  {'MET    ' if ok else 'NOT MET'} {what}")
    for sc in scenarios:
        h = summary.get((sc, "haloyd"))
        others = [(summary[(sc, p)], p) for p in H2_PROXIES[1:] if (sc, p) in summary]
        if not h or not others:
            continue
        best, bp = max(others, key=lambda o: o[0]["rps"])
        target(f"{sc}: req/s {h['rps']:.0f} >= 1.1 x {bp} {best['rps']:.0f} = {1.1 * best['rps']:.0f} "
               f"(ratio {h['rps'] / best['rps']:.2f})", h["rps"] >= 1.1 * best["rps"] and not h["errors"])
        low, lp = min(others, key=lambda o: o[0]["cpu_us_per_req"])
        target(f"{sc}: CPU {h['cpu_us_per_req']:.1f} us/req <= {lp} {low['cpu_us_per_req']:.1f} "
               f"(ratio {h['cpu_us_per_req'] / low['cpu_us_per_req']:.2f})",
               h["cpu_us_per_req"] <= low["cpu_us_per_req"])
    if "haloyd" in idle:
        b = idle["haloyd"]["bytes_per_conn"]
        target(f"idle HTTP/2 connection: {b:.0f} bytes < {IDLE_TARGET} (16 KiB)", b < IDLE_TARGET)
    return 0


# --- HTTP/2 and gRPC to backends (h2backend-bench)

GRPC_METHOD = "/bench.Bench/Echo"


def grpc_server(port):
    """An h2c gRPC backend on port: one unary method that echoes its bytes.
    Runs until killed."""
    import concurrent.futures
    import grpc
    handler = grpc.method_handlers_generic_handler("bench.Bench", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{int(port)}")
    server.start()
    server.wait_for_termination()
    return 0


def grpc_loop(name, port, pid, seconds, cert, authority="grpc.local"):
    """Unary gRPC calls of 100 bytes, one after the other, over TLS through
    the proxy on port for seconds: calls/s, p50, p99 and the proxy tree's CPU
    per call."""
    import grpc
    with open(cert, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    ch = grpc.secure_channel(f"127.0.0.1:{int(port)}", creds,
                             options=[("grpc.ssl_target_name_override", authority),
                                      ("grpc.default_authority", authority)])
    call = ch.unary_unary(GRPC_METHOD)
    payload = b"x" * 100
    for _ in range(50):  # connection, TLS, the proxy's backend session
        call(payload, timeout=10)
    times, failed = [], 0
    before = cpu_ticks(pid)
    start = time.monotonic()
    end = start + float(seconds)
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if call(payload, timeout=10) != payload:
                failed += 1
        except grpc.RpcError:
            failed += 1
        times.append((time.monotonic() - t0) * 1000)
    elapsed = time.monotonic() - start
    ticks = cpu_ticks(pid) - before
    ch.close()
    times.sort()
    print(json.dumps({"kind": "grpc", "proxy": name, "calls": len(times), "failed": failed,
                      "cps": len(times) / elapsed, "p50": percentile(times, 50),
                      "p99": percentile(times, 99),
                      "cpu_us_per_req": ticks * 1e6 / os.sysconf("SC_CLK_TCK") / max(1, len(times))}))
    return 0


def h2be_report(path):
    """The tables of h2backend-bench and the issue's target: haloyd's
    requests/s at least HAProxy's."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print(f"{'load':<22} {'proxy':<8} {'req/s':>9} {'±%':>5} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us/req':>10} {'backend conns':>13} {'errors':>6}")
    summary = {}
    for p in H2_PROXIES:
        rs = [r for r in rows if r["kind"] == "h2load" and r["proxy"] == p]
        if rs:
            s = {k: statistics.median(r[k] for r in rs)
                 for k in ("rps", "p50", "p99", "cpu_us_per_req", "backend_conns")}
            s["spread"] = (max(r["rps"] for r in rs) - min(r["rps"] for r in rs)) * 100 / s["rps"]
            s["errors"] = sum(r["failed"] + r["non2xx"] for r in rs)
            summary[p] = s
            print(f"{'h2load ' + rs[0]['scenario']:<22} {p:<8} {fmt(s['rps'], '9.0f')} "
                  f"{fmt(s['spread'], '5.1f')} {fmt(s['p50'], '7.3f')} {fmt(s['p99'], '7.3f')} "
                  f"{fmt(s['cpu_us_per_req'], '10.1f')} {s['backend_conns']:>13.0f} {s['errors']:>6}")
    for p in H2_PROXIES:
        rs = [r for r in rows if r["kind"] == "grpc" and r["proxy"] == p]
        if rs:
            g = {k: statistics.median(r[k] for r in rs) for k in ("cps", "p50", "p99", "cpu_us_per_req")}
            print(f"{'grpc unary, 1 client':<22} {p:<8} {fmt(g['cps'], '9.0f')} {'':>5} "
                  f"{fmt(g['p50'], '7.3f')} {fmt(g['p99'], '7.3f')} {fmt(g['cpu_us_per_req'], '10.1f')} "
                  f"{'':>13} {sum(r['failed'] for r in rs):>6}")
    if "haloyd" in summary and "haproxy" in summary:
        h, hp = summary["haloyd"], summary["haproxy"]
        ok = h["rps"] >= hp["rps"] and not h["errors"]
        print(f"\ntarget:\n  {'MET    ' if ok else 'NOT MET'} h2load: req/s {h['rps']:.0f} >= haproxy "
              f"{hp['rps']:.0f} (ratio {h['rps'] / hp['rps']:.2f})")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"wait-port": wait_port, "parse-wrk": parse_wrk, "run-wrk": run_wrk, "cpu-ticks":
          lambda pid: print(cpu_ticks(pid)) or 0, "affinity": affinity, "idle-rss": idle_rss,
          "inflight-rss": inflight_rss, "report": report, "run-h2load": run_h2load,
          "idle-h2-rss": idle_h2_rss, "h2-report": h2_report, "grpc-server": grpc_server,
          "grpc-loop": grpc_loop, "h2be-report": h2be_report}[cmd]
    sys.exit(fn(*args))
