"""Files, the runtime lock and authd's descriptors (issue 13): the
databases are nobody else's to read, a second gatewayd with the same
configuration refuses to start and leaves the running one alone, and
authd holds nothing but its channels."""
import json
import os
import stat
import subprocess
import unittest

from gwtest import (GATEWAYD, EchoHandler, GatewayTestCase, socks_open,
                    wait_for)
from test_pam import PamTestCase


class FilesTest(GatewayTestCase):
    gateway_extra = "control_socket ctl.sock\n"

    def test_databases_are_not_world_readable(self):
        # Old main: audit.db, its WAL and policy.db were created 0644.
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        s.close()
        for name in ("policy.db", "audit.db", "audit.db-wal"):
            path = os.path.join(self.gw.tmp.path, name)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode & 0o007, 0, "%s is %o" % (name, mode))
        mode = stat.S_IMODE(os.stat(os.path.join(self.gw.tmp.path,
                                                 "ctl.sock")).st_mode)
        self.assertEqual(mode, 0o660)

    def test_a_second_instance_leaves_the_first_alone(self):
        # Old main: the second one replaced the running one's control
        # socket, then failed on the busy port.
        before = os.stat(os.path.join(self.gw.tmp.path, "ctl.sock")).st_ino
        r = subprocess.run([GATEWAYD, "-c", self.gw.conf],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another gatewayd (pid %d) runs with"
                      % self.gw.proc.pid, r.stderr)
        after = os.stat(os.path.join(self.gw.tmp.path, "ctl.sock")).st_ino
        self.assertEqual(before, after)
        st = json.loads(self.gw.ctl("--json", "stats").stdout)
        self.assertIn("sessions_open", st)

    def test_a_copy_of_the_configuration_is_no_way_around(self):
        # The review: a copied configuration took another lock and a
        # second writer forked the audit chain.
        copy = self.gw.tmp.write("copy.conf", open(self.gw.conf).read())
        r = subprocess.run([GATEWAYD, "-c", copy], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another gatewayd (pid %d)" % self.gw.proc.pid,
                      r.stderr)

    def test_a_stale_control_path_is_never_followed(self):
        # Something else at the control socket's path is an error, never
        # removed or followed.
        other = self.tmp.write("precious", "keep me\n")
        path = os.path.join(self.tmp.path, "link.sock")
        os.symlink(other, path)
        gw_conf = self.tmp.write("other.conf", "listen 127.0.0.1:0\n"
                                 "control_socket %s\n" % path)
        r = subprocess.run([GATEWAYD, "-c", gw_conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists and is not a socket", r.stderr)
        with open(other) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertTrue(os.path.islink(path))


def socket_inodes(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        out.append((int(fd), link))
    return out


class AuthdDescriptorsTest(PamTestCase):
    gateway_extra = ("auth pam\ncontrol_socket ctl.sock\n"
                     "metrics_listen 127.0.0.1:0\n")

    @unittest.skipUnless(os.geteuid() == 0, "reads another process's fds")
    def test_authd_holds_its_channels_only(self):
        # Old main: authd was forked after the metrics listener, the
        # control socket and both databases were open, and kept them.
        def extra_fds():
            return [(fd, link) for fd, link in
                    socket_inodes(self.gw.authd_pid) if fd > 2 and
                    not link.startswith("pipe:") and  # its own wake-up pipe
                    link != "anon_inode:[eventpoll]"]  # a PAM thread's
        # One channel a worker. Read until it holds (a loaded machine may
        # catch authd between two steps of its start), then checked.
        try:
            wait_for(lambda: len(extra_fds()) == 2, timeout=5,
                     what="authd's two channels")
        except AssertionError:
            pass
        extra = extra_fds()
        self.assertEqual(len(extra), 2, extra)
        # One epoll set a PAM thread (auth_workers, 4 by default): the
        # channels, each thread woken alone (EPOLLEXCLUSIVE).
        self.assertEqual(sum(link == "anon_inode:[eventpoll]" for _, link in
                             socket_inodes(self.gw.authd_pid)), 4)
        tcp = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                tcp |= {line.split()[9] for line in list(f)[1:]}
        for fd, link in extra:
            self.assertTrue(link.startswith("socket:["), link)
            self.assertNotIn(link[8:-1], tcp)


if __name__ == "__main__":
    unittest.main(verbosity=2)
