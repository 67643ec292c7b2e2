#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: COMPARE AND WRITE operations per second on one block of a
# user:vxhs LUN, from one initiator and from two racing on the same block
# (tests/e2e/scenarios/bench_caw.sh, two e2e guests), alternating in
# BENCH_ROUNDS rounds (default 3) of BENCH_SECONDS (default 10); medians.
# A TCG guest on a busy host: read the ratio, not the figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=$(guest_bench bench_caw)

ops() { sed -n "s/.*$1.*ops_per_s=\([0-9.]*\).*/\1/p"; }
one=$(grep '^one ' "$RES" | ops "")
two_local=$(grep '^two ' "$RES" | sed 's/ remote .*//' | ops "")
two_remote=$(grep '^two ' "$RES" | sed 's/.* remote //' | ops "")
two=$(paste <(echo "$two_local") <(echo "$two_remote") | awk '{ print $1 + $2 }')
lost=$(grep '^two ' "$RES" | grep -o 'lost=[0-9]*' | awk -F= '{ s += $2 } END { print s }')
printf 'COMPARE AND WRITE on one block (medians of %s rounds):\n' "$(echo "$one" | wc -l)"
printf '  one initiator:  %s ops/s\n' "$(echo "$one" | median)"
printf '  two initiators: %s ops/s together (%s rounds lost to the other in all)\n' \
	"$(echo "$two" | median)" "$lost"
printf '  two / one: %sx\n' "$(ratio "$(echo "$one" | median)" "$(echo "$two" | median)")"
