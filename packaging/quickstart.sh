#!/bin/sh
# Fresh Debian 12, as root: installs what gatewayd needs, builds it, and
# runs it in the foreground on 127.0.0.1:1080 with the embedded default
# configuration (packaging/gatewayd.conf). Ctrl-C stops it.
set -eu
cd "$(dirname "$0")/.."

sh packaging/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >/dev/null
cmake --build build -j"$(nproc)" --target gatewayd

cat <<'MSG'

gatewayd is starting on 127.0.0.1:1080 and [::1]:1080. In another shell:

    curl --socks5-hostname 127.0.0.1:1080 https://example.com/

Ctrl-C stops it.
MSG
exec build/bin/gatewayd -c packaging/gatewayd.conf
