"""Per-user limits on concurrent sessions and new-session rates, and the
rate per client address, with users authenticated by the
real libpam (pam_wrapper + pam_matrix): a user's own limit, the lowest of
its groups', the default; the session beyond the limit refused with REP 2
and an audit record; a freed place taken again; live changes; socksctl
refusing bad values and changing nothing."""
import json
import unittest

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, socks_request,
                    wait_for)
from test_pam import SANITIZED, PamTestCase


@unittest.skipIf(SANITIZED, "pam_wrapper cannot run under ASan (RTLD_DEEPBIND)")
class SessionLimitTest(PamTestCase):
    def setUp(self):
        super().setUp()
        gw = self.gw = self.start_gateway(self.gateway_extra, rules=[])
        gw.ctl("group", "add", "staff", "--max-sessions", "3")
        gw.ctl("user", "add", "alice", "--group", "staff")
        gw.ctl("user", "add", "bob", "--max-sessions", "1")
        gw.ctl("rule", "add", "allow", "--user", "@staff", "--dst",
               "127.0.0.0/8")
        gw.ctl("rule", "add", "allow", "--user", "bob", "--dst",
               "127.0.0.0/8")
        gw.wait_log("policy: 2 rules in force")
        self.port = self.tcp_server(EchoHandler)

    def request(self, user, password):
        """A CONNECT as user: (reply code, socket)."""
        status, s = self.login(user, password, self.gw)
        self.assertEqual(status, 0)
        self.addCleanup(s.close)
        s.sendall(socks_request("127.0.0.1", self.port))
        return recv_exact(s, 10)[1], s

    def hold(self, user, password, n):
        socks = []
        for _ in range(n):
            rep, s = self.request(user, password)
            self.assertEqual(rep, 0, user)
            s.sendall(b"x")
            self.assertEqual(recv_exact(s, 1), b"x")
            socks.append(s)
        return socks

    def explain(self, user, *groups):
        r = self.gw.ctl("--json", "explain", "--user", user, "--dst",
                        "127.0.0.1:%d" % self.port,
                        *[a for g in groups for a in ("--group", g)])
        return json.loads(r.stdout)["max_sessions"]

    def test_limits_from_user_group_and_default(self):
        gw = self.gw
        self.assertEqual(self.explain("alice"),
                         {"limit": 3, "from": "groups of user alice"})
        self.assertEqual(self.explain("bob"),
                         {"limit": 1, "from": "user bob"})
        # System groups (from NSS) count by name too; the user's own
        # value still wins over them.
        self.assertEqual(self.explain("zed", "staff"),
                         {"limit": 3, "from": "group staff"})
        self.assertEqual(self.explain("bob", "staff"),
                         {"limit": 1, "from": "user bob"})
        self.assertIsNone(self.explain("zed"))
        alice = self.hold("alice", "secret", 3)
        rep, _ = self.request("alice", "secret")
        self.assertEqual(rep, 2)
        # Per user: bob's place is his own.
        self.hold("bob", "hunter2", 1)
        rep, _ = self.request("bob", "hunter2")
        self.assertEqual(rep, 2)
        gw.wait_log("reason=limit: sessions", count=2)
        # The audit writer commits in batches: wait for both records.
        rows = wait_for(lambda: (lambda r: len(r) == 2 and r)(
            gw.audit("reason = 'limit: sessions'")), what="audit records")
        self.assertEqual(sorted(r["user"] for r in rows), ["alice", "bob"])
        self.assertEqual({r["verdict"] for r in rows}, {"deny"})

        # A closed session gives its place back.
        alice.pop().close()
        def place_free():
            rep, s = self.request("alice", "secret")
            if rep == 0:
                alice.append(s)
            return rep == 0
        wait_for(place_free, what="alice's freed place")

        # Live changes: a higher group limit, then the default for bob.
        gw.ctl("group", "set", "staff", "--max-sessions", "4")
        gw.ctl("user", "set", "bob", "--max-sessions", "none")
        gw.ctl("defaults", "--max-sessions", "2")
        self.assertEqual(self.explain("bob"), {"limit": 2, "from": "default"})

        # The three changes may be compiled in one go or in several: each
        # user's next place comes once the last of them is in force.
        def one_more(user, password):
            rep, s = self.request(user, password)
            return rep == 0
        wait_for(lambda: one_more("alice", "secret"), what="alice's 4th")
        self.assertEqual(self.request("alice", "secret")[0], 2)
        wait_for(lambda: one_more("bob", "hunter2"), what="bob's 2nd")
        self.assertEqual(self.request("bob", "hunter2")[0], 2)

        show = gw.ctl("--json", "user", "show", "bob").stdout
        self.assertEqual(json.loads(show)[0]["max_sessions"], "2 (default)")
        gw.ctl("defaults", "--max-sessions", "none")
        self.assertIsNone(self.explain("bob"))

    def test_rate_per_user(self):
        gw = self.gw
        gw.ctl("user", "set", "bob", "--max-sessions", "none", "--rate", "5",
               "--burst", "3")
        gw.wait_log("policy: 2 rules in force", count=2)
        self.assertIsNone(self.explain("bob"))
        r = json.loads(gw.ctl("--json", "explain", "--user", "bob", "--dst",
                              "127.0.0.1:1").stdout)["rate"]
        self.assertEqual(r, {"per_second": 5, "burst": 3, "from": "user bob"})
        # A burst of 3, each session closed at once: the 4th is refused.
        for _ in range(3):
            rep, s = self.request("bob", "hunter2")
            self.assertEqual(rep, 0)
            s.close()
        self.assertEqual(self.request("bob", "hunter2")[0], 2)
        # Other users are not bob.
        self.hold("alice", "secret", 1)
        # Refusals take no token: one comes back within 1/5 s.
        wait_for(lambda: self.request("bob", "hunter2")[0] == 0,
                 what="a token for bob")
        rows = wait_for(lambda: gw.audit("reason = 'limit: rate'"),
                        what="an audit record")
        self.assertEqual(rows[0]["user"], "bob")

    def test_rate_per_client_address(self):
        gw = self.gw
        gw.ctl("defaults", "--client-rate", "0.01", "--client-burst", "4")
        gw.wait_log("policy: 2 rules in force", count=2)
        table = json.loads(gw.ctl("--json", "defaults").stdout)
        self.assertIn({"limit": "client_burst", "default": "4"}, table)
        # Whoever the user: the address has 4 sessions, then none.
        self.hold("alice", "secret", 2)
        self.hold("bob", "hunter2", 1)
        for _ in range(3):
            rep, s = self.request("alice", "secret")
            s.close()
            if rep != 0:
                break
        self.assertEqual(rep, 2)
        gw.ctl("defaults", "--client-rate", "none")
        gw.wait_log("policy: 2 rules in force", count=3)
        self.hold("alice", "secret", 1)

    def test_zero_allows_no_session(self):
        self.gw.ctl("user", "set", "alice", "--max-sessions", "0")
        self.gw.wait_log("policy: 2 rules in force", count=2)
        self.assertEqual(self.request("alice", "secret")[0], 2)
        self.hold("bob", "hunter2", 1)

    def test_bad_values_change_nothing(self):
        gw = self.gw
        before = gw.ctl("--json", "user", "list").stdout
        for args in [("user", "set", "alice", "--max-sessions", "-1"),
                     ("user", "set", "alice", "--max-sessions", "lots"),
                     ("user", "set", "alice", "--max-sessions", "2000000000"),
                     ("group", "set", "nosuch", "--max-sessions", "2"),
                     ("group", "set", "staff", "--max-sessions"),
                     ("defaults", "--max-sessions", "1.5"),
                     ("user", "set", "alice", "--rate", "0"),
                     ("user", "set", "alice", "--rate", "-2"),
                     ("user", "set", "alice", "--rate", "fast"),
                     ("group", "set", "staff", "--burst", "0"),
                     ("defaults", "--client-rate", "2", "--client-burst",
                      "x"),
                     ("user", "set", "alice", "--bandwidth", "10"),
                     ("user", "set", "alice", "--bandwidth", "10X"),
                     ("user", "set", "alice", "--bandwidth", "2T"),
                     ("user", "set", "alice", "--bandwidth", "10M/h"),
                     ("group", "set", "staff", "--bandwidth", "-1M"),
                     ("user", "set", "alice", "--quota", "5G"),
                     ("user", "set", "alice", "--quota", "5G/year"),
                     ("user", "set", "alice", "--quota", "/day"),
                     ("user", "set", "alice", "--quota", "2000T/day"),
                     ("defaults", "--quota", "1G/fortnight")]:
            with self.subTest(args=args):
                r = gw.ctl(*args, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("socksctl", r.stderr)
        self.assertEqual(gw.ctl("--json", "user", "list").stdout, before)
        groups = json.loads(gw.ctl("--json", "group", "list").stdout)
        self.assertEqual(groups[0]["max_sessions"], "3")
        self.assertIsNone(groups[0]["rate"])
        self.assertEqual(json.loads(gw.ctl("--json", "defaults").stdout),
                         [{"limit": k, "default": None} for k in
                          ("max_sessions", "rate", "burst", "bandwidth",
                           "quota", "client_rate", "client_burst")])


class ClientRateTest(GatewayTestCase):
    """Without PAM (so it also runs under ASan): the rate per client address
    holds for anonymous clients; per-user limits do not apply to them."""

    def request(self, port):
        import socket
        s = socket.create_connection(self.gw.addr, timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        s.sendall(socks_request("127.0.0.1", port))
        return recv_exact(s, 10)[1]

    def test_client_rate_without_users(self):
        gw = self.gw
        port = self.tcp_server(EchoHandler)
        rules = gw.log().count("rules in force")
        gw.ctl("defaults", "--max-sessions", "0")
        gw.wait_log("rules in force", count=rules + 1)
        # No user, so no per-user limit: max_sessions 0 refuses nothing.
        self.assertEqual(self.request(port), 0)
        gw.ctl("defaults", "--client-rate", "0.01", "--client-burst", "3")
        gw.wait_log("rules in force", count=rules + 2)
        self.assertEqual([self.request(port) for _ in range(4)],
                         [0, 0, 0, 2])
        rows = wait_for(lambda: gw.audit("reason = 'limit: rate'"),
                        what="an audit record")
        self.assertEqual(rows[0]["verdict"], "deny")
        gw.ctl("defaults", "--client-rate", "none")
        gw.wait_log("rules in force", count=rules + 3)
        self.assertEqual(self.request(port), 0)


if __name__ == "__main__":
    unittest.main()
