#!/bin/sh
# The cost of central audit shipping (audit_central, issue 18), and how fast
# one PostgreSQL takes a node's records.
#
#	bench/central.sh [ROUNDS [SECONDS [RECORDS [BUILD_DIR]]]]
#
# 1. Two gatewayds side by side on one policy and one echo server: "local"
#    writes audit_db only; "central" also ships to a PostgreSQL 15 of the
#    bench's own (Debian's postgresql-15, on 127.0.0.1, fsync on as a real
#    store would run). ROUNDS alternating rounds of SECONDS of 32-client
#    connection churn against each; the medians, and what the central node
#    had left to ship when its last round ended.
# 2. Ingest: a log of RECORDS records made beforehand (auditbench gen: a
#    real chain and signed checkpoints), then a gatewayd started on it with
#    audit_central: the time until all are in PostgreSQL, as records/s.
#
# Everything stays on 127.0.0.1; every wait is bounded. Run as root (the
# cluster runs as postgres) or as the account that may run PostgreSQL.
set -eu
cd "$(dirname "$0")/.."
# PostgreSQL's nice value: 19 (the default) stands in for a store on a host
# of its own, whose work does not take this 2-CPU machine's cycles from the
# node; PGNICE=0 measures both on one host.
pgnice=${PGNICE:-19}
rounds=${1:-3}
secs=${2:-5}
records=${3:-200000}
bin=${4:-build}/bin
pgbin=/usr/lib/postgresql/15/bin
for b in gatewayd socksctl socksbench auditbench; do
	[ -x "$bin/$b" ] || { echo "$0: build first (no $bin/$b)" >&2; exit 1; }
done
[ -x "$pgbin/postgres" ] || { echo "$0: needs postgresql-15" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/socksgw-central-XXXXXX)
chmod 755 "$tmp"
pids=""
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_log() {	# FILE TEXT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 400 ] && { echo "$0: no '$2' in $1" >&2; exit 1; }
		sleep 0.05
	done
}

# PostgreSQL: a cluster of the bench's own, a role with a password.
pg_port=$(free_port)
mkdir "$tmp/pg" "$tmp/sock"
[ "$(id -u)" -eq 0 ] && chown postgres "$tmp/pg" "$tmp/sock"
as_pg "$pgbin/initdb" -D "$tmp/pg" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
as_pg nice -n "$pgnice" "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $pg_port -k $tmp/sock" start >/dev/null
psql_() {
	as_pg psql -X -q -A -t -h "$tmp/sock" -p "$pg_port" -U postgres "$@"
}
psql_ -d postgres -c "CREATE ROLE gw LOGIN PASSWORD 'bench'" >/dev/null
psql_ -d postgres -c "CREATE DATABASE fleet OWNER gw" >/dev/null
echo "127.0.0.1:$pg_port:fleet:gw:bench" >"$tmp/pgpass"
chmod 600 "$tmp/pgpass"
[ "$(id -u)" -eq 0 ] && chown socksgw-audit "$tmp/pgpass"
url="postgresql://gw@127.0.0.1:$pg_port/fleet?sslmode=disable&passfile=$tmp/pgpass"

