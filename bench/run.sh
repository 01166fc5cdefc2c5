#!/bin/sh
# Benchmarks gatewayd against a direct loopback connection, in the same
# run, with the same client: bulk throughput (1 and 4 streams), connection
# rate and latency (1, 32 and 256 concurrent clients), and memory per idle
# proxied connection. Everything stays on 127.0.0.1; every phase is bounded.
#
#	bench/run.sh [-d SECONDS] [-i IDLE_CONNECTIONS] [-A] [BUILD_DIR]
#	bench/run.sh --peers [-d SECONDS] [-r ROUNDS] [BUILD_DIR]
#
# --peers runs bench/peers.sh instead: socksgw beside Debian's microsocks
# and dante-server, interleaved with the direct baseline, medians.
#
# -A also builds a 10,000,000-record audit database (about 2.5 GB and two
# minutes) and times socksctl's query on it.
#
# Needs a build (cmake -S . -B build && cmake --build build).
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = --peers ]; then
	shift
	exec sh bench/peers.sh "$@"
fi

secs=5
idle_count=9900
big_audit=0
while getopts d:i:A opt; do
	case $opt in
	d) secs=$OPTARG ;;
	i) idle_count=$OPTARG ;;
	A) big_audit=1 ;;
	*) echo "usage: $0 [-d SECONDS] [-i IDLE_CONNECTIONS] [BUILD_DIR]" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
