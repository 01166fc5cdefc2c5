#!/usr/bin/python3
"""
HTTP proxy logins per second: Negotiate (Kerberos) beside Basic (PAM) on
one gatewayd (auth pam gssapi, audit on, one allow rule), measured
alternately: ROUNDS rounds (default 3) of 5 s at 1 and at 32 clients, each
a loop of a fresh token, connect, CONNECT with credentials, a 64-byte echo,
close (bench/negobench.c). A real MIT KDC on loopback (tests' kdc.py),
pam_matrix for Basic, and the bench's user in a passwd file bound over
/etc/passwd in gatewayd's own mount namespace: no file of the machine is
changed. Prints each run and the medians.

    python3 bench/negotiate.py [BUILD] [ROUNDS]

As root (gatewayd runs as nobody; authd reads the keytab as root).
"""
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from gwtest import TempDir, free_port, wait_for  # noqa: E402
from kdc import Kdc  # noqa: E402

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
B = os.path.join(build, "bin")
LIB = "/usr/lib/x86_64-linux-gnu"

tmp = TempDir("/var/tmp")
procs = []
try:
    kdc = Kdc(tmp)
    kdc.addprinc("bench", "bench-pw")
    kdc.addprinc("HTTP/localhost")
    d = tmp.subdir()
    os.chmod(d.path, 0o755)
    keytab = kdc.keytab("HTTP/localhost", os.path.join(d.path, "keytab"))
    with open("/etc/passwd") as f:
        system = "".join(l for l in f if l.split(":")[0] in
                         ("root", "nobody", "socksgw-audit"))
    passwd = d.write("passwd", system +
                     "bench:x:1500:1500::/nonexistent:/bin/false\n")
    with open("/etc/group") as f:
        gsystem = "".join(l for l in f if l.split(":")[0] in
                          ("root", "nogroup", "socksgw-audit"))
    group = d.write("group", gsystem + "bench:x:1500:\n")
    passdb = d.write("passdb", "bench:bench-pw:socksgw-bench\n")
    m = LIB + "/pam_wrapper/pam_matrix.so"
    d.write("socksgw-bench", "auth required %s passdb=%s\n"
            "account required %s passdb=%s\n" % (m, passdb, m, passdb))
    echo, sink, port = free_port(), free_port(), free_port()
    procs.append(subprocess.Popen([B + "/socksbench", "serve", str(echo),
                                   str(sink)], stdout=subprocess.DEVNULL))
    conf = d.write("gatewayd.conf", "\n".join([
        "listen 127.0.0.1:%d" % port, "user nobody", "resolv_conf /dev/null",
        "workers 2", "audit_db %s/audit.db" % d.path,
        "policy_db %s/policy.db" % d.path, "auth pam gssapi",
        "pam_service socksgw-bench", "krb5_keytab " + keytab,
        "krb5_service HTTP/localhost",
        # One client address makes every login: its caps lifted.
        "auth_client_inflight 64", "auth_client_queue 4096",
        "auth_client_fail_limit 1000000", ""]))
    os.chmod(conf, 0o644)
    subprocess.run([B + "/socksctl", "-c", conf, "init"], check=True,
                   capture_output=True)
    subprocess.run([B + "/socksctl", "-c", conf, "rule", "add", "allow",
                    "--dst", "127.0.0.0/8"], check=True, capture_output=True)
    os.chmod(os.path.join(d.path, "policy.db"), 0o644)
    env = dict(os.environ, **kdc.env)
    env.update({"PAM_WRAPPER": "1", "PAM_WRAPPER_SERVICE_DIR": d.path,
                "BENCH_PRELOAD": "libpam_wrapper.so"})
    log = open(os.path.join(d.path, "log"), "w")
    gw = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && '
         'shift 2 && export LD_PRELOAD="$BENCH_PRELOAD" && exec "$@"', "sh", passwd,
         group, B + "/gatewayd", "-c", conf], env=env, stdout=log,
        stderr=subprocess.STDOUT)
    procs.append(gw)
    wait_for(lambda: "ready:" in open(log.name).read(), what="gatewayd")
    cenv = dict(os.environ, **kdc.kinit("bench", "bench-pw"))
    runs = {}
    for r in range(rounds):
        for c in (1, 32):
            for how, arg in (("negotiate", ["-n", "HTTP@localhost"]),
                             ("basic", ["-b", "bench:bench-pw"])):
                out = subprocess.run(
                    [B + "/negobench", "-s", "127.0.0.1:%d" % port, "-t",
                     "127.0.0.1:%d" % echo, "-c", str(c), "-d", "5"] + arg,
                    env=cenv, capture_output=True, text=True, timeout=60)
                line = out.stdout.strip() or out.stderr.strip()
                print("%s c=%d %s" % (how, c, line), flush=True)
                runs.setdefault((how, c), []).append(
                    float(line.split()[0]) if out.returncode == 0 else 0)
                time.sleep(1)
    print("medians of %d rounds (logins/s):" % rounds)
    for c in (1, 32):
        print("  c=%d: negotiate %.0f, basic %.0f" % (
            c, statistics.median(runs[("negotiate", c)]),
            statistics.median(runs[("basic", c)])))
finally:
    for p in procs:
        p.terminate()
        p.wait(timeout=30)
    if "kdc" in dir():
        kdc.stop()
    tmp.cleanup()
