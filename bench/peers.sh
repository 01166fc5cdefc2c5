#!/bin/sh
# socksgw beside Debian's microsocks and dante-server, each as a ratio to a
# direct loopback connection measured in the same run with the same client
# (bench/socksbench): bulk throughput (1 and 4 streams), connection rate
# (1, 32 and 256 clients, 64-byte echo), median latency at 1 client, UDP
# datagrams/s through an association, and memory per idle proxied
# connection. Servers are measured interleaved (direct, microsocks, Dante,
# socksgw, then again), ROUNDS rounds, medians printed. gatewayd runs as
# shipped by default: audit on, one allow rule, auth none; microsocks and
# Dante with no authentication either. The last column is bench/bareproxy.c,
# the least a user-space SOCKS5 relay can do per connection (no policy, no
# audit, every kernel shortcut): no proxy here can beat its rates, so it
# says how much of a row the kernel leaves to win. Everything on
# 127.0.0.1; every run is bounded by its duration.
#
#	sh bench/peers.sh [-d SECONDS] [-r ROUNDS] [-i IDLE] [BUILD_DIR]
#
# As root: installs microsocks and dante-server if missing (apt), and the
# servers run as nobody.
set -eu
cd "$(dirname "$0")/.."

secs=5
rounds=3
idle=2000
while getopts d:r:i: opt; do
	case $opt in
	d) secs=$OPTARG ;;
	r) rounds=$OPTARG ;;
	i) idle=$OPTARG ;;
	*) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [-i IDLE] [BUILD_DIR]" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
bin=$(cd "${1:-build}" && pwd)/bin
for b in gatewayd socksctl socksbench bareproxy; do
	[ -x "$bin/$b" ] || { echo "$0: build first (no $bin/$b)" >&2; exit 1; }
done
if ! command -v microsocks >/dev/null || ! [ -x /usr/sbin/danted ]; then
	[ "$(id -u)" -eq 0 ] || { echo "$0: microsocks and dante-server are "\
	    "missing (run as root to install them)" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends microsocks dante-server >/dev/null
fi

. bench/lib.sh
bench_tmp peers

rss_tree_kb() {	# the RSS of a process and all its descendants
	ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
	    { parent[$1] = $2; rss[$1] = $3 }
	    END { for (p in rss) { q = p; while (q != "" && q != 0 && q != root) q = parent[q];
	          if (q == root) t += rss[p] } print t + 0 }'
}

echo_port=$(free_port); sink_port=$(free_port)
ms_port=$(free_port); dante_port=$(free_port); gw_port=$(free_port)
bare_port=$(free_port)
"$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
wait_port "$echo_port"

# microsocks: no authentication, loopback only.
runuser=""; [ "$(id -u)" -eq 0 ] && runuser="setpriv --reuid=nobody --regid=nogroup --clear-groups"
$runuser microsocks -i 127.0.0.1 -p "$ms_port" >"$tmp/microsocks.log" 2>&1 &
ms_pid=$!; pids="$pids $ms_pid"

# Dante runs in a network namespace of its own, with an echo server of
# its own there, and its runs enter that namespace (nsenter): Dante binds
# each outgoing socket before connecting, and on a shared loopback such a
# port stays closed to other programs' connect() while its socket waits
# out TIME_WAIT (60 s), and the other way round. Whoever ran after Dante
# found the ports exhausted (EADDRNOTAVAIL: 1,272 to 4,205 failed
# connections a run through socksgw), and Dante after the others
# likewise. A namespace has ports of its own, and its loopback is the
# same code.
unshare --net sh -c 'ip link set lo up && exec sleep 100000' &
ns_pid=$!; pids="$pids $ns_pid"
inns="nsenter -t $ns_pid -n"
i=0
until $inns ip -o link show lo 2>/dev/null | grep -q "UP"; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "$0: no namespace for Dante" >&2; exit 1; }
	sleep 0.05
