"""Kerberos single sign-on for browsers (issue 15): HTTP Negotiate (RFC
4559) against a real MIT KDC that the test starts on loopback with a realm
of its own (kdc.py). curl --proxy-negotiate with a ticket from kinit, and
tokens made by Debian's python3-gssapi for what curl would never send (a
replay, a ticket for another service, a stale one). The principal becomes a
local user through krb5.conf's auth_to_local, which must exist for NSS
(the test's own /etc/passwd, bound over the machine's in the gateway's
mount namespace) and pass PAM's account stack (pam_matrix)."""

import base64
import http.server
import json
import os
import socket
import subprocess
import time
import unittest

from gwtest import EchoHandler, recv_exact, recv_until_eof, wait_for
from kdc import REALM, Kdc
from test_connect import BODY, Hello
from test_http import head_of
from test_pam import PamTestCase

SERVICE = "HTTP/localhost"
# The machine's own accounts the gateway runs as, then the test's users.
SYSTEM = ("root", "daemon", "nobody", "nogroup", "socksgw-audit")


def system_lines(path):
    with open(path) as f:
        return "".join(l for l in f if l.split(":")[0] in SYSTEM)


PASSWD = system_lines("/etc/passwd") + (
          "alice:x:1001:1001:Alice:/nonexistent:/bin/false\n"
          "bob:x:1002:1002:Bob:/nonexistent:/bin/false\n"
          "zoe:x:1003:1003:Zoe:/nonexistent:/bin/false\n")
GROUP = system_lines("/etc/group") + (
    "alice:x:1001:\nbob:x:1002:\nzoe:x:1003:\nteachers:x:2001:alice\n")
# A token as a browser makes it: SPNEGO around a Kerberos AP-REQ.
MAKE_TOKEN = """
import base64, sys, gssapi
name = gssapi.Name(sys.argv[1], gssapi.NameType.hostbased_service)
spnego = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
ctx = gssapi.SecurityContext(name=name, usage="initiate", mech=spnego)
print(base64.b64encode(ctx.step()).decode())
"""


def have_kerberos():
    try:
        import gssapi  # noqa: F401
    except ImportError:
        return False
    return all(os.path.exists(p) for p in ("/usr/sbin/krb5kdc",
                                           "/usr/bin/kinit"))


@unittest.skipIf(os.environ.get("SOCKSGW_SANITIZE") == "1",
                 "pam_wrapper cannot run under ASan")
@unittest.skipUnless(have_kerberos(), "krb5-kdc, krb5-user, python3-gssapi")
@unittest.skipUnless(PamTestCase.PRIVATE_TMP, "root and unshare: the test's "
                     "accounts are bound over /etc/passwd in a namespace")
