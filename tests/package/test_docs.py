"""The man pages and the help cover the code: every configuration keyword
in gatewayd.conf(5), every gatewayd option in gatewayd(8), every socksctl
noun, verb and option in socksctl(8) and in socksctl's own help, and the
pages format without warnings. Bash completion offers what the help says.
"""
import glob
import os
import re
import subprocess
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MAN = os.path.join(ROOT, "packaging", "man")
SOCKSCTL = os.environ.get("SOCKSCTL", os.path.join(ROOT, "build", "bin",
                                                   "socksctl"))
GATEWAYD = os.environ.get("GATEWAYD", os.path.join(ROOT, "build", "bin",
                                                   "gatewayd"))


def source(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def man_text(page):
    """A page's source with font changes and escapes undone."""
    text = source(os.path.join("packaging", "man", page))
    text = re.sub(r"\\f[BIRP]", "", text)
    return text.replace("\\-", "-").replace("\\e", "\\")


class ManPageTest(unittest.TestCase):
    def test_pages_format_without_warnings(self):
        pages = sorted(glob.glob(os.path.join(MAN, "*.[0-9]")))
        self.assertEqual([os.path.basename(p) for p in pages],
                         ["gatewayd.8", "gatewayd.conf.5", "socksctl.8",
                          "socksgw-geoip-update.8"])
        for page in pages:
            r = subprocess.run(["man", "--warnings", "-l", page],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="80",
                                        MANPAGER="cat", PAGER="cat"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", page)

    def test_every_keyword_is_in_gatewayd_conf_5(self):
        keywords = re.findall(r'^\t\{ "([a-z0-9_]+)",\s+CT_',
                              source("common/conf.c"), re.M)
        self.assertGreater(len(keywords), 40)
        text = man_text("gatewayd.conf.5")
        missing = [k for k in keywords
                   if not re.search(r"(^|\W)%s(\W|$)" % k, text)]
        self.assertEqual(missing, [])

    def test_every_gatewayd_option_is_in_gatewayd_8(self):
        src = source("gatewayd/main.c")
        letters = re.search(r'getopt_long\(argc, argv, "([^"]+)"',
                            src).group(1).replace(":", "")
        longs = re.findall(r'\{ "([a-z-]+)",\s+(?:no|required)_argument',
                           src)
        text = man_text("gatewayd.8")
        for opt in ["-" + c for c in letters] + ["--" + l for l in longs]:
            self.assertRegex(text, r"(^|\W)%s(\W|$)" % re.escape(opt), opt)
        usage = subprocess.run([GATEWAYD, "--help"], capture_output=True,
                               text=True, timeout=10).stdout
        for c in letters.replace("h", ""):
            self.assertIn("-" + c, usage)

    def socksctl_help(self):
        r = subprocess.run([SOCKSCTL, "--help"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        return [l[len("  socksctl "):] for l in r.stdout.splitlines()
                if l.startswith("  socksctl ")]

    def test_every_option_socksctl_takes_is_in_its_help(self):
        # What the commands accept (their option strings) ...
        accepted = set()
        for path in glob.glob(os.path.join(ROOT, "admin", "*.c")):
            with open(path) as f:
                accepted |= set(re.findall(r'"(--[a-z][a-z-]*)"', f.read()))
        # --label is diff's (import --dry-run runs diff -u), not socksctl's.
        accepted -= {"--json", "--help", "--version", "--label"}
        self.assertGreater(len(accepted), 30)
        # ... is what the help table says.
        helped = set(re.findall(r"--[a-z][a-z-]*",
                                "\n".join(self.socksctl_help())))
        self.assertEqual(sorted(accepted - helped), [])

    def test_every_command_and_option_is_in_socksctl_8(self):
        text = man_text("socksctl.8")
        for line in self.socksctl_help():
            words = line.split()
            command = "socksctl " + words[0]
            if len(words) > 1 and re.fullmatch(r"[a-z]+", words[1]):
                command += " " + words[1]
            self.assertIn(command, text, "socksctl.8 does not name it: "
                          "run packaging/man/socksctl-commands.py")
            for opt in re.findall(r"--[a-z][a-z-]*", line):
                self.assertRegex(text, r"(^|\W)%s(\W|$)" % opt, opt)
        for section in ("EXIT STATUS", "EXAMPLES", "SYNTAX", "RULES",
                        "LIMITS"):
            self.assertIn(".SH " + section, text)
        for word in ("school", "company", "--version", "--json"):
            self.assertIn(word, text)

    def test_verb_help_for_every_verb(self):
        for line in self.socksctl_help():
            words = line.split()
            argv = [words[0]]
            if len(words) > 1 and re.fullmatch(r"[a-z]+", words[1]):
                argv.append(words[1])
            r = subprocess.run([SOCKSCTL, "-c", "/nonexistent"] + argv +
                               ["--help"], capture_output=True, text=True,
                               timeout=10)
            self.assertEqual(r.returncode, 0, argv)
            self.assertIn("usage: socksctl " + " ".join(argv), r.stdout)

    def test_geoip_update_options_are_in_its_page(self):
        src = source("packaging/socksgw-geoip-update")
        opts = set(re.findall(r"^\t(-[a-z-]+)\)", src, re.M))
        self.assertTrue({"-c", "-d", "--no-reload"} <= opts)
        text = man_text("socksgw-geoip-update.8")
        for opt in opts:
            self.assertIn(opt, text)
        for var in set(re.findall(r"\$\{([A-Z_]+):-", src)):
            self.assertIn(var, text)


class CompletionTest(unittest.TestCase):
    def complete(self, *words):
        """What bash completion offers after words (the last is typed)."""
        script = os.path.join(ROOT, "packaging", "bash-completion",
                              "socksctl")
        line = " ".join("'%s'" % w for w in words)
        r = subprocess.run(
            ["bash", "-c", 'source "$1"; COMP_WORDS=(%s); '
             'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _socksctl; '
             'printf "%%s\\n" "${COMPREPLY[@]}"' % line, "-", script],
            capture_output=True, text=True, timeout=30,
            env=dict(os.environ, PATH=os.path.dirname(SOCKSCTL) + ":" +
                     os.environ["PATH"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(w for w in r.stdout.split("\n") if w)

    def test_nouns_verbs_options(self):
        nouns = sorted({l.split()[0] for l in
                        ManPageTest.socksctl_help(self)} | {"help"})
        self.assertEqual(self.complete("socksctl", ""), nouns)
        self.assertEqual(self.complete("socksctl", "rule", ""),
                         sorted(["add", "list", "show", "del", "move",
                                 "enable", "disable"]))
        self.assertEqual(self.complete("socksctl", "rule", "add", "allow",
                                       "--s"), ["--src", "--src-country"])
        self.assertEqual(self.complete("socksctl", "audit", "report",
                                       "--format", ""),
                         ["csv", "html", "json", "table"])

    def test_names_from_the_database(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "c.conf")
            with open(conf, "w") as f:
                f.write("policy_db %s/p.db\n" % d)
            for argv in (["init"], ["user", "add", "alice"],
                         ["group", "add", "staff"],
                         ["list", "create", "games", "--type", "domain"]):
                subprocess.run([SOCKSCTL, "-c", conf] + argv, check=True,
                               capture_output=True, timeout=30)
            self.assertEqual(self.complete("socksctl", "-c", conf, "user",
                                           "show", ""), ["alice"])
            self.assertEqual(self.complete("socksctl", "-c", conf, "rule",
                                           "add", "allow", "--user", "@"),
                             ["@staff"])
            self.assertEqual(self.complete("socksctl", "-c", conf, "rule",
                                           "add", "deny", "--dst", "@"),
                             ["@games"])

    def test_names_are_never_run(self):
        # Any admin writes names; whoever presses Tab (root) must not run
        # them. compgen -W would expand $(...) in a name a second time.
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "c.conf")
            proof = os.path.join(d, "ran")
            with open(conf, "w") as f:
                f.write("policy_db %s/p.db\n" % d)
            evil = "x$(touch${IFS}%s)" % proof
            for argv in (["init"], ["user", "add", evil],
                         ["group", "add", evil + "g"],
                         ["list", "create", evil + "l", "--type", "domain"]):
                subprocess.run([SOCKSCTL, "-c", conf] + argv, check=True,
                               capture_output=True, timeout=30)
            got = []
            for words in (("user", "show", ""),
                          ("rule", "add", "allow", "--user", ""),
                          ("rule", "add", "allow", "--user", "@"),
                          ("rule", "add", "allow", "--group", ""),
                          ("rule", "add", "deny", "--dst", "@"),
                          ("list", "show", "")):
                got += self.complete("socksctl", "-c", conf, *words)
            self.assertFalse(os.path.exists(proof))
            self.assertIn(evil, got)
            self.assertIn("@" + evil + "g", got)
            self.assertIn("@" + evil + "l", got)


if __name__ == "__main__":
    unittest.main(verbosity=2)
