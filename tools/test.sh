#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Runs every test tier: set-up and build (-Werror), then unit and
# integration tests, then the same tiers again built with AddressSanitizer
# and UBSan, and with ThreadSanitizer, then each libFuzzer target for a
# minute (VXHS_FUZZ_SECONDS),
# then the end-to-end tier (QEMU guests running the real LIO,
# tcmu-runner and targetcli). Extra arguments go to ctest (e.g. -R failover).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

tools/setup.sh

echo "==> unit and integration tests"
(cd build && ctest --output-on-failure -L 'unit|integration' "$@")

# build DIR [CMAKE-OPTION]...: configures and builds DIR; the log only
# on failure.
build() {
	local dir=$1
	shift
	cmake -S . -B "$dir" -DVXHS_WERROR=ON "$@" >/dev/null
	if ! cmake --build "$dir" -j"$(nproc)" ${TARGET:+--target "$TARGET"} \
		>"$dir/build.log" 2>&1; then
		cat "$dir/build.log" >&2
		exit 1
	fi
}

echo "==> the same tiers under AddressSanitizer and UBSan (build-asan/)"
build build-asan -DVXHS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
 cd build-asan && ctest --output-on-failure -L 'unit|integration' "$@")

echo "==> the same tiers under ThreadSanitizer (build-tsan/)"
build build-tsan -DVXHS_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
# Any report fails the test that saw it: a program exits 66, and the
# agents' exit status is checked.
(export TSAN_OPTIONS=halt_on_error=0:exitcode=66
 cd build-tsan && ctest --output-on-failure -L 'unit|integration' "$@")

echo "==> fuzzing: each libFuzzer target for ${VXHS_FUZZ_SECONDS:-60} s (build-fuzz/)"
CC=clang TARGET=fuzzers build build-fuzz -DVXHS_FUZZ=ON \
	-DVXHS_FUZZ_SECONDS="${VXHS_FUZZ_SECONDS:-60}" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-fuzz && ctest --output-on-failure -L fuzz -j"$(nproc)")

echo "==> Debian packages (build-deb/), checked by lintian"
tools/build-debs.sh

echo "==> end-to-end tests: the real kernel target stack in QEMU guests"
(cd build && ctest --output-on-failure -L e2e "$@")
