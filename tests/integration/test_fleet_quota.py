"""A fleet's byte quotas (issue 18): a user's quota, in the fleet's one
policy in a real PostgreSQL 15, holds across two nodes, each relaying no
more than it leased from the store (one grant more before the store's
first answer); with the store stopped, each node keeps to what it holds
and refuses beyond it; with the store back, leasing goes on. Users log in
through the real libpam (pam_wrapper + pam_matrix), downloads are curl's.
"""
import http.server
import subprocess
import time
import unittest

import pgserver
from gwtest import SOCKSCTL, wait_for
from test_caps import MIB, Sized
from test_pam import SANITIZED, PamTestCase

QUOTA = 8 * MIB


class Paced(Sized):
    """GET /N: N bytes at about 16 MB/s. A lease's round trip is a few ms
    here, a grant (512 KiB) lasts 30 ms at that pace. A session faster
    than a grant per round trip can run into the end of what its node
    holds and is cut as if the quota were used up (README: "Fleet-wide
    quotas"); loopback without a pace is 1 GB/s and more."""
    def do_GET(self):
        n = int(self.path.strip("/"))
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"x" * 65536
        try:
            while n > 0:
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= min(n, len(chunk))
                time.sleep(0.004)
        except OSError:
            pass
GRANT = QUOTA // 16     # quota_fleet.c: a sixteenth, at least 256 KiB
AHEAD = 4 * GRANT       # what a node may hold beyond what it used


@unittest.skipIf(SANITIZED, "pam_wrapper cannot run under ASan (RTLD_DEEPBIND)")
@unittest.skipUnless(pgserver.available(), "postgresql-15 is not installed")
class FleetQuotaTest(pgserver.StoreTestCase, PamTestCase):
    def setUp(self):
        super().setUp()
        url = self.pg.url(self.pg.passfile(self.tmp, "nobody"))
        self.admin_conf = self.tmp.write("admin.conf", "policy_db %s\n" % url)
        self.admin("init")
        self.admin("group", "add", "staff")
        self.admin("user", "add", "alice", "--group", "staff", "--quota",
                   "8M/day")
        self.admin("rule", "add", "allow", "--user", "@staff", "--dst",
                   "127.0.0.0/8")
        self.http = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Paced))
        self.url = url
        self.nodes = [self.node(name) for name in ("alpha", "bravo")]

    def node(self, name, extra=""):
        gw = self.start_gateway(
            self.gateway_extra + "node_name %s\npolicy_db %s\n"
            "policy_snapshot snap/policy.db\ncontrol_socket ctl.sock\n"
            "auth_workers 1\n%s" % (name, self.url, extra), init=False)
        wait_for(lambda: '"closed": false' in gw.ctl(
            "--json", "stats").stdout, what="the node on the policy")
        return gw

    def admin(self, *args):
        return subprocess.run([SOCKSCTL, "-c", self.admin_conf] + list(args),
                              capture_output=True, text=True, timeout=60,
                              check=True)

    def download(self, gw, size):
        """curl through node gw as alice: bytes downloaded."""
        r = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w",
             "%{size_download}", "--socks5", "127.0.0.1:%d" % gw.port,
             "--proxy-user", "alice:secret",
             "http://127.0.0.1:%d/%d" % (self.http, size)],
            capture_output=True, text=True, timeout=40)
        return int(r.stdout or 0)

    def leased(self):
        return int(self.pg.scalar("SELECT coalesce(sum(granted), 0) FROM "
                                  "quota_leases"))

    def test_a_quota_holds_across_nodes(self):
        a, b = self.nodes
        self.assertEqual(self.download(a, 5 * MIB), 5 * MIB)
        # Through the other node: what is left, less what alpha holds.
        got = self.download(b, 5 * MIB)
        self.assertLess(got, 5 * MIB)
        self.assertGreaterEqual(5 * MIB + got, QUOTA - AHEAD - GRANT)
        total = 5 * MIB + got
        # Each node goes on until it holds nothing more: the quota, all
        # of it, across the two, and no more than a grant a node beyond.
        for _ in range(12):
            more = [self.download(gw, MIB) for gw in (a, b)]
            total += sum(more)
            if more == [0, 0]:
                break
        self.assertEqual(more, [0, 0])
        self.assertLessEqual(total, QUOTA + 2 * GRANT)
        self.assertGreater(total, QUOTA - 64 * 1024)  # requests, headers
        # The store never granted more than the quota.
        self.assertLessEqual(self.leased(), QUOTA)
        for gw in (a, b):
            wait_for(lambda: gw.audit("reason = 'limit: quota'"),
                     what="the refusal's record")
        print("\nfleet quota 8 MiB: %.2f MiB relayed across two nodes, "
              "%.2f MiB leased" % (total / MIB, self.leased() / MIB))

    def test_the_store_away_each_node_keeps_to_what_it_holds(self):
        a, b = self.nodes
        self.assertEqual(self.download(a, 2 * MIB), 2 * MIB)
        held = wait_for(lambda: self.leased() >= 2 * MIB and self.leased(),
                        what="alpha's lease")
        self.pg.stop()
        # alpha relays what it holds, and not a byte more...
        got = self.download(a, 8 * MIB)
        # (The quota counts both ways: requests and headers too.)
        self.assertAlmostEqual(2 * MIB + got, held, delta=4096)
        # ...and bravo, which never heard from the store, one grant.
        self.assertLessEqual(self.download(b, 8 * MIB), GRANT)
        rows = wait_for(lambda: a.audit("close_reason = 'limit: quota'"),
                        what="the cut session's record")
        self.assertEqual(len(rows), 1)
        # The store back: leasing goes on, up to the quota.
        self.pg.start()
        got = wait_for(lambda: self.download(a, MIB), timeout=30,
                       interval=1, what="a lease after the store came back")
        self.assertGreater(got, 0)
        self.assertLessEqual(self.leased(), QUOTA)


    def test_other_time_zones_share_the_quota(self):
        # A node whose day starts five hours later: its day overlaps
        # alpha's, so alpha's lease counts against it.
        a = self.nodes[0]
        ny = self.node("charlie", "timezone America/New_York\n")
        self.assertEqual(self.download(a, 5 * MIB), 5 * MIB)
        got = self.download(ny, 5 * MIB)
        self.assertLess(got, 5 * MIB)
        self.assertLessEqual(self.leased(), QUOTA)

    def test_a_second_node_of_the_same_name_leases_nothing(self):
        # It would share alpha's rows and read alpha's grants back.
        twin = self.node("alpha")
        wait_for(lambda: "another node named the same" in twin.log(),
                 what="the twin refused")
        self.assertLessEqual(self.download(twin, 4 * MIB), GRANT)
        self.assertEqual(self.download(self.nodes[0], MIB), MIB)


if __name__ == "__main__":
    unittest.main()
