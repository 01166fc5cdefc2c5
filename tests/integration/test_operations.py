"""Operating the gateway: socksctl against a running gatewayd through the
control socket (sessions listed and killed, reload good and broken, stats
that count what the test did, a non-admin refused, a stopped gateway
named), the change log, and Prometheus metrics scraped with curl."""
import json
import os
import pwd
import re
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, SOCKSCTL, free_port,
                    recv_exact, socks_open, wait_for)


class OperationsTest(GatewayTestCase):
    def setUp(self):
        self.metrics_port = free_port()
        self.gateway_extra = ("control_socket ctl.sock\nmetrics_listen "
                              "127.0.0.1:%d\n" % self.metrics_port)
        super().setUp()

    def js(self, *args):
        r = self.gw.ctl("--json", *args)
        return json.loads(r.stdout)

    def held_session(self):
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        s.sendall(b"12345")
        recv_exact(s, 5)
        return s, port

    def test_fleet_sessions_and_stats(self):
        # socksctl --fleet FILE: every node's live state through its own
        # control socket, with a node column; a kill names NODE:ID; a node
        # that does not answer is said, the others shown, the exit 1.
        gw2 = self.start_gateway("control_socket ctl.sock\n"
                                 "node_name gw2\n")
        port = self.tcp_server(EchoHandler)
        held = []
        for gw in (self.gw, self.gw, gw2):
            s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", port)
            s.sendall(b"x")
            recv_exact(s, 1)
            held.append(s)
        fleet = os.path.join(self.tmp.path, "fleet")
        with open(fleet, "w") as f:
            f.write("# the nodes\ngw1 %s\ngw2 %s\n" % (
                os.path.join(self.gw.tmp.path, "ctl.sock"),
                os.path.join(gw2.tmp.path, "ctl.sock")))

        def run(*args, path=fleet):
            return subprocess.run([SOCKSCTL, "--fleet", path] + list(args),
                                  capture_output=True, text=True, timeout=60)
        out = json.loads(run("--json", "sessions").stdout)
        self.assertEqual([(n["node"], len(n["answer"]["sessions"]))
                          for n in out["nodes"]], [("gw1", 2), ("gw2", 1)])
        text = run("sessions").stdout
        self.assertEqual(sorted(l.split()[0] for l in text.splitlines()[1:]),
                         ["gw1", "gw1", "gw2"])
        stats = run("stats").stdout
        self.assertRegex(stats, r"sessions_open\s+3\s+gw1 2, gw2 1")
        # gw2's session, by its node and id: gw1's stay.
        sid = out["nodes"][1]["answer"]["sessions"][0]["id"]
        r = run("sessions", "kill", "gw2:%d" % sid)
        self.assertEqual(r.stdout, "1 session killed\n", r.stderr)
        self.assertEqual(len(self.js("sessions")["sessions"]), 2)
        # (Two nodes started in the same second number their sessions
        # alike: an id alone names no session in a fleet.)
        r = run("sessions", "kill", "gw1:1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such session", r.stderr)
        # A node that does not answer: said, the others shown, exit 1.
        with open(fleet, "a") as f:
            f.write("gw3 %s\n" % os.path.join(self.tmp.path, "none.sock"))
        r = run("sessions")
        self.assertEqual(r.returncode, 1)
        self.assertIn("node gw3: nothing answers at", r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 3)
        # A socket someone else could have put there stands for no node.
        import socket as sk
        fake = "/tmp/socksgw-fake-%d.sock" % os.getpid()
        lsn = sk.socket(sk.AF_UNIX, sk.SOCK_STREAM)
        lsn.bind(fake)
        lsn.listen(1)
        self.addCleanup(os.unlink, fake)
        self.addCleanup(lsn.close)
        with open(fleet, "a") as f:
            f.write("gw4 %s\n" % fake)
        r = run("stats")
        self.assertIn("node gw4: %s is not a socket of this user's or "
                      "root's, in a folder only they write" % fake, r.stderr)
        self.assertRegex(r.stdout, r"sessions_open\s+2\s+gw1 2, gw2 0")
        # A line out of form is named; --fleet is for live state only.
        bad = os.path.join(self.tmp.path, "bad")
        with open(bad, "w") as f:
            f.write("gw1 %s\ngw 1 relative.sock\n" % fleet)
        r = run("sessions", path=bad)
        self.assertEqual(r.returncode, 2 if "usage" in r.stderr else 1)
        self.assertIn("%s:2: expected NAME /PATH/TO/control.sock" % bad,
                      r.stderr)
        r = run("rule", "list")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--fleet works with sessions and stats", r.stderr)
        for s in held:
            s.close()

    def test_sessions_listed_and_killed(self):
        s, port = self.held_session()
        sessions = self.js("sessions")["sessions"]
        self.assertEqual(len(sessions), 1)
        one = sessions[0]
        self.assertEqual(one["dst"], "127.0.0.1:%d" % port)
        self.assertEqual((one["state"], one["command"], one["bytes_up"],
                          one["bytes_down"]), ("relay", "connect", 5, 5))
        self.assertTrue(one["client"].startswith("127.0.0.1:"))
        text = self.gw.ctl("sessions").stdout
        self.assertIn("127.0.0.1:%d" % port, text)
        out = self.gw.ctl("sessions", "kill", str(one["id"])).stdout
        self.assertEqual(out, "1 session killed\n")
        # Again: nothing left to kill, and the exit status says so.
        r = self.gw.ctl("sessions", "kill", str(one["id"]), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such session: nothing killed", r.stderr)
        r = self.gw.ctl("sessions", "kill", "--user", "nobody-here",
                        check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(s.recv(1), b"")
        s.close()
        wait_for(lambda: self.gw.audit("seq IS NOT NULL"), timeout=5,
                 what="the audit record")
        self.assertEqual(self.gw.audit()[0]["close_reason"],
                         "killed by admin root")
        self.assertEqual(self.js("sessions")["sessions"], [])

    def test_rule_hits_from_the_running_gateway(self):
        for _ in range(2):
            self.held_session()[0].close()
        wait_for(lambda: self.js("rule", "list")[0]["hits"] == 2, timeout=5,
                 what="two decisions of rule 1")
        row = self.js("rule", "list")[0]
        self.assertRegex(row["last_hit"], r"^\d{4}-\d\d-\d\dT")
        self.assertIs(row["enabled"], True)
        self.assertIn("2", self.gw.ctl("rule", "list").stdout.split("\n")[1])
        # Without the gateway, hits are unknown (null), not zero.
        self.gw.stop()
        row = self.js("rule", "list")[0]
        self.assertIsNone(row["hits"])
        self.assertIsNone(row["last_hit"])
        self.assertRegex(self.gw.ctl("rule", "list").stdout.split("\n")[1],
                         r"\s-\s+-$")

    def test_reload_good_and_broken(self):
        self.assertEqual(self.gw.ctl("reload").stdout,
                         "configuration reloaded\n")
        # Restart-only keywords that changed are named, not pretended.
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "a") as f:
            f.write("audit_retention_days 7\nidle_timeout 100\n"
                    "auth_lockout 900\n")
        self.assertEqual(self.gw.ctl("reload").stdout,
                         "configuration reloaded; auth_lockout, "
                         "audit_retention_days take effect only after a "
                         "restart\n")
        self.assertEqual(self.js("reload")["restart_needed"],
                         "auth_lockout, audit_retention_days")
        with open(self.gw.conf, "w") as f:
            f.write(text)
        with open(self.gw.conf, "a") as f:
            f.write("idle_timeout never\n")
        r = self.gw.ctl("reload", check=False)
        self.assertEqual(r.returncode, 1)
        # socksctl reads the same file first, and names the line.
        self.assertIn("gatewayd.conf:", r.stderr)
        self.assertIn("idle_timeout never: expected a whole number",
                      r.stderr)
        # The gateway itself refuses it too, and keeps running.
        import signal
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("reload failed, the running configuration stays")
        self.held_session()[0].close()

    def test_stats_count_what_happened(self):
        before = self.js("stats")
        for _ in range(3):
            self.held_session()[0].close()
        s, rep, _, _ = socks_open(self.gw.addr, "192.0.2.1", 80)
        s.close()
        wait_for(lambda: self.js("stats")["verdict_deny"] ==
                 before["verdict_deny"] + 1, timeout=5, what="the deny")
        after = self.js("stats")
        self.assertEqual(after["sessions_total"] - before["sessions_total"], 4)
        self.assertEqual(after["verdict_allow"] - before["verdict_allow"], 3)
        self.assertEqual(after["bytes_up"] - before["bytes_up"], 15)
        self.assertIn("sessions_total", self.gw.ctl("stats").stdout)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch user")
    def test_non_admin_refused(self):
        user = pwd.getpwnam("daemon")

        def demote():
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        r = subprocess.run([SOCKSCTL, "-c", self.gw.conf, "stats"],
                           capture_output=True, text=True, timeout=30,
                           preexec_fn=demote)
        self.assertEqual(r.returncode, 1)
        self.assertTrue("Permission denied" in r.stderr or
                        "not allowed" in r.stderr, r.stderr)

    def test_stopped_gateway_is_named(self):
        self.gw.stop()
        r = self.gw.ctl("stats", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("gatewayd is not running", r.stderr)

    def test_change_log(self):
        self.gw.ctl("group", "add", "staff")
        self.gw.ctl("rule", "add", "deny", "--dst", "192.0.2.0/24",
                    "--comment", "test net")
        log = self.js("log")
        self.assertEqual(log[0]["command"], "socksctl rule add deny --dst "
                         "192.0.2.0/24 --comment 'test net'")
        self.assertEqual(log[0]["detail"], "rule 2 at position 2")
        self.assertEqual(log[0]["os_user"].split()[0],
                         pwd.getpwuid(os.getuid()).pw_name)
        self.assertEqual(log[1]["command"], "socksctl group add staff")
        # A refused change leaves no trace.
        self.gw.ctl("rule", "add", "deny", "--port", "0", check=False)
        self.assertEqual(len(self.js("log")), len(log))

    def test_metrics(self):
        for _ in range(2):
            self.held_session()[0].close()
        wait_for(lambda: self.js("stats")["verdict_allow"] == 2, timeout=5,
                 what="two sessions ended")
        r = subprocess.run(["curl", "-sS", "--max-time", "10",
                            "http://127.0.0.1:%d/metrics" % self.metrics_port],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = dict(line.rsplit(" ", 1) for line in r.stdout.splitlines()
                 if line and not line.startswith("#"))
        self.assertEqual(m["socksgw_sessions_total"], "2")
        self.assertEqual(m['socksgw_verdicts_total{verdict="allow"}'], "2")
        self.assertEqual(m['socksgw_rule_decisions_total{rule="1"}'], "2")
        self.assertEqual(m['socksgw_bytes_total{direction="up"}'], "10")
        self.assertEqual(m['socksgw_handshake_seconds_count'], "2")
        self.assertEqual(m['socksgw_handshake_seconds_bucket{le="+Inf"}'],
                         "2")
        self.assertEqual(m['socksgw_audit_records_lost_total'], "0")
        self.assertRegex(r.stdout, r'socksgw_build_info\{version="[0-9.]+"\} 1')
        # The process metrics are the proxy's (it serves /metrics).
        proxy = self.gw.proxy_pid
        # (the scrape's own connection was open while it was counted)
        self.assertAlmostEqual(int(m["process_open_fds"]),
                               len(os.listdir("/proc/%d/fd" % proxy)),
                               delta=1)
        with open("/proc/%d/status" % proxy) as f:
            rss_kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        self.assertLess(abs(int(m["process_resident_memory_bytes"]) -
                            rss_kib * 1024), 4 << 20)
        self.assertLess(abs(float(m["process_start_time_seconds"]) -
                            time.time()), 600)
        self.assertGreaterEqual(float(m["process_cpu_seconds_total"]), 0)
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w",
                            "%{http_code}", "-X", "POST",
                            "http://127.0.0.1:%d/metrics" % self.metrics_port],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.stdout, "405")


if __name__ == "__main__":
    unittest.main(verbosity=2)
