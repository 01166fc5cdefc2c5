#!/bin/sh
# Two builds of gatewayd side by side: A (before a change) and B (after),
# each as shipped by default (audit on, one allow rule, auth none) on its
# own port, and a direct connection, with the same load generator and the
# same echo server, interleaved (direct, A, B, then again) for ROUNDS
# rounds of SECONDS each. Prints the medians of the connection rate at 1
# and 32 clients and of the median latency at 1 client, each as a share of
# direct, and the CPU time gatewayd's processes spent per connection (all
# their threads, from /proc/PID/task/*/schedstat: a figure the machine's
# noise blurs far less than a rate). This is how a candidate for the connection rate is judged: one
# change at a time, in the same run as what it replaces. Everything stays
# on 127.0.0.1; every run is bounded by its duration.
#
#	sh bench/ab.sh [-d SECONDS] [-r ROUNDS] [-c "1 32"] [-o "conf line"]
#	    [-A "conf line"] [-B "conf line"] [-m] [-f] BUILD_A BUILD_B
#
# -o adds a line to both configurations, -A and -B to one side's only:
# the same build twice with -A "auth pam" -B "auth pam" -B "auth_cache_ttl
# 300" measures what the login cache gives. A side with "auth pam" runs
# PAM through pam_wrapper and pam_matrix (no system file touched), and
# the load generator logs in to it as bench:bench (RFC 1929);
# -m measures Debian's microsocks in the same rotation, as the reference
# of bench/peers.sh (it must be installed: peers.sh installs it); -f
# measures bench/bareproxy.c (BUILD_A's), the least a user-space SOCKS5
# relay can do per connection: the ceiling of every proxy's rate here.
set -eu
cd "$(dirname "$0")/.."

secs=4
rounds=5
clients="1 32"
extra=""
extra_A=""
extra_B=""
nl='
'
peer=""
while getopts d:r:c:o:A:B:mf opt; do
	case $opt in
	d) secs=$OPTARG ;;
	r) rounds=$OPTARG ;;
	c) clients=$OPTARG ;;
	o) extra="$extra$OPTARG$nl" ;;
	A) extra_A="$extra_A$OPTARG$nl" ;;
	B) extra_B="$extra_B$OPTARG$nl" ;;
	m) peer="$peer microsocks" ;;
	f) peer="$peer bare" ;;
	*) echo "usage: $0 [-d S] [-r N] [-c CLIENTS] [-o LINE] BUILD_A BUILD_B" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { echo "usage: $0 [-d S] [-r N] [-c CLIENTS] [-o LINE] BUILD_A BUILD_B" >&2; exit 2; }
a=$(cd "$1" && pwd)/bin
b=$(cd "$2" && pwd)/bin
for d in "$a" "$b"; do
	for x in gatewayd socksctl socksbench; do
		[ -x "$d/$x" ] || { echo "$0: build first (no $d/$x)" >&2; exit 1; }
	done
done

