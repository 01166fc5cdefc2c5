"""audit_failure block loses nothing (issue 13): the audit database on a
tmpfs that fills up under load, with audit_queue 1000. Every admitted
session gets its close record, refusals never take those places (each is
a row, or counted in a summary row), sessions a crash left open are closed
at the next start, and the chain verifies. Runs in a mount namespace of
its own, so the tmpfs is nobody else's."""
import ctypes
import errno
import os
import re
import socket
import subprocess
import threading
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, TempDir, recv_exact,
                    socks_open, wait_for)


def setUpModule():
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() != 0 or libc.unshare(0x00020000) != 0:    # CLONE_NEWNS
        raise unittest.SkipTest("needs root to make a mount namespace")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)


class AuditFullTest(GatewayTestCase):
    def setUp(self):
        self.disk = TempDir()
        self.addCleanup(self.disk.cleanup)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755",
                        "tmpfs", self.disk.path], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.disk.path])
        self.gateway_extra = ("audit_queue 1000\naudit_failure block\n"
                              "control_socket ctl.sock\n")
        super().setUp()

    def start_gateway(self, extra="", **kw):
        kw.setdefault("audit", False)
        if os.geteuid() == 0:
            os.chown(self.disk.path, 65534, 65534)   # nobody writes it
        gw = super().start_gateway(
            extra + "audit_db %s/audit.db\n" % self.disk.path, **kw)
        gw.audit_path = os.path.join(self.disk.path, "audit.db")
        return gw

    def fill(self):
        """Fills the tmpfs; returns the filler's path."""
        path = os.path.join(self.disk.path, "filler")
        # Unbuffered: a buffered file would try the failed write again
        # when it is closed, and raise ENOSPC there.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        try:
            while os.write(fd, b"\0" * 65536) > 0:
                pass
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        return path

    def test_a_full_disk_loses_nothing(self):
        port = self.tcp_server(EchoHandler)
        ok, refused = [], []
        stop = threading.Event()
        self.addCleanup(stop.set)     # a failed assertion stops the load

        def load():
            while not stop.is_set() and len(ok) + len(refused) < 200000:
                try:
                    s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1",
                                              port, timeout=5)
                except (OSError, EOFError, AssertionError):
                    continue
                if rep == 0:
                    s.sendall(b"ping")
                    recv_exact(s, 4)
                    ok.append(1)
                else:
                    refused.append(rep)
                s.close()
        # Sessions that stay open through the whole failure.
        held = []
        for _ in range(20):
            s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
            self.assertEqual(rep, 0)
            held.append(s)
        threads = [threading.Thread(target=load, daemon=True)
                   for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(1)
        filler = self.fill()
        self.gw.wait_log("audit: cannot write records", timeout=20)
        time.sleep(3)
        os.unlink(filler)
        self.gw.wait_log("audit: writing works again", timeout=20)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for s in held:
            s.sendall(b"late")
            self.assertEqual(recv_exact(s, 4), b"late")
            s.close()
        total_ok = len(ok) + len(held)
        wait_for(lambda: len(self.gw.audit("verdict = 'allow' AND seq IS "
                                           "NOT NULL")) >= total_ok,
                 timeout=20, what="every relayed session recorded")
        self.gw.stop()
        rows = self.gw.audit()
        allowed = [r for r in rows if r["verdict"] == "allow"]
        unavailable = [r for r in rows if r["reason"] == "audit unavailable"]
        summarised = sum(int(re.match(r"(\d+)", r["reason"]).group(1))
                         for r in rows if r["close_reason"] == "summary")
        print("\n%d relayed, %d refused (%d rows, %d in summaries)"
              % (total_ok, len(refused), len(unavailable), summarised))
        self.assertGreater(len(refused), 0, "the disk never filled")
        self.assertEqual(len(allowed), total_ok)
        self.assertEqual(len(unavailable) + summarised, len(refused))
        self.assertEqual([r for r in rows if r["seq"] is None], [])
        self.assertNotIn("records were lost", self.gw.log())
        self.assertEqual(self.gw.ctl("audit", "verify").returncode, 0)

    def test_sessions_left_open_by_a_crash_are_closed(self):
        port = self.tcp_server(EchoHandler)
        held = []
        for _ in range(5):
            s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
            self.assertEqual(rep, 0)
            held.append(s)
        wait_for(lambda: len(self.gw.audit("seq IS NULL")) == 5,
                 timeout=5, what="5 open rows")
        # The proxy dies; the parent starts it again within a second.
        t0 = time.monotonic()
        os.kill(self.gw.proxy_pid, 9)
        self.gw.wait_log("5 sessions left open by the last run closed")
        self.gw.wait_log("ready:", count=2)
        self.assertLess(time.monotonic() - t0, 2.0)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        s.close()
        for s in held:
            s.close()
        self.gw.stop()
        rows = self.gw.audit("close_reason = 'proxy restarted'")
        self.assertEqual(len(rows), 5)
        self.assertEqual(self.gw.ctl("audit", "verify").returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
