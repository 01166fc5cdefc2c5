"""A PostgreSQL 15 server of a test's own (Debian's postgresql-15), on a
free loopback port, with a role and a database for a fleet's gateways.

As root the cluster runs as the postgres account (PostgreSQL refuses root);
the gateways log in over TCP with a password from a libpq passfile, as
gatewayd.conf's audit_central expects (never a password in the URL).
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile

from gwtest import free_port, wait_for

BIN = "/usr/lib/postgresql/15/bin"
PASSWORD = "fleet-secret"


def available():
    return os.path.exists(os.path.join(BIN, "postgres"))


class PostgresServer:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sgw-pg-", dir="/var/tmp")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.mkdir(self.sock)
        self.owner = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.owner = (pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, *self.owner)
            os.chown(self.sock, *self.owner)
        self._run([BIN + "/initdb", "-D", self.data, "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        self.start()
        self.psql("CREATE ROLE gw LOGIN PASSWORD '%s'" % PASSWORD,
                  db="postgres")
        self.psql("CREATE DATABASE fleet OWNER gw", db="postgres")

    def _run(self, argv, check=True, input=None):
        def drop():
            if self.owner:
                os.setgid(self.owner[1])
                os.setuid(self.owner[0])
        return subprocess.run(argv, preexec_fn=drop, check=check,
                              input=input, capture_output=True, text=True,
                              cwd=self.dir)

    def start(self):
        self._run([BIN + "/pg_ctl", "-D", self.data, "-l",
                   os.path.join(self.dir, "log"), "-w", "-t", "30", "-o",
                   "-c listen_addresses=127.0.0.1,127.0.0.2 -p %d -k %s -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off"
                   % (self.port, self.sock), "start"])

    def stop(self):
        self._run([BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w",
                   "stop"], check=False)

    def pids(self):
        """The postmaster and its children (backends, writers)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            main = int(f.readline())
        with open("/proc/%d/task/%d/children" % (main, main)) as f:
            return [main] + [int(p) for p in f.read().split()]

    def signal_all(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass        # a backend that just ended

    def pause(self):
        """A server that stops answering (its processes stopped): the
        kernel still accepts and acknowledges, nothing replies."""
        self.signal_all(signal.SIGSTOP)

    def resume(self):
        self.signal_all(signal.SIGCONT)

    def psql(self, sql, db="fleet", check=True):
        """Runs SQL as the superuser; the rows, '|'-separated (None on an
        error when check is false)."""
        r = self._run(["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v",
                       "ON_ERROR_STOP=1", "-h", self.sock, "-p",
                       str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                      check=False)
        if r.returncode != 0:
            if check:
                raise AssertionError("psql %s: %s" % (sql, r.stderr))
            return None
        return [l for l in r.stdout.splitlines() if l != ""]

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0] if rows else None

    def passfile(self, tmp, account=None, name="pgpass"):
        """A libpq passfile for the gw role, mode 0600, owned by account
        (the audit shipper's, or the proxy's for a policy) when given."""
        path = tmp.write(name, "*:%d:fleet:gw:%s\n" %
                         (self.port, PASSWORD))
        os.chmod(path, 0o600)
        if account is not None and os.geteuid() == 0:
            pw = pwd.getpwnam(account)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        return path

    def url(self, passfile, host="127.0.0.1", tls=False):
        """This server has no certificate: over TCP, TLS is declined in
        the URL (gatewayd requires it unless the URL says so)."""
        return "postgresql://gw@%s:%d/fleet?%spassfile=%s" % (
            host, self.port, "" if tls else "sslmode=disable&", passfile)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class StoreTestCase:
    """A mixin for a test class: one PostgresServer for all its tests
    (self.pg), started again before a test if one before stopped it."""
    pg = None

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer()

    @classmethod
    def tearDownClass(cls):
        cls.pg.cleanup()

    def setUp(self):
        super().setUp()
        if not os.path.exists(os.path.join(self.pg.data, "postmaster.pid")):
            self.pg.start()
        # Each test on an empty store (made again by whoever comes first).
        self.pg.psql("DROP TABLE IF EXISTS quota_leases, policy_head, "
                     "policy_changes, "
                     "audit_checkpoints, audit_records, audit_keys, "
                     "audit_nodes, socksgw_schema")
