"""Behind a load balancer (issue 18): `listen ADDR:PORT proxy_protocol` with
`proxy_trusted`. The PROXY header (v1 or v2) of a trusted balancer names the
client that the policy, the per-client caps and the audit see; anyone else
is refused, and so is a trusted balancer without a header. Raw headers for
the edge cases, then Debian's HAProxy 2.6 in mode tcp with send-proxy-v2 and
send-proxy in front of the gateway, with curl and raw SOCKS clients behind
it on their own loopback addresses."""

import json
import os
import shutil
import socket
import struct
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, free_port, recv_exact,
                    recv_until_eof, socks_request, read_reply, wait_for)

BALANCER = "127.0.0.2"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst, sport, dport, family="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (family, src, dst, sport,
                                          dport)).encode()


def v2(src, dst, sport, dport, cmd=0x21):
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    addrs = (socket.inet_pton(family, src) + socket.inet_pton(family, dst) +
             struct.pack("!HH", sport, dport))
    fam = 0x21 if family == socket.AF_INET6 else 0x11
    return V2_SIG + struct.pack("!BBH", cmd, fam, len(addrs)) + addrs


class ProxyBase(GatewayTestCase):
    # Clients the headers name: 192.0.2.7 and 2001:db8::7 may reach
    # loopback; 192.0.2.8 may not (no rule names it).
    rules = (("allow", "--src", "192.0.2.7", "--src", "2001:db8::7",
              "--src", "127.0.0.3", "--dst", "127.0.0.0/8"),)
    extra = ("proxy_trusted %s\nproxy_timeout 3\nhandshake_timeout 30\n"
             "handshake_per_client 2\nproxy_pending 3\n"
             "control_socket ctl.sock\nadvertise 127.0.0.9\n" % BALANCER)

    def setUp(self):
        from gwtest import DnsStub, TempDir
        self.tmp = TempDir(self.tmp_parent)
        self.addCleanup(self.tmp.cleanup)
        self.dns = DnsStub(self.dns_entries)
        self.addCleanup(self.dns.stop)
        self.pp_port = free_port()
        plain = free_port()
        # One worker: connections are accepted in the order they came.
        self.gw = self.start_gateway(
            self.extra, rules=self.rules, workers=1,
            listen=["127.0.0.1:%d" % plain,
                    "127.0.0.1:%d proxy_protocol" % self.pp_port])
        self.gw.port = plain
        self.echo = self.tcp_server(EchoHandler)

    def balancer(self, src=BALANCER):
        return socket.create_connection(("127.0.0.1", self.pp_port),
                                        timeout=10, source_address=(src, 0))

    def greeted(self, header):
        """A balancer's connection: header, SOCKS5 greeting answered."""
        s = self.balancer()
        s.sendall(header + b"\x05\x01\x00")
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        return s

    def connect_through(self, header, dport=None):
        """A balancer's connection: header, SOCKS5 CONNECT; (rep, sock)."""
        s = self.greeted(header)
        s.sendall(socks_request("127.0.0.1", dport or self.echo))
        rep = read_reply(s)[0]
        return rep, s

    def closed_without_a_word(self, s, within=10):
        """Closed with nothing said, within that many seconds."""
        start = time.monotonic()
        s.settimeout(within)
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        s.close()
        return time.monotonic() - start