done
$inns "$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve-dante.log" 2>&1 &
pids="$pids $!"

# Dante: no authentication, CONNECT and UDP ASSOCIATE from loopback.
cat >"$tmp/danted.conf" <<EOF
logoutput: $tmp/danted.log
internal: 127.0.0.1 port = $dante_port
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect udpassociate }
socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }
EOF
$inns /usr/sbin/danted -f "$tmp/danted.conf" -p "$tmp/danted.pid" >"$tmp/danted.out" 2>&1 &
dante_pid=$!; pids="$pids $dante_pid"

# gatewayd as shipped: audit on, one allow rule.
{
	echo "listen 127.0.0.1:$gw_port"
	[ "$(id -u)" -eq 0 ] && echo "user nobody"
	echo "resolv_conf /dev/null"
	echo "audit_db $tmp/audit.db"
} >"$tmp/gatewayd.conf"
chmod 644 "$tmp/gatewayd.conf"
"$bin/socksctl" -c "$tmp/gatewayd.conf" init >/dev/null
"$bin/socksctl" -c "$tmp/gatewayd.conf" rule add allow --dst 127.0.0.0/8 >/dev/null
"$bin/gatewayd" -c "$tmp/gatewayd.conf" >"$tmp/gatewayd.log" 2>&1 &
gw_pid=$!; pids="$pids $gw_pid"
"$bin/bareproxy" "$bare_port" >"$tmp/bare.log" 2>&1 &
pids="$pids $!"
for p in "$ms_port" "$gw_port" "$bare_port"; do wait_port "$p"; done
wait_port "$dante_port" "$inns"

servers="direct microsocks dante socksgw bare"
in_ns_of() {	# SERVER: the command prefix its runs need
	if [ "$1" = dante ]; then echo "$inns"; fi
}
addr_of() {
	case $1 in
	direct) echo "" ;;
	microsocks) echo "-s 127.0.0.1:$ms_port" ;;
	dante) echo "-s 127.0.0.1:$dante_port" ;;
	socksgw) echo "-s 127.0.0.1:$gw_port" ;;
	bare) echo "-s 127.0.0.1:$bare_port" ;;
	esac
}
runs="$tmp/runs"; : >"$runs"
unconfirmed=""
record() {	# SERVER MEASURE VALUE
	echo "$1 $2 ${3:-0}" >>"$runs"
}
echo "# socksgw peers bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${secs}s per run, $rounds rounds"
for r in $(seq 1 "$rounds"); do
	for s in $servers; do
		a=$(addr_of "$s")
		for n in 1 4; do
			o=$($(in_ns_of "$s") "$bin/socksbench" bulk -t "127.0.0.1:$sink_port" $a -n "$n" -d "$secs" || true)
			record "$s" "bulk$n" "$(field "$o" MB/s)"
			[ "$(field "$o" unconfirmed)" = 0 ] || unconfirmed="$unconfirmed $s"
		done
		for c in 1 32 256; do
			o=$($(in_ns_of "$s") "$bin/socksbench" rate -t "127.0.0.1:$echo_port" $a -c "$c" -d "$secs" || true)
			record "$s" "rate$c" "$(field "$o" conn/s)"
			e=$(field "$o" errors)
			[ "${e:-0}" = 0 ] || echo "  $s, $c clients: $e connections failed" >&2
			[ "$c" = 1 ] && record "$s" lat1 "$(field "$o" median_us)"
		done
		if [ "$s" = microsocks ] || [ "$s" = bare ]; then
			record "$s" udp none	# no UDP ASSOCIATE
		else
			o=$($(in_ns_of "$s") "$bin/socksbench" udp -t "127.0.0.1:$echo_port" $a -c 32 -d "$secs" || true)
			record "$s" udp "$(field "$o" datagrams/s)"
		fi
		echo "round $r $s: $(grep "^$s " "$runs" | tail -7 | awk '{ printf "%s=%s ", $2, $3 }')"
	done
