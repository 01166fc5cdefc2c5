"""Relaying: large transfers checked by SHA-256 in both directions at once,
back-pressure (a reader that stops does not make gatewayd grow), half-close
in both directions, and 50 clients in parallel."""
import hashlib
import os
import queue
import socket
import socketserver
import threading
import time
import unittest

import socks  # Debian's python3-socks

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, recv_until_eof,
                    sha256, socks_open, wait_for)

MB = 1 << 20
PAYLOAD = os.urandom(50 * MB)
PAYLOAD_SHA = sha256(PAYLOAD)


class DigestHandler(socketserver.BaseRequestHandler):
    """Reads to EOF, then answers with the SHA-256 of what came."""

    def handle(self):
        h = hashlib.sha256()
        while True:
            data = self.request.recv(1 << 16)
            if not data:
                break
            h.update(data)
        self.request.sendall(h.hexdigest().encode())


class SourceHandler(socketserver.BaseRequestHandler):
    """Sends PAYLOAD, then closes."""

    def handle(self):
        self.request.sendall(PAYLOAD)


class HalfCloseServerFirst(socketserver.BaseRequestHandler):
    """Says its piece, shuts its side, then still listens."""

    def handle(self):
        self.request.sendall(b"server done")
        self.request.shutdown(socket.SHUT_WR)
        HALF_CLOSE_GOT.put(recv_until_eof(self.request))


HALF_CLOSE_GOT = queue.Queue()


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class TransferTest(GatewayTestCase):
    def proxied(self, port):
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port, timeout=60)
        self.assertEqual(rep, 0)
        return s

    def test_upload_50mb_then_half_close(self):
        s = self.proxied(self.tcp_server(DigestHandler))
        s.sendall(PAYLOAD)
        # The server answers only after our EOF reached it.
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_until_eof(s).decode(), PAYLOAD_SHA)
        s.close()
        self.gw.wait_log("up=%d down=64 " % len(PAYLOAD))

    def test_download_50mb(self):
        s = self.proxied(self.tcp_server(SourceHandler))
        h = hashlib.sha256()
        n = 0
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            h.update(data)
            n += len(data)
        s.close()
        self.assertEqual(n, len(PAYLOAD))
        self.assertEqual(h.hexdigest(), PAYLOAD_SHA)
        self.gw.wait_log("up=0 down=%d " % len(PAYLOAD))

    def test_both_ways_at_once_50mb(self):
        s = self.proxied(self.tcp_server(EchoHandler))
        received = hashlib.sha256()
        count = [0]

        def reader():
            while count[0] < len(PAYLOAD):
                data = s.recv(1 << 16)
                if not data:
                    break
                received.update(data)
                count[0] += len(data)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(PAYLOAD)
        t.join(timeout=120)
        self.assertFalse(t.is_alive())
        self.assertEqual(count[0], len(PAYLOAD))
        self.assertEqual(received.hexdigest(), PAYLOAD_SHA)
        s.close()

    def test_back_pressure_bounds_memory(self):
        before = vm_rss_kb(self.gw.proxy_pid)
        s = self.proxied(self.tcp_server(SourceHandler))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        # Read nothing for a while: the source keeps pushing 50 MB.
        time.sleep(1.5)
        during = vm_rss_kb(self.gw.proxy_pid)
        # relay_buffer (256 KiB) per direction, plus allocator slack;
        # without back-pressure this would be close to 50 MB.
        self.assertLess(during - before, 8 * 1024,
                        "gatewayd grew by %d KiB" % (during - before))
        h = hashlib.sha256()
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            h.update(data)
        self.assertEqual(h.hexdigest(), PAYLOAD_SHA)
        s.close()

    def test_half_close_from_server(self):
        s = self.proxied(self.tcp_server(HalfCloseServerFirst))
        self.assertEqual(recv_until_eof(s), b"server done")
        # Our direction still works after the server's EOF.
        s.sendall(b"client still talking")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(HALF_CLOSE_GOT.get(timeout=10),
                         b"client still talking")
        self.gw.wait_log("reason=remote closed")
        s.close()

    def test_fifty_parallel_clients(self):
        port = self.tcp_server(EchoHandler)
        errors = []
        blob = os.urandom(200 * 1024)

        def client(i):
            try:
                c = socks.socksocket()
                c.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port)
                c.settimeout(60)
                c.connect(("127.0.0.1", port))
                msg = (b"%04d" % i) + blob
                c.sendall(msg)
                got = recv_exact(c, len(msg))
                c.close()
                if got != msg:
                    errors.append("client %d: data differs" % i)
            except Exception as e:  # reported below, with its client
                errors.append("client %d: %r" % (i, e))

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual(errors, [])
        wait_for(lambda: self.gw.log().count(" closed: ") >= 50,
                 what="50 close lines")


if __name__ == "__main__":
    unittest.main(verbosity=2)
