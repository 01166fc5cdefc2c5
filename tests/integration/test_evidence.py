"""Evidence that holds up against whoever can write audit.db (issue 13):
signed checkpoints (Ed25519) of the hash chain. The tampering a hostile
reviewer did on main: deleting rows behind a forged pruning anchor, and
editing a row and recomputing the chain with a short script; both left
`audit verify` saying "intact". Here both are caught, and so are rows
removed before a checkpoint, a forged checkpoint, and (with the
checkpoints kept in syslog) the newest rows deleted with the checkpoints
after them."""
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import stat
import unittest

from gwtest import EchoHandler, GatewayTestCase, socks_open, wait_for

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
# A run whose clock says three days ago (records old enough to prune).
THREE_DAYS_AGO = {"LD_PRELOAD": FAKETIME, "FAKETIME": "-3d",
                  "DONT_FAKE_MONOTONIC": "1"}
needs_faketime = unittest.skipIf(
    os.environ.get("SOCKSGW_SANITIZE") == "1",
    "libfaketime is preloaded, which ASan does not allow (it runs in the "
    "plain build of the same CI run)")

FIELDS = ("seq", "kind", "session_id", "start_ms", "end_ms", "user",
          "client_addr", "client_port", "command", "dst_host", "dst_addr",
          "dst_port", "dst_country", "verdict", "rule_id", "reason",
          "bytes_up", "bytes_down", "close_reason", "protocol", "ident",
          "packets_up", "packets_down", "udp_destinations", "udp_denied")
INTS = {"seq", "session_id", "start_ms", "end_ms", "client_port",
        "dst_port", "rule_id", "bytes_up", "bytes_down", "packets_up",
        "packets_down", "udp_destinations", "udp_denied"}


def chain_hash(prev, row):
    """What an attacker's short script does: the chain, recomputed."""
    h = hashlib.sha256(prev)
    for name in FIELDS:
        v = row[name]
        if v is None:
            h.update(b"\xff\xff\xff\xff")
            continue
        v = str(v).encode()
        h.update(len(v).to_bytes(4, "big") + v)
    # Added by audit schemas 8 and 9: hashed only when present, after the
    # rest; with a node, auth_method whether NULL or not.
    def put(v):
        if v is None:
            h.update(b"\xff\xff\xff\xff")
        else:
            h.update(len(v.encode()).to_bytes(4, "big") + v.encode())
    if row.get("node") is not None:
        put(row.get("auth_method"))
        put(row["node"])
    elif row.get("auth_method") is not None:
        put(row["auth_method"])
    return h.digest()


