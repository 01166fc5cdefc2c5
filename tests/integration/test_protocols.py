"""UDP ASSOCIATE, BIND and SOCKS4/4a, all under policy and audit, with real
clients where they exist (python3-socks for UDP, curl for SOCKS4/4a) and
raw sockets for the rest."""
import os
import re
import shutil
import signal
import socket
import struct
import threading
import time
import unittest

import socks  # Debian's python3-socks

from gwtest import (GatewayTestCase, LOOPBACK_RULE, recv_exact, socks_open,
                    wait_for)
from test_connect import BODY, Hello
import http.server
import subprocess


def udp_echo(test, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            s.sendto(data, addr)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    test.addCleanup(s.close)
    test.addCleanup(stop.set)
    return s.getsockname()[1]


def udp_header(dst, port):
    for family, atyp in ((socket.AF_INET, 1), (socket.AF_INET6, 4)):
        try:
            return struct.pack("!HBB", 0, 0, atyp) + \
                socket.inet_pton(family, dst) + struct.pack("!H", port)
        except OSError:
            continue
    return struct.pack("!HBBB", 0, 0, 3, len(dst)) + dst.encode() + \
        struct.pack("!H", port)


class UdpTest(GatewayTestCase):
    gateway_extra = "socks4 yes\n"

    def associate(self, client=("0.0.0.0", 0)):
        """UDP ASSOCIATE by hand: the control socket and the relay's port."""
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(b"\x05\x03\x00\x01" + socket.inet_aton(client[0]) +
                  struct.pack("!H", client[1]))
        reply = recv_exact(s, 10)
        self.assertEqual(reply[1], 0)
        self.assertEqual(socket.inet_ntoa(reply[4:8]), "127.0.0.1")
        return s, struct.unpack("!H", reply[8:10])[0]

    def test_python_socks_ipv4_ipv6_and_name(self):
        port4 = udp_echo(self)
        port6 = udp_echo(self, socket.AF_INET6, "::1")
        u = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
        u.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port)
        u.settimeout(5)
        for dst, port in (("127.0.0.1", port4), ("::1", port6),
                          ("localhost", port4)):
            u.sendto(b"to " + dst.encode(), (dst, port))
            data, src = u.recvfrom(4096)
            self.assertEqual(data, b"to " + dst.encode())
        u.close()
        wait_for(lambda: self.gw.audit("command = 'udp' AND seq IS NOT NULL"),
                 timeout=5, what="the UDP record")
        rec = self.gw.audit("command = 'udp'")[0]
        self.assertEqual((rec["packets_up"], rec["packets_down"]), (3, 3))
        self.assertEqual(rec["udp_destinations"], 2)   # 127.0.0.1, ::1
        self.assertEqual(rec["bytes_up"], rec["bytes_down"])
        self.assertEqual(rec["close_reason"], "client closed")

    def test_foreign_source_and_fragments_dropped(self):
        port = udp_echo(self)
        ctl, rport = self.associate(("127.0.0.1", 0))
        mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        mine.bind(("127.0.0.1", 0))
        mine.settimeout(2)
        mine.sendto(udp_header("127.0.0.1", port) + b"one",
                    ("127.0.0.1", rport))
        self.assertTrue(mine.recvfrom(100)[0].endswith(b"one"))
        # Another port of the same host: not the client any more.
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        other.settimeout(0.5)
        other.sendto(udp_header("127.0.0.1", port) + b"two",
                     ("127.0.0.1", rport))
        with self.assertRaises(socket.timeout):
            other.recvfrom(100)
        frag = bytearray(udp_header("127.0.0.1", port) + b"three")
        frag[2] = 1
        mine.sendto(bytes(frag), ("127.0.0.1", rport))
        mine.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            mine.recvfrom(100)
        ctl.close()
        other.close()
        mine.close()

    def test_association_ends_with_its_tcp_connection(self):
        port = udp_echo(self)
        ctl, rport = self.associate()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        u.sendto(udp_header("127.0.0.1", port) + b"x", ("127.0.0.1", rport))
        u.recvfrom(100)
        ctl.close()
        self.gw.wait_log("cmd=udp")
        u.settimeout(0.5)
        u.sendto(udp_header("127.0.0.1", port) + b"y", ("127.0.0.1", rport))
        with self.assertRaises((socket.timeout, ConnectionRefusedError)):
            u.recvfrom(100)
        u.close()

    def test_denied_destination_dropped_and_audited(self):
        port = udp_echo(self)
        self.gw.ctl("rule", "add", "deny", "--cmd", "udp", "--dst",
                    "127.0.0.1/32", "--port", str(port), "--position", "1")
        self.gw.wait_log("policy: 2 rules in force")
        ctl, rport = self.associate()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        for _ in range(3):
            u.sendto(udp_header("127.0.0.1", port) + b"no",
                     ("127.0.0.1", rport))
        with self.assertRaises(socket.timeout):
            u.recvfrom(100)
        ctl.close()
        u.close()
        wait_for(lambda: self.gw.audit("command = 'udp' AND seq IS NOT NULL"),
                 timeout=5, what="the UDP record")
        rec = self.gw.audit("command = 'udp'")[0]
        self.assertEqual((rec["udp_denied"], rec["packets_up"]), (3, 0))


