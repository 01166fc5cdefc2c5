"""RFC 1929 username/password checked by the real libpam through
pam_wrapper and pam_matrix (Debian's libpam-wrapper): no system file is
touched. Correct and wrong passwords, unknown and empty users, 255-byte
names, accounts the account stack refuses, lock-out and its cool-down,
curl and python3-socks, users reaching the policy, a slow PAM stack that
does not slow other sessions, and authd keeping root while the proxy
does not."""
import http.server
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

import socks  # Debian's python3-socks

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, recv_until_eof,
                    wait_for,
                    socks_request)
from test_connect import BODY, Hello

LIBDIR = "/usr/lib/x86_64-linux-gnu"
MATRIX = LIBDIR + "/pam_wrapper/pam_matrix.so"
PAM_EXEC = LIBDIR + "/security/pam_exec.so"
LONG_USER = "u" * 255
LONG_PASS = "p" * 255
# pam_wrapper loads libpam with RTLD_DEEPBIND, which the sanitizers cannot
# run (google/sanitizers#611): under ASan these tests are skipped, and run
# in the plain build of the same CI run.
SANITIZED = os.environ.get("SOCKSGW_SANITIZE") == "1"

PASSDB = ("alice:secret:socksgw\nbob:hunter2:socksgw\n"
          "carol:letmein:otherservice\n%s:%s:socksgw\n"
          "slowpoke:zzz:socksgw-slow\ndave:quick:socksgw-slow\n"
          % (LONG_USER, LONG_PASS))


