#!/bin/sh
# Soak: gatewayd with audit on under full-rate connection churn (CLIENTS
# closed-loop clients: connect, SOCKS5 CONNECT, 64-byte echo, close) and
# IDLE proxied connections held the whole time, for SECONDS. Every 10 s
# bench/soak.py samples connections/s, refusals by reason, the audit
# queue, records committed/s, WAL and database size, RSS and descriptors
# of the proxy and auditd; every minute it runs an audit report and an
# audit list against the database. At the end: soak.svg, soak.tsv and a
# summary line. Everything stays on 127.0.0.1; every phase is bounded.
#
#	bench/soak.sh [-d SECONDS] [-c CLIENTS] [-i IDLE] [-p AUDIT_DB]
#	    [-r RETENTION_DAYS] [-o OUTDIR] [BUILD_DIR]
#
# -p starts from a copy of a prefilled audit database (auditbench gen);
# -r sets audit_retention_days, so pruning runs during the soak.
# Defaults: 1800 s, 32 clients, 8000 idle connections, output in
# /tmp/socksgw-soak. Needs a build (cmake --build build).
set -eu
cd "$(dirname "$0")/.."

secs=1800
clients=32
idle=8000
prefill=""
retention=""
out=/tmp/socksgw-soak
while getopts d:c:i:p:r:o: opt; do
	case $opt in
	d) secs=$OPTARG ;;
	c) clients=$OPTARG ;;
	i) idle=$OPTARG ;;
	p) prefill=$OPTARG ;;
	r) retention=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
bin=${1:-build}/bin
for b in gatewayd socksctl socksbench; do
	[ -x "$bin/$b" ] || { echo "$0: build first (no $bin/$b)" >&2; exit 1; }
done

mkdir -p "$out"
tmp=$(mktemp -d /tmp/socksgw-soak-XXXXXX)
chmod 755 "$tmp"
pids=""
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {	# FILE TEXT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 3000 ] && { echo "$0: timed out waiting for '$2' in $1" >&2; exit 1; }
		sleep 0.1
	done
}

echo_port=$(free_port)
sink_port=$(free_port)
gw_port=$(free_port)
"$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
wait_for "$tmp/serve.log" serving

{
	echo "listen 127.0.0.1:$gw_port"
	[ "$(id -u)" -eq 0 ] && echo "user nobody"
	echo "resolv_conf /dev/null"
	echo "audit_db audit.db"
	echo "control_socket ctl.sock"
	# The idle connections stay for the whole soak.
	echo "idle_timeout 86400"
	echo "max_sessions $((idle + clients * 4 + 256))"
	# All the clients are 127.0.0.1: the idle ones open at once.
	echo "handshake_per_client 65535"
	[ -n "$retention" ] && echo "audit_retention_days $retention"
} >"$tmp/gatewayd.conf"
"$bin/socksctl" -c "$tmp/gatewayd.conf" init >/dev/null
"$bin/socksctl" -c "$tmp/gatewayd.conf" rule add allow --dst 127.0.0.0/8 >/dev/null
if [ -n "$prefill" ]; then
	echo "# copying $prefill ($(du -h "$prefill" | cut -f1))"
	cp "$prefill" "$tmp/audit.db"
	# Its signing key: a log with signed checkpoints needs it.
	for k in audit.key audit.pub; do
		[ -f "$(dirname "$prefill")/$k" ] &&
		    cp -p "$(dirname "$prefill")/$k" "$tmp/$k"
	done
fi
chmod -R a+rX "$tmp"
"$bin/gatewayd" -c "$tmp/gatewayd.conf" >"$tmp/gatewayd.log" 2>&1 &
gw_pid=$!
pids="$pids $gw_pid"
wait_for "$tmp/gatewayd.log" "ready:"

echo "# socksgw soak, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs: ${secs}s," \
    "$clients clients, $idle idle connections${prefill:+, from $prefill}"
"$bin/socksbench" idle -t "127.0.0.1:$echo_port" -s "127.0.0.1:$gw_port" \
    -c "$idle" -d $((secs + 30)) >"$tmp/idle.log" 2>&1 &
idle_pid=$!
pids="$pids $idle_pid"
wait_for "$tmp/idle.log" "idle established"
sed 's/^/# /' "$tmp/idle.log"
"$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$gw_port" \
    -c "$clients" -d "$secs" >"$tmp/rate.log" 2>&1 &
rate_pid=$!
pids="$pids $rate_pid"
python3 bench/soak.py sample --gw "$gw_pid" --conf "$tmp/gatewayd.conf" \
    --db "$tmp/audit.db" --socksctl "$bin/socksctl" --until "$rate_pid" \
    --every 10 --queries 60 "$out/soak.tsv"
wait "$rate_pid" || true
echo "# churn: $(cat "$tmp/rate.log")"
kill "$idle_pid" 2>/dev/null || true
kill "$gw_pid"
wait "$gw_pid" || true
python3 bench/soak.py plot "$out/soak.tsv" "$out/soak.svg"
echo "# audit: $("$bin/socksctl" -c "$tmp/gatewayd.conf" --json audit verify)"
grep -E "warn|error" "$tmp/gatewayd.log" | grep -v "resolv_conf" |
    sort | uniq -c | sort -rn | head -20 | sed 's/^/# log: /'
echo "# plot: $out/soak.svg, samples: $out/soak.tsv"