class BindTest(GatewayTestCase):
    def bind_request(self, expected, port=0, proto=5):
        s = socket.create_connection(self.gw.addr, timeout=10)
        if proto == 5:
            s.sendall(b"\x05\x01\x00")
            recv_exact(s, 2)
            s.sendall(b"\x05\x02\x00\x01" + socket.inet_aton(expected) +
                      struct.pack("!H", port))
            first = recv_exact(s, 10)
            self.assertEqual(first[1], 0)
            return s, struct.unpack("!H", first[8:10])[0]
        s.sendall(b"\x04\x02" + struct.pack("!H", port) +
                  socket.inet_aton(expected) + b"ftp\x00")
        first = recv_exact(s, 8)
        self.assertEqual(first[1], 0x5a)
        return s, struct.unpack("!H", first[2:4])[0]

    def test_bind_expected_peer(self):
        s, port = self.bind_request("127.0.0.1")
        peer = socket.create_connection(("127.0.0.1", port), timeout=5)
        second = recv_exact(s, 10)
        self.assertEqual(second[1], 0)
        self.assertEqual(struct.unpack("!H", second[8:10])[0],
                         peer.getsockname()[1])
        peer.sendall(b"from the peer")
        self.assertEqual(recv_exact(s, 13), b"from the peer")
        s.sendall(b"from the client")
        self.assertEqual(recv_exact(peer, 15), b"from the client")
        s.close()
        peer.close()

    def test_wrong_peer_refused(self):
        s, port = self.bind_request("127.0.0.1")
        wrong = socket.socket()
        wrong.bind(("127.0.0.2", 0))
        wrong.settimeout(5)
        wrong.connect(("127.0.0.1", port))
        self.assertEqual(wrong.recv(1), b"")    # closed on it
        wrong.close()
        self.gw.wait_log("is not the expected peer")
        right = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.assertEqual(recv_exact(s, 10)[1], 0)
        right.close()
        s.close()

    def test_bind_wait_is_bounded(self):
        gw = self.start_gateway("bind_timeout 1")
        s = socket.create_connection(gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.1") +
                  b"\x00\x00")
        recv_exact(s, 10)
        self.assertEqual(recv_exact(s, 10)[1], 6)    # TTL expired
        s.close()

    def test_bind_denied_by_policy(self):
        gw = self.start_gateway(rules=[("allow", "--cmd", "connect",
                                        "--dst", "127.0.0.0/8")])
        s = socket.create_connection(gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00")
        recv_exact(s, 2)
        s.sendall(b"\x05\x02\x00\x01" + socket.inet_aton("127.0.0.1") +
                  b"\x00\x00")
        self.assertEqual(recv_exact(s, 10)[1], 2)
        s.close()


class Socks4Test(GatewayTestCase):
    gateway_extra = "socks4 yes\n"

    def test_curl_socks4_and_socks4a(self):
        hport = self.serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                           Hello))
        for scheme, host in (("socks4", "127.0.0.1"),
                             ("socks4a", "www.test.example")):
            r = subprocess.run(["curl", "-sS", "--max-time", "10", "-x",
                                "%s://127.0.0.1:%d" % (scheme, self.gw.port),
                                "--proxy-user", "jdoe:",
                                "http://%s:%d/" % (host, hport)],
                               capture_output=True, timeout=20)
            self.assertEqual(r.returncode, 0, (scheme, r.stderr))
            self.assertEqual(r.stdout, BODY)
        wait_for(lambda: len(self.gw.audit("protocol = 'socks4' AND "
                                           "seq IS NOT NULL")) == 2,
                 timeout=5, what="two SOCKS4 records")
        recs = self.gw.audit("protocol = 'socks4'")
        self.assertEqual([r["dst_host"] for r in recs],
                         ["127.0.0.1", "www.test.example"])
        self.assertEqual([r["ident"] for r in recs], ["jdoe", "jdoe"])
        self.assertEqual([r["user"] for r in recs], [None, None])

    def test_socks4_rejected_by_policy_and_malformed(self):
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x04\x01\x00\x50" + socket.inet_aton("192.0.2.1") +
                  b"x\x00")
        reply = recv_exact(s, 8)
        self.assertEqual(reply[:2], b"\x00\x5b")
        s.close()
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x04\x01\x00\x50\x7f\x00\x00\x01" + b"u" * 300)
        self.assertEqual(recv_exact(s, 8)[:2], b"\x00\x5b")
        self.assertEqual(s.recv(1), b"")
        s.close()

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("strace"),
                         "strace attaches to the proxy as root")
    def test_socks4_bind_toward_ipv6_is_refused_once(self):
        # Old main: a SOCKS4a BIND whose name resolved to IPv6 was
        # "granted" with 0.0.0.0:0 (no place for the peer to connect);
        # refused, the listener was then closed twice, and the second
        # close could hit a descriptor another worker had just opened.
        trace = os.path.join(self.tmp.path, "trace")
        st = subprocess.Popen(["strace", "-f", "-e", "trace=listen,close",
                               "-o", trace, "-p", str(self.gw.proxy_pid)],
                              stderr=subprocess.PIPE)
        self.addCleanup(st.wait)
        self.addCleanup(st.send_signal, signal.SIGINT)
        wait_for(lambda: b"attached" in st.stderr.read1(4096),
                 what="strace to attach")
        time.sleep(0.3)     # every thread
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x04\x02\x00\x50\x00\x00\x00\x01u\x00"
                  b"v6.test.example\x00")
        self.assertEqual(recv_exact(s, 8)[:2], b"\x00\x5b")
        s.close()
        self.gw.wait_log("reason=bind")
        time.sleep(0.3)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
        with open(trace) as f:
            calls = [" ".join(l.split()).split(" ", 1) for l in f
                     if "(" in l]
        listens = [(tid, c) for tid, c in calls
                   if re.match(r"listen\(\d+, 4\) = 0", c)]
        self.assertEqual(len(listens), 1, calls)
        tid, c = listens[0]
        fd = re.match(r"listen\((\d+),", c).group(1)
        after = [c for t, c in calls[calls.index([tid, c]) + 1:]
                 if t == tid and c.startswith("close(%s)" % fd)]
        self.assertEqual(after, ["close(%s) = 0" % fd])

    def test_socks4_refused_when_disabled(self):
        gw = self.start_gateway()
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-x",
                            "socks4://127.0.0.1:%d" % gw.port,
                            "http://127.0.0.1:1/"],
                           capture_output=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        gw.wait_log("reason=SOCKS4 is not enabled")


if __name__ == "__main__":
    unittest.main(verbosity=2)
