"""HTTP CONNECT on the SOCKS port (issue 15): real curl through the
gateway, hand-made requests for what curl would never send, Basic proxy
authentication through PAM (pam_wrapper), the PAC file, and headless
Chromium. Forwarding of plain-HTTP requests: test_http_forward.py."""

import base64
import http.server
import json
import os
import socket
import subprocess
import time
import unittest

from gwtest import (EchoHandler, GatewayTestCase, recv_exact, recv_until_eof,
                    socks_open, wait_for)
from test_connect import BODY, Hello
from test_pam import PamTestCase


def head_of(data):
    """Status code, header block (lower-case), body of a response."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), "\n".join(lines[1:]).lower(), body


class HttpCase:
    def ask(self, request, gw=None):
        """Sends request bytes; the whole answer up to the close."""
        s = socket.create_connection((gw or self.gw).addr, timeout=10)
        s.sendall(request)
        data = recv_until_eof(s)
        s.close()
        return data

    def curl(self, url, *args):
        return subprocess.run(["curl", "-sS", "--max-time", "10",
                               "--proxytunnel", "-x",
                               "http://127.0.0.1:%d" % self.gw.port] +
                              list(args) + [url],
                              capture_output=True, timeout=20)


class HttpConnectTest(HttpCase, GatewayTestCase):
    gateway_extra = "control_socket control.sock\n"

    def test_curl_through_a_tunnel_is_judged_and_audited(self):
        hport = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        for host in ("127.0.0.1", "www.test.example", "[::1]"):
            if host == "[::1]":
                hport = self.serve(type("S6", (
                    http.server.ThreadingHTTPServer,),
                    {"address_family": socket.AF_INET6})(("::1", 0),
                                                         Hello))
            r = self.curl("http://%s:%d/" % (host, hport))
            self.assertEqual(r.returncode, 0, (host, r.stderr))
            self.assertEqual(r.stdout, BODY)
        wait_for(lambda: len(self.gw.audit("protocol = 'http' AND "
                                           "seq IS NOT NULL")) == 3,
                 timeout=5, what="three http records")
        recs = self.gw.audit("protocol = 'http'")
        self.assertEqual([r["dst_host"] for r in recs],
                         ["127.0.0.1", "www.test.example", "::1"])
        self.assertEqual({r["command"] for r in recs}, {"connect"})
        self.assertEqual({r["verdict"] for r in recs}, {"allow"})
        self.assertTrue(all(r["bytes_down"] > len(BODY) for r in recs))
        # And counted by protocol, beside one SOCKS5 request.
        s = socks_open(self.gw.addr, "127.0.0.1", hport)[0]
        s.close()
        self.ask(b"GET /proxy.pac HTTP/1.1\r\n\r\n")
        stats = json.loads(self.gw.ctl("--json", "stats").stdout)
        self.assertEqual((stats["requests_http"], stats["requests_socks5"],
                          stats["requests_socks4"], stats["pac_served"]),
                         (3, 1, 0, 1))

    def test_bytes_sent_with_the_request_reach_the_target(self):
        port = self.tcp_server(EchoHandler)
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d"
                  b"\r\n\r\nearly bytes" % (port, port))
        expect = b"HTTP/1.1 200 Connection established\r\n\r\n"
        self.assertEqual(recv_exact(s, len(expect)), expect)
        self.assertEqual(recv_exact(s, 11), b"early bytes")
        s.close()

    def test_denied_unreachable_and_refused(self):
        self.gw.ctl("rule", "add", "deny", "--dst", "198.51.100.0/24",
                    "--comment", "no test nets")
        self.gw.wait_log("policy: 2 rules in force")
        # No rule allows it: 403 saying so.
        code, headers, body = head_of(self.ask(
            b"CONNECT 192.0.2.1:80 HTTP/1.1\r\n\r\n"))
        self.assertEqual(code, 403)
        self.assertIn("content-type: text/plain", headers)
        self.assertIn(b"192.0.2.1", body)
        # A deny rule: 403 naming it.
        code, _, body = head_of(self.ask(
            b"CONNECT 198.51.100.7:443 HTTP/1.1\r\n\r\n"))
        self.assertEqual(code, 403)
        self.assertRegex(body, rb"denied by rule \d+")
        # Nobody listens: 502.
        code, _, body = head_of(self.ask(
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n"))
        self.assertEqual(code, 502)
        wait_for(lambda: len(self.gw.audit("protocol = 'http' AND "
                                           "seq IS NOT NULL")) == 3,
                 timeout=5, what="three records")
        self.assertEqual([r["verdict"] for r in self.gw.audit(
            "protocol = 'http'")], ["deny", "deny", "allow"])

    def test_malformed_requests_get_their_status_and_a_close(self):
        cases = [
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\n\n", 400),      # bare LF
            (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400),     # no port
            (b"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:65536 HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT ::1:80 HTTP/1.1\r\n\r\n", 400),        # unbracketed
            (b"CONNECT a b:80 HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT x_y%00.example:80 HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT www..test.example:80 HTTP/1.1\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/2.0\r\n\r\n", 505),
            (b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\n\r\n", 501),     # origin-form
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nA: b\x01c\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nContent-Length: 5\r\n"
             b"\r\nhello", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nTransfer-Encoding: "
             b"chunked\r\n\r\n", 400),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nX: " + b"y" * 25000 +
             b"\r\n\r\n", 431),
            (b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n" + b"X: y\r\n" * 70 +
             b"\r\n", 431),
        ]
        for request, status in cases:
            data = self.ask(request)
            self.assertTrue(data.startswith(b"HTTP/1.1 "), (request, data))
            self.assertEqual(head_of(data)[0], status, request[:60])
        # None of them got as far as a request: no record.
        self.assertEqual(self.gw.audit("protocol = 'http'"), [])

    def test_pac_file_generated_and_configured(self):
        for path in (b"/proxy.pac", b"/wpad.dat"):
            code, headers, body = head_of(self.ask(
                b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
            self.assertEqual(code, 200)
            self.assertIn("content-type: application/x-ns-proxy-autoconfig",
                          headers)
            self.assertIn(b'return "PROXY 127.0.0.1:%d"' % self.gw.port, body)
        code, headers, body = head_of(self.ask(
            b"HEAD /proxy.pac HTTP/1.1\r\n\r\n"))
        self.assertEqual((code, body), (200, b""))
        self.assertEqual(head_of(self.ask(
            b"GET /other.pac HTTP/1.1\r\n\r\n"))[0], 501)
        pac = self.tmp.write("site.pac", 'function FindProxyForURL(u, h) '
                             '{ return "PROXY proxy.example.org:3128"; }\n')
        gw = self.start_gateway("pac_file %s\n" % pac)
        code, _, body = head_of(self.ask(
            b"GET /wpad.dat HTTP/1.0\r\n\r\n", gw))
        with open(pac) as f:
            self.assertEqual((code, body.decode()), (200, f.read()))
        self.assertEqual(gw.audit("1"), [])     # not sessions
        # Loopback only unless pac_allow says more: a site's PAC file
        # names its internal hosts.
        gw = self.start_gateway("pac_file %s\npac_allow 192.0.2.0/24\n" %
                                pac)
        code, _, body = head_of(self.ask(b"GET /wpad.dat HTTP/1.1\r\n\r\n",
                                         gw))
        self.assertEqual(code, 403)
        self.assertIn(b"pac_allow", body)
        # A link could point anywhere root can read: refused, FILE:LINE.
        link = os.path.join(self.tmp.path, "link.pac")
        os.symlink("/etc/shadow", link)
        conf = self.tmp.write("bad.conf", "audit_db x.db\npac_file %s\n"
                              % link)
        r = subprocess.run([os.environ.get("GATEWAYD", "build/bin/gatewayd"),
                            "-n", "-c", self.tmp.write(
                                "off.conf", "http no\npac_file %s\n" % pac)],
                           capture_output=True, text=True, timeout=20)
        self.assertIn("off.conf:2: pac_file needs http yes",
                      r.stdout + r.stderr)
        r = subprocess.run([os.environ.get("GATEWAYD", "build/bin/gatewayd"),
                            "-n", "-c", conf], capture_output=True, text=True,
                           timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.conf: pac_file %s: a symbolic link" % link,
                      r.stdout + r.stderr)

    def test_http_no_leaves_the_port_to_socks(self):
        gw = self.start_gateway("http no\n")
        self.assertEqual(self.ask(b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n",
                                  gw)[:2], b"\x05\xff")


@unittest.skipIf(os.environ.get("SOCKSGW_SANITIZE") == "1",
                 "pam_wrapper cannot run under ASan")
class HttpBasicTest(HttpCase, PamTestCase):
    gateway_extra = "auth pam\n"

    def test_407_then_basic_through_pam(self):
        code, headers, _ = head_of(self.ask(
            b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n"))
        self.assertEqual(code, 407)
        self.assertIn('proxy-authenticate: basic realm="socksgw"', headers)
        hport = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        url = "http://127.0.0.1:%d/" % hport
        r = self.curl(url, "--proxy-user", "alice:secret")
        self.assertEqual((r.returncode, r.stdout), (0, BODY), r.stderr)
        r = self.curl(url, "--proxy-user", "alice:wrong")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"407", r.stderr)
        # Forwarded (no tunnel): logged in the same way; the server never
        # sees the credentials (test_http_forward checks the whole head).
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "-x",
                            "http://127.0.0.1:%d" % self.gw.port,
                            "--proxy-user", "alice:secret", url],
                           capture_output=True, timeout=20)
        self.assertEqual((r.returncode, r.stdout), (0, BODY), r.stderr)
        wait_for(lambda: self.gw.audit("kind = 'auth'") and len(
            self.gw.audit("kind = 'session' AND seq IS NOT NULL")) == 2,
            timeout=5, what="the records")
        sess = self.gw.audit("kind = 'session'")
        self.assertEqual([(r["user"], r["protocol"]) for r in sess],
                         [("alice", "http")] * 2)
        auth = self.gw.audit("kind = 'auth'")
        self.assertEqual([(r["user"], r["protocol"]) for r in auth],
                         [("alice", "http")])
        # How they logged in, in the record the chain covers.
        self.assertEqual({r["auth_method"] for r in sess + auth}, {"basic"})

    def test_pac_file_needs_no_login(self):
        code, _, body = head_of(self.ask(b"GET /proxy.pac HTTP/1.1\r\n\r\n"))
        self.assertEqual(code, 200)
        self.assertIn(b"FindProxyForURL", body)

    def test_credentials_are_checked_and_never_left_in_memory(self):
        cred = base64.b64encode(b"bob:hunter2").decode()
        # A scheme it does not take: asked for Basic again.
        code, headers, _ = head_of(self.ask(
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nProxy-Authorization: "
            b"Negotiate abc\r\n\r\n"))
        self.assertEqual(code, 407)
        # Two Proxy-Authorization fields, or unreadable Basic: 400.
        for fields in (b"Proxy-Authorization: Basic %s\r\n" % cred.encode()
                       * 2, b"Proxy-Authorization: Basic !!!!\r\n",
                       b"Proxy-Authorization: Basic " +
                       base64.b64encode(b"no colon") + b"\r\n",
                       b"Proxy-Authorization: Basic " +
                       base64.b64encode(b"a\x00b:c") + b"\r\n"):
            code, _, _ = head_of(self.ask(
                b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + fields + b"\r\n"))
            self.assertEqual(code, 400, fields)
        # Good credentials, a port nobody listens on: 502, user recorded.
        code, _, _ = head_of(self.ask(
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nProxy-Authorization: "
            b"basic   %s\r\n\r\n" % cred.encode()))
        self.assertEqual(code, 502)
        wait_for(lambda: self.gw.audit("seq IS NOT NULL AND user = 'bob'"),
                 timeout=5, what="bob's record")

    @unittest.skipUnless(os.geteuid() == 0, "reads another process's memory")
    def test_a_refused_head_leaves_no_password(self):
        # Credentials parsed before a later line failed: the decoded
        # password stayed on a worker's stack (review of issue 15).
        from test_integrity import memory_holds
        secret = b"Zq7-" + os.urandom(6).hex().encode() + b"-kept"
        cred = base64.b64encode(b"alice:" + secret)
        code, _, _ = head_of(self.ask(
            b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nProxy-Authorization: Basic " +
            cred + b"\r\nContent-Length: 5\r\n\r\nhello"))
        self.assertEqual(code, 400)
        self.gw.wait_log("malformed HTTP request")
        for needle in (secret, cred):
            self.assertFalse(memory_holds(self.gw.proxy_pid, needle))


class HttpTrickleTest(HttpCase, GatewayTestCase):
    def test_a_head_sent_a_byte_at_a_time(self):
        port = self.tcp_server(EchoHandler)
        s = socket.create_connection(self.gw.addr, timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port:
            s.send(bytes([b]))
            time.sleep(0.002)
        expect = b"HTTP/1.1 200 Connection established\r\n\r\n"
        self.assertEqual(recv_exact(s, len(expect)), expect)
        s.sendall(b"ping")
        self.assertEqual(recv_exact(s, 4), b"ping")
        s.close()
        # A CR out of place is refused at once, not at the timeout.
        s = socket.create_connection(self.gw.addr, timeout=5)
        s.sendall(b"CONNECT 127.0.0.1:80 HTTP/1.1\rX")
        self.assertEqual(head_of(recv_until_eof(s))[0], 400)
        s.close()


class HttpChromiumTest(HttpCase, GatewayTestCase):
    """A real browser: headless Chromium with the gateway as its proxy
    loads an HTTPS page by name through a CONNECT tunnel."""

    def test_chromium_loads_https_through_the_gateway(self):
        import shutil
        import ssl
        chromium = shutil.which("chromium")
        if chromium is None:
            self.fail("chromium is not installed (packaging/install-deps.sh "
                      "test installs it)")
        key = os.path.join(self.tmp.path, "key.pem")
        cert = os.path.join(self.tmp.path, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=www.test.example"], check=True,
                       capture_output=True, timeout=60)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        hport = self.serve(server)
        # Pointed at the gateway directly, then by its PAC file.
        # Loopback goes through the proxy too ("<-loopback>"); the
        # certificate is the test's own.
        for n, how in enumerate((
                ["--proxy-server=http://127.0.0.1:%d" % self.gw.port,
                 "--proxy-bypass-list=<-loopback>"],
                ["--proxy-pac-url=http://127.0.0.1:%d/proxy.pac" %
                 self.gw.port])):
            profile = os.path.join(self.tmp.path, "chromium-profile%d" % n)
            r = subprocess.run([chromium, "--headless", "--no-sandbox",
                                "--disable-gpu",
                                "--disable-background-networking",
                                "--disable-component-update",
                                "--disable-sync", "--no-first-run",
                                "--user-data-dir=" + profile] + how +
                               ["--ignore-certificate-errors", "--dump-dom",
                                "https://www.test.example:%d/" % hport],
                               capture_output=True, timeout=120)
            self.assertIn(BODY.strip(), r.stdout, (how, r.stderr[-2000:]))
            wait_for(lambda: len(self.gw.audit(
                "protocol = 'http' AND dst_host = 'www.test.example' AND "
                "verdict = 'allow'")) > n, timeout=10,
                what="the browser's tunnel in the audit log")
        # A plain-HTTP page by the generated PAC file: forwarded.
        plain = self.serve(http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), Hello))
        r = subprocess.run([chromium, "--headless", "--no-sandbox",
                            "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--no-first-run", "--user-data-dir=" +
                            os.path.join(self.tmp.path, "chromium-plain"),
                            "--proxy-pac-url=http://127.0.0.1:%d/proxy.pac" %
                            self.gw.port, "--dump-dom",
                            "http://www.test.example:%d/" % plain],
                           capture_output=True, timeout=120)
        self.assertIn(BODY.strip(), r.stdout, r.stderr[-2000:])
        wait_for(lambda: self.gw.audit(
            "protocol = 'http' AND dst_host = 'www.test.example' AND "
            "dst_port = %d AND verdict = 'allow'" % plain), timeout=10,
            what="the forwarded request's record")
