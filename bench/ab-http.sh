#!/bin/sh
# HTTP CONNECT and HTTP forwarding against SOCKS5 on one gatewayd (audit
# on, one allow rule, auth none), measured alternately: ROUNDS rounds
# (default 3) of 5 s at 1 and at 32 clients, each a loop of connect,
# handshake, CONNECT and a 64-byte echo, or a forwarded GET whose rebuilt
# head the echo target sends back, then close. Prints each run and the
# medians. Everything on 127.0.0.1.
#
#	sh bench/ab-http.sh [BUILD] [ROUNDS]
#
# As root (gatewayd runs as nobody).
set -eu
B=$(cd "${1:-build}" && pwd)/bin
rounds=${2:-3}
tmp=$(mktemp -d /tmp/httpab-XXXXXX); chmod 755 $tmp
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo_port=$(fp); sink=$(fp); port=$(fp)
$B/socksbench serve $echo_port $sink > $tmp/serve.log 2>&1 & sp=$!
printf 'listen 127.0.0.1:%s\nuser nobody\nresolv_conf /dev/null\nworkers 2\naudit_db %s/audit.db\npolicy_db %s/policy.db\n' $port $tmp $tmp > $tmp/gatewayd.conf
chmod 644 $tmp/gatewayd.conf
$B/socksctl -c $tmp/gatewayd.conf init > /dev/null
$B/socksctl -c $tmp/gatewayd.conf rule add allow --dst 127.0.0.0/8 > /dev/null
chmod 644 $tmp/policy.db
$B/gatewayd -c $tmp/gatewayd.conf > $tmp/log 2>&1 & gp=$!
trap 'kill $gp $sp 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 2
for r in $(seq 1 "$rounds"); do
	for c in 1 32; do
		for proto in socks5 http forward; do
			flag=""; [ $proto = http ] && flag=-H
			[ $proto = forward ] && flag=-F
			out=$($B/socksbench rate $flag -t 127.0.0.1:$echo_port \
			    -s 127.0.0.1:$port -c $c -d 5)
			echo "$proto c=$c $out" | tee -a $tmp/runs
		done
	done
done
echo "medians of $rounds rounds (connections/s):"
for c in 1 32; do
	for proto in socks5 http forward; do
		grep "^$proto c=$c " $tmp/runs | grep -o 'conn/s=[0-9.]*' |
		    cut -d= -f2 | sort -n | awk -v p=$proto -v c=$c \
		    '{v[NR]=$1} END {printf "%s at %d clients: %s\n", p, c, v[int((NR+1)/2)]}'
	done
done
