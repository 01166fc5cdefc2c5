"""Enforcement integrity (issue 12): the gateway fails closed and a hostile
client finds no way around the policy or the evidence. Each test names
what it did on the main before the fix."""
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, TempDir, recv_exact,
                    read_reply, socks_open, socks_request, wait_for)
from test_pam import PamTestCase
from test_protocols import udp_echo, udp_header

# "The internet": documentation addresses on the loopback interface of a
# network namespace of this test's own, so that a destination can be an
# ordinary one (no special range, not the gateway's own) while nothing
# leaves the machine.
INTERNET = ("192.0.2.1", "198.51.100.1", "203.0.113.1")
# Clients: two in one /64, one in the next.
IPV6_CLIENTS = ("2001:db8:1:2::10", "2001:db8:1:2::11", "2001:db8:1:3::10")


def setUpModule():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() != 0 or libc.unshare(0x40000000) != 0:   # CLONE_NEWNET
        raise unittest.SkipTest("needs root to make a network namespace")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for a in INTERNET:
        subprocess.run(["ip", "addr", "add", a + "/32", "dev", "lo"],
                       check=True)
    for a in IPV6_CLIENTS:
        subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo",
                        "nodad"], check=True)


def authd_pid(gw):
    return gw.authd_pid


def stats(gw):
    return json.loads(gw.ctl("--json", "stats").stdout)


class AuthdGoneTest(PamTestCase):
    gateway_extra = "auth pam\ncontrol_socket control.sock\n"

    def test_no_authentication_is_never_offered(self):
        # Old main: with authd dead, a client offering only 0x00 got
        # "05 00" and was relayed as an anonymous user.
        port = self.tcp_server(EchoHandler)
        pid = authd_pid(self.gw)
        # The parent would start authd again at once: held still, it
        # cannot, and the gateway is without authd for as long as this
        # test needs.
        os.kill(self.gw.proc.pid, signal.SIGSTOP)
        self.addCleanup(os.kill, self.gw.proc.pid, signal.SIGCONT)
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
        # Let go, the parent starts authd again: logins work within 2 s.
        os.kill(self.gw.proc.pid, signal.SIGCONT)
        t0 = time.monotonic()
        self.gw.wait_log("authd is back", timeout=5)
        status, c = self.login("alice", "secret")
        self.assertEqual(status, 0)
        c.close()
        self.assertLess(time.monotonic() - t0, 2.0)


PAM_CANON = os.environ.get("PAM_CANON", "build/tests/helpers/pam_canon.so")


class CanonicalUserTest(PamTestCase):
    gateway_extra = "auth pam\npam_service socksgw-canon\n"

    def make_pam(self):
        path = super().make_pam()
        from test_pam import MATRIX
        passdb = os.path.join(path, "passdb-canon")
        with open(passdb, "w") as f:
            f.write("alice:secret:socksgw-canon\nbob:hunter2:socksgw-canon\n")
        with open(os.path.join(path, "socksgw-canon"), "w") as f:
            f.write("auth required %s\nauth required %s passdb=%s\n"
                    "account required %s passdb=%s\n"
                    % (os.path.abspath(PAM_CANON), MATRIX, passdb, MATRIX,
                       passdb))
        return path

    def start_gateway(self, extra="", **kw):
        kw.setdefault("rules", ())
        gw = super().start_gateway(extra, **kw)
        gw.ctl("user", "add", "alice")
        gw.ctl("rule", "add", "deny", "--user", "alice")
        gw.ctl("rule", "add", "allow", "--dst", "127.0.0.0/8")
        gw.wait_log("policy: 2 rules in force")
        return gw

    def test_policy_sees_the_name_pam_ended_with(self):
        # Old main: "ALICE" logged in (PAM lowered it) and escaped the
        # rule for alice: the policy saw the name as sent.
        port = self.tcp_server(EchoHandler)
        status, s = self.login("ALICE", "secret")
        self.assertEqual(status, 0)
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 10)[1], 2)
        s.close()
        status, s = self.login("Bob", "hunter2")
        self.assertEqual(status, 0)
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 10)[1], 0)
        s.close()
        wait_for(lambda: len(self.gw.audit("seq IS NOT NULL")) == 2,
                 timeout=5, what="2 records")
        self.assertEqual([r["user"] for r in self.gw.audit()],
                         ["alice", "bob"])
        self.gw.wait_log("user=bob client=")
        self.assertNotIn("user=Bob", self.gw.log())


