#!/bin/sh
# Whether splice(2) pays: bulk throughput through gatewayd with
# splice_max 0 (copying) and 64 (splicing), alternating, ROUNDS rounds of
# SECONDS each, medians. The measurement behind removing the splice path
# (it ran at the commit that added this script; the next one removes it).
#
#	bench/splice.sh [-d SECONDS] [-r ROUNDS] [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
secs=5
rounds=3
while getopts d:r: opt; do
	case $opt in
	d) secs=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) echo "usage: $0 [-d SECONDS] [-r ROUNDS] [BUILD_DIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
bin=${1:-build}/bin
tmp=$(mktemp -d /tmp/socksgw-splice-XXXXXX)
chmod 755 "$tmp"
pids=""
cleanup() {
	set +e
	for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 200 ] && { echo "timed out: $2" >&2; exit 1; }
		sleep 0.05
	done
}
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

sink=$(free_port)
"$bin/socksbench" serve "$(free_port)" "$sink" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
wait_for "$tmp/serve.log" serving
for mode in 0 64; do
	port=$(free_port)
	mkdir "$tmp/$mode"
	{
		echo "listen 127.0.0.1:$port"
		[ "$(id -u)" -eq 0 ] && echo "user nobody"
		echo "resolv_conf /dev/null"
		echo "splice_max $mode"
		echo "runtime_dir $tmp/$mode"
	} >"$tmp/$mode/gatewayd.conf"
	chmod 644 "$tmp/$mode/gatewayd.conf"
	"$bin/socksctl" -c "$tmp/$mode/gatewayd.conf" init >/dev/null
	"$bin/socksctl" -c "$tmp/$mode/gatewayd.conf" rule add allow --dst 127.0.0.0/8 >/dev/null
	"$bin/gatewayd" -c "$tmp/$mode/gatewayd.conf" >"$tmp/$mode/log" 2>&1 &
	pids="$pids $!"
	wait_for "$tmp/$mode/log" "ready:"
	eval "port_$mode=$port"
done
for n in 1 4; do
	for r in $(seq "$rounds"); do
		for mode in 0 64; do
			eval "port=\$port_$mode"
			out=$("$bin/socksbench" bulk -t "127.0.0.1:$sink" -s "127.0.0.1:$port" -n "$n" -d "$secs")
			field "$out" MB/s >>"$tmp/res-$mode-$n"
		done
	done
	echo "bulk MB/s, $n stream(s): copy $(median <"$tmp/res-0-$n") splice $(median <"$tmp/res-64-$n") (medians of $rounds; copy: $(tr '\n' ' ' <"$tmp/res-0-$n")splice: $(tr '\n' ' ' <"$tmp/res-64-$n"))"
done
