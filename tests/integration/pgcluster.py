"""The PostgreSQL cluster fixture the shared-store tests have in common (haloyd
issue 20): a throw-away PostgreSQL 15 made with initdb, optionally pebble, a
few haloyd nodes on it and a backend, set up once per test class and torn
down in reverse order.

PostgreSQL (Debian's postgresql-15) runs as `nobody` (initdb and postgres
refuse root), listening on 127.0.0.1 on a free port with its unix socket in
its temporary folder. Each node is named by its connection string's
application_name. A test class says what differs through class attributes
and hooks: NODES (the names), PEBBLE (start one), BACKEND (the backend's
name), node_args() (a node's command line beyond --store), setup_extra() /
teardown_extra() (forwarders and the like) and prepare_db() (roles, grants).
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from .harness import Daemon, as_user_prefix, free_port, wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_USER = "nobody"
PG_TIMEOUT = 60.0


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:port, owned by PG_USER; its superuser
    is named superuser (haloyd unless a test sets roles up)."""

    def __init__(self, superuser="haloyd"):
        self.superuser = superuser
        self.base = tempfile.mkdtemp(prefix="haloyd-pg-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.sock = os.path.join(self.base, "sock")
        self.logdir = os.path.join(self.base, "log")
        for d in (self.data, self.sock, self.logdir):
            os.mkdir(d, 0o700)
            shutil.chown(d, PG_USER)
        self.port = free_port()

    def url(self, node, user="haloyd"):
        return "postgresql://%s@127.0.0.1:%d/postgres?application_name=%s" % (
            user, self.port, node)

    def _run(self, *argv):
        p = subprocess.run(as_user_prefix(PG_USER) + list(argv), stdin=subprocess.DEVNULL,
                           capture_output=True, cwd=self.base, timeout=PG_TIMEOUT)
        if p.returncode != 0:
            raise AssertionError("%s: exit %d\n%s%s\n%s" % (
                " ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace"), self.log_tail()))

    def log_text(self):
        try:
            with open(os.path.join(self.logdir, "pg.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self):
        try:
            with open(os.path.join(self.logdir, "pg.log"), errors="replace") as f:
                return "--- postgres log:\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def initdb(self):
        self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", self.superuser,
                  "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")

    def start(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "50",
                  "-l", os.path.join(self.logdir, "pg.log"),
                  "-o", "-k %s -h 127.0.0.1 -p %d -F" % (self.sock, self.port), "start")

    def stop(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "50",
                  "-m", "fast", "stop")

    def enable_tls(self):
        """TLS for new connections (a self-signed key, reloaded) and a log line per
        connection saying whether it used TLS; PostgreSQL runs."""
        crt, key = os.path.join(self.data, "server.crt"), os.path.join(self.data, "server.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
        for f in (crt, key):
            shutil.chown(f, PG_USER)
            os.chmod(f, 0o600)
        for sql in ("ALTER SYSTEM SET ssl = on", "ALTER SYSTEM SET log_connections = on",
                    "SELECT pg_reload_conf()"):
            psql(self, sql)
        wait_for(lambda: psql(self, "SHOW ssl") == "on", 20, "PostgreSQL to turn TLS on",
                 self.log_tail)

    def close(self):
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def psql_run(pg, sql, user=None):
    """One statement on pg's database as user (its superuser by default): (exit code, rows
    as psql -A -t prints them, stderr)."""
    user = user or pg.superuser
    p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-A", "-t", "-h", "127.0.0.1",
                        "-p", str(pg.port), "-U", user, "-d", "postgres", "-c", sql],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.strip(), p.stderr


def psql(pg, sql, user=None):
    """One statement on pg's database; its rows as psql -A -t prints them."""
    rc, out, err = psql_run(pg, sql, user)
    if rc != 0:
        raise AssertionError("psql: %s" % err)
    return out


class PgClusterTest(unittest.TestCase):
    """Base class: PostgreSQL, optionally pebble, NODES haloyd nodes and a backend.
    Nodes killed by a test go to cls.dead (closed without a check)."""

    NODES = ("node1", "node2", "node3")
    PEBBLE = False
    BACKEND = "pg"
    SUPERUSER = "haloyd"    # the nodes' role unless prepare_db makes others

    # --- hooks

    @classmethod
    def setup_extra(cls):
        """Before pebble and the nodes start (forwarders)."""

    @classmethod
    def teardown_extra(cls):
        """After the nodes stopped, before pebble and PostgreSQL do."""

    @classmethod
    def prepare_db(cls):
        """PostgreSQL runs, no node yet (roles and grants)."""

    @classmethod
    def make_pebble(cls):
        from .test_acme import Pebble
        return Pebble(free_port())

    @classmethod
    def node_args(cls, name):
        """A node's arguments after --store URL."""
        return []

    @classmethod
    def store_url(cls, name):
        return cls.pg.url(name)

    @classmethod
    def acme_store_url(cls, name):
        """The ACME child's connection (acme_store): the nodes' own role unless overridden."""
        return cls.pg.url(name + "-acme")

    # --- the fixture

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres(cls.SUPERUSER)
        cls.pebble = None
        cls.nodes = []
        cls.dead = []
        cls.be = None
        try:
            cls.pg.initdb()
            cls.pg.start()
            cls.prepare_db()
            cls.setup_extra()
            if cls.PEBBLE:
                cls.pebble = cls.make_pebble()
                cls.pebble.start()
            for name in cls.NODES:
                cls.nodes.append(cls.node(name))
            from .backend import Backend
            cls.be = Backend(cls.BACKEND).start()
        except BaseException:
            cls.tearDownClass(check=False)
            raise

    @classmethod
    def node(cls, name):
        """A started node named name, with its https_port (when it listens on one)."""
        args = ["--store", cls.store_url(name)] + list(cls.node_args(name))
        d = Daemon(1, args)
        d.name = name
        d.https_port = None
        if "--listen-https" in args:
            d.https_port = int(args[args.index("--listen-https") + 1].rsplit(":", 1)[1])
        try:
            d.start()
        except BaseException:
            d.close(check=False, keep=True)
            raise
        return d

    @classmethod
    def https_args(cls):
        return ["--listen-https", "127.0.0.1:%d" % free_port()]

    @classmethod
    def acme_args(cls, name, acme_store=None):
        from .test_acme import acme_user
        return ["--acme", "on", "--acme-directory", cls.pebble.directory,
                "--acme-ca-file", cls.pebble.ca_file, "--acme-email", "ops@example.com",
                "--acme-user", acme_user(), "--acme-backoff-max", "1h",
                "--acme-store", acme_store or cls.acme_store_url(name)]

    @classmethod
    def tearDownClass(cls, check=True):
        if cls.be is not None:
            cls.be.stop()
        failures = []
        for d in cls.nodes:
            try:
                d.close(check=check)
            except AssertionError as e:
                failures.append(str(e))
        for d in cls.dead:
            d.close(check=False)
        cls.teardown_extra()
        if cls.pebble is not None:
            cls.pebble.close()
        cls.pg.close()
        if failures:
            raise AssertionError("\n".join(failures))

    def psql(self, sql, user=None):
        return psql(self.pg, sql, user)