class EvidenceTest(GatewayTestCase):
    def setUp(self):
        self.syslog_path = None
        super().setUp()

    def start_gateway(self, extra="", **kw):
        self.syslog_path = os.path.join(self.tmp.path, "log.sock")
        if not os.path.exists(self.syslog_path):
            self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.syslog.bind(self.syslog_path)
            os.chmod(self.syslog_path, 0o666)
            self.syslog.setblocking(False)
            self.addCleanup(self.syslog.close)
        extra += ("audit_syslog yes\naudit_syslog_pen 64999\n"
                  "audit_syslog_socket %s\n" % self.syslog_path)
        return super().start_gateway(extra, **kw)

    def sessions(self, n):
        port = self.tcp_server(EchoHandler)
        for _ in range(n):
            s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
            s.close()
        wait_for(lambda: len(self.gw.audit("seq IS NOT NULL")) >= n,
                 timeout=10, what="%d records" % n)

    def syslog_lines(self):
        lines = []
        while True:
            try:
                lines.append(self.syslog.recv(8192).decode())
            except BlockingIOError:
                return lines

    def verify(self, *args):
        return self.gw.ctl("audit", "verify", *args, check=False)

    def tamper(self, fn):
        """Runs fn on a connection to the database; verify's result."""
        db = os.path.join(self.gw.tmp.path, "audit.db")
        copy = db + ".orig"
        shutil.copy(db, copy)
        self.addCleanup(shutil.move, copy, db)
        con = sqlite3.connect(db)
        con.row_factory = sqlite3.Row
        fn(con)
        con.commit()
        con.close()

    def test_key_files_and_fingerprint(self):
        key = os.path.join(self.gw.tmp.path, "audit.key")
        pub = os.path.join(self.gw.tmp.path, "audit.pub")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
        self.assertIn("audit: signing key created", self.gw.log())
        self.sessions(3)
        self.gw.stop()
        out = json.loads(self.gw.ctl("--json", "audit", "verify").stdout)
        self.assertTrue(out["intact"])
        self.assertGreaterEqual(out["checkpoints"], 1)
        self.assertIn(out["key"], self.gw.log())

    def test_recomputed_chain_is_caught(self):
        self.sessions(6)
        self.gw.stop()
        self.assertEqual(self.verify().returncode, 0)

        def edit_and_recompute(con):
            rows = [dict(r) for r in con.execute(
                "SELECT * FROM records WHERE seq IS NOT NULL ORDER BY seq")]
            prev = bytes(32)
            for r in rows:
                if r["seq"] == 2:
                    r["bytes_down"] = 999999
                r["hash"] = chain_hash(prev, r)
                prev = r["hash"]
                con.execute("UPDATE records SET bytes_down = ?, hash = ? "
                            "WHERE id = ?", (r["bytes_down"], r["hash"],
                                             r["id"]))
        self.tamper(edit_and_recompute)
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("the chain was rewritten", r.stderr)

    def test_forged_pruning_anchor_is_caught(self):
        self.sessions(6)
        self.gw.stop()

        def cut(con):
            h = con.execute("SELECT hash FROM records WHERE seq = 4"
                            ).fetchone()[0]
            con.execute("INSERT OR REPLACE INTO chain (name, seq, hash) "
                        "VALUES ('anchor', 4, ?)", (h,))
            con.execute("DELETE FROM records WHERE seq <= 4")
            con.execute("DELETE FROM checkpoints WHERE seq <= 4")
        self.tamper(cut)
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("forged anchor", r.stderr)

    def test_rows_removed_before_a_checkpoint(self):
        self.sessions(4)
        self.gw.stop()
        self.tamper(lambda con: con.execute(
            "DELETE FROM records WHERE seq >= 3"))
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("that record is gone", r.stderr)

    def test_forged_checkpoint(self):
        self.sessions(3)
        self.gw.stop()
        self.tamper(lambda con: con.execute(
            "UPDATE checkpoints SET seq = seq + 1"))
        r = self.verify()
        self.assertEqual(r.returncode, 1)
        self.assertIn("did not sign it", r.stderr)

    def test_newest_rows_and_checkpoints_deleted(self):
        # Caught only with a copy of the checkpoints kept elsewhere.
        self.sessions(3)
        self.gw.stop()
        lines = self.syslog_lines()
        self.assertTrue(any(" checkpoint [socksgw@64999 " in l
                            for l in lines), lines)
        kept = self.tmp.write("checkpoints.log", "\n".join(lines) + "\n")
        self.assertEqual(self.verify("--checkpoints", kept).returncode, 0)

        def cut_the_end(con):
            con.execute("DELETE FROM records WHERE seq >= 2")
            con.execute("DELETE FROM checkpoints")
        self.tamper(cut_the_end)
        self.assertEqual(self.verify().returncode, 0)   # alone: unseen
        r = self.verify("--checkpoints", kept)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing from the database", r.stderr)

    def relaunch(self, extra="", env=None):
        """The same gateway (its files) again, its configuration added to,
        its clock offset by libfaketime when env says so."""
        self.gw.stop()
        if extra:
            with open(self.gw.conf, "a") as f:
                f.write(extra)
        self.gw.logfile = open(self.gw.logpath, "a")
        args, nofile, old_env = self.gw._how
        self.gw._launch(args, nofile, env)

    @needs_faketime
    def test_pruning_is_signed(self):
        # Records from three days ago, checkpointed then; a run today
        # prunes them up to that checkpoint and signs the cut.
        self.relaunch("audit_retention_days 1\n", THREE_DAYS_AGO)
        self.sessions(3)
        self.relaunch()
        self.sessions(5)
        # The 3 old ones go (up to the checkpoint of their run), 5 stay.
        wait_for(lambda: len(self.gw.audit()) == 5, timeout=20,
                 what="3 records pruned")
        self.assertEqual(min(r["seq"] for r in self.gw.audit()), 4)
        self.gw.stop()
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stderr)
        con = sqlite3.connect(os.path.join(self.gw.tmp.path, "audit.db"))
        kinds = [k for (k,) in con.execute("SELECT kind FROM checkpoints")]
        con.close()
        self.assertIn("prune", kinds)

    def test_backdated_rows_are_not_pruned(self):
        # The review's attack: mark rows old (no hash touched) and let the
        # writer prune and sign them away. It recomputes the chain to a
        # checkpoint it signed first, and refuses.
        self.sessions(2)
        self.relaunch()
        self.sessions(4)
        self.gw.stop()
        db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        con.execute("UPDATE records SET end_ms = 1 WHERE seq <= 2")
        con.commit()
        con.close()
        before = len(self.gw.audit("seq IS NOT NULL"))
        self.relaunch("audit_retention_days 1\n")
        self.gw.wait_log("records were altered; not pruning", timeout=20)
        self.gw.stop()
        self.assertEqual(len(self.gw.audit("seq IS NOT NULL")), before)
        self.assertEqual(self.verify().returncode, 1)

    @needs_faketime
    def test_a_moved_anchor_does_not_prune_young_records(self):
        # Review of issue 20: records 1-2 today, 3-6 "three days ago" (a
        # clock stepped back), signed at 6. An anchor planted at 2 (its
        # real hash) made the bounded search for young records start at
        # 3, and the cut to 6 took the young 1-2 with it, signed.
        self.sessions(2)
        self.relaunch(env=THREE_DAYS_AGO)
        self.sessions(4)
        self.gw.stop()
        db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        h = con.execute("SELECT hash FROM records WHERE seq = 2").fetchone()[0]
        con.execute("INSERT OR REPLACE INTO chain (name, seq, hash) VALUES "
                    "('anchor', 2, ?)", (h,))
        con.commit()
        con.close()
        self.relaunch("audit_retention_days 1\n")
        self.gw.wait_log("is not where this key signed a cut", timeout=20)
        self.gw.stop()
        self.assertEqual(sorted(r["seq"] for r in
                                self.gw.audit("seq IS NOT NULL")),
                         [1, 2, 3, 4, 5, 6])

    @needs_faketime
    def test_an_anchor_moved_after_a_cut_stops_pruning(self):
        # A signed cut at 3; then 4-6, old too, and 4 edited. Pruning
        # refuses a chain that no longer holds; moving the anchor on to 5
        # (its real hash) made the next cut start there, and 4 went under
        # a signature without its chain recomputed.
        self.relaunch("audit_retention_days 1\n", THREE_DAYS_AGO)
        self.sessions(3)
        self.relaunch()
        wait_for(lambda: len(self.gw.audit("seq IS NOT NULL")) == 0,
                 timeout=20, what="3 records pruned")
        self.relaunch(env=THREE_DAYS_AGO)
        self.sessions(3)
        self.gw.stop()
        db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        con.execute("UPDATE records SET dst_host = 'elsewhere.example' "
                    "WHERE seq = 4")
        h = con.execute("SELECT hash FROM records WHERE seq = 5").fetchone()[0]
        con.execute("UPDATE chain SET seq = 5, hash = ? WHERE name = "
                    "'anchor'", (h,))
        con.commit()
        con.close()
        self.relaunch()
        self.gw.wait_log("is not where this key signed a cut", timeout=20)
        self.gw.stop()
        self.assertEqual(sorted(r["seq"] for r in
                                self.gw.audit("seq IS NOT NULL")), [4, 5, 6])

    @needs_faketime
    def test_pruning_waits_for_the_rollups(self):
        # Review of issue 20: a prune could remove records the hourly
        # rollups had not counted yet, and the reports never counted them.
        # Rollups blocked (a trigger refuses them): nothing is pruned, and
        # the log says why; unblocked, they count all, and pruning goes on.
        self.relaunch("audit_retention_days 1\n", THREE_DAYS_AGO)
        self.sessions(3)
        self.gw.stop()
        db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        con.executescript(
            "DELETE FROM chain WHERE name = 'rollup'; "
            "DELETE FROM hourly_users; DELETE FROM hourly_destinations; "
            "DELETE FROM hourly_denials; "
            "CREATE TRIGGER no_rollup BEFORE INSERT ON hourly_users BEGIN "
            "SELECT RAISE(ABORT, 'rollups refused by the test'); END;")
        con.close()
        self.relaunch()
        self.gw.wait_log("pruning waits for the rollups", timeout=30)
        self.gw.stop()
        self.assertEqual(len(self.gw.audit("seq IS NOT NULL")), 3)
        con = sqlite3.connect(db)
        con.execute("DROP TRIGGER no_rollup")
        con.commit()
        con.close()
        self.relaunch()
        wait_for(lambda: len(self.gw.audit("seq IS NOT NULL")) == 0,
                 timeout=30, what="3 records pruned")
        self.gw.stop()
        con = sqlite3.connect(db)
        counted = con.execute("SELECT sum(sessions) FROM hourly_users"
                              ).fetchone()[0]
        con.close()
        self.assertEqual(counted, 3)

    def test_a_planted_checkpoint_does_not_stop_signing(self):
        # The review's attack: a checkpoint row far ahead made the writer
        # believe the head was signed.
        self.sessions(2)
        self.gw.stop()
        db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        con.execute("INSERT INTO checkpoints (kind, seq, hash, time_ms, "
                    "signature) VALUES ('checkpoint', 9000000000000000000, "
                    "zeroblob(32), 0, zeroblob(64))")
        con.commit()
        con.close()
        self.gw.restart()
        self.sessions(5)
        self.gw.stop()
        con = sqlite3.connect(db)
        signed = con.execute("SELECT max(seq) FROM checkpoints WHERE "
                             "seq < 1000").fetchone()[0]
        head = con.execute("SELECT max(seq) FROM records").fetchone()[0]
        con.close()
        self.assertGreater(head, 2)
        self.assertEqual(signed, head)

    def test_a_lost_key_is_not_replaced_silently(self):
        self.sessions(1)
        self.gw.stop()
        os.unlink(os.path.join(self.gw.tmp.path, "audit.key"))
        from gwtest import GATEWAYD
        import subprocess
        r = subprocess.run([GATEWAYD, "-c", self.gw.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("audit.key is missing but", r.stderr)