@unittest.skipIf(SANITIZED, "pam_wrapper cannot run under ASan (RTLD_DEEPBIND)")
class PamTestCase(GatewayTestCase):
    gateway_extra = ("auth pam\nauth_fail_limit 3\nauth_fail_window 60\n"
                     "auth_lockout 2\n")
    # As root, each gateway gets a /tmp of its own (gwtest's
    # private_tmp_prefix: pam_wrapper's folders in /tmp are shared by every
    # process), so the test's folders live elsewhere.
    PRIVATE_TMP = os.geteuid() == 0 and shutil.which("unshare") is not None
    tmp_parent = "/var/tmp" if PRIVATE_TMP else None

    def setUp(self):
        self.pamdir = self.make_pam()
        super().setUp()

    def make_pam(self):
        from gwtest import TempDir
        tmp = TempDir(self.tmp_parent)
        self.addCleanup(tmp.cleanup)
        passdb = tmp.write("passdb", PASSDB)
        tmp.write("socksgw", "auth required %s passdb=%s\n"
                  "account required %s passdb=%s\n"
                  % (MATRIX, passdb, MATRIX, passdb))
        tmp.write("socksgw-slow", "auth required %s /bin/sleep 2\n"
                  "auth required %s passdb=%s\n"
                  "account required %s passdb=%s\n"
                  % (PAM_EXEC, MATRIX, passdb, MATRIX, passdb))
        return tmp.path

    def pam_env(self):
        env = {"LD_PRELOAD": "libpam_wrapper.so", "PAM_WRAPPER": "1",
               "PAM_WRAPPER_SERVICE_DIR": self.pamdir}
        # An ASan build must come first in the library list otherwise.
        env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                               ":verify_asan_link_order=0").lstrip(":")
        return env

    def start_gateway(self, extra="", **kw):
        kw.setdefault("env", self.pam_env())
        kw.setdefault("private_tmp", self.PRIVATE_TMP)
        return super().start_gateway(extra, **kw)

    def login(self, user, password, gw=None):
        """RFC 1929 by hand: returns the status byte (None if closed)."""
        gw = gw or self.gw
        s = socket.create_connection(gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(recv_exact(s, 2), b"\x05\x02")
        u, p = user.encode(), password.encode()
        s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        try:
            reply = recv_exact(s, 2)
        except EOFError:
            s.close()
            return None, None
        self.assertEqual(reply[0], 1)
        return reply[1], s


class PamTest(PamTestCase):
    def test_curl_with_proxy_user(self):
        port = self.tcp_server(EchoHandler)
        s = self.open_as("alice", "secret", port)
        s.sendall(b"ping")
        self.assertEqual(recv_exact(s, 4), b"ping")
        s.close()
        hport = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--socks5",
                            "127.0.0.1:%d" % self.gw.port, "--proxy-user",
                            "alice:secret", "http://127.0.0.1:%d/" % hport],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--socks5",
                            "127.0.0.1:%d" % self.gw.port, "--proxy-user",
                            "alice:wrong", "http://127.0.0.1:%d/" % hport],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 97)
        self.gw.wait_log("user=alice client=127.0.0.1")
        self.gw.wait_log("auth: client 127.0.0.1:")
        log = self.gw.log()
        self.assertIn("user alice: authentication failed", log)
        # Passwords never reach the log.
        self.assertNotIn("secret", log)
        self.assertNotIn("wrong", log)

    def open_as(self, user, password, port):
        status, s = self.login(user, password)
        self.assertEqual(status, 0)
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 10)[:2], b"\x05\x00")
        return s

    def test_reload_to_auth_none_keeps_logins(self):
        # auth is restart-only: a reload that says `auth none` must not
        # open the gateway while the log says a restart is needed
        # (review of issue 15: workers read the reloaded value at once).
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "w") as f:
            f.write(text.replace("auth pam\n", "auth none\n"))
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("configuration reloaded")
        self.assertIn("reload: auth take effect only after a restart",
                      self.gw.log())
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\xff")
        s.close()
        status, s = self.login("alice", "secret")
        self.assertEqual(status, 0)
        s.close()
        # auth none with socks4 yes passes `gatewayd -n`, but beside the
        # running auth pam it would let SOCKS4 in with no login at all
        # (second review of issue 15): the reload is refused.
        with open(self.gw.conf, "w") as f:
            f.write(text.replace("auth pam\n", "auth none\nsocks4 yes\n"))
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("socks4 yes cannot go with the running auth")
        port = self.tcp_server(EchoHandler)
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x04\x01" + port.to_bytes(2, "big") +
                  bytes([127, 0, 0, 1]) + b"x\x00")
        reply = recv_until_eof(s)
        s.close()
        self.assertNotEqual(reply[:2], b"\x00\x5a")

    def test_failures(self):
        self.gw = self.start_gateway("auth pam\nauth_fail_limit 100\n")
        for user, password, why in [("alice", "nope", "authentication failed"),
                                    ("mallory", "x", "authentication failed"),
                                    ("", "secret", "empty user name"),
                                    ("alice", "", "empty password"),
                                    ("carol", "letmein", "account refused")]:
            with self.subTest(user=user):
                status, s = self.login(user, password)
                self.assertNotEqual(status, 0)
                self.assertEqual(s.recv(1), b"")
                s.close()
                self.gw.wait_log(why)

    def test_failed_login_is_audited(self):
        status, s = self.login("alice", "nope")
        self.assertEqual(status, 1)
        s.close()
        from gwtest import wait_for
        wait_for(lambda: self.gw.audit("kind = 'auth'"), timeout=5,
                 what="the auth record")
        rec = self.gw.audit("kind = 'auth'")[0]
        self.assertEqual((rec["user"], rec["client_addr"], rec["verdict"]),
                         ("alice", "127.0.0.1", "deny"))
        self.assertTrue(rec["reason"].startswith("authentication failed"),
                        rec["reason"])
        self.assertEqual(rec["close_reason"], "auth failed")
        self.assertEqual(rec["auth_method"], "password")
        self.assertIsNotNone(rec["hash"])
        # A successful login's session names its user.
        port = self.tcp_server(EchoHandler)
        self.open_as("bob", "hunter2", port).close()
        wait_for(lambda: self.gw.audit("user = 'bob'"), timeout=5,
                 what="bob's record")

    def test_longest_user_and_password(self):
        status, s = self.login(LONG_USER, LONG_PASS)
        self.assertEqual(status, 0)
        s.close()

    def test_malformed_auth_request(self):
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x02")
        recv_exact(s, 2)
        s.sendall(b"\x05\x01a\x01b")    # version 5, not 1
        self.assertEqual(recv_exact(s, 2), b"\x01\x01")
        self.assertEqual(s.recv(1), b"")
        s.close()

    def test_only_username_password_is_offered(self):
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\xff")
        s.close()
        c = socks.socksocket()
        c.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port)
        c.settimeout(10)
        with self.assertRaises(socks.ProxyError):
            c.connect(("127.0.0.1", self.tcp_server(EchoHandler)))
        c.close()

    def test_python_socks_with_credentials(self):
        port = self.tcp_server(EchoHandler)
        c = socks.socksocket()
        c.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port,
                    username="bob", password="hunter2")
        c.settimeout(10)
        c.connect(("127.0.0.1", port))
        c.sendall(b"hello")
        self.assertEqual(recv_exact(c, 5), b"hello")
        c.close()
        self.gw.wait_log("user=bob")

    def test_lockout_and_cool_down(self):
        for _ in range(3):
            status, s = self.login("bob", "guess")
            self.assertEqual(status, 1)
            s.close()
        self.gw.wait_log("locked out for 2s")
        # The right password is refused during the lock-out, without PAM.
        status, s = self.login("bob", "hunter2")
        self.assertEqual(status, 1)
        s.close()
        self.gw.wait_log("user bob: locked out")
        time.sleep(2.2)
        status, s = self.login("bob", "hunter2")
        self.assertEqual(status, 0)
        s.close()

    def test_users_reach_the_policy(self):
        gw = self.start_gateway(self.gateway_extra, rules=[])
        gw.ctl("group", "add", "staff")
        gw.ctl("user", "add", "alice", "--group", "staff")
        gw.ctl("rule", "add", "allow", "--user", "@staff", "--dst",
               "127.0.0.0/8")
        gw.wait_log("policy: 1 rules in force")
        port = self.tcp_server(EchoHandler)
        for user, password, rep in [("alice", "secret", 0),
                                    ("bob", "hunter2", 2)]:
            status, s = self.login(user, password, gw)
            self.assertEqual(status, 0)
            s.sendall(socks_request("127.0.0.1", port))
            self.assertEqual(recv_exact(s, 10)[1], rep, user)
            s.close()
        gw.wait_log("user=alice client=")
        # Disabling the user closes nothing here (no session is open),
        # but the next request is denied.
        gw.ctl("user", "disable", "alice")
        gw.wait_log("policy: 1 rules in force", count=2)
        status, s = self.login("alice", "secret", gw)
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 10)[1], 2)
        s.close()
        gw.wait_log("reason=user alice is disabled")

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_authd_keeps_root_the_proxy_does_not(self):
        pid = self.gw.proc.pid
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            children = [int(x) for x in f.read().split()]
        # The parent supervises three children: authd, auditd, the proxy.
        self.assertEqual(sorted(children), sorted([self.gw.authd_pid,
                                                   self.gw.auditd_pid,
                                                   self.gw.proxy_pid]))

        def uid(p):
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        return int(line.split()[1])
        self.assertEqual(uid(self.gw.authd_pid), 0)
        self.assertNotEqual(uid(self.gw.proxy_pid), 0)
        # auditd has an account of its own: the proxy's cannot write the log.
        self.assertEqual(uid(self.gw.auditd_pid),
                         pwd.getpwnam("socksgw-audit").pw_uid)
        self.assertNotEqual(uid(self.gw.auditd_pid), uid(self.gw.proxy_pid))


