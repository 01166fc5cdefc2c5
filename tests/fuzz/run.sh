#!/bin/sh
# Builds the libFuzzer harnesses with clang under ASan+UBSan and runs each
# for SECONDS (default 30) from its seed corpus (tests/fuzz/corpus/NAME).
# New inputs go to a scratch folder, never into the repository; a crash
# leaves its input in build-fuzz/crashes and fails the run.
#
#	sh tests/fuzz/run.sh [SECONDS]
#
# For hours on end: sh tests/fuzz/run.sh 14400 (each harness in turn), or
# run one harness by hand, e.g.
#	build-fuzz/bin/fuzz_socks5 -jobs=2 build-fuzz/work/socksgw5 \
#	    tests/fuzz/corpus/socks5
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-30}

sh packaging/install-deps.sh test

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFUZZ=ON -DSANITIZE=ON -DWERROR=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p build-fuzz/crashes
passed=0
failed=0
for h in socks5 http control values conf; do
	work=build-fuzz/work/$h
	rm -rf "$work"
	mkdir -p "$work"
	if build-fuzz/bin/fuzz_$h -max_total_time="$seconds" -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/crashes/$h- "$work" \
	    tests/fuzz/corpus/$h >build-fuzz/fuzz_$h.log 2>&1; then
		echo "fuzz_$h: $(grep -E '^stat::number_of_executed_units' \
		    build-fuzz/fuzz_$h.log | awk '{print $2}') runs, no finding"
		passed=$((passed + 1))
	else
		echo "fuzz_$h: FAILED, see build-fuzz/fuzz_$h.log"
		tail -40 build-fuzz/fuzz_$h.log
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
