"""Helpers for the integration tests: a real gatewayd on loopback, a DNS
stub of our own, and small servers that the tests reach through it.

Every process a test starts is stopped by its PID; every wait is bounded.
Nothing here sends traffic anywhere but 127.0.0.1 and ::1.
"""
import hashlib
import os
import re
import sys
import resource
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
import time
import unittest

GATEWAYD = os.environ.get("GATEWAYD", "build/bin/gatewayd")
DNSSTUB = os.environ.get("DNSSTUB", "build/bin/dnsstub")
SOCKSCTL = os.environ.get("SOCKSCTL", "build/bin/socksctl")

# The tests' servers listen on loopback, which only a rule naming it opens.
LOOPBACK_RULE = ("allow", "--dst", "127.0.0.0/8", "--dst", "::1/128")


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def free_port(family=socket.AF_INET):
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TempDir:
    """A folder the gateway can still read after it drops to nobody."""

    def __init__(self, parent=None):
        self.path = tempfile.mkdtemp(prefix="socksgw-test-", dir=parent)
        os.chmod(self.path, 0o755)

    def subdir(self):
        return TempDir(self.path)

    def write(self, name, text):
        path = os.path.join(self.path, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class DnsStub:
    """tests/helpers/dnsstub: answers the names given, NXDOMAIN otherwise."""

    def __init__(self, entries, log=None):
        self.log = log
        args = ["-l", log] if log else []
        self.proc = subprocess.Popen([DNSSTUB, "-t", "600"] + args +
                                     list(entries), stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())

    def queries(self):
        if not self.log or not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


def child_of(parent, comm):
    """The pid of parent's child named comm, or None."""
    try:
        with open("/proc/%d/task/%d/children" % (parent, parent)) as f:
            pids = [int(x) for x in f.read().split()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == comm:
                    return pid
        except OSError:
            continue
    return None


class Gateway:
    """A gatewayd started from the built binary on free loopback ports."""

    def __init__(self, tmp, extra="", listen=None, dns=None, hosts=None,
                 rules=(LOOPBACK_RULE,), workers=2, args=(), nofile=None,
                 env=None, audit=True, resolv_extra="", private_tmp=False,
                 init=True, rps_cpus=None):
        # Each gateway has a folder of its own: configuration, policy, log.
        self.tmp = tmp = tmp.subdir()
        self.port = free_port()
        self.listen = listen or ["127.0.0.1:%d" % self.port]
        lines = ["listen %s" % l for l in self.listen]
        lines.append("workers %d" % workers)
        if os.geteuid() == 0:
            lines.append("user nobody")
        nameserver = "nameserver 127.0.0.1:%d\n" % dns.port if dns else ""
        lines.append("resolv_conf %s" % tmp.write("resolv.conf", nameserver +
                                                  resolv_extra))
        lines.append("hosts_file %s" % tmp.write(
            "hosts", hosts if hosts is not None else
            "127.0.0.1 localhost\n::1 localhost\n"))
        if audit:
            lines.append("audit_db audit.db")
        # The tests read the closed sessions' lines (off beside audit_db).
        if not re.search(r"^\s*log_sessions\b", extra, re.M):
            lines.append("log_sessions yes")
        lines.append(extra)
        self.conf = tmp.write("gatewayd.conf", "\n".join(lines) + "\n")
        # init=False: a policy of the test's own making (a fleet's store)
        if init and not os.path.exists(os.path.join(tmp.path, "policy.db")):
            self.ctl("init")
            for rule in rules:
                self.ctl("rule", "add", *rule)
        self.logpath = os.path.join(tmp.path, "gatewayd.log")
        self.logfile = open(self.logpath, "w")
        self.private_tmp = private_tmp
        self.rps_cpus = rps_cpus
        self._launch(args, nofile, env)

    def _launch(self, args, nofile, env):
        self._how = (args, nofile, env)
        starts = self.log().count("ready:") + 1
        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        env = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen(self.netns_prefix() +
                                     self.private_tmp_prefix(env) +
                                     [GATEWAYD, "-c", self.conf] + list(args),
                                     stdout=self.logfile,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=limit, env=env)
        wait_for(lambda: self.log().count("ready:") >= starts or
                 self.proc.poll() is not None, what="gatewayd to start")
        if self.proc.poll() is not None:
            raise AssertionError("gatewayd exited: " + self.log())

    def netns_prefix(self):
        """
        rps_cpus: the gateway in a network namespace of its own, whose
        loopback receives every packet on the CPUs of that hex mask (RPS),
        as behind a network card with one queue. unshare and sh exec, so
        the process is still gatewayd; clients join it with
        nsenter -t PID -n (self.in_netns).
        """
        if self.rps_cpus is None:
            return []
        script = ('mount -t sysfs sysfs /sys && ip link set lo up && '
                  'echo %s > /sys/class/net/lo/queues/rx-0/rps_cpus && '
                  'exec "$@"' % self.rps_cpus)
        return ["unshare", "--net", "--mount", "--propagation", "private",
                "--", "sh", "-c", script, "sh"]

    def in_netns(self, argv):
        """argv run in the gateway's network namespace (rps_cpus)."""
        return ["nsenter", "-t", str(self.proc.pid), "-n"] + list(argv)

    def private_tmp_prefix(self, env):
        """
        A /tmp of the gateway's own (a tmpfs in a mount namespace): for
        gateways under pam_wrapper, which keeps its copy of the PAM
        configuration in /tmp/pam.<one letter>, 62 names shared by every
        process on the machine, and whose exiting processes remove the
        folder another process may be using. The gateway's own folder
        must then not be under /tmp (see GatewayTestCase.tmp_parent); a
        build under /tmp (a CI clone) is mounted back in. unshare execs,
        so the process is still gatewayd itself. The preloads (pam_wrapper)
        are handed on to gatewayd alone: unshare, sh and mount would each
        make a folder in the machine's /tmp.
        """
        if not self.private_tmp:
            return []
        assert not self.tmp.path.startswith("/tmp/"), self.tmp.path
        # What gatewayd opens by absolute path outside its folder.
        needed = [os.path.abspath(p) for p in
                  (GATEWAYD, env.get("PAM_CANON")) if p]
        env["SOCKSGW_TEST_KEEP"] = " ".join(sorted(
            {p.split("/")[2] for p in needed if p.startswith("/tmp/")}))
        env["SOCKSGW_TEST_HOST_TMP"] = os.path.join(self.tmp.path, "host-tmp")
        os.makedirs(env["SOCKSGW_TEST_HOST_TMP"], exist_ok=True)
        env["SOCKSGW_TEST_PRELOAD"] = env.pop("LD_PRELOAD", "")
        # Accounts of the test's own (SOCKSGW_TEST_PASSWD and _GROUP):
        # bound over /etc/passwd and /etc/group in this namespace alone,
        # read by the C library's own files module as on a real machine.
        script = (
            'for f in passwd group; do eval "a=\\$SOCKSGW_TEST_$(echo $f | '
            'tr a-z A-Z)"; [ -z "$a" ] || mount --bind "$a" "/etc/$f" || '
            'exit 1; done && '
            'h="$SOCKSGW_TEST_HOST_TMP" && mount --bind /tmp "$h" && '
            'mount -t tmpfs -o mode=1777,size=16m socksgw-test-tmp /tmp && '
            'for d in $SOCKSGW_TEST_KEEP; do mkdir "/tmp/$d" && '
            'mount --bind "$h/$d" "/tmp/$d" || exit 1; done && '
            'export LD_PRELOAD="$SOCKSGW_TEST_PRELOAD" && exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", script, "sh"]

    def restart(self):
        """SIGTERM, then the same gatewayd again on the same files."""
        code = self.stop()
        if code != 0:
            raise AssertionError("gatewayd exit code %d" % code)
        self.logfile = open(self.logpath, "a")
        self._launch(*self._how)

    def kill(self):
        """SIGKILL to the parent, as a crash would; returns once its proxy
        and auditd have ended too (so its lock is free for relaunch)."""
        left = [self.child("socksgw-auditd"), self.child("socksgw-proxy")]
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.killed = True
        wait_for(lambda: not any(os.path.exists("/proc/%d" % p)
                                 for p in left if p), timeout=20,
                 what="the killed gateway's processes gone")

    def relaunch(self, env=None):
        """The same gateway (its files) again after kill() or stop()."""
        self.killed = False
        self.logfile.close()
        self.logfile = open(self.logpath, "a")
        args, nofile, old_env = self._how
        self._launch(args, nofile, env)

    def ctl(self, *args, check=True):
        """Runs socksctl on this gateway's configuration."""
        r = subprocess.run([SOCKSCTL, "-c", self.conf] + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("socksctl %s: %s" % (" ".join(args), r.stderr))
        return r

    def audit(self, where="1", *params):
        """Rows of the audit database (a dict each)."""
        import sqlite3
        con = sqlite3.connect(getattr(self, "audit_path", None) or
                              os.path.join(self.tmp.path, "audit.db"))
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(
                "SELECT * FROM records WHERE %s ORDER BY id" % where, params)]
        finally:
            con.close()

    def child(self, comm):
        """The pid of the parent's child named comm (socksgw-proxy,
        socksgw-authd), or None."""
        return child_of(self.proc.pid, comm)

    @property
    def proxy_pid(self):
        """The proxy: everything network-facing (the parent's child)."""
        return wait_for(lambda: self.child("socksgw-proxy"), timeout=10,
                        what="the proxy process")

    @property
    def authd_pid(self):
        return wait_for(lambda: self.child("socksgw-authd"), timeout=10,
                        what="the authd process")

    @property
    def auditd_pid(self):
        return wait_for(lambda: self.child("socksgw-auditd"), timeout=10,
                        what="the auditd process")

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def wait_log(self, text, timeout=10.0, count=1):
        """Waits until text is in the log count times."""
        return wait_for(lambda: self.log().count(text) >= count, timeout,
                        what="%r %d times in the gatewayd log" % (text, count))

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=30.0):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                sys.stderr.write("gatewayd did not stop; its log:\n" +
                                 self.log()[-4000:])
                raise
        self.logfile.close()
        return self.proc.returncode


class GatewayTestCase(unittest.TestCase):
    """Each test gets a folder, a DNS stub, a gateway; all stopped after."""

    tmp_parent = None       # where the test's folder goes (None: /tmp)

    dns_entries = ("www.test.example=127.0.0.1", "v6.test.example=::1",
                   "both.test.example=::1", "both.test.example=127.0.0.1",
                   "fallback.test.example=127.0.0.2",
                   "fallback.test.example=127.0.0.1",
                   "rebind.test.example=127.0.0.1",
                   "blocked.test.example=127.0.0.1",
                   "drop=slow.test.example")
    gateway_extra = ""

    def setUp(self):
        self.tmp = TempDir(self.tmp_parent)
        self.addCleanup(self.tmp.cleanup)
        self.dns = DnsStub(self.dns_entries,
                           log=os.path.join(self.tmp.path, "dns-queries"))
        self.addCleanup(self.dns.stop)
        self.gw = self.start_gateway(self.gateway_extra)

    def start_gateway(self, extra="", **kw):
        gw = Gateway(self.tmp, extra=extra, dns=self.dns, **kw)
        self.addCleanup(self.stop_gateway, gw)
        return gw

    def stop_gateway(self, gw):
        if getattr(gw, "killed", False):
            return
        code = gw.stop()
        # Under ASan/UBSan a report makes the exit code non-zero.
        self.assertEqual(code, 0, "gatewayd exit code; log:\n" + gw.log())
        self.assertNotIn("runtime error", gw.log())

    def serve(self, server):
        """Runs a socketserver in a thread until the test ends; its port."""
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    def tcp_server(self, handler, host="127.0.0.1"):
        cls = ThreadedServer6 if ":" in host else ThreadedServer
        return self.serve(cls((host, 0), handler))


class ThreadedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class ThreadedServer6(ThreadedServer):
    address_family = socket.AF_INET6


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_until_eof(sock, limit=1 << 20):
    buf = b""
    while len(buf) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    raise AssertionError("more than %d bytes before EOF" % limit)


def socks_request(dst, port, cmd=1):
    """A SOCKS5 request for an IPv4/IPv6 literal or a domain name."""
    for family, atyp in ((socket.AF_INET, 1), (socket.AF_INET6, 4)):
        try:
            return struct.pack("!BBBB", 5, cmd, 0, atyp) + \
                socket.inet_pton(family, dst) + struct.pack("!H", port)
        except OSError:
            continue
    name = dst.encode()
    return struct.pack("!BBBBB", 5, cmd, 0, 3, len(name)) + name + \
        struct.pack("!H", port)


def read_reply(sock):
    """Reads one SOCKS5 reply; returns (rep, bound address, bound port)."""
    head = recv_exact(sock, 4)
    if head[0] != 5:
        raise AssertionError("reply version %d" % head[0])
    if head[3] == 1:
        addr = socket.inet_ntop(socket.AF_INET, recv_exact(sock, 4))
    elif head[3] == 4:
        addr = socket.inet_ntop(socket.AF_INET6, recv_exact(sock, 16))
    else:
        raise AssertionError("reply ATYP %d" % head[3])
    port = struct.unpack("!H", recv_exact(sock, 2))[0]
    return head[1], addr, port


def socks_open(gw_addr, dst, port, timeout=10.0):
    """Greeting and CONNECT by hand; returns (socket, rep, addr, port)."""
    s = socket.create_connection(gw_addr, timeout=timeout)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise AssertionError("method not accepted")
    s.sendall(socks_request(dst, port))
    rep, addr, bport = read_reply(s)
    return s, rep, addr, bport


def sha256(data):
    return hashlib.sha256(data).hexdigest()