bin=${1:-build}/bin
for b in gatewayd socksctl socksbench policybench pambench auditbench; do
	[ -x "$bin/$b" ] || { echo "$0: build first (no $bin/$b)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/socksgw-bench-XXXXXX)
chmod 755 "$tmp"
serve_pid=""
gw_pid=""
big_pid=""
pam_pid=""
aud_pid=""
cleanup() {
	status=$?
	set +e	# a killed server's wait returns 143: not the bench's status
	[ -n "$aud_pid" ] && kill "$aud_pid" 2>/dev/null && wait "$aud_pid" 2>/dev/null
	[ -n "$pam_pid" ] && kill "$pam_pid" 2>/dev/null && wait "$pam_pid" 2>/dev/null
	[ -n "${aud_cache_pid:-}" ] && kill "$aud_cache_pid" 2>/dev/null && wait "$aud_cache_pid" 2>/dev/null
	[ -n "$big_pid" ] && kill "$big_pid" 2>/dev/null && wait "$big_pid" 2>/dev/null
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
	[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
	rm -rf "$tmp"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() {	# FILE TEXT [COUNT]
	i=0
	until [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "$0: timed out waiting for '$2' in $1" >&2; exit 1; }
		sleep 0.05
	done
}
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
proxy_of() {	# the proxy process of the gatewayd with pid $1
	for c in $(cat "/proc/$1/task/$1/children"); do
		[ "$(cat "/proc/$c/comm")" = socksgw-proxy ] && echo "$c"
	done
}

echo_port=$(free_port)
sink_port=$(free_port)
gw_port=$(free_port)

"$bin/socksbench" serve "$echo_port" "$sink_port" >"$tmp/serve.log" 2>&1 &
serve_pid=$!
wait_for "$tmp/serve.log" serving

{
	echo "listen 127.0.0.1:$gw_port"
	[ "$(id -u)" -eq 0 ] && echo "user nobody"
	echo "resolv_conf /dev/null"
} >"$tmp/gatewayd.conf"
chmod 644 "$tmp/gatewayd.conf"
# The targets are on loopback, which only a rule naming it opens.
"$bin/socksctl" -c "$tmp/gatewayd.conf" init >/dev/null
"$bin/socksctl" -c "$tmp/gatewayd.conf" rule add allow --dst 127.0.0.0/8 >/dev/null
"$bin/gatewayd" -c "$tmp/gatewayd.conf" >"$tmp/gatewayd.log" 2>&1 &
gw_pid=$!
wait_for "$tmp/gatewayd.log" "ready:"

gw="127.0.0.1:$gw_port"
echo "# socksgw bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${secs}s per run"
echo "# gatewayd: $(grep -o 'ready:.*' "$tmp/gatewayd.log")"
printf '%-28s %14s %14s %8s\n' "measure" "direct" "gatewayd" "ratio"

field() {	# OUTPUT NAME
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}
row() {		# LABEL DIRECT PROXIED
	ratio=$(awk -v d="$2" -v p="$3" 'BEGIN { if (d > 0) printf "%.0f%%", 100 * p / d; else print "-" }')
	printf '%-28s %14s %14s %8s\n' "$1" "$2" "$3" "$ratio"
}

for n in 1 4; do
	d=$("$bin/socksbench" bulk -t "127.0.0.1:$sink_port" -n "$n" -d "$secs")
	p=$("$bin/socksbench" bulk -t "127.0.0.1:$sink_port" -s "$gw" -n "$n" -d "$secs")
	row "bulk MB/s, $n stream(s)" "$(field "$d" MB/s)" "$(field "$p" MB/s)"
	[ "$(field "$p" errors)" = 0 ] || echo "  errors through gatewayd: $p"
done
for c in 1 32 256; do
	d=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -c "$c" -d "$secs")
	p=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c "$c" -d "$secs")
	row "conn/s, $c client(s)" "$(field "$d" conn/s)" "$(field "$p" conn/s)"
	row "  median latency us" "$(field "$d" median_us)" "$(field "$p" median_us)"
	row "  p99 latency us" "$(field "$d" p99_us)" "$(field "$p" p99_us)"
	[ "$(field "$p" errors)" = 0 ] || echo "  errors through gatewayd: $p"
done

# UDP through an association, 32 datagrams in flight.
d=$("$bin/socksbench" udp -t "127.0.0.1:$echo_port" -c 32 -d "$secs")
p=$("$bin/socksbench" udp -t "127.0.0.1:$echo_port" -s "$gw" -c 32 -d "$secs")
row "UDP datagrams/s, window 32" "$(field "$d" datagrams/s)" "$(field "$p" datagrams/s)"
echo "  datagrams lost: direct $(field "$d" loss), through gatewayd $(field "$p" loss)"

# Idle memory: RSS of gatewayd with idle_count proxied connections open,
# against its RSS before (after the load above, so its allocator is warm).
sleep 1
proxy_pid=$(proxy_of "$gw_pid")
before=$(rss_kb "$proxy_pid")
"$bin/socksbench" idle -t "127.0.0.1:$echo_port" -s "$gw" -c "$idle_count" \
    -d 4 >"$tmp/idle.log" 2>&1 &
idle_pid=$!
wait_for "$tmp/idle.log" "idle established"
sleep 1
during=$(rss_kb "$proxy_pid")
wait "$idle_pid" || true
cat "$tmp/idle.log" | sed 's/^/# /'
echo "idle connections: $idle_count, gatewayd RSS $before KiB -> $during KiB," \
    "$(awk -v b="$before" -v d="$during" -v n="$idle_count" 'BEGIN { printf "%.0f bytes", (d - b) * 1024 / n }') per connection"
# The policy at enterprise size: 10,000 rules, a 1,000,000-name list and a
# 100,000-CIDR list. The engine alone, then a second gatewayd running it,
# side by side with the first (one rule) in the same run.
mkdir "$tmp/big"
chmod 755 "$tmp/big"
"$bin/policybench" gen "$tmp/big/policy.db" | sed 's/^/# /'
"$bin/policybench" run "$tmp/big/policy.db" | sed 's/^/# /'
big_port=$(free_port)
sed "s/^listen .*/listen 127.0.0.1:$big_port/" "$tmp/gatewayd.conf" \
    >"$tmp/big/gatewayd.conf"
chmod 644 "$tmp/big/gatewayd.conf" "$tmp/big/policy.db"
"$bin/gatewayd" -c "$tmp/big/gatewayd.conf" >"$tmp/big/gatewayd.log" 2>&1 &
big_pid=$!
wait_for "$tmp/big/gatewayd.log" "ready:"
grep -o 'policy: .*' "$tmp/big/gatewayd.log" | sed 's/^/# gatewayd: /'
small=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c 32 -d "$secs")
big=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$big_port" -c 32 -d "$secs")
printf '%-28s %14s %14s %8s\n' "" "1 rule" "10,000 rules" "ratio"
row "conn/s, 32 clients" "$(field "$small" conn/s)" "$(field "$big" conn/s)"
row "  median latency us" "$(field "$small" median_us)" "$(field "$big" median_us)"

