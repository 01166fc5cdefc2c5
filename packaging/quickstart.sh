#!/bin/sh
# Fresh Debian 12, as root: installs what gatewayd needs, builds it, and
# runs it in the foreground on 127.0.0.1:1080 with the embedded default
# configuration (packaging/gatewayd.conf). Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."

sh packaging/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >/dev/null
cmake --build build -j"$(nproc)" --target gatewayd socksctl
# The country database, with curl, the way the package's weekly timer
# fetches it (once: a later run keeps the file it has).
[ -s packaging/geoip/country.mmdb ] ||
	SOCKSCTL=build/bin/socksctl sh packaging/socksgw-geoip-update \
	    -c packaging/gatewayd.conf -d packaging/geoip --no-reload

# The default policy: clients on this machine may reach web ports anywhere
# (but loopback and the other special-purpose ranges). Everything else is
# denied. Change it with build/bin/socksctl -c packaging/gatewayd.conf.
ctl="build/bin/socksctl -c packaging/gatewayd.conf"
$ctl init >/dev/null
if [ "$($ctl --json rule list)" = "[]" ]; then
	$ctl rule add allow --src 127.0.0.0/8 --src ::1/128 --port 80 \
	    --port 443 --comment "quickstart: local clients to web ports" \
	    >/dev/null
fi

cat <<'MSG'

gatewayd is starting on 127.0.0.1:1080 and [::1]:1080. In another shell:

    curl --socks5-hostname 127.0.0.1:1080 https://example.com/

Ctrl-C stops it.
MSG
exec build/bin/gatewayd -c packaging/gatewayd.conf