done

# Idle memory: RSS of each server's processes with $idle idle proxied
# connections open, against before (after the load: allocators warm).
for s in microsocks dante socksgw; do
	case $s in
	microsocks) root=$ms_pid ;;
	dante) root=$dante_pid ;;
	socksgw) root=$gw_pid ;;
	esac
	before=$(rss_tree_kb "$root")
	$(in_ns_of "$s") "$bin/socksbench" idle -t "127.0.0.1:$echo_port" $(addr_of "$s") -c "$idle" \
	    -d 4 >"$tmp/idle-$s.log" 2>&1 &
	ip=$!
	sleep 3
	during=$(rss_tree_kb "$root")
	wait "$ip" || true
	got=$(grep -o 'idle established=[0-9]*' "$tmp/idle-$s.log" | cut -d= -f2)
	record "$s" idlekb "$(awk -v b="$before" -v d="$during" -v n="${got:-0}" 'BEGIN { if (n > 0) printf "%.1f", (d - b) / n; else print "none" }')"
	sleep 2
done

median() {	# SERVER MEASURE
	grep "^$1 $2 " "$runs" | awk '{ print $3 }' | sort -n | awk '
	    { v[NR] = $1 } END { if (NR == 0 || v[1] == "none") print "none";
	    else print v[int((NR + 1) / 2)] }'
}
ratio() {	# SERVER MEASURE: the server's median as a % of direct's
	awk -v p="$(median "$1" "$2")" -v d="$(median direct "$2")" 'BEGIN {
	    if (p == "none") print "none"; else if (d > 0) printf "%.0f%%", 100 * p / d; else print "-" }'
}
multiple() {	# SERVER MEASURE: the server's median as a multiple of direct's
	awk -v p="$(median "$1" "$2")" -v d="$(median direct "$2")" 'BEGIN {
	    if (d > 0) printf "%.1fx", p / d; else print "-" }'
}
echo
echo "medians of $rounds rounds, as a share of a direct connection (latency: a multiple of it)"
row() {	# LABEL MICROSOCKS DANTE SOCKSGW BARE DIRECT
	printf '| %-28s | %10s | %10s | %10s | %10s | %14s |\n' "$@"
}
row measure microsocks Dante socksgw "bare relay" direct
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------------ ------------ ------------ ------------ ------------ ----------------
for m in bulk1 bulk4 rate1 rate32 rate256 lat1 udp idlekb; do
	case $m in
	bulk1) l="bulk, 1 stream"; u="MB/s" ;;
	bulk4) l="bulk, 4 streams"; u="MB/s" ;;
	rate1) l="connections/s, 1 client"; u="conn/s" ;;
	rate32) l="connections/s, 32 clients"; u="conn/s" ;;
	rate256) l="connections/s, 256 clients"; u="conn/s" ;;
	lat1) l="median latency, 1 client"; u="us" ;;
	udp) l="UDP datagrams/s"; u="dgram/s" ;;
	idlekb) l="idle memory per connection"; u="" ;;
	esac
	case $m in
	lat1) row "$l" "$(multiple microsocks $m)" "$(multiple dante $m)" "$(multiple socksgw $m)" "$(multiple bare $m)" "$(median direct $m) $u" ;;
	idlekb) row "$l" "$(median microsocks $m) KiB" "$(median dante $m) KiB" "$(median socksgw $m) KiB" - - ;;
	*) row "$l" "$(ratio microsocks $m)" "$(ratio dante $m)" "$(ratio socksgw $m)" "$(ratio bare $m)" "$(median direct $m) $u" ;;
	esac
done
[ -z "$unconfirmed" ] || echo "bulk through $(echo $unconfirmed | tr ' ' '\n' | sort -u | tr '\n' ' ')counted as written: the server closes both ways at the client's half-close, so the sink's count never comes back"