# Authentication: the same gatewayd code with auth pam, PAM run through
# pam_wrapper and pam_matrix (no system file touched), next to auth none;
# and the PAM module's own time, so that what the gateway adds shows.
wrapper=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so
if [ -e "$wrapper" ]; then
	mkdir "$tmp/pam"
	chmod 755 "$tmp/pam"
	echo "bench:bench:socksgw-bench" >"$tmp/pam/passdb"
	matrix=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
	printf 'auth required %s passdb=%s\naccount required %s passdb=%s\n' \
	    "$matrix" "$tmp/pam/passdb" "$matrix" "$tmp/pam/passdb" \
	    >"$tmp/pam/socksgw-bench"
	pam_port=$(free_port)
	{
		sed "s/^listen .*/listen 127.0.0.1:$pam_port/" "$tmp/gatewayd.conf"
		echo "auth pam"
		echo "pam_service socksgw-bench"
	} >"$tmp/pam/gatewayd.conf"
	cp "$tmp/policy.db" "$tmp/pam/policy.db"
	chmod 644 "$tmp/pam/gatewayd.conf" "$tmp/pam/policy.db"
	pamenv="LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$tmp/pam"
	env $pamenv "$bin/gatewayd" -c "$tmp/pam/gatewayd.conf" \
	    >"$tmp/pam/gatewayd.log" 2>&1 &
	pam_pid=$!
	wait_for "$tmp/pam/gatewayd.log" "ready:"
	cp "$tmp/pam/socksgw-bench" "$tmp/pam/other"
	module=$(env $pamenv "$bin/pambench" socksgw-bench bench bench 2000)
	none1=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c 1 -d "$secs")
	pam1=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" -a bench:bench -c 1 -d "$secs")
	none32=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c 32 -d "$secs")
	pam32=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" -a bench:bench -c 32 -d "$secs")
	printf '%-28s %14s %14s %8s\n' "" "auth none" "auth pam" "ratio"
	row "conn/s, 1 client" "$(field "$none1" conn/s)" "$(field "$pam1" conn/s)"
	row "  median latency us" "$(field "$none1" median_us)" "$(field "$pam1" median_us)"
	row "conn/s, 32 clients" "$(field "$none32" conn/s)" "$(field "$pam32" conn/s)"
	# The same with auth_cache_ttl: a login PAM checked in the last 300 s
	# is answered by authd from its cache (still a round trip to authd).
	mkdir "$tmp/pamc"
	chmod 755 "$tmp/pamc"
	cache_port=$(free_port)
	sed -e "s/^listen .*/listen 127.0.0.1:$cache_port/" \
	    -e "s|^policy_db .*||" "$tmp/pam/gatewayd.conf" >"$tmp/pamc/gatewayd.conf"
	echo "auth_cache_ttl 300" >>"$tmp/pamc/gatewayd.conf"
	cp "$tmp/policy.db" "$tmp/pamc/policy.db"
	chmod 644 "$tmp/pamc/gatewayd.conf" "$tmp/pamc/policy.db"
	env $pamenv "$bin/gatewayd" -c "$tmp/pamc/gatewayd.conf" \
	    >"$tmp/pamc/gatewayd.log" 2>&1 &
	aud_cache_pid=$!
	wait_for "$tmp/pamc/gatewayd.log" "ready:"
	none32c=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c 32 -d "$secs")
	cache32=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$cache_port" -a bench:bench -c 32 -d "$secs")
	kill "$aud_cache_pid" 2>/dev/null && wait "$aud_cache_pid" 2>/dev/null || true
	row "conn/s, 32, auth_cache_ttl" "$(field "$none32c" conn/s)" "$(field "$cache32" conn/s)"
	# Limits: set for 500 other users (live reload), then for the bench
	# user too (high enough never to refuse), against none, same gatewayd.
	# (One transaction, so one reload; socksctl would make 500.)
	python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with db:
    db.executemany("INSERT INTO users (name, max_sessions, rate, burst, "
                   "bandwidth, quota, quota_period) VALUES (?, 5, 10, 20, "
                   "1048576, 1073741824, \"day\")",
                   [("other%d" % i,) for i in range(500)])' \
	    "$tmp/pam/policy.db"
	wait_for "$tmp/pam/gatewayd.log" "policy: 1 rules in force" 2
	others=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" -a bench:bench -c 32 -d "$secs")
	"$bin/socksctl" -c "$tmp/pam/gatewayd.conf" user add bench \
	    --max-sessions 100000 --rate 1000000 --burst 1000000 \
	    --quota 1000T/day >/dev/null
	wait_for "$tmp/pam/gatewayd.log" "policy: 1 rules in force" 3
	own=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" -a bench:bench -c 32 -d "$secs")
	# And without limits again, against drift between the runs.
	python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with db:
    db.execute("DELETE FROM users")' "$tmp/pam/policy.db"
	wait_for "$tmp/pam/gatewayd.log" "policy: 1 rules in force" 4
	again=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" -a bench:bench -c 32 -d "$secs")
	printf '%-28s %14s %14s %8s\n' "auth pam, 32 clients" "no limits" "with limits" "ratio"
	row "conn/s, 500 others limited" "$(field "$pam32" conn/s)" "$(field "$others" conn/s)"
	row "conn/s, own limits too" "$(field "$again" conn/s)" "$(field "$own" conn/s)"
	# A bandwidth cap: 4 uploads of the bench user share 20M (20 MiB/s),
	# through libevent's rate-limit groups; what passes against the cap.
	"$bin/socksctl" -c "$tmp/pam/gatewayd.conf" user add bench \
	    --bandwidth 20M >/dev/null
	wait_for "$tmp/pam/gatewayd.log" "policy: 1 rules in force" 5
	capped=$("$bin/socksbench" bulk -t "127.0.0.1:$sink_port" -s "127.0.0.1:$pam_port" -a bench:bench -n 4 -d "$secs")
	printf '%-28s %14s %14s %8s\n' "auth pam" "cap" "measured" "ratio"
	row "bulk MB/s, 4 uploads capped" "20.97" "$(field "$capped" MB/s)"
	echo "PAM module alone (pambench, pam_matrix): median $(field "$module" median_us) us"
	# Again with -v, where each login logs its round trip to authd and
	# the time authd spent on it: the difference is what the split costs.
	kill "$pam_pid"
	wait "$pam_pid" 2>/dev/null || true
	env $pamenv "$bin/gatewayd" -v -c "$tmp/pam/gatewayd.conf" \
	    >"$tmp/pam/gatewayd-v.log" 2>&1 &
	pam_pid=$!
	wait_for "$tmp/pam/gatewayd-v.log" "ready:"
	"$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$pam_port" \
	    -a bench:bench -c 1 -d 2 >/dev/null
	grep -o 'in [0-9]* us, [0-9]* us of them in authd' "$tmp/pam/gatewayd-v.log" |
	    awk '{ print $2 - $4 }' | sort -n | awk '{ v[NR] = $1 }
	    END { if (NR == 0) exit; p = int(NR * 0.99); if (p < 1) p = 1;
	    printf "proxy to authd and back, beyond authd'"'"'s own time: median %d us, p99 %d us over %d logins\n", v[int((NR + 1) / 2)], v[p], NR }' 
	[ "$(field "$pam32" errors)" = 0 ] || echo "  errors with auth pam: $pam32"
fi

# The audit log: the writer alone, then a gatewayd with audit_db next to
# the first (no audit) in the same run.
"$bin/auditbench" write "$tmp/writer.db" 500000
rm -f "$tmp/writer.db"*
mkdir "$tmp/aud"
chmod 755 "$tmp/aud"
aud_port=$(free_port)
{
	sed "s/^listen .*/listen 127.0.0.1:$aud_port/" "$tmp/gatewayd.conf"
	echo "audit_db audit.db"
} >"$tmp/aud/gatewayd.conf"
cp "$tmp/policy.db" "$tmp/aud/policy.db"
chmod 644 "$tmp/aud/gatewayd.conf" "$tmp/aud/policy.db"
"$bin/gatewayd" -c "$tmp/aud/gatewayd.conf" >"$tmp/aud/gatewayd.log" 2>&1 &
aud_pid=$!
wait_for "$tmp/aud/gatewayd.log" "ready:"
off=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "$gw" -c 32 -d "$secs")
on=$("$bin/socksbench" rate -t "127.0.0.1:$echo_port" -s "127.0.0.1:$aud_port" -c 32 -d "$secs")
printf '%-28s %14s %14s %8s\n' "" "audit off" "audit on" "ratio"
row "conn/s, 32 clients" "$(field "$off" conn/s)" "$(field "$on" conn/s)"
kill "$aud_pid"
wait "$aud_pid" 2>/dev/null || true
aud_pid=""
echo "audit records written: $("$bin/socksctl" -c "$tmp/aud/gatewayd.conf" --json audit verify)"
if [ "$big_audit" = 1 ]; then
	"$bin/auditbench" gen "$tmp/aud/big.db" 10000000
	echo "audit_db big.db" >"$tmp/aud/big.conf"
	for i in 1 2 3; do
		t0=$(date +%s%N)
		"$bin/socksctl" -c "$tmp/aud/big.conf" audit list --user user42 \
		    --since -1d >/dev/null
		t1=$(date +%s%N)
		echo "socksctl audit list --user user42 --since -1d on 10M records: $(( (t1 - t0) / 1000000 )) ms"
	done
	rm -f "$tmp/aud/big.db"*
fi

echo "# gatewayd log: $(grep -c ' closed: ' "$tmp/gatewayd.log") sessions; warnings and errors:"
grep ': warn: \|: error: ' "$tmp/gatewayd.log" | sed 's/^/#   /' | head -20
