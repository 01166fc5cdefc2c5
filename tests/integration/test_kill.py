"""Each child of the parent killed with SIGKILL under load (issue 13):
service is back within 2 s, and the audit log keeps its bounds. Killing
auditd loses no record (the proxy keeps what auditd has not acknowledged
and resends it); killing the proxy loses at most what it had not handed
over, says how many, and every session it had admitted is closed as
"proxy restarted"; killing authd fails logins closed until it is back.
auditd runs as an account of its own and holds no network socket."""
import os
import pwd
import signal
import socket
import threading
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, socks_open,
                    wait_for)
from test_pam import PamTestCase
from test_privsep import socket_inodes

LOAD_THREADS = 4
LOAD_MAX = 100000      # sessions per test at most: every loop is bounded


class Load:
    """Short relayed sessions from a few threads, each one timed."""

    def __init__(self, gw_addr, port):
        self.gw_addr, self.port = gw_addr, port
        self.ok = []           # (client port, time the client saw it end)
        self.admitted = []     # client ports of sessions with REP 0
        self.refused = 0
        self.failed = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run)
                        for _ in range(LOAD_THREADS)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stop.is_set() and len(self.ok) < LOAD_MAX:
            try:
                s, rep, _, _ = socks_open(self.gw_addr, "127.0.0.1",
                                          self.port, timeout=5)
            except (OSError, EOFError, AssertionError):
                with self.lock:
                    self.failed += 1
                time.sleep(0.01)
                continue
            try:
                if rep != 0:
                    with self.lock:
                        self.refused += 1
                    continue
                # Admitted: its record is owed, whatever happens next.
                cport = s.getsockname()[1]
                with self.lock:
                    self.admitted.append(cport)
                s.sendall(b"ping")
                recv_exact(s, 4)
                s.close()
                with self.lock:
                    self.ok.append((cport, time.monotonic()))
            except (OSError, EOFError):
                with self.lock:
                    self.failed += 1
            finally:
                s.close()

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


class KillTestCase(GatewayTestCase):
    gateway_extra = "audit_failure block\ncontrol_socket ctl.sock\n"

    def hold(self, n):
        """An echo server's port, and n sessions held open through it."""
        port = self.tcp_server(EchoHandler)
        held = []
        for _ in range(n):
            s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
            self.assertEqual(rep, 0)
            held.append(s)
        return port, held


def served(gw_addr, port, load):
    try:
        s, rep, _, _ = socks_open(gw_addr, "127.0.0.1", port, timeout=2)
    except (OSError, EOFError, AssertionError):
        return False
    try:
        if rep != 0:
            return False
        with load.lock:
            load.admitted.append(s.getsockname()[1])
        s.sendall(b"back")
        return recv_exact(s, 4) == b"back"
    except (OSError, EOFError):
        return False
    finally:
        s.close()


def back_within(gw_addr, port, t0, load):
    """Seconds from t0 until a session is relayed again."""
    wait_for(lambda: served(gw_addr, port, load), timeout=10, interval=0.02,
             what="service back")
    return time.monotonic() - t0


