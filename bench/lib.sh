# bench/lib.sh: what the bench scripts share, sourced after `cd` to the
# top of the tree. bench_tmp NAME makes $tmp (removed at exit) and starts
# $pids, the processes the script started and stops at exit, by PID.
bench_tmp() {	# NAME
	tmp=$(mktemp -d "/tmp/socksgw-$1-XXXXXX")
	chmod 755 "$tmp"
	pids=""
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	status=$?
	set +e
	for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
	exit "$status"
}
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {	# PORT [PREFIX]: until something listens there (PREFIX: nsenter...)
	i=0
	until ${2:-} python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 200 ] && { echo "$0: nothing on port $1" >&2; exit 1; }
		sleep 0.05
	done
}
field() {	# OUTPUT NAME: NAME's value in socksbench's "a=b c=d" output
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'
}
