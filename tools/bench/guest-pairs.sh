#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0 OR LGPL-2.1-or-later
#
# Benchmark: user:vxhs over UNIX against user:qcow in one e2e guest boot,
# with LIO's default 64 KiB commands and with 1 MiB commands, two LUNs of
# each kind in mirror order (tests/e2e/scenarios/bench_pairs.sh). Prints
# the median IOPS of each kind (both its LUNs, every round) and the
# ratios: vxhs against qcow at the same command size, and LUNs as
# vxhs-export creates them (1 MiB) against user:qcow as targetcli creates
# it (64 KiB). Steadier on the 1 MiB lines than guest-fio.sh, whose nine
# LUNs of different kinds are not placed alike; a TCG guest on a busy
# host: read the ratios, not the figures. BENCH_RESULTS=FILE prints the
# table of an earlier run's results.txt without booting a guest.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tools/bench/lib.sh"
RES=${BENCH_RESULTS:-$(guest_bench bench_pairs)}
med() { kind_median "$RES" "$@"; }

printf 'fio IOPS, medians of 2 LUNs x %s rounds (tcm_loop, direct, libaio)\n\n' \
	"$(result_rounds "$RES")"
printf '%-18s %8s %8s %8s %8s | %9s %9s %9s\n' job qcow-64k vxhs-64k \
	qcow-1m vxhs-1m "64k:v/q" "1m:v/q" "v1m/q64k"
for job in $(result_jobs "$RES"); do
	q=$(med "$job" q64) v=$(med "$job" v64)
	Q=$(med "$job" q1m) V=$(med "$job" v1m)
	printf '%-18s %8s %8s %8s %8s | %8sx %8sx %8sx\n' "$job" "$q" "$v" \
		"$Q" "$V" "$(ratio "$q" "$v")" "$(ratio "$Q" "$V")" \
		"$(ratio "$q" "$V")"
done
