"""The policy engine in the running gateway: rules changed with socksctl
are in force within a second, live sessions they deny are closed with
policy-revoked, a name denied by name is never looked up, a name cannot
lead to loopback, GeoIP files take effect on reload, and a database newer
than the build is refused."""
import os
import signal
import socket
import sqlite3
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, LOOPBACK_RULE, recv_exact,
                    socks_open, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_MMDB = os.path.join(HERE, "..", "helpers", "make-mmdb.pl")


def closed(sock):
    """True once the gateway has closed sock (EOF or reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


class PolicyTest(GatewayTestCase):
    def open_echo(self, gw=None):
        gw = gw or self.gw
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        s.sendall(b"hi")
        self.assertEqual(recv_exact(s, 2), b"hi")
        return s, port

    def test_change_in_force_and_live_session_revoked(self):
        s, port = self.open_echo()
        t0 = time.monotonic()
        self.gw.ctl("rule", "add", "deny", "--dst", "127.0.0.1/32", "--port",
                    str(port), "--position", "1", "--comment", "revoke")
        wait_for(lambda: closed(s), timeout=5, what="session closed")
        took = time.monotonic() - t0
        s.close()
        self.gw.wait_log("reason=policy-revoked")
        # New requests meet the new rule too.
        t, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 2)
        t.close()
        self.gw.wait_log("rule=2 up=0 down=0")
        # Sessions the new rule does not touch live on.
        print("\nrule change to session closed: %.2f s" % took)

    def test_unrelated_sessions_survive_a_change(self):
        s, port = self.open_echo()
        self.gw.ctl("rule", "add", "deny", "--dst", "192.0.2.0/24")
        self.gw.wait_log("policy: 2 rules in force")
        time.sleep(0.3)
        s.sendall(b"still")
        self.assertEqual(recv_exact(s, 5), b"still")
        s.close()
        self.assertNotIn("policy-revoked", self.gw.log())

    def test_disabling_a_rule_and_enabling_it(self):
        s, port = self.open_echo()
        s.close()
        self.gw.ctl("rule", "disable", "1")
        self.gw.wait_log("policy: 0 rules in force")
        t, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 2)
        t.close()
        self.gw.ctl("rule", "enable", "1")
        self.gw.wait_log("policy: 1 rules in force", count=2)
        self.open_echo()[0].close()

    def test_denied_name_is_never_resolved(self):
        self.gw.ctl("rule", "add", "deny", "--dst", "blocked.test.example",
                    "--position", "1")
        self.gw.wait_log("policy: 2 rules in force")
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "blocked.test.example", port)
        self.assertEqual(rep, 2)
        s.close()
        s, rep, _, _ = socks_open(self.gw.addr, "www.test.example", port)
        self.assertEqual(rep, 0)
        s.close()
        # Queried names come in random case (evdns's 0x20 hardening).
        self.assertIn("www.test.example", self.dns.queries().lower())
        self.assertNotIn("blocked.test.example", self.dns.queries().lower())
        self.gw.wait_log("reason=rule 2 denies")

    def test_name_cannot_lead_to_loopback(self):
        gw = self.start_gateway(rules=[("allow", "--dst", "*.test.example")])
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(gw.addr, "rebind.test.example", port)
        self.assertEqual(rep, 2)
        s.close()
        gw.wait_log("reason=loopback destination: no allow rule names it")

    def test_geoip_file_replaced_takes_effect_on_reload(self):
        mmdb = os.path.join(self.tmp.path, "countries.mmdb")
        new = mmdb + ".new"
        subprocess.run(["perl", MAKE_MMDB, mmdb, "ipdb", "127.0.0.0/8=AQ"],
                       check=True)
        gw = self.start_gateway(
            "geoip_db %s\ngeoip_country_path country_code" % mmdb,
            rules=[("allow", "--country", "AQ", "--dst", "127.0.0.0/8")])
        s, port = self.open_echo(gw)
        subprocess.run(["perl", MAKE_MMDB, new, "ipdb", "127.0.0.0/8=BV"],
                       check=True)
        os.rename(new, mmdb)
        gw.signal(signal.SIGHUP)
        wait_for(lambda: closed(s), timeout=5, what="session closed")
        s.close()
        t, rep, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 2)
        t.close()
        gw.wait_log("reason=policy-revoked")

    def test_geoip_country_path_is_probed(self):
        # A file whose codes are not where geoip_country_path says is an
        # error for -n, at start and in socksctl, not a silent "unknown".
        mmdb = os.path.join(self.tmp.path, "maxmind.mmdb")
        subprocess.run(["perl", MAKE_MMDB, mmdb, "maxmind"], check=True)
        with open(self.gw.conf, "a") as f:
            f.write("geoip_db %s\ngeoip_country_path country_code\n" % mmdb)
        r = subprocess.run([os.environ["GATEWAYD"], "-c", self.gw.conf, "-n"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no country code where geoip_country_path says",
                      r.stderr)
        r = self.gw.ctl("geoip", "lookup", "192.0.2.1", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('"country iso_code"', r.stderr)
        # The check the update script makes: with the right path, it passes.
        r = self.gw.ctl("geoip", "check", mmdb, check=False)
        self.assertEqual(r.returncode, 1)
        r = self.gw.ctl("geoip", "check", mmdb, "--path", "country iso_code")
        self.assertIn("country codes found", r.stdout)
        empty = os.path.join(self.tmp.path, "empty.mmdb")
        with open(empty, "wb") as f:
            f.write(b"not a database")
        r = self.gw.ctl("geoip", "check", empty, check=False)
        self.assertEqual(r.returncode, 1)

    def test_database_newer_than_the_build_is_refused(self):
        db = os.path.join(self.gw.tmp.path, "policy.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA user_version = 99")
        con.commit()
        con.close()
        r = subprocess.run([os.environ["GATEWAYD"], "-c", self.gw.conf, "-n"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("schema version 99", r.stderr)
        # The running gateway keeps the policy it has.
        self.gw.wait_log("the policy in force stays")
        self.open_echo()[0].close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
