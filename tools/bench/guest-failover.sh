#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: two gateways behind dm-multipath, in two e2e guests
# (tests/e2e/scenarios/bench_failover.sh): steady-state 4 KiB random
# write IOPS through the multipath device against one gateway's path
# alone (medians, alternating rounds), and the failover time over
# repeated failovers (BENCH_FAILOVERS, default 10): the longest gaps
# between fio completions, and the time the lock took to move.
# A TCG guest on a busy host: read the ratios, not the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=$(guest_bench bench_failover)

mp=$(awk '$1 == "steady" && $2 == "multipath" { print $4 }' "$RES" | median)
one=$(awk '$1 == "steady" && $2 == "single" { print $4 }' "$RES" | median)
printf '4 KiB random writes, QD 16 (medians): multipath %s IOPS, one gateway %s IOPS, ratio %sx\n' \
	"$mp" "$one" "$(ratio "$one" "$mp")"
gaps=$(awk '$1 == "gap" { print $4 }' "$RES")
moved=$(awk '$1 == "failover" { print $5 }' "$RES")
printf 'failovers: %s\n' "$(echo "$moved" | wc -l)"
printf 'I/O gap across a failover (ms): median %s, max %s\n' \
	"$(echo "$gaps" | median)" "$(echo "$gaps" | sort -n | tail -n 1)"
printf 'lock moved after the TPG was disabled (ms): median %s, max %s\n' \
	"$(echo "$moved" | median)" "$(echo "$moved" | sort -n | tail -n 1)"
