"""A fleet's one policy in PostgreSQL (issue 18): socksctl, given
`policy_db postgresql://...`, changes the policy in a real PostgreSQL 15
(a cluster the test starts on loopback); every node follows it through
LISTEN/NOTIFY into a local snapshot, serves from that snapshot while the
store is away, and refuses everything once policy_max_age has passed
without a word from the store.
"""
import json
import os
import subprocess
import threading
import time
import unittest

import pgserver
from gwtest import (SOCKSCTL, EchoHandler, GatewayTestCase, LOOPBACK_RULE,
                    socks_open, wait_for)

DENIED = 2      # SOCKS5 REP: connection not allowed by ruleset


@unittest.skipUnless(pgserver.available(), "postgresql-15 is not installed")
class FleetPolicyTest(pgserver.StoreTestCase, GatewayTestCase):
    def setUp(self):
        super().setUp()
        # The nodes' proxies run as nobody: the passfile is theirs.
        self.passfile = self.pg.passfile(self.tmp, "nobody")
        self.url = self.pg.url(self.passfile)
        self.echo = self.tcp_server(EchoHandler)
        # An admin's workstation: a configuration naming the store alone.
        self.admin_conf = self.tmp.write("admin.conf",
                                         "policy_db %s\n" % self.url)
        self.admin("init")
        self.admin("rule", "add", *LOOPBACK_RULE)

    def admin(self, *args, check=True):
        r = subprocess.run([SOCKSCTL, "-c", self.admin_conf] + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("socksctl %s: %s" % (" ".join(args),
                                                      r.stderr))
        return r

    def node(self, name, extra=""):
        return self.start_gateway(
            "node_name %s\npolicy_db %s\npolicy_snapshot snap/policy.db\n"
            "control_socket ctl.sock\n%s" % (name, self.url, extra), init=False)

    def head(self):
        return int(self.pg.scalar("SELECT change_id FROM policy_head"))

    def stats(self, gw):
        return json.loads(gw.ctl("--json", "stats").stdout)

    def wait_current(self, gw, timeout=15):
        head = self.head()
        return wait_for(lambda: (lambda s: s if s["change_id"] == head and
                                 not s["closed"] else None)(
                                     self.stats(gw)["policy_store"]),
                        timeout=timeout, interval=0.05,
                        what="node at change %d" % head)

    def age_heard(self, gw, seconds):
        """As if the store last confirmed the node's policy seconds ago
        (its .heard), then a restart: policy_max_age (60 s, its least)
        is then near without waiting a minute for it."""
        t = time.time() - seconds
        os.utime(os.path.join(gw.tmp.path, "snap", "policy.db.heard"), (t, t))
        gw.restart()

    def rep(self, gw):
        """The SOCKS5 reply code; None for a connection closed without one
        (a node restarting its audit, say): not an answer yet."""
        try:
            s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", self.echo)
        except (EOFError, OSError):
            return None
        s.close()
        return rep

    def test_a_change_reaches_every_node(self):
        a = self.node("alpha")
        b = self.node("bravo")
        for gw in (a, b):
            st = self.wait_current(gw)
            self.assertEqual(st["state"], "up")
            self.assertEqual(self.rep(gw), 0, gw.log()[-3000:] + str(gw.audit()[-1:]))
        # One admin command: both nodes refuse within moments.
        t0 = time.monotonic()
        out = self.admin("rule", "add", "deny", "--dst", "127.0.0.1/32",
                         "--position", "1", "--comment", "fleet test")
        rule = int(out.stdout.split()[-1])
        for gw in (a, b):
            wait_for(lambda: self.rep(gw) == DENIED, timeout=10,
                     interval=0.05, what="the deny rule in force")
        took = time.monotonic() - t0
        print("\npolicy change in force on both nodes after %.2f s" % took)
        # Judged by the store's rule, recorded so.
        rows = wait_for(lambda: [r for r in a.audit("verdict = 'deny'")],
                        what="the deny record")
        self.assertEqual(rows[-1]["rule_id"], rule)
        # The store keeps who changed what; socksctl log reads it back.
        changes = self.pg.psql("SELECT id, command FROM policy_changes "
                               "ORDER BY id")
        self.assertEqual(len(changes), 2)
        self.assertIn("rule add deny", changes[-1])
        log = self.admin("log").stdout
        self.assertIn("rule add deny", log)
        # Every node's snapshot, and the store, agree; rollback undoes it.
        first = int(changes[0].split("|")[0])
        self.admin("rollback", "--to", str(first))
        for gw in (a, b):
            wait_for(lambda: self.rep(gw) == 0, timeout=10, interval=0.05,
                     what="the rollback in force")
        self.assertEqual(self.stats(a)["policy_store"]["change_id"],
                         self.head())
        # The node's own socksctl reads the snapshot it judges by.
        self.assertIn("127.0.0.0/8", a.ctl("rule", "list").stdout)

    def test_a_failed_command_changes_nothing(self):
        before = self.head()
        r = self.admin("rule", "add", "allow", "--port", "99999",
                       check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        r = self.admin("rule", "del", "999", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        # A read changes nothing either.
        self.admin("rule", "list")
        self.admin("explain", "--src", "127.0.0.1", "--dst", "127.0.0.1:80")
        self.assertEqual(self.head(), before)
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM "
                                        "policy_changes"), "1")

    def test_admins_at_once_lose_no_change(self):
        def adder(k):
            for i in range(8):
                self.admin("rule", "add", "allow", "--dst",
                           "10.%d.%d.0/24" % (k, i))
        threads = [threading.Thread(target=adder, args=(k,))
                   for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(self.pg.scalar("SELECT count(*) FROM "
                                        "policy_changes"), "25")
        self.assertEqual(self.head(), int(self.pg.scalar(
            "SELECT max(id) FROM policy_changes")))
        rules = json.loads(self.admin("--json", "rule", "list").stdout)
        self.assertEqual(len(rules), 25)

    def test_store_away_snapshot_then_closed_after_max_age(self):
        gw = self.node("alpha", "policy_max_age 60")
        self.wait_current(gw)
        self.assertEqual(self.rep(gw), 0)
        self.pg.stop()
        st = wait_for(lambda: (lambda s: s if s["state"] != "up" else None)(
            self.stats(gw)["policy_store"]), timeout=20,
            what="the node to see the store gone")
        self.assertFalse(st["closed"])
        self.assertEqual(self.rep(gw), 0)       # the snapshot serves
        # A restart while the store is away, its last word 50 s ago: the
        # snapshot still serves, for the 10 s left.
        self.age_heard(gw, 50)
        self.assertEqual(self.rep(gw), 0)
        # policy_max_age after the last word: every request refused,
        # and stats, metrics and the log say why.
        wait_for(lambda: self.rep(gw) == DENIED, timeout=30, interval=0.2,
                 what="the node to close")
        st = self.stats(gw)["policy_store"]
        self.assertTrue(st["closed"])
        self.assertGreater(st["heard_age_s"], 60)
        rows = wait_for(lambda: gw.audit("verdict = 'deny'"),
                        what="the refusal's record")
        self.assertIn("policy store", rows[-1]["reason"])
        self.assertIn("every request is refused", gw.log())
        # The store back: the node opens again by itself.
        self.pg.start()
        wait_for(lambda: self.rep(gw) == 0, timeout=30, interval=0.2,
                 what="the node to open again")
        self.assertFalse(self.stats(gw)["policy_store"]["closed"])

    def test_a_new_node_refuses_until_it_reaches_the_store(self):
        self.pg.stop()
        gw = self.node("fresh")
        self.assertEqual(self.rep(gw), DENIED)
        rows = wait_for(lambda: gw.audit("verdict = 'deny'"),
                        what="the refusal's record")
        self.assertIn("has not confirmed", rows[-1]["reason"])
        self.pg.start()
        self.wait_current(gw, timeout=30)
        self.assertEqual(self.rep(gw), 0)

    def test_a_bad_policy_in_the_store_is_refused(self):
        gw = self.node("alpha", "policy_max_age 60")
        self.wait_current(gw)
        good = self.stats(gw)["policy_store"]["change_id"]
        # Garbage with its own checksum (a store-writer's mistake), then
        # a good image whose checksum does not match.
        self.pg.psql("UPDATE policy_head SET change_id = change_id + 1, "
                     "image = 'garbage'::bytea, sha256 = "
                     "sha256('garbage'::bytea); NOTIFY socksgw_policy")
        st = wait_for(lambda: (lambda s: s if "refused" in s["error"]
                               else None)(self.stats(gw)["policy_store"]),
                      timeout=15, what="the image refused")
        self.assertIn("not a", st["error"])
        self.assertEqual(st["change_id"], good)
        self.assertEqual(self.rep(gw), 0)       # the last good one serves
        self.pg.psql("UPDATE policy_head SET sha256 = sha256('x'::bytea)")
        wait_for(lambda: "checksum" in self.stats(gw)["policy_store"]["error"],
                 timeout=15, what="the checksum refused")
        # The node cannot confirm its policy: after max_age, closed
        # (its last word made 50 s old: the restart does not confirm it).
        self.age_heard(gw, 50)
        self.assertEqual(self.rep(gw), 0)
        wait_for(lambda: self.rep(gw) == DENIED, timeout=30, interval=0.2,
                 what="the node to close")
        # An admin's change repairs the head; the node takes it.
        r = self.admin("rule", "list", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("checksum", r.stderr)

    def test_the_same_change_id_with_other_content_is_fetched(self):
        # A store emptied (restored from an old backup) and changed anew:
        # change 1 again, other content. The node follows the content.
        gw = self.node("alpha")
        self.wait_current(gw)
        self.assertEqual(self.rep(gw), 0)
        self.pg.psql("DELETE FROM policy_head; DELETE FROM policy_changes")
        self.admin("init")
        self.admin("rule", "add", "deny", "--dst", "127.0.0.0/8")
        self.assertEqual(self.head(), 1)
        wait_for(lambda: self.rep(gw) == DENIED, timeout=15, interval=0.1,
                 what="the other change 1 in force")

    def test_a_password_in_the_url_is_refused(self):
        conf = self.tmp.write("bad.conf", "\n\npolicy_db postgresql://gw:"
                              "pw@127.0.0.1/fleet\n")
        r = subprocess.run([SOCKSCTL, "-c", conf, "rule", "list"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.conf:3: policy_db: a password in the URL",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()
