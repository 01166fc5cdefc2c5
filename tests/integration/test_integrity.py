"""Enforcement integrity (issue 12): the gateway fails closed and a hostile
client finds no way around the policy or the evidence. Each test names
what it did on the main before the fix."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, TempDir, recv_exact,
                    socks_open, socks_request, wait_for)
from test_pam import PamTestCase


def authd_pid(gw):
    with open("/proc/%d/task/%d/children" % (gw.proc.pid, gw.proc.pid)) as f:
        children = [int(x) for x in f.read().split()]
    assert len(children) == 1, children
    return children[0]


def stats(gw):
    return json.loads(gw.ctl("--json", "stats").stdout)


class AuthdGoneTest(PamTestCase):
    gateway_extra = "auth pam\ncontrol_socket control.sock\n"

    def test_no_authentication_is_never_offered(self):
        # Old main: with authd dead, a client offering only 0x00 got
        # "05 00" and was relayed as an anonymous user.
        port = self.tcp_server(EchoHandler)
        pid = authd_pid(self.gw)
        os.kill(pid, signal.SIGKILL)
        self.gw.wait_log("authd is gone")
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\xff")
        s.close()
        # Offering both, username/password is chosen, and every login is
        # refused, the right password too.
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x02\x00\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s.sendall(b"\x01\x05alice\x06secret" +
                  socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 2), b"\x01\x01")
        self.assertEqual(s.recv(16), b"")
        s.close()
        for _ in range(3):
            status, c = self.login("alice", "secret")
            self.assertEqual(status, 1)
            c.close()
        # Said loudly once, counted every time.
        wait_for(lambda: stats(self.gw).get("auth_authd_down", 0) >= 4,
                 timeout=5, what="auth_authd_down to count 4 refusals")
        self.assertEqual(self.gw.log().count("authd is gone"), 1)
        self.assertRegex(self.gw.log(), r"error: authd is gone")


class EscapingPamTest(PamTestCase):
    gateway_extra = ("auth pam\ncontrol_socket control.sock\n")

    def setUp(self):
        self.syslog_path = None
        super().setUp()

    def start_gateway(self, extra="", **kw):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        self.syslog_path = os.path.join(tmp.path, "log.sock")
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(self.syslog_path)
        os.chmod(self.syslog_path, 0o666)
        self.addCleanup(self.syslog.close)
        extra += ("audit_syslog yes\naudit_syslog_pen 64999\n"
                  "audit_syslog_socket %s\n" % self.syslog_path)
        return super().start_gateway(extra, **kw)

    def failed_login(self, user):
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s.sendall(bytes([1, len(user)]) + user + b"\x04nope")
        self.assertEqual(recv_exact(s, 2), b"\x01\x01")
        s.close()

    def test_log_lines_cannot_be_forged(self):
        # Old main: the \n started a whole forged "session closed" line.
        forged = (b"x\n2026-01-01T00:00:00.000Z gatewayd: info: session 7 "
                  b"closed: user=admin")
        self.failed_login(forged)
        self.gw.wait_log("auth: client")
        for line in self.gw.log().splitlines():
            self.assertFalse(line.startswith("2026-01-01T00:00:00.000Z"),
                             line)
        self.assertIn("user x\\n2026-01-01T00:00:00.000Z", self.gw.log())

    def test_syslog_structured_data_cannot_be_forged(self):
        # Old main: the name closed the SD element and forged verdict.
        evil = b'ev"il\\] verdict="allow"]'
        self.failed_login(evil)
        self.syslog.settimeout(5)
        line = self.syslog.recv(8192).decode()
        m = re.match(r'^<\d+>1 \S+ \S+ gatewayd \d+ auth (\[socksgw@64999 '
                     r'(?:[a-z]+="(?:[^"\\\]]|\\["\\\]])*" ?)+\])', line)
        self.assertIsNotNone(m, line)
        params = dict(re.findall(r'([a-z]+)="((?:[^"\\\]]|\\["\\\]])*)"',
                                 m.group(1)))
        self.assertEqual(params["verdict"], "deny")
        self.assertEqual(re.sub(r'\\(["\\\]])', r"\1", params["user"]),
                         evil.decode())

    def test_terminal_json_and_csv_output(self):
        # Old main: ESC reached the admin's terminal, --json printed the
        # invalid UTF-8 as it came.
        self.failed_login(b"\x1b]0;pwned\x07\x1b[2J")
        self.failed_login(b"bad\xff\xfeutf8")
        self.failed_login(b"=HYPERLINK(1)")
        wait_for(lambda: self.count_auth() == 3, timeout=5,
                 what="3 auth records")
        out = subprocess.run([self.gw_socksctl(), "-c", self.gw.conf,
                              "audit", "list"], capture_output=True,
                             timeout=30).stdout
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        self.assertIn(b"\\x1b]0;pwned\\x07", out)
        out = subprocess.run([self.gw_socksctl(), "-c", self.gw.conf,
                              "--json", "audit", "list"],
                             capture_output=True, timeout=30).stdout
        users = sorted(r["user"] for r in json.loads(out.decode("utf-8")))
        self.assertIn("bad\ufffd\ufffdutf8", users)
        self.assertIn("\x1b]0;pwned\x07\x1b[2J", users)
        out = subprocess.run([self.gw_socksctl(), "-c", self.gw.conf,
                              "audit", "report", "users", "--since", "-1h",
                              "--format", "csv"], capture_output=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        for line in out.stdout.decode("utf-8").splitlines()[1:]:
            self.assertNotRegex(line, r"^[=+\-@]", line)
        self.assertIn("\"'=HYPERLINK(1)\"", out.stdout.decode())

    def count_auth(self):
        import sqlite3
        con = sqlite3.connect(os.path.join(self.gw.tmp.path, "audit.db"))
        try:
            return con.execute("SELECT count(*) FROM records WHERE "
                               "kind = 'auth' AND seq IS NOT NULL"
                               ).fetchone()[0]
        finally:
            con.close()

    def gw_socksctl(self):
        from gwtest import SOCKSCTL
        return SOCKSCTL


class ConfigurationTest(GatewayTestCase):
    def check(self, text):
        tmp = self.tmp.subdir()
        conf = tmp.write("gatewayd.conf", text)
        from gwtest import GATEWAYD
        return subprocess.run([GATEWAYD, "-n", "-c", conf],
                              capture_output=True, text=True, timeout=30)

    def test_size_overflow_is_an_error(self):
        # Old main: 17592186044417M wrapped around to 1M and was taken.
        r = self.check("relay_buffer 17592186044417M\n")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"gatewayd.conf:1: relay_buffer "
                         r"17592186044417M: expected a size")
        self.assertEqual(self.check("relay_buffer 1M\n").returncode, 0)

    def test_syslog_needs_an_enterprise_number(self):
        # Old main: every record claimed socksgw@32473 (documentation).
        r = self.check("# audit\naudit_syslog yes\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("gatewayd.conf:2: audit_syslog yes needs "
                      "audit_syslog_pen", r.stderr)
        r = self.check("audit_syslog yes\naudit_syslog_pen 64999\n")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
