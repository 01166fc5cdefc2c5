#!/bin/sh
# Installs the Debian 12 packages that building, running and testing socksgw
# need. Idempotent; run as root. "build" is enough to build and run the
# gateway; "test" adds the clients and helpers the test suite drives.
set -eu

build="build-essential cmake pkg-config libevent-dev libsqlite3-dev
	libmaxminddb-dev libpam0g-dev libssl-dev libsystemd-dev libkrb5-dev libpq-dev
	curl"
test="libcmocka-dev python3 python3-socks libpam-wrapper
	libmaxmind-db-writer-perl sqlite3 procps chromium iproute2
	clang libclang-rt-14-dev faketime libfaketime
	debhelper dpkg-dev fakeroot lintian systemd man-db git strace
	krb5-kdc krb5-admin-server krb5-user python3-gssapi haproxy
	postgresql-15"

case "${1:-build}" in
build)	pkgs="$build" ;;
test)	pkgs="$build $test" ;;
*)	echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

# auditd's account (audit_user's default): the only one that writes the
# audit log, apart from the proxy's. The Debian package makes it too.
if [ "$(id -u)" -eq 0 ] && ! getent passwd socksgw-audit >/dev/null; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin --comment "socksgw audit writer" \
	    socksgw-audit
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "$0: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
