"""Golden decision tables: builds a policy with socksctl from NAME.setup
(real SQLite file, real socksctl), then checks every request of NAME.table
with policycheck, which compiles the policy as gatewayd does.

    run_golden.py NAME
"""
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOCKSCTL = os.environ["SOCKSCTL"]
POLICYCHECK = os.environ["POLICYCHECK"]
MAKE_MMDB = os.path.join(HERE, "..", "helpers", "make-mmdb.pl")


def main(name):
    with tempfile.TemporaryDirectory(prefix="socksgw-golden-") as tmp:
        mmdb = os.path.join(tmp, "countries.mmdb")
        subprocess.run(["perl", MAKE_MMDB, mmdb, "maxmind"], check=True)
        conf = os.path.join(tmp, "gatewayd.conf")
        with open(conf, "w") as f:
            f.write("timezone UTC\ngeoip_db %s\n" % mmdb)
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
        env = dict(os.environ, TZ="UTC")
        r = subprocess.run([POLICYCHECK, "-g", mmdb,
                            os.path.join(tmp, "policy.db"),
                            os.path.join(HERE, name + ".table")],
                           env=env, timeout=60)
        sys.exit(r.returncode)


if __name__ == "__main__":
    main(sys.argv[1])