class LockoutTest(PamTestCase):
    gateway_extra = "auth pam\nauth_fail_limit 3\nauth_lockout 60\n"

    def login_from(self, source, user, password, gw=None):
        gw = gw or self.gw
        v6 = ":" in source
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET,
                          socket.SOCK_STREAM)
        s.settimeout(20)
        s.bind((source, 0))
        s.connect(("::1", gw.port) if v6 else gw.addr)
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        u, p = user.encode(), password.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        status = recv_exact(s, 2)[1]
        s.close()
        return status

    def test_one_nat_address_is_not_locked_out_for_everyone(self):
        # Old main: three typos from one address locked everyone behind
        # it out; a user was locked out from everywhere.
        for _ in range(3):
            self.assertEqual(self.login_from("127.0.0.1", "bob", "x"), 1)
        self.assertEqual(self.login_from("127.0.0.1", "bob", "hunter2"), 1)
        self.assertEqual(self.login_from("127.0.0.1", "alice", "secret"), 0)
        self.assertEqual(self.login_from("127.0.0.2", "bob", "hunter2"), 0)
        wait_for(lambda: self.gw.audit("reason LIKE 'locked out%'"),
                 timeout=5, what="the locked-out record")
        rows = self.gw.audit("kind = 'auth'")
        self.assertEqual([r["reason"].split(":")[0] for r in rows],
                         ["authentication failed"] * 3 + ["locked out"])


    def test_ipv6_client_is_its_prefix(self):
        # Old main: every IPv6 address was a client of its own (and the
        # first version of this fix still keyed "[addr]" by /128).
        from gwtest import free_port
        port = free_port(socket.AF_INET6)
        gw = self.start_gateway(self.gateway_extra,
                                listen=["[::1]:%d" % port])
        gw.port = port
        a, b, c = IPV6_CLIENTS
        for _ in range(3):
            self.assertEqual(self.login_from(a, "bob", "x", gw), 1)
        self.assertEqual(self.login_from(b, "bob", "hunter2", gw), 1)
        self.assertEqual(self.login_from(c, "bob", "hunter2", gw), 0)
        gw.wait_log("user bob: locked out")


class StarvationTest(PamTestCase):
    gateway_extra = ("auth pam\npam_service socksgw-slow\nauth_workers 8\n"
                     "handshake_timeout 60\n")

    def test_failing_clients_cannot_starve_a_clean_one(self):
        # Old main: PAM threads took logins in arrival order, so 40 bad
        # logins pending made a good one wait about five round trips.
        import threading
        sources = ["127.0.1.%d" % i for i in range(1, 41)]
        login = LockoutTest.login_from

        def bad(src, results):
            results.append(login(self, src, "nobody-" + src, "wrong"))
        # A first round gives these clients their record.
        for rnd in range(2):
            results = []
            threads = [threading.Thread(target=bad, args=(src, results))
                       for src in sources]
            for t in threads:
                t.start()
            if rnd == 0:
                for t in threads:
                    t.join(timeout=60)
                self.assertEqual(results, [1] * 40)
        # 40 bad logins pending now; a clean client comes.
        time.sleep(0.5)
        t0 = time.monotonic()
        self.assertEqual(login(self, "127.0.2.1", "dave", "quick"), 0,
                         "gatewayd log:\n" + self.gw.log()[-6000:])
        took = time.monotonic() - t0
        for t in threads:
            t.join(timeout=60)
        print("\nclean login answered in %.2f s behind 40 failing ones"
              % took)
        # Two PAM round trips of 2 s, and some room.
        self.assertLess(took, 4.8)