class AuditdKillTest(KillTestCase):

    @unittest.skipUnless(os.geteuid() == 0, "auditd's account needs root")
    def test_auditd_runs_as_its_own_account_with_its_channel_only(self):
        gw = self.gw
        with open("/proc/%d/status" % gw.auditd_pid) as f:
            uid = [int(l.split()[1]) for l in f if l.startswith("Uid:")][0]
        self.assertEqual(uid, pwd.getpwnam("socksgw-audit").pw_uid)
        with open("/proc/%d/status" % gw.proxy_pid) as f:
            proxy = [int(l.split()[1]) for l in f if l.startswith("Uid:")][0]
        self.assertNotEqual(uid, proxy)
        tcp = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp",
                      "/proc/net/udp6"):
            with open(table) as f:
                tcp |= {line.split()[9] for line in list(f)[1:]}
        fds = socket_inodes(gw.auditd_pid)
        sockets = [l for fd, l in fds if fd > 2 and l.startswith("socket:")]
        files = sorted(os.path.basename(l) for fd, l in fds if fd > 2 and
                       l.startswith("/"))
        # Its channel to the proxy; audit.db (the writer's connection and
        # the checkpointer's), its WAL and its shm; the runtime lock (held
        # so no second gatewayd starts a second writer).
        self.assertEqual(len(sockets), 1, fds)
        self.assertNotIn(sockets[0][8:-1], tcp)
        self.assertEqual([f for f in files if not f.endswith(".lock")],
                         ["audit.db", "audit.db", "audit.db-shm",
                          "audit.db-wal", "audit.db-wal"], fds)
        self.assertEqual(len(files), 6, fds)
        # The proxy holds no descriptor of audit.db.
        for fd, link in socket_inodes(gw.proxy_pid):
            self.assertFalse(link.startswith(gw.tmp.path + "/audit.db"),
                             link)
        # Both of auditd's connections write after the privilege drop:
        # records (the writer), rollups (the housekeeping thread).
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        s.close()

        def rolled_up():
            import sqlite3
            con = sqlite3.connect(os.path.join(gw.tmp.path, "audit.db"))
            try:
                return con.execute("SELECT count(*) FROM hourly_users"
                                   ).fetchone()[0] > 0
            finally:
                con.close()
        wait_for(rolled_up, timeout=10, what="a rollup")
        self.assertEqual([l for l in gw.log().splitlines() if "warn: audit"
                          in l and "signing key created" not in l], [])

    def test_sigkill_of_auditd_under_load_loses_nothing(self):
        gw = self.gw
        port, held = self.hold(10)
        load = Load(gw.addr, port)
        try:
            time.sleep(1.5)
            first = gw.auditd_pid
            t0 = time.monotonic()
            os.kill(first, signal.SIGKILL)
            gw.wait_log("auditd restarted")
            back = back_within(gw.addr, port, t0, load)
            time.sleep(1.5)
        finally:
            load.end()
        self.assertNotEqual(gw.auditd_pid, first)
        for s in held:
            s.sendall(b"late")
            self.assertEqual(recv_exact(s, 4), b"late")
            s.close()
        total = len(load.admitted) + len(held)
        wait_for(lambda: len(gw.audit("verdict = 'allow' AND seq IS NOT "
                                      "NULL")) >= total, timeout=20,
                 what="every relayed session recorded")
        self.assertEqual(gw.stop(), 0)
        rows = gw.audit()
        allowed = [r for r in rows if r["verdict"] == "allow"]
        print("\nauditd killed under load: %d sessions relayed, %d refused "
              "while it was down, service back after %.2f s; %d allowed "
              "rows" % (total, load.refused, back, len(allowed)))
        self.assertLess(back, 2.0)
        # Every relayed session exactly once, none left open, none lost.
        self.assertEqual(len(allowed), total)
        self.assertEqual(len({r["session_id"] for r in allowed}), total)
        self.assertEqual([r for r in rows if r["seq"] is None], [])
        self.assertNotIn("records were lost", gw.log())
        self.assertNotIn("had not handed over", gw.log())
        self.assertEqual(gw.ctl("audit", "verify").returncode, 0)


class ProxyKillTest(KillTestCase):

    def test_sigkill_of_the_proxy_under_load(self):
        gw = self.gw
        port, held = self.hold(10)
        load = Load(gw.addr, port)
        try:
            time.sleep(1.5)
            t0 = time.monotonic()
            os.kill(gw.proxy_pid, signal.SIGKILL)
            gw.wait_log("ready:", count=2)
            back = back_within(gw.addr, port, t0, load)
            time.sleep(0.5)
        finally:
            load.end()
        for s in held:
            s.close()
        before = [c for c, t in load.ok if t < t0 - 1.0]
        wait_for(lambda: len(gw.audit("close_reason = 'proxy restarted'"))
                 >= len(held), timeout=10, what="held sessions closed")
        self.assertEqual(gw.stop(), 0)
        rows = gw.audit()
        ports = {r["client_port"] for r in rows if r["verdict"] == "allow"}
        missing = [c for c in before if c not in ports]
        closed = [r for r in rows if r["close_reason"] == "proxy restarted"]
        lost = 0
        for line in gw.log().splitlines():
            if "records it had not handed over" in line:
                lost = int(line.split("at least ")[1].split()[0])
        print("\nproxy killed under load: service back after %.2f s; %d "
              "sessions closed as \"proxy restarted\"; the new run counted "
              "%d records not handed over; %d of %d sessions that ended "
              "more than 1 s before the kill are missing"
              % (back, len(closed), lost, len(missing), len(before)))
        self.assertLess(back, 2.0)
        self.assertGreater(len(before), 100)
        # What ended a second before the kill had been handed over.
        self.assertEqual(missing, [])
        # Every session the killed proxy had admitted is closed.
        self.assertGreaterEqual(len(closed), len(held))
        self.assertEqual([r for r in rows if r["seq"] is None], [])
        self.assertEqual(gw.ctl("audit", "verify").returncode, 0)


