"""Per-user limits on concurrent sessions, with users authenticated by the
real libpam (pam_wrapper + pam_matrix): a user's own limit, the lowest of
its groups', the default; the session beyond the limit refused with REP 2
and an audit record; a freed place taken again; live changes; socksctl
refusing bad values and changing nothing."""
import json
import unittest

from gwtest import EchoHandler, recv_exact, socks_request, wait_for
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
        gw.wait_log("policy: 2 rules in force", count=2)
        self.assertEqual(self.explain("bob"), {"limit": 2, "from": "default"})
        self.hold("alice", "secret", 1)
        self.assertEqual(self.request("alice", "secret")[0], 2)
        self.hold("bob", "hunter2", 1)
        self.assertEqual(self.request("bob", "hunter2")[0], 2)

        show = gw.ctl("--json", "user", "show", "bob").stdout
        self.assertEqual(json.loads(show)[0]["max_sessions"], "2 (default)")
        gw.ctl("defaults", "--max-sessions", "none")
        self.assertIsNone(self.explain("bob"))

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
                     ("defaults", "--max-sessions", "1.5")]:
            with self.subTest(args=args):
                r = gw.ctl(*args, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("socksctl", r.stderr)
        self.assertEqual(gw.ctl("--json", "user", "list").stdout, before)
        groups = json.loads(gw.ctl("--json", "group", "list").stdout)
        self.assertEqual(groups[0]["max_sessions"], "3")


if __name__ == "__main__":
    unittest.main()
