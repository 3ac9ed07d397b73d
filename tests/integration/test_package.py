"""The Debian package check (issue 6) inside the integration suite: runs
tests/package/test-deb.sh, which builds the .deb from this tree, installs it
with apt, runs the daemon as the installed unit says and purges it again.
Every `ok N - ...` / `not ok N - ...` line of the script is one subtest, and
its `N passed, N failed` summary must agree with them.

It changes the machine (installs and purges haloyd, creates and deletes
system accounts), so it needs root; CI runs the suite as root on a
throw-away Debian 12. The script's whole output is kept in
$HALOYD_BUILDDIR/test-deb.log.
"""
import os
import re
import shutil
import signal
import subprocess
import unittest

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SRCDIR, "tests", "package", "test-deb.sh")
TIMEOUT = 15 * 60       # the whole check takes about 3 minutes on 2 cores
CLEANUP_TIMEOUT = 120   # after SIGTERM the script still purges what it installed
TOOLS = ("dpkg-buildpackage", "dh", "lintian", "apt-get", "systemd-analyze", "man")

RESULT = re.compile(r"^(ok|not ok) (\d+) - (.*)$")
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")


def run_script(log_path):
    """Runs the script within TIMEOUT; returns (exit status, output, timed_out)."""
    proc = subprocess.Popen(["/bin/bash", SCRIPT], cwd=SRCDIR, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
        # SIGTERM first: the script's EXIT trap stops its daemon and purges.
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=CLEANUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    with open(log_path, "w") as f:
        f.write(out)
    return proc.returncode, out, timed_out


def parse(out):
    """[(ok, number, description, notes)] and the summary (passed, failed) or None.

    A check's notes are the `# ` lines next to it: a check may explain
    itself before its result line (what it found) or after it (logs).
    """
    results, summary, pending = [], None, []
    for line in out.splitlines():
        m = RESULT.match(line)
        if m:
            if results:
                results[-1][3].extend(pending)
            results.append((m.group(1) == "ok", int(m.group(2)), m.group(3), list(pending)))
            pending = []
        elif line.startswith("# "):
            pending.append(line[2:])
        elif SUMMARY.match(line):
            summary = tuple(map(int, SUMMARY.match(line).groups()))
    if results:
        results[-1][3].extend(pending)
    return results, summary


class PackageTest(unittest.TestCase):
    def test_deb_package(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: it installs and purges the haloyd package")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            self.skipTest("not installed: %s (see .ci/run)" % " ".join(missing))
        builddir = os.environ.get("HALOYD_BUILDDIR") or os.getcwd()
        log_path = os.path.join(builddir, "test-deb.log")
        rc, out, timed_out = run_script(log_path)
        results, summary = parse(out)
        for ok, number, what, notes in results:
            with self.subTest(check=number, what=what):
                if not ok:
                    self.fail("not ok %d - %s%s" % (number, what,
                              "".join("\n  " + n for n in notes[-15:])))
        tail = "\n".join(out.splitlines()[-20:])
        self.assertFalse(timed_out, "test-deb.sh ran longer than %d s (log: %s)"
                         % (TIMEOUT, log_path))
        self.assertIsNotNone(summary, "test-deb.sh ended without its summary:\n" + tail)
        self.assertGreater(len(results), 0, "test-deb.sh reported no check")
        npassed = sum(1 for r in results if r[0])
        self.assertEqual(summary, (npassed, len(results) - npassed),
                         "the summary disagrees with the checks")
        self.assertEqual(rc == 0, summary[1] == 0,
                         "exit status %s with %d failed checks" % (rc, summary[1]))


if __name__ == "__main__":
    unittest.main()
