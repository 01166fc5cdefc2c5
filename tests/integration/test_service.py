"""gatewayd as a systemd service: sd_notify(3) messages (Type=notify),
journald priority prefixes, and log_sessions.

No systemd runs here as PID 1: the test plays the service manager's part
with a datagram socket of its own in $NOTIFY_SOCKET, and journald's with
JOURNAL_STREAM naming the log file, as systemd would.
"""
import os
import signal
import socket
import struct
import subprocess

from gwtest import (GatewayTestCase, EchoHandler, socks_open, wait_for,
                    recv_exact)


class NotifySocket:
    """What systemd listens on: one datagram per sd_notify() call."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp.path, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.messages = []
        self.senders = set()

    def drain(self):
        creds = struct.calcsize("3i")
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(creds))
            except (socket.timeout, BlockingIOError):
                return
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and \
                        kind == socket.SCM_CREDENTIALS:
                    self.senders.add(struct.unpack("3i", payload)[0])
            self.messages.append(dict(
                line.split("=", 1) for line in data.decode().split("\n")
                if "=" in line))

    def wait(self, key, value=None, after=0, timeout=10.0):
        """The first message from index `after` on that sets key."""
        def found():
            self.drain()
            for i, m in enumerate(self.messages[after:], after):
                if key in m and (value is None or m[key] == value):
                    return i + 1
            return None
        return wait_for(found, timeout, what="%s in sd_notify" % key)

    def close(self):
        self.sock.close()


class NotifyTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        # The gateway of setUp is replaced by one that has the socket.
        self.stop_gateway(self.gw)
        self.notify = NotifySocket(self.tmp)
        self.addCleanup(self.notify.close)
        self.gw = self.start_gateway(env={"NOTIFY_SOCKET": self.notify.path})

    def test_ready_status_reload_stop(self):
        n = self.notify.wait("READY", "1")
        # Sessions open reach the STATUS line (reported every 5 s).
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        self.notify.wait("STATUS", "serving, 1 sessions open", after=n)
        s.close()
        # SIGHUP: RELOADING, then READY once the proxy has read it again.
        self.gw.signal(signal.SIGHUP)
        n = self.notify.wait("RELOADING", "1")
        self.notify.wait("READY", "1", after=n)
        self.gw.wait_log("configuration reloaded")
        self.assertEqual(self.gw.stop(), 0)
        self.notify.wait("STOPPING", "1")

    def test_refused_reload_is_said(self):
        self.notify.wait("READY", "1")
        # -n would catch this one; a SIGHUP sent by hand would not.
        with open(self.gw.conf, "a") as f:
            f.write("handshake_timeout soon\n")
        self.gw.signal(signal.SIGHUP)
        n = self.notify.wait("RELOADING", "1")
        n = self.notify.wait("READY", "1", after=n)
        self.assertTrue(self.notify.messages[n - 1]["STATUS"].startswith(
            "reload refused, the running configuration stays"))

    def test_only_the_parent_speaks(self):
        # NotifyAccess=main: systemd hears the main process only, so every
        # message must come from the parent, whatever a child does.
        self.notify.wait("READY", "1")
        self.gw.signal(signal.SIGHUP)
        n = self.notify.wait("RELOADING", "1")
        self.notify.wait("READY", "1", after=n)
        self.assertEqual(self.notify.senders, {self.gw.proc.pid})


class JournalTest(GatewayTestCase):
    def relaunch(self, extra_conf="", journal=True, drop=None):
        """The same gateway again, its stderr named by JOURNAL_STREAM."""
        self.assertEqual(self.gw.stop(), 0)
        if extra_conf or drop:
            # A keyword given again replaces the line gwtest wrote.
            gone = {drop} | {extra_conf.split()[0]} if extra_conf else {drop}
            with open(self.gw.conf) as f:
                kept = [l for l in f.read().splitlines()
                        if (l.split() or [""])[0] not in gone]
            with open(self.gw.conf, "w") as f:
                f.write("\n".join(kept + [extra_conf]) + "\n")
        st = os.stat(self.gw.logpath)
        env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)} \
            if journal else {}
        self.gw._how = (self.gw._how[0], self.gw._how[1], env)
        mark = len(self.gw.log())
        self.gw.logfile = open(self.gw.logpath, "a")
        self.gw._launch(*self.gw._how)
        return mark

    def echo_once(self):
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        s.sendall(b"x")
        self.assertEqual(recv_exact(s, 1), b"x")
        s.close()

    def test_priorities_when_stderr_is_the_journal(self):
        mark = self.relaunch()
        self.echo_once()
        self.gw.wait_log("closed: user=", count=1)
        lines = self.gw.log()[mark:].splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>gatewayd(\[\w+\])?: ")
        self.assertTrue(any(l.startswith("<6>") and "ready:" in l
                            for l in lines))

    def test_other_streams_get_time_stamps(self):
        # A JOURNAL_STREAM that names another file is not the journal.
        self.assertEqual(self.gw.stop(), 0)
        self.gw._how = (self.gw._how[0], self.gw._how[1],
                        {"JOURNAL_STREAM": "1:1"})
        mark = len(self.gw.log())
        self.gw.logfile = open(self.gw.logpath, "a")
        self.gw._launch(*self.gw._how)
        lines = self.gw.log()[mark:].splitlines()
        self.assertIn("ready:", "\n".join(lines))
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT")

    def test_configuration_errors_are_errors_in_the_journal(self):
        # What -n and a refused start print stays FILE:LINE: message, with
        # the error priority in front when stderr is the journal.
        bad = self.tmp.write("bad.conf", "bogus 1\nlisten x\n")
        log = os.path.join(self.tmp.path, "journal")
        with open(log, "w") as f:
            st = os.fstat(f.fileno())
            for args in (["-n"], []):
                r = subprocess.run(
                    [os.environ["GATEWAYD"], "-c", bad] + args, stderr=f,
                    stdout=subprocess.DEVNULL, timeout=30,
                    env=dict(os.environ, JOURNAL_STREAM="%d:%d" % (
                        st.st_dev, st.st_ino)))
                self.assertEqual(r.returncode, 1)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, ["<3>%s:1: unknown keyword 'bogus'" % bad,
                                 "<3>%s:2: listen x: missing :PORT" % bad] * 2)

    def test_log_sessions_no(self):
        self.relaunch("log_sessions no", journal=False)
        self.echo_once()
        wait_for(lambda: len(self.gw.audit("end_ms IS NOT NULL")) >= 1,
                 what="the close record")
        self.assertNotIn("closed: user=", self.gw.log())

    def test_log_sessions_default_follows_the_audit(self):
        # Without the line, a gateway with an audit trail leaves the
        # sessions to it; one without writes the line, the only trace.
        self.relaunch(journal=False, drop="log_sessions")
        self.echo_once()
        wait_for(lambda: len(self.gw.audit("end_ms IS NOT NULL")) >= 1,
                 what="the close record")
        self.assertNotIn("closed: user=", self.gw.log())
        self.relaunch(journal=False, drop="audit_db")
        self.echo_once()
        self.gw.wait_log("closed: user=")
