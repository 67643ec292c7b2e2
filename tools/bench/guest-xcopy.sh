#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: EXTENDED COPY of BENCH_XCOPY_MB (default 256) MiB between two
# user:vxhs LUNs (sg_xcopy; vxhsd copies) against dd through the loopback
# initiator, in one e2e guest (tests/e2e/scenarios/bench_xcopy.sh),
# alternating in BENCH_ROUNDS rounds (default 3); medians, and what
# reached the agent. A TCG guest on a busy host: read the ratio, not the
# figures.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=$(guest_bench bench_xcopy)
MB=${BENCH_XCOPY_MB:-256}

field() { grep "^$1 " "$RES" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
mbps() { awk -v mb="$MB" '{ printf "%.1f\n", mb / $1 }'; }
xcopy=$(field xcopy secs | mbps | median)
dd=$(field dd secs | mbps | median)
printf 'Copy of %s MiB between two user:vxhs LUNs (medians of %s rounds):\n' \
	"$MB" "$(field xcopy secs | wc -l)"
printf '  sg_xcopy (EXTENDED COPY): %s MiB/s; vxhsd saw %s COPY, %s READ, %s WRITE requests a round\n' \
	"$xcopy" "$(field xcopy copy | median)" "$(field xcopy read | median)" \
	"$(field xcopy write | median)"
printf '  dd through the initiator: %s MiB/s; vxhsd saw %s COPY, %s READ, %s WRITE requests a round\n' \
	"$dd" "$(field dd copy | median)" "$(field dd read | median)" \
	"$(field dd write | median)"
printf '  sg_xcopy / dd: %sx\n' "$(ratio "$dd" "$xcopy")"