. bench/lib.sh
bench_tmp ab
cpu_ns() {	# ROOT_PID: nanoseconds on a CPU, the process, its children, all threads
	for p in $1 $(ps -o pid= --ppid "$1"); do
		cat /proc/"$p"/task/*/schedstat 2>/dev/null
	done | awk '{ t += $1 } END { printf "%.0f", t }'
}

echo_port=$(free_port)
"$a/socksbench" serve "$echo_port" "$(free_port)" >"$tmp/serve.log" 2>&1 &
pids="$pids $!"
for side in A B; do
	[ $side = A ] && bin=$a || bin=$b
	mkdir "$tmp/$side"
	port=$(free_port)
	echo "$port" >"$tmp/$side/port"
	{
		echo "listen 127.0.0.1:$port"
		[ "$(id -u)" -eq 0 ] && echo "user nobody"
		echo "resolv_conf /dev/null"
		echo "audit_db $tmp/$side/audit.db"
		printf '%s' "$extra"
		eval printf '%s' "\"\$extra_$side\""
	} >"$tmp/$side/gatewayd.conf"
	pamenv=""
	if grep -q '^auth pam' "$tmp/$side/gatewayd.conf"; then
		echo "pam_service socksgw-bench" >>"$tmp/$side/gatewayd.conf"
		echo "bench:bench:socksgw-bench" >"$tmp/$side/passdb"
		m=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
		printf 'auth required %s passdb=%s\naccount required %s passdb=%s\n' \
		    "$m" "$tmp/$side/passdb" "$m" "$tmp/$side/passdb" >"$tmp/$side/socksgw-bench"
		pamenv="LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$tmp/$side"
		echo "-a bench:bench" >"$tmp/$side/login"
	fi
	"$bin/socksctl" -c "$tmp/$side/gatewayd.conf" init >/dev/null
	"$bin/socksctl" -c "$tmp/$side/gatewayd.conf" rule add allow \
	    --dst 127.0.0.0/8 >/dev/null
	chmod -R a+rwX "$tmp/$side"
	env $pamenv "$bin/gatewayd" -c "$tmp/$side/gatewayd.conf" >"$tmp/$side/log" 2>&1 &
	pids="$pids $!"
	echo $! >"$tmp/$side/pid"
done
case $peer in *bare*)
	[ -x "$a/bareproxy" ] || { echo "$0: no $a/bareproxy" >&2; exit 1; }
	bare_port=$(free_port)
	mkdir "$tmp/bare"
	"$a/bareproxy" "$bare_port" >"$tmp/bare/log" 2>&1 &
	pids="$pids $!"
	echo $! >"$tmp/bare/pid" ;;
esac
case $peer in *microsocks*)
	command -v microsocks >/dev/null || { echo "$0: no microsocks (sh bench/peers.sh installs it)" >&2; exit 1; }
	ms_port=$(free_port)
	runuser=""; [ "$(id -u)" -eq 0 ] && runuser="setpriv --reuid=nobody --regid=nogroup --clear-groups"
	$runuser microsocks -i 127.0.0.1 -p "$ms_port" >"$tmp/microsocks.log" 2>&1 &
	pids="$pids $!" ;;
esac
for side in A B; do
	i=0
	until grep -q "ready:" "$tmp/$side/log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "$0: $side did not start" >&2; cat "$tmp/$side/log" >&2; exit 1; }
		sleep 0.05
	done
done

runs="$tmp/runs"; : >"$runs"
for r in $(seq 1 "$rounds"); do
	line="round $r:"
	for s in direct $peer A B; do
		case $s in
		direct) via="" ;;
		microsocks) via="-s 127.0.0.1:$ms_port" ;;
		bare) via="-s 127.0.0.1:$bare_port" ;;
		*) via="-s 127.0.0.1:$(cat "$tmp/$s/port") $(cat "$tmp/$s/login" 2>/dev/null || true)" ;;
		esac
		for c in $clients; do
			[ -f "$tmp/$s/pid" ] && c0=$(cpu_ns "$(cat "$tmp/$s/pid")")
			o=$("$a/socksbench" rate -t "127.0.0.1:$echo_port" $via \
			    -c "$c" -d "$secs" || true)
			echo "$s rate$c $(field "$o" conn/s)" >>"$runs"
			if [ -f "$tmp/$s/pid" ]; then
				sleep 0.5	# the audit of the last sessions
				c1=$(cpu_ns "$(cat "$tmp/$s/pid")")
				echo "$s cpu$c $(awk -v a="$c0" -v b="$c1" -v r="$(field "$o" conn/s)" -v d="$secs" \
				    'BEGIN { printf "%.1f", (b - a) / 1000 / (r * d) }')" >>"$runs"
			fi
			[ "$c" = 1 ] && echo "$s lat1 $(field "$o" median_us)" >>"$runs"
			line="$line $s/$c=$(field "$o" conn/s)"
		done
	done
	echo "$line"
done
median() {	# SERVER MEASURE
	grep "^$1 $2 " "$runs" | awk '{ print $3 }' | sort -n |
	    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
echo "medians of $rounds rounds of ${secs}s; A = $1, B = $2"
for c in $clients; do
	d=$(median direct "rate$c"); ma=$(median A "rate$c"); mb=$(median B "rate$c")
	awk -v c="$c" -v d="$d" -v a="$ma" -v b="$mb" 'BEGIN {
	    printf "connections/s, %s clients: direct %s, A %s (%.1f%%), B %s (%.1f%%), B/A %.3f\n",
	    c, d, a, 100 * a / d, b, 100 * b / d, b / a }'
	awk -v c="$c" -v a="$(median A "cpu$c")" -v b="$(median B "cpu$c")" 'BEGIN {
	    printf "CPU per connection, %s clients: A %s us, B %s us, B/A %.3f\n", c, a, b, b / a }'
	for p in $peer; do
		awk -v p="$p" -v c="$c" -v d="$d" -v m="$(median "$p" "rate$c")" 'BEGIN {
		    printf "connections/s, %s clients: %s %s (%.1f%%)\n", c, p, m, 100 * m / d }'
		[ ! -f "$tmp/$p/pid" ] || echo "CPU per connection, $c clients: $p $(median "$p" "cpu$c") us"
	done
	if [ "$c" = 1 ]; then
		d=$(median direct lat1); ma=$(median A lat1); mb=$(median B lat1)
		awk -v d="$d" -v a="$ma" -v b="$mb" 'BEGIN {
		    printf "median latency, 1 client: direct %s us, A %s us (%.2fx), B %s us (%.2fx)\n",
		    d, a, a / d, b, b / d }'
		for p in $peer; do
			awk -v p="$p" -v d="$d" -v m="$(median "$p" lat1)" 'BEGIN {
			    printf "median latency, 1 client: %s %s us (%.2fx)\n", p, m, m / d }'
		done
	fi
done