class NegotiateTest(PamTestCase):
    gateway_extra = None

    def setUp(self):
        from gwtest import TempDir
        self.ktmp = TempDir(self.tmp_parent)
        self.addCleanup(self.ktmp.cleanup)
        # A clock skew of 2 s, so a stale token is refused in seconds.
        self.kdc = Kdc(self.ktmp, clockskew=2)
        self.addCleanup(self.kdc.stop)
        for user, pw in (("alice", "alice-pw"), ("bob", "bob-pw"),
                         ("root", "root-pw"), ("zed", "zed-pw"),
                         ("alice/admin", "admin-pw"), ("zoe", "zoe-pw"),
                         ("daemon", "daemon-pw")):
            self.kdc.addprinc(user, pw)
        for service in (SERVICE, "HTTP/elsewhere", "HTTP/nokey"):
            self.kdc.addprinc(service)
        # The keytab holds another service's key too: the gateway must
        # accept tickets for krb5_service alone.
        self.keytab = os.path.join(self.ktmp.path, "http.keytab")
        for service in (SERVICE, "HTTP/elsewhere"):
            self.kdc.keytab(service, self.keytab)
        self.passwd = self.ktmp.write("passwd", PASSWD)
        self.group = self.ktmp.write("group", GROUP)
        super().setUp()
        self.gw.ctl("group", "add", "teachers")
        self.gw.ctl("rule", "add", "deny", "--user", "@teachers",
                    "--port", "9", "--position", "1")
        self.gw.wait_log("policy: 2 rules in force")

    def make_pam(self):
        # zoe's account is refused by PAM's account stack: pam_matrix
        # knows her for another service only.
        path = super().make_pam()
        with open(os.path.join(path, "passdb"), "a") as f:
            f.write("zoe:zoe-pw:otherservice\n")
        return path

    def pam_env(self):
        env = super().pam_env()
        env.update(self.kdc.env)
        # The test's users, for this gateway's mount namespace alone
        # (gwtest's private_tmp_prefix binds them over /etc/passwd).
        env["SOCKSGW_TEST_PASSWD"] = self.passwd
        env["SOCKSGW_TEST_GROUP"] = self.group
        # MIT's default replay cache in the gateway's own /tmp, emptied at
        # each start as systemd's PrivateTmp does: only krb5_rcache keeps
        # one across a restart.
        env["KRB5RCACHEDIR"] = "/tmp"
        return env

    def start_gateway(self, extra="", **kw):
        extra = extra or ("auth pam gssapi\nkrb5_keytab %s\n"
                          "krb5_service %s\nauth_fail_limit 3\n"
                          "auth_client_fail_limit 3\n"
                          "auth_fail_window 60\nauth_lockout 2\n"
                          "krb5_rcache %s/replay.rcache2\n"
                          % (self.keytab, SERVICE, self.ktmp.path))
        return super().start_gateway(extra, **kw)

    def token(self, env, service="HTTP@localhost"):
        r = subprocess.run(["/usr/bin/python3", "-c", MAKE_TOKEN, service],
                           env=dict(os.environ, **env), capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def connect(self, port, token, src=None):
        """A CONNECT with this token: the status, the socket if 200."""
        s = socket.create_connection(self.gw.addr, timeout=10,
                                     source_address=(src, 0) if src
                                     else None)
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: "
                  b"Negotiate %s\r\n\r\n" % (port, token))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        code, headers, _ = head_of(head)
        if code != 200:
            s.close()
            return code, headers, None
        return code, headers, s

    def test_curl_negotiate_then_audit_names_the_user(self):
        # Asked for both schemes, Negotiate first.
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n")
        code, headers, _ = head_of(recv_until_eof(s))
        s.close()
        self.assertEqual(code, 407)
        self.assertIn("proxy-authenticate: negotiate\n"
                      "proxy-authenticate: basic", headers)
        port = self.tcp_server(EchoHandler)
        hport = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        env = self.kdc.kinit("alice", "alice-pw")
        # curl names the service after the proxy's host: HTTP@localhost.
        # Through a tunnel (CONNECT), then forwarded (GET http://...).
        for how in (["--proxytunnel"], []):
            r = subprocess.run(
                ["curl", "-sS", "--max-time", "10", "--proxy-negotiate",
                 "-U", ":", "-x", "http://localhost:%d" % self.gw.port] +
                how + ["http://127.0.0.1:%d/" % hport],
                capture_output=True, timeout=30, env=dict(os.environ, **env))
            self.assertEqual((r.returncode, r.stdout), (0, BODY),
                             r.stderr + self.gw.log().encode())
        # A token that is not base64: unreadable, 400 as for Basic.
        code, _, _ = self.connect(port, b"x")
        self.assertEqual(code, 400)
        wait_for(lambda: len(self.gw.audit(
            "kind = 'session' AND seq IS NOT NULL")) == 2, timeout=5,
            what="the sessions' records")
        sess = self.gw.audit("kind = 'session'")
        self.assertEqual([(r["user"], r["protocol"], r["auth_method"])
                          for r in sess], [("alice", "http", "negotiate")] * 2)
        # Her groups come through NSS: teachers may not reach port 9.
        code, _, _ = self.connect(9, self.token(env))
        self.assertEqual(code, 403, self.gw.log())

    def test_a_kept_connection_holds_its_ticket(self):
        # Negotiate is one per connection: browsers send the token once,
        # and the later requests on the kept connection are the same
        # user's (until the ticket ends), each judged and audited.
        from test_http_forward import Pages, read_response
        conns = []
        port = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), type("P", (Pages,), {"conns": conns})))
        tok = self.token(self.kdc.kinit("alice", "alice-pw"))
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"GET http://127.0.0.1:%d/one HTTP/1.1\r\n"
                  b"Proxy-Authorization: Negotiate %s\r\n\r\n" % (port, tok))
        self.assertTrue(read_response(s).endswith(b"page /one"),
                        self.gw.log())
        s.sendall(b"GET http://127.0.0.1:%d/two HTTP/1.1\r\n\r\n" % port)
        self.assertTrue(read_response(s).endswith(b"page /two"))
        # Her groups came along: teachers may not reach port 9.
        s.sendall(b"GET http://127.0.0.1:9/ HTTP/1.1\r\n\r\n")
        self.assertEqual(head_of(recv_until_eof(s))[0], 403)
        s.close()
        wait_for(lambda: len(self.gw.audit(
            "kind = 'session' AND seq IS NOT NULL")) == 3, timeout=5,
            what="the records")
        self.assertEqual([(r["user"], r["auth_method"], r["verdict"])
                          for r in self.gw.audit("kind = 'session'")],
                         [("alice", "negotiate", "allow")] * 2 +
                         [("alice", "negotiate", "deny")])

    def test_chromium_logs_in_with_a_ticket(self):
        """Headless Chromium with the gateway as its proxy, told it may
        send tickets to it: a plain-HTTP page (forwarded) and an HTTP page
        by name through a tunnel, both attributed to the ticket's user."""
        import shutil
        chromium = shutil.which("chromium")
        if chromium is None:
            self.fail("chromium is not installed (packaging/install-deps.sh "
                      "test installs it)")
        hport = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        env = self.kdc.kinit("alice", "alice-pw")
        profile = os.path.join(self.tmp.path, "chromium-profile")
        # The proxy by the host name the service principal names; loopback
        # sites go through it too ("<-loopback>").
        r = subprocess.run([chromium, "--headless", "--no-sandbox",
                            "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--no-first-run", "--user-data-dir=" + profile,
                            "--proxy-server=http://localhost:%d" %
                            self.gw.port, "--proxy-bypass-list=<-loopback>",
                            "--auth-server-allowlist=localhost",
                            "--dump-dom",
                            "http://www.test.example:%d/" % hport],
                           capture_output=True, timeout=120,
                           env=dict(os.environ, **env))
        self.assertIn(BODY.strip(), r.stdout,
                      r.stderr[-2000:] + self.gw.log().encode())
        wait_for(lambda: self.gw.audit(
            "kind = 'session' AND user = 'alice' AND auth_method = "
            "'negotiate' AND dst_host = 'www.test.example' AND seq IS NOT "
            "NULL"), timeout=10, what="the browser's request in the audit")

    def test_replay_other_service_stale_token_refused(self):
        port = self.tcp_server(EchoHandler)
        env = self.kdc.kinit("bob", "bob-pw")
        tok = self.token(env)
        code, _, s = self.connect(port, tok)
        self.assertEqual(code, 200, self.gw.log())
        s.sendall(b"hi")
        self.assertEqual(recv_exact(s, 2), b"hi")
        s.close()
        # The same authenticator again: the replay cache refuses it.
        code, headers, _ = self.connect(port, tok)
        self.assertEqual(code, 407)
        self.assertIn("proxy-authenticate: negotiate", headers)
        # A ticket for another service whose key is in the keytab: not
        # the one the gateway is (the credential is bound to it).
        code, _, _ = self.connect(port, self.token(env, "HTTP@elsewhere"))
        self.assertEqual(code, 407)
        # One whose key is not there at all.
        code, _, _ = self.connect(port, self.token(env, "HTTP@nokey"))
        self.assertEqual(code, 407)
        # Three failures: this address's Kerberos logins are locked for
        # auth_lockout (2 s); then two more.
        self.assertIn("Kerberos logins locked out for 2s", self.gw.log())
        time.sleep(2.5)
        # Not a Kerberos token at all (valid base64, garbage inside).
        code, _, _ = self.connect(port, base64.b64encode(b"\x60\x05junk"))
        self.assertEqual(code, 407)
        # Made now, sent past the clock skew (2 s): refused.
        tok = self.token(env)
        time.sleep(4)
        code, _, _ = self.connect(port, tok)
        self.assertEqual(code, 407)
        log = self.gw.log()
        for why in ("Request is a replay", "Cannot decrypt ticket for "
                    "HTTP/elsewhere", "Cannot find key for HTTP/localhost",
                    "Clock skew too great"):
            self.assertIn(why, log)
        self.assertIn("user -: authentication failed", log)
        # Five refusals, recorded without a user (the tickets named
        # nobody the gateway accepted).
        wait_for(lambda: len(self.gw.audit("kind = 'auth'")) >= 5,
                 timeout=5, what="the refusals' records")
        recs = self.gw.audit("kind = 'auth'")
        self.assertEqual({(r["user"], r["auth_method"]) for r in recs},
                         {(None, "negotiate")})

    def test_principals_that_map_to_no_proxy_user(self):
        port = self.tcp_server(EchoHandler)
        cases = (
            ("alice/admin", "admin-pw", "maps to no local user"),
            ("root", "root-pw", "uid 0 is never a proxy user"),
            ("daemon", "daemon-pw", "daemon is a system account "
             "(krb5_min_uid 1000)"),
            ("zed", "zed-pw", "no such user zed"),
            ("zoe", "zoe-pw", "account refused"),
        )
        # Five refusals in a row, past auth_fail_limit 3: a valid ticket
        # that names a refused account is no guess, so never a lock-out.
        for principal, pw, why in cases:
            code, _, _ = self.connect(port, self.token(
                self.kdc.kinit(principal, pw)))
            self.assertEqual(code, 407, principal)
            self.gw.wait_log(why)
        # Refused under the principal's name, which the audit escapes.
        wait_for(lambda: len(self.gw.audit("kind = 'auth'")) >= 5,
                 timeout=5, what="the refusals' records")
        users = sorted(r["user"] for r in self.gw.audit("kind = 'auth'"))
        self.assertEqual(users, sorted("%s@%s" % (p, REALM)
                                       for p, _, _ in cases))

    def test_bad_tokens_lock_out_their_client_not_kerberos(self):
        # auth_client_fail_limit 3: three bad tokens from one client
        # lock that client's Kerberos logins for auth_lockout.
        port = self.tcp_server(EchoHandler)
        junk = base64.b64encode(b"\x60\x05junk")
        for _ in range(3):
            self.assertEqual(self.connect(port, junk)[0], 407)
        env = self.kdc.kinit("alice", "alice-pw")
        code, _, _ = self.connect(port, self.token(env))
        self.assertEqual(code, 403)             # locked out: not asked
        self.gw.wait_log("Kerberos logins locked out for 2s from this "
                         "client")
        # Another address is neither locked nor slowed.
        code, _, s = self.connect(port, self.token(env), src="127.0.0.2")
        self.assertEqual(code, 200, self.gw.log())
        s.close()
        # Passwords from the same client are another pair: still heard.
        status, s = self.login("alice", "secret")
        self.assertEqual(status, 0)
        s.close()
        time.sleep(2.5)                         # auth_lockout 2
        code, _, s = self.connect(port, self.token(env))
        self.assertEqual(code, 200, self.gw.log())
        s.close()

    def test_replay_cache_outlives_a_restart(self):
        # krb5_rcache keeps it beside the state, not in a /tmp that
        # systemd's PrivateTmp empties at every restart.
        port = self.tcp_server(EchoHandler)
        tok = self.token(self.kdc.kinit("bob", "bob-pw"))
        code, _, s = self.connect(port, tok)
        self.assertEqual(code, 200, self.gw.log())
        s.close()
        self.assertTrue(os.path.exists(os.path.join(self.ktmp.path,
                                                    "replay.rcache2")))
        self.gw.restart()
        code, _, _ = self.connect(port, tok)
        self.assertEqual(code, 407)
        self.gw.wait_log("Request is a replay")

    def gss_socks(self, env, dport, mode, level=2, size=64):
        """gss_socks.py's outcome, with the ticket in env."""
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run(["/usr/bin/python3",
                            os.path.join(here, "gss_socks.py"),
                            str(self.gw.port), str(dport), mode, str(level),
                            str(size)], env=dict(os.environ, **env),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + self.gw.log().encode())
        return json.loads(r.stdout)

    def test_socks5_gssapi_wraps_every_byte(self):
        """RFC 1961: a SOCKS5 client logs in with its ticket, agrees a
        protection level, and everything after (request, reply, data, the
        EOF) goes wrapped; 300 kB each way pass several 64 KiB tokens and
        the relay's back-pressure."""
        port = self.tcp_server(EchoHandler)
        env = self.kdc.kinit("alice", "alice-pw")
        # Integrity and confidentiality as asked; selective is answered
        # with confidentiality.
        for level, agreed in ((1, 1), (2, 2), (3, 2)):
            out = self.gss_socks(env, port, "echo", level, 300000)
            self.assertEqual(out, {"method": 1, "level": agreed, "rep": 0,
                                   "echo": True, "eof": True},
                             self.gw.log())
        # 40 kB in 64-byte messages right behind the request: unwrapped
        # once each, though they fill the handshake's buffer (a message
        # unwrapped twice reads as a replay and ends the session).
        for mode in ("pipeline", "bind"):
            self.assertEqual(self.gss_socks(env, port, mode, 2, 40000),
                             {"method": 1, "level": 2, "rep": 0,
                              "echo": True}, self.gw.log())
        # The policy sees her and her groups: teachers may not reach 9.
        self.assertEqual(self.gss_socks(env, 9, "connect")["rep"], 2)
        # Datagrams would go unwrapped: refused, in a wrapped reply.
        self.assertEqual(self.gss_socks(env, port, "udp")["rep"], 7)
        wait_for(lambda: len(self.gw.audit(
            "kind = 'session' AND seq IS NOT NULL")) >= 6, timeout=5,
            what="the sessions' records")
        self.assertEqual({(r["user"], r["protocol"], r["auth_method"])
                          for r in self.gw.audit("kind = 'session'")},
                         {("alice", "socks5", "gssapi")})

    def test_socks5_gssapi_refuses_what_breaks_the_protection(self):
        port = self.tcp_server(EchoHandler)
        env = self.kdc.kinit("bob", "bob-pw")
        # A message sent twice, one in clear at confidentiality level:
        # the session ends there, and the echo never saw the second.
        for mode, why in (("replay", "The token was a duplicate"),
                          ("clear", "a message in clear at "
                           "confidentiality level")):
            out = self.gss_socks(env, port, mode)
            self.assertEqual((out["rep"], out["first"], out["after"]),
                             (0, "once", None), mode)
            self.gw.wait_log(why)
        # A context without replay and sequence detection, and a token
        # that is none: the server aborts (01 ff) before any request.
        for mode, why in (("noflags", "lacks mutual authentication, "
                           "integrity, confidentiality, replay or sequence "
                           "detection"),
                          ("garbage", "GSSAPI")):
            out = self.gss_socks(env, port, mode)
            self.assertEqual(out, {"method": 1, "aborted": True}, mode)
            self.gw.wait_log(why)
        # Framing: a token past 12,000 bytes, and another message type.
        for msg in (b"\x01\x01\x2f\x00", b"\x01\x03\x00\x01x"):
            s = socket.create_connection(self.gw.addr, timeout=10)
            s.sendall(b"\x05\x01\x01")
            self.assertEqual(recv_exact(s, 2), b"\x05\x01")
            s.sendall(msg)
            self.assertEqual(recv_until_eof(s), b"\x01\xff")
            s.close()
        # The layer's socket events went before the socket did: libevent
        # never touched a closed (or reused) descriptor.
        self.assertNotIn("[warn]", self.gw.log())

    def test_oversize_token_and_gssapi_alone(self):
        # A token past 12,000 bytes: unreadable, 400, whatever it holds.
        big = base64.b64encode(b"\x60" * 12003)
        self.assertEqual(self.connect(1, big)[0], 400)
        # auth gssapi alone: 407 offers Negotiate only; SOCKS5 clients
        # are offered GSSAPI alone.
        gw = self.start_gateway("auth gssapi\nkrb5_keytab %s\n"
                                "krb5_service %s\n" % (self.keytab, SERVICE))
        s = socket.create_connection(gw.addr, timeout=10)
        s.sendall(b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nProxy-Authorization: "
                  b"Basic YWxpY2U6c2VjcmV0\r\n\r\n")
        code, headers, _ = head_of(recv_until_eof(s))
        s.close()
        self.assertEqual(code, 407)
        self.assertIn("proxy-authenticate: negotiate", headers)
        self.assertNotIn("basic", headers)
        for methods, method in ((b"\x05\x01\x00", 0xff),
                                (b"\x05\x01\x02", 0xff),
                                (b"\x05\x02\x00\x02", 0xff),
                                (b"\x05\x03\x00\x02\x01", 1)):
            s = socket.create_connection(gw.addr, timeout=10)
            s.sendall(methods)
            self.assertEqual(recv_exact(s, 2), bytes((5, method)))
            s.close()

    def test_keytab_problems_stop_the_start(self):
        # Readable by everyone: refused; a service it has no key for too.
        os.chmod(self.keytab, 0o644)
        r = subprocess.run([os.environ.get("GATEWAYD", "gatewayd"), "-c",
                            self.gw.conf], capture_output=True, timeout=30,
                           env=dict(os.environ, **self.pam_env()))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"is readable by every user", r.stderr)
        os.chmod(self.keytab, 0o620)
        r = subprocess.run([os.environ.get("GATEWAYD", "gatewayd"), "-c",
                            self.gw.conf], capture_output=True, timeout=30,
                           env=dict(os.environ, **self.pam_env()))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"must be owned by root, writable by root alone",
                      r.stderr)
        os.chmod(self.keytab, 0o600)
        # A replay cache in a folder others may write to.
        shared = os.path.join(self.ktmp.path, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        with open(self.gw.conf) as f:
            text = f.read()
        conf = self.gw.tmp.write("rc.conf", text.replace(
            "krb5_rcache %s/" % self.ktmp.path, "krb5_rcache %s/" % shared))
        r = subprocess.run([os.environ.get("GATEWAYD", "gatewayd"), "-c",
                            conf], capture_output=True, timeout=30,
                           env=dict(os.environ, **self.pam_env()))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"its folder must be root's and writable by root "
                      b"alone", r.stderr)
        with open(self.gw.conf) as f:
            text = f.read()
        conf = self.gw.tmp.write("other.conf", text.replace(
            SERVICE, "HTTP/nokey"))
        r = subprocess.run([os.environ.get("GATEWAYD", "gatewayd"), "-c",
                            conf], capture_output=True, timeout=30,
                           env=dict(os.environ, **self.pam_env()))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"has no key for HTTP/nokey", r.stderr)


if __name__ == "__main__":
    unittest.main()
