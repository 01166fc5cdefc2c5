#!/bin/sh
# Where a proxied connection's time goes, gatewayd (one or two builds) and
# Debian's microsocks side by side, at one client (bench/socksbench rate,
# 64-byte echo): system calls per connection by name (strace -c -f on the
# server's processes), and context switches and CPU migrations per
# connection on the whole machine (perf stat -a: the client's and the echo
# server's wake-ups count too, and a direct connection shows the floor).
# Everything on 127.0.0.1; every run is bounded by its duration.
#
#	sh bench/profile.sh [-d SECONDS] BUILD [BUILD...]
#
# As root (strace attaches to the servers; they run as nobody).
set -eu
cd "$(dirname "$0")/.."

secs=3
while getopts d: opt; do
	case $opt in
	d) secs=$OPTARG ;;
	*) echo "usage: $0 [-d SECONDS] BUILD [BUILD...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-d SECONDS] BUILD [BUILD...]" >&2; exit 2; }
for t in strace perf microsocks; do
	command -v $t >/dev/null || { echo "$0: $t is missing (Debian: strace, linux-perf, microsocks)" >&2; exit 1; }
done
bench=$(cd "$1" && pwd)/bin/socksbench

. bench/lib.sh
bench_tmp profile
tree() {	# ROOT_PID: it and its children
	echo "$1"; ps -o pid= --ppid "$1"
}

echo_port=$(free_port)
"$bench" serve "$echo_port" "$(free_port)" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
wait_port "$echo_port"

servers="direct"
ms_port=$(free_port)
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    microsocks -i 127.0.0.1 -p "$ms_port" >"$tmp/microsocks.log" 2>&1 &
ms_pid=$!; pids="$pids $ms_pid"
echo "microsocks $ms_port $ms_pid" >>"$tmp/servers"
n=0
for build in "$@"; do
	n=$((n + 1))
	bin=$(cd "$build" && pwd)/bin
	d="$tmp/gw$n"; mkdir "$d"
	port=$(free_port)
	printf 'listen 127.0.0.1:%s\nuser nobody\nresolv_conf /dev/null\naudit_db %s/audit.db\n' \
	    "$port" "$d" >"$d/gatewayd.conf"
	"$bin/socksctl" -c "$d/gatewayd.conf" init >/dev/null
	"$bin/socksctl" -c "$d/gatewayd.conf" rule add allow --dst 127.0.0.0/8 >/dev/null
	chmod -R a+rwX "$d"
	"$bin/gatewayd" -c "$d/gatewayd.conf" >"$d/log" 2>&1 &
	pids="$pids $!"
	echo "gatewayd$n $port $! $build" >>"$tmp/servers"
done
wait_port "$ms_port"
sleep 1

rate() {	# PORT|"" SECONDS: the load generator's output line
	"$bench" rate -t "127.0.0.1:$echo_port" ${1:+-s 127.0.0.1:$1} -c 1 -d "$2"
}
conns() {	# OUTPUT SECONDS
	echo "$1" | tr ' ' '\n' | awk -F= -v d="$2" '$1 == "conn/s" { printf "%d", $2 * d }'
}
switches() {	# NAME PORT|"": context switches per connection, machine-wide
	perf stat -a -x, -e context-switches,cpu-migrations -o "$tmp/stat" \
	    "$bench" rate -t "127.0.0.1:$echo_port" ${2:+-s 127.0.0.1:$2} -c 1 \
	    -d "$secs" >"$tmp/out"
	c=$(conns "$(cat "$tmp/out")" "$secs")
	awk -F, -v c="$c" -v name="$1" -v out="$(cat "$tmp/out")" '
	    $3 == "context-switches" { cs = $1 } $3 == "cpu-migrations" { mg = $1 }
	    END { printf "%-12s %s\n%-12s context switches %.1f, migrations %.2f per connection\n",
	        name, out, "", cs / c, mg / c }' "$tmp/stat"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, 1 client, ${secs}s runs"
echo "## machine-wide, perf stat -a"
switches direct ""
while read -r name port pid build; do
	switches "$name" "$port"
done <"$tmp/servers"
echo "## system calls per connection in the server, strace -c -f"
while read -r name port pid build; do
	strace -c -f -o "$tmp/strace" $(tree "$pid" | sed 's/^ */-p /') 2>/dev/null &
	sp=$!
	sleep 1
	out=$(rate "$port" "$secs")
	kill -TERM $sp 2>/dev/null || true
	wait $sp 2>/dev/null || true
	c=$(conns "$out" "$secs")
	echo "$name ${build:-} ($c connections under strace)"
	awk -v c="$c" '$NF != "total" && $4 ~ /^[0-9]+$/ && $4 / c >= 0.05 {
	    printf "  %-16s %5.2f\n", $NF, $4 / c; t += $4 }
	    $NF == "total" { printf "  %-16s %5.2f\n", "total", $4 / c }' "$tmp/strace"
done <"$tmp/servers"
