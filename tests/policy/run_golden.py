"""Golden decision tables: builds a policy with socksctl from NAME.setup
(real SQLite file, real socksctl), exports it, imports the export into an
empty database and exports again (the same bytes), then checks every
request of NAME.table on both with socksctl test, which compiles the
policy as gatewayd does.

    run_golden.py NAME
"""
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKSCTL = os.environ["SOCKSCTL"]
MAKE_MMDB = os.path.join(HERE, "..", "helpers", "make-mmdb.pl")


def main(name):
    with tempfile.TemporaryDirectory(prefix="socksgw-golden-") as tmp:
        mmdb = os.path.join(tmp, "countries.mmdb")
        subprocess.run(["perl", MAKE_MMDB, mmdb, "maxmind"], check=True)
        conf = os.path.join(tmp, "gatewayd.conf")
        with open(conf, "w") as f:
            # auth pam: the tables' requests carry users.
            f.write("timezone UTC\nauth pam\ngeoip_db %s\n" % mmdb)
        run = lambda *a: subprocess.run([SOCKSCTL, "-c", conf] + list(a),
                                        cwd=HERE, capture_output=True,
                                        text=True, timeout=60)
        r = run("init")
        assert r.returncode == 0, r.stderr
        with open(os.path.join(HERE, name + ".setup")) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                r = run(*shlex.split(line))
                if r.returncode != 0:
                    sys.exit("%s.setup:%d: %s" % (name, lineno, r.stderr))
        # Policy as code: the export, imported into an empty database,
        # exports the same bytes and decides every request the same.
        first = os.path.join(tmp, "first.policy")
        r = run("export", "--output", first)
        assert r.returncode == 0, r.stderr
        conf2 = os.path.join(tmp, "again.conf")
        with open(conf2, "w") as f:
            f.write("timezone UTC\nauth pam\ngeoip_db %s\n"
                    "policy_db again.db\n" % mmdb)
        run2 = lambda *a: subprocess.run([SOCKSCTL, "-c", conf2] + list(a),
                                         capture_output=True, text=True,
                                         timeout=120)
        for argv in (["init"], ["import", first]):
            r = run2(*argv)
            assert r.returncode == 0, r.stderr
        again = run2("export").stdout
        with open(first) as f:
            if f.read() != again:
                sys.exit("%s: the export of the imported policy differs"
                         % name)
        # The table, through socksctl test as an admin's CI would run it,
        # on both databases.
        table = os.path.join(HERE, name + ".table")
        for check in (run, run2):
            r = check("test", table)
            sys.stdout.write(r.stdout)
            if r.returncode != 0:
                sys.exit("%s: socksctl test failed\n%s" % (name, r.stderr))
        sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
