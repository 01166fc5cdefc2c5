"""socksctl against a real policy database: every bad argument is an
error that names it and changes nothing (exit 1; 2 for usage), positions
stay 1..N through add/move/del, references are kept whole, --json is JSON,
and a 1,000,000-entry list imports in seconds."""
import json
import os
import subprocess
import time
import unittest

from gwtest import SOCKSCTL, TempDir


class SocksctlTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        # auth pam: explain answers for users only where requests carry
        # them (under auth none it gives the verdict without the user).
        self.conf = self.tmp.write("gatewayd.conf", "timezone UTC\n"
                                   "auth pam\n")
        self.ok("init")

    def run_ctl(self, *args, stdin=None):
        return subprocess.run([SOCKSCTL, "-c", self.conf] + list(args),
                              capture_output=True, text=True, timeout=120,
                              input=stdin)

    def ok(self, *args):
        r = self.run_ctl(*args)
        self.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
        return r.stdout

    def js(self, *args):
        return json.loads(self.ok("--json", *args))

    def fails(self, code, *args, says):
        before = self.dump()
        r = self.run_ctl(*args)
        self.assertEqual(r.returncode, code, "%s: %s" % (args, r.stderr))
        self.assertIn(says, r.stderr)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertEqual(self.dump(), before, "%s changed something" % (args,))

    def dump(self):
        return (self.ok("--json", "rule", "list"), self.ok("--json", "user",
                "list"), self.ok("--json", "list", "list"),
                self.ok("--json", "group", "list"))

    def test_bad_arguments_change_nothing(self):
        self.ok("group", "add", "staff")
        self.ok("user", "add", "alice", "--group", "staff")
        self.ok("list", "create", "ads", "--type", "domain")
        self.ok("rule", "add", "allow", "--user", "alice")
        cases = [
            (("rule", "add", "allow", "--src", "10.1.2.3/8"),
             "--src 10.1.2.3/8: host bits set"),
            (("rule", "add", "allow", "--port", "70000"),
             "--port 70000: ports are 1 to 65535"),
            (("rule", "add", "allow", "--country", "FRA"),
             "--country FRA: expected a two-letter"),
            (("rule", "add", "allow", "--time", "Mon-Fri 8-18"),
             "--time 'Mon-Fri 8-18'"),
            (("rule", "add", "allow", "--user", "bob"),
             "--user bob: no such user"),
            (("rule", "add", "allow", "--user", "@nobody"),
             "--user @nobody: no such group"),
            (("rule", "add", "allow", "--dst", "@nolist"),
             "--dst @nolist: no such list"),
            (("rule", "add", "allow", "--dst", "bad host!"),
             "--dst bad host!: not a CIDR"),
            (("rule", "add", "allow", "--cmd", "ping"),
             "--cmd ping: expected connect"),
            (("rule", "add", "allow", "--position", "9"),
             "--position 9: there is 1 rule"),
            (("rule", "del", "7"), "rule 7: no such rule"),
            (("rule", "move", "1", "5"), "position 5: there are 1 rules"),
            (("user", "del", "alice"), "user alice: named by rule 1"),
            (("user", "add", "alice"), "user alice: already exists"),
            (("user", "add", "carol", "--group", "nope"),
             "group nope: no such group"),
            (("list", "del", "nolist"), "list nolist: no such list"),
            (("user", "add", "bad name"), "no spaces"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                self.fails(1, *args, says=says)
        for args, says in [(("rule",), "rule: add, list"),
                           (("rule", "add", "maybe"), "allow or deny"),
                           (("rule", "add", "allow", "--frob", "x"),
                            "unknown option '--frob'"),
                           (("rule", "del", "x"), "expected a positive"),
                           (("frob",), "unknown command 'frob'")]:
            with self.subTest(args=args):
                self.fails(2, *args, says=says)

    def test_positions_stay_contiguous(self):
        ids = [self.js("rule", "add", "allow", "--port", str(p))["id"]
               for p in (1, 2, 3)]
        new = self.js("rule", "add", "deny", "--port", "4",
                      "--position", "2")["id"]
        order = [r["id"] for r in self.js("rule", "list")]
        self.assertEqual(order, [ids[0], new, ids[1], ids[2]])
        self.ok("rule", "move", str(ids[2]), "1")
        order = [r["id"] for r in self.js("rule", "list")]
        self.assertEqual(order, [ids[2], ids[0], new, ids[1]])
        self.ok("rule", "del", str(ids[0]))
        rules = self.js("rule", "list")
        self.assertEqual([r["id"] for r in rules], [ids[2], new, ids[1]])
        self.assertEqual([r["position"] for r in rules], [1, 2, 3])

    def test_rule_show_and_conditions(self):
        self.ok("group", "add", "staff")
        self.ok("list", "create", "ads", "--type", "domain")
        rid = self.js("rule", "add", "deny", "--user", "@staff", "--dst",
                      "@ads", "--dst", "*.Example.COM", "--dst",
                      "10.0.0.0/8", "--port", "443", "--port", "8000-9000",
                      "--time", "fri-mon 22:00-06:00", "--comment",
                      "night")["id"]
        r = self.js("rule", "show", str(rid))[0]
        self.assertEqual(r["action"], "deny")
        self.assertEqual(r["comment"], "night")
        for part in ("--user @staff", "--dst @ads", "--dst *.example.com",
                     "--dst 10.0.0.0/8", "--port 443", "--port 8000-9000",
                     "--time 'Mon,Fri-Sun 22:00-06:00'"):
            self.assertIn(part, r["conditions"])
        self.ok("rule", "disable", str(rid))
        self.assertIs(self.js("rule", "show", str(rid))[0]["enabled"], False)

    def test_list_import_reports_bad_lines_and_imports_nothing(self):
        self.ok("list", "create", "nets", "--type", "cidr")
        path = self.tmp.write("nets.txt", "# networks\n10.0.0.0/8\n\n"
                              "192.0.2.0/33\n2001:db8::/32  # docs\n"
                              "bogus\n")
        r = self.run_ctl("list", "import", "nets", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:4: 192.0.2.0/33: bad prefix length" % path, r.stderr)
        self.assertIn("%s:6: bogus: a host name, and this list holds "
                      "addresses" % path, r.stderr)
        self.assertIn("2 bad lines; nothing imported", r.stderr)
        self.assertEqual(self.js("list", "show", "nets"), [])
        # An address in a domain list would never match: an error too.
        self.ok("list", "create", "names", "--type", "domain")
        path2 = self.tmp.write("names.txt", "example.com\n10.0.0.1\n"
                               "192.0.2.0/24\n2001:db8::1\n")
        r = self.run_ctl("list", "import", "names", path2)
        self.assertEqual(r.returncode, 1)
        for n, v in ((2, "10.0.0.1"), (3, "192.0.2.0/24"),
                     (4, "2001:db8::1")):
            self.assertIn("%s:%d: %s: an address, and this list holds "
                          "names" % (path2, n, v), r.stderr)
        self.assertEqual(self.js("list", "show", "names"), [])
        path = self.tmp.write("nets.txt", "10.0.0.0/8\n2001:db8::/32\n"
                              "10.0.0.0/8\n")
        self.assertEqual(self.js("list", "import", "nets", path),
                         {"list": "nets", "read": 3, "added": 2})

    def test_import_a_million_names(self):
        self.ok("list", "create", "big", "--type", "domain")
        path = os.path.join(self.tmp.path, "big.txt")
        with open(path, "w") as f:
            for i in range(1000000):
                f.write("host%d.category%d.example\n" % (i, i % 211))
        t0 = time.monotonic()
        out = self.js("list", "import", "big", path)
        took = time.monotonic() - t0
        self.assertEqual(out["added"], 1000000)
        lists = self.js("list", "list")
        self.assertEqual(lists[0]["entries"], 1000000)
        print("\nimported 1,000,000 names in %.1f s" % took)

    def test_explain(self):
        self.ok("group", "add", "staff")
        self.ok("user", "add", "alice", "--group", "staff")
        self.ok("rule", "add", "deny", "--dst", "*.games.example")
        self.ok("rule", "add", "allow", "--user", "@staff", "--port", "443",
                "--time", "Mon-Fri 08:00-18:00")
        e = self.js("explain", "--user", "alice", "--dst",
                    "news.example:443", "--addr", "192.0.2.1", "--at",
                    "2026-11-30T10:00")
        self.assertEqual((e["verdict"], e["rule"]), ("allow", 2))
        self.assertEqual(e["rules"][0]["why"], "destination news.example "
                         "(192.0.2.1) is not *.games.example")
        e = self.js("explain", "--user", "alice", "--dst",
                    "news.example:443", "--addr", "192.0.2.1", "--at",
                    "2026-11-28T10:00")
        self.assertEqual((e["verdict"], e["rule"]), ("deny", 0))
        self.assertEqual(e["rules"][1]["why"], "time Sat 10:00 is outside "
                         "Mon-Fri 08:00-18:00")
        e = self.js("explain", "--dst", "x.games.example:443")
        self.assertEqual((e["verdict"], e["rule"]), ("deny", 1))
        text = self.ok("explain", "--user", "bob", "--dst", "127.0.0.1:443")
        self.assertIn("verdict: deny", text)
        self.assertIn("user bob is not @staff", text)

    def make_policy(self):
        self.ok("defaults", "--max-sessions", "100", "--quota", "5G/day")
        self.ok("group", "add", "staff", "--comment", "Teachers and staff",
                "--max-sessions", "50")
        self.ok("user", "add", "alice", "--group", "staff", "--bandwidth",
                "10M")
        self.ok("user", "add", "bob", "--disabled", "--comment",
                'says "hi" \\ \x1b[31m')
        self.ok("list", "create", "games", "--type", "domain")
        path = self.tmp.write("g.txt", "poki.com\n*.games.example\n")
        self.ok("list", "import", "games", path)
        self.ok("rule", "add", "deny", "--dst", "@games", "--comment",
                "no games")
        self.ok("rule", "add", "allow", "--user", "@staff", "--port", "443",
                "--time", "Mon-Fri 08:00-18:00")

    def test_export_import_round_trip(self):
        self.make_policy()
        first = self.ok("export")
        self.assertIn('user add bob --comment "says \\"hi\\" \\\\ '
                      '\\x1b[31m" --disabled', first)
        self.assertIn("\t*.games.example\n\tpoki.com\n", first)
        path = self.tmp.write("policy.txt", first)
        other = self.tmp.write("other.conf", "timezone UTC\nauth pam\n"
                               "policy_db other.db\n")
        run = lambda *a: subprocess.run([SOCKSCTL, "-c", other] + list(a),
                                        capture_output=True, text=True,
                                        timeout=30)
        self.assertEqual(run("init").returncode, 0)
        r = run("import", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 rules, 2 users, 1 groups, 1 lists (2 entries), "
                      "defaults", r.stdout)
        self.assertEqual(run("export").stdout, first)
        # One change-log entry for the whole import.
        log = json.loads(run("--json", "log").stdout)
        self.assertEqual(len(log), 1)
        self.assertIn("import", log[0]["command"])
        # Importing the same file again changes nothing, and --output
        # writes the same bytes.
        self.assertEqual(run("import", path).returncode, 0)
        out = os.path.join(self.tmp.path, "again.txt")
        self.assertEqual(run("export", "--output", out).returncode, 0)
        with open(out) as f:
            self.assertEqual(f.read(), first)

    def test_import_errors_change_nothing(self):
        self.make_policy()
        before = self.ok("export")
        log = len(self.js("log"))
        for text, where, why in (
                ("group add g\nuser add x --group nosuch\n", 2,
                 "group nosuch: no such group"),
                ("rule add allow --port 99999\n", 1, "ports are 1 to 65535"),
                ("list create l --type cidr\n\texample.com\n", 2,
                 "example.com: a host name, and this list holds addresses"),
                ("sessions kill 3\n", 1, "does not belong in a policy file"),
                ('rule add allow --comment "open\n', 1,
                 "a quote is not closed"),
                ("\tstray.example\n", 1, "no list create comes before it")):
            path = self.tmp.write("bad.txt", text)
            r = self.run_ctl("import", path)
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn("%s:%d: " % (path, where), r.stderr)
            self.assertIn(why, r.stderr)
            self.assertEqual(self.ok("export"), before)
        self.assertEqual(len(self.js("log")), log)

    def test_import_dry_run(self):
        self.make_policy()
        before = self.ok("export")
        changed = before.replace("--max-sessions 50", "--max-sessions 60")
        changed += "rule add allow --port 22\n"
        path = self.tmp.write("changed.txt", changed)
        r = self.run_ctl("import", "--dry-run", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("-group add staff --comment \"Teachers and staff\" "
                      "--max-sessions 50\n+group add staff --comment "
                      "\"Teachers and staff\" --max-sessions 60", r.stdout)
        self.assertIn("+rule add allow --port 22", r.stdout)
        self.assertEqual(self.ok("export"), before)
        path = self.tmp.write("same.txt", before)
        self.assertIn("no difference", self.ok("import", "--dry-run", path))

    def test_policy_tests(self):
        self.make_policy()
        good = self.tmp.write("good.table",
                              "# request => verdict rule\n"
                              "user=alice dst=news.example:443 "
                              "addr=192.0.2.1 at=2026-11-30T10:00 => allow 2\n"
                              "src=10.1.1.1 dst=x.games.example:443 "
                              "=> deny 1\n")
        self.assertEqual(self.ok("test", good), "2 passed, 0 failed\n")
        bad = self.tmp.write("bad.table",
                             "user=alice dst=news.example:443 "
                             "addr=192.0.2.1 at=2026-11-28T10:00 => allow 2\n"
                             "colour=red dst=a.example:1 => deny 0\n")
        for text in ("dst=a.example:1 => allow 2x\n",
                     "dst=a.example:1 => maybe 2\n"):
            r = self.run_ctl("test", self.tmp.write("junk.table", text))
            self.assertEqual(r.returncode, 1, text)
            self.assertIn("expected REQUEST => VERDICT RULE", r.stderr)
        r = self.run_ctl("test", self.tmp.write("empty.table", "# none\n"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no request to test", r.stderr)
        r = self.run_ctl("test", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:1: user=alice" % bad, r.stdout)
        self.assertIn("  expected: allow 2\n  got:      deny 0", r.stdout)
        self.assertIn("%s:2: bad request field 'colour'" % bad, r.stderr)
        self.assertIn("0 passed, 2 failed", r.stdout)

    def test_json_shapes(self):
        # Lists are arrays of objects; counts, ids and positions numbers;
        # yes/no booleans; what is not set null: never "yes", "no", "none".
        self.make_policy()
        self.ok("user", "add", "carol")
        checks = {("rule", "list"): {"id": int, "position": int,
                                     "enabled": bool},
                  ("user", "list"): {"enabled": bool},
                  ("group", "list"): {"members": int},
                  ("list", "list"): {"entries": int},
                  ("defaults",): {},
                  ("log",): {"id": int}}
        for argv, types in checks.items():
            rows = self.js(*argv)
            self.assertIsInstance(rows, list, argv)
            self.assertTrue(rows, argv)
            for row in rows:
                self.assertIsInstance(row, dict)
                for k, v in row.items():
                    self.assertNotIn(v, ("yes", "no", "none"), (argv, k))
                    self.assertIsInstance(v, types.get(k, (str, int, float,
                                                           bool,
                                                           type(None))),
                                          (argv, k, v))
        staff = self.js("group", "list")[0]
        self.assertEqual((staff["max_sessions"], staff["rate"]), ("50", None))
        self.assertIsNone(self.js("rule", "list")[0]["hits"])

    def test_log_revert_and_rollback(self):
        ports = lambda: [r["conditions"] for r in self.js("rule", "list")]
        self.ok("rule", "add", "allow", "--port", "80")            # change 1
        self.ok("rule", "add", "allow", "--port", "443")           # 2
        self.ok("rule", "add", "deny", "--port", "22")             # 3
        self.ok("rule", "del", "2")                                # 4
        self.ok("user", "add", "bob")                              # 5
        # The deletion undone alone: the rule is back in its place, and
        # the later change (bob) stays.
        self.assertIn("change 4 undone", self.ok("log", "revert", "4"))
        self.assertEqual(ports(), ["--port 80", "--port 443", "--port 22"])
        self.assertEqual([u["name"] for u in self.js("user", "list")],
                         ["bob"])
        # As git revert: change 2's line now sits beside change 3's, so it
        # cannot go alone; nothing changes.
        r = self.run_ctl("log", "revert", "2")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot be undone alone", r.stderr)
        self.assertIn("rollback --to 1", r.stderr)
        self.assertEqual(ports(), ["--port 80", "--port 443", "--port 22"])
        # A change whose lines a later one altered cannot go alone either.
        self.ok("rule", "add", "allow", "--port", "8080")          # 7
        self.ok("rule", "disable", "4")                            # 8
        r = self.run_ctl("log", "revert", "7")
        self.assertEqual(r.returncode, 1)
        self.assertIn("rollback --to 6", r.stderr)
        # Lists: an entry added to one list leaves only that list.
        path = self.tmp.write("x.txt", "x.example\n")
        self.ok("list", "create", "bb", "--type", "domain")
        self.ok("list", "create", "aa", "--type", "domain")
        self.ok("list", "import", "bb", path)
        bb = self.js("log")[0]["id"]
        self.ok("list", "import", "aa", path)
        self.ok("log", "revert", str(bb))
        self.assertEqual(self.js("list", "show", "aa"),
                         [{"entry": "x.example"}])
        self.assertEqual(self.js("list", "show", "bb"), [])
        self.assertIn("the policy is as it was after change 1",
                      self.ok("rollback", "--to", "1"))
        self.assertEqual(ports(), ["--port 80"])
        self.assertEqual(self.js("user", "list"), [])
        log = self.js("log")
        self.assertEqual(log[0]["command"], "socksctl rollback --to 1")
        self.assertEqual(self.run_ctl("rollback", "--to", "999").returncode,
                         1)
        # A move is a change too; a reverted move puts the rule back.
        self.ok("rule", "add", "allow", "--port", "443")
        self.ok("rule", "move", "2", "1")
        self.assertEqual(ports(), ["--port 443", "--port 80"])
        self.ok("log", "revert", str(self.js("log")[0]["id"]))
        self.assertEqual(ports(), ["--port 80", "--port 443"])

    def test_limits_survive_export_exactly(self):
        # A listing rounds (1.46K); the export must not.
        self.ok("user", "add", "cap", "--bandwidth", "1500", "--quota",
                "1500000000/day")
        self.ok("group", "add", "g", "--bandwidth", "10M", "--max-sessions",
                "1000001")
        text = self.ok("export")
        self.assertIn("--bandwidth 1500 --quota 1500000000/day", text)
        self.assertIn("--bandwidth 10M", text)
        self.ok("import", self.tmp.write("p.txt", text))
        import sqlite3
        db = sqlite3.connect(os.path.join(self.tmp.path, "policy.db"))
        self.assertEqual(db.execute("SELECT bandwidth, quota FROM users "
                                    "WHERE name = 'cap'").fetchone(),
                         (1500, 1500000000))
        self.assertEqual(db.execute("SELECT bandwidth, max_sessions FROM "
                                    "groups").fetchone(),
                         (10485760, 1000001))
        db.close()

    def test_failed_import_leaves_no_journal_and_no_temp_files(self):
        self.ok("list", "create", "big", "--type", "domain")
        lines = ["list create l%d --type domain\n\th%d.example\n" % (i, i)
                 for i in range(3000)]
        path = self.tmp.write("big.txt", "".join(lines) +
                              "rule add allow --port 0\n")
        before = set(os.listdir("/tmp"))
        r = self.run_ctl("import", path)
        self.assertEqual(r.returncode, 1)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.path,
                                                     "policy.db-journal")))
        r = self.run_ctl("import", "--dry-run", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual([f for f in set(os.listdir("/tmp")) - before
                          if f.startswith("socksctl-")], [])
        # Read-only, as gatewayd reads it, the policy opens at once.
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
            self.tmp.path, "policy.db"), uri=True)
        self.assertEqual(db.execute("SELECT count(*) FROM lists")
                         .fetchone()[0], 1)
        db.close()

    def test_typos_get_the_nearest_word(self):
        for argv, hint in ((["rule", "add", "allow", "--dest", "1.2.3.4"],
                            "did you mean --dst?"),
                           (["rul", "list"], "did you mean rule?"),
                           (["rule", "lst"], "did you mean list?"),
                           (["user", "add", "z", "--quotta", "5G/day"],
                            "did you mean --quota?")):
            r = self.run_ctl(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn(hint, r.stderr)
        r = self.run_ctl("rule", "add", "allow", "--xyzzy", "1")
        self.assertNotIn("did you mean", r.stderr)
        self.assertEqual(self.js("rule", "list"), [])
        # rule add --help teaches every condition, with an example.
        text = self.ok("rule", "add", "--help")
        for opt in ("--src ", "--src-country ", "--dst @", "--country ",
                    "--port ", "--user @", "--cmd ", "--time '"):
            self.assertIn("\n  " + opt, text.replace(", --", "\n  --"))

    def test_symbolic_links_are_not_followed(self):
        # An admin (who may write the policy folder) must not lead root's
        # socksctl init or gatewayd to create or change another file.
        for kw in ("policy_db", "audit_db"):
            d = self.tmp.subdir()
            target = os.path.join(d.path, "elsewhere")
            os.symlink(target, os.path.join(d.path, kw + ".db"))
            conf = d.write("c.conf", "policy_db %s\naudit_db %s\n" % (
                os.path.join(d.path, "policy_db.db") if kw == "policy_db"
                else os.path.join(d.path, "p.db"),
                os.path.join(d.path, "audit_db.db") if kw == "audit_db"
                else os.path.join(d.path, "a.db")))
            r = subprocess.run([SOCKSCTL, "-c", conf, "init"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, kw)
            self.assertIn("a symbolic link: refused", r.stderr)
            self.assertFalse(os.path.exists(target), kw)
            subprocess.run([os.environ["GATEWAYD"], "-c", conf, "-n"],
                           capture_output=True, text=True, timeout=30)
            self.assertFalse(os.path.exists(target), kw)

    def test_help_and_missing_database(self):
        self.assertIn("usage: socksctl", self.ok("help"))
        self.assertIn("socksctl rule list", self.ok("rule", "--help"))
        self.assertRegex(self.ok("--version"), r"^socksctl \d+\.\d+")
        conf = self.tmp.write("other.conf", "policy_db nowhere.db\n")
        # A verb's help names its options and needs no database.
        r = subprocess.run([SOCKSCTL, "-c", conf, "rule", "add", "--help"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: socksctl rule add allow|deny", r.stdout)
        self.assertIn("--src-country CC", r.stdout)
        # Further on, --help is a value like any other.
        self.ok("user", "add", "helpful", "--comment", "--help")
        self.assertEqual(self.js("user", "show", "helpful")[0]["comment"],
                         "--help")
        self.assertFalse(os.path.exists(os.path.join(self.tmp.path,
                                                     "nowhere.db")))
        r = subprocess.run([SOCKSCTL, "-c", conf, "rule", "frob", "--help"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("rule frob: unknown verb", r.stderr)
        r = subprocess.run([SOCKSCTL, "-c", conf, "rule", "list"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("run socksctl init", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