class ProxyProtocolTest(ProxyBase):
    def test_header_names_the_client(self):
        for header, client in ((v1("192.0.2.7", "127.0.0.1", 40001,
                                   self.pp_port), "192.0.2.7"),
                               (v2("192.0.2.7", "127.0.0.1", 40002,
                                   self.pp_port), "192.0.2.7"),
                               (v1("2001:db8::7", "::1", 40003,
                                   self.pp_port, "TCP6"), "2001:db8::7"),
                               (v2("2001:db8::7", "::1", 40004,
                                   self.pp_port), "2001:db8::7")):
            rep, s = self.connect_through(header)
            self.assertEqual(rep, 0, self.gw.log())
            s.sendall(b"ping")
            self.assertEqual(recv_exact(s, 4), b"ping")
            s.close()
        # The policy judged the named client: 192.0.2.8 has no rule.
        rep, s = self.connect_through(v2("192.0.2.8", "127.0.0.1", 40005,
                                         self.pp_port))
        self.assertEqual(rep, 2)
        s.close()
        # The balancer itself, on the plain listener, has no rule either.
        s = socket.create_connection(self.gw.addr, timeout=10,
                                     source_address=(BALANCER, 0))
        s.sendall(b"\x05\x01\x00" + socks_request("127.0.0.1", self.echo))
        self.assertEqual(recv_exact(s, 2), b"\x05\x00")
        self.assertEqual(read_reply(s)[0], 2)
        s.close()
        wait_for(lambda: len(self.gw.audit(
            "kind = 'session' AND seq IS NOT NULL")) == 6, timeout=5,
            what="the sessions' records")
        # (In the order they were written, which load may change.)
        rows = sorted((r["client_addr"], r["client_port"], r["verdict"])
                      for r in self.gw.audit("kind = 'session'"))
        balancer = [r for r in rows if r[0] == BALANCER]
        self.assertEqual(len(balancer), 1)
        self.assertEqual(balancer[0][2], "deny")
        self.assertEqual([r for r in rows if r[0] != BALANCER],
                         [("192.0.2.7", 40001, "allow"),
                          ("192.0.2.7", 40002, "allow"),
                          ("192.0.2.8", 40005, "deny"),
                          ("2001:db8::7", 40003, "allow"),
                          ("2001:db8::7", 40004, "allow")])

    def test_refused_without_a_trusted_header(self):
        # Not a balancer: closed at accept, even with a valid header.
        s = self.balancer(src="127.0.0.1")
        s.sendall(v1("192.0.2.7", "127.0.0.1", 1, 2) + b"\x05\x01\x00")
        self.closed_without_a_word(s)
        self.gw.wait_log("refused 127.0.0.1:")
        # A balancer without a header, with a malformed one, a v2 header
        # for UDP, and a health check (LOCAL): closed, each said why.
        for data, why in ((b"\x05\x01\x00", "no PROXY protocol header"),
                          (b"PROXY TCP4 192.0.2.7 127.0.0.1 01 2\r\n",
                           "a malformed PROXY protocol v1 line"),
                          (V2_SIG + b"\x21\x12\x00\x0c" + bytes(12),
                           "for neither TCP over IPv4 nor IPv6"),
                          (v2("0.0.0.0", "0.0.0.0", 0, 0, cmd=0x20),
                           "PROXY protocol health check (LOCAL)")):
            s = self.balancer()
            s.sendall(data)
            self.closed_without_a_word(s)
            self.gw.wait_log(why)
        # Silence: proxy_timeout (3 s), not the handshake's 30.
        self.assertGreater(self.closed_without_a_word(self.balancer()), 2)
        # A header on a listener without proxy_protocol is no protocol
        # of its own: refused as SOCKS refuses garbage.
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(v2("192.0.2.7", "127.0.0.1", 1, 2))
        self.assertEqual(s.recv(100), b"\x05\xff")
        s.close()
        # Counted: one untrusted, three refused, one health check.
        stats = json.loads(self.gw.ctl("--json", "stats").stdout)
        self.assertEqual((stats["proxy_untrusted"], stats["proxy_refused"],
                          stats["proxy_health_checks"]), (1, 3, 1))

    def test_a_reload_without_proxy_trusted_trusts_no_one(self):
        # listen is restart-only: a reload that drops proxy_protocol and
        # proxy_trusted keeps the listener, whose empty list must not
        # fall back to "loopback", where any local process could name
        # any client.
        import signal
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "w") as f:
            f.write(text.replace(" proxy_protocol", "").replace(
                "proxy_trusted %s\n" % BALANCER, ""))
        self.gw.signal(signal.SIGHUP)
        self.gw.wait_log("take effect only after a restart")
        s = self.balancer()
        s.sendall(v1("192.0.2.7", "127.0.0.1", 1, 2) + b"\x05\x01\x00")
        self.closed_without_a_word(s, within=2)
        self.gw.wait_log("not a load balancer proxy_trusted names")

    def test_caps_follow_the_named_client(self):
        # Silent sockets count against the client the header names
        # (handshake_per_client 2), not the balancer all clients share.
        held = []
        for port in (1, 2):
            s = self.balancer()
            s.sendall(v1("192.0.2.9", "127.0.0.1", port, 2))
            held.append(s)
        time.sleep(0.3)
        s = self.balancer()
        s.sendall(v1("192.0.2.9", "127.0.0.1", 3, 2))
        self.closed_without_a_word(s, within=2)     # not proxy_timeout's 3
        self.gw.wait_log("handshake_per_client reached")
        rep, s = self.connect_through(v1("192.0.2.7", "127.0.0.1", 4, 2))
        self.assertEqual(rep, 0)
        s.close()
        for s in held:
            s.close()
        # Before its header a socket counts against its balancer
        # (proxy_pending 3): a fourth silent one is closed at accept.
        held = [self.balancer() for _ in range(3)]
        time.sleep(0.3)
        self.closed_without_a_word(self.balancer(), within=2)
        for s in held:
            s.close()

    def test_the_pac_file_names_the_address_the_client_reached(self):
        # The generated PAC file sends browsers to the balancer's address
        # the client used (the header's destination), not the node's own.
        s = self.balancer()
        s.sendall(v1("127.0.0.3", "198.51.100.5", 5000, 3128) +
                  b"GET /proxy.pac HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_until_eof(s)
        s.close()
        self.assertIn(b'return "PROXY 198.51.100.5:3128";', data)

    def test_udp_and_bind_replies_name_the_advertised_address(self):
        """Datagrams and BIND's peers do not pass the balancer: the
        replies name `advertise`, where the node listens for them."""
        from test_protocols import udp_echo, udp_header
        uport = udp_echo(self)
        s = self.greeted(v1("127.0.0.3", "127.0.0.1", 5000, self.pp_port))
        s.sendall(socks_request("0.0.0.0", 0, cmd=3))
        rep, addr, rport = read_reply(s)
        self.assertEqual((rep, addr), (0, "127.0.0.9"))
        # From the client the header named, to the advertised address.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.3", 0))
        u.settimeout(5)
        u.sendto(udp_header("127.0.0.1", uport) + b"dgram",
                 ("127.0.0.9", rport))
        data, _ = u.recvfrom(100)
        self.assertTrue(data.endswith(b"dgram"))
        u.close()
        s.close()
        s = self.greeted(v1("127.0.0.3", "127.0.0.1", 5001, self.pp_port))
        s.sendall(socks_request("127.0.0.1", 9, cmd=2))
        rep, addr, bport = read_reply(s)
        self.assertEqual((rep, addr), (0, "127.0.0.9"))
        peer = socket.create_connection(("127.0.0.9", bport), timeout=5,
                                        source_address=("127.0.0.1", 0))
        self.assertEqual(read_reply(s)[0], 0)
        peer.sendall(b"bound")
        self.assertEqual(recv_exact(s, 5), b"bound")
        peer.close()
        s.close()


@unittest.skipUnless(shutil.which("haproxy"), "haproxy (install-deps test)")
class HaproxyTest(ProxyBase):
    """Debian's HAProxy in mode tcp in front: send-proxy-v2 on one
    frontend, send-proxy (v1) on the other, from BALANCER."""

    def setUp(self):
        super().setUp()
        self.fronts = {"v2": free_port(), "v1": free_port()}
        cfg = ["global", "  maxconn 256", "defaults", "  mode tcp",
               "  timeout connect 5s", "  timeout client 30s",
               "  timeout server 30s"]
        for name, send in (("v2", "send-proxy-v2"), ("v1", "send-proxy")):
            cfg += ["frontend f%s" % name,
                    "  bind 127.0.0.1:%d" % self.fronts[name],
                    "  default_backend b%s" % name,
                    "backend b%s" % name,
                    "  server gw 127.0.0.1:%d %s source %s" % (
                        self.pp_port, send, BALANCER)]
        path = self.tmp.write("haproxy.cfg", "\n".join(cfg) + "\n")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", path],
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.addCleanup(self.stop_haproxy)
        for port in self.fronts.values():
            wait_for(lambda: self.listening(port), what="haproxy")

    def listening(self, port):
        if self.haproxy.poll() is not None:
            raise AssertionError("haproxy exited: %s" %
                                 self.haproxy.stderr.read().decode())
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            return False

    def stop_haproxy(self):
        self.haproxy.kill()         # our own child, by its PID
        self.haproxy.wait()
        self.haproxy.stderr.close()

    def test_clients_behind_haproxy_are_judged_by_their_address(self):
        from http.server import ThreadingHTTPServer
        from test_connect import BODY, Hello
        hport = self.serve(ThreadingHTTPServer(("127.0.0.1", 0), Hello))
        for name, port in sorted(self.fronts.items()):
            # curl from 127.0.0.3, which a rule allows.
            r = subprocess.run(["curl", "-sS", "--max-time", "10",
                                "--interface", "127.0.0.3", "--socks5",
                                "127.0.0.1:%d" % port,
                                "http://127.0.0.1:%d/" % hport],
                               capture_output=True, timeout=30)
            self.assertEqual((r.returncode, r.stdout), (0, BODY),
                             name + r.stderr.decode() + self.gw.log())
            # From 127.0.0.4: no rule, refused by the policy.
            s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                         source_address=("127.0.0.4", 0))
            s.sendall(b"\x05\x01\x00" + socks_request("127.0.0.1",
                                                      self.echo))
            self.assertEqual(recv_exact(s, 2), b"\x05\x00")
            self.assertEqual(read_reply(s)[0], 2, name)
            s.close()
        wait_for(lambda: len(self.gw.audit(
            "kind = 'session' AND seq IS NOT NULL")) == 4, timeout=5,
            what="the sessions' records")
        self.assertEqual(sorted((r["client_addr"], r["verdict"])
                                for r in self.gw.audit("kind = 'session'")),
                         [("127.0.0.3", "allow")] * 2 +
                         [("127.0.0.4", "deny")] * 2)
