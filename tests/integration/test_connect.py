"""CONNECT through a real gatewayd with real clients: curl (--socks5 and
--socks5-hostname, IPv4, IPv6, names), python3-socks, and raw SOCKS5 for
the failure replies."""
import http.server
import socket
import subprocess
import unittest

import socks  # Debian's python3-socks (PySocks)

from gwtest import (EchoHandler, Gateway, GatewayTestCase, TempDir,
                    recv_exact, socks_open, wait_for)

BODY = b"hello through socksgw\n"


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


class HttpServer6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args),
                          capture_output=True, timeout=30)


class ConnectTest(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.hport = self.serve(
            http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello))
        self.hport6 = self.serve(HttpServer6(("::1", 0), Hello))

    def proxy(self, scheme="socks5"):
        return "%s://127.0.0.1:%d" % (scheme, self.gw.port)

    def test_curl_socks5_ipv4(self):
        r = curl("-x", self.proxy(), "-w",
                 "\n%{size_request} %{size_header} %{size_download}",
                 "http://127.0.0.1:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        body, sizes = r.stdout.rsplit(b"\n", 1)
        self.assertEqual(body, BODY)
        up, head, down = (int(x) for x in sizes.split())
        # The close line counts exactly the bytes curl sent and received.
        self.gw.wait_log(" closed: ")
        self.assertRegex(self.gw.log(), r"session \d+ closed: user=- "
                         r"client=127\.0\.0\.1:\d+ cmd=connect "
                         r"dst=127\.0\.0\.1:%d via=127\.0\.0\.1:%d rule=1 "
                         r"up=%d down=%d duration=[0-9.]+s "
                         r"reason=(client|remote) closed"
                         % (self.hport, self.hport, up, head + down))

    def test_curl_socks5_ipv6_destination(self):
        r = curl("-x", self.proxy(), "http://[::1]:%d/" % self.hport6)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        self.gw.wait_log("via=[::1]:%d" % self.hport6)

    def test_curl_socks5_hostname_localhost(self):
        r = curl("-x", self.proxy("socks5h"),
                 "http://localhost:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        self.gw.wait_log("dst=localhost:%d" % self.hport)

    def test_curl_socks5_hostname_from_dns(self):
        r = curl("-x", self.proxy("socks5h"),
                 "http://www.test.example:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        self.gw.wait_log("dst=www.test.example:%d via=127.0.0.1:%d"
                         % (self.hport, self.hport))

    def test_every_resolved_address_is_tried(self):
        # fallback.test.example is 127.0.0.2, where nothing listens on
        # that port, then 127.0.0.1, where the server is.
        gw = self.start_gateway("log_verbose yes")
        r = curl("-x", "socks5h://127.0.0.1:%d" % gw.port,
                 "http://fallback.test.example:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        gw.wait_log("via=127.0.0.1:%d" % self.hport)
        self.assertIn("127.0.0.2:%d: connect: Connection refused"
                      % self.hport, gw.log())

    def test_both_families_resolved(self):
        # both.test.example has ::1 and 127.0.0.1; the server is IPv4.
        r = curl("-x", self.proxy("socks5h"),
                 "http://both.test.example:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        self.gw.wait_log("via=127.0.0.1:%d" % self.hport)

    def test_gateway_on_ipv6_listener(self):
        gw6 = self.start_gateway(listen=["[::1]:0"])
        port = int(wait_for(lambda: _bound_port(gw6.log()),
                            what="bound port in log"))
        r = curl("-x", "socks5h://[::1]:%d" % port,
                 "http://localhost:%d/" % self.hport)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BODY)
        gw6.wait_log("client=[::1]:")

    def test_python_socks(self):
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port, rdns=True)
        s.settimeout(10)
        s.connect(("www.test.example", self.hport))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.0 200"), data[:40])
        self.assertTrue(data.endswith(BODY))

    def test_python_socks_ipv6_echo(self):
        port = self.tcp_server(EchoHandler, host="::1")
        s = socks.socksocket()
        s.set_proxy(socks.SOCKS5, "127.0.0.1", self.gw.port, rdns=False)
        s.settimeout(10)
        s.connect(("::1", port))
        s.sendall(b"ping6")
        self.assertEqual(recv_exact(s, 5), b"ping6")
        s.close()

    def test_success_reply_has_bound_address(self):
        port = self.tcp_server(EchoHandler)
        s, rep, addr, bport = socks_open(self.gw.addr, "127.0.0.1", port)
        self.assertEqual(rep, 0)
        # The gateway's own end of the connection to the destination.
        self.assertEqual(addr, "127.0.0.1")
        self.assertNotEqual(bport, 0)
        self.assertNotIn(bport, (port, self.gw.port))
        s.sendall(b"x")
        self.assertEqual(recv_exact(s, 1), b"x")
        s.close()

    def test_connection_refused(self):
        dead = _closed_port()
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", dead)
        self.assertEqual(rep, 5)
        self.assertEqual(s.recv(1), b"")  # and the gateway closes
        s.close()
        r = curl("-x", self.proxy(), "http://127.0.0.1:%d/" % dead)
        self.assertEqual(r.returncode, 97)
        self.gw.wait_log("reason=connect: Connection refused")

    def test_unresolvable_name(self):
        s, rep, _, _ = socks_open(self.gw.addr, "nope.test.example", 80)
        self.assertEqual(rep, 4)
        self.assertEqual(s.recv(1), b"")
        s.close()
        self.gw.wait_log("reason=DNS: no such name")

    def test_loopback_refused_unless_a_rule_names_it(self):
        # A policy that allows everything still keeps loopback, link-local
        # and the other special ranges closed, by address or by name.
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        strict = Gateway(tmp, dns=self.dns, rules=[("allow",)])
        self.addCleanup(self.stop_gateway, strict)
        for dst in ("127.0.0.1", "::1", "localhost", "www.test.example",
                    "0.0.0.0", "169.254.169.254"):
            s, rep, _, _ = socks_open(strict.addr, dst, self.hport)
            self.assertEqual(rep, 2, dst)
            s.close()
        strict.wait_log("reason=loopback destination: no allow rule names it")
        strict.wait_log("reason=link-local destination: no allow rule names it")

    def test_own_listener_refused(self):
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", self.gw.port)
        self.assertEqual(rep, 2)
        s.close()
        self.gw.wait_log("reason=the gateway's own listening socket")


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _bound_port(log):
    import re
    m = re.search(r"bound to port (\d+)", log)
    return m.group(1) if m else None


if __name__ == "__main__":
    unittest.main(verbosity=2)
