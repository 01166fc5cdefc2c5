"""The Debian package, built, installed, run, upgraded, removed and purged
on this machine (as root).

Built twice from a copy of the source with dpkg-buildpackage (the second
time as a newer version); lintian must report no error or warning. The
installed unit is checked offline (systemd-analyze verify and security:
no systemd runs here as PID 1), and the installed gatewayd is run with the
unit's own ExecStartPre, ExecStart, ExecReload, environment, umask and
descriptor limit, with the test in systemd's place on $NOTIFY_SOCKET.
Accounts of the test's own (an admin, an auditor, anyone else) check the
folders' owners and modes through socksctl.
"""
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import http.server

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(
    __file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from gwtest import wait_for  # noqa: E402

UNIT = "/lib/systemd/system/socksgw.service"
CONF = "/etc/socksgw/gatewayd.conf"
STATE = "/var/lib/socksgw"
ACCOUNTS = {"sgwt-admin": "socksgw-admin", "sgwt-auditor": "socksgw-auditors",
            "sgwt-other": None}


def run(argv, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=kw.pop("timeout", 900), **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (
            " ".join(argv), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r


def apt_env():
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def installed_version():
    r = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "socksgw"],
            check=False)
    return r.stdout.split()[-1] if "install ok installed" in r.stdout \
        else None


def unit_settings(path):
    """[Service] settings of a unit file: name -> list of values."""
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and \
                    not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


class NotifySocket:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []

    def wait(self, text, timeout=30):
        def seen():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
            return any(text in m.split("\n") for m in self.messages)
        wait_for(seen, timeout, what="%s from gatewayd" % text)
        self.messages = []

    def close(self):
        self.sock.close()


@unittest.skipUnless(os.geteuid() == 0, "installs a package: needs root")
class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="socksgw-pkg-")
        if installed_version() is not None:
            run(["dpkg", "--purge", "socksgw"])
        cls.debs = {}
        src = os.path.join(cls.tmp, "socksgw")
        # The source as it is in this checkout, without build folders.
        files = run(["git", "-C", ROOT, "ls-files", "-co",
                     "--exclude-standard"]).stdout.split("\n")
        for rel in filter(None, files):
            if os.path.isfile(os.path.join(ROOT, rel)):
                os.makedirs(os.path.dirname(os.path.join(src, rel)),
                            exist_ok=True)
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(src, rel))
        cls.debs["old"] = cls.build(src)
        # A newer build: the same source, a new changelog entry.
        with open(os.path.join(src, "debian", "changelog")) as f:
            log = f.read()
        old = re.match(r"socksgw \(([^)]+)\)", log).group(1)
        cls.new_version = old + "+test1"
        with open(os.path.join(src, "debian", "changelog"), "w") as f:
            f.write("socksgw (%s) unstable; urgency=medium\n\n  * Upgrade "
                    "test build.\n\n -- socksgw developers "
                    "<dev@socksgw.example.org>  Tue, 01 Dec 2026 21:00:00 "
                    "+0000\n\n%s" % (cls.new_version, log))
        cls.debs["new"] = cls.build(src)
        cls.old_version = old

    @classmethod
    def build(cls, src):
        run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src)
        with open(os.path.join(src, "debian", "changelog")) as f:
            version = re.match(r"socksgw \(([^)]+)\)", f.read()).group(1)
        deb = os.path.join(cls.tmp, "socksgw_%s_amd64.deb" % version)
        changes = os.path.join(cls.tmp, "socksgw_%s_amd64.changes" % version)
        assert os.path.exists(deb), deb
        cls.changes = changes
        return deb

    @classmethod
    def tearDownClass(cls):
        for name in ACCOUNTS:
            run(["userdel", name], check=False)
        if installed_version() is not None:
            run(["dpkg", "--purge", "socksgw"], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def as_user(self, name, *argv):
        return run(["runuser", "-u", name, "--", "socksctl"] + list(argv),
                   check=False)

    def test_package(self):
        self.lintian()
        self.install()
        self.unit_offline()
        gw = self.start_as_the_unit_does()
        try:
            self.serve_and_audit()
            self.owners_and_modes()
            self.reload_as_the_unit_does(gw)
        finally:
            self.stop(gw)
        self.upgrade()
        self.remove_and_purge()

    def lintian(self):
        r = run(["lintian", "--fail-on", "error,warning", self.changes],
                check=False)
        tags = [l for l in r.stdout.splitlines() if re.match(r"[EW]: ", l)]
        self.assertEqual(tags, [])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def install(self):
        run(["apt-get", "install", "-y", "-q", self.debs["old"]],
            env=apt_env())
        self.assertEqual(installed_version(), self.old_version)
        files = run(["dpkg", "-L", "socksgw"]).stdout.split("\n")
        for path in ("/usr/sbin/gatewayd", "/usr/bin/socksctl",
                     "/usr/sbin/socksgw-geoip-update", CONF,
                     "/etc/pam.d/socksgw", UNIT,
                     "/lib/systemd/system/socksgw-geoip.timer",
                     "/usr/share/man/man8/gatewayd.8.gz",
                     "/usr/share/man/man5/gatewayd.conf.5.gz",
                     "/usr/share/man/man8/socksctl.8.gz",
                     "/usr/share/bash-completion/completions/socksctl",
                     "/usr/share/doc/socksgw/copyright",
                     "/usr/share/doc/socksgw/GEOIP-ATTRIBUTION.md"):
            self.assertIn(path, files)
        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}",
                         "socksgw"]).stdout
        self.assertIn(CONF, conffiles)
        for name in ("socksgw", "socksgw-audit"):
            pw = pwd.getpwnam(name)
            self.assertEqual(pw.pw_shell, "/usr/sbin/nologin")
            self.assertLess(pw.pw_uid, 1000)
        for name, group in ACCOUNTS.items():
            run(["userdel", name], check=False)
            run(["useradd", "-M", "-s", "/usr/sbin/nologin"] +
                (["-G", group] if group else []) + [name])

    def unit_offline(self):
        for unit in ("socksgw.service", "socksgw-geoip.service",
                     "socksgw-geoip.timer"):
            r = run(["systemd-analyze", "verify",
                     "/lib/systemd/system/" + unit], check=False)
            self.assertEqual((r.returncode, r.stderr.strip()), (0, ""), unit)
        for unit in ("socksgw.service", "socksgw-geoip.service"):
            r = run(["systemd-analyze", "security", "--offline=true",
                     "--no-pager", "/lib/systemd/system/" + unit])
            score = float(re.search(r"Overall exposure level for \S+: "
                                    r"([0-9.]+)", r.stdout).group(1))
            self.assertLessEqual(score, 3.0, unit)

    def start_as_the_unit_does(self):
        s = unit_settings(UNIT)
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["NotifyAccess"], ["main"])
        env = dict(os.environ)
        for e in s.get("Environment", []):
            k, v = e.split("=", 1)
            env[k] = v

        def expand(cmd, mainpid=None):
            cmd = cmd.replace("${CONF}", env["CONF"])
            if mainpid is not None:
                cmd = cmd.replace("$MAINPID", str(mainpid))
            return cmd.split()
        self.expand = expand
        self.unit = s
        umask = int(s["UMask"][0], 8)
        nofile = int(s["LimitNOFILE"][0])
        # RuntimeDirectory, as systemd makes it (root's, its mode).
        rundir = "/run/" + s["RuntimeDirectory"][0]
        os.makedirs(rundir, exist_ok=True)
        os.chmod(rundir, int(s["RuntimeDirectoryMode"][0], 8))

        def limits():
            os.umask(umask)
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            n = min(nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        self.assertEqual(s["ExecStart"][0].split()[0], "/usr/sbin/gatewayd")
        for pre in s.get("ExecStartPre", []):
            r = run(expand(pre), env=env, preexec_fn=limits)
            self.assertIn("configuration OK", r.stdout + r.stderr)
        self.notify = NotifySocket(os.path.join(self.tmp, "notify"))
        env["NOTIFY_SOCKET"] = self.notify.path
        self.log = open(os.path.join(self.tmp, "gatewayd.log"), "w")
        # The unit's capability bounding set and NoNewPrivileges, as
        # systemd would apply them (setpriv, util-linux).
        self.assertEqual(s["NoNewPrivileges"], ["yes"])
        caps = ",".join("+" + c[len("CAP_"):].lower() for c in
                        s["CapabilityBoundingSet"][0].split())
        self.confine = ["setpriv", "--bounding-set=-all," + caps,
                        "--no-new-privs", "--"]
        gw = subprocess.Popen(self.confine + expand(s["ExecStart"][0]),
                              env=env, stdout=self.log,
                              stderr=subprocess.STDOUT, preexec_fn=limits)
        self.env = env
        self._gw = gw
        self.notify.wait("READY=1")
        return gw

    def serve_and_audit(self):
        # Deny-all out of the box: the policy has no rule.
        self.assertEqual(run(["socksctl", "--json", "rule", "list"]).stdout
                         .strip(), "[]")
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = "http://127.0.0.1:%d/" % server.server_port
        curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                "--max-time", "10", "--socks5", "127.0.0.1:1080", url]
        r = run(curl, check=False)
        self.assertEqual(r.returncode, 97, r.stdout)  # refused by the proxy
        # An admin (socksgw-admin, not root) adds the rule.
        r = self.as_user("sgwt-admin", "rule", "add", "allow", "--src",
                         "127.0.0.0/8", "--dst", "127.0.0.1/32", "--port",
                         str(server.server_port))
        self.assertEqual(r.returncode, 0, r.stderr)
        wait_for(lambda: run(curl, check=False).stdout == "200",
                 timeout=10, what="the rule in force")
        # An auditor reads the audit log; it has both sessions.
        def audited():
            r = self.as_user("sgwt-auditor", "--json", "audit", "list")
            return r.returncode == 0 and '"allow"' in r.stdout and \
                '"deny"' in r.stdout
        wait_for(audited, timeout=10, what="the auditor's audit list")
        # Reports too, though auditors may not read the policy (groups).
        r = self.as_user("sgwt-auditor", "audit", "report", "users")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_user("sgwt-auditor", "audit", "report", "users",
                         "--group", "staff")
        self.assertEqual(r.returncode, 1)
        self.assertIn("--group needs the policy database", r.stderr)

    def owners_and_modes(self):
        def mode(path):
            st = os.stat(path)
            import grp
            return (pwd.getpwuid(st.st_uid).pw_name,
                    grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o7777))
        self.assertEqual(mode(STATE), ("root", "root", "0o755"))
        self.assertEqual(mode(STATE + "/policy"),
                         ("root", "socksgw-admin", "0o2770"))
        self.assertEqual(mode(STATE + "/policy/policy.db"),
                         ("root", "socksgw-admin", "0o660"))
        self.assertEqual(mode(STATE + "/audit"),
                         ("root", "socksgw-auditors", "0o2750"))
        self.assertEqual(mode(STATE + "/audit/audit.db"),
                         ("root", "socksgw-auditors", "0o640"))
        self.assertEqual(mode(STATE + "/audit/audit.key")[2], "0o600")
        self.assertEqual(mode(STATE + "/geoip"), ("root", "root", "0o755"))
        self.assertEqual(mode("/run/socksgw/control.sock"),
                         ("root", "socksgw-admin", "0o660"))
        # Who may do what, through socksctl.
        r = self.as_user("sgwt-auditor", "rule", "add", "deny", "--port", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Permission denied", r.stderr)
        self.assertEqual(self.as_user("sgwt-auditor", "sessions")
                         .returncode, 1)
        self.assertEqual(self.as_user("sgwt-admin", "sessions").returncode, 0)
        r = self.as_user("sgwt-admin", "audit", "list")
        self.assertEqual(r.returncode, 1)
        for argv in (["rule", "list"], ["audit", "list"], ["sessions"]):
            self.assertEqual(self.as_user("sgwt-other", *argv).returncode, 1,
                             argv)
        # The processes: the proxy and auditd under their own accounts.
        children = {}
        for line in run(["ps", "-o", "uid=,comm=", "--ppid",
                         str(self._gw.pid)]).stdout.splitlines():
            uid, comm = line.split()
            children[comm] = int(uid)
        self.assertEqual(children, {
            "socksgw-proxy": pwd.getpwnam("socksgw").pw_uid,
            "socksgw-auditd": pwd.getpwnam("socksgw-audit").pw_uid})

    def reload_as_the_unit_does(self, gw):
        for cmd in self.unit["ExecReload"]:
            run(self.confine + self.expand(cmd, gw.pid), env=self.env)
        self.notify.wait("RELOADING=1")
        self.notify.wait("READY=1")
        with open(os.path.join(self.tmp, "gatewayd.log")) as f:
            log = f.read()
        self.assertIn("configuration reloaded", log)
        self.assertNotIn("error", log)

    def stop(self, gw):
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait(timeout=60), 0)
        self.notify.wait("STOPPING=1", timeout=5)
        self.notify.close()
        self.log.close()

    def upgrade(self):
        # The audit log as an older build left it: its last five
        # migrations undone (one adds an index, one drops one, one lets
        # protocol be 'http', one adds auth_method, one node). The upgrade must redo
        # them, and keep every record, the rule, and the admin's change to
        # the conffile.
        import sqlite3
        db = sqlite3.connect(STATE + "/audit/audit.db")
        records = db.execute("SELECT count(*) FROM records").fetchone()[0]
        db.execute("DROP INDEX records_open")
        db.execute("CREATE INDEX records_by_user ON records(user, start_ms) "
                   "WHERE user IS NOT NULL")
        db.execute("PRAGMA writable_schema = ON")
        db.execute("UPDATE sqlite_master SET sql = replace(sql, "
                   "', ''http''', '') WHERE name = 'records'")
        db.execute("PRAGMA writable_schema = RESET")
        db.execute("ALTER TABLE records DROP COLUMN auth_method")
        db.execute("ALTER TABLE records DROP COLUMN node")
        db.execute("PRAGMA user_version = 4")
        db.commit()
        db.close()
        with open(CONF, "a") as f:
            f.write("# changed by the admin\n")
        run(["apt-get", "install", "-y", "-q", "-o",
             "Dpkg::Options::=--force-confold", self.debs["new"]],
            env=apt_env())
        self.assertEqual(installed_version(), self.new_version)
        db = sqlite3.connect(STATE + "/audit/audit.db")
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 9)
        self.assertEqual(db.execute("SELECT count(*) FROM records WHERE "
                                    "auth_method IS NOT NULL")
                         .fetchone()[0], 0)
        self.assertIn("'socks4', 'http'", db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'records'")
            .fetchone()[0])
        self.assertEqual(db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = "
            "'records_open'").fetchone()[0], 1)
        self.assertEqual(db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = "
            "'records_by_user'").fetchone()[0], 0)
        self.assertEqual(db.execute("SELECT count(*) FROM records")
                         .fetchone()[0], records)
        db.close()
        self.assertEqual(len(run(["socksctl", "--json", "rule", "list"])
                             .stdout.split('"id"')) - 1, 1)
        with open(CONF) as f:
            self.assertIn("# changed by the admin", f.read())

    def remove_and_purge(self):
        run(["apt-get", "remove", "-y", "-q", "socksgw"], env=apt_env())
        self.assertFalse(os.path.exists("/usr/sbin/gatewayd"))
        self.assertTrue(os.path.exists(STATE + "/audit/audit.db"))
        self.assertTrue(os.path.exists(STATE + "/policy/policy.db"))
        self.assertTrue(os.path.exists(CONF))
        run(["dpkg", "--purge", "socksgw"])
        self.assertFalse(os.path.exists(STATE))
        self.assertFalse(os.path.exists(CONF))
        self.assertIsNone(installed_version())


if __name__ == "__main__":
    unittest.main(verbosity=2)