echo_port=$(free_port)
sink_port=$(free_port)
"$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
node() {	# NAME EXTRA-LINE
	mkdir -p "$tmp/$1"
	chmod 755 "$tmp/$1"
	port=$(free_port)
	echo "$port" >"$tmp/$1/port"
	{
		echo "listen 127.0.0.1:$port"
		[ "$(id -u)" -eq 0 ] && echo "user nobody"
		echo "resolv_conf /dev/null"
		echo "audit_db audit.db"
		echo "node_name $1"
		echo "control_socket ctl.sock"
		echo "$2"
	} >"$tmp/$1/gatewayd.conf"
	[ -f "$tmp/$1/policy.db" ] || {
		"$bin/socksctl" -c "$tmp/$1/gatewayd.conf" init >/dev/null
		"$bin/socksctl" -c "$tmp/$1/gatewayd.conf" rule add allow \
		    --dst 127.0.0.0/8 >/dev/null
	}
	chmod -R a+rX "$tmp/$1"
	"$bin/gatewayd" -c "$tmp/$1/gatewayd.conf" >"$tmp/$1/log" 2>&1 &
	pids="$pids $!"
	echo $! >"$tmp/$1/pid"
	wait_log "$tmp/$1/log" "ready:"
}
node local ""
node central "$([ "${AA:-0}" = 1 ] || echo "audit_central $url")"
rate() {	# NAME
	"$bin/socksbench" rate -t "127.0.0.1:$echo_port" \
	    -s "127.0.0.1:$(cat "$tmp/$1/port")" -c 32 -d "$secs" |
	    tr ' ' '\n' | sed -n 's/^conn\/s=//p'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for i in $(seq "$rounds"); do
	rate local >>"$tmp/local.rates"
	rate central >>"$tmp/central.rates"
done
# CPU seconds of the central node's shipper and of PostgreSQL's backends.
cpu() {	# PID...: utime + stime of each, in seconds, summed
	for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done |
	    awk '{ s += $14 + $15 } END { printf "%.1f", s / 100 }'
}
shipper=$(pgrep -P "$(pgrep -P "$(cat "$tmp/central/pid")" -x socksgw-auditd)" -x socksgw-shipper || true)
pg_pids=$(pgrep -u postgres -f "postgres: gw fleet" || true)
echo "PostgreSQL at nice $pgnice; CPU used during the rounds: shipper $(cpu $shipper) s, its PostgreSQL backend $(cpu $pg_pids) s, of $((rounds * secs * 2)) s on 2 CPUs"
lag=$("$bin/socksctl" -c "$tmp/central/gatewayd.conf" --json stats |
    python3 -c 'import json,sys; c=json.load(sys.stdin).get("audit_central", {}); print(c.get("lag_records", "-"), c.get("lag_ms", "-"))')
l=$(median <"$tmp/local.rates")
c=$(median <"$tmp/central.rates")
printf '%-34s %10s %10s %7s\n' "conn/s, 32 clients (median of $rounds)" \
    "local" "central" "ratio"
printf '%-34s %10s %10s %6s%%\n' "" "$l" "$c" \
    "$(awk -v a="$l" -v b="$c" 'BEGIN { printf "%.1f", 100 * b / a }')"
echo "paired rounds, central/local, median: $(paste "$tmp/local.rates" "$tmp/central.rates" |
    awk '{ printf "%.1f\n", 100 * $2 / $1 }' | median)%"
echo "rounds: local $(tr '\n' ' ' <"$tmp/local.rates")| central $(tr '\n' ' ' <"$tmp/central.rates")"
echo "when the last round ended: $lag (records, ms) not yet shipped"
i=0
until [ "$(psql_ -d fleet -c "SELECT count(*) FROM audit_records WHERE node = 'central'")" = \
    "$(sqlite3 "$tmp/central/audit.db" 'SELECT count(*) FROM records WHERE seq IS NOT NULL')" ]; do
	i=$((i + 1))
	[ $i -gt 600 ] && { echo "$0: the central node's records did not all arrive" >&2; exit 1; }
	sleep 0.1
done
echo "all $(psql_ -d fleet -c "SELECT count(*) FROM audit_records WHERE node = 'central'") records of the central node arrived, $(psql_ -d fleet -c "SELECT count(*) - count(DISTINCT session_id) FROM audit_records") duplicated"
for n in local central; do kill "$(cat "$tmp/$n/pid")"; done

# Ingest: a backlog of RECORDS, shipped from a standing start.
mkdir "$tmp/ingest"
"$bin/auditbench" gen "$tmp/ingest/audit.db" "$records" >/dev/null
t0=$(date +%s%N)
node ingest "audit_central $url"
i=0
until [ "$(psql_ -d fleet -c "SELECT shipped_seq FROM audit_nodes WHERE node = 'ingest'")" = "$records" ]; do
	i=$((i + 1))
	[ $i -gt 6000 ] && { echo "$0: ingest did not finish in 10 minutes" >&2; exit 1; }
	sleep 0.1
done
t1=$(date +%s%N)
echo "ingest: $records records in $(( (t1 - t0) / 1000000 )) ms: $(( records * 1000 / ((t1 - t0) / 1000000) )) records/s into one PostgreSQL (one node, batches of 500)"
echo "central store size: $(psql_ -d fleet -c "SELECT pg_size_pretty(pg_total_relation_size('audit_records'))") for $(psql_ -d fleet -c "SELECT count(*) FROM audit_records") records"