def memory_holds(pid, needle):
    """Whether any readable mapping of pid holds needle (as root)."""
    with open("/proc/%d/maps" % pid) as maps:
        regions = [l.split() for l in maps]
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for r in regions:
            lo, hi = (int(x, 16) for x in r[0].split("-"))
            if not r[1].startswith("r") or len(r) > 5 and \
                    r[5].startswith("[v"):
                continue
            try:
                mem.seek(lo)
                if needle in mem.read(hi - lo):
                    return True
            except (OSError, OverflowError, ValueError):
                continue
    return False


class PasswordWipeTest(PamTestCase):
    @unittest.skipUnless(os.geteuid() == 0, "reads another process's memory")
    def test_a_cut_short_password_does_not_outlive_the_session(self):
        # Old main: the bytes of an RFC 1929 message cut short stayed in
        # freed memory after the close.
        secret = b"Zq7-" + os.urandom(6).hex().encode() + b"-kept"
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        s.sendall(b"\x01\x05alice\x40" + secret)    # 64 announced
        time.sleep(0.3)
        s.close()
        self.gw.wait_log("client closed during handshake")
        self.assertFalse(memory_holds(self.gw.proxy_pid, secret))


class EscapingPamTest(PamTestCase):
    gateway_extra = ("auth pam\ncontrol_socket control.sock\n")

    def setUp(self):
        self.syslog_path = None
        super().setUp()

    def start_gateway(self, extra="", **kw):
        tmp = TempDir(self.tmp_parent)
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


class UdpJudgedAloneTest(GatewayTestCase):
    dns_entries = ("a.allowed.example=192.0.2.1",
                   "slow:c.neutral.example=198.51.100.1")

    def start_gateway(self, extra="", **kw):
        kw.setdefault("rules", (
            ("allow", "--cmd", "udp", "--dst", "*.allowed.example"),
            # An address rule: names it cannot deny are looked up.
            ("deny", "--cmd", "udp", "--dst", "10.0.0.0/8")))
        return super().start_gateway(extra, **kw)

    def associate(self):
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
        rep, _, port = read_reply(s)
        self.assertEqual(rep, 0)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        self.addCleanup(u.close)
        return s, u, port

    def echoed(self, u, rport, dst, port, data):
        u.sendto(udp_header(dst, port) + data, ("127.0.0.1", rport))
        try:
            got = u.recv(4096)
        except socket.timeout:
            return False
        return got.endswith(data)

    def record(self):
        wait_for(lambda: self.gw.audit("command = 'udp' AND seq IS NOT "
                                       "NULL"), timeout=5,
                 what="the UDP record")
        return self.gw.audit("command = 'udp'")[0]

    def test_an_allowed_name_opens_no_other_address(self):
        # Old main: after one datagram to a.allowed.example, every bare
        # address was judged with that name, and allowed.
        p1 = udp_echo(self, host=INTERNET[0])
        p2 = udp_echo(self, host=INTERNET[1])
        ctl, u, rport = self.associate()
        self.assertTrue(self.echoed(u, rport, "a.allowed.example", p1, b"1"))
        self.assertFalse(self.echoed(u, rport, INTERNET[1], p2, b"2"))
        self.assertFalse(self.echoed(u, rport, INTERNET[0], p1, b"3"))
        self.assertTrue(self.echoed(u, rport, "a.allowed.example", p1, b"4"))
        ctl.close()
        rec = self.record()
        self.assertEqual((rec["verdict"], rec["rule_id"]), ("allow", 1))
        self.assertEqual((rec["udp_destinations"], rec["udp_denied"],
                          rec["packets_up"]), (1, 2, 2))

    def test_a_name_in_flight_is_judged_with_its_own_name(self):
        # Old main: c.neutral.example's answer came after a datagram to
        # a.allowed.example and was judged with that name: allowed.
        p1 = udp_echo(self, host=INTERNET[0])
        p2 = udp_echo(self, host=INTERNET[1])
        ctl, u, rport = self.associate()
        u.sendto(udp_header("c.neutral.example", p2) + b"slow",
                 ("127.0.0.1", rport))
        self.assertTrue(self.echoed(u, rport, "a.allowed.example", p1, b"x"))
        u.settimeout(2.5)
        with self.assertRaises(socket.timeout):
            u.recv(4096)
        ctl.close()
        rec = self.record()
        self.assertEqual((rec["udp_destinations"], rec["udp_denied"]), (1, 1))
        self.assertEqual(rec["dst_host"], "a.allowed.example")

    def test_client_address_must_be_the_clients_own(self):
        # Old main: any host named in the request could send into the
        # association.
        for claim in (b"\x01" + socket.inet_aton(INTERNET[2]),
                      b"\x03\x0ball.example"):
            s = socket.create_connection(self.gw.addr, timeout=10)
            s.sendall(b"\x05\x01\x00")
            recv_exact(s, 2)
            s.sendall(b"\x05\x03\x00" + claim + b"\x00\x35")
            self.assertEqual(read_reply(s)[0], 2)
            s.close()
        for claim in ("0.0.0.0", "127.0.0.1"):
            s = socket.create_connection(self.gw.addr, timeout=10)
            s.sendall(b"\x05\x01\x00")
            recv_exact(s, 2)
            s.sendall(b"\x05\x03\x00\x01" + socket.inet_aton(claim) +
                      b"\x00\x00")
            self.assertEqual(read_reply(s)[0], 0)
            s.close()
        wait_for(lambda: len(self.gw.audit("command = 'udp' AND seq IS NOT "
                                           "NULL")) == 4, timeout=5,
                 what="4 UDP records")
        # In the order they were written, which is not the order they
        # were asked in: a refusal is recorded when its client has gone,
        # an association when it starts (CI under ASan: deny, allow, deny).
        recs = self.gw.audit("command = 'udp'")
        self.assertEqual(sorted(r["verdict"] for r in recs),
                         ["allow", "allow", "deny", "deny"])
        for r in recs:
            if r["verdict"] == "deny":
                self.assertIn("client address", r["reason"])


