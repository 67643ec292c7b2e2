#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: 64 loopback LUNs on one tcmu-runner in the e2e guest, fio over
# all of them, with the handler's client on 1 I/O thread against 2,
# plaintext and TLS (tests/e2e/scenarios/bench_many_luns.sh). Prints the
# medians per setting and tcmu-runner's memory per open LUN. A TCG guest on
# a busy host: read the ratios, not the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=$(guest_bench bench_many_luns)
printf '64 LUNs, fio 4 KiB random read, 4 jobs x QD 64; medians of %s rounds\n\n' \
	"$(awk '$1 == "plain" && $2 == 1' "$RES" | wc -l)"
printf '%-10s %12s %12s %8s %16s\n' transport "1 thread" "2 threads" ratio \
	"KiB per LUN"
for t in plain tls; do
	one=$(awk -v t=$t '$1 == t && $2 == 1 { print $3 }' "$RES" | median)
	two=$(awk -v t=$t '$1 == t && $2 == 2 { print $3 }' "$RES" | median)
	mem=$(awk -v t=$t '$1 == t { print $4 }' "$RES" | median)
	printf '%-10s %12s %12s %7sx %16s\n' $t "$one" "$two" "$(ratio "$one" "$two")" "$mem"
done