class AuditdRestartTest(KillTestCase):

    def test_auditd_killed_while_the_gateway_stops_loses_nothing(self):
        # Review: auditd killed right after SIGTERM left the sessions'
        # close records unwritten ("auditd is gone at shutdown").
        gw = self.gw
        port, held = self.hold(10)
        wait_for(lambda: len(gw.audit("seq IS NULL")) == 10,
                 what="10 open rows")
        auditd = gw.auditd_pid
        gw.signal(signal.SIGTERM)
        gw.wait_log("waiting up to")
        os.kill(auditd, signal.SIGKILL)
        for s in held:
            s.close()
        self.assertEqual(gw.stop(timeout=60), 0)
        self.assertEqual(gw.audit("seq IS NULL"), [])
        self.assertEqual(len(gw.audit("verdict = 'allow'")), 10)
        self.assertNotIn("not written", gw.log())

    def test_auditd_killed_while_the_proxy_restarts(self):
        # Review: a new auditd that died before it was ready while the
        # proxy restarted ended the whole gateway.
        gw = self.gw
        port = self.tcp_server(EchoHandler)
        old = gw.auditd_pid
        os.kill(gw.proxy_pid, signal.SIGKILL)
        new = wait_for(lambda: (lambda p: p if p and p != old else None)(
            gw.child("socksgw-auditd")), timeout=10, interval=0.001,
            what="the new auditd")
        os.kill(new, signal.SIGKILL)
        back = wait_for(lambda: served(gw.addr, port, _Sink()),
                        timeout=10, what="service back")
        self.assertTrue(back)
        self.assertIsNone(gw.proc.poll(), "the whole gateway ended")
        self.assertEqual(gw.stop(), 0)
        self.assertEqual(gw.ctl("audit", "verify").returncode, 0)


class _Sink:
    """Where served() notes an admitted session, when nobody counts."""
    def __init__(self):
        self.lock = threading.Lock()
        self.admitted = []


class ListenerTest(GatewayTestCase):
    def test_the_port_stays_the_gateways_while_the_proxy_restarts(self):
        # Old main: the proxy bound the listeners itself, so between its
        # death and the next proxy's start the port was free for any
        # local process to take, and clients were refused.
        gw = self.gw
        port = self.tcp_server(EchoHandler)
        parent = gw.proc.pid
        os.kill(parent, signal.SIGSTOP)        # no restart for now
        self.addCleanup(os.kill, parent, signal.SIGCONT)
        proxy = gw.proxy_pid
        os.kill(proxy, signal.SIGKILL)
        wait_for(lambda: open("/proc/%d/stat" % proxy).read().split()[2]
                 == "Z", what="the proxy dead")
        squatter = socket.socket()
        with self.assertRaises(OSError):
            squatter.bind(gw.addr)
        squatter.close()
        # A client that comes now waits in the backlog, and is served.
        s = socket.create_connection(gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        os.kill(parent, signal.SIGCONT)
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        s.sendall(b"\x05\x01\x00\x01\x7f\x00\x00\x01" +
                  port.to_bytes(2, "big"))
        self.assertEqual(recv_exact(s, 10)[:2], b"\x05\x00")
        s.sendall(b"ping")
        self.assertEqual(recv_exact(s, 4), b"ping")
        s.close()


class AuthdKillTest(PamTestCase):
    def login(self, user, password):
        s = socket.create_connection(self.gw.addr, timeout=5)
        s.sendall(b"\x05\x01\x02")
        if recv_exact(s, 2) != b"\x05\x02":
            s.close()
            return None
        s.sendall(bytes([1, len(user)]) + user.encode() +
                  bytes([len(password)]) + password.encode())
        status = recv_exact(s, 2)[1]
        s.close()
        return status

    def test_sigkill_of_authd_fails_closed_and_comes_back(self):
        gw = self.gw
        self.assertEqual(self.login("alice", "secret"), 0)
        results = []
        stop = threading.Event()

        def wrong():
            n = 0
            while not stop.is_set() and n < 25:
                n += 1
                try:
                    results.append(self.login("bob", "not-his-password"))
                except OSError:
                    pass
                time.sleep(0.1)    # under auth_client_fail_limit
        t = threading.Thread(target=wrong)
        t.start()
        try:
            t0 = time.monotonic()
            os.kill(gw.authd_pid, signal.SIGKILL)
            wait_for(lambda: self.login("alice", "secret") == 0,
                     timeout=10, interval=0.02, what="logins back")
            back = time.monotonic() - t0
        finally:
            stop.set()
            t.join(timeout=30)
        print("\nauthd killed: logins back after %.2f s" % back)
        self.assertLess(back, 2.0)
        # No wrong password was ever let through, down or up.
        self.assertNotIn(0, results)


if __name__ == "__main__":
    unittest.main(verbosity=2)