class UdpAdmissionTest(GatewayTestCase):
    def start_gateway(self, extra="", **kw):
        kw.setdefault("rules", (("allow", "--cmd", "connect"),))
        return super().start_gateway(extra, **kw)

    def test_an_association_no_rule_could_use_is_refused(self):
        # Old main (and the first version of this fix): granted without
        # asking the policy, audited as allow.
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(b"\x05\x03\x00\x01" + bytes(6))
        self.assertEqual(read_reply(s)[0], 2)
        s.close()
        wait_for(lambda: self.gw.audit("command = 'udp' AND seq IS NOT NULL"),
                 timeout=5, what="the UDP record")
        rec = self.gw.audit("command = 'udp'")[0]
        self.assertEqual((rec["verdict"], rec["rule_id"]), ("deny", 0))
        self.assertIn("no rule could allow it", rec["reason"])


class ExactNameTest(GatewayTestCase):
    dns_entries = ("intranet.blocked.example=192.0.2.1",
                   "a.blocked.example=192.0.2.1", "www.ok.example=192.0.2.1")

    def start_gateway(self, extra="", **kw):
        kw.setdefault("resolv_extra", "search blocked.example\n"
                      "options ndots:5\n")
        kw.setdefault("rules", (
            ("deny", "--dst", "*.blocked.example"),
            ("allow", "--dst", "intranet", "--dst", "www.ok.example",
             "--dst", "192.0.2.0/24")))
        return super().start_gateway(extra, **kw)

    def test_no_search_list(self):
        # Old main: "intranet" was judged, then "intranet.blocked.example"
        # resolved (resolv.conf's search list) and connected to.
        port = self.tcp_server(EchoHandler, host=INTERNET[0])
        s, rep, _, _ = socks_open(self.gw.addr, "www.ok.example", port)
        self.assertEqual(rep, 0)
        s.close()
        s, rep, _, _ = socks_open(self.gw.addr, "intranet", port)
        self.assertEqual(rep, 4)
        s.close()
        self.assertNotIn("blocked.example", self.dns.queries())

    def test_two_trailing_dots_are_malformed(self):
        # Old main: "a.blocked.example.." passed the rule for
        # *.blocked.example and was resolved.
        port = self.tcp_server(EchoHandler, host=INTERNET[0])
        s, rep, _, _ = socks_open(self.gw.addr, "a.blocked.example.", port)
        self.assertEqual(rep, 2)
        s.close()
        for name in ("a.blocked.example..", "a..blocked.example"):
            s, rep, _, _ = socks_open(self.gw.addr, name, port)
            self.assertEqual(rep, 1)
            s.close()
        self.assertNotIn("blocked.example", self.dns.queries())


