"""A small SOCKS5 client with RFC 1961's GSSAPI method, on Debian's
python3-gssapi (MIT Kerberos), for the tests: it logs in with the ticket
in KRB5CCNAME, agrees a protection level, sends a CONNECT and then data,
every message wrapped, and prints what happened as one line of JSON. The
modes that misbehave on purpose say how in their names.

    python3 gss_socks.py PROXY_PORT DEST_PORT MODE [LEVEL] [SIZE]

MODE: echo (SIZE bytes both ways, then a half-close and the echo's EOF),
pipeline (SIZE bytes in 64-byte messages sent with the request), bind
(the same behind a BIND, read by the peer it waits for),
replay (one data message sent twice), clear (a message in clear at level
2), udp (UDP ASSOCIATE), connect (the reply only), noflags (a context
without replay and sequence detection), garbage (a token that is none).
"""

import json
import socket
import struct
import sys
import time

import gssapi

SERVICE = "HTTP@localhost"
KRB5 = gssapi.MechType.kerberos


def frame(mtyp, token):
    return struct.pack("!BBH", 1, mtyp, len(token)) + token


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(len(buf))
        buf += chunk
    return buf


def recv_frame(s, mtyp):
    head = recv_exact(s, 2)
    if head == b"\x01\xff":
        raise PermissionError("the server aborted")
    if head != bytes((1, mtyp)):
        raise ValueError("message %r" % head)
    (n,) = struct.unpack("!H", recv_exact(s, 2))
    return recv_exact(s, n)


class Client:
    def __init__(self, port, flags=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if flags is None:
            flags = (gssapi.RequirementFlag.mutual_authentication |
                     gssapi.RequirementFlag.replay_detection |
                     gssapi.RequirementFlag.out_of_sequence_detection |
                     gssapi.RequirementFlag.integrity |
                     gssapi.RequirementFlag.confidentiality)
        name = gssapi.Name(SERVICE, gssapi.NameType.hostbased_service)
        self.ctx = gssapi.SecurityContext(name=name, usage="initiate",
                                          mech=KRB5, flags=flags)
        self.conf = False

    def greet(self):
        self.s.sendall(b"\x05\x02\x01\x02")
        return recv_exact(self.s, 2)

    def login(self, token=None):
        self.s.sendall(frame(1, token or self.ctx.step()))
        if token is not None:
            recv_frame(self.s, 1)                   # no token is one
        elif not self.ctx.complete:
            self.ctx.step(recv_frame(self.s, 1))    # the AP-REP

    def agree(self, level):
        self.s.sendall(frame(2, self.ctx.wrap(bytes((level,)),
                                              False).message))
        got = self.ctx.unwrap(recv_frame(self.s, 2)).message[0]
        self.conf = got == 2
        return got

    def wrapped(self, data, conf=None):
        return frame(3, self.ctx.wrap(data, self.conf if conf is None
                                      else conf).message)

    def send(self, data, conf=None):
        msg = self.wrapped(data, conf)
        self.s.sendall(msg)
        return msg

    def recv(self):
        return self.ctx.unwrap(recv_frame(self.s, 3)).message

    def request(self, cmd, port, after=None):
        """The request, then the messages after() wraps (in that order:
        each message's sequence number is its place)."""
        req = self.wrapped(b"\x05" + bytes((cmd,)) +
                           b"\x00\x01\x7f\x00\x00\x01" +
                           struct.pack("!H", port))
        self.s.sendall(req + (after() if after else b""))
        reply = b""
        while len(reply) < 10:
            reply += self.recv()
        return reply[1]

    def recv_until(self, n):
        buf = b""
        while len(buf) < n:
            buf += self.recv()
        return buf


def main():
    port, dport, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    level = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    out = {}
    flags = None
    if mode == "noflags":
        flags = (gssapi.RequirementFlag.mutual_authentication |
                 gssapi.RequirementFlag.integrity |
                 gssapi.RequirementFlag.confidentiality)
    c = Client(port, flags)
    try:
        out["method"] = c.greet()[1]
        c.login(b"\x60\x05junk" if mode == "garbage" else None)
        out["level"] = c.agree(level)
        data = bytes(i % 251 for i in range(size))
        after = None
        if mode == "pipeline":
            # Many small messages right behind the request, before its
            # reply: more than the handshake buffers.
            def after():
                return b"".join(c.wrapped(data[i:i + 64])
                                for i in range(0, size, 64))
        if mode == "bind":
            # BIND, with the data right behind it: the gateway reads it
            # while it waits for the peer, past its handshake buffer.
            req = c.wrapped(b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x00")
            c.s.sendall(req + b"".join(c.wrapped(data[i:i + 64])
                                       for i in range(0, size, 64)))
            first = c.recv_until(10)
            time.sleep(0.5)
            peer = socket.create_connection(
                ("127.0.0.1", struct.unpack("!H", first[8:10])[0]),
                timeout=10)
            out["rep"] = c.recv_until(10)[1]
            got = b""
            while len(got) < size:
                chunk = peer.recv(65536)
                if not chunk:
                    break
                got += chunk
            out["echo"] = got == data
            peer.close()
            print(json.dumps(out))
            return
        out["rep"] = c.request(3 if mode == "udp" else 1, dport, after)
        if mode == "pipeline":
            out["echo"] = c.recv_until(size) == data
        elif mode == "echo":
            data = bytes(i % 251 for i in range(size))
            sent = 0
            while sent < size:
                c.send(data[sent:sent + 20000])
                sent += 20000
            out["echo"] = c.recv_until(size) == data
            c.s.shutdown(socket.SHUT_WR)
            try:
                c.recv()
                out["eof"] = False
            except EOFError:
                out["eof"] = True
        elif mode in ("replay", "clear"):
            msg = c.send(b"once")
            out["first"] = c.recv_until(4).decode()
            if mode == "replay":
                c.s.sendall(msg)
            else:
                c.send(b"bare", conf=False)
            try:
                out["after"] = c.recv().decode()
            except EOFError:
                out["after"] = None
    except PermissionError:
        out["aborted"] = True
    except (EOFError, ConnectionResetError):
        out["closed"] = True
    print(json.dumps(out))


if __name__ == "__main__":
    main()
