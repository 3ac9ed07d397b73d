#!/usr/bin/python3
"""The driver of tests/bench/perf-bench (haloyd issue 16): every figure of
the issue for haloyd, nginx and HAProxy in one run, one table with ratios.

Each proxy runs one worker (nginx worker_processes 1, HAProxy nbthread 1)
behind the same nginx backend with the same ECDSA certificate, on ports of
its own (186xx, or from --port-base). Figures:

  throughput   req/s and proxy CPU us per request (utime+stime of the whole
               process tree, from /proc) for HTTP and HTTPS keep-alive (wrk),
               a new TLS 1.3 connection per request, resumed and full
               (tlsclient -r -s / -r), HTTP/2 64x1 and 4x100 (h2load);
               interleaved rounds (A B C A B C), medians; pinned (proxy alone
               on CPU 1, load and backend on CPU 0) and unpinned. With each,
               where the serving process's wall time went (/proc schedstat of
               its main thread): "run queue" is runnable but waiting for a CPU
               (other programs on the machine had it), "asleep" is blocked
               waiting for the client or the backend; the rest ran. A proxy
               that loses req/s while asleep waits for its peers; one that
               loses them in the run queue was given less of the CPU.
               And the other side of each run: the load generator's and the
               backend's CPU us per request, and (pinned) how busy CPU 0
               was: at 100 % the load core set the pace, and a proxy asleep
               part of the time could have served more than was asked.
  syscalls     per keep-alive request: strace -c -f on the proxy's worker
               (every thread) over a fixed h2load count (16 connections).
  instructions per request: callgrind's Ir of the worker over N2 requests
               minus over N1 (start-up and stop cancel out); haloyd through
               HALOYD_WORKER_WRAPPER, nginx with master_process off, HAProxy
               in the foreground. The same per new TLS 1.3 connection (one
               request each, resumed and full: tlsclient -k N -c 4).
  memory       bytes per idle keep-alive HTTP connection (benchlib idle-rss),
               and the idle/cert benches of tests/bench when present.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

BE, HA, HAS, NG, NGS, HP, HPS = 18680, 18681, 18682, 18691, 18692, 18695, 18696
PROXIES = ("haloyd", "nginx", "haproxy")
PORTS = {"haloyd": (HA, HAS), "nginx": (NG, NGS), "haproxy": (HP, HPS)}


def log(*a):
    print("perf-bench:", *a, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, opts):
        self.o = opts
        self.tmp = tempfile.mkdtemp(prefix="haloyd-perf-bench.")
        os.chmod(self.tmp, 0o777)  # callgrind writes here as the workers' user
        self.procs = {}
        self.backend = None
        self.rows = []  # {"figure", "proxy", "value", "unit"}

    # --- set-up

    def sh(self, *cmd, **kw):
        return subprocess.run(list(cmd), check=True, **kw)

    def prepare(self):
        t = self.tmp
        self.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{t}/key.pem", "-out", f"{t}/cert.pem", "-days", "30",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                stderr=subprocess.DEVNULL)
        with open(f"{t}/combined.pem", "w") as f:
            f.write(open(f"{t}/cert.pem").read() + open(f"{t}/key.pem").read())
        for p in ("cert.pem", "key.pem", "combined.pem"):
            os.chmod(f"{t}/{p}", 0o644)
        self.sh("cc", "-O2", "-o", f"{t}/tlsclient", f"{HERE}/tlsbenchclient.c", "-lssl", "-lcrypto")
        os.makedirs(f"{t}/be/logs")
        with open(f"{t}/be/nginx.conf", "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {t}/be/nginx.pid; error_log /dev/null;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{BE}; location / {{ return 200 "hello from the backend\\n"; }} }} }}
""")
        os.makedirs(f"{t}/ng/logs")
        with open(f"{t}/ng/nginx.conf", "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {t}/ng/nginx.pid; error_log /dev/null;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 300s;
  proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
  proxy_set_header X-Forwarded-For $remote_addr;
  upstream be {{ server 127.0.0.1:{BE}; keepalive 128; }}
  server {{ listen 127.0.0.1:{NG}; listen 127.0.0.1:{NGS} ssl http2;
    ssl_certificate {t}/cert.pem; ssl_certificate_key {t}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; location / {{ proxy_pass http://be; }} }} }}
""")
        # HAProxy refuses to start when maxconn needs more descriptors than the limit allows.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        maxconn = min(20000, (want - 200) // 2)
        with open(f"{t}/hp.cfg", "w") as f:
            f.write(f"""global
  nbthread 1
  maxconn {maxconn}
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  option forwardfor
frontend fe
  bind 127.0.0.1:{HP}
  bind 127.0.0.1:{HPS} ssl crt {t}/combined.pem alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:{BE}
""")

    def pin(self, where):
        if not self.pinned:
            return []
        return ["taskset", "-c", "1" if where == "proxy" else "0"]

    def start_backend(self):
        self.backend = subprocess.Popen(self.pin("load") + ["nginx", "-p", f"{self.tmp}/be", "-c",
                                        f"{self.tmp}/be/nginx.conf"])
        benchlib.wait_port(BE)

    def start(self, name, wrap=None):
        """Starts one proxy; wrap: a callgrind output file (instructions runs)."""
        t, b = self.tmp, self.o.builddir
        env = dict(os.environ)
        if name == "haloyd":
            shutil.rmtree(f"{t}/h", ignore_errors=True)
            os.makedirs(f"{t}/h/state")
            os.makedirs(f"{t}/h/run")
            if wrap:
                env["HALOYD_WORKER_WRAPPER"] = (
                    "setpriv --reuid=nobody --regid=nogroup --clear-groups valgrind -q "
                    f"--tool=callgrind --callgrind-out-file={wrap}")
            cmd = [f"{b}/haloyd", "--listen-http", f"127.0.0.1:{HA}", "--listen-https",
                   f"127.0.0.1:{HAS}", "--workers", "1", "--state-dir", f"{t}/h/state",
                   "--runtime-dir", f"{t}/h/run", "--user", "nobody", "--log-target", "stderr",
                   "--access-log", "off", "--keepalive-timeout", "300s", "--stop-timeout", "5s"]
            p = subprocess.Popen(self.pin("proxy") + cmd, env=env,
                                 stderr=open(f"{t}/haloyd.log", "ab"))
            self.procs[name] = p  # stopped by stop_all() whatever fails below
            ctl = [f"{b}/haloyd-ctl", "-s", f"{t}/h/run/control.sock"]
            # The socket's file appears before it listens: ask until it answers.
            deadline = time.monotonic() + 60
            while subprocess.run(ctl + ["status"], capture_output=True).returncode != 0:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise SystemExit("perf-bench: haloyd's control socket never answered")
                time.sleep(0.1)
            for args in (["route", "add", "bench.local", f"127.0.0.1:{BE}"],
                         ["route", "add", "localhost", f"127.0.0.1:{BE}"],
                         ["cert", "import", "localhost", "--cert", f"{t}/cert.pem",
                          "--key", f"{t}/key.pem"]):
                self.sh(*ctl, *args, stdout=subprocess.DEVNULL, timeout=180)
        elif name == "nginx":
            cmd = ["nginx", "-p", f"{t}/ng", "-c", f"{t}/ng/nginx.conf"]
            if wrap:
                cmd = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={wrap}"] + \
                    cmd + ["-g", "master_process off;"]
            p = subprocess.Popen(self.pin("proxy") + cmd)
        else:
            cmd = ["haproxy", "-f", f"{t}/hp.cfg", "-q"]
            if wrap:
                cmd = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={wrap}"] + cmd
            p = subprocess.Popen(self.pin("proxy") + cmd)
        self.procs[name] = p
        self.wait_serving(name)
        return p

    def wait_serving(self, name):
        """Until an HTTPS request for localhost is answered 200 (slow under valgrind)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                f"https://localhost:{PORTS[name][1]}/"], capture_output=True,
                               text=True)
            if r.stdout == "200":
                return
            time.sleep(0.3)
        raise SystemExit(f"perf-bench: {name} never served")

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        p.send_signal(signal.SIGTERM)  # each exits through exit(): callgrind writes its file
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop_all(self):
        for n in list(self.procs):
            self.stop(n)

    def worker_pids(self, name):
        """The processes that serve: haloyd's and nginx's workers, HAProxy itself."""
        root = self.procs[name].pid
        pids = benchlib.tree_pids(root)
        if name == "haproxy":
            return [root]
        out = []
        for p in pids:
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read()
            except OSError:
                continue
            if (name == "haloyd" and b"-R\0worker" in cmd) or \
               (name == "nginx" and cmd.startswith(b"nginx: worker")):
                out.append(p)
        return out

    def add(self, figure, proxy, value, unit):
        self.rows.append({"figure": figure, "proxy": proxy, "value": value, "unit": unit})

    # --- throughput

    def cpu_run(self, name, cmd):
        """The load's output, the proxy's CPU us and its (run queue, asleep) shares of the
        wall time: schedstat deltas of the serving processes' main threads, averaged; and
        the other side, (the load generator's and the backend's CPU us, CPU 0's busy share):
        pinned, when CPU 0 is busy all the time the proxy is asleep, the load set the pace."""
        pid = self.procs[name].pid
        serving = self.worker_pids(name)
        be0, u0, c0 = benchlib.cpu_ticks(self.backend.pid), benchlib.children_cpu(), \
            benchlib.cpu_busy()
        before, s0, t0 = benchlib.cpu_ticks(pid), benchlib.schedstat(serving), time.monotonic()
        out = subprocess.run(self.pin("load") + cmd, capture_output=True, text=True).stdout
        wall = (time.monotonic() - t0) * 1e9 * max(1, s0[2])
        s1 = benchlib.schedstat(serving)
        ticks = benchlib.cpu_ticks(pid) - before
        tck = 1e6 / os.sysconf("SC_CLK_TCK")
        load = ((benchlib.cpu_ticks(self.backend.pid) - be0) * tck +
                benchlib.children_cpu() - u0, benchlib.cpu_busy(c0).get("cpu0"))
        ran, queued = s1[0] - s0[0], s1[1] - s0[1]
        # No row when the serving process changed under the run (a worker restarted).
        shares = (queued / wall, max(0.0, wall - ran - queued) / wall) \
            if s0[2] and s0[2] == s1[2] else None
        return out, ticks * tck, shares, load

    def throughput_round(self, name, tag, results):
        d, (port, sport) = self.o.duration, PORTS[name]
        tls = f"{self.tmp}/tlsclient"
        runs = [
            ("HTTP keep-alive", ["wrk", "-t1", "-c64", f"-d{d}s", "--latency", "-H", "Host: bench.local",
                                 f"http://127.0.0.1:{port}/"], "wrk"),
            ("HTTPS keep-alive", ["wrk", "-t1", "-c64", f"-d{d}s", "--latency", f"https://localhost:{sport}/"],
             "wrk"),
            ("new TLS conn, resumed", [tls, "-p", str(sport), "-n", "localhost", "-c", "32",
                                       "-d", str(d), "-r", "-s"], "tls"),
            ("new TLS conn, full", [tls, "-p", str(sport), "-n", "localhost", "-c", "32",
                                    "-d", str(d), "-r"], "tls"),
            ("h2 64x1", ["h2load", "-c64", "-m1", "-D", str(d), f"https://localhost:{sport}/"],
             "h2"),
            ("h2 4x100", ["h2load", "-c4", "-m100", "-D", str(d), f"https://localhost:{sport}/"],
             "h2"),
        ]
        for fig, cmd, kind in runs:
            if self.o.figures and not any(f in fig for f in self.o.figures):
                continue
            out, cpu_us, shares, load = self.cpu_run(name, cmd)
            try:
                if kind == "wrk":
                    r = benchlib.parse_wrk_text(out)
                    n, rate, bad = r["requests"], r["rps"], r["non2xx"] + r["sockerr"]
                elif kind == "tls":
                    r = json.loads(out)
                    n, rate, bad = r["done"], r["rate"], r["failed"]
                    if "resumed" in fig and r["done"] and r["resumed"] < 0.9 * r["done"]:
                        log(f"{name}: only {r['resumed']} of {r['done']} connections resumed")
                else:
                    r = benchlib.parse_h2load_text(out)
                    n, rate, bad = r["requests"], r["rps"], r["failed"] + r["non2xx"]
                    if r["alpn"] != "h2":
                        log(f"{name}: h2load negotiated {r['alpn']}, not h2")
            except (ValueError, AttributeError, SystemExit, KeyError):
                log(f"{name} {fig}: no result from {cmd[0]}:\n{out[-400:]}")
                continue
            if bad:
                log(f"{name} {fig}: {bad} failed requests")
            results.setdefault((f"{fig} req/s ({tag})", name), []).append(rate)
            if kind == "wrk":  # issue 16 point 1 asks for p99 <= nginx's
                results.setdefault((f"{fig} p99 ms ({tag})", name), []).append(r["p99"])
            if n:
                results.setdefault((f"{fig} CPU us/req ({tag})", name), []).append(cpu_us / n)
                results.setdefault((f"{fig} load+backend CPU us/req ({tag})", name),
                                   []).append(load[0] / n)
            if self.pinned and load[1] is not None:
                results.setdefault((f"{fig} % load CPU busy (pinned)", name), []).append(load[1])
            if shares is not None:
                results.setdefault((f"{fig} % in run queue ({tag})", name), []).append(100 * shares[0])
                results.setdefault((f"{fig} % asleep ({tag})", name), []).append(100 * shares[1])

    def throughput(self):
        for tag in self.o.pin_modes:
            self.pinned = tag == "pinned"
            self.start_backend()
            results = {}
            for name in PROXIES:
                self.start(name)
            for r in range(self.o.rounds):
                for name in PROXIES:
                    log(f"throughput {tag}, round {r + 1}: {name}")
                    self.throughput_round(name, tag, results)
            self.stop_all()
            self.backend.terminate()
            self.backend.wait()
            for (fig, name), vals in results.items():
                self.add(fig, name, statistics.median(vals), "")
        self.pinned = False

    # --- system calls and instructions per request

    LOADS = (("HTTP", ["--h1", "-H", ":authority: bench.local"], 0),
             ("HTTPS", ["--h1"], 1), ("h2", [], 1))

    # New connections, one request each, 4 at a time (tlsclient -k counts them).
    TLS_LOADS = (("new TLS conn, resumed", ["-r", "-s"], 1), ("new TLS conn, full", ["-r"], 1))

    def tls_n(self, name, load, n):
        out = subprocess.run([f"{self.tmp}/tlsclient", "-p", str(PORTS[name][1]), "-n",
                              "localhost", "-c", "4", "-d", "600", "-k", str(n)] + load[1],
                             capture_output=True, text=True).stdout
        r = json.loads(out)
        if r["done"] < n or ("-s" in load[1] and r["resumed"] < n - 4):
            log(f"{name} {load[0]}: {r['done']} of {n} done, {r['resumed']} resumed")
        return r

    def h2load_n(self, name, load, n):
        if load in self.TLS_LOADS:
            return self.tls_n(name, load, n)
        args, which = load[1], load[2]
        scheme = "https://localhost" if which else "http://127.0.0.1"
        out = subprocess.run(["h2load"] + args + ["-n", str(n), "-c", "16",
                             f"{scheme}:{PORTS[name][which]}/"], capture_output=True,
                             text=True).stdout
        r = benchlib.parse_h2load_text(out)
        if r["2xx"] != n:
            log(f"{name} {load[0]}: {r['2xx']} of {n} answered 2xx")
        return r

    def syscalls(self):
        self.start_backend()
        for name in PROXIES:
            self.start(name)
            for load in self.LOADS:
                self.h2load_n(name, load, 2000)  # warm: upstream connections open
                tids = []
                for p in self.worker_pids(name):
                    tids += [int(t) for t in os.listdir(f"/proc/{p}/task")]
                out = f"{self.tmp}/strace.{name}.{load[0]}"
                st = subprocess.Popen(["strace", "-c", "-f", "-o", out] +
                                      sum((["-p", str(t)] for t in tids), []),
                                      stderr=subprocess.DEVNULL)
                time.sleep(1.0)
                n = self.o.syscall_requests
                self.h2load_n(name, load, n)
                st.send_signal(signal.SIGINT)
                st.wait()
                calls, top = 0, []
                for line in open(out):
                    f = line.split()
                    if len(f) >= 5 and f[-1] != "total" and f[3].isdigit():
                        calls += int(f[3])
                        top.append((int(f[3]), f[-1]))
                top.sort(reverse=True)
                self.add(f"syscalls/request {load[0]}", name, calls / n,
                         " ".join(f"{c / n:.2f} {s}" for c, s in top[:5]))
            self.stop(name)
        self.backend.terminate()
        self.backend.wait()

    def ir_run(self, name, load, n):
        out = f"{self.tmp}/cg.{name}.%p.out"
        for f in os.listdir(self.tmp):
            if f.startswith(f"cg.{name}."):
                os.unlink(os.path.join(self.tmp, f))
        self.start(name, wrap=out)
        done = n
        if n and load in self.TLS_LOADS:
            done = self.tls_n(name, load, n)["done"]  # may pass n by a batch's worth
        elif n:
            self.h2load_n(name, load, n)
        self.stop(name)
        total = 0
        for f in os.listdir(self.tmp):
            if f.startswith(f"cg.{name}."):
                for line in open(os.path.join(self.tmp, f)):
                    if line.startswith(("summary:", "totals:")):
                        total = max(total, int(line.split()[1]))
        return total, done

    def instructions(self):
        self.start_backend()
        n1, n2 = self.o.ir_requests
        loads = [ld for ld in self.LOADS + self.TLS_LOADS
                 if not self.o.figures or any(f in ld[0] for f in self.o.figures)]
        for name in PROXIES:
            for load in loads:
                log(f"instructions: {name} {load[0]}")
                a, d1 = self.ir_run(name, load, n1)
                b, d2 = self.ir_run(name, load, n2)
                unit = "connection" if load in self.TLS_LOADS else "request"
                self.add(f"instructions/{unit} {load[0]}", name, (b - a) / (d2 - d1), "")
        self.backend.terminate()
        self.backend.wait()

    # --- memory

    def memory(self):
        self.start_backend()
        for name in PROXIES:
            self.start(name)
            p = subprocess.run([sys.executable, f"{HERE}/benchlib.py", "idle-rss", name, "1",
                                str(PORTS[name][0]), str(self.procs[name].pid),
                                str(self.o.idle)], capture_output=True, text=True)
            try:
                self.add("bytes per idle HTTP keep-alive conn", name,
                         json.loads(p.stdout)["bytes_per_conn"], "")
            except ValueError:
                log(f"{name}: idle-rss failed: {p.stderr[-300:]}")
            self.stop(name)
        self.backend.terminate()
        self.backend.wait()
        for other in ("idle-bench", "cert-bench"):
            path = os.path.join(HERE, other)
            if os.access(path, os.X_OK):
                log(f"running {other}")
                subprocess.run([path, "--builddir", self.o.builddir])

    # --- the table

    def table(self):
        figs = []
        for r in self.rows:
            if r["figure"] not in figs:
                figs.append(r["figure"])
        val = {(r["figure"], r["proxy"]): r for r in self.rows}
        w = max(len(f) for f in figs) if figs else 10
        print(f"| {'figure':<{w}} | {'haloyd':>9} | {'nginx':>9} | {'HAProxy':>9} | "
              f"{'h/nginx':>7} | {'h/HAProxy':>9} |")
        print(f"|{'-' * (w + 2)}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 9}|{'-' * 11}|")
        for f in figs:
            v = [val.get((f, p), {}).get("value") for p in PROXIES]
            cell = [("%9.0f" % x if x is not None and x >= 100 else
                     "%9.2f" % x if x is not None else "%9s" % "-") for x in v]
            rat = [("%.2f" % (v[0] / x) if v[0] is not None and x else "-") for x in v[1:]]
            print(f"| {f:<{w}} | {cell[0]} | {cell[1]} | {cell[2]} | {rat[0]:>7} | {rat[1]:>9} |")
        notes = [(r["figure"], r["proxy"], r["unit"]) for r in self.rows if r["unit"]]
        if notes:
            print("\nTop system calls per request:")
            for f, p, u in notes:
                print(f"  {f} {p}: {u}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builddir", default=os.getcwd())
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pin", choices=("both", "on", "off"), default="both")
    ap.add_argument("--only", default="throughput,syscalls,instructions,memory")
    ap.add_argument("--figures", default="",
                    help="throughput and instruction figures whose name contains one of "
                         "these (comma-separated)")
    ap.add_argument("--port-base", type=int, default=BE,
                    help="the backend's port; the proxies' follow it (two runs at once)")
    ap.add_argument("--syscall-requests", type=int, default=20000)
    ap.add_argument("--ir-requests", default="1000,6000")
    ap.add_argument("--idle", type=int, default=2000)
    o = ap.parse_args()
    o.builddir = os.path.abspath(o.builddir)
    o.pin_modes = {"both": ["pinned", "unpinned"], "on": ["pinned"], "off": ["unpinned"]}[o.pin]
    o.ir_requests = [int(x) for x in o.ir_requests.split(",")]
    o.figures = [f for f in o.figures.split(",") if f]
    set_ports(o.port_base)
    for t in ("nginx", "haproxy", "wrk", "h2load", "strace", "valgrind", "taskset", "setpriv",
              "curl", "openssl", "cc"):
        if shutil.which(t) is None:
            raise SystemExit(f"perf-bench: {t} is missing (see packages.txt)")
    # A stopped run (SIGTERM, SIGINT) still stops the proxies it started, in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    b = Bench(o)
    b.pinned = False
    try:
        b.prepare()
        for part in o.only.split(","):
            getattr(b, part)()
    finally:
        b.stop_all()
        if b.backend is not None and b.backend.poll() is None:
            b.backend.terminate()
            b.backend.wait()
    print(f"perf-bench: haloyd {benchlib_rev(o.builddir)}, {o.duration}s x {o.rounds} rounds, "
          f"pin {o.pin}, one worker each")
    b.table()
    shutil.rmtree(b.tmp, ignore_errors=True)


def set_ports(base):
    global BE, HA, HAS, NG, NGS, HP, HPS
    BE, HA, HAS, NG, NGS, HP, HPS = (base + d for d in (0, 1, 2, 11, 12, 15, 16))
    PORTS.update({"haloyd": (HA, HAS), "nginx": (NG, NGS), "haproxy": (HP, HPS)})


def benchlib_rev(d):
    r = subprocess.run(["git", "-C", HERE, "describe", "--always", "--dirty"], capture_output=True,
                       text=True)
    return r.stdout.strip() or "unknown"


if __name__ == "__main__":
    main()
