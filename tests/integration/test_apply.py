"""Integration tests of declarative configuration: `haloyd-ctl export` and
`haloyd-ctl apply FILE [--dry-run] [--prune]` (haloyd issue 18, point 3).

Each test runs its own daemon, since --prune and the generation counts need
a store no other test touches. Checked: the export of a varied store
applied on a fresh haloyd gives the same export; 1 000 routes applied in
exactly one generation, every one served when apply returns (both workers
on that generation); a second apply says "no changes" and publishes
nothing; --dry-run prints the difference and changes nothing; a file with
one bad line in the middle is refused with FILE:LINE and changes nothing;
--prune removes the routes the file does not name; stdin as '-'.
"""
import base64
import json
import os
import subprocess
import unittest

from . import backend as backend_mod
from . import harness
from .harness import Daemon, unique_host
from .test_tls import Pki

CTL_EINVAL = 7
N_ROUTES = 1000


class ApplyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.be = backend_mod.Backend("ap1").start()
        cls.be2 = backend_mod.Backend("ap2").start()
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.be.stop()
        cls.be2.stop()
        cls.pki.close()

    def setUp(self):
        self.daemons = []
        self.d = self.new_daemon()

    def tearDown(self):
        for d in self.daemons:
            d.close()

    def new_daemon(self):
        d = Daemon(2)
        self.daemons.append(d)
        try:
            d.start()
        except BaseException:
            d.close(check=False, keep=True)
            raise
        return d

    # --- helpers

    def write(self, d, name, text):
        path = os.path.join(d.base, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def gen(self, d):
        return d.status()["master"]["generation"]

    def export(self, d):
        return d.ctl_ok("export")

    def routes(self, d):
        return sorted(r["name"] for r in json.loads(d.ctl_ok("--json", "route", "list")))

    def served_by_all(self, d, gen):
        st = d.status()
        self.assertEqual(st["master"]["generation"], gen)
        self.assertEqual(len(st["workers"]), 2)
        for w in st["workers"]:
            self.assertEqual(w["generation"], gen, st)

    def varied(self, d):
        """Routes with every kind of backend, aliases and many settings."""
        ctl = d.ctl_ok
        a, b, c = unique_host("va"), unique_host("vb"), unique_host("vc")
        ctl("route", "add", a, self.be.addr, "--alias", "www." + a, "--alias", "*.w" + a,
            "--backend", "unix:/run/apply-test.sock")
        ctl("route", "set", a, "--max-body", "10m", "--hsts", "on", "--compress", "on",
            "--rate", "10r/s", "--burst", "5", "--nodelay", "--response-timeout", "5m",
            "--https-redirect", "off", "--challenge", "http-01")
        ctl("route", "add", b, "tunnel:bee")
        ctl("route", "set", b, "--balance", "round-robin", "--connect-timeout", "2s",
            "--max-body", "unlimited")
        ctl("route", "add", c, "[::1]:8443", "--backend", self.be2.addr, "--proto", "https",
            "--backend-ca", self.pki.ca, "--backend-sni", "api.internal")
        ctl("route", "set", c, "--backend-verify", "off", "--rate", "off")
        return a, b, c

    # --- tests

    def test_export_applied_on_a_fresh_haloyd_gives_the_same_export(self):
        a, b, c = self.varied(self.d)
        out = self.export(self.d)
        lines = [l for l in out.splitlines() if l and not l.startswith("#")]
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(lines, sorted(lines))
        la = [l for l in lines if l.startswith("route %s " % a)][0]
        for w in ("--alias www." + a, "--alias *.w" + a, "unix:/run/apply-test.sock",
                  "--max-body 10m", "--hsts on", "--compress on", "--rate 10r/s", "--burst 5",
                  "--nodelay on", "--response-timeout 5m", "--https-redirect off",
                  "--challenge http-01"):
            self.assertIn(w, la)
        lc = [l for l in lines if l.startswith("route %s " % c)][0]
        self.assertIn("[::1]:8443", lc)
        self.assertIn("--proto https", lc)
        self.assertIn("--backend-verify off", lc)
        with open(self.pki.ca, "rb") as f:
            self.assertIn("--backend-ca " + base64.b64encode(f.read()).decode(), lc)
        # Round trip on the same daemon: nothing to do.
        g = self.gen(self.d)
        path = self.write(self.d, "export.conf", out)
        self.assertEqual(self.d.ctl_ok("apply", "--dry-run", path).splitlines()[-1],
                         "no changes (generation %d)" % g)
        # A fresh daemon ends up with the same routes.
        fresh = self.new_daemon()
        path2 = self.write(fresh, "export.conf", out)
        res = fresh.ctl_ok("apply", path2)
        self.assertIn("3 added, 0 removed, 0 changed", res)
        self.assertEqual(self.export(fresh), out)
        self.assertEqual(fresh.ctl_ok("route", "show", c), self.d.ctl_ok("route", "show", c))
        self.assertEqual(fresh.get(a, "/x").status, 200)

    def thousand(self, bad_line=None):
        lines = ["# %d routes, one backend each" % N_ROUTES, ""]
        hosts = []
        for i in range(N_ROUTES):
            h = "r%04d.apply.example" % i
            hosts.append(h)
            lines.append("route %s %s --alias www.%s" % (h, self.be.addr, h) +
                         (" --max-body 1m" if i % 2 else ""))
        if bad_line is not None:
            lines[bad_line - 1] = "route bad.apply.example 127.0.0.1:99999"
        return hosts, "\n".join(lines) + "\n"

    def test_thousand_routes_in_one_generation_served_when_it_returns(self):
        hosts, text = self.thousand()
        path = self.write(self.d, "big.conf", text)
        g0 = self.gen(self.d)
        out = self.d.ctl_ok("apply", path)
        self.assertIn("%d added, 0 removed, 0 changed" % N_ROUTES, out)
        self.assertEqual(out.count("\n+ route ") + out.startswith("+ route "), N_ROUTES)
        self.assertTrue(out.endswith("(generation %d)\n" % (g0 + 1)), out[-200:])
        self.served_by_all(self.d, g0 + 1)
        # Every route serves now, with no wait (both workers, new connections).
        for h in hosts:
            r = self.d.get(h, "/")
            self.assertEqual(r.status, 200, h)
        self.assertEqual(self.d.get("www." + hosts[-1], "/").status, 200)
        self.assertEqual(self.d.status()["master"]["routes"], N_ROUTES)
        # The same file again: no changes, no generation.
        out = self.d.ctl_ok("apply", path)
        self.assertEqual(out, "no changes (generation %d)\n" % (g0 + 1))
        self.assertEqual(self.gen(self.d), g0 + 1)

    def test_dry_run_changes_nothing(self):
        a, b, c = self.varied(self.d)
        before, g0 = self.export(self.d), self.gen(self.d)
        text = before.replace("--max-body 10m", "--max-body 20m")
        text += "route %s %s\n" % (unique_host("new"), self.be.addr)
        text = "\n".join(l for l in text.splitlines() if not l.startswith("route %s " % b))
        path = self.write(self.d, "dry.conf", text + "\n")
        out = self.d.ctl_ok("apply", "--dry-run", "--prune", path)
        self.assertIn("~ route %s: max_body 10m -> 20m" % a, out)
        self.assertIn("- route %s" % b, out)
        self.assertIn("dry run: 1 added, 1 removed, 1 changed; nothing changed", out)
        self.assertEqual(self.export(self.d), before)
        self.assertEqual(self.gen(self.d), g0)
        js = json.loads(self.d.ctl_ok("--json", "apply", "--dry-run", path))
        self.assertTrue(js["ok"])
        self.assertIn("~ route %s: max_body 10m -> 20m" % a, js["changes"])

    def test_a_bad_line_in_the_middle_changes_nothing_and_is_named(self):
        self.d.ctl_ok("route", "add", "keep.apply.example", self.be.addr)
        before, g0 = self.export(self.d), self.gen(self.d)
        for bad in ("route bad.apply.example 127.0.0.1:99999",
                    "route bad.apply.example 127.0.0.1:1 --max-body lots",
                    "route bad.apply.example 127.0.0.1:1 --no-such-setting 1",
                    "route bad.apply.example 127.0.0.1:1 --backend-sni x.example",
                    "route r0001.apply.example 127.0.0.1:2",
                    "frobnicate bad.apply.example"):
            hosts, text = self.thousand()
            lines = text.splitlines()
            lines[501] = bad            # line 502 of the file
            path = self.write(self.d, "bad.conf", "\n".join(lines) + "\n")
            rc, out, err = self.d.ctl("apply", "--prune", path)
            self.assertEqual(rc, CTL_EINVAL, (bad, out, err))
            self.assertTrue(err.startswith("haloyd-ctl: %s:502: " % path), (bad, err))
            self.assertIn("nothing changed", err)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertEqual(self.export(self.d), before)
            self.assertEqual(self.gen(self.d), g0)

    def test_prune_removes_the_routes_the_file_does_not_name(self):
        a, b, c = self.varied(self.d)
        d2 = unique_host("solo")
        g0 = self.gen(self.d)
        path = self.write(self.d, "one.conf", "# just one\nroute %s %s  # trailing comment\n"
                          % (d2, self.be2.addr))
        out = self.d.ctl_ok("apply", path)
        self.assertIn("1 added, 0 removed, 0 changed; 3 routes not in the file kept", out)
        self.assertEqual(self.routes(self.d), sorted([a, b, c, d2]))
        out = self.d.ctl_ok("apply", "--prune", path)
        self.assertIn("0 added, 3 removed, 0 changed", out)
        for h in (a, b, c):
            self.assertIn("- route %s\n" % h, out)
        self.assertEqual(self.routes(self.d), [d2])
        self.assertEqual(self.gen(self.d), g0 + 2)
        r = self.d.get(d2, "/")
        self.assertEqual((r.status, r.header("X-Backend")), (200, "ap2"))

    def test_path_prefix_routes_need_their_host_route_and_at_most_64(self):
        host = unique_host("pfx")
        self.d.ctl_ok("route", "add", host, self.be.addr)
        before, g0 = self.export(self.d), self.gen(self.d)
        orphan = unique_host("orphan")
        cases = [
            # The host route is neither in the file nor kept (--prune drops it).
            ("--prune", "route %s/api %s\n" % (host, self.be2.addr), host),
            # A host the store has never seen.
            (None, "route %s/api %s\n" % (orphan, self.be2.addr), orphan),
            # 65 path-prefix routes under one host.
            (None, "".join("route %s/p%02d %s\n" % (host, i, self.be2.addr)
                           for i in range(65)), "more than 64"),
        ]
        for flag, text, named in cases:
            path = self.write(self.d, "pfx.conf", text)
            args = ["apply"] + ([flag] if flag else []) + [path]
            rc, out, err = self.d.ctl(*args)
            self.assertEqual(rc, CTL_EINVAL, (text[:80], out, err))
            self.assertIn(named, err)
            self.assertIn("nothing changed", err)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertEqual(self.export(self.d), before)
            self.assertEqual(self.gen(self.d), g0)
        # With the host route kept (no --prune), or named in the file, it applies and serves.
        path = self.write(self.d, "pfx.conf", "route %s/api %s\n" % (host, self.be2.addr))
        self.assertIn("1 added", self.d.ctl_ok("apply", path))
        self.assertEqual(self.d.get(host, "/api/x").header("X-Backend"), "ap2")
        path = self.write(self.d, "pfx.conf", "route %s %s\nroute %s/api %s\n"
                          % (host, self.be.addr, host, self.be2.addr))
        self.assertIn("no changes", self.d.ctl_ok("apply", "--prune", path))
        self.assertEqual(self.d.get(host, "/api/x").header("X-Backend"), "ap2")

    def test_changes_to_names_backends_and_settings(self):
        a = unique_host("chg")
        self.d.ctl_ok("route", "add", a, self.be.addr, "--alias", "old." + a)
        self.d.ctl_ok("route", "set", a, "--hsts", "on")
        text = "route %s %s --alias new.%s --compress on\n" % (a, self.be2.addr, a)
        p = subprocess.run([harness.program("haloyd-ctl"), "-s", self.d.sock, "apply", "-"],
                           input=text.encode(), capture_output=True, timeout=harness.CTL_TIMEOUT)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr)
        for l in ("~ route %s: - alias old.%s" % (a, a), "~ route %s: + alias new.%s" % (a, a),
                  "~ route %s: - backend %s" % (a, self.be.addr),
                  "~ route %s: + backend %s" % (a, self.be2.addr),
                  "~ route %s: hsts on -> off" % a, "~ route %s: compress off -> on" % a):
            self.assertIn(l + "\n", out)
        self.assertIn("0 added, 0 removed, 1 changed", out)
        r = self.d.get("new." + a, "/")
        self.assertEqual((r.status, r.header("X-Backend")), (200, "ap2"))
        self.assertEqual(self.export(self.d).splitlines()[-1], text.strip())
        # A name moves from one route to another in the same apply.
        b = unique_host("mv")
        text2 = text.replace("--alias new.%s" % a, "") + "route %s %s --alias new.%s\n" % (
            b, self.be.addr, a)
        path = self.write(self.d, "mv.conf", text2)
        out = self.d.ctl_ok("apply", path)
        self.assertIn("1 added, 0 removed, 1 changed", out)
        r = self.d.get("new." + a, "/")
        self.assertEqual((r.status, r.header("X-Backend")), (200, "ap1"))


if __name__ == "__main__":
    unittest.main()
