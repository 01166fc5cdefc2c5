"""socksgw-geoip-update against a registry of the test's own on loopback:
a good release is checked, put in place and read by the running gateway;
a file with no country codes where the configuration says, a tarball whose
SHA-512 is not the registry's, a tarball from another host and a registry
that is down all leave the database in place and exit 1."""
import base64
import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import threading

from gwtest import (GatewayTestCase, EchoHandler, SOCKSCTL, socks_open,
                    wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE_MMDB = os.path.join(HERE, "..", "helpers", "make-mmdb.pl")
SCRIPT = os.path.join(HERE, "..", "..", "packaging", "socksgw-geoip-update")
PACKAGE = "@test/geo-mmdb"


def mmdb(path, layout, *nets):
    subprocess.run(["perl", MAKE_MMDB, path, layout] + list(nets), check=True)
    with open(path, "rb") as f:
        return f.read()


def npm_tarball(mmdb_bytes, extra=()):
    """An npm package: package/geo.mmdb and the license text, then any
    extra TarInfo members (links, names outside)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("package/geo.mmdb", mmdb_bytes),
                           ("package/NRO_LICENSE", b"CC BY 4.0 (test)\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size))
    return out.getvalue()


class MaxMind:
    """MaxMind's download endpoint: GeoLite2-Country and its SHA-256, for
    one account and key (HTTP basic authentication)."""

    def __init__(self, tgz, account="42", key="k3y\\\"x"):
        self.auth = "Basic " + base64.b64encode(
            ("%s:%s" % (account, key)).encode()).decode()
        self.tgz = tgz
        self.account, self.key = account, key
        mm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.headers.get("Authorization") != mm.auth:
                    self.send_error(401)
                    return
                if self.path == "/download?suffix=tar.gz":
                    body = mm.tgz
                elif self.path == "/download?suffix=tar.gz.sha256":
                    body = ("%s  GeoLite2-Country_20261201.tar.gz\n" %
                            hashlib.sha256(mm.tgz).hexdigest()).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d/download" % self.server.server_port
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def maxmind_tarball(mmdb_bytes):
    """GeoLite2-Country_DATE/GeoLite2-Country.mmdb, owned by uid 1000 as
    MaxMind's are not root's."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (
                ("GeoLite2-Country_20261201/GeoLite2-Country.mmdb",
                 mmdb_bytes),
                ("GeoLite2-Country_20261201/LICENSE.txt", b"EULA\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uid = info.gid = 1000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Registry:
    """GET /PACKAGE/latest and the tarball it names, on loopback."""

    def __init__(self):
        self.files = {}
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = registry.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def publish(self, version, tgz, integrity=None, tarball_url=None):
        path = "/%s/-/geo-mmdb-%s.tgz" % (PACKAGE, version)
        self.files[path] = tgz
        integrity = integrity or "sha512-" + base64.b64encode(
            hashlib.sha512(tgz).digest()).decode()
        self.files["/%s/latest" % PACKAGE] = json.dumps({
            "name": PACKAGE, "version": version, "description": "a, b {c}",
            "dist": {"integrity": integrity, "shasum": "0" * 40,
                     "tarball": tarball_url or self.url + path}}).encode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class GeoipUpdateTest(GatewayTestCase):
    gateway_extra = "control_socket ctl.sock"

    def setUp(self):
        super().setUp()
        self.stop_gateway(self.gw)
        self.dir = os.path.join(self.tmp.path, "geoip")
        os.mkdir(self.dir)
        self.db = os.path.join(self.dir, "country.mmdb")
        mmdb(self.db, "ipdb", "127.0.0.0/8=AQ")
        self.gw = self.start_gateway(
            "control_socket ctl.sock\ngeoip_db %s\n"
            "geoip_country_path country_code" % self.db,
            rules=[("allow", "--country", "AQ", "--dst", "127.0.0.0/8")])
        self.registry = Registry()
        self.addCleanup(self.registry.stop)

    def update(self, *args, conf=None, env=None):
        env = dict(os.environ, GEOIP_NPM_REGISTRY=self.registry.url,
                   GEOIP_NPM_PACKAGE=PACKAGE, SOCKSCTL=SOCKSCTL,
                   **(env or {}))
        return subprocess.run(["sh", SCRIPT, "-c", conf or self.gw.conf] +
                              list(args or ("-d", self.dir)), env=env,
                              capture_output=True, text=True, timeout=60)

    def reaches_loopback(self):
        port = self.tcp_server(EchoHandler)
        s, rep, _, _ = socks_open(self.gw.addr, "127.0.0.1", port)
        s.close()
        return rep == 0

    def digest(self):
        with open(self.db, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def test_new_release_is_checked_installed_and_read(self):
        self.assertTrue(self.reaches_loopback())
        new = mmdb(os.path.join(self.tmp.path, "new.mmdb"), "ipdb",
                   "127.0.0.0/8=BV")
        self.registry.publish("2.3.2026120101", npm_tarball(new))
        r = self.update()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("gatewayd reads it again", r.stderr)
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), new)
        with open(os.path.join(self.dir, "VERSION")) as f:
            self.assertEqual(f.read().strip(), "2.3.2026120101")
        with open(os.path.join(self.dir, "LICENSE")) as f:
            self.assertIn("CC BY 4.0", f.read())
        r = self.gw.ctl("geoip", "lookup", "127.0.0.1")
        self.assertIn("127.0.0.1 BV", r.stdout)
        self.assertIn("country data: ip-location-db geo-whois-asn-country "
                      "2.3.2026120101, CC BY 4.0", r.stdout)
        # Reports carry the attribution the data's license asks for.
        r = self.gw.ctl("audit", "report", "users")
        self.assertIn("country data: ip-location-db", r.stdout)
        r = self.gw.ctl("audit", "report", "users", "--format", "html")
        self.assertIn("<footer><p class=\"sub\">Country data: ip-location-db",
                      r.stdout)
        r = self.gw.ctl("audit", "report", "users", "--format", "csv")
        self.assertNotIn("country data", r.stdout.lower())
        # The running gateway judges by the new file: AQ is gone.
        wait_for(lambda: not self.reaches_loopback(), timeout=5,
                 what="the new countries in force")

    def refused(self, why):
        before = self.digest()
        r = self.update()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(why, r.stderr)
        self.assertIn("the database in place is kept", r.stderr)
        self.assertEqual(self.digest(), before)
        self.assertFalse([n for n in os.listdir(self.dir)
                          if n.startswith(".")])
        self.assertTrue(self.reaches_loopback())

    def test_attribution_cannot_steer_a_terminal(self):
        with open(os.path.join(self.dir, "ATTRIBUTION"), "w") as f:
            f.write("data \x1b]0;owned\x07 by \x1b[2J someone\n")
        r = self.gw.ctl("geoip", "lookup", "127.0.0.1")
        self.assertNotIn("\x1b", r.stdout)
        self.assertIn("country data: data \\x1b]0;owned", r.stdout)
        r = self.gw.ctl("audit", "report", "users")
        self.assertNotIn("\x1b", r.stdout)

    def test_file_without_country_codes_there_is_refused(self):
        # A GeoLite2-style file, while the configuration says country_code.
        bad = mmdb(os.path.join(self.tmp.path, "mm.mmdb"), "maxmind",
                   "127.0.0.0/8=BV")
        self.registry.publish("2.3.2026120102", npm_tarball(bad))
        self.refused("the new file failed the country check")

    def test_checked_with_the_configurations_path(self):
        # A good ip-location-db file, but the configuration says
        # "country iso_code": gatewayd would refuse it, so it stays out.
        conf = self.tmp.write("iso.conf", "geoip_db %s\ngeoip_country_path "
                              "country iso_code\n" % self.db)
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb")
        self.registry.publish("2.3.2026120108", npm_tarball(good))
        before = self.digest()
        r = self.update("--no-reload", conf=conf)
        self.assertEqual(r.returncode, 1)
        self.assertIn('geoip_country_path in %s is "country iso_code"; this '
                      'source keeps the codes at "country_code"' % conf,
                      r.stderr)
        self.assertEqual(self.digest(), before)

    def test_unconfigured(self):
        # Without geoip_db: --if-configured (the timer) fetches nothing;
        # by hand, the file goes to -d, checked at the source's path.
        conf = self.tmp.write("none.conf", "")
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb")
        self.registry.publish("2.3.2026120109", npm_tarball(good))
        out = os.path.join(self.tmp.path, "fresh")
        r = self.update("-d", out, "--if-configured", conf=conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("names no geoip_db: nothing to fetch", r.stderr)
        self.assertFalse(os.path.exists(out))
        r = self.update("-d", out, "--no-reload", conf=conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(out, "country.mmdb"), "rb") as f:
            self.assertEqual(f.read(), good)
        self.assertEqual(os.stat(os.path.join(out, "country.mmdb")).st_mode
                         & 0o777, 0o644)

    def test_reload_refused_is_a_failure(self):
        # socksctl can read the configuration, gatewayd refuses it (a
        # missing resolv_conf): the timer must not look green.
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb",
                    "127.0.0.0/8=AQ")
        self.registry.publish("2.3.2026120110", npm_tarball(good))
        with open(self.gw.conf, "a") as f:
            f.write("resolv_conf /nonexistent/resolv.conf\n")
        with open(self.gw.conf) as f:
            text = f.read()
        with open(self.gw.conf, "w") as f:
            f.write("\n".join(l for l in text.split("\n")
                              if not l.startswith("resolv_conf ") or
                              "nonexistent" in l) + "\n")
        r = self.update()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("gatewayd refused to reload", r.stderr)

    def test_maxmind_with_an_account(self):
        conf = self.tmp.write("mm.conf", "geoip_db %s\ngeoip_country_path "
                              "country iso_code\ncontrol_socket %s\n" % (
                                  self.db, os.path.join(self.gw.tmp.path,
                                                        "ctl.sock")))
        new = mmdb(os.path.join(self.tmp.path, "mm.mmdb"), "maxmind",
                   "127.0.0.0/8=BV")
        mm = MaxMind(maxmind_tarball(new))
        self.addCleanup(mm.stop)
        env = {"MAXMIND_ACCOUNT_ID": mm.account,
               "MAXMIND_LICENSE_KEY": mm.key,
               "MAXMIND_DOWNLOAD_URL": mm.url}
        r = self.update("--no-reload", conf=conf, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.db, "rb") as f:
            self.assertEqual(f.read(), new)
        with open(os.path.join(self.dir, "VERSION")) as f:
            self.assertEqual(f.read().strip(), "20261201")
        with open(os.path.join(self.dir, "ATTRIBUTION")) as f:
            self.assertIn("GeoLite2 data created by MaxMind", f.read())
        # A wrong key: nothing changes.
        before = self.digest()
        env["MAXMIND_LICENSE_KEY"] = "wrong"
        r = self.update("--no-reload", conf=conf, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot fetch", r.stderr)
        self.assertEqual(self.digest(), before)

    def test_garbage_is_refused(self):
        self.registry.publish("2.3.2026120103",
                              npm_tarball(b"\x00not a database" * 100))
        self.refused("the new file failed the country check")

    def test_checksum_mismatch_is_refused(self):
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb")
        self.registry.publish("2.3.2026120104", npm_tarball(good),
                              integrity="sha512-" + base64.b64encode(
                                  b"x" * 64).decode())
        self.refused("SHA-512 mismatch")

    def test_tarball_elsewhere_is_refused(self):
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb")
        self.registry.publish("2.3.2026120105", npm_tarball(good),
                              tarball_url="http://127.0.0.2:9/x.tgz")
        self.refused("the tarball is not on")

    def test_links_and_names_outside_are_refused(self):
        good = mmdb(os.path.join(self.tmp.path, "g.mmdb"), "ipdb")
        link = tarfile.TarInfo("package/geo2.mmdb")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        self.registry.publish("2.3.2026120106", npm_tarball(good, [link]))
        self.refused("holds links or devices")
        outside = tarfile.TarInfo("package/../../escaped")
        outside.size = 1
        self.registry.publish("2.3.2026120107", npm_tarball(good, [outside]))
        self.refused("names files outside itself")

    def test_registry_down_is_refused(self):
        self.registry.stop()
        self.refused("cannot fetch")
