"""The daemon's life: -n and -V, SIGHUP with a good and a broken
configuration, SIGTERM with sessions open (grace, then exit 0), privilege
drop when started as root, and accept() pausing instead of spinning when
descriptors run out."""
import os
import signal
import socket
import subprocess
import time
import unittest

from gwtest import (GATEWAYD, EchoHandler, GatewayTestCase, TempDir,
                    recv_exact, socks_open, wait_for)


def run_gatewayd(*args):
    return subprocess.run([GATEWAYD] + list(args), capture_output=True,
                          text=True, timeout=30)


class CheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

    def test_check_good(self):
        conf = self.tmp.write("ok.conf", "listen 127.0.0.1:1080\n")
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual((r.returncode, r.stdout), (0, "configuration OK\n"))

    def test_check_bad_names_file_and_line(self):
        conf = self.tmp.write("bad.conf", "listen 127.0.0.1:1080\n\n"
                              "idle_timeout forever\n")
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "%s:3: idle_timeout forever: expected a "
                         "whole number from 1 to 604800\n" % conf)

    def test_check_missing_resolv_conf(self):
        conf = self.tmp.write("dns.conf", "resolv_conf nowhere.conf\n")
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("resolv_conf %s/nowhere.conf: No such file"
                      % self.tmp.path, r.stderr)

    def test_check_names_missing_accounts_and_group(self):
        for line, what in (("user no-such-account-1",
                            "user no-such-account-1: no such account"),
                           ("audit_user no-such-account-2",
                            "audit_user no-such-account-2: no such account"),
                           ("control_group no-such-group-3",
                            "control_group no-such-group-3: no such group")):
            conf = self.tmp.write("acct.conf", "listen 127.0.0.1:0\n%s\n"
                                  % line)
            r = run_gatewayd("-c", conf, "-n")
            self.assertEqual(r.returncode, 1, line)
            self.assertIn(what, r.stderr)

    def test_check_missing_geoip_without_a_policy_yet(self):
        conf = self.tmp.write("geo.conf", "listen 127.0.0.1:0\n"
                              "geoip_db nowhere.mmdb\n")
        self.assertFalse(os.path.exists(os.path.join(self.tmp.path,
                                                     "policy.db")))
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("geoip_db %s/nowhere.mmdb" % self.tmp.path, r.stderr)

    def test_check_fails_on_user_rules_under_auth_none(self):
        from gwtest import SOCKSCTL
        conf = self.tmp.write("users.conf", "listen 127.0.0.1:0\n"
                              "auth none\n")
        ctl = lambda *a: subprocess.run([SOCKSCTL, "-c", conf] + list(a),
                                        capture_output=True, text=True,
                                        timeout=30)
        ctl("init")
        ctl("user", "add", "pupil1")
        ctl("group", "add", "staff")
        self.assertEqual(ctl("rule", "add", "allow", "--port", "80")
                         .returncode, 0)
        r = ctl("rule", "add", "allow", "--user", "pupil1", "--port", "443")
        self.assertEqual(r.returncode, 0)
        self.assertIn("rule 2 cannot match", r.stderr)
        ctl("rule", "add", "deny", "--user", "@staff")
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("auth none, but rules 2, 3 name users or groups",
                      r.stderr)
        # explain gives the verdict a real request gets, and says why.
        r = ctl("explain", "--user", "pupil1", "--dst", "192.0.2.1:443")
        self.assertIn("note: auth none: requests carry no user", r.stdout)
        self.assertIn("verdict: deny", r.stdout)
        ctl("rule", "disable", "2")
        ctl("rule", "disable", "3")
        self.assertEqual(run_gatewayd("-c", conf, "-n").returncode, 0)

    def test_removed_keyword_is_an_error(self):
        conf = self.tmp.write("old.conf", "listen 127.0.0.1:0\nsplice_max 4\n")
        r = run_gatewayd("-c", conf, "-n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:2: splice_max: removed" % conf, r.stderr)

    def test_version_and_usage(self):
        r = run_gatewayd("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^gatewayd \d+\.\d+\.\d+\n$")
        r = run_gatewayd("--version")
        self.assertRegex(r.stdout, r"^gatewayd \d+\.\d+\.\d+\n$")
        r = run_gatewayd("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: gatewayd", r.stdout)
        self.assertIn("-n ", r.stdout)
        r = run_gatewayd("-x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: gatewayd", r.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_without_user_refused(self):
        conf = self.tmp.write("root.conf", "listen 127.0.0.1:0\n")
        r = run_gatewayd("-c", conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn("refusing to run as root without 'user'", r.stderr)


class LifecycleTest(GatewayTestCase):
    def echo_session(self):
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        return s, port

    def rewrite_conf(self, extra):
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "w") as f:
            f.write(text + extra + "\n")

    def test_sighup_good_config(self):
        s, port = self.echo_session()
        self.rewrite_conf("idle_timeout 1")
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("configuration reloaded")
        # The session opened before the reload still relays ...
        s.sendall(b"still here")
        self.assertEqual(recv_exact(s, 10), b"still here")
        # ... and the new idle_timeout applies to it.
        self.assertEqual(s.recv(1), b"")
        s.close()
        self.gw.wait_log("reason=idle timeout")

    def test_sighup_says_audit_keywords_wait_for_a_restart(self):
        # auditd and the queue are made once: a reload says so, and the
        # gateway keeps its audit log.
        self.rewrite_conf("audit_retention_days 30")
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("configuration reloaded")
        self.assertIn("reload: audit_retention_days take effect only after "
                      "a restart", self.gw.log())

    def test_sighup_broken_config_keeps_running(self):
        s, port = self.echo_session()
        self.rewrite_conf("handshake_timeout soon")
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("reload failed, the running configuration stays")
        self.assertIn("%s:" % self.gw.conf, self.gw.log())
        self.assertIn("handshake_timeout soon: expected a whole number",
                      self.gw.log())
        s.sendall(b"ping")
        self.assertEqual(recv_exact(s, 4), b"ping")
        t, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        t.close()
        s.close()

    def test_sigterm_lets_sessions_finish(self):
        s, port = self.echo_session()
        self.gw.signal(signal.SIGTERM)
        self.gw.wait_log("waiting up to")
        # Listeners are closed (each worker closes its own, so the other
        # may take a moment): new clients are refused ...
        def refused():
            # A connection that reached a backlog as its listener closed
            # is reset rather than refused: no service either way.
            try:
                socket.create_connection(self.gw.addr, timeout=5).close()
            except (ConnectionRefusedError, ConnectionResetError):
                return True
            return False
        wait_for(refused, timeout=2, what="the listeners to close")
        # ... while the open session keeps working.
        s.sendall(b"during grace")
        self.assertEqual(recv_exact(s, 12), b"during grace")
        self.assertIsNone(self.gw.proc.poll())
        s.close()
        self.assertEqual(self.gw.proc.wait(timeout=10), 0)
        self.assertIn("stopped", self.gw.log())

    def test_sigterm_grace_expires(self):
        gw = self.start_gateway("shutdown_grace 1")
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(s.recv(1), b"")
        s.close()
        self.assertIn("reason=shutdown", gw.log())

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_runs_without_root(self):
        with open("/proc/%d/status" % self.gw.proxy_pid) as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f
                   if l.startswith(("Uid:", "Gid:", "NoNewPrivs:"))}
        nobody = 65534
        self.assertEqual([int(x) for x in ids["Uid"]], [nobody] * 4)
        self.assertNotIn("0", ids["Gid"])
        self.assertEqual(ids["NoNewPrivs"], ["1"])
        self.assertIn("running as nobody", self.gw.log())


class DescriptorTest(GatewayTestCase):
    def start_gateway(self, extra="", **kw):
        # 64 descriptors in all: a few dozen clients exhaust them.
        return super().start_gateway("max_sessions 1000\n" + extra,
                                     workers=1, nofile=64, **kw)

    def test_accept_pauses_when_out_of_descriptors(self):
        pid = self.gw.proxy_pid
        clients = []
        for _ in range(80):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(self.gw.addr)
            except BlockingIOError:
                pass
            clients.append(c)
        self.gw.wait_log("accept paused for 1s")

        def cpu():
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        c0 = cpu()
        time.sleep(2)
        used = (cpu() - c0) / os.sysconf("SC_CLK_TCK")
        # A spinning accept loop would burn close to 2 s of CPU here.
        self.assertLess(used, 0.5, "gatewayd used %.2fs CPU" % used)
        for c in clients:
            c.close()
        # Descriptors come back: a full session works again.
        port = self.tcp_server(EchoHandler)

        def works():
            try:
                s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port,
                                          timeout=3)
            except (OSError, AssertionError):
                return False
            s.close()
            return rep == 0
        wait_for(works, timeout=20, what="a session after the pause")


if __name__ == "__main__":
    unittest.main(verbosity=2)
