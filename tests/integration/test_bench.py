"""The yardstick of the connection-rate rows (bench/bareproxy.c): the
figures of bench/peers.sh and bench/ab.sh -f are only worth something if
it relays what it is given, byte for byte, through the same load generator
the proxies are measured with."""
import os
import re
import socket
import subprocess
import time
import unittest

from gwtest import GATEWAYD, EchoHandler, GatewayTestCase, free_port, socks_open

BIN = os.path.dirname(GATEWAYD)


class BareProxyTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "bareproxy"), str(self.port)],
            stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.proc.wait)
        self.addCleanup(self.proc.kill)
        self.assertIn("threads on 127.0.0.1:%d" % self.port,
                      self.proc.stdout.readline())

    def test_relays_an_echo(self):
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(("127.0.0.1", self.port), "127.0.0.1",
                                  port)
        self.assertEqual(rep, 0)
        s.sendall(b"x" * 3000)
        got = b""
        while len(got) < 3000:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "closed early")
            got += chunk
        self.assertEqual(got, b"x" * 3000)
        s.close()

    def test_socksbench_through_it(self):
        echo = free_port()
        serve = subprocess.Popen([os.path.join(BIN, "socksbench"), "serve",
                                  str(echo), str(free_port())],
                                 stdout=subprocess.DEVNULL)
        self.addCleanup(serve.wait)
        self.addCleanup(serve.kill)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", echo), 1).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "no echo server")
                time.sleep(0.05)
        out = subprocess.run(
            [os.path.join(BIN, "socksbench"), "rate", "-t",
             "127.0.0.1:%d" % echo, "-s", "127.0.0.1:%d" % self.port,
             "-c", "8", "-d", "1"], capture_output=True, text=True,
            timeout=30).stdout
        self.assertIn("errors=0", out)
        self.assertGreater(int(re.search(r"conn/s=(\d+)", out).group(1)), 0)

    def test_refuses_a_greeting_without_no_auth(self):
        s = socket.create_connection(("127.0.0.1", self.port), 5)
        s.settimeout(5)
        s.sendall(b"\x05\x01\x02")
        self.assertEqual(s.recv(16), b"")
        s.close()


if __name__ == "__main__":
    unittest.main()
