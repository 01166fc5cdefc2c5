"""
A real MIT Kerberos KDC (Debian's krb5-kdc) for the tests: a realm of its
own in a folder of the test's, listening on loopback only, with the
principals and keytabs a test asks for. Nothing of the machine's Kerberos
set-up is read or changed: every program is pointed at this folder's
krb5.conf (KRB5_CONFIG) and kdc.conf (KRB5_KDC_PROFILE).
"""
import os
import socket
import subprocess

from gwtest import free_port, wait_for

REALM = "SOCKSGW.TEST"


class Kdc:
    def __init__(self, tmp, clockskew=300):
        self.dir = tmp.subdir()
        d = self.dir.path
        self.port = free_port()
        self.krb5_conf = self.dir.write("krb5.conf", """\
[libdefaults]
	default_realm = {realm}
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	udp_preference_limit = 1
	clockskew = {skew}
[realms]
	{realm} = {{
		kdc = 127.0.0.1:{port}
	}}
[domain_realm]
	localhost = {realm}
""".format(realm=REALM, port=self.port, skew=clockskew))
        self.kdc_conf = self.dir.write("kdc.conf", """\
[kdcdefaults]
	kdc_listen = 127.0.0.1:{port}
	kdc_tcp_listen = 127.0.0.1:{port}
[realms]
	{realm} = {{
		database_name = {d}/principal
		key_stash_file = {d}/stash
		acl_file = {d}/kadm5.acl
		max_life = 1h
		supported_enctypes = aes256-cts-hmac-sha1-96:normal
	}}
[logging]
	kdc = FILE:{d}/kdc.log
""".format(realm=REALM, port=self.port, d=d))
        self.dir.write("kadm5.acl", "")
        self.env = {"KRB5_CONFIG": self.krb5_conf,
                    "KRB5_KDC_PROFILE": self.kdc_conf,
                    "KRB5RCACHEDIR": d}
        self._run(["kdb5_util", "create", "-s", "-r", REALM, "-P",
                   "master-" + os.urandom(8).hex()])
        self.proc = subprocess.Popen(["krb5kdc", "-n", "-r", REALM],
                                     env=dict(os.environ, **self.env),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._listening, what="krb5kdc to listen")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("krb5kdc exited: " + self.log())
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return True
        except OSError:
            return False

    def _run(self, argv, stdin=None):
        r = subprocess.run(argv, env=dict(os.environ, **self.env),
                           input=stdin, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("%s: %s" % (" ".join(argv),
                                              r.stderr.decode()))
        return r

    def log(self):
        try:
            with open(os.path.join(self.dir.path, "kdc.log")) as f:
                return f.read()
        except OSError:
            return ""

    def addprinc(self, name, password=None):
        how = "-pw %s" % password if password else "-randkey"
        self._run(["kadmin.local", "-r", REALM, "-q",
                   "addprinc %s %s" % (how, name)])

    def keytab(self, principal, path):
        """The principal's keys in a keytab only its owner reads."""
        self._run(["kadmin.local", "-r", REALM, "-q",
                   "ktadd -k %s %s" % (path, principal)])
        os.chmod(path, 0o600)
        return path

    def kinit(self, principal, password, lifetime=None):
        """A ticket cache of its own; the environment for a client."""
        cache = os.path.join(self.dir.path, "cc-" + os.urandom(4).hex())
        env = dict(self.env, KRB5CCNAME="FILE:" + cache)
        argv = ["kinit"] + (["-l", lifetime] if lifetime else []) + \
            [principal]
        r = subprocess.run(argv, env=dict(os.environ, **env),
                           input=password.encode() + b"\n",
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("kinit: " + r.stderr.decode())
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