class SlowPamTest(PamTestCase):
    gateway_extra = "auth pam\npam_service socksgw-slow\n"

    def test_slow_pam_does_not_slow_other_sessions(self):
        port = self.tcp_server(EchoHandler)
        # dave logs in first (2 s of pam_exec sleep), then relays.
        status, s = self.login("dave", "quick")
        self.assertEqual(status, 0)
        s.sendall(socks_request("127.0.0.1", port))
        self.assertEqual(recv_exact(s, 10)[:2], b"\x05\x00")
        result = {}

        def slow_login():
            t0 = time.monotonic()
            result["status"], c = self.login("slowpoke", "zzz")
            result["took"] = time.monotonic() - t0
            c.close()
        t = threading.Thread(target=slow_login)
        t.start()
        time.sleep(0.2)
        # While slowpoke waits on PAM, dave's session keeps relaying.
        t0 = time.monotonic()
        for i in range(200):
            s.sendall(b"%08d" % i)
            self.assertEqual(recv_exact(s, 8), b"%08d" % i)
        relay = time.monotonic() - t0
        self.assertTrue(t.is_alive(), "the slow login did not take long")
        t.join(timeout=20)
        s.close()
        self.assertEqual(result["status"], 0)
        self.assertGreaterEqual(result["took"], 2.0)
        # 200 round trips during a 2 s PAM call: they did not wait for it.
        self.assertLess(relay, 1.5)
        print("\n200 round trips in %.3f s while a login took %.2f s"
              % (relay, result["took"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)

@unittest.skipIf(os.environ.get("SOCKSGW_SANITIZE") == "1",
                 "pam_wrapper cannot run under ASan")
@unittest.skipUnless(PamTestCase.PRIVATE_TMP, "root and unshare: the test's "
                     "accounts are bound over /etc/passwd in a namespace")
class PamCacheTest(PamTestCase):
    """auth_cache_ttl: a login PAM checked is answered from authd's cache,
    with the groups NSS gave then (a cached login asks NSS nothing): a
    deny rule on a group holds for cached logins as for the first."""
    gateway_extra = "auth pam\nauth_cache_ttl 60\nlog_verbose yes\n"

    def pam_env(self):
        env = super().pam_env()
        from gwtest import TempDir
        tmp = TempDir(self.tmp_parent)
        self.addCleanup(tmp.cleanup)
        keep = ("root", "nobody", "nogroup", "socksgw-audit")
        with open("/etc/passwd") as f:
            passwd = "".join(l for l in f if l.split(":")[0] in keep)
        with open("/etc/group") as f:
            group = "".join(l for l in f if l.split(":")[0] in keep)
        env["SOCKSGW_TEST_PASSWD"] = tmp.write(
            "passwd", passwd + "alice:x:1001:1001::/nonexistent:/bin/false\n")
        env["SOCKSGW_TEST_GROUP"] = tmp.write(
            "group", group + "alice:x:1001:\nstudents:x:2001:alice\n")
        return env

    def test_cached_login_keeps_its_groups(self):
        port = self.tcp_server(EchoHandler)
        self.gw.ctl("group", "add", "students")
        self.gw.ctl("rule", "add", "deny", "--user", "@students", "--port",
                    str(port), "--position", "1")
        self.gw.wait_log("policy: 2 rules in force")
        for _ in range(3):
            status, s = self.login("alice", "secret")
            self.assertEqual(status, 0)
            s.sendall(socks_request("127.0.0.1", port))
            self.assertEqual(recv_exact(s, 10)[1], 2)   # not allowed
            s.close()
        # The second and third were answered from the cache.
        wait_for(lambda: self.gw.log().count("(2 groups)") >= 3,
                 timeout=5, what="three logins with their group")


@unittest.skipIf(SANITIZED, "pam_wrapper cannot run under ASan (RTLD_DEEPBIND)")
class ProxyLoginCacheTest(PamTestCase):
    """The proxy's copy of authd's cache (auth_cache.c): a login authd
    answered from its cache is answered again by the proxy, never after a
    refusal, never beyond authd's entry, never across an authd restart."""
    gateway_extra = ("auth pam\nauth_cache_ttl 60\nauth_fail_limit 3\n"
                     "auth_client_fail_limit 6\n"
                     "auth_fail_window 60\nauth_lockout 30\n"
                     "control_socket control.sock\n")

    def cached(self, gw=None):
        stats = json.loads((gw or self.gw).ctl("--json", "stats").stdout)
        return stats["auth_cached"]

    def ok(self, user, password, gw=None, src="127.0.0.1"):
        """RFC 1929 from the address src: the status byte (None: closed)."""
        gw = gw or self.gw
        s = socket.create_connection(gw.addr, timeout=10,
                                     source_address=(src, 0))
        with s:
            s.sendall(b"\x05\x01\x02")
            self.assertEqual(recv_exact(s, 2), b"\x05\x02")
            u, p = user.encode(), password.encode()
            s.sendall(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
            try:
                return recv_exact(s, 2)[1]
            except (EOFError, ConnectionResetError):
                return None

    def test_second_login_is_the_proxys(self):
        self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.cached(), 0)      # authd's (PAM's) answer
        for _ in range(5):
            self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.cached(), 5)
        # Another password for the same user is not the cached one.
        self.assertEqual(self.ok("alice", "Secret"), 1)
        self.assertEqual(self.cached(), 5)

    def test_a_refusal_empties_it(self):
        for _ in range(2):
            self.assertEqual(self.ok("alice", "secret"), 0)
            self.assertEqual(self.ok("bob", "hunter2"), 0)
        self.assertEqual(self.cached(), 2)
        self.assertEqual(self.ok("bob", "wrong"), 1)
        # Neither alice nor bob is answered by the proxy now: authd is
        # asked (and answers from its own cache), then the proxy again.
        self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.ok("bob", "hunter2"), 0)
        self.assertEqual(self.cached(), 2)
        self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.cached(), 3)

    def test_a_lockout_holds_for_a_cached_password(self):
        # Without emptying on refusal, the right password guessed during
        # the lock-out would be let in by the proxy's copy.
        for _ in range(2):
            self.assertEqual(self.ok("bob", "hunter2"), 0)
        for _ in range(3):
            self.assertEqual(self.ok("bob", "guess"), 1)
        self.gw.wait_log("locked out for 30s")
        self.assertEqual(self.ok("bob", "hunter2"), 1)
        self.gw.wait_log("user bob: locked out")
        self.assertEqual(self.cached(), 1)
        # bob logs in from another address, twice: authd's OK, then the
        # proxy's. The locked address is refused all the same (an entry
        # answers only the address authd said OK to).
        self.assertEqual(self.ok("bob", "hunter2", src="127.0.0.2"), 0)
        self.assertEqual(self.ok("bob", "hunter2", src="127.0.0.2"), 0)
        self.assertEqual(self.cached(), 2)
        self.assertEqual(self.ok("bob", "hunter2"), 1)
        self.assertEqual(self.cached(), 2)

    def test_a_client_lockout_holds_for_a_cached_user(self):
        # alice is in the copy at 127.0.0.1; that address then fails for
        # six other names and is locked out as a client. No guess named
        # alice, so only emptying on refusal keeps her cached password
        # from letting the locked address in.
        for _ in range(2):
            self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.cached(), 1)
        for i in range(6):
            self.assertEqual(self.ok("nobody%d" % i, "guess"), 1)
        self.gw.wait_log("client locked out")
        self.assertEqual(self.ok("alice", "secret"), 1)
        self.assertEqual(self.cached(), 1)

    def test_a_new_password_ends_the_old_ones_entries(self):
        # bob's password is changed; his login with the new one (PAM's)
        # replaces authd's entry, and must end the copy's entries of the
        # old one at every address: authd would refuse it now.
        for _ in range(2):
            self.assertEqual(self.ok("bob", "hunter2"), 0)
        self.assertEqual(self.cached(), 1)
        passdb = os.path.join(self.pamdir, "passdb")
        with open(passdb) as f:
            text = f.read()
        with open(passdb, "w") as f:
            f.write(text.replace("bob:hunter2:", "bob:hunter3:"))
        self.assertEqual(self.ok("bob", "hunter3", src="127.0.0.2"), 0)
        self.assertEqual(self.ok("bob", "hunter2"), 1)
        self.assertEqual(self.cached(), 1)

    def test_authd_restarted_starts_empty(self):
        for _ in range(2):
            self.assertEqual(self.ok("alice", "secret"), 0)
        self.assertEqual(self.cached(), 1)
        pid = self.gw.child("socksgw-authd")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: self.gw.child("socksgw-authd") not in
                 (None, pid), timeout=15, what="a new authd")
        self.gw.wait_log("authd is gone")
        # Refused while authd is away, then asked of the new authd.
        wait_for(lambda: self.ok("alice", "secret") == 0, timeout=15,
                 what="a login through the new authd")
        self.assertEqual(self.cached(), 1)

    def test_never_beyond_authds_entry(self):
        gw = self.start_gateway("auth pam\nauth_cache_ttl 4\n"
                                "control_socket control.sock\n")
        self.assertEqual(self.ok("alice", "secret", gw), 0)   # PAM's
        t0 = time.monotonic()   # authd's entry ends before t0 + 4
        time.sleep(2)
        # A refusal empties the proxy's copy; authd answers alice from its
        # own entry, made at t0, and the copy must end when that does, not
        # auth_cache_ttl after it was made.
        self.assertEqual(self.ok("carol", "letmein", gw), 1)
        self.assertEqual(self.ok("alice", "secret", gw), 0)   # authd's
        self.assertEqual(self.ok("alice", "secret", gw), 0)   # the copy's
        self.assertEqual(self.cached(gw), 1)
        time.sleep(max(0, t0 + 4.3 - time.monotonic()))
        self.assertEqual(self.ok("alice", "secret", gw), 0)   # PAM's again
        self.assertEqual(self.cached(gw), 1)

    def test_a_refusal_for_a_session_gone_still_empties_it(self):
        # slowpoke's logins take 2 s of PAM (pam_exec sleep): the session
        # of a wrong password ends at the 1 s handshake timeout, before
        # authd's refusal comes back; the refusal must empty the copy all
        # the same.
        gw = self.start_gateway("auth pam\npam_service socksgw-slow\n"
                                "auth_cache_ttl 60\n"
                                "control_socket control.sock\n")
        self.assertEqual(self.ok("slowpoke", "zzz", gw), 0)
        self.assertEqual(self.ok("slowpoke", "zzz", gw), 0)
        self.assertEqual(self.cached(gw), 1)
        with open(gw.conf, "a") as f:
            f.write("handshake_timeout 1\n")
        gw.signal(signal.SIGHUP)
        gw.wait_log("configuration reloaded")
        self.assertNotEqual(self.ok("dave", "wrong", gw), 0)
        gw.wait_log("reason=handshake timeout")
        time.sleep(2)   # authd's refusal, after the session's end
        self.assertEqual(self.ok("slowpoke", "zzz", gw), 0)
        self.assertEqual(self.cached(gw), 1)
