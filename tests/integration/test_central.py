"""A fleet's central audit store (issue 18): each gatewayd ships its audit
log to a real PostgreSQL 15 (a cluster the test starts on loopback), in
order and exactly once, whatever stops in between; socksctl lists and
verifies the central copy across nodes.

Every node writes locally first; the tests count what is local and what is
central and require them equal, record for record (session id, chain
place, hash), with no duplicate.
"""
import json
import os
import signal
import socket
import time
import unittest

import pgserver
import test_evidence as evidence   # its faketime settings, not its tests
from gwtest import (EchoHandler, GatewayTestCase, child_of, recv_exact,
                    socks_open, wait_for)


@unittest.skipUnless(pgserver.available(), "postgresql-15 is not installed")
class CentralAuditTest(pgserver.StoreTestCase, GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.passfile = self.pg.passfile(self.tmp, "socksgw-audit")
        self.echo = self.tcp_server(EchoHandler)

    # The test's own first gateway has no audit_central: each test starts
    # the nodes it needs.
    def node(self, name, extra=""):
        return self.start_gateway(
            "node_name %s\naudit_central %s\ncontrol_socket ctl.sock\n%s" %
            (name, self.pg.url(self.passfile), extra))

    def sessions(self, gw, n):
        gw.expected = getattr(gw, "expected", 0) + n    # records to come
        for _ in range(n):
            s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", self.echo)
            self.assertEqual(rep, 0, "\n".join(gw.log().splitlines()[-12:]))
            s.sendall(b"ping")
            recv_exact(s, 4)
            s.close()

    def local(self, gw):
        import sqlite3
        con = sqlite3.connect(os.path.join(gw.tmp.path, "audit.db"))
        try:
            return sorted((sid, seq, bytes(h).hex()) for sid, seq, h in
                          con.execute("SELECT session_id, seq, hash FROM "
                                      "records WHERE seq IS NOT NULL"))
        finally:
            con.close()

    def central(self, node):
        rows = self.pg.psql("SELECT session_id, seq, encode(hash, 'hex') "
                            "FROM audit_records WHERE node = '%s'" % node,
                            check=False)     # no table before the first
        return sorted((int(a), int(b), c) for a, b, c in (
            r.split("|") for r in rows or ()))

    def wait_shipped(self, gw, node, timeout=20):
        """Until every session's record is written here (a record comes
        after its session closes) and all of them are central."""
        def same():
            loc = self.local(gw)
            return (len(loc) >= getattr(gw, "expected", 1) and
                    loc == self.central(node))
        try:
            wait_for(same, timeout=timeout, interval=0.2,
                     what="node %s's records in the central store" % node)
        except AssertionError:
            raise AssertionError("node %s: %d local, %d central; its log:\n%s"
                                 % (node, len(self.local(gw)),
                                    len(self.central(node)), "\n".join(l for l in gw.log().splitlines() if "session" not in l)[-3000:]))

    def no_duplicates(self):
        self.assertEqual(self.pg.psql(
            "SELECT node, session_id FROM audit_records GROUP BY 1, 2 "
            "HAVING count(*) > 1"), [])

    def stats(self, gw):
        return json.loads(gw.ctl("--json", "stats").stdout)

    def test_two_nodes_ship_exactly_once_and_verify_centrally(self):
        a = self.node("alpha")
        b = self.node("bravo")
        self.sessions(a, 20)
        self.sessions(b, 15)
        self.wait_shipped(a, "alpha")
        self.wait_shipped(b, "bravo")
        self.no_duplicates()
        # The shipped rows are the nodes' own, field for field.
        row = a.audit("seq IS NOT NULL")[0]     # all ASCII here
        user, port, cmd = self.pg.psql(
            "SELECT encode(client_addr, 'escape'), dst_port, "
            "encode(command, 'escape') FROM audit_records WHERE node = "
            "'alpha' AND session_id = %d" % row["session_id"])[0].split("|")
        self.assertEqual((user, int(port), cmd),
                         (row["client_addr"], row["dst_port"], row["command"]))
        # Stats and metrics say where shipping stands.
        st = wait_for(lambda: (lambda s: s if s.get("audit_central", {})
                               .get("lag_records") == 0 else None)(
                                   self.stats(a)), timeout=10,
                      what="lag 0 in stats")
        self.assertEqual(st["audit_central"]["state"], "up")
        self.assertGreaterEqual(st["audit_central"]["shipped_total"], 20)
        # socksctl, on either node's configuration, sees the whole fleet.
        out = json.loads(a.ctl("--json", "audit", "list", "--central",
                               "--limit", "1000").stdout)
        self.assertEqual(sorted({r["node"] for r in out}), ["alpha", "bravo"])
        self.assertEqual(len(out), len(self.local(a)) + len(self.local(b)))
        only = json.loads(b.ctl("--json", "audit", "list", "--central",
                                "--node", "bravo").stdout)
        self.assertEqual({r["node"] for r in only}, {"bravo"})
        nodes = json.loads(a.ctl("--json", "audit", "nodes").stdout)
        self.assertEqual([n["node"] for n in nodes], ["alpha", "bravo"])
        # Reports across the fleet, or of one node, from the store.
        def sessions_to_echo(*args):
            rows = json.loads(a.ctl("--json", "audit", "report",
                                    "destinations", "--central",
                                    *args).stdout)
            return sum(r["sessions"] for r in rows
                       if r["destination"] == "127.0.0.1")
        self.assertEqual(sessions_to_echo(), 35)
        self.assertEqual(sessions_to_echo("--node", "bravo"), 15)
        nodes = json.loads(a.ctl("--json", "audit", "report", "nodes",
                                 "--central").stdout)
        self.assertEqual([(n["node"], n["sessions"], n["allowed"])
                          for n in nodes],
                         [("alpha", 20, 20), ("bravo", 15, 15)])
        html = a.ctl("audit", "report", "nodes", "--central", "--format",
                     "html").stdout
        self.assertIn("<td>bravo</td>", html)
        r = a.ctl("audit", "verify", "--central")
        self.assertIn("node alpha: %d records verified" % len(self.local(a)),
                      r.stdout)
        self.assertIn("node bravo: %d records verified" % len(self.local(b)),
                      r.stdout)
        # Pinned to the node's own public key.
        r = a.ctl("audit", "verify", "--central", "--node", "alpha",
                  "--pubkey", os.path.join(a.tmp.path, "audit.pub"))
        self.assertIn("the chain is intact", r.stdout)

    def test_central_edits_and_deletions_fail_verify(self):
        a = self.node("alpha")
        self.sessions(a, 10)
        a.restart()             # a stop signs the chain's head
        self.sessions(a, 2)
        self.wait_shipped(a, "alpha")
        wait_for(lambda: int(self.pg.scalar(
            "SELECT count(*) FROM audit_checkpoints")) >= 1, timeout=10,
            what="a checkpoint shipped")
        seqs = sorted(s for _, s, _ in self.local(a))
        # An edited destination.
        self.pg.psql("UPDATE audit_records SET dst_port = dst_port + 1 WHERE "
                     "node = 'alpha' AND seq = %d" % seqs[3])
        r = a.ctl("audit", "verify", "--central", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("hash mismatch", r.stderr)
        self.pg.psql("UPDATE audit_records SET dst_port = dst_port - 1 WHERE "
                     "node = 'alpha' AND seq = %d" % seqs[3])
        self.assertEqual(a.ctl("audit", "verify", "--central").returncode, 0)
        # A signed checkpoint deleted (with it, an edit after it could be
        # recomputed unseen): the node shipped them 1 to its cursor.
        self.pg.psql("DELETE FROM audit_checkpoints WHERE node = 'alpha' AND "
                     "id = 1")
        r = a.ctl("audit", "verify", "--central", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("signed checkpoints were deleted", r.stderr)
        # The newest record deleted: the node's cursor still names it.
        self.pg.psql("DELETE FROM audit_records WHERE node = 'alpha' AND "
                     "seq = %d" % seqs[-1])
        r = a.ctl("audit", "verify", "--central", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("deleted from the end", r.stderr)

    def test_store_down_keeps_records_and_ships_them_once_after(self):
        a = self.node("alpha")
        self.sessions(a, 5)
        self.wait_shipped(a, "alpha")
        self.pg.stop()
        try:
            # Sessions go on while the store is down; the node says so.
            self.sessions(a, 30)
            wait_for(lambda: self.stats(a)["audit_central"]["state"] ==
                     "down", timeout=20, what="state down")
            a.wait_log("the central store cannot be reached")
            st = wait_for(lambda: (lambda s: s if s["audit_central"][
                "lag_records"] >= 30 else None)(self.stats(a)), timeout=10,
                what="the lag in stats")
            self.assertGreater(st["audit_central"]["lag_ms"], 0)
        finally:
            self.pg.start()
        self.wait_shipped(a, "alpha", timeout=30)
        self.no_duplicates()
        self.assertEqual(len(self.central("alpha")), 35)

    def test_a_store_that_stops_answering_is_noticed(self):
        # PostgreSQL's processes stopped: connections stay open, nothing
        # answers, and the server's statement timeout cannot fire. The
        # shipper hangs in its next statement; auditd's watchdog stops it
        # after 45 s of silence, and the state says down, not up.
        a = self.node("alpha")
        self.sessions(a, 3)
        self.wait_shipped(a, "alpha")
        started = a.log().count("gatewayd[auditd]: info: running as")
        self.pg.pause()
        try:
            self.sessions(a, 5)
            a.wait_log("the shipper has said nothing for 45 s", timeout=70)
            wait_for(lambda: self.stats(a).get("audit_central", {}).get(
                "state") == "down", timeout=20, what="state down")
            # auditd ends with its shipper and the parent starts both
            # again; until then new sessions are refused (by design).
            wait_for(lambda: a.log().count("gatewayd[auditd]: info: "
                                           "running as") > started,
                     timeout=20, what="auditd started again")
            time.sleep(0.5)     # its hello to the proxy
        finally:
            self.pg.resume()
        self.sessions(a, 2)
        self.wait_shipped(a, "alpha", timeout=40)
        self.no_duplicates()

    def test_a_node_killed_ships_the_rest_after_its_restart(self):
        a = self.node("alpha")
        self.sessions(a, 10)
        self.wait_shipped(a, "alpha")
        # The shipper first, mid-way.
        shipper = wait_for(lambda: self.shipper(a), timeout=10,
                           what="the shipper")
        os.kill(shipper, signal.SIGKILL)
        # Dead within a minute of its start (as a store that crashes it
        # at each connection would make it): not restarted in a loop.
        # auditd goes on, the gateway serves, the records wait here.
        a.wait_log("shipping stops until gatewayd restarts")
        wait_for(lambda: self.stats(a)["audit_central"]["state"] == "down",
                 timeout=10, what="state down")
        self.sessions(a, 10)
        self.assertIsNone(self.shipper(a))
        # Then the whole node, with SIGKILL: its log on disk is the copy.
        a.kill()
        self.sessions_refused(a)
        a.relaunch()
        wait_for(lambda: self.stats_or_none(a), timeout=15,
                 what="the restarted node")
        # The restarted node's shipper takes over where the store's
        # cursor stands: the records of both runs arrive, each once.
        self.sessions(a, 5)
        self.wait_shipped(a, "alpha", timeout=30)
        self.no_duplicates()
        r = a.ctl("audit", "verify", "--central", check=False)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_second_log_under_the_same_name_is_refused(self):
        a = self.node("alpha")
        self.sessions(a, 5)
        self.wait_shipped(a, "alpha")
        before = self.central("alpha")
        # Another gateway (another log) says it is alpha too.
        b = self.node("alpha")
        self.sessions(b, 5)
        b.wait_log("nothing is shipped until an administrator resolves it",
                   timeout=20)
        self.assertEqual(self.stats(b)["audit_central"]["state"],
                         "conflict")
        # alpha's central chain is untouched, and alpha still ships.
        self.assertEqual(self.central("alpha")[:len(before)], before)
        self.sessions(a, 3)
        self.wait_shipped(a, "alpha")

    def test_tls_is_required_over_tcp(self):
        # Without sslmode in the URL, a TCP connection needs TLS with the
        # server's certificate checked, 127.0.0.1 included (a local account
        # could stand in for a stopped server); this one has none.
        a = self.node("alpha")
        self.sessions(a, 2)
        self.wait_shipped(a, "alpha")
        conf = self.tmp.write("tls.conf", "audit_db %s\naudit_central "
                              "%s\n" % (os.path.join(a.tmp.path, "audit.db"),
                                        self.pg.url(self.passfile,
                                                    tls=True)))
        r = a.ctl("-c", conf, "audit", "nodes", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("SSL", r.stderr)
        # A Unix socket needs none.
        sock = self.tmp.write("sock.conf", "audit_db %s\naudit_central "
                              "postgresql://gw@%%2F%s:%d/fleet?passfile=%s\n"
                              % (os.path.join(a.tmp.path, "audit.db"),
                                 self.pg.sock.lstrip("/").replace(
                                     "/", "%2F"), self.pg.port,
                                 self.passfile))
        self.assertIn("alpha", a.ctl("-c", sock, "audit", "nodes").stdout)

    @evidence.needs_faketime
    def test_nothing_unshipped_is_pruned(self):
        # Records from three days ago, written while the store is down; a
        # run today with audit_retention_days 1 would prune them, but not
        # before the store has them.
        self.pg.stop()
        try:
            a = self.node("alpha", "audit_retention_days 1")
            a.stop()
            a.relaunch(evidence.THREE_DAYS_AGO)
            self.sessions(a, 3)
            a.stop()
            a.relaunch()
            self.sessions(a, 5)
            a.wait_log("the central store cannot be reached")
            time.sleep(3)       # the writer prunes at its start, then each 10 s
            self.assertEqual(len(self.local(a)), 8)
        finally:
            self.pg.start()
        # Shipped first, then pruned; the store keeps all eight.
        wait_for(lambda: len(self.central("alpha")) == 8, timeout=30,
                 interval=0.2, what="all 8 records central")
        wait_for(lambda: len(self.local(a)) == 5, timeout=30, interval=0.2,
                 what="the 3 old records pruned locally")
        self.no_duplicates()
        r = a.ctl("audit", "verify", "--central")
        self.assertIn("node alpha: 8 records verified", r.stdout)

    def test_a_password_in_the_url_is_refused(self):
        conf = self.tmp.write("bad.conf", "audit_db audit.db\n"
                              "audit_central postgresql://gw:secret@"
                              "127.0.0.1/fleet\n")
        r = self.gw.ctl("-c", conf, "audit", "nodes", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad.conf:2", r.stderr)
        self.assertIn("passfile", r.stderr)

    def test_hostile_bytes_ship_and_list_escaped(self):
        # A user id that is not UTF-8 and carries a terminal escape (SOCKS4):
        # PostgreSQL takes it as bytes, socksctl prints it escaped.
        a = self.node("alpha", "socks4 yes")
        a.expected = 1
        s = socket.create_connection(a.addr, timeout=10)
        s.sendall(b"\x04\x01" + self.echo.to_bytes(2, "big") +
                  bytes([127, 0, 0, 1]) + b"\xff\xfe\x1b[31mevil\x00")
        self.assertEqual(recv_exact(s, 8)[1], 0x5a)
        s.close()
        self.wait_shipped(a, "alpha")
        self.assertEqual(self.pg.scalar(
            "SELECT encode(ident, 'hex') FROM audit_records WHERE ident IS "
            "NOT NULL"), "fffe1b5b33316d6576696c")
        r = a.ctl("audit", "list", "--central")
        self.assertNotIn("\x1b", r.stdout)
        self.assertEqual(a.ctl("audit", "verify", "--central").returncode, 0)

    # helpers ---------------------------------------------------------------
    def shipper(self, gw):
        auditd = gw.child("socksgw-auditd")
        return auditd and child_of(auditd, "socksgw-shipper")

    def stats_or_none(self, gw):
        r = gw.ctl("--json", "stats", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def sessions_refused(self, gw):
        with self.assertRaises(OSError):
            with socket.create_connection(gw.addr, timeout=2) as s:
                s.recv(1)


if __name__ == "__main__":
    unittest.main()
