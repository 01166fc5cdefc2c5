#!/bin/sh
# Two builds of gatewayd side by side with auth pam (pam_wrapper and
# pam_matrix, no system file touched), measured alternately at 1 client:
# six rounds of 5 s each. Everything on 127.0.0.1.
#
#	bench/ab-pam.sh BUILD_A BUILD_B
#
# As root (the gatewayds run as nobody).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
A=$(cd "$1" && pwd)/bin; B=$(cd "$2" && pwd)/bin
tmp=$(mktemp -d /tmp/pamab-XXXXXX); chmod 755 $tmp
trap 'rm -rf "$tmp"' EXIT
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo_port=$(fp); sink=$(fp)
$A/socksbench serve $echo_port $sink > $tmp/serve.log 2>&1 & sp=$!
sleep 0.5
echo "bench:bench:socksgw-bench" > $tmp/passdb
m=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
printf 'auth required %s passdb=%s\naccount required %s passdb=%s\n' $m $tmp/passdb $m $tmp/passdb > $tmp/socksgw-bench
pids=""
for v in A B; do
	eval bin=\$$v
	mkdir $tmp/$v; chmod 755 $tmp/$v
	port=$(fp); eval port_$v=$port
	printf 'listen 127.0.0.1:%s\nuser nobody\nresolv_conf /dev/null\nauth pam\npam_service socksgw-bench\npolicy_db %s/%s/policy.db\n' $port $tmp $v > $tmp/$v/gatewayd.conf
	chmod 644 $tmp/$v/gatewayd.conf
	$bin/socksctl -c $tmp/$v/gatewayd.conf init > /dev/null
	$bin/socksctl -c $tmp/$v/gatewayd.conf rule add allow --dst 127.0.0.0/8 > /dev/null
	chmod 644 $tmp/$v/policy.db
	env LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$tmp $bin/gatewayd -c $tmp/$v/gatewayd.conf > $tmp/$v/log 2>&1 &
	pids="$pids $!"
done
sleep 2
for r in 1 2 3 4 5 6; do
	for v in A B; do
		eval port=\$port_$v
		out=$($A/socksbench rate -t 127.0.0.1:$echo_port -s 127.0.0.1:$port -a bench:bench -c 1 -d 5)
		echo "$v $out"
	done
done
for p in $pids $sp; do kill $p; done
wait 2>/dev/null || true