class ExhaustionTest(GatewayTestCase):
    def setUp(self):
        from gwtest import free_port
        self.metrics_port = free_port()
        self.gateway_extra = ("control_socket ctl.sock\nmax_sessions 96\n"
                              "metrics_listen 127.0.0.1:%d\n"
                              % self.metrics_port)
        super().setUp()

    def test_silent_sockets_cannot_fill_max_sessions(self):
        # Old main: 100 sockets that said nothing filled max_sessions 96
        # and every other client was refused.
        port = self.tcp_server(EchoHandler)
        silent = []
        for _ in range(100):
            c = socket.socket()
            c.settimeout(5)
            c.connect(self.gw.addr)
            silent.append(c)
        self.addCleanup(lambda: [c.close() for c in silent])
        # The kernel hands a connection that says nothing over about a
        # second after it came (TCP_DEFER_ACCEPT); then an eighth of
        # max_sessions stay open and the rest are closed at once.
        waiting, closed = set(silent), 0
        deadline = time.monotonic() + 8
        while closed < 100 - 12 and time.monotonic() < deadline:
            for c in select.select(list(waiting), [], [], 0.5)[0]:
                self.assertEqual(c.recv(1), b"")
                waiting.discard(c)
                closed += 1
        self.assertEqual(closed, 100 - 12)
        self.assertEqual(select.select(list(waiting), [], [], 0.5)[0], [])
        self.assert_another_client_served(port)
        self.assertGreaterEqual(stats(self.gw)["limit_handshakes"], 88)

    def assert_another_client_served(self, port):
        """A client from another address still gets through."""
        s = socket.socket()
        s.settimeout(10)
        s.bind(("127.0.0.2", 0))
        s.connect(self.gw.addr)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(read_reply(s)[0], 0)
        s.close()

    def test_metrics_cannot_hurt_socks_service(self):
        # Old main: one endless header line took 90 MB and a CPU; 250 idle
        # connections used up the descriptors.
        port = self.tcp_server(EchoHandler)
        m = socket.create_connection(("127.0.0.1", self.metrics_port),
                                     timeout=10)
        m.sendall(b"GET /metrics HTTP/1.1\r\nX-Long: ")
        try:
            for _ in range(200):
                m.sendall(b"a" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        head = m.recv(4096)
        self.assertTrue(head.startswith(b"HTTP/1.1 431"), head)
        m.close()
        idle = []
        for _ in range(250):
            c = socket.socket()
            c.settimeout(5)
            c.connect(("127.0.0.1", self.metrics_port))
            idle.append(c)
        self.addCleanup(lambda: [c.close() for c in idle])
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        s.close()
        for c in idle:
            c.close()
        def scrape():
            r = subprocess.run(["curl", "-sS", "--max-time", "5",
                                "http://127.0.0.1:%d/metrics"
                                % self.metrics_port],
                               capture_output=True, text=True, timeout=10)
            return r.returncode == 0 and "socksgw_metrics_refused_total" \
                in r.stdout and r.stdout
        text = wait_for(scrape, timeout=10, what="metrics to answer")
        refused = int(re.search(r"^socksgw_metrics_refused_total (\d+)",
                                text, re.M).group(1))
        # At most 16 are served at once (a few more as the first time out).
        self.assertGreaterEqual(refused, 200)

    def test_metrics_trickle_cannot_hold_a_slot(self):
        # The first version of this fix timed out idle time only: a byte
        # every 3 s held a slot for hours.
        m = socket.create_connection(("127.0.0.1", self.metrics_port),
                                     timeout=20)
        t0 = time.monotonic()
        closed = False
        for _ in range(6):
            try:
                m.sendall(b"G")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(1.5)
        if not closed:
            self.assertEqual(m.recv(100), b"")
        self.assertLess(time.monotonic() - t0, 8)
        m.close()

    def test_silent_udp_associations_cannot_fill_max_sessions(self):
        # The first version of this fix let a socket go once its request
        # was in: UDP associations without a datagram filled it.
        port = self.tcp_server(EchoHandler)
        held = []
        for _ in range(40):
            c = socket.create_connection(self.gw.addr, timeout=5)
            c.sendall(b"\x05\x01\x00\x05\x03\x00\x01" + bytes(6))
            held.append(c)
        self.addCleanup(lambda: [c.close() for c in held])
        granted = 0
        for c in held:
            try:
                granted += recv_exact(c, 2) == b"\x05\x00" and \
                    read_reply(c)[0] == 0
            except (EOFError, OSError):
                pass
        self.assertEqual(granted, 12)
        self.assert_another_client_served(port)

    def test_metrics_allow(self):
        gw = self.start_gateway("metrics_listen 127.0.0.1:%d\n"
                                "metrics_allow 10.0.0.0/8 ::1\n"
                                % self.free_metrics())
        r = subprocess.run(["curl", "-sS", "--max-time", "5",
                            "http://127.0.0.1:%d/metrics" % self.other],
                           capture_output=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")
        # Without metrics_allow, only this machine may scrape.
        gw = self.start_gateway("metrics_listen 192.0.2.1:%d\n"
                                % self.free_metrics())
        for src, ok in (("127.0.0.1", True), ("198.51.100.1", False)):
            r = subprocess.run(["curl", "-sS", "--max-time", "5",
                                "--interface", src,
                                "http://192.0.2.1:%d/metrics" % self.other],
                               capture_output=True, timeout=10)
            self.assertEqual(r.returncode == 0, ok, (src, r.stderr))

    def free_metrics(self):
        from gwtest import free_port
        self.other = free_port()
        return self.other

    def control(self, line, wait=True):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(10)
        c.connect(os.path.join(self.gw.tmp.path, "ctl.sock"))
        if line:
            c.sendall(line)
        if not wait:
            return c
        out = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            out += chunk
        c.close()
        return json.loads(out)

    def test_control_is_strict_and_bounded(self):
        # Old main: "kill abc" and "kill 0" killed every session; partial
        # lines and idle clients were held for good.
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        for line, error in ((b"kill abc", "decimal"),
                            (b"kill 0", "names no session"),
                            (b"kill -1", "decimal"),
                            (b"kill 1 2", "one argument"),
                            (b"kill 99999999999999999999", "decimal"),
                            (b"kill", "needs a session id"),
                            (b"kill-user", "needs a user name"),
                            (b"stats now", "no argument"),
                            (b"frobnicate", "unknown request")):
            answer = self.control(b"SOCKSGW/1 " + line + b"\n")
            self.assertIn(error, answer.get("error", ""), line)
        self.assertEqual(len(self.control(b"SOCKSGW/1 sessions\n")
                             ["sessions"]), 1)
        s.sendall(b"still here")
        self.assertEqual(recv_exact(s, 10), b"still here")
        s.close()
        # A partial line times out; clients are bounded.
        partial = self.control(b"SOCKSGW/1 sta", wait=False)
        t0 = time.monotonic()
        self.assertEqual(partial.recv(100), b"")
        self.assertLess(time.monotonic() - t0, 8)
        idle = []
        for _ in range(20):
            idle.append(self.control(b"", wait=False))
            time.sleep(0.05)    # the listen backlog is 16
        time.sleep(0.3)
        closed = 0
        for c in idle:
            c.settimeout(0.2)
            try:
                closed += c.recv(1) == b""
            except socket.timeout:
                pass
            c.close()
        self.assertEqual(closed, 20 - 16)


class TruthfulRecordsTest(GatewayTestCase):
    gateway_extra = "control_socket ctl.sock\n"

    def test_records_say_what_happened_and_stats_agree(self):
        # Old main: a client that left while its name was being looked up
        # was recorded as denied by the rule that allowed the name.
        self.gw.ctl("rule", "add", "allow", "--dst", "*.test.example",
                    "--position", "1")
        self.gw.wait_log("policy: 2 rules in force")
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "www.test.example", port)
        self.assertEqual(rep, 0)
        s.close()
        s, rep, _, _ = socks_open(self.gw.addr, "192.0.2.9", 80)
        self.assertEqual(rep, 2)
        s.close()
        s, rep, _, _ = socks_open(self.gw.addr, "nx.test.example", 80)
        self.assertEqual(rep, 4)
        s.close()
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(socks_request("slow.test.example", 80))
        time.sleep(0.5)
        s.close()
        wait_for(lambda: len(self.gw.audit("seq IS NOT NULL")) == 4,
                 timeout=10, what="4 records")
        rows = {r["dst_host"]: r for r in self.gw.audit()}
        gone = rows["slow.test.example"]
        self.assertEqual((gone["verdict"], gone["rule_id"],
                          gone["close_reason"]), ("deny", 0, "client closed"))
        self.assertEqual(rows["nx.test.example"]["rule_id"], 0)
        self.assertEqual(rows["nx.test.example"]["reason"],
                         "DNS: no such name")
        st = stats(self.gw)
        verdicts = [r["verdict"] for r in rows.values()]
        self.assertEqual((st["verdict_allow"], st["verdict_deny"]),
                         (verdicts.count("allow"), verdicts.count("deny")))


class EmbeddedIpv4Test(GatewayTestCase):
    def start_gateway(self, extra="", **kw):
        kw.setdefault("rules", (("deny", "--dst", "10.0.0.0/8"),
                                ("allow", "--port", "443")))
        return super().start_gateway(extra, **kw)

    def test_explain_shows_the_folding(self):
        # Old main: 64:ff9b::a00:1 was allowed by rule 2 (DNS64 reached
        # 10.0.0.1 past "deny --dst 10.0.0.0/8").
        out = json.loads(self.gw.ctl("--json", "explain", "--src",
                                     "192.0.2.5", "--dst",
                                     "[64:ff9b::a00:1]:443").stdout)
        self.assertEqual((out["verdict"], out["rule"]), ("deny", 1))
        self.assertIn("NAT64 carries 10.0.0.1", out["reason"])
        self.assertEqual(out["rules"][0]["result"], "decides")
        # The gateway refuses it too, before any connect.
        s, rep, _, _ = socks_open(self.gw.addr, "64:ff9b::a00:1", 443)
        self.assertEqual(rep, 2)
        s.close()
        # 100.100.100.200 (CGNAT, a metadata service) is special.
        out = json.loads(self.gw.ctl("--json", "explain", "--src",
                                     "192.0.2.5", "--dst",
                                     "100.100.100.200:443").stdout)
        self.assertEqual(out["verdict"], "deny")
        self.assertIn("shared-address", out["reason"])


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

    def test_audit_cache_size_is_bounded(self):
        # Issue 20: the audit writer's cache is configurable, within sense.
        for bad in ("512K", "9G", "8193M", "-1M"):
            r = self.check("audit_db a.db\naudit_cache_size %s\n" % bad)
            self.assertEqual(r.returncode, 1, bad)
            self.assertIn("gatewayd.conf:2: audit_cache_size %s: expected "
                          "a size from 1024K to 8192M" % bad, r.stderr)
        self.assertEqual(self.check("audit_db a.db\naudit_cache_size 256M"
                                    "\n").returncode, 0)

    def test_socks4_cannot_bypass_authentication(self):
        # Old main: with auth pam and socks4 yes, SOCKS4 clients were
        # served without a login by every rule naming no user.
        r = self.check("auth pam\nsocks4 yes\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("gatewayd.conf:2: socks4 yes cannot go with auth pam",
                      r.stderr)

    def test_an_unknown_timezone_is_an_error(self):
        # Issue 16: "Europe/Pariss" was taken, and time windows ran in UTC.
        r = self.check("# zone\ntimezone Europe/Pariss\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("gatewayd.conf:2: timezone Europe/Pariss: no such "
                      "zone", r.stderr)
        for bad in ("../../etc/passwd", "/etc/localtime"):
            self.assertEqual(self.check("timezone %s\n" % bad).returncode,
                             1, bad)
        self.assertEqual(self.check("timezone Europe/Paris\n").returncode,
                         0)

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
