"""The handshake on the wire: every malformed message gets the RFC 1928
reply and a closed socket (never a hang), messages split into single bytes
still work, slow and dribbling clients are closed by handshake_timeout,
and the DNS, connect and session limits answer with their reply codes."""
import socket
import struct
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, socks_open,
                    socks_request)


class HandshakeTest(GatewayTestCase):
    gateway_extra = "handshake_timeout 2\nconnect_timeout 2\n"

    def raw(self, data, expect_len, timeout=10):
        """Sends data, returns (reply, bytes after the reply until EOF)."""
        s = socket.create_connection(self.gw.addr, timeout=timeout)
        s.sendall(data)
        reply = recv_exact(s, expect_len)
        rest = s.recv(100)
        s.close()
        return reply, rest

    def request(self, req):
        return self.raw(b"\x05\x01\x00" + req, 2 + 10)

    def test_greeting_wrong_version(self):
        self.assertEqual(self.raw(b"\x06\x01\x00", 2), (b"\x05\xff", b""))

    def test_greeting_socks4_is_told_in_socks4(self):
        reply, rest = self.raw(b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", 8)
        self.assertEqual(reply[:2], b"\x00\x5b")
        self.assertEqual(rest, b"")

    def test_greeting_no_methods(self):
        self.assertEqual(self.raw(b"\x05\x00", 2), (b"\x05\xff", b""))

    def test_greeting_no_acceptable_method(self):
        # Only username/password and GSSAPI offered; auth none is set.
        self.assertEqual(self.raw(b"\x05\x02\x01\x02", 2), (b"\x05\xff", b""))
        self.gw.wait_log("reason=no acceptable authentication method")

    def check_rep(self, req, rep):
        reply, rest = self.request(req)
        self.assertEqual(reply[:2], b"\x05\x00")
        self.assertEqual(reply[2:4], bytes([5, rep]), req)
        self.assertEqual(rest, b"")

    def test_request_malformed(self):
        port = struct.pack("!H", 80)
        ip = socket.inet_aton("127.0.0.1")
        self.check_rep(b"\x04\x01\x00\x01" + ip + port, 1)   # version
        self.check_rep(b"\x05\x09\x00\x01" + ip + port, 7)   # command
        self.check_rep(b"\x05\x01\x01\x01" + ip + port, 1)   # reserved
        self.check_rep(b"\x05\x01\x00\x05" + ip + port, 8)   # ATYP
        self.check_rep(b"\x05\x01\x00\x03\x00" + port, 1)    # empty name
        self.check_rep(b"\x05\x01\x00\x03\x03a\x00b" + port, 1)  # NUL

    def test_one_byte_at_a_time(self):
        port = self.tcp_server(EchoHandler)
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greeting = b"\x05\x02\x02\x00"
        for b in greeting:
            s.send(bytes([b]))
            time.sleep(0.01)
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        for b in socks_request("www.test.example", port):
            s.send(bytes([b]))
            time.sleep(0.01)
        self.assertEqual(recv_exact(s, 4), b"\x05\x00\x00\x01")
        recv_exact(s, 6)
        s.sendall(b"echo")
        self.assertEqual(recv_exact(s, 4), b"echo")
        s.close()

    def test_pipelined_greeting_request_and_data(self):
        port = self.tcp_server(EchoHandler)
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"\x05\x01\x00" + socks_request("127.0.0.1", port) + b"early")
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        self.assertEqual(recv_exact(s, 4), b"\x05\x00\x00\x01")
        recv_exact(s, 6)
        self.assertEqual(recv_exact(s, 5), b"early")
        s.close()

    def test_silent_client_closed_by_handshake_timeout(self):
        s = socket.create_connection(self.gw.addr, timeout=10)
        t0 = time.monotonic()
        self.assertEqual(s.recv(1), b"")
        elapsed = time.monotonic() - t0
        s.close()
        self.assertGreaterEqual(elapsed, 1.5)
        self.gw.wait_log("reason=handshake timeout")

    def test_dribbling_client_closed_by_handshake_timeout(self):
        # A valid greeting of 257 bytes, one byte every 0.2 s, would take
        # 50 s: the deadline is from accept, not from the last byte.
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.send(b"\x05\xff")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 8:
            try:
                s.send(b"\x00")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            finally:
                s.setblocking(True)
        s.close()
        self.assertTrue(closed, "still open after 8 s")
        self.gw.wait_log("reason=handshake timeout")

    def test_dns_timeout(self):
        s, rep, _, _ = socks_open(self.gw.addr, "slow.test.example", 80)
        self.assertEqual(rep, 4)
        s.close()
        self.gw.wait_log("reason=DNS timeout")

    def test_connect_timeout_is_ttl_expired(self):
        # A listener whose accept queue is full drops further SYNs, so a
        # connection to it neither succeeds nor fails.
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        time.sleep(0.2)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 6)
        s.close()
        for f in fillers:
            f.close()
        full.close()
        self.gw.wait_log("reason=connect timeout")

    def test_max_sessions(self):
        gw = self.start_gateway("max_sessions 2")
        port = self.tcp_server(EchoHandler)
        a, rep_a, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        b, rep_b, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual((rep_a, rep_b), (0, 0))
        c, rep_c, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual(rep_c, 1)
        self.assertEqual(c.recv(1), b"")
        c.close()
        gw.wait_log("reason=max_sessions reached")
        a.close()
        gw.wait_log("reason=client closed")
        d, rep_d, _, _ = socks_open(gw.addr, "127.0.0.1", port)
        self.assertEqual(rep_d, 0)
        d.sendall(b"ok")
        self.assertEqual(recv_exact(d, 2), b"ok")
        b.close()
        d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
