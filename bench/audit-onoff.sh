#!/bin/sh
# The cost of the audit log: two gatewayds side by side, one without
# audit_db and one with, the same policy and the same echo server, and
# ROUNDS alternating rounds of SECONDS of 32-client connection churn
# against each (the audit phase of bench/run.sh, repeated, for a median).
# Everything stays on 127.0.0.1; every phase is bounded.
#
#	bench/audit-onoff.sh [ROUNDS [SECONDS [BUILD_DIR]]]
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-4}
bin=${3:-build}/bin
for b in gatewayd socksctl socksbench; do
	[ -x "$bin/$b" ] || { echo "$0: build first (no $bin/$b)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/socksgw-audit-onoff-XXXXXX)
chmod 755 "$tmp"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
echo_port=$(free_port)
sink_port=$(free_port)
"$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
for d in off on; do
	mkdir "$tmp/$d"
	chmod 755 "$tmp/$d"
	port=$(free_port)
	echo "$port" >"$tmp/$d/port"
	{
		echo "listen 127.0.0.1:$port"
		[ "$(id -u)" -eq 0 ] && echo "user nobody"
		echo "resolv_conf /dev/null"
		[ "$d" = on ] && echo "audit_db audit.db"
	} >"$tmp/$d/gatewayd.conf"
	"$bin/socksctl" -c "$tmp/$d/gatewayd.conf" init >/dev/null
	"$bin/socksctl" -c "$tmp/$d/gatewayd.conf" rule add allow \
	    --dst 127.0.0.0/8 >/dev/null
	chmod -R a+rX "$tmp/$d"
	"$bin/gatewayd" -c "$tmp/$d/gatewayd.conf" >"$tmp/$d/log" 2>&1 &
	pids="$pids $!"
done
for d in off on; do
	i=0
	until grep -q "ready:" "$tmp/$d/log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "$0: $d did not start" >&2; exit 1; }
		sleep 0.05
	done
done
rate() {	# PORT
	"$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$1" \
	    -c 32 -d "$secs" | tr ' ' '\n' | sed -n 's/^conn\/s=//p'
}
for i in $(seq "$rounds"); do
	off=$(rate "$(cat "$tmp/off/port")")
	on=$(rate "$(cat "$tmp/on/port")")
	echo "round $i: audit off $off conn/s, audit on $on conn/s"
done | tee "$tmp/rounds"
median() {	# FIELD: the median of that column of the rounds
	awk -v f="$1" '{ print $f }' "$tmp/rounds" | sort -n |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
off=$(median 5)
on=$(median 9)
echo "median: audit off $off, audit on $on conn/s: $((100 * on / off))%"
