#!/bin/sh
# Fetches the country database of the embedded default configuration:
# ip-location-db's geo-whois-asn-country (MaxMind DB format), a pinned
# version of the npm package, into packaging/geoip/. Data CC BY 4.0 by the
# NRO: see packaging/GEOIP-ATTRIBUTION.md. Replacing the file and sending
# gatewayd SIGHUP puts a newer one in force.
set -eu
cd "$(dirname "$0")"

version=2.3.2026061719
package=@ip-location-db/geo-whois-asn-country-mmdb
file=geo-whois-asn-country.mmdb

[ -s "geoip/$file" ] && [ "$(cat geoip/VERSION 2>/dev/null)" = "$version" ] &&
	exit 0
if ! command -v npm >/dev/null 2>&1; then
	[ "$(id -u)" -eq 0 ] || { echo "$0: npm is needed" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p geoip
cp "$tmp/package/$file" "geoip/$file.new"
cp "$tmp/package/NRO_LICENSE" geoip/NRO_LICENSE
mv "geoip/$file.new" "geoip/$file"
echo "$version" >geoip/VERSION
chmod 644 "geoip/$file"
