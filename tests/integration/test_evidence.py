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

from gwtest import EchoHandler, GatewayTestCase, socks_open, wait_for

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

    def test_pruning_is_signed(self):
        gw = self.start_gateway("audit_retention_days 1\n")
        self.gw.stop()
        self.gw = gw
        self.sessions(5)
        con = sqlite3.connect(os.path.join(gw.tmp.path, "audit.db"))
        ends = con.execute("SELECT count(*) FROM records").fetchone()[0]
        con.close()
        self.assertEqual(ends, 5)
        gw.stop()
        # Backdate two records (and re-sign nothing): the next run prunes
        # them, signing the cut. The chain is checked from the anchor.
        def backdate(con):
            rows = [dict(r) for r in con.execute(
                "SELECT * FROM records ORDER BY seq")]
            prev = bytes(32)
            for r in rows:
                if r["seq"] <= 2:
                    r["end_ms"] = r["start_ms"] = 1000
                r["hash"] = chain_hash(prev, r)
                prev = r["hash"]
                con.execute("UPDATE records SET start_ms = ?, end_ms = ?, "
                            "hash = ? WHERE id = ?", (r["start_ms"],
                                                      r["end_ms"], r["hash"],
                                                      r["id"]))
            con.execute("DELETE FROM checkpoints")
        db = os.path.join(gw.tmp.path, "audit.db")
        con = sqlite3.connect(db)
        con.row_factory = sqlite3.Row
        backdate(con)
        con.commit()
        con.close()
        gw.restart()
        wait_for(lambda: len(gw.audit()) == 3, timeout=20,
                 what="2 records pruned")
        gw.stop()
        r = self.verify()
        self.assertEqual(r.returncode, 0, r.stderr)
        con = sqlite3.connect(db)
        kinds = [k for (k,) in con.execute("SELECT kind FROM checkpoints")]
        con.close()
        self.assertIn("prune", kinds)
