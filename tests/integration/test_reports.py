"""socksctl audit report over an audit database with known contents: the
numbers of every kind agree across table, CSV, JSON and HTML and with a
direct SQL count; the HTML is one self-contained file, and Chromium
renders it to a PNG."""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unittest

from gwtest import GatewayTestCase

USERS = ["alice", "bob", "carol", None]
HOSTS = ["www.example.com", "cdn.example.net", "games.example", None]


class ReportTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        # A real audit database, made by gatewayd, then filled by the test.
        self.gw.ctl("group", "add", "staff")
        self.gw.ctl("user", "add", "alice", "--group", "staff")
        self.gw.ctl("user", "add", "bob", "--group", "staff")
        self.gw.stop()
        self.db = os.path.join(self.gw.tmp.path, "audit.db")
        con = sqlite3.connect(self.db)
        now = int(time.time() * 1000)
        self.rows = []
        for i in range(600):
            user = USERS[i % 4]
            host = HOSTS[(i // 4) % 4]
            deny = i % 5 == 0
            start = now - 3 * 86400000 + i * 400000   # every 6.7 minutes
            row = ("session", 10_000 + i, start, start + 1000, user,
                   "10.0.0.%d" % (i % 7), 40000 + i, "connect",
                   host, "192.0.2.%d" % (i % 9) if host else "192.0.2.99",
                   443, "deny" if deny else "allow", 3 if deny else 1,
                   "rule", 0 if deny else 100 + i, 0 if deny else 1000 + i,
                   "closed", i + 1)
            self.rows.append(row)
            # Completed records, as the writer leaves them (in the chain).
            con.execute("INSERT INTO records (kind, session_id, start_ms, "
                        "end_ms, user, client_addr, client_port, command, "
                        "dst_host, dst_addr, dst_port, verdict, rule_id, "
                        "reason, bytes_up, bytes_down, close_reason, seq) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        con.commit()
        self.sql = con

    def report(self, kind, fmt, *extra):
        r = self.gw.ctl("audit", "report", kind, "--since", "-4d",
                        "--format", fmt, *extra)
        return r.stdout

    def test_users_agree_everywhere(self):
        expect = {}
        for row in self.sql.execute(
                "SELECT coalesce(user, '(anonymous)'), count(*), "
                "sum(verdict = 'allow'), sum(verdict = 'deny'), "
                "sum(bytes_up), sum(bytes_down) FROM records GROUP BY user"):
            expect[row[0]] = [str(x) for x in row[1:]]
        got_json = {r["user"]: [str(r[k]) for k in ("sessions", "allowed",
                                                   "denied", "bytes_up",
                                                   "bytes_down")]
                    for r in json.loads(self.report("users", "json"))}
        got_csv = {r[0]: r[1:] for r in
                   list(csv.reader(io.StringIO(self.report("users",
                                                           "csv"))))[1:]}
        table = self.report("users", "table").splitlines()[1:]
        got_table = {l.split()[0]: l.split()[1:] for l in table}
        self.assertEqual(got_json, expect)
        self.assertEqual(got_csv, expect)
        self.assertEqual(got_table, expect)
        html = self.report("users", "html")
        for user, values in expect.items():
            cells = "".join('<td class="n">%s</td>' % v for v in values)
            self.assertIn("<td>%s</td>%s" % (user, cells), html)

    def test_group_and_user_filters(self):
        staff = json.loads(self.report("users", "json", "--group", "staff"))
        self.assertEqual(sorted(r["user"] for r in staff), ["alice", "bob"])
        one = json.loads(self.report("users", "json", "--user", "carol"))
        self.assertEqual([r["user"] for r in one], ["carol"])

    def test_rollups_and_records_agree(self):
        # Read-only, socksctl reads the records; otherwise the rollups.
        # (The files are 0640 now: the reader is let in as an auditor
        # would be, by read permission on the database and its WAL.)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.chmod(self.db + suffix, 0o644)
        os.chmod(os.path.join(self.gw.tmp.path, "policy.db"), 0o644)
        os.chmod(self.db, 0o444)
        env = dict(os.environ)
        raw = subprocess.run([os.environ["SOCKSCTL"], "-c", self.gw.conf,
                              "audit", "report", "users", "--since", "-4d",
                              "--format", "json"], capture_output=True,
                             text=True, timeout=60, env=env,
                             preexec_fn=self.as_nobody)
        os.chmod(self.db, 0o644)
        rolled = self.report("users", "json")
        if os.geteuid() == 0:
            self.assertIn("reading the records instead", raw.stderr)
            self.assertEqual(json.loads(raw.stdout or "null"),
                             json.loads(rolled), raw.stderr)
        rows = self.sql.execute("SELECT count(*) FROM hourly_users").fetchone()
        self.assertGreater(rows[0], 0)

    @staticmethod
    def as_nobody():
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)

    def test_destinations_denials_timeline(self):
        top = json.loads(self.report("destinations", "json", "--top", "2",
                                     "--by", "bytes"))
        expect = self.sql.execute(
            "SELECT coalesce(dst_host, dst_addr), sum(bytes_up + bytes_down) "
            "FROM records GROUP BY 1 ORDER BY 2 DESC LIMIT 2").fetchall()
        self.assertEqual([(r["destination"], r["bytes"]) for r in top],
                         expect)
        den = json.loads(self.report("denials", "json"))
        self.assertEqual(sum(r["denials"] for r in den), 120)
        self.assertEqual({r["rule"] for r in den}, {3})
        days = json.loads(self.report("timeline", "json", "--bucket", "day"))
        self.assertEqual(sum(r["sessions"] for r in days), 600)
        hours = json.loads(self.report("timeline", "json"))
        self.assertEqual(sum(r["sessions"] for r in hours), 600)
        self.assertGreater(len(hours), len(days))
        csvt = list(csv.reader(io.StringIO(self.report("timeline", "csv",
                                                       "--bucket", "day"))))
        self.assertEqual([[r["period"], str(r["sessions"])] for r in days],
                         [row[:2] for row in csvt[1:]])

    def test_html_is_self_contained_and_renders(self):
        html = self.report("users", "html")
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", html)
        self.assertNotIn("<link", html)
        for ref in ("src=", "href="):
            self.assertNotIn(ref, html)
        self.assertEqual(html.count("<svg"), 3)
        self.assertIn("Traffic over time", html)
        self.assertIn("Top users by traffic", html)
        self.assertIn("Top denied destinations", html)
        chromium = shutil.which("chromium")
        if chromium is None:
            self.fail("chromium is not installed (packaging/install-deps.sh "
                      "test installs it)")
        page = os.path.join(self.tmp.path, "report.html")
        png = os.path.join(self.tmp.path, "report.png")
        with open(page, "w") as f:
            f.write(html)
        profile = os.path.join(self.tmp.path, "chromium-profile")
        r = subprocess.run([chromium, "--headless", "--no-sandbox",
                            "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--no-first-run", "--user-data-dir=" + profile,
                            "--window-size=1100,1300",
                            "--screenshot=" + png, "file://" + page],
                           capture_output=True, timeout=120)
        self.assertTrue(os.path.exists(png), r.stderr[-2000:])
        with open(png, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 20000)
        if os.environ.get("SOCKSGW_KEEP_REPORT"):
            shutil.copy(png, os.environ["SOCKSGW_KEEP_REPORT"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
