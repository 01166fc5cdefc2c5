#!/bin/sh
# Installs what the tests need (Debian 12, as root), builds, and runs every
# test with CTest. With --sanitize, the same under ASan+UBSan in its own
# build folder.
set -eu
cd "$(dirname "$0")/.."

sh packaging/install-deps.sh test

dir=build
opts="-DWERROR=ON -DBUILD_TESTING=ON"
skip=""
if [ "${1:-}" = "--sanitize" ]; then
	dir=build-asan
	opts="$opts -DSANITIZE=ON"
	# The package is built with its own flags: once is enough.
	skip="-LE package"
	# Any report fails the test that triggered it.
	export ASAN_OPTIONS="abort_on_error=0:detect_leaks=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	# Tests that cannot run under the sanitizers say so and skip.
	export SOCKSGW_SANITIZE=1
fi

# shellcheck disable=SC2086
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo $opts >/dev/null
cmake --build "$dir" -j"$(nproc)"
# shellcheck disable=SC2086
ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900 $skip

# Then each parser is fuzzed for a bounded time (clang, libFuzzer,
# ASan+UBSan in a build of its own): the codec, the configuration, the
# policy's values and the control protocol. Once is enough: not again in
# the sanitizer pass.
if [ "${1:-}" != "--sanitize" ]; then
	sh tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"
fi
